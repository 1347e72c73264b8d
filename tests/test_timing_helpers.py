"""nstbench.methods.timing, the helpers E6 and E10 share: what is timed and how often."""

import itertools
import statistics
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from conftest import needs_assets

from nstbench.config.errors import NstbenchError
from nstbench.config.sources import NYU
from nstbench.config.specs import OptimizerSpec
from nstbench.methods import timing
from nstbench.methods.gatys_run import load_pair, override
from nstbench.methods.training import TrainOptions


def test_time_forward_counts_warmup_and_repeats():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return x * 2

    t = timing.time_forward(fn, torch.zeros(1, 3, 8, 8), warmup=2, repeats=5)
    assert len(calls) == 7 and set(t) == {"median", "mean", "times"}
    assert 0 < t["median"] and 0 < t["mean"]
    assert len(t["times"]) == 5 and t["median"] == statistics.median(t["times"])  # every timed call, for the spread


def test_time_training_interleaves_the_batch_sizes(monkeypatch):
    # the schedule only: set-up and step replaced by recorders (a step's arithmetic is training's)
    steps = []

    def setup(preset, *a):
        return SimpleNamespace(batch=preset.batch, dev=torch.device("cpu"), net=torch.nn.Linear(1, 1))

    monkeypatch.setattr(timing.training, "_setup", setup)
    monkeypatch.setattr(timing.training, "_train_step", lambda t, step: steps.append((t.batch, step)))
    presets = {b: SimpleNamespace(batch=b) for b in (2, 4, 8)}
    times = timing.time_training(
        presets, "mosaic", "coco100", None, images=8, repeats=3, run=TrainOptions(device="cpu")
    )
    assert {b: len(ts) for b, ts in times.items()} == {2: 3, 4: 3, 8: 3} and min(min(ts) for ts in times.values()) > 0
    warmup, timed = steps[:3], steps[3:]
    assert warmup == [(2, 0), (4, 0), (8, 0)]  # one untimed step each
    passes = [(b, [s for _, s in g]) for b, g in itertools.groupby(timed, key=lambda bs: bs[0])]
    # each repeat times every batch size once (the order rotated), each pass the same 8 images
    assert [b for b, _ in passes] == [2, 4, 8, 4, 8, 2, 8, 2, 4]
    assert all(s == list(range(8 // b)) for b, s in passes)
    with pytest.raises(NstbenchError, match="multiple of batch 8"):
        timing.time_training(presets, "mosaic", "coco100", None, images=12, repeats=1, run=TrainOptions(device="cpu"))


@needs_assets
def test_time_optimisation_times_every_evaluation_after_a_warmup(vgg19_random, monkeypatch):
    # as E10 times it: one L-BFGS call of exactly `steps` evaluations (NYU itself runs the tutorial's loop)
    preset = replace(
        override(NYU, dict(steps=3, size=32)), optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="single")
    )
    content, style = load_pair(preset, "chelsea", "starry_night")
    runs = []
    real = timing.run_preset

    def counted(p, *a, **k):
        runs.append(p.steps)
        return real(p, *a, **k)

    monkeypatch.setattr(timing, "run_preset", counted)
    t = timing.time_optimisation(preset, content, style, vgg19_random, warmup=1)
    assert runs == [1, 3]  # a separate warm-up run of 1 step, then the timed run
    assert 0 < t["median"] <= t["total"] and t["mean"] * 3 == pytest.approx(t["total"])
    assert len(t["times"]) == 3 and t["median"] == statistics.median(t["times"])
