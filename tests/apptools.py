"""Checkpoints for the app tests: a tiny nstbench network trained for two steps, and a
pytorch/examples-style state dict (freshly initialised), both cheap on random weights."""

import dataclasses
from pathlib import Path

import torch

from nstbench.config.sources import FAST_HUST
from nstbench.config.variants import get_variant
from nstbench.methods.training import TrainOptions, train_transformer
from nstbench.nets.transformer import build_transformer

APP_PAGE = Path(__file__).resolve().parents[1] / "nstbench" / "interfaces" / "app_page.py"


def make_models(root: Path, vgg19) -> Path:
    """root/hust-udnie/transformer.pt (hust preset at 32 px, 2 steps, batch 2, 4 coco100 images),
    root/mosaic.pth (pytorch/examples TransformerNet state dict) and root/broken.pth (not a checkpoint)."""
    tiny = dataclasses.replace(FAST_HUST, size=32, steps=2, batch=2, max_images=4, style_size=64)
    train_transformer(tiny, "udnie", "coco100", root / "hust-udnie", backbone=vgg19, run=TrainOptions(progress_every=0))
    torch.save(build_transformer(get_variant("pytorch-examples"), seed=1).state_dict(), root / "mosaic.pth")
    (root / "broken.pth").write_bytes(b"not a checkpoint")
    return root
