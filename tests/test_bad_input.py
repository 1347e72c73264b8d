"""Bad input through the command line: one-line errors (no traceback), exit status 2, and no damage
to what an output folder already holds. Complements test_images.py (the loader's messages),
test_cli.py (missing file, unknown preset, unwritable folder for stylize) and test_weights.py.

Most cases call `nstbench.interfaces.cli.main` in-process (an uncaught exception would fail the test with its
traceback); one case per kind of failure also runs as a real process.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import needs_assets
from PIL import Image

from nstbench.config.errors import NstbenchError
from nstbench.config.sources import HUST, UPES
from nstbench.interfaces.cli import main
from nstbench.methods import gatys_run as stylize_mod
from nstbench.methods.gatys import RunOptions, make_gatys_loss
from nstbench.nets.weights import load_backbone

pytestmark = needs_assets

BASE = {
    "--preset": "upes",
    "--content": "octopus",
    "--style": "hockney",
    "--weights": "random",
    "--steps": "1",
    "--size": "32",
}


def stylize_args(out, **changes):
    opts = dict(BASE, **{f"--{k.replace('_', '-')}": str(v) for k, v in changes.items()})
    return ["stylize", *[x for kv in opts.items() for x in kv], "--out", str(out)]


def run_cli(capsys, args):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *needles, progress_lines=False):
    """Exit status 2 and one error line. Long runs log progress to stderr ("[train hust] ...",
    "[upes] step ..."); those may come before the error, which is then the last line.
    progress_lines=False: only a `stylize` progress line may precede it."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    allowed = ("[",) if progress_lines else ("[upes] step", "[hust] step", "[nyu] step")
    assert all(ln.startswith(allowed) for ln in lines[:-1]), err
    lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("nstbench: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    Image.fromarray(_rgb(64, 64)).save(d / "ok.jpg")
    full = (d / "ok.jpg").read_bytes()
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (d / "text.jpg").write_text("hello, I am not a picture\n")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "1x1.png")
    Image.fromarray(_rgb(100, 100)).save(d / "big.png")
    return d


@pytest.mark.parametrize("which", ["content", "style"])
@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.jpg", "image not found"),
        ("empty.jpg", "the file is empty"),
        ("truncated.jpg", "cannot read image"),
        ("text.jpg", "not an image format"),
        ("1x1.png", "is 1x1; the short side must be at least 16 px"),
    ],
)
def test_unreadable_images_are_one_line_errors(bad_files, tmp_path, capsys, which, name, message):
    rc, out, err = run_cli(capsys, stylize_args(tmp_path / "o", **{which: bad_files / name}))
    assert_one_line_error(rc, err, message, str(bad_files / name))


