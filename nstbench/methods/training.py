"""Training a fast network (Johnson et al. 2016) for one style: `nstbench train`.

`train_transformer` trains one network on a folder of images (data.ImageFolderData) with the
perceptual loss (perceptual.PerceptualLoss) of a fast preset (specs.FastPreset); `train_and_apply`
trains and stylises one content image, as the experiments' sweeps need.

Output folder of a training run:
  checkpoint.pt  the latest state (network, optimizer, step, RNG), for `--resume`; rewritten
                 every `checkpoint_every` steps and at the end
  transformer.pt the final network with its metadata (no optimizer state), for `nstbench apply`
  loss.csv       one row per step: step, epoch, images, total, content, style, tv, seconds
                 (content/style/tv unweighted and reduced over the batch as in the total)
  run.json       every setting, the backbone weights used, the data, timings, provenance
Both .pt files hold kind="nstbench-transformer", the network variant, the preset, the backbone
weights record, the data description, the style image (path, sha256) and provenance.

Resuming: the data order depends only on (seed, step), the network and Adam state are restored
from the checkpoint, so a resumed run ends with the same weights as an uninterrupted one (under the
same `compute`, which a resumption must therefore keep).

compute (compute.Compute): how the step runs, never what it computes. bfloat16 runs the
transformer's forward and the loss network under autocast (mixed precision; bf16 has fp32's
exponent range, so unlike fp16 it needs no loss scaling); the network's weights, Adam's state,
the Grams and the losses stay fp32. channels_last stores the transformer's weights and its input
NHWC (tensor cores and oneDNN run NHWC convolutions without reorders). The default is plain fp32
NCHW, bit for bit the trainer without these options.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..config.compute import Compute
from ..config.errors import NstbenchError
from ..config.presets import network_config
from ..config.specs import FastPreset, Resize
from ..config.variants import TransformerConfig
from ..nets.assets import resolve_dataset, resolve_image, sha256_of
from ..nets.backbones import Backbone
from ..nets.data import ImageFolderData
from ..nets.device import resolve_device
from ..nets.images import load_image
from ..nets.precision import bf16_support
from ..nets.records import atomic_write, ensure_writable_dir, provenance, to_jsonable, write_csv, write_json
from ..nets.transformer import (
    CHECKPOINT_KIND,
    build_transformer,
    check_input_size,
    load_state,
    load_transformer,
    read_checkpoint,
)
from ..nets.weights import load_backbone
from .perceptual import PerceptualLoss

LOSS_COLUMNS = ["step", "epoch", "images", "total", "content", "style", "tv", "seconds"]


def total_steps(preset: FastPreset, batches_per_epoch: int) -> int:
    return preset.steps if preset.steps is not None else preset.epochs * batches_per_epoch


def check_training_size(preset: FastPreset) -> None:
    """The training size fits the data pipeline (a multiple of 4) and the network (its input padding):
    checked by the command, the API and train_transformer before anything is loaded or written."""
    ImageFolderData.check_size(preset.size)
    check_input_size(network_config(preset), (preset.size, preset.size), f"the training size {preset.size} px")


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fingerprint(
    preset: FastPreset, cfg: TransformerConfig, seed: int, style: dict, data: dict, weights: dict, compute: Compute
) -> dict:
    """What must not change between a run and its resumption (step counts may: they extend a run).
    `compute` only where it is not the default, so that fp32 checkpoints of earlier versions resume."""
    p = dataclasses.asdict(preset)
    for k in ("steps", "epochs", "checkpoint_every"):
        p.pop(k)
    w = {k: weights.get(k) for k in ("kind", "arch", "seed", "sha256", "sha256_prefix")}
    d = {k: data[k] for k in ("list_sha256", "size", "resize", "shuffle", "images")}
    return {
        "preset": p,
        "network": dataclasses.asdict(cfg),
        "seed": seed,
        "style_sha256": style["sha256"],
        "data": d,
        "weights": w,
    } | ({"compute": dataclasses.asdict(compute)} if compute != Compute() else {})


def _jsonable_eq(a, b) -> bool:
    # checkpoints store lists where the live objects hold tuples; compare through JSON
    return json.dumps(to_jsonable(a), sort_keys=True) == json.dumps(to_jsonable(b), sort_keys=True)


def _differences(old, new, where: str = "") -> list[str]:
    """'field: checkpoint X, now Y' for every leaf that differs between two fingerprints."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in dict.fromkeys(list(old) + list(new))
            for d in _differences(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))
        ]
    if _jsonable_eq(old, new):
        return []
    return [f"{where}: checkpoint {json.dumps(to_jsonable(old))}, now {json.dumps(to_jsonable(new))}"]


