"""`nstbench stylize` end to end, and the CLI's one-line errors (exit status 2, no traceback)."""

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import needs_assets, stylize_argv
from PIL import Image


def nstbench(*args, cwd=None):
    env = dict(os.environ, NSTBENCH_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "nstbench", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@needs_assets
def test_stylize_writes_image_curve_and_record(tmp_path):
    r = nstbench(*stylize_argv(3, 48, "--out", str(tmp_path / "run")))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run"
    assert Image.open(out / "output.png").size == (71, 48)  # short side 48, int(48 * 800 / 540)
    rows = list(csv.DictReader(open(out / "curve.csv")))
    assert [int(x["step"]) for x in rows] == [1, 2, 3]
    assert list(rows[0]) == ["step", "image", "total", "content", "style", "tv", "seconds"]
    rec = json.load(open(out / "run.json"))
    assert rec["weights"]["kind"] == "random" and rec["weights"]["imagenet"] is False
    assert rec["preset"]["name"] == "upes" and rec["preset"]["steps"] == 3
    for key in ("torch", "torchvision", "commit", "device", "python"):
        assert key in rec["provenance"]
    assert "not ImageNet" in r.stdout


@pytest.mark.parametrize(
    "preset", ["hust", "hust-code", "nyu", "iitb-vgg19", "iitb-resnet50", "gatys2016", "gatys2016-code"]
)
@needs_assets
def test_every_preset_runs_from_the_cli(tmp_path, preset):
    from nstbench.config.presets import get_preset

    r = nstbench(
        "stylize",
        "--preset",
        preset,
        "--content",
        "chelsea",
        "--style",
        "starry_night",
        "--steps",
        "2",
        "--size",
        "56",
        "--weights",
        "random",
        "--init",
        "noise",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    rows = len(list(csv.DictReader(open(tmp_path / "curve.csv"))))  # one per loss evaluation
    if get_preset(preset).optimizer.lbfgs_loop == "while":
        assert rows > 2  # `while evaluations <= steps: optimizer.step(closure)` stops past --steps
    else:
        assert rows == 2


def test_presets_lists_every_preset_with_its_source(capsys):
    from nstbench.config.presets import PRESETS
    from nstbench.interfaces.cli import main

    assert main(["presets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.startswith("  ")}
    assert set(lines) == set(PRESETS)
    assert lines["hust-code"].split()[1:4] == ["vgg19", "keras", "adam_tf"]
    assert "style_transfer.ipynb" in lines["hust-code"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--preset", "nope"],
            "unknown preset 'nope'; valid: gatys2016, gatys2016-code, hust, hust-code, iitb-resnet50, "
            "iitb-vgg19, nyu, upes",
        ),
        (["--content", "/no/such/file.jpg"], "image not found: /no/such/file.jpg"),
        (["--weights", "/no/such/weights.pth"], "weights file not found"),
        (["--device", "cuda:0"], "CUDA is not available"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tmp_path, args, message):
    base = {
        "--preset": "upes",
        "--content": "octopus",
        "--style": "hockney",
        "--weights": "random",
        "--steps": "1",
        "--size": "32",
        "--out": str(tmp_path / "o"),
    }
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    r = nstbench("stylize", *[x for kv in base.items() for x in kv])
    if message == "CUDA is not available" and r.returncode == 0:
        pytest.skip("this machine has CUDA")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("nstbench: error:")
    assert message in r.stderr and "Traceback" not in r.stderr


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a folder")
    r = nstbench(*stylize_argv(1, 32, "--out", str(blocker / "sub")))
    assert r.returncode == 2 and "cannot write to output folder" in r.stderr and "Traceback" not in r.stderr
