"""Issue 23, "every number says what ran", for the commands: `--help` lists what the registries hold
and says which side `--size` sets, and the last lines (and run.json) name the working size, the loss
evaluations, the weights and whatever makes an output a toy. Random weights, tiny images, few steps."""

import csv
import json
import re

import numpy as np
import pytest
from conftest import needs_assets
from PIL import Image

from nstbench.config.families import KEYWORDS
from nstbench.config.presets import FAST_PRESETS, PRESETS
from nstbench.harness import registry
from nstbench.harness.experiment import experiment_parser
from nstbench.interfaces.cli import _toy_note, _weights_note, build_parser, main, toy_train_steps


def help_text(capsys, *argv: str) -> str:
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())  # argparse's line wrapping undone


def option_help(parser, option: str) -> str:
    parser.format_help()  # fills the help texts listed from the registries
    return next(a.help for a in parser._actions if option in a.option_strings)


def choices(weights_help: str) -> set[str]:
    """The keywords of a --weights help: `a (what a is) | b | c (...)` -> {a, b, c}."""
    return {t.split()[0] for t in re.sub(r"\([^()]*\)", "", weights_help.split(": ", 1)[-1]).split("|")}


def named(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_help_lists_every_preset_and_weights_keyword(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping: argparse breaks `iitb-resnet50` at its hyphen
    stylize, train = help_text(capsys, "stylize"), help_text(capsys, "train")
    assert [n for n in PRESETS if not named(n, stylize)] == []
    assert [n for n in FAST_PRESETS if not named(n, train)] == []
    sub = build_parser()._subparsers._group_actions[0].choices
    want = set(KEYWORDS) | {"PATH"}
    assert choices(option_help(sub["stylize"], "--weights")) == want
    assert choices(option_help(sub["train"], "--weights")) == want
    for spec in registry.specs().values():  # every experiment script offers what stylize offers
        assert choices(option_help(experiment_parser(spec, spec.title), "--weights")) == want, spec.name


def test_size_help_says_which_side_each_preset_sets(capsys):
    size = option_help(build_parser()._subparsers._group_actions[0].choices["stylize"], "--size")
    clause = {n: next(c for c in size.split(": ", 1)[1].split("; ") if named(n, c)) for n in PRESETS}
    assert clause["hust"].startswith("the long side")
    for name in ("nyu", "upes", "gatys2016"):
        assert clause[name].startswith("the short side"), name
    assert "at most the image's long side" in clause["upes"]  # the UPES loader's cap
    assert all(f"{n} ({p.content_resize.size})" in clause[n] for n, p in PRESETS.items())  # the defaults


@pytest.fixture
def tiny_images(tmp_path):
    """A 56x40 (W x H) content and a 48x48 style: a --size above 56 enlarges the content."""
    rng = np.random.default_rng(0)
    for name, (h, w) in (("c.png", (40, 56)), ("s.png", (48, 48))):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / name)
    return str(tmp_path / "c.png"), str(tmp_path / "s.png")


def run(capsys, *argv: str) -> tuple[str, str]:
    assert main(list(argv)) == 0
    out, err = capsys.readouterr()
    return out.strip().splitlines()[-1], err


def test_upscaling_is_warned_and_the_working_size_is_said_and_recorded(tmp_path, tiny_images, capsys):
    c, s = tiny_images
    # upes: the short side becomes min(size, long side) = 56, so 40x56 (H x W) runs as 56x78
    last, err = run(capsys, "stylize", "--preset", "upes", "--content", c, "--style", s, "--weights", "random",
                    "--size", "100000", "--steps", "2", "--progress-every", "0", "--out", str(tmp_path / "up"))  # fmt: skip
    warning = [line for line in err.splitlines() if line.startswith("nstbench: warning:")]
    assert len(warning) == 1 and "40x56" in warning[0] and "56x78" in warning[0], err
    assert "56x78 px (H x W), upscaled" in last and "size=100000" in last
    rec = json.loads((tmp_path / "up" / "run.json").read_text())
    assert (rec["working_size_hw"], rec["content_image_size_hw"], rec["upscaled"]) == ([56, 78], [40, 56], True)
    assert "weights: random (seed 0)" in last and "TOY: random weights" in last  # item 3, stylize


def test_nyu_says_steps_and_evaluations(tmp_path, tiny_images, capsys):
    """The tutorial's `while evaluations <= num_steps` loop runs on to the end of its L-BFGS call."""
    c, s = tiny_images
    last, err = run(capsys, "stylize", "--preset", "nyu", "--content", c, "--style", s, "--weights", "random",
                    "--size", "32", "--steps", "3", "--progress-every", "5", "--out", str(tmp_path / "nyu"))  # fmt: skip
    n = len(list(csv.DictReader(open(tmp_path / "nyu" / "curve.csv"))))
    assert n > 3  # 20 unless L-BFGS's tolerances end a call early
    assert f"(3 steps ({n} evaluations), 32x44 px (H x W), " in last
    assert json.loads((tmp_path / "nyu" / "run.json").read_text())["evaluations"] == n
    assert f"[nyu] step 3/3 (evaluation {n}/20) " in err.strip().splitlines()[-1]
    assert "upscaled" not in last and "warning" not in err  # 40 px short side shrunk to 32


@needs_assets
def test_train_and_apply_last_lines_flag_random_weights_and_few_steps(tmp_path, capsys):
    """The README's quick start: 4 steps on random weights give a flat image, and both lines say why."""
    last, _ = run(capsys, "train", "--preset", "hust", "--style", "mosaic", "--data", "coco100", "--size", "32",
                  "--batch", "2", "--steps", "4", "--weights", "random", "--out", str(tmp_path / "m"))  # fmt: skip
    toy = f"TOY: random weights, trained 4 steps (under {toy_train_steps()}"
    assert "loss-network weights: random (seed 0)" in last and toy in last
    last, _ = run(capsys, "apply", "--checkpoint", str(tmp_path / "m" / "transformer.pt"), "--content", "chelsea",
                  "--size", "64", "--out", str(tmp_path / "c.png"))  # fmt: skip
    assert "trained 4 steps" in last and "loss-network weights: random (seed 0)" in last and toy in last


def test_weights_kind_named_and_no_toy_flag_for_a_real_run():
    imagenet = {"kind": "imagenet", "imagenet": True, "family": "keras", "file_name": "v.h5", "sha256": "ab" * 32}
    assert _weights_note(imagenet).startswith("weights: ImageNet keras v.h5")
    assert _toy_note(imagenet, toy_train_steps()) == ""
    assert _toy_note(imagenet, toy_train_steps() - 1).startswith("; TOY: trained")
    file = dict(imagenet, kind="file", imagenet=False, family="torchvision")
    assert _weights_note(file).startswith("weights: file torchvision v.h5") and "not ImageNet" in _weights_note(file)
    assert _weights_note(None, "loss-network weights") == "loss-network weights: not recorded"