def test_image_above_the_pixel_limit_is_refused_as_documented(bad_files, tmp_path):
    """images.py: above MAX_PIXELS (env NSTBENCH_MAX_PIXELS) an image is refused, not downscaled."""
    env = dict(os.environ, NSTBENCH_MAX_PIXELS="5000")  # read at import: a real process
    r = subprocess.run(
        [sys.executable, "-m", "nstbench", *stylize_args(tmp_path / "o", content=bad_files / "big.png")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    line = assert_one_line_error(
        r.returncode, r.stderr, "100x100", "above the limit of 5000 pixels", "NSTBENCH_MAX_PIXELS"
    )
    assert "downscale it first" in line


def test_truncated_jpeg_in_a_real_process(bad_files, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "nstbench", *stylize_args(tmp_path / "o", style=bad_files / "truncated.jpg")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(r.returncode, r.stderr, "cannot read image", "truncated.jpg")


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "palette", "16bit"])
def test_other_png_formats_are_accepted_and_converted(tmp_path, capsys, kind):
    a = _rgb(40, 48, seed=1)
    im = {
        "grayscale": lambda: Image.fromarray(a[:, :, 0], mode="L"),
        "rgba": lambda: Image.fromarray(np.dstack([a, np.full(a.shape[:2], 9, np.uint8)]), mode="RGBA"),
        "palette": lambda: Image.fromarray(a).convert("P"),
        "16bit": lambda: Image.fromarray((a[:, :, 0].astype(np.uint16) * 257)),
    }[kind]()
    im.save(tmp_path / f"{kind}.png")
    if kind == "16bit":
        assert Image.open(tmp_path / "16bit.png").mode.startswith("I")
    out = tmp_path / "run"
    rc, stdout, err = run_cli(
        capsys, stylize_args(out, content=tmp_path / f"{kind}.png", style=tmp_path / f"{kind}.png")
    )
    assert rc == 0, err
    res = Image.open(out / "output.png")
    assert res.mode == "RGB" and res.size == (38, 32)  # short side 32, int(32 * 48 / 40)
    assert json.load(open(out / "run.json"))["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# Unknown names: the error lists the valid ones
# ---------------------------------------------------------------------------------------------


def test_unknown_layer_in_a_loss_lists_valid_layers(vgg19_random, resnet50_random):
    c = torch.rand(1, 3, 32, 32)
    spec = replace(UPES.loss, content_layers=(("relu9_9", 1.0),))
    with pytest.raises(NstbenchError, match="unknown vgg19 layer 'relu9_9'; valid: .*relu4_2") as e:
        make_gatys_loss(vgg19_random, c, c, spec, "imagenet")
    assert "\n" not in str(e.value)
    spec = replace(UPES.loss, style_layers=(("conv9_block1_0_bn", 1.0),))
    with pytest.raises(NstbenchError, match="unknown resnet50 layer .*conv3_block1_0_bn"):
        make_gatys_loss(resnet50_random, c, c, replace(spec, content_layers=(("conv4_block1_out", 1.0),)), "imagenet")


def test_unknown_layer_or_backbone_in_a_preset_is_a_one_line_error(tmp_path):
    bad_layer = replace(
        stylize_mod.override(HUST, dict(steps=1, size=56)), loss=replace(HUST.loss, content_layers=(("conv4_9", 1.0),))
    )
    with pytest.raises(NstbenchError, match=r"unknown vgg19 layer 'conv4_9'; valid: .*conv4_2"):
        stylize_mod.stylize_to_folder(
            bad_layer, "chelsea", "starry_night", tmp_path / "a", run=RunOptions(weights="random")
        )
    bad_arch = replace(stylize_mod.override(HUST, dict(steps=1, size=56)), backbone="alexnet")
    with pytest.raises(
        NstbenchError, match="unknown backbone 'alexnet'; valid: keras_resnet50, resnet50, vgg16, vgg19"
    ):
        stylize_mod.stylize_to_folder(
            bad_arch, "chelsea", "starry_night", tmp_path / "b", run=RunOptions(weights="random")
        )
    with pytest.raises(NstbenchError, match="valid: keras_resnet50, resnet50, vgg16, vgg19"):
        load_backbone("vgg11", "random")


def test_unknown_network_variant_on_the_cli_lists_valid_ones(tmp_path, capsys):
    rc, _, err = run_cli(
        capsys,
        [
            "train",
            "--preset",
            "hust",
            "--style",
            "mosaic",
            "--profile",
            "smoke",
            "--weights",
            "random",
            "--network",
            "unet",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert_one_line_error(rc, err, "unknown network variant 'unet'", "hust", "johnson2016", "pytorch-examples")


def test_unknown_choice_lists_valid_ones(tmp_path, capsys):
    """argparse's own errors (a bad --init choice) are one line too, exit status 2, listing the choices."""
    rc, _, err = run_cli(capsys, stylize_args(tmp_path / "o", init="gray"))
    assert_one_line_error(rc, err, "invalid choice: 'gray'", "content", "noise", "nstbench stylize --help")


# ---------------------------------------------------------------------------------------------
# Weights files with wrong keys or shapes
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory, vgg19_random):
    d = tmp_path_factory.mktemp("weights")
    feats = {k.split(".", 1)[1]: v for k, v in vgg19_random.extractor.state_dict().items()}
    torch.save({"conv.weight": torch.zeros(3)}, d / "keys.pth")
    shapes = dict(feats)
    shapes["0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(shapes, d / "shapes.pth")
    (d / "junk.pth").write_bytes(b"not a torch file")
    return d


@pytest.mark.parametrize(
    "name,message",
    [
        ("keys.pth", "do not fit vgg19: missing"),
        ("shapes.pth", "do not fit vgg19: wrong shapes (0.weight (8, 3, 3, 3) != (64, 3, 3, 3))"),
        ("junk.pth", "cannot read weights file"),
    ],
)
def test_bad_weights_files_on_the_cli(bad_weights, tmp_path, capsys, name, message):
    rc, _, err = run_cli(capsys, stylize_args(tmp_path / "o", weights=bad_weights / name))
    assert_one_line_error(rc, err, message, str(bad_weights / name))
    assert not (tmp_path / "o" / "output.png").exists()


def test_bad_weights_file_for_training(bad_weights, tmp_path, capsys):
    rc, _, err = run_cli(
        capsys,
        [
            "train",
            "--preset",
            "hust",
            "--style",
            "mosaic",
            "--profile",
            "smoke",
            "--weights",
            str(bad_weights / "shapes.pth"),
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert_one_line_error(rc, err, "wrong shapes", progress_lines=True)


# ---------------------------------------------------------------------------------------------
# Unwritable output folders (stylize: test_cli.py)
# ---------------------------------------------------------------------------------------------


def test_unwritable_output_for_train_and_apply(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    rc, _, err = run_cli(
        capsys,
        [
            "train",
            "--preset",
            "hust",
            "--style",
            "mosaic",
            "--profile",
            "smoke",
            "--weights",
            "random",
            "--out",
            str(blocker / "sub"),
        ],
    )
    assert_one_line_error(rc, err, "cannot write to output folder")
    from nstbench.config.variants import get_variant
    from nstbench.nets.transformer import build_transformer

    torch.save(build_transformer(get_variant("pytorch-examples")).state_dict(), tmp_path / "net.pth")
    rc, _, err = run_cli(
        capsys,
        ["apply", "--checkpoint", str(tmp_path / "net.pth"), "--content", "chelsea", "--out", str(blocker / "sub")],
    )
    assert_one_line_error(rc, err, "cannot write to output folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = run_cli(capsys, stylize_args(ro))
        assert_one_line_error(rc, err, "cannot write to output folder")
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------------------------------------
# NaN mid-run, and what a failed or interrupted run leaves behind
# ---------------------------------------------------------------------------------------------


def _loss_that(monkeypatch, at_call: int, action):
    """Wrap the real Gatys loss; from call `at_call` on, `action(terms)` replaces its terms."""
    real = stylize_mod.make_gatys_loss

    def patched(*a, **k):
        fn, calls = real(*a, **k), {"n": 0}

        def loss(x):
            calls["n"] += 1
            terms = fn(x)
            return action(terms) if calls["n"] >= at_call else terms

        return loss

    monkeypatch.setattr(stylize_mod, "make_gatys_loss", patched)


def _nan(terms):
    return dict(terms, total=terms["total"] * float("nan"))


def _interrupt(terms):
    raise KeyboardInterrupt


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_nan_mid_run_stops_keeps_last_finite_image_and_says_so(tmp_path, capsys, monkeypatch):
    # the reference: the same run stopped after 2 updates, i.e. the image the 3rd step measured
    rc, _, err = run_cli(capsys, stylize_args(tmp_path / "two", steps=2))
    assert rc == 0, err
    _loss_that(monkeypatch, 4, _nan)  # the loss of the 4th step (image after 3 updates) is NaN
    out = tmp_path / "nan"
    rc, stdout, err = run_cli(capsys, stylize_args(out, steps=10))
    line = assert_one_line_error(rc, err, "non-finite at step 4", "kept the image of step 3", str(out / "output.png"))
    assert "wrote" in line
    assert np.array_equal(
        np.asarray(Image.open(out / "output.png")), np.asarray(Image.open(tmp_path / "two" / "output.png"))
    )
    rec = json.load(open(out / "run.json"))
    assert rec["status"] == "diverged" and "non-finite" in rec["message"]
    rows = list(csv.DictReader(open(out / "curve.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # stopped: no step 5..10
    assert all(np.isfinite(float(r["total"])) for r in rows[:3]) and rows[3]["total"] == "nan"
    assert not list(out.glob(".*"))  # no temporary files left


def test_diverged_rerun_keeps_the_finished_result(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, stylize_args(out, steps=2))
    assert rc == 0, err
    before = _snapshot(out)
    _loss_that(monkeypatch, 2, _nan)
    rc, _, err = run_cli(capsys, stylize_args(out, steps=5) + ["--overwrite"])
    assert_one_line_error(rc, err, "non-finite at step 2", str(out / "diverged" / "output.png"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # untouched, byte for byte
    assert json.load(open(out / "diverged" / "run.json"))["status"] == "diverged"
    assert sorted(p.name for p in (out / "diverged").iterdir()) == ["curve.csv", "output.png", "run.json"]
    assert not list(out.glob(".*"))


@pytest.fixture(scope="module")
def results_template(tmp_path_factory):
    """A results folder holding two finished runs (copied for each test)."""
    results = tmp_path_factory.mktemp("template") / "results"
    for name in ("upes-run", "other-run"):
        assert main(stylize_args(results / name)) == 0
    return results


@pytest.mark.parametrize("failure", ["bad style image", "bad weights", "unknown layer", "interrupted", "cuda"])
def test_failed_or_interrupted_run_leaves_existing_results_untouched(
    results_template, tmp_path, capsys, monkeypatch, failure
):
    results = tmp_path / "results"
    shutil.copytree(results_template, results)
    run, other = results / "upes-run", results / "other-run"
    before = {d: _snapshot(d) for d in (run, other)}
    args = stylize_args(run, steps=5)
    if failure == "bad style image":
        (tmp_path / "t.jpg").write_text("text")
        args = stylize_args(run, steps=5, style=tmp_path / "t.jpg")
    elif failure == "bad weights":
        torch.save({"x": torch.zeros(1)}, tmp_path / "w.pth")
        args = stylize_args(run, steps=5, weights=tmp_path / "w.pth")
    elif failure == "unknown layer":
        monkeypatch.setattr(
            "nstbench.config.presets.PRESETS",
            {"upes": replace(UPES, loss=replace(UPES.loss, content_layers=(("relu4_9", 1.0),)))},
        )
    elif failure == "interrupted":
        _loss_that(monkeypatch, 3, _interrupt)  # Ctrl-C during step 3
    else:
        args = stylize_args(run, steps=5, device="cuda:0")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    rc, _, err = run_cli(capsys, args + ["--overwrite"])
    assert rc == (130 if failure == "interrupted" else 2), err
    assert len([ln for ln in err.strip().splitlines() if not ln.startswith("[upes] step")]) == 1
    assert "Traceback" not in err
    for d in (run, other):
        assert _snapshot(d) == before[d], f"{failure} changed {d}"
    if failure == "interrupted":  # the partial result went beside the finished one, not over it
        assert "interrupted after 2 of 5 steps; kept the image of step 2" in err and str(run / "interrupted") in err
        assert json.load(open(run / "interrupted" / "run.json"))["status"] == "interrupted"
