"""One Gatys run from a preset: images in, stylised image, loss curve and run record out."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config.errors import NstbenchError
from ..config.specs import GatysPreset, OptimizerSpec, Resize
from ..nets.backbones import Backbone, build_model, make_extractor
from ..nets.device import activation_bytes, check_memory
from ..nets.images import image_format, load_image, probe_image, save_image, space_bounds, space_to_unit, unit_to_space
from ..nets.images import original_colors as keep_colors
from ..nets.precision import require_native_bf16
from ..nets.records import ensure_writable_dir, provenance, run_dir, write_csv, write_json
from ..nets.weights import load_backbone
from .gatys import (
    Diverged,
    Interrupted,
    Mix,
    OptimizeResult,
    RunOptions,
    initial_image,
    make_gatys_loss,
    optimize_image,
)
from .perceptual import blend_weights

CURVE_COLUMNS = ["step", "image", "total", "content", "style", "tv", "seconds"]
# run.json "final" is measured once more after the last update; curve.csv's rows (and the
# progress lines) hold the loss of the image *before* each update, so the two differ by a step.
FINAL_IS = (
    "losses of the last image, measured after the last update; curve.csv's last row "
    "(last_curve_row) measured the image before that update"
)


def load_pair(preset: GatysPreset, content: str, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Content and style as the preset's source loads them (unit-space [1, 3, H, W])."""
    c = load_image(content, preset.content_resize)
    s = load_image(style, preset.style_resize or Resize("exact", tuple(c.shape[-2:])))
    if preset.init not in INITS:  # an init image is checked with the others, before any work
        probe_image(preset.init, Resize("exact", tuple(c.shape[-2:])), min_side=1)
    for what, name, x, least in (("content", content, c, MIN_CONTENT_SIDE), ("style", style, s, MIN_STYLE_SIDE)):
        if min(x.shape[-2:]) < least:
            raise NstbenchError(
                f"{what} image {name} is {x.shape[-1]}x{x.shape[-2]} after resizing; the backbones "
                f"need at least {least} px on each side for a {what} image"
            )
    return c, s


INITS = ("content", "noise", "style")  # anything else is an image path
MIN_CONTENT_SIDE = 32  # the content (and so the output) passes all five 2x poolings of VGG
MIN_STYLE_SIDE = 16  # relu5_1, the deepest style layer, follows four 2x poolings: 16 px -> 1 px


def run_preset(
    preset: GatysPreset,
    content: torch.Tensor,
    style: torch.Tensor,
    backbone: Backbone,
    *,
    run: RunOptions = RunOptions(),
    batch: int = 1,
    mix: Mix = Mix(),
    init_image: torch.Tensor | None = None,
) -> OptimizeResult:
    """Optimise with the preset's settings on already-loaded images (on their device); `style` may
    be a list of images blended by mix.style_blend (init "style" starts from the first); mix's
    alpha/beta/gamma override the preset's (per image of the batch when sequences). run
    (gatys.RunOptions): the seed, compute (the backbone's dtype and memory layout), progress lines
    (run.progress_every: every N steps, 0 none, None every 10 s; the preset's print_every is its
    source's print interval, a record of the source, not nstbench's progress), on_step and
    sync_every (see optimize_image). init_image: a unit-space start (a coarser scale's result)."""
    loss_fn = make_gatys_loss(backbone, content, style, preset.loss, preset.space, mix, run.compute, preset.feed)
    if init_image is not None:  # unit RGB (a coarser scale's result): bicubic to the content's (H, W)
        up = torch.nn.functional.interpolate(
            init_image, size=tuple(content.shape[-2:]), mode="bicubic", align_corners=False
        ).clamp(0, 1)
        x0 = unit_to_space(up, preset.space).repeat(batch, 1, 1, 1).contiguous()
    elif preset.init in INITS:
        first = style[0] if isinstance(style, (list, tuple)) else style
        x0 = initial_image(preset.init, content, first, preset.space, seed=run.seed, batch=batch)
    else:  # an image file: resized to the content's (H, W)
        img = load_image(preset.init, Resize("exact", tuple(content.shape[-2:]))).to(content.device)
        x0 = unit_to_space(img, preset.space).repeat(batch, 1, 1, 1).contiguous()
    clamp = space_bounds(preset.space, x0) if preset.clamp else None
    return optimize_image(
        loss_fn,
        x0,
        preset.steps,
        preset.optimizer,
        clamp=clamp,
        keep_best=preset.keep_best,
        keep_best_as=preset.keep_best_as,
        run=replace(run, label=run.label or preset.name),
    )


