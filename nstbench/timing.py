"""Timing of an optimisation and of a feed-forward pass, shared by the speed experiments (E6, E10).

Both report medians: one slow iteration (another job on a shared machine, a first-call warm-up)
does not move them. On CUDA every timed region ends with a synchronisation, so the times are the
device's, not the launch queue's.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from .backbones import Backbone
from .perceptual import Compute
from .presets import GatysPreset
from .stylize import override, run_preset


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
    seed: int = 0,
    progress_every: int = 0,
    label: str = "timing",
    **run_kwargs,
) -> dict:
    """Median seconds of one iteration (loss evaluation) of `preset`, after a separate untimed run of
    `warmup` iterations: {"median", "mean", "total"} (total: the whole timed run)."""
    if warmup:
        run_preset(override(preset, steps=warmup), content, style, backbone, seed=seed, progress_every=0, **run_kwargs)
    sync(content.device)
    # history "seconds" is the time since the loop started, read once per evaluation; sync_every=1
    # makes optimize_image wait for the device at every evaluation (its finiteness check), so the
    # differences are iteration times on a GPU too, not the launch queue's
    result = run_preset(
        preset,
        content,
        style,
        backbone,
        seed=seed,
        progress_every=progress_every,
        label=label,
        sync_every=1,
        **run_kwargs,
    )
    marks = [0.0] + [r["seconds"] for r in result.history if r["image"] == 0]
    per_step = np.diff(marks)
    return {"median": float(np.median(per_step)), "mean": result.seconds / len(per_step), "total": result.seconds}


@torch.inference_mode()
def time_forward(fn, x: torch.Tensor, *, warmup: int, repeats: int, compute: Compute = Compute()) -> dict:
    """Median and mean seconds of `repeats` calls fn(x) after `warmup` untimed ones, under
    `compute`'s autocast and with x in its layout (the module behind fn: Compute.prepare)."""
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
    return {"median": statistics.median(times), "mean": statistics.fmean(times)}
