"""nstbench.timing, the helpers E6 and E10 share: what is timed and how often."""

from dataclasses import replace

import pytest
import torch
from conftest import needs_assets

from nstbench import timing
from nstbench.gatys import OptimizerSpec
from nstbench.presets import NYU
from nstbench.stylize import load_pair, override


def test_time_forward_counts_warmup_and_repeats():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return x * 2

    t = timing.time_forward(fn, torch.zeros(1, 3, 8, 8), warmup=2, repeats=5)
    assert len(calls) == 7 and set(t) == {"median", "mean"}
    assert 0 < t["median"] and 0 < t["mean"]


@needs_assets
def test_time_optimisation_times_every_evaluation_after_a_warmup(vgg19_random, monkeypatch):
    # as E10 times it: one L-BFGS call of exactly `steps` evaluations (NYU itself runs the tutorial's loop)
    preset = replace(override(NYU, steps=3, size=32), optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="single"))
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
