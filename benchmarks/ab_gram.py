"""A/B: nstbench's Gram (one-matmul backward, losses._Gram) against autograd through bmm(F, F^T).

Whole Gatys iterations of the `upes` preset (square octopus / hockney, seeded random VGG19), fp32
and bf16, the two Gram versions alternating run by run in one process; the first iteration of
every run is dropped. Prints median seconds per iteration, the ratio and the final losses.

    .venv/bin/python benchmarks/ab_gram.py [--px 256] [--steps 6] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from nstbench.config.compute import Compute
from nstbench.config.sources import UPES
from nstbench.config.specs import Resize
from nstbench.methods.gatys import RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.nets import losses
from nstbench.nets.weights import load_backbone


def autograd_gram(f: torch.Tensor, norm: losses.GramNorm = "none") -> torch.Tensor:
    """The plain formulation: autograd differentiates the bmm (two products and an add)."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    g = torch.bmm(flat, flat.transpose(1, 2))
    return {"none": g, "hw": g / (h * w), "chw": g / (c * h * w)}[norm]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    backbone = load_backbone("vgg19", "random", seed=0)
    preset = override(replace(UPES, content_resize=Resize("exact", (a.px, a.px), "bilinear")), dict(steps=a.steps))
    content, style = load_pair(preset, "octopus", "hockney")
    versions = {"nstbench": losses.gram, "autograd": autograd_gram}
    times, finals = {}, {}
    for r in range(a.rounds):
        for name in list(versions) if r % 2 == 0 else list(versions)[::-1]:
            for dtype in ("float32", "bfloat16"):
                losses.gram = versions[name]  # style_loss looks the module attribute up at call time
                res = run_preset(
                    preset, content, style, backbone, run=RunOptions(progress_every=0, compute=Compute(dtype))
                )
                clock = [h["seconds"] for h in res.history]
                times.setdefault((name, dtype), []).extend(b - t for t, b in zip(clock, clock[1:]))
                finals[(name, dtype)] = res.history[-1]["total"]
    losses.gram = versions["nstbench"]
    for dtype in ("float32", "bfloat16"):
        new, old = (statistics.median(times[(n, dtype)]) for n in ("nstbench", "autograd"))
        print(
            f"{a.px} px {dtype}: autograd Gram {old:.3f} s/iter, nstbench Gram {new:.3f} s/iter, "
            f"speed-up {old / new:.3f}x; final totals {finals[('autograd', dtype)]:.7g} / "
            f"{finals[('nstbench', dtype)]:.7g}"
        )


if __name__ == "__main__":
    main()
