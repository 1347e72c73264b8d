"""One Gatys run from a preset: images in, stylised image, loss curve and run record out."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from .backbones import Backbone
from .errors import NstbenchError
from .gatys import Compute, Diverged, OptimizeResult, initial_image, make_gatys_loss, optimize_image
from .images import Resize, load_image, save_image, space_bounds, space_to_unit
from .precision import require_native_bf16
from .presets import GatysPreset
from .records import ensure_writable_dir, provenance, write_csv, write_json
from .weights import load_backbone

CURVE_COLUMNS = ["step", "image", "total", "content", "style", "tv", "seconds"]


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NstbenchError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise NstbenchError(f"unknown device {device!r}; use cpu or cuda") from None


def load_pair(preset: GatysPreset, content: str, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Content and style as the preset's source loads them (unit-space [1, 3, H, W])."""
    c = load_image(content, preset.content_resize)
    s = load_image(style, preset.style_resize or Resize("exact", tuple(c.shape[-2:])))
    if min(c.shape[-2:]) < 32:
        raise NstbenchError(f"content image {content} is {c.shape[-1]}x{c.shape[-2]} after resizing; "
                            "the backbones need at least 32 px on each side")
    return c, s


def run_preset(
    preset: GatysPreset,
    content: torch.Tensor,
    style: torch.Tensor,
    backbone: Backbone,
    *,
    seed: int = 0,
    batch: int = 1,
    alpha=None,
    beta=None,
    gamma=None,
    progress_every: int | None = None,
    label: str | None = None,
    compute: Compute = Compute(),
    on_step=None,
) -> OptimizeResult:
    """Optimise with the preset's settings on already-loaded images (on their device); `compute`
    (gatys.Compute) picks the backbone's dtype and memory layout; on_step: see optimize_image."""
    loss_fn = make_gatys_loss(backbone, content, style, preset.loss, preset.space, alpha, beta, gamma, compute,
                              feed=preset.feed)
    x0 = initial_image(preset.init, content, style, preset.space, seed=seed, batch=batch)
    clamp = space_bounds(preset.space, x0) if preset.clamp else None
    return optimize_image(loss_fn, x0, preset.steps, preset.optimizer, clamp=clamp, keep_best=preset.keep_best,
                          progress_every=preset.print_every if progress_every is None else progress_every,
                          label=label or preset.name, keep_best_as=preset.keep_best_as, on_step=on_step)


def stylize(
    preset: GatysPreset,
    content: str,
    style: str,
    out: str | Path,
    *,
    weights: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    progress_every: int | None = None,
    compute: Compute = Compute(),
    allow_slow_bf16: bool = False,
    on_step=None,
) -> dict:
    """The `nstbench stylize` command: writes out/output.png, out/curve.csv, out/run.json.
    bf16 on a device that would only emulate it is refused before any work (precision.py)
    unless allow_slow_bf16. on_step: see optimize_image (an exception it raises ends the run
    before anything is written)."""
    dev = resolve_device(device)
    bf16_note = require_native_bf16(dev, allow_slow_bf16) if compute.dtype == "bfloat16" else None
    out = ensure_writable_dir(Path(out))
    c, s = load_pair(preset, content, style)
    backbone = load_backbone(preset.backbone, weights, seed=seed, pooling=preset.pooling, family=preset.weights)
    backbone.to(dev)
    record = {
        "command": "stylize",
        "preset": dataclasses.asdict(preset),
        "content": str(content),
        "style": str(style),
        "content_size_hw": list(c.shape[-2:]),
        "style_size_hw": list(s.shape[-2:]),
        "seed": seed,
        "compute": dataclasses.asdict(compute) | ({"bf16_support": bf16_note} if bf16_note else {}),
        "weights": backbone.weights,
        "curve_terms": "content, style and tv are unweighted; total = alpha*content + beta*style + gamma*tv",
        "provenance": provenance(dev),
    }
    status, message = "ok", ""
    try:
        result = run_preset(preset, c.to(dev), s.to(dev), backbone, seed=seed, progress_every=progress_every,
                            compute=compute, on_step=on_step)
    except Diverged as e:
        result, status, message = e.result, "diverged", str(e)
    record.update(status=status, message=message, seconds=result.seconds, final=result.final,
                  best_step=result.best_step)
    if status != "ok" and _finished_ok(out):
        out = ensure_writable_dir(out / "diverged")  # a failed rerun never replaces a finished result
    # the three files are written to a temp folder first and moved in together: an interrupted
    # write leaves the earlier set (or nothing), never a mix of two runs
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-stylize-", dir=out))
    try:
        save_image(space_to_unit(result.image, preset.space), tmp / "output.png")
        write_csv(tmp / "curve.csv", result.history, CURVE_COLUMNS)
        write_json(tmp / "run.json", record)
        for name in ("curve.csv", "output.png", "run.json"):  # run.json last: it marks the set complete
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if status != "ok":
        raise NstbenchError(f"{message}; wrote it to {out / 'output.png'}")
    return record


def _finished_ok(out: Path) -> bool:
    try:
        return json.loads((out / "run.json").read_text()).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


def override(preset: GatysPreset, steps: int | None = None, size: int | None = None, init: str | None = None) -> GatysPreset:
    """The CLI's overrides: another step count, working size (resize mode kept) or init."""
    if steps is not None:
        preset = replace(preset, steps=steps)
    if size is not None:
        if preset.content_resize.mode in ("none", "exact"):
            raise NstbenchError(f"preset {preset.name} resizes by {preset.content_resize.mode!r}; --size does not apply")
        preset = replace(preset, content_resize=replace(preset.content_resize, size=size),
                         style_resize=None if preset.style_resize is None else replace(preset.style_resize, size=size))
    if init is not None:
        preset = replace(preset, init=init)
    return preset