@torch.no_grad()
def initial_loss(
    preset: GatysPreset, content: torch.Tensor, style: torch.Tensor, backbone: Backbone, *, seed: int = 0
) -> dict[str, float]:
    """The unweighted loss terms of the preset's initial image (clamped as optimize_image clamps it)."""
    loss_fn = make_gatys_loss(backbone, content, style, preset.loss, preset.space)
    x0 = initial_image(preset.init, content, style, preset.space, seed=seed)
    if preset.clamp:
        lo, hi = space_bounds(preset.space, x0)
        x0 = torch.max(torch.min(x0, hi), lo)
    return {k: float(v[0]) for k, v in loss_fn(x0).items()}


def stylize_to_folder(
    preset: GatysPreset,
    content: str,
    style: str | list[str],
    out: str | Path,
    *,
    run: RunOptions = RunOptions(),
    extras: "Extras | None" = None,
    overwrite: bool = False,
    allow_slow_bf16: bool = False,
) -> dict:
    """The `nstbench stylize` command: writes out/output.png, out/curve.csv, out/run.json.

    `out` is a folder; one that already holds a finished stylize run is replaced only with
    overwrite=True (and only once the new run has finished). One writer at a time (a lock file).
    bf16 on a device that would only emulate it is refused before any work (precision.py) unless
    allow_slow_bf16. run.on_step: see optimize_image (an exception it raises ends the run)."""
    bf16_note = require_native_bf16(run.device, allow_slow_bf16) if run.compute.dtype == "bfloat16" else None
    with run_dir(out, "stylize", overwrite) as folder:
        extras = dataclasses.replace(extras or Extras(), save_dir=folder / "steps")
        result, record = run_stylize(preset, content, style, run, extras)
        if bf16_note:
            record["compute"]["bf16_support"] = bf16_note
        return write_run(folder, preset, result, record)


@dataclass(frozen=True)
class Extras:
    """What `nstbench stylize` adds to a preset run. overrides: option -> value, recorded (a run
    with any is not the preset as its source ran it). original_colors: the result keeps the
    content's colours (images.original_colors). output: the image's file name in the run folder
    (its suffix picks the format). style_blend: weights of several style images
    (gatys.make_gatys_loss). save_every: every N steps the step's image goes to
    save_dir/step_<N>.png (neural-style's -save_iter)."""

    overrides: dict = field(default_factory=dict)
    original_colors: bool = False
    output: str = "output.png"
    style_blend: list[float] | None = None
    save_every: int = 0
    save_dir: Path | None = None
    scales: tuple[int, ...] | None = None  # working sizes, coarse to fine: each result starts the next

    def check(self, styles: int) -> None:
        if self.save_every and self.save_dir is None:
            raise NstbenchError("--save-every needs an output folder")
        if Path(self.output).name != self.output or not Path(self.output).suffix:
            raise NstbenchError(
                f"--output {self.output!r} must be a file name with a suffix (e.g. result.jpg), no folder"
            )
        image_format(self.output)
        if self.scales is not None and list(self.scales) != sorted(set(self.scales)):
            raise NstbenchError(f"--scales must grow from coarse to fine, got {','.join(map(str, self.scales))}")
        if self.style_blend is not None and len(self.style_blend) != styles:
            raise NstbenchError(f"--style-blend has {len(self.style_blend)} weight(s) for {styles} --style image(s)")
        if self.style_blend is not None:
            blend_weights(self.style_blend, styles)  # a zero sum: refused here, before the backbone loads


