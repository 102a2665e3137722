"""`export.ood`: the web demo's out-of-distribution gate and CAM, on hand-made cases."""

from __future__ import annotations

import numpy as np

from export import ood


def test_image_stats_of_flat_and_textured_images():
    black = np.zeros((1, 16, 16, 3), np.float32)
    s = ood.image_stats(black)
    assert s["luma_std"][0] == 0 and s["sharpness"][0] == 0 and s["chroma"][0] == 0
    assert s["saturated"][0] == 1.0
    rng = np.random.default_rng(0)
    tex = rng.uniform(60, 200, (1, 16, 16, 3)).astype(np.float32)
    t = ood.image_stats(tex)
    assert t["luma_std"][0] > 10 and t["sharpness"][0] > 100 and t["chroma"][0] > 20
    assert t["saturated"][0] == 0.0
    checks = {"luma_std_min": 4, "sharpness_min": 18, "chroma_min": 8, "saturated_max": 0.5}
    assert ood.image_check_failures(
        ood.image_stats(np.concatenate([black, tex])), checks
    ).tolist() == [
        True,
        False,
    ]


def test_mahalanobis_and_threshold():
    rng = np.random.default_rng(0)
    f = rng.normal(0, 1, (400, 3))
    labels = np.repeat([0, 1], 200)
    f[labels == 1] += 5
    fit = ood.fit_mahalanobis(f, labels)
    d = ood.mahalanobis(np.array([[0.0, 0, 0], [5.0, 5, 5], [40.0, -40, 40]]), fit)
    assert d[0] < 0.5 and d[1] < 0.5 and d[2] > 20
    d_in, d_ood = ood.mahalanobis(f, fit), np.array([30.0, 40.0, 0.5])
    t = ood.choose_threshold(d_in, d_ood, max_reject=0.02)
    assert (d_in > t).mean() <= 0.02 and (d_ood > t).sum() == 2


def test_cam_mean_is_the_logit_difference():
    """CAM's spatial mean = w-difference . pooled features + b-difference = log(p_pos / p_other)
    for a 2-class softmax head on global average pooling."""
    rng = np.random.default_rng(1)
    maps = rng.uniform(0, 2, (2, 4, 4, 5))
    w, b = rng.normal(size=(5, 2)), rng.normal(size=2)
    logits = maps.mean((1, 2)) @ w + b
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cam = ood.cam(maps, w, b, pos=1)
    np.testing.assert_allclose(cam.mean((1, 2)), np.log(p[:, 1] / p[:, 0]), rtol=1e-10)


def test_synthetic_ood_covers_every_kind():
    x, kinds = ood.synthetic_ood(32)
    assert x.shape == (len(kinds), 32, 32, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    assert {"uniform colour", "camera test pattern", "gaussian noise", "checkerboard"} <= set(kinds)
