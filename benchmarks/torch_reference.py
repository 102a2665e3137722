"""The PyTorch reference of `gpu_throughput.py`: torchvision's EfficientNet, one eager SGD step.

Kept apart so the benchmark script stays about our own training path; imported lazily by it
(torch is only imported when a PyTorch measurement runs).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time


def import_torchvision():
    """Imports torchvision, tolerating a wheel whose C++ ops do not match the installed torch.

    The registries carry only CUDA builds of torchvision; with the CPU torch wheel (CI, the dev
    machine) its C++ extension does not load and `import torchvision` fails on its fake-kernel
    registration for `torchvision::nms` / `qnms`. EfficientNet needs none of those ops, so the
    two schemas are defined (without kernels) and the import retried. GPU hosts with a matching
    torchvision never take this path; the JSON records whether it was taken.
    """
    import torch

    try:
        import torchvision

        return torchvision, hasattr(torchvision, "_tfmelanoma_schema_lib")
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    torchvision._tfmelanoma_schema_lib = lib  # a dropped Library unregisters its schemas
    return torchvision, True


def torch_throughput(arch: str, args: argparse.Namespace) -> dict:
    """img/s of an eager bf16-autocast SGD step of torchvision's EfficientNet."""
    import torch

    torchvision, shimmed = import_torchvision()
    use_cuda = args.device != "cpu" and torch.cuda.is_available()
    if args.device == "gpu" and not use_cuda:
        raise RuntimeError("--device gpu but torch.cuda.is_available() is False")
    device = torch.device("cuda" if use_cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = getattr(torchvision.models, f"efficientnet_{arch}")(weights=None, num_classes=2)
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    shape = (args.batch, 3, args.image_size, args.image_size)
    x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (args.batch,), device=device)

    def sync() -> None:
        if use_cuda:
            torch.cuda.synchronize()

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    sync()
    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - start
    result = {
        "images_per_second": args.steps * args.batch / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "first_step_s": first,
        "final_loss": float(loss.detach()),
        "device": torch.cuda.get_device_name() if use_cuda else platform.processor() or "cpu",
        "torchvision_shim": shimmed,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if use_cuda else None,
    }
    return result  # the caller frees the GPU memory once the model is out of scope
