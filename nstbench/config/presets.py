"""The presets by name, as every command, experiment and report finds them: the Gatys presets
(PRESETS) and the fast-transfer ones (FAST_PRESETS), read from the sources that declare them
(sources.SOURCES, each value cited there), the training profiles of `nstbench train`, and the
overrides of the command line (override_fast; the Gatys ones are gatys_run.override). Sweeps and
profiles derive new presets with `dataclasses.replace`; the presets themselves never change at run
time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any, Mapping

from .errors import NstbenchError, unknown
from .sources import SOURCES
from .specs import FastPreset, GatysPreset
from .variants import TransformerConfig, get_variant

# read from the sources' declarations (sources.SOURCES), in their order: a new source's presets are
# listed, checked and runnable without an entry here
PRESETS: dict[str, GatysPreset] = {p.name: p for s in SOURCES for p in s.gatys}


def get_preset(name: str) -> GatysPreset:
    if name not in PRESETS:
        raise unknown("preset", name, PRESETS)
    return PRESETS[name]


FAST_PRESETS: dict[str, FastPreset] = {p.name: p for s in SOURCES for p in s.fast}


# `nstbench train --profile`: sizes, step counts and data volume only, never the method
# (EXPERIMENTS.md), as the experiments' profiles; None keeps the preset's own value.
@dataclass(frozen=True)
class TrainProfile:
    size: int | None = None
    steps: int | None = None
    batch: int | None = None
    max_images: int | None = None
    style_size: int | None = None
    checkpoint_every: int | None = None
    data: str | None = None  # training images when --data is not given

    def overrides(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


TRAIN_PROFILES: dict[str, TrainProfile] = {
    "smoke": TrainProfile(size=32, steps=4, batch=2, max_images=16, style_size=64, checkpoint_every=2, data="coco100"),
    "cpu": TrainProfile(size=128, steps=200, data="coco100"),
    "paper": TrainProfile(),  # the preset's own: COCO train2014 (--data)
}


def get_fast_preset(name: str) -> FastPreset:
    if name not in FAST_PRESETS:
        raise unknown("training preset", name, FAST_PRESETS)
    return FAST_PRESETS[name]


# the train options (and profile fields) that change a fast preset
FAST_OVERRIDES = (
    "steps",
    "epochs",
    "batch",
    "size",
    "content_weight",
    "style_weight",
    "tv_weight",
    "network",
    "norm",
    "max_images",
    "style_size",
    "checkpoint_every",
)


def override_fast(preset: FastPreset, changes: Mapping[str, Any]) -> FastPreset:
    """A copy of the preset with the CLI's overrides, option name -> value (FAST_OVERRIDES; None:
    not given). --steps and --epochs exclude each other."""
    unknown_names = sorted(set(changes) - set(FAST_OVERRIDES))
    if unknown_names:  # a misspelt option would otherwise be dropped without a word
        raise TypeError(f"override_fast() got unknown option(s) {', '.join(unknown_names)}")
    given = {k: v for k, v in changes.items() if v is not None}
    if "steps" in given and "epochs" in given:
        raise NstbenchError("give --steps or --epochs, not both")
    for k in ("steps", "epochs", "batch", "size", "checkpoint_every", "max_images", "style_size"):
        if k in given and given[k] < 1:
            raise NstbenchError(f"--{k.replace('_', '-')} must be at least 1, got {given[k]}")
    if given.get("size", 16) < 16:
        raise NstbenchError(f"--size must be at least 16 (the network downsamples by 4), got {given['size']}")
    fields = {k: v for k, v in given.items() if k not in ("content_weight", "style_weight", "tv_weight")}
    if "epochs" in given:
        fields["steps"] = None  # a length in epochs: the preset's step count no longer applies
    loss = {
        k: given[o]
        for k, o in (("alpha", "content_weight"), ("beta", "style_weight"), ("gamma", "tv_weight"))
        if o in given
    }
    if loss:
        fields["loss"] = replace(preset.loss, **loss)
    return replace(preset, **fields)


def network_config(preset: FastPreset) -> TransformerConfig:
    return get_variant(preset.network, preset.norm)