def run_stylize(
    preset: GatysPreset,
    content: str,
    style: str | list[str],
    run: RunOptions,
    extras: Extras = Extras(),
    backbone: Backbone | None = None,
    init_image: torch.Tensor | None = None,
) -> tuple[OptimizeResult, dict]:
    """Load, check and optimise (nothing written): the result and its run record, whose status
    is "ok", "diverged" or "interrupted" (then result.image is the last image with a finite loss).
    style: one image or a list (blended by extras.style_blend); extras.scales: run_scales."""
    names = [str(x) for x in style] if isinstance(style, (list, tuple)) else [str(style)]
    extras.check(len(names))
    if extras.scales and init_image is None and backbone is None:
        return run_scales(preset, content, names, run, extras)
    dev = run.device
    _check_memory(preset, content, dev)
    c, s = load_pair(preset, content, names[0])
    styles = [s] + [load_pair(preset, content, n)[1] for n in names[1:]]  # each checked before any work
    if backbone is None:
        backbone = load_backbone(
            preset.backbone, run.weights, seed=run.seed, pooling=preset.pooling, family=preset.weights
        ).to(dev)
    record = _record(preset, content, names, c, styles, run, backbone, extras)
    if not extras.scales:  # said once, before the work (run_scales says it for its finest scale)
        _warn_if_upscaled(preset, content, record)
    status, message = "ok", ""
    try:
        result = run_preset(
            preset,
            c.to(dev),
            [x.to(dev) for x in styles] if len(styles) > 1 else s.to(dev),
            backbone,
            run=replace(
                run,
                on_step=_observers(
                    _saver(extras.save_every, extras.save_dir, preset.space) if extras.save_every else None, run.on_step
                ),
            ),
            mix=Mix(style_blend=extras.style_blend),
            init_image=init_image,
        )
    except Diverged as e:
        result, status, message = e.result, "diverged", str(e)
    except Interrupted as e:  # Ctrl-C: the partial result is saved too (write_run raises afterwards)
        result, status, message = e.result, "interrupted", str(e)
    if extras.original_colors:  # a post-process of the result (neural-style does the same), losses untouched
        result.image = unit_to_space(keep_colors(c.to(dev), space_to_unit(result.image, preset.space)), preset.space)
    record.update(
        status=status,
        message=message,
        seconds=result.seconds,
        final=result.final,
        final_is=FINAL_IS,
        last_curve_row=result.history[-1] if result.history else None,
        evaluations=len(result.history),  # loss evaluations (curve rows): the while loop's exceed `steps`
        best_step=result.best_step,
    )
    return result, record


def _upscaled(content: str, c: torch.Tensor) -> tuple[list[int], bool]:
    """The content file's own (H, W) (from its header) and whether the working size enlarges it."""
    w, h = probe_image(content, Resize(), min_side=1)
    return [h, w], c.shape[-2] > h or c.shape[-1] > w


def _warn_if_upscaled(preset: GatysPreset, content: str, record: dict) -> None:
    """A warning, not a refusal: the sources enlarge small images themselves (UPES' load_image sets
    the short side to the long side; torchvision's Resize(512) enlarges a smaller image), so a
    preset must run as its source did without an extra flag; the pixel limit and the memory check
    already refuse what cannot run. What was silent is the enlargement and its cost: said here,
    before the work, and recorded (run.json `upscaled`, `working_size_hw`)."""
    if record["upscaled"]:
        (h, w), (H, W) = record["content_image_size_hw"], record["working_size_hw"]
        print(
            f"nstbench: warning: content {content} is {h}x{w} px (H x W); {preset.name} at size "
            f"{preset.content_resize.size} ({preset.content_resize.sets()}) enlarges it to {H}x{W}: no detail "
            "is added, and the time grows with the pixel count",
            file=sys.stderr,
        )


