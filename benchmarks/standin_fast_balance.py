"""Which output a fast preset's loss prefers on a weight set (issue 22: the app's flat colour).

A fast network is trained to minimise its preset's perceptual loss (content + style + TV). This
script evaluates that loss, for one content image and the preset's style, on four candidate
outputs: the content itself, the style image resized to the content's size, a flat image in the
style's mean colour, and uniform noise. Where the flat image scores lowest, a network trained on
that loss is pulled towards a flat colour whatever its training length: that is the loss balance
on these weights, not a training bug. Prints one row per candidate; writes nothing.

    python benchmarks/standin_fast_balance.py [--preset hust] [--weights hed] [--style mosaic]
"""

from __future__ import annotations

import argparse

import torch

from nstbench.config.presets import get_fast_preset
from nstbench.config.specs import Resize
from nstbench.methods.perceptual import PerceptualLoss
from nstbench.nets.images import load_image
from nstbench.nets.weights import load_backbone, weights_label


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="hust")
    ap.add_argument("--weights", default="hed")
    ap.add_argument("--style", default="mosaic")
    ap.add_argument("--content", default="chelsea")
    ap.add_argument("--size", type=int, default=256, help="the content's side (the preset trains on squares)")
    args = ap.parse_args()
    p = get_fast_preset(args.preset)
    backbone = load_backbone(p.backbone, args.weights, family=p.weights)
    style = load_image(args.style, Resize("long", 512, "bilinear"))  # the app's style size is irrelevant to Grams/(CHW)
    content = load_image(args.content, Resize("exact", (args.size, args.size), "bilinear"))
    loss = PerceptualLoss(backbone, style, p.loss, p.tv_batch)
    candidates = {
        "content": content,
        "style, resized": torch.nn.functional.interpolate(
            style, size=content.shape[-2:], mode="bilinear", antialias=True
        ),
        "flat, style's mean colour": torch.ones_like(content) * style.mean(dim=(2, 3), keepdim=True),
        "uniform noise": torch.rand(content.shape, generator=torch.Generator().manual_seed(0)),
    }
    print(f"{args.preset} loss on {weights_label(backbone.weights)}; content {args.content}, style {args.style}")
    print(f"lambdas: content {p.loss.alpha}, style {p.loss.beta}, tv {p.loss.gamma}")
    for name, y in candidates.items():
        t = {k: float(v) for k, v in loss(y, content).items()}
        print(
            f"{name:28s} total {t['total']:10.1f}  content {t['content']:8.2f}  style {t['style']:8.2f}  tv {t['tv']:8.2f}"
        )


if __name__ == "__main__":
    main()
