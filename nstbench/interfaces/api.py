"""The Python API: the commands as functions that return data (README "Python API").

    import nstbench
    r = nstbench.stylize("octopus", "hockney", preset="upes", steps=10, size=64, weights="random")
    r.image      # [1, 3, H, W] float tensor in [0, 1]
    r.history    # pandas DataFrame, one row per step (curve.csv's columns)
    r.record     # the run record (run.json's content)

`out=` writes the same files as the command line does (and takes the same lock); without it
nothing is written. Errors are nstbench.config.errors.NstbenchError with a one-line message.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..config import presets as _presets
from ..config.errors import NstbenchError
from ..nets.weights import load_backbone  # noqa: F401  (part of the API: nstbench.load_backbone)


@contextlib.contextmanager
def _keywords():
    """The library's messages name command-line options; a Python caller is told the keyword instead
    ("pass --overwrite" -> "pass overwrite=True", "--steps" -> "steps=")."""
    try:
        yield
    except NstbenchError as e:
        text = re.sub(r"--(overwrite|resume)\b", r"\1=True", str(e))
        text = re.sub(r"--([a-z][a-z-]*[a-z])", lambda m: m.group(1).replace("-", "_") + "=", text)
        raise NstbenchError(text) from None


@dataclass
class Stylized:
    image: torch.Tensor  # [1, 3, H, W] in [0, 1], on the CPU
    history: pd.DataFrame  # one row per step: step, image, total, content, style, tv, seconds
    record: dict  # what run.json holds


@dataclass
class Trained:
    history: pd.DataFrame  # loss.csv: step, epoch, images, total, content, style, tv, seconds
    record: dict  # what run.json holds
    model: Path  # transformer.pt, for apply()


@_keywords()
def stylize(
    content: str | os.PathLike,
    style: str | os.PathLike,
    preset: str = "upes",
    *,
    steps: int | None = None,
    size: int | None = None,
    init: str | None = None,
    weights: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress_every: int | None = 0,
    original_colors: bool = False,
    style_blend: list[float] | None = None,
) -> Stylized:
    """A Gatys run with a source preset (`nstbench.config.presets.PRESETS`); the overrides are the CLI's.
    `style` may be a list of images, blended by `style_blend` (weights, normalised; default equal)."""
    from ..methods.gatys import RunOptions
    from ..methods.gatys_run import Extras, override, run_stylize, write_run
    from ..nets.device import resolve_device
    from ..nets.images import space_to_unit
    from ..nets.records import run_dir

    given = {k: v for k, v in (("steps", steps), ("size", size), ("init", init)) if v is not None}
    p = override(_presets.get_preset(preset), given)
    dev = resolve_device(device)
    style = [str(x) for x in style] if isinstance(style, (list, tuple)) else str(style)
    extras = Extras(overrides=given, original_colors=original_colors, style_blend=style_blend)
    run = RunOptions(seed=seed, progress_every=progress_every, weights=weights, device=dev)
    if out is None:
        result, record = run_stylize(p, str(content), style, run, extras)
        if record["status"] != "ok":
            raise NstbenchError(record["message"])
    else:
        with run_dir(out, "stylize", overwrite) as folder:
            result, record = run_stylize(p, str(content), style, run, extras)
            write_run(folder, p, result, record)
    return Stylized(space_to_unit(result.image, p.space).detach().cpu(), pd.DataFrame(result.history), record)


@_keywords()
def train(
    style: str | os.PathLike,
    out: str | os.PathLike,
    preset: str = "hust",
    *,
    data: str = "coco100",
    steps: int | None = None,
    epochs: int | None = None,
    batch: int | None = None,
    size: int | None = None,
    weights: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    progress_every: int | None = 0,
) -> Trained:
    """Train a fast network (`nstbench.config.presets.FAST_PRESETS`) into the folder `out` (required: the
    checkpoints live there, and `resume=True` continues them)."""
    from ..config.presets import get_fast_preset, override_fast
    from ..methods.training import TrainOptions, check_training_size, train_transformer
    from ..nets.records import run_dir

    p = override_fast(get_fast_preset(preset), {"steps": steps, "epochs": epochs, "batch": batch, "size": size})
    check_training_size(p)
    with run_dir(out, "train", writes="checkpoint.pt, transformer.pt, loss.csv, run.json") as folder:
        run = TrainOptions(weights=weights, seed=seed, device=device, progress_every=progress_every, log=lambda m: None)
        record = train_transformer(p, style, data, folder, run=run, resume=resume)
    with open(folder / "loss.csv", newline="") as f:
        history = pd.DataFrame([{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)])
    return Trained(history, record, folder / "transformer.pt")


@torch.inference_mode()
@_keywords()
def apply(
    checkpoint: str | os.PathLike, content: str | os.PathLike, *, size: int | None = None, device: str = "cpu"
) -> torch.Tensor:
    """A trained network (nstbench or pytorch/examples checkpoint) on one content image: the
    stylised image, [1, 3, H, W] in [0, 1] on the CPU (what `nstbench apply` saves)."""
    from ..config.specs import Resize
    from ..methods.inference import run_network
    from ..nets.device import resolve_device
    from ..nets.images import MIN_SIDE, load_image, probe_image
    from ..nets.transformer import check_input_size, load_transformer

    dev = resolve_device(device)
    resize = Resize("long", size) if size is not None else Resize()
    wh = probe_image(content, resize, MIN_SIDE)
    net, _ = load_transformer(checkpoint)
    check_input_size(net.cfg, wh, f"content {content}")
    net.to(dev)
    x = load_image(content, resize).to(dev)
    return run_network(net, x, crop=True).clamp(0, 1).cpu()  # unit RGB at the content's size