def _save_atomic(obj: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


class _StopRequest:
    """First Ctrl-C: finish the current step, write a checkpoint, stop. Second Ctrl-C: abort now."""

    def __init__(self, log):
        self.stop, self.log, self.old = False, log, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        self.log("interrupt: stopping after this step and writing a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


@dataclass(frozen=True)
class TrainOptions:
    """How one training run goes, never what it trains (the FastPreset says that): the loss
    network's weights (families.py's --weights keywords; ignored when a loaded backbone is passed),
    the seed (the network's init and the data order), the device, compute (module docstring),
    progress lines (progress_every: every N steps, 0 none, None every progress_seconds) and where
    they go (log; None: stderr), and on_step(row), called after every step: returning True stops
    the run like a Ctrl-C does."""

    weights: str = "auto"
    seed: int = 0
    device: str = "cpu"
    compute: Compute = Compute()
    progress_every: int | None = None
    progress_seconds: float = 10.0
    log: Callable[[str], None] | None = None
    on_step: Callable[[dict], bool | None] | None = None


@dataclass
class _Training:
    """Everything one training run needs, set up once (train_transformer's parts share it)."""

    preset: FastPreset
    cfg: TransformerConfig
    dev: torch.device
    out: Path
    seed: int
    style: dict  # the style image's record
    dataset: ImageFolderData
    steps: int
    backbone: Backbone
    loss_fn: PerceptualLoss
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    fingerprint: dict
    log: Callable[[str], None]
    compute: Compute = Compute()
    record: dict = None

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def model_path(self) -> Path:
        return self.out / "transformer.pt"

    @property
    def csv_path(self) -> Path:
        return self.out / "loss.csv"


def _setup(
    preset: FastPreset,
    style: str | os.PathLike,
    data: str | os.PathLike,
    out: Path,
    run: TrainOptions,
    backbone: Backbone | None,
    resume_from: Path | None = None,
) -> _Training:
    """The style image, the data, the loss network, the transformer and its Adam. run.log must be
    set (train_transformer and timing.time_training set it)."""
    seed, compute, log = run.seed, run.compute, run.log
    dev = resolve_device(run.device)
    cfg = network_config(preset)
    style_path = resolve_image(style)
    style_img = load_image(style_path, Resize("long", preset.style_size) if preset.style_size else Resize())
    style_rec = {
        "name": str(style),
        "path": str(style_path),
        "sha256": sha256_of(Path(style_path)),
        "size_hw": list(style_img.shape[-2:]),
    }
    dataset = ImageFolderData(
        resolve_dataset(data),
        preset.size,
        preset.batch,
        preset.data_resize,
        preset.shuffle,
        seed,
        preset.max_images,
        log,
    )
    steps = total_steps(preset, dataset.batches_per_epoch)
    if resume_from is not None:  # everything but the weights compared before the slow part: the backbone
        early = _fingerprint(preset, cfg, seed, style_rec, dataset.describe(), {}, compute)
        _check_same_settings(resume_from, read_checkpoint(resume_from), early, str(style), ignore=("weights",))
    if backbone is None:
        backbone = load_backbone(preset.backbone, run.weights, seed=seed, family=preset.weights)
    elif backbone.arch != preset.backbone:
        raise NstbenchError(f"preset {preset.name} needs {preset.backbone}, got a {backbone.arch} backbone")
    backbone.to(dev)
    loss_fn = PerceptualLoss(
        backbone, style_img.to(dev), preset.loss, preset.tv_batch, preset.content_target_quirk, compute=compute
    )
    net = compute.prepare(build_transformer(cfg, seed).to(dev))  # before Adam: its state takes the layout
    opt = torch.optim.Adam(net.parameters(), lr=preset.lr)
    fingerprint = _fingerprint(preset, cfg, seed, style_rec, dataset.describe(), backbone.weights, compute)
    return _Training(
        preset, cfg, dev, out, seed, style_rec, dataset, steps, backbone, loss_fn, net, opt, fingerprint, log, compute
    )


def _check_same_settings(path: Path, ckpt: dict, fingerprint: dict, style: str, ignore: tuple[str, ...] = ()) -> None:
    """A resumption must run what the checkpoint ran: each differing field named with both values
    (the style by its name: a sha256 says nothing to a reader)."""
    old = {k: v for k, v in (ckpt.get("fingerprint") or {}).items() if k not in ignore}
    new = {k: v for k, v in fingerprint.items() if k not in ignore}
    if _jsonable_eq(old, new):
        return
    before = (ckpt.get("style") or {}).get("name", "?")
    diff = [
        f"style: checkpoint {before}, now {style} (a different image)" if d.startswith("style_sha256:") else d
        for d in _differences(old, new)
    ]
    raise NstbenchError(
        f"cannot resume {path}: {'; '.join(diff[:4])} (preset, network, seed, style, data and weights must match)"
    )


def _resume(t: _Training) -> int:
    """Network, Adam state and RNG from the checkpoint, which must come from the same settings;
    returns the step it is at."""
    ckpt = read_checkpoint(t.ckpt_path)
    if ckpt.get("kind") != CHECKPOINT_KIND or "optimizer" not in ckpt:
        raise NstbenchError(f"{t.ckpt_path} is not a resumable nstbench training checkpoint")
    _check_same_settings(t.ckpt_path, ckpt, t.fingerprint, t.style["name"])
    load_state(t.net, ckpt["state_dict"], f"checkpoint {t.ckpt_path}")
    t.net.to(t.dev)
    t.opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    start = int(ckpt["step"])
    if start > t.steps:
        raise NstbenchError(f"{t.ckpt_path} is at step {start}, beyond the requested {t.steps} steps")
    t.log(f"resuming from step {start} of {t.steps}")
    return start


def _start_loss_csv(t: _Training, resume: bool, start: int) -> float:
    """loss.csv with, on resume, the rows up to the checkpoint (later ones were never checkpointed);
    returns the seconds already spent (the seconds column spans sessions)."""
    rows_kept = []
    if resume and t.csv_path.is_file():
        with open(t.csv_path, newline="") as f:
            rows_kept = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
    write_csv(t.csv_path, rows_kept, LOSS_COLUMNS)
    return float(rows_kept[-1]["seconds"]) if rows_kept else 0.0


def _checkpoint(t: _Training, done: int, final: bool = False) -> None:
    """checkpoint.pt (with Adam state and RNG, for --resume); at the end also transformer.pt."""
    # contiguous: a channels_last run's weights are saved NCHW, as every other checkpoint
    state = {k: v.detach().cpu().contiguous() for k, v in t.net.state_dict().items()}
    ds = t.dataset
    meta = {
        "kind": CHECKPOINT_KIND,
        "format": 1,
        "network": dataclasses.asdict(t.cfg),
        "preset": dataclasses.asdict(t.preset),
        "weights": t.backbone.weights,
        "data": ds.describe(),
        "style": t.style,
        "seed": t.seed,
        "step": done,
        "total_steps": t.steps,
        "epoch": done // ds.batches_per_epoch,
        "batch_in_epoch": done % ds.batches_per_epoch,
        "images_seen": done * t.preset.batch,
        "fingerprint": t.fingerprint,
        "provenance": t.record["provenance"],
        "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta = json.loads(json.dumps(to_jsonable(meta)))  # plain types only: loadable with weights_only=True
    _save_atomic(
        {**meta, "state_dict": state, "optimizer": t.opt.state_dict(), "rng": {"torch": torch.get_rng_state()}},
        t.ckpt_path,
    )
    if final:
        _save_atomic({**meta, "state_dict": state}, t.model_path)


def _train_step(t: _Training, step: int) -> tuple[dict, int] | None:
    """One batch: loss, backward, Adam. The loss terms and epoch, or None when the loss is not finite."""
    x, epoch = t.dataset.batch_at(step)
    x = x.to(t.dev, memory_format=torch.channels_last if t.compute.channels_last else torch.preserve_format)
    t.opt.zero_grad(set_to_none=True)
    with t.compute.autocast(t.dev.type):
        y = t.net.stylize_unit(x)
    # the loss in fp32 (its backbone under the same autocast, inside PerceptualLoss): TV and Grams
    # sum many products, which bf16 would round to ~3 digits
    terms = t.loss_fn(y.float(), x)
    terms["total"].backward()
    vals = {k: v.item() for k, v in terms.items()}  # one host sync per step
    if not all(math.isfinite(v) for v in vals.values()):
        return None
    t.opt.step()
    return vals, epoch


class _Progress:
    """Progress lines: every `every` steps, or (None) every `seconds` and after the first step."""

    def __init__(self, t: _Training, start: int, every: int | None, seconds: float):
        self.t, self.start, self.every, self.seconds = t, start, every, seconds
        self.t0 = self.last = time.perf_counter()

    def __call__(self, done: int, vals: dict, now: float) -> None:
        steps, session = self.t.steps, done - self.start
        due = (self.every is None and (now - self.last >= self.seconds or session == 1)) or (
            bool(self.every) and done % self.every == 0
        )
        if self.every != 0 and (due or done == steps):
            rate = session * self.t.preset.batch / (now - self.t0)
            eta = (now - self.t0) / session * (steps - done)
            self.t.log(
                f"step {done}/{steps} ({100 * done / steps:.0f}%) {rate:.2f} img/s total={vals['total']:.4g} "
                f"content={vals['content']:.4g} style={vals['style']:.4g} tv={vals['tv']:.4g} "
                f"elapsed {_fmt_time(now - self.t0)} ETA {_fmt_time(eta)}"
            )
            self.last = now


def _loop(
    t: _Training, start: int, seconds_before: float, progress: _Progress, on_step: Callable[[dict], bool | None] | None
) -> dict:
    """Steps start..steps, one loss.csv row each, checkpoints on schedule; stops early on a
    non-finite loss, on_step returning True or Ctrl-C. Returns status, done, first and last rows."""
    preset, first, last, done, status = t.preset, None, None, start, "ok"
    with _StopRequest(t.log) as stop, open(t.csv_path, "a", newline="") as fcsv:
        writer = csv.DictWriter(fcsv, fieldnames=LOSS_COLUMNS, lineterminator="\n")
        for step in range(start, t.steps):
            got = _train_step(t, step)
            if got is None:
                status = "diverged"
                t.log(f"loss became non-finite at step {step + 1}; the last checkpoint is at step {done}")
                break
            vals, epoch = got
            done = step + 1
            now = time.perf_counter()
            row = {
                "step": done,
                "epoch": epoch,
                "images": done * preset.batch,
                **vals,
                "seconds": round(seconds_before + now - progress.t0, 4),
            }
            writer.writerow(row)
            fcsv.flush()
            first, last = first or row, row
            if done % preset.checkpoint_every == 0 or done == t.steps:
                _checkpoint(t, done, final=done == t.steps)
            progress(done, vals, now)
            if (on_step is not None and on_step(row)) or stop.stop:
                if done < t.steps:
                    status = "interrupted"
                    if done % preset.checkpoint_every != 0:
                        _checkpoint(t, done)
                    t.log(f"stopped at step {done}/{t.steps}; continue with --resume")
                break
    return {"status": status, "done": done, "first": first, "last": last}


def train_transformer(
    preset: FastPreset,
    style: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    run: TrainOptions = TrainOptions(),
    resume: bool = False,
    backbone: Backbone | None = None,
) -> dict:
    """Train a transformer for `style` on the images under `data`; write the run into `out`.

    run (TrainOptions): weights, seed, device, compute, progress lines and on_step; when on_step
    stops the run a checkpoint is written and KeyboardInterrupt is raised. run.compute is not
    checked for native bf16 here: the commands refuse emulated bf16 before calling. backbone: an
    already loaded loss network (tests share one); otherwise load_backbone(run.weights). Returns
    the run record (run.json).
    """
    if run.log is None:
        run = replace(run, log=lambda m: print(f"[train {preset.name}] {m}", file=sys.stderr, flush=True))
    seed, compute = run.seed, run.compute
    check_training_size(preset)
    out = ensure_writable_dir(Path(out))
    if resume and not (out / "checkpoint.pt").is_file():
        raise NstbenchError(f"nothing to resume: {out / 'checkpoint.pt'} not found")
    if not resume and (out / "checkpoint.pt").exists():
        raise NstbenchError(
            f"{out} already holds a training run (checkpoint.pt); pass --resume to continue it or choose another --out"
        )
    resume_from = out / "checkpoint.pt" if resume else None
    t = _setup(preset, style, data, out, run, backbone, resume_from)
    start = _resume(t) if resume else 0
    t.net.train()
    seconds_before = _start_loss_csv(t, resume, start)
    t.record = {
        "command": "train",
        "preset": dataclasses.asdict(preset),
        "network": dataclasses.asdict(t.cfg),
        "style": t.style,
        "data": t.dataset.describe(),
        "seed": seed,
        "steps": t.steps,
        "weights": t.backbone.weights,
        "compute": dataclasses.asdict(compute)
        | ({"bf16_support": bf16_support(t.dev)[1]} if compute.dtype == "bfloat16" else {}),
        "loss_terms": "loss.csv: content, style, tv unweighted (batch-reduced); total = alpha*content + beta*style + gamma*tv",
        "provenance": provenance(t.dev),  # git and library versions: read once per run
    }
    progress = _Progress(t, start, run.progress_every, run.progress_seconds)
    r = _loop(t, start, seconds_before, progress, run.on_step)
    seconds, session, done = time.perf_counter() - progress.t0, r["done"] - start, r["done"]
    t.record.update(
        status=r["status"],
        steps_done=done,
        resumed_from=start if resume else None,
        seconds=seconds,
        images_per_second=session * preset.batch / seconds if seconds > 0 and session else None,
        first=r["first"],
        last=r["last"],
        checkpoint=str(t.ckpt_path),
        model=str(t.model_path) if done == t.steps else None,
        data=t.dataset.describe(),
    )
    write_json(out / "run.json", t.record)
    if r["status"] == "interrupted":
        raise KeyboardInterrupt
    if r["status"] == "diverged":
        raise NstbenchError(f"training diverged (non-finite loss) after step {done}; see {t.csv_path}")
    return t.record


@dataclass
class TrainedRun:
    """A network trained by train_and_apply and its output on one content image."""

    image: torch.Tensor  # [1, 3, H, W] in [0, 1]: the content through the network in eval mode
    terms: dict[str, float]  # the training loss terms (total, content, style, tv; unweighted) on that image
    record: dict  # train_transformer's run record
    loss_csv: Path  # per-step training losses (its clock is the training loop's: no checkpoint writes)


def train_and_apply(
    preset: FastPreset,
    style: str | os.PathLike,
    data: str | os.PathLike,
    out: Path,
    content: torch.Tensor,
    style_image: torch.Tensor,
    *,
    backbone: Backbone,
    run: TrainOptions = TrainOptions(),
) -> TrainedRun:
    """Train one network (train_transformer into `out`, on `content`'s device whatever run.device
    says), stylise `content` as `nstbench apply` does (eval mode, output cropped to the input's
    size, clamped) and measure the training loss terms on it with `style_image` as the style target
    (both in fp32 whatever the training's compute). The experiments' sweeps run one of these per point."""
    rec = train_transformer(preset, style, data, out, run=replace(run, device=str(content.device)), backbone=backbone)
    net, _ = load_transformer(out / "transformer.pt")
    net.to(content.device)
    h, w = content.shape[-2:]
    with torch.no_grad():
        y = net.stylize_unit(content)[..., :h, :w].clamp(0, 1)  # sides not multiples of 4 come out larger
        terms = PerceptualLoss(backbone, style_image, preset.loss, preset.tv_batch)(y, content)
    return TrainedRun(y, {k: v.item() for k, v in terms.items()}, rec, out / "loss.csv")


def train_and_apply_unit(
    preset: FastPreset,
    style: str | os.PathLike,
    data: str | os.PathLike,
    content: torch.Tensor,
    style_image: torch.Tensor,
    **kw,
) -> dict:
    """train_and_apply (its keywords: backbone, run) in a temporary
    folder (deleted afterwards: no checkpoint is kept), as plain data an experiment's unit (a job
    under --executor local|slurm) can return: image (CPU), terms, record and loss (loss.csv as a
    DataFrame)."""
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="nstbench-train-") as tmp:
        run = train_and_apply(preset, style, data, Path(tmp) / "run", content, style_image, **kw)
        return {"image": run.image.cpu(), "terms": run.terms, "record": run.record, "loss": pd.read_csv(run.loss_csv)}