def _check_memory(preset: GatysPreset, content: str, dev: torch.device) -> None:
    """Refuse a run whose activations cannot fit, at once: the working size from the content's
    header (no decode) and the activations from the architecture built on the meta device (shapes
    only: no weights loaded, no memory taken)."""
    w, h = probe_image(content, preset.content_resize, min_side=1)  # too small: load_pair says so
    with torch.device("meta"):
        extractor = make_extractor(build_model(preset.backbone), preset.backbone, preset.pooling)
    layers = [n for n, _ in preset.loss.content_layers + preset.loss.style_layers]
    check_memory(activation_bytes(extractor, layers, (h, w)), dev, f"a {w}x{h} {preset.backbone} optimisation")


def run_scales(
    preset: GatysPreset, content: str, names: list[str], run: RunOptions, extras: Extras
) -> tuple[OptimizeResult, dict]:
    """Multi-scale: the preset at each of extras.scales (working sizes, coarse to fine) for its
    steps, each scale starting from the previous result upsampled (bicubic). Every scale's inputs
    and the finest scale's memory are checked before any work. curve.csv's steps run on across
    scales; run.json's `scales` says which steps ran at which size."""
    presets = [override(preset, {"size": n}) for n in extras.scales]
    _check_memory(presets[-1], content, run.device)
    for p in presets:
        load_pair(p, content, names[0])
    backbone = load_backbone(
        preset.backbone, run.weights, seed=run.seed, pooling=preset.pooling, family=preset.weights
    ).to(run.device)
    finest = load_pair(presets[-1], content, names[0])[0]
    size_hw, upscaled = _upscaled(content, finest)
    _warn_if_upscaled(
        presets[-1],
        content,
        {"content_image_size_hw": size_hw, "working_size_hw": list(finest.shape[-2:]), "upscaled": upscaled},
    )
    image, history, parts, seconds = None, [], [], 0.0
    for k, p in enumerate(presets):
        last = k == len(presets) - 1
        ex = replace(
            extras,
            original_colors=extras.original_colors and last,
            save_dir=extras.save_dir and extras.save_dir / f"scale_{extras.scales[k]}",
        )
        result, record = run_stylize(p, content, names, run, ex, backbone=backbone, init_image=image)
        history += [dict(r, step=r["step"] + len(history)) for r in result.history]
        seconds += result.seconds
        parts.append(
            {"size": extras.scales[k], "steps": len(result.history), "content_size_hw": record["content_size_hw"]}
        )
        if record["status"] != "ok" or last:
            break
        image = space_to_unit(result.image, p.space)
    result.history, result.seconds = history, seconds
    record.update(
        scales=parts, seconds=seconds, last_curve_row=history[-1] if history else None, evaluations=len(history)
    )
    return result, record


def _record(
    preset: GatysPreset,
    content: str,
    names: list[str],
    c: torch.Tensor,
    styles: list[torch.Tensor],
    run: RunOptions,
    backbone: Backbone,
    extras: Extras,
) -> dict:
    one = len(names) == 1
    image_hw, upscaled = _upscaled(content, c)
    return {
        "command": "stylize",
        "preset": dataclasses.asdict(preset),
        "preset_modified": bool(extras.overrides),
        "overrides": dict(extras.overrides),
        "content": str(content),
        "style": names[0] if one else names,
        **({} if one else {"style_blend": extras.style_blend}),
        "content_size_hw": list(c.shape[-2:]),
        "working_size_hw": list(c.shape[-2:]),  # the size that ran: what --size (content_resize) gave this image
        "content_image_size_hw": image_hw,  # the content file's own size
        "upscaled": upscaled,
        "style_size_hw": list(styles[0].shape[-2:]) if one else [list(x.shape[-2:]) for x in styles],
        "seed": run.seed,
        "compute": dataclasses.asdict(run.compute),
        "weights": backbone.weights,
        "curve_terms": "content, style and tv are unweighted; total = alpha*content + beta*style + gamma*tv",
        "output": extras.output,
        "original_colors": extras.original_colors,
        "save_every": extras.save_every,
        "provenance": provenance(run.device),
    }


