"""Micro-benchmark: 2x2 max pooling, forward + backward, by memory layout and dtype.

The layer VGG's pool1 sees at 256 px ([1, 64, 256, 256], post-ReLU), one thread. PyTorch's CPU
max_pool2d is far slower on NCHW tensors than on channels_last ones, which matters for a lever
not taken yet: pooling in NHWC inside an otherwise NCHW extractor (the reorders cost two copies).

    .venv/bin/python benchmarks/ab_pool.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def ms(fn, reps: int = 10) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def pool_fwd_bwd(x: torch.Tensor) -> None:
    y = F.max_pool2d(x, 2)
    y.backward(torch.ones_like(y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base = torch.relu(torch.randn(1, 64, 256, 256))
    for dtype in (torch.float32, torch.bfloat16):
        nchw = base.to(dtype).requires_grad_(True)
        nhwc = base.to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        to_nhwc_and_back = ms(lambda: nchw.detach().contiguous(memory_format=torch.channels_last).contiguous())
        print(
            f"{str(dtype).split('.')[-1]:9s} [1, 64, 256, 256] max_pool2d fwd+bwd: NCHW {ms(lambda: pool_fwd_bwd(nchw)):.1f} ms, "
            f"channels_last {ms(lambda: pool_fwd_bwd(nhwc)):.1f} ms; one NCHW->NHWC->NCHW round trip "
            f"{to_nhwc_and_back:.1f} ms"
        )


if __name__ == "__main__":
    main()
