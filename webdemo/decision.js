// Probabilities -> what the page shows: calibrated P(melanoma), normalised entropy, decision.
// The same formulas as tfmelanoma.evaluation (calibration.apply_temperature,
// uncertainty.normalized_entropy / retained_mask); tests/webdemo checks them against Python.
// A classic script (no modules: file:// pages cannot load ES modules), also require()-able.
(function (root) {
  'use strict';
  const EPS = 1e-12; // tfmelanoma.evaluation.probs.EPS

  /** H(p) / ln K in [0, 1]; 0 ln 0 = 0. */
  function normalisedEntropy(p) {
    let h = 0;
    for (const q of p) if (q > 0) h -= q * Math.log(q);
    return Math.min(1, Math.max(0, h / Math.log(p.length)));
  }

  /** softmax(ln p / T): temperature scaling with log-probabilities standing in for logits. */
  function applyTemperature(p, temperature) {
    const z = p.map((q) => Math.log(Math.min(1, Math.max(q, EPS))) / temperature);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  /**
   * The decision for one image.
   * @param {number[]} probs model output, in meta.class_names order.
   * @param {object} meta the model's meta.json.
   */
  function decide(probs, meta) {
    const u = meta.uncertainty;
    const calibrated = applyTemperature(probs, u.temperature);
    const entropy = normalisedEntropy(u.reject_on_calibrated ? calibrated : probs);
    let top = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[top]) top = i;
    const mel = meta.class_names.indexOf(meta.positive_class);
    const uncertain = entropy > u.entropy_threshold;
    return {
      probs,
      calibrated,
      entropy,
      threshold: u.entropy_threshold,
      pMelanoma: calibrated[mel],
      predicted: meta.class_names[top],
      decision: uncertain ? 'uncertain' : meta.class_names[top],
    };
  }

  /**
   * The uncertain band on the shown (calibrated) melanoma-score scale, [lo, hi], for a 2-class
   * model: the scores whose entropy exceeds the threshold (bisection on the binary entropy).
   * @param {object} meta the model's meta.json.
   */
  function uncertainBand(meta) {
    const u = meta.uncertainty;
    let a = 0;
    let b = 0.5;
    for (let i = 0; i < 60; i++) {
      const m = (a + b) / 2;
      if (normalisedEntropy([m, 1 - m]) > u.entropy_threshold) b = m;
      else a = m;
    }
    if (u.reject_on_calibrated) return [b, 1 - b];
    const mel = meta.class_names.indexOf(meta.positive_class);
    const edge = (p) => applyTemperature(mel === 1 ? [1 - p, p] : [p, 1 - p], u.temperature)[mel];
    return [edge(b), edge(1 - b)];
  }

  const api = { normalisedEntropy, applyTemperature, decide, uncertainBand };
  root.TfmDecision = api;
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
})(typeof self !== 'undefined' ? self : globalThis);