def _observers(*fns):
    """One on_step callback that calls each given one (None: there is none)."""
    fns = [f for f in fns if f is not None]
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]

    def every(step, x, losses):
        for f in fns:
            f(step, x, losses)

    return every


def _saver(every: int, folder: Path, space):
    """on_step for optimize_image: every `every` steps, that step's image as folder/step_<N>.png."""

    def save(step: int, image: torch.Tensor, losses: dict) -> None:
        if step % every == 0:
            ensure_writable_dir(folder)
            save_image(space_to_unit(image, space).detach().cpu(), folder / f"step_{step:05d}.png")

    return save


def write_run(out: Path, preset: GatysPreset, result: OptimizeResult, record: dict) -> dict:
    """output.png, curve.csv and run.json into `out`, together; a failed run raises after writing."""
    status, message = record["status"], record["message"]
    if status != "ok" and _finished_ok(out):
        out = ensure_writable_dir(out / status)  # a failed rerun never replaces a finished result
    # the three files are written to a temp folder first and moved in together: an interrupted
    # write leaves the earlier set (or nothing), never a mix of two runs
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-stylize-", dir=out))
    try:
        image = record.get("output", "output.png")
        save_image(space_to_unit(result.image, preset.space), tmp / image)
        write_csv(tmp / "curve.csv", result.history, CURVE_COLUMNS)
        write_json(tmp / "run.json", record)
        for name in ("curve.csv", image, "run.json"):  # run.json last: it marks the set complete
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if status == "interrupted":
        raise KeyboardInterrupt(f"{message}; wrote it to {out / image}")
    if status != "ok":
        raise NstbenchError(f"{message}; wrote it to {out / image}")
    return record


def _finished_ok(out: Path) -> bool:
    try:
        return json.loads((out / "run.json").read_text()).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


# the stylize options that change the preset (run.json records them as overrides)
OVERRIDES = ("steps", "size", "init", "content_weight", "style_weight", "tv_weight", "optimizer", "lr")


def override(preset: GatysPreset, changes: Mapping[str, Any]) -> GatysPreset:
    """The CLI's overrides, option name -> value (OVERRIDES; None: not given): another step count,
    working size (resize mode kept), init (content, noise, style or an image path), loss weights
    (content_weight, style_weight, tv_weight: alpha, beta, gamma), optimizer or learning rate."""
    unknown = sorted(set(changes) - set(OVERRIDES))
    if unknown:  # a misspelt option would otherwise be dropped without a word
        raise TypeError(f"override() got unknown option(s) {', '.join(unknown)}; valid: {', '.join(OVERRIDES)}")
    steps, size, init, content_weight, style_weight, tv_weight, optimizer, lr = (changes.get(k) for k in OVERRIDES)
    loss = {k: v for k, v in (("alpha", content_weight), ("beta", style_weight), ("gamma", tv_weight)) if v is not None}
    if loss:
        preset = replace(preset, loss=replace(preset.loss, **loss))
    if optimizer is not None and optimizer != preset.optimizer.name:
        if optimizer not in ("adam", "lbfgs"):
            raise NstbenchError(f"unknown optimizer {optimizer!r}; valid: adam, lbfgs")
        preset = replace(preset, optimizer=OptimizerSpec(optimizer, lr=preset.optimizer.lr if lr is None else lr))
    elif lr is not None:
        preset = replace(preset, optimizer=replace(preset.optimizer, lr=lr))
    if steps is not None:
        preset = replace(preset, steps=steps)
    if size is not None:
        if preset.content_resize.mode in ("none", "exact"):
            raise NstbenchError(
                f"preset {preset.name} resizes by {preset.content_resize.mode!r}; --size does not apply"
            )
        preset = replace(
            preset,
            content_resize=replace(preset.content_resize, size=size),
            style_resize=None if preset.style_resize is None else replace(preset.style_resize, size=size),
        )
    if init is not None:
        preset = replace(preset, init=init)
    return preset
