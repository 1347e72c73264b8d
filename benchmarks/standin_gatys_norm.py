"""gatys2016 on the stand-in, with and without Gatys' normalisation of the trunk (issue 22).

The `gatys` family's presets run the HED trunk normalised by Gatys' procedure (weights.py: each
filter divided by its mean activation over coco100, silent filters left unscaled), as vgg_conv.pth
was over ImageNet. This script runs the gatys2016 preset (white noise, average pooling, L-BFGS,
alpha/beta 1e-3) three ways at a small size, everything else equal:

  normalised   --weights hed as the preset runs it (family gatys: the normalised trunk)
  as it is     the same trunk without the normalisation (loaded as family caffe: Caffe scale)
  random       seeded random weights

and writes, per run, the SSIM of the output to the content and the final losses, plus a figure
with the outputs beside the content and the style: whether a run stylises is read off the picture.
It is evidence for a decision, not a verdict: which scale the gatys2016 balance was tuned for is
vgg_conv.pth's, and neither trunk here is that.

    python benchmarks/standin_gatys_norm.py [--size 128] [--steps 300] [--out results/bench]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from nstbench.config.presets import get_preset
from nstbench.harness.experiment import pyplot
from nstbench.methods.gatys import Diverged, RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.methods.metrics import ssim
from nstbench.nets.images import space_to_unit
from nstbench.nets.weights import load_backbone, weights_label

LEGS = (  # label, --weights, weight family
    ("hed, Gatys-normalised (as the preset runs)", "hed", "gatys"),
    ("hed as it is (no normalisation)", "hed", "caffe"),
    ("random weights", "random", "gatys"),
)


def run_leg(label: str, weights: str, family: str, size: int, steps: int) -> dict:
    preset = override(get_preset("gatys2016"), dict(size=size, steps=steps))
    content, style = load_pair(preset, "tubingen", "starry_night_gatys")
    backbone = load_backbone(preset.backbone, weights, pooling=preset.pooling, family=family)
    t0 = time.perf_counter()
    try:
        result, finite = (
            run_preset(preset, content, style, backbone, run=RunOptions(progress_every=50, label=label[:12])),
            True,
        )
    except Diverged as e:  # a non-finite loss: the result holds the last image with a finite one
        result, finite = e.result, False
        print(f"{label}: {e}")
    image, last = space_to_unit(result.image, preset.space), result.history[-1] if result.history else {}
    out = image.clamp(0, 1)
    return {
        "run": label,
        "weights": weights_label(backbone.weights),
        "size_hw": "x".join(map(str, content.shape[-2:])),
        "steps": steps,
        "finite": finite,
        "ssim_content": round(float(ssim(out, content)), 4),
        "content_loss": float(last.get("content", float("nan"))),
        "style_loss": float(last.get("style", float("nan"))),
        "seconds": round(time.perf_counter() - t0, 1),
        "_image": out,
        "_content": content,
        "_style": style,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="short side in px (the preset's: 512)")
    ap.add_argument("--steps", type=int, default=300, help="L-BFGS evaluations (the preset's: 500)")
    ap.add_argument("--out", type=Path, default=Path("results/bench"))
    args = ap.parse_args()
    rows = [run_leg(label, w, fam, args.size, args.steps) for label, w, fam in LEGS]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "standin_gatys_norm.csv", "w", newline="") as f:
        keys = [k for k in rows[0] if not k.startswith("_")]
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows({k: r[k] for k in keys} for r in rows)
    plt = pyplot()
    panels = [("content", rows[0]["_content"]), ("style", rows[0]["_style"])]
    panels += [(f"{r['run']}\nSSIM to the content {r['ssim_content']}", r["_image"]) for r in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img[0].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.suptitle(
        f"gatys2016 (white noise, L-BFGS), {args.steps} evaluations at {args.size} px: the stand-in is not the source's weights",
        fontsize=8,
    )
    fig.savefig(args.out / "standin_gatys_norm.png", dpi=110, bbox_inches="tight")
    for r in rows:
        print({k: v for k, v in r.items() if not k.startswith("_")})


if __name__ == "__main__":
    main()
