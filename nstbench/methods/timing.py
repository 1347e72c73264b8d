"""Timing of an optimisation, of a feed-forward pass (the speed experiments E6, E10) and of training
passes per batch size (E3).

All report medians: one slow iteration (another job on a shared machine, a first-call warm-up)
does not move them; each also returns every timed repeat ("times", seconds) so a table can show
the spread (claims.timing_spread) the claim rules weigh. On CUDA every timed region ends with a
synchronisation, so the times are the device's, not the launch queue's.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config.compute import Compute
from ..config.errors import NstbenchError
from ..config.specs import FastPreset, GatysPreset
from ..nets.backbones import Backbone
from . import training
from .gatys import RunOptions
from .gatys_run import override, run_preset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_optimisation(
    preset: GatysPreset,
    content: torch.Tensor,
    style: torch.Tensor,
    backbone: Backbone,
    *,
    warmup: int,
    run: RunOptions = RunOptions(progress_every=0, label="timing"),
) -> dict:
    """Median seconds of one iteration (loss evaluation) of `preset` run with `run` (its
    sync_every is set here), after a separate untimed run of `warmup` iterations (no progress
    lines): {"median", "mean", "total", "times"} (total: the whole timed run; times: every
    iteration's seconds, the repeats of the median)."""
    if warmup:
        run_preset(override(preset, {"steps": warmup}), content, style, backbone, run=replace(run, progress_every=0))
    sync(content.device)
    # history "seconds" is the time since the loop started, read once per evaluation; sync_every=1
    # makes optimize_image wait for the device at every evaluation (its finiteness check), so the
    # differences are iteration times on a GPU too, not the launch queue's
    result = run_preset(preset, content, style, backbone, run=replace(run, sync_every=1))
    marks = [0.0] + [r["seconds"] for r in result.history if r["image"] == 0]
    per_step = np.diff(marks)
    return {
        "median": float(np.median(per_step)),
        "mean": result.seconds / len(per_step),
        "total": result.seconds,
        "times": [float(t) for t in per_step],
    }


@torch.inference_mode()
def time_forward(fn, x: torch.Tensor, *, warmup: int, repeats: int, compute: Compute = Compute()) -> dict:
    """Median and mean seconds of `repeats` calls fn(x) after `warmup` untimed ones, under
    `compute`'s autocast and with x in its layout (the module behind fn: Compute.prepare):
    {"median", "mean", "times"} (times: every call's seconds)."""
    if compute.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with compute.autocast(x.device.type):
        return _time_calls(fn, x, warmup, repeats)


def _time_calls(fn, x: torch.Tensor, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        sync(x.device)
        t = time.perf_counter()
        fn(x)
        sync(x.device)
        times.append(time.perf_counter() - t)
    return {"median": statistics.median(times), "mean": statistics.fmean(times), "times": times}


def time_training(
    presets: dict[int, FastPreset],
    style: str | os.PathLike,
    data: str | os.PathLike,
    backbone: Backbone,
    *,
    images: int,
    repeats: int,
    warmup: int = 1,
    run: training.TrainOptions = training.TrainOptions(),
) -> dict[int, list[float]]:
    """Seconds of `repeats` timed training passes of `images` images for each preset (keyed by its
    batch size; images must be a multiple of every batch), interleaved: repeat r runs every batch
    size once (the order rotated each repeat), so a neighbour that slows the machine for a while
    slows all batch sizes alike instead of one whole measurement. Each batch size trains its own
    freshly initialised network (nothing a caller trained is touched; the time of a step does not
    depend on the weights), first `warmup` untimed steps (allocations, kernel selection), then
    every pass replays the same first images/batch steps of the data order. run: the trainer's
    options (its weights, seed, device and compute are read; it never logs). {batch: [seconds]}."""
    runs = {}  # the trainer's own set-up and step, so what is timed is what E2/E3 train with
    for batch, preset in presets.items():
        if images % batch:
            raise NstbenchError(f"{images} timed images per pass are not a multiple of batch {batch}")
        # out is only named (nothing is written): these runs keep no checkpoint and no loss.csv
        t = training._setup(preset, style, data, Path(os.devnull), replace(run, log=lambda m: None), backbone)
        t.net.train()
        for step in range(warmup):
            training._train_step(t, step)
        runs[batch] = t
    batches = list(runs)
    times: dict[int, list[float]] = {b: [] for b in batches}
    for r in range(repeats):
        for batch in batches[r % len(batches) :] + batches[: r % len(batches)]:
            t = runs[batch]
            sync(t.dev)
            start = time.perf_counter()
            for step in range(images // batch):
                training._train_step(t, step)
            sync(t.dev)
            times[batch].append(time.perf_counter() - start)
    return times
