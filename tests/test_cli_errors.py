"""Issue 15's cases through `nstbench.interfaces.cli.main` in-process: each user error is one line on stderr,
exit status 2, no traceback, and nothing written (or the previous result intact); outputs follow
one --out convention and have one writer at a time (a lock file)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import needs_assets, one_line_error, run_cli, stylize_argv
from PIL import Image

from nstbench.config.variants import get_variant
from nstbench.harness.experiment import result_dir
from nstbench.methods.gatys import Mix, RunOptions
from nstbench.nets import device as device_mod
from nstbench.nets.records import LOCK_NAME, OutputLock
from nstbench.nets.transformer import build_transformer

pytestmark = [needs_assets, pytest.mark.usefixtures("one_thread")]

STYLIZE = stylize_argv(2, 32, "--progress-every", "0")
TRAIN = [
    "train",
    "--preset",
    "hust",
    "--style",
    "mosaic",
    "--profile",
    "smoke",
    "--weights",
    "random",
    "--progress-every",
    "0",
]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def net_pth(tmp_path_factory):
    p = tmp_path_factory.mktemp("net") / "net.pth"
    torch.save(build_transformer(get_variant("pytorch-examples")).state_dict(), p)
    return p


@pytest.fixture
def sleeper():
    """A live process of ours (its pid owns a lock in the lock tests); ended by its own pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["johnson2016", "hust"])
def test_train_size_not_a_multiple_of_4_is_refused_before_any_work(tmp_path, capsys, preset):
    out = tmp_path / "X"
    rc, _, err = run_cli(
        capsys,
        [
            "train",
            "--preset",
            preset,
            "--style",
            "mosaic",
            "--data",
            "coco100",
            "--size",
            "250",
            "--steps",
            "1",
            "--weights",
            "random",
            "--out",
            out,
        ],
    )
    one_line_error(rc, err, "training size 250 px", "multiple of 4", "248 or 252")
    assert not out.exists()  # no folder, no header-only loss.csv


def test_the_harness_checks_the_training_size_too(tmp_path):
    from nstbench.config.errors import NstbenchError
    from nstbench.nets.data import ImageFolderData

    with pytest.raises(NstbenchError, match="multiple of 4"):
        ImageFolderData(tmp_path, 30, 2)
    ImageFolderData.check_size(32)  # valid sizes pass


def test_style_image_too_thin_for_the_backbone(tmp_path, capsys):
    Image.fromarray(np.zeros((40, 1600, 3), np.uint8)).save(tmp_path / "wide.png")
    rc, _, err = run_cli(
        capsys,
        [
            "stylize",
            "--preset",
            "hust",
            "--content",
            "octopus",
            "--style",
            tmp_path / "wide.png",
            "--weights",
            "random",
            "--steps",
            "1",
            "--size",
            "64",
            "--out",
            tmp_path / "o",
        ],
    )
    one_line_error(rc, err, "style image", "64x1 after resizing", "at least 16 px")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "size,message",
    [
        ("5", "--size must be at least 16 px, got 5"),
        ("-5", "argument --size: must be at least 1, got -5"),
        ("0", "argument --size: must be at least 1, got 0"),
        ("20000", "would be 20000x13304, above the limit"),
    ],
)
def test_apply_sizes(net_pth, tmp_path, capsys, size, message):
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", "chelsea", "--size", size, "--out", tmp_path / "a.png"]
    )
    one_line_error(rc, err, message)
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--size", "0", "argument --size: must be at least 1, got 0"),
        ("--steps", "0", "argument --steps: must be at least 1, got 0"),
        ("--progress-every", "-1", "argument --progress-every: must be at least 0, got -1"),
        ("--print-every", "-1", "argument --print-every: must be at least 0, got -1"),
        ("--size", "abc", "expected a whole number, got 'abc'"),
    ],
)
def test_stylize_values_are_checked(tmp_path, capsys, option, value, message):
    argv = list(STYLIZE)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    rc, _, err = run_cli(capsys, argv + ["--out", tmp_path / "o"])
    one_line_error(rc, err, message, "nstbench stylize --help")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "option,value",
    [
        ("--style-weight", "-1"),
        ("--content-weight", "nan"),
        ("--tv-weight", "inf"),
        ("--print-every", "-1"),
        ("--batch", "0"),
    ],
)
def test_train_values_are_checked(tmp_path, capsys, option, value):
    rc, _, err = run_cli(capsys, TRAIN + [option, value, "--out", tmp_path / "t"])
    one_line_error(rc, err, f"argument {option}")
    assert not (tmp_path / "t").exists()


def test_memory_estimate_refuses_a_run_that_cannot_fit(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(device_mod, "available_bytes", lambda dev: 2**30)  # 1 GiB free
    rc, _, err = run_cli(
        capsys,
        [
            "stylize",
            "--preset",
            "hust",
            "--content",
            "chelsea",
            "--style",
            "hockney",
            "--weights",
            "random",
            "--steps",
            "1",
            "--size",
            "2000",
            "--out",
            tmp_path / "o",
        ],
    )
    line = one_line_error(
        rc, err, "a 2000x1330 vgg19 optimisation needs about", "1.0 GiB free on cpu", "use a smaller --size"
    )
    assert float(line.split("needs about ")[1].split(" GiB")[0]) > 3  # ~592 floats per pixel
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("preset", ["hust", "nyu"])
def test_activation_estimate_matches_what_autograd_keeps(preset):
    """The estimate against the activations autograd really saves for the backward pass of the
    preset's loss (parameters excluded), at 192 x 160 px."""
    from nstbench.config.presets import get_preset
    from nstbench.methods.gatys import make_gatys_loss
    from nstbench.nets.weights import load_backbone

    p = get_preset(preset)
    b = load_backbone(p.backbone, "random")
    own = {t.data_ptr() for t in list(b.extractor.parameters()) + list(b.extractor.buffers())}
    c = torch.rand(1, 3, 160, 192)
    est = device_mod.activation_bytes(
        b.extractor, [n for n, _ in p.loss.content_layers + p.loss.style_layers], (160, 192)
    )
    saved = {}

    def pack(t):
        if t.data_ptr() not in own:
            saved[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
        return t

    loss = make_gatys_loss(b, c, c, p.loss, p.space)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss(c.clone().requires_grad_(True))
    assert 0.5 < sum(saved.values()) / est < 2.0


# ---------------------------------------------------------------------------------------------
# Devices, environment, weights, data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dev,message",
    [
        ("mps", "device 'mps' cannot be used with this torch build"),
        ("foo", "unknown device 'foo'"),
        ("cuda:7", "device 'cuda:7'"),
    ],
)
def test_devices_this_build_lacks(tmp_path, capsys, dev, message):
    if dev.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    if dev == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    rc, _, err = run_cli(capsys, STYLIZE + ["--device", dev, "--out", tmp_path / "o"])
    one_line_error(rc, err, message)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_bad_max_pixels_setting(tmp_path, capsys, monkeypatch, value):
    monkeypatch.setenv("NSTBENCH_MAX_PIXELS", value)
    rc, _, err = run_cli(capsys, STYLIZE + ["--out", tmp_path / "o"])
    one_line_error(rc, err, f"NSTBENCH_MAX_PIXELS must be a positive whole number of pixels, got '{value}'")


def test_bad_max_pixels_in_a_real_process(tmp_path):
    """The setting used to be parsed at import: a traceback before main() could catch anything."""
    env = dict(os.environ, NSTBENCH_MAX_PIXELS="abc")
    r = subprocess.run(
        [sys.executable, "-m", "nstbench", *STYLIZE, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    one_line_error(r.returncode, r.stderr, "NSTBENCH_MAX_PIXELS")


def test_weights_requests(tmp_path, capsys):
    (tmp_path / "garbage.pth").write_bytes(b"e" * 100)
    (tmp_path / "folder").mkdir()
    cases = [
        (
            "Random",
            "unknown weights 'Random'; valid: PATH (a state-dict file), auto, caffe, gatys, hed, imagenet, keras, random, torchvision",
        ),
        (tmp_path / "folder", "is a folder; give a weights file or one of auto, imagenet, random"),
        (tmp_path / "garbage.pth", "not a file saved by torch.save"),
    ]
    for value, message in cases:
        rc, _, err = run_cli(capsys, STYLIZE + ["--weights", value, "--out", tmp_path / "o"])
        one_line_error(rc, err, message)
    assert not (tmp_path / "o").exists()


def test_garbage_checkpoint(tmp_path, capsys):
    (tmp_path / "garbage.pth").write_bytes(b"e" * 100)
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", tmp_path / "garbage.pth", "--content", "chelsea", "--out", tmp_path / "a.png"]
    )
    one_line_error(rc, err, "cannot read checkpoint", "not a file saved by torch.save")


def test_data_that_is_a_file(tmp_path, capsys):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "file.jpg")
    rc, _, err = run_cli(capsys, TRAIN + ["--data", tmp_path / "file.jpg", "--out", tmp_path / "t"])
    one_line_error(rc, err, "--data expects a folder of training images", "is a file")
    assert not (tmp_path / "t").exists()


def test_empty_and_non_image_files_are_not_usable_training_images(tmp_path, capsys):
    d = tmp_path / "data"
    d.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / "real.jpg")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not a picture")
    rc, _, err = run_cli(capsys, TRAIN + ["--data", d, "--batch", "2", "--out", tmp_path / "t"])
    one_line_error(
        rc,
        err,
        "has 1 usable image file(s)",
        "2 empty or non-JPEG/PNG file(s) named as images skipped",
        "a batch needs 2",
    )
    assert not (tmp_path / "t").exists()


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def test_report_without_results(tmp_path, capsys):
    rc, _, err = run_cli(capsys, ["report", "--results", "/nope", "--out", tmp_path / "R"])
    one_line_error(rc, err, "results folder not found: /nope")
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, ["report", "--results", tmp_path / "empty", "--out", tmp_path / "R"])
    one_line_error(rc, err, "holds no complete experiment results")
    assert not (tmp_path / "R").exists()


def test_report_out_is_a_file(tmp_path, capsys):
    (tmp_path / "R").write_text("keep me")
    rc, _, err = run_cli(capsys, ["report", "--results", "results", "--out", tmp_path / "R"])
    one_line_error(rc, err, f"--out {tmp_path / 'R'} is a file")
    assert (tmp_path / "R").read_text() == "keep me"


# ---------------------------------------------------------------------------------------------
# --out convention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "out,message",
    [
        ("result.png", "looks like a file name, but --out is a folder"),
        ("model.pth", "looks like a file name"),
        ("", "--out is empty"),
    ],
)
def test_stylize_and_train_out_is_a_folder(tmp_path, capsys, monkeypatch, out, message):
    monkeypatch.chdir(tmp_path)
    for argv in (STYLIZE, TRAIN):
        rc, _, err = run_cli(capsys, argv + ["--out", out])
        one_line_error(rc, err, message)
    assert list(tmp_path.iterdir()) == []


def test_existing_stylize_run_is_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, STYLIZE + ["--out", out])[0] == 0
    before = snapshot(out)
    rc, _, err = run_cli(capsys, STYLIZE + ["--steps", "3", "--out", out])
    one_line_error(rc, err, "already holds a stylize run; pass --overwrite")
    assert snapshot(out) == before
    assert run_cli(capsys, STYLIZE + ["--steps", "3", "--out", out, "--overwrite"])[0] == 0
    assert json.loads((out / "run.json").read_text())["preset"]["steps"] == 3


def test_train_into_a_stylize_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, STYLIZE + ["--out", out])[0] == 0
    before = snapshot(out)
    rc, _, err = run_cli(capsys, TRAIN + ["--out", out])
    one_line_error(rc, err, "holds a `stylize` run (run.json); choose another --out for `train`")
    assert snapshot(out) == before


def test_apply_out_is_a_file_with_any_image_suffix(net_pth, tmp_path, capsys):
    rc, out, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", "chelsea", "--size", "32", "--out", tmp_path / "x.webp"]
    )
    assert rc == 0, err
    assert (tmp_path / "x.webp").is_file() and Image.open(tmp_path / "x.webp").format == "WEBP"
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", "chelsea", "--out", tmp_path / "x.xyz"]
    )
    one_line_error(rc, err, "cannot write images as '.xyz'")
    rc, _, err = run_cli(capsys, ["apply", "--checkpoint", net_pth, "--content", "chelsea", "--out", ""])
    one_line_error(rc, err, "--out is empty")


def test_apply_checks_every_input_before_writing(net_pth, tmp_path, capsys):
    rc, _, err = run_cli(
        capsys,
        [
            "apply",
            "--checkpoint",
            net_pth,
            "--content",
            "chelsea",
            tmp_path / "missing.jpg",
            "--size",
            "32",
            "--out",
            tmp_path / "outs",
        ],
    )
    one_line_error(rc, err, "image not found", "missing.jpg")
    assert not (tmp_path / "outs").exists()


# ---------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------


def test_resume_of_a_finished_run_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "t"
    assert run_cli(capsys, TRAIN + ["--out", out])[0] == 0
    before = snapshot(out)
    rc, _, err = run_cli(capsys, TRAIN + ["--resume", "--out", out])
    one_line_error(rc, err, "finished at step 4; nothing to resume")
    assert snapshot(out) == before
    rc, _, err = run_cli(capsys, TRAIN + ["--out", out])
    one_line_error(rc, err, "pass --resume --steps N (N > 4) to train it further, --overwrite to start afresh")
    assert snapshot(out) == before
    # extending the run is a resume; a changed setting is named with both values
    rc, _, err = run_cli(capsys, TRAIN + ["--resume", "--steps", "6", "--style-weight", "7", "--out", out])
    one_line_error(rc, err, "preset.loss.beta: checkpoint 40.0, now 7.0")
    assert snapshot(out) == before
    assert run_cli(capsys, TRAIN + ["--resume", "--steps", "5", "--out", out])[0] == 0
    assert json.loads((out / "run.json").read_text())["steps_done"] == 5


# ---------------------------------------------------------------------------------------------
# One writer per output
# ---------------------------------------------------------------------------------------------


def _lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(
        json.dumps({"pid": pid, "host": socket.gethostname(), "command": "train", "since_utc": "2026-12-01T00:00:00Z"})
    )


def test_a_second_writer_is_refused(tmp_path, capsys, sleeper):
    for argv, folder in ((STYLIZE, tmp_path / "s"), (TRAIN, tmp_path / "t")):
        _lock(folder, sleeper)
        rc, _, err = run_cli(capsys, argv + ["--out", folder])
        one_line_error(rc, err, f"is being written by another nstbench run (pid {sleeper}")
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # nothing written beside it
    _lock(tmp_path / "R", sleeper)
    rc, _, err = run_cli(capsys, ["report", "--results", "results", "--out", tmp_path / "R"])
    one_line_error(rc, err, "is being written by another nstbench run")


def test_a_stale_lock_is_taken_over(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock(tmp_path / "s", dead.pid)
    rc, _, err = run_cli(capsys, STYLIZE + ["--out", tmp_path / "s"])
    assert rc == 0, err
    assert not (tmp_path / "s" / LOCK_NAME).exists()  # released at the end


def test_the_lock_is_held_while_the_run_works(tmp_path, capsys, monkeypatch):
    from nstbench.methods import gatys_run as stylize_mod

    real, seen = stylize_mod.run_preset, {}

    def spy(*a, **k):
        seen["owner"] = json.loads((tmp_path / "s" / LOCK_NAME).read_text())
        return real(*a, **k)

    monkeypatch.setattr(stylize_mod, "run_preset", spy)
    assert run_cli(capsys, STYLIZE + ["--out", tmp_path / "s"])[0] == 0
    assert seen["owner"]["pid"] == os.getpid() and seen["owner"]["command"] == "stylize"


def test_experiments_writing_the_same_results_folder(tmp_path, capsys, sleeper, shared_backbones):
    from conftest import load_script

    results = tmp_path / "results"
    lock_dir = result_dir(results, "smoke", "random", "e4_init").parent  # the lock sits beside the results
    lock_dir.mkdir(parents=True)
    (lock_dir / ".e4_init.lock").write_text(
        json.dumps({"pid": sleeper, "host": socket.gethostname(), "command": "e4_init.py", "since_utc": "now"})
    )
    rc = load_script("e4_init").main(["--profile", "smoke", "--weights", "random", "--out", str(results)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("e4_init: error: ") and "is being written by another" in err
    assert sorted(p.name for p in lock_dir.iterdir()) == [".e4_init.lock"]


def test_output_lock_refuses_in_process_too(tmp_path):
    from nstbench.config.errors import NstbenchError

    with OutputLock(tmp_path / "x.lock", "first"):
        with pytest.raises(NstbenchError, match="first"):
            with OutputLock(tmp_path / "x.lock", "second"):
                pass
    assert not (tmp_path / "x.lock").exists()


# ---------------------------------------------------------------------------------------------
# Records and small commands
# ---------------------------------------------------------------------------------------------


def test_run_json_names_final_and_records_the_last_curve_row(tmp_path, capsys):
    import csv

    assert run_cli(capsys, STYLIZE + ["--out", tmp_path / "s"])[0] == 0
    rec = json.loads((tmp_path / "s" / "run.json").read_text())
    last = list(csv.DictReader(open(tmp_path / "s" / "curve.csv")))[-1]
    assert rec["last_curve_row"]["step"] == int(last["step"]) == 2
    assert rec["last_curve_row"]["total"] == pytest.approx(float(last["total"]), rel=1e-6)
    assert "after the last update" in rec["final_is"]


def test_version_images_presets(capsys):
    from nstbench import __version__

    rc, out, _ = run_cli(capsys, ["--version"])
    assert rc == 0 and out.strip() == f"nstbench {__version__}"
    rc, out, _ = run_cli(capsys, ["images"])
    assert rc == 0 and "octopus" in out and "asset folder" in out and "coco100" in out
    rc, out, _ = run_cli(capsys, ["presets", "--fast"])
    assert rc == 0 and "johnson2016" in out and "pytorch-examples" in out and "upes" not in out
    rc, out, _ = run_cli(capsys, ["presets"])
    assert rc == 0 and "upes" in out and "johnson2016" not in out


def test_apply_a_folder_and_content_scale(net_pth, tmp_path, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    for name, (h, w) in (("a.png", (40, 60)), ("b.jpg", (48, 32))):
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(d / name)
    (d / "notes.txt").write_text("not an image")
    rc, out, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", d, "--content-scale", "2", "--out", tmp_path / "outs"]
    )
    assert rc == 0, err
    # int(60 / 2) x int(40 / 2) = 30 x 20 in; a pytorch/examples network gives its own size, sides rounded up to 4
    assert Image.open(tmp_path / "outs" / "a.png").size == (32, 20)
    assert Image.open(tmp_path / "outs" / "b.png").size == (16, 24)
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", d, "--content-scale", "4", "--out", tmp_path / "small"]
    )
    one_line_error(rc, err, "would be 15x10 after resizing; the short side must be at least 16 px")
    assert not (tmp_path / "small").exists()
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pth, "--content", tmp_path / "empty", "--out", tmp_path / "e"]
    )
    one_line_error(rc, err, "holds no .jpg/.jpeg/.png images")


def test_export_onnx_gives_the_same_image(net_pth, tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rc, out, err = run_cli(capsys, ["apply", "--checkpoint", net_pth, "--export-onnx", tmp_path / "net.onnx"])
    assert rc == 0, err
    from nstbench.config.specs import Resize
    from nstbench.nets.images import load_image
    from nstbench.nets.transformer import load_transformer

    x = load_image("chelsea", Resize("exact", (48, 64)))
    net, _ = load_transformer(net_pth)
    with torch.no_grad():
        ref = net.stylize_unit(x).clamp(0, 1).numpy()
    got = ort.InferenceSession(str(tmp_path / "net.onnx")).run(None, {"image": x.numpy()})[0]
    assert got.shape == ref.shape == (1, 3, 48, 64)  # sides other than the traced 256 work (dynamic)
    assert np.abs(got - ref).max() <= 1 / 255
    rc, _, err = run_cli(capsys, ["apply", "--checkpoint", net_pth, "--export-onnx", tmp_path / "net.pt"])
    one_line_error(rc, err, "must end in .onnx")
    rc, _, err = run_cli(capsys, ["apply", "--checkpoint", net_pth])
    one_line_error(rc, err, "give --content")


def test_output_name_and_original_colors(tmp_path, capsys):
    from nstbench.config.specs import Resize
    from nstbench.nets.images import _RGB_TO_YUV, load_image

    styled = STYLIZE + ["--init", "style"]  # starts from the style image: the colours differ from the content's
    assert run_cli(capsys, styled + ["--out", tmp_path / "a"])[0] == 0
    rc, out, err = run_cli(capsys, styled + ["--out", tmp_path / "b", "--original-colors", "--output", "result.png"])
    assert rc == 0, err
    assert "wrote " + str(tmp_path / "b" / "result.png") in out and not (tmp_path / "b" / "output.png").exists()
    rec = json.loads((tmp_path / "b" / "run.json").read_text())
    assert rec["original_colors"] is True and rec["output"] == "result.png"
    m = torch.tensor(_RGB_TO_YUV, dtype=torch.float64)

    def yuv(path):
        x = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float64) / 255).permute(2, 0, 1)
        return torch.einsum("ij,jhw->ihw", m, x)

    plain, kept = yuv(tmp_path / "a" / "output.png"), yuv(tmp_path / "b" / "result.png")
    w, h = Image.open(tmp_path / "a" / "output.png").size
    content = torch.einsum("ij,jhw->ihw", m, load_image("octopus", Resize("exact", (h, w)))[0].double())
    assert (kept[0] - plain[0]).abs().mean() < 2 / 255  # the stylised luminance (8-bit rounding, clamping)
    assert (kept[1:] - content[1:]).abs().mean() < 2 / 255  # the content's chroma
    assert (plain[1:] - content[1:]).abs().mean() > 5 * (kept[1:] - content[1:]).abs().mean()
    rc, _, err = run_cli(capsys, STYLIZE + ["--out", tmp_path / "c", "--output", "sub/x.png"])
    one_line_error(rc, err, "must be a file name with a suffix")
    assert not (tmp_path / "c").exists()


def test_several_styles_are_blended_as_weighted_grams(vgg19_random, tmp_path, capsys):
    """The blended target is sum_i w_i G_i (weights normalised), checked against Grams computed here."""
    from nstbench.config.sources import UPES
    from nstbench.methods.gatys import make_gatys_loss
    from nstbench.nets.images import imagenet_normalize
    from nstbench.nets.losses import gram, style_loss

    g = torch.Generator().manual_seed(0)
    c, s1, s2 = (torch.rand(1, 3, 32, 40, generator=g) for _ in range(3))
    x = unit = torch.rand(1, 3, 32, 40, generator=g)
    spec = UPES.loss
    got = make_gatys_loss(vgg19_random, c, [s1, s2], spec, "unit", mix=Mix(style_blend=[3, 1]))(x)["style"]
    layers = [n for n, _ in spec.style_layers]
    f1, f2 = (vgg19_random.extract(imagenet_normalize(s), layers) for s in (s1, s2))
    targets = {n: 0.75 * gram(f1[n], spec.gram_norm) + 0.25 * gram(f2[n], spec.gram_norm) for n in layers}
    fx = vgg19_random.extract(imagenet_normalize(unit), layers)
    want = style_loss(fx, targets, dict(spec.style_layers), spec.gram_norm, spec.style_mode, spec.style_reduce)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    one = make_gatys_loss(vgg19_random, c, s1, spec, "unit")(x)["style"]
    assert torch.equal(
        make_gatys_loss(vgg19_random, c, [s1, s2], spec, "unit", mix=Mix(style_blend=[1, 0]))(x)["style"], one
    )
    # on the command line: the record names both styles and the weights; a count mismatch is one line
    rc, _, err = run_cli(
        capsys,
        STYLIZE[:6] + ["hockney", "starry_night", "--style-blend", "3,1"] + STYLIZE[7:] + ["--out", tmp_path / "b"],
    )
    assert rc == 0, err
    rec = json.loads((tmp_path / "b" / "run.json").read_text())
    assert rec["style"] == ["hockney", "starry_night"] and rec["style_blend"] == [3.0, 1.0]
    rc, _, err = run_cli(capsys, STYLIZE + ["--style-blend", "1,2", "--out", tmp_path / "c"])
    one_line_error(rc, err, "--style-blend has 2 weight(s) for 1 --style image(s)")
    assert not (tmp_path / "c").exists()


# Adam, and L-BFGS as one call of exactly --steps evaluations (nyu's tutorial loop would run 20 for 4)
@pytest.mark.parametrize("preset", ["upes", "gatys2016"])
def test_save_every_writes_the_steps_images(tmp_path, capsys, preset):
    argv = [
        "stylize",
        "--preset",
        preset,
        "--content",
        "octopus",
        "--style",
        "hockney",
        "--weights",
        "random",
        "--steps",
        "4",
        "--size",
        "32",
        "--progress-every",
        "0",
        "--save-every",
        "2",
        "--out",
        tmp_path / "s",
    ]
    rc, _, err = run_cli(capsys, argv)
    assert rc == 0, err
    saved = sorted(p.name for p in (tmp_path / "s" / "steps").iterdir())
    assert saved == ["step_00002.png", "step_00004.png"]
    size = Image.open(tmp_path / "s" / "output.png").size
    assert all(Image.open(tmp_path / "s" / "steps" / n).size == size for n in saved)
    if preset == "upes":  # Adam, no clamping: step 4's image is not the image after the last update
        assert not np.array_equal(
            np.asarray(Image.open(tmp_path / "s" / "steps" / "step_00002.png")),
            np.asarray(Image.open(tmp_path / "s" / "steps" / "step_00004.png")),
        )


def test_two_real_train_runs_into_one_folder(tmp_path, capsys):
    """A real `nstbench train` holds the folder: a second one is refused, the first finishes its
    work (here: stops on Ctrl-C with a checkpoint, as a long run would)."""
    import signal
    import time
    from pathlib import Path

    out = tmp_path / "t"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    first = subprocess.Popen(
        [sys.executable, "-m", "nstbench", *TRAIN, "--steps", "100000", "--out", str(out)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / "loss.csv").is_file() and time.time() < deadline:  # training has started
            time.sleep(0.2)
        assert (out / LOCK_NAME).is_file()
        rc, _, err = run_cli(capsys, TRAIN + ["--steps", "3", "--out", out])
        one_line_error(rc, err, f"is being written by another nstbench run (pid {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)
        _, first_err = first.communicate(timeout=120)
    assert first.returncode == 130, first_err
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "interrupted" and rec["steps"] == 100000  # the first run's record, not the second's
    assert (out / "checkpoint.pt").is_file() and not (out / LOCK_NAME).exists()


def test_multi_scale_continues_from_the_upsampled_coarse_result(vgg19_random, tmp_path, capsys, monkeypatch):
    """--scales 32,64: the second scale's first curve row is the loss of the first scale's result,
    upsampled (bicubic) to the finer size: recomputed here from run_preset and the loss alone."""
    import csv

    from nstbench.config.sources import UPES
    from nstbench.methods import gatys_run as stylize_mod
    from nstbench.methods.gatys import make_gatys_loss
    from nstbench.nets.images import space_to_unit, unit_to_space

    monkeypatch.setattr(stylize_mod, "load_backbone", lambda *a, **k: vgg19_random)
    rc, out, err = run_cli(capsys, STYLIZE[:-4] + ["--scales", "32,64", "--out", tmp_path / "m"])  # drop --size 32
    assert rc == 0, err
    assert "2 steps x 2 scales" in out and "scales=[32, 64]" in out
    rows = list(csv.DictReader(open(tmp_path / "m" / "curve.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    rec = json.loads((tmp_path / "m" / "run.json").read_text())
    assert [p["size"] for p in rec["scales"]] == [32, 64] and rec["content_size_hw"] == [64, 94]
    coarse = stylize_mod.override(UPES, dict(steps=2, size=32))
    c, s = stylize_mod.load_pair(coarse, "octopus", "hockney")
    first = stylize_mod.run_preset(coarse, c, s, vgg19_random, run=RunOptions(progress_every=0))
    fine = stylize_mod.override(UPES, dict(steps=2, size=64))
    c2, s2 = stylize_mod.load_pair(fine, "octopus", "hockney")
    up = torch.nn.functional.interpolate(
        space_to_unit(first.image, coarse.space), size=(64, 94), mode="bicubic", align_corners=False
    ).clamp(0, 1)
    total = make_gatys_loss(vgg19_random, c2, s2, fine.loss, fine.space)(unit_to_space(up, fine.space))["total"]
    assert float(rows[2]["total"]) == pytest.approx(float(total), rel=1e-6)
    rc, _, err = run_cli(capsys, STYLIZE + ["--scales", "64,32", "--out", tmp_path / "x"])
    one_line_error(rc, err, "give --size or --scales")
    rc, _, err = run_cli(capsys, STYLIZE[:-4] + ["--scales", "64,32", "--out", tmp_path / "x"])
    one_line_error(rc, err, "--scales must grow from coarse to fine")
    assert not (tmp_path / "x").exists()


def test_stylize_into_a_train_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "t"
    assert run_cli(capsys, TRAIN + ["--out", out])[0] == 0
    before = snapshot(out)
    rc, _, err = run_cli(capsys, STYLIZE + ["--out", out, "--overwrite"])
    one_line_error(rc, err, "holds a `train` run (run.json); choose another --out for `stylize`")
    assert snapshot(out) == before


def test_python_api_returns_data_and_raises_one_line_errors(tmp_path):
    import nstbench
    from nstbench.config.errors import NstbenchError

    r = nstbench.stylize("octopus", "hockney", steps=2, size=32, weights="random")
    assert r.image.shape == (1, 3, 32, 47) and 0 <= float(r.image.min()) and float(r.image.max()) <= 1
    assert list(r.history["step"]) == [1, 2] and r.record["preset_modified"] and r.record["overrides"]["size"] == 32
    assert not list(tmp_path.iterdir())  # nothing written without out=
    with pytest.raises(NstbenchError, match="image not found") as e:
        nstbench.stylize(tmp_path / "missing.jpg", "hockney", steps=1, size=32, weights="random")
    assert "\n" not in str(e.value)
    r2 = nstbench.stylize("octopus", "hockney", steps=2, size=32, weights="random", out=tmp_path / "s")
    assert torch.equal(r2.image, r.image) and (tmp_path / "s" / "run.json").is_file()


def test_train_and_the_scripts_share_the_default_profile(tmp_path, capsys):
    from nstbench.config.profiles import default_profile
    from nstbench.harness.experiment import experiment_parser
    from nstbench.harness.registry import Spec

    assert default_profile("cpu") == "cpu" and default_profile("cuda:0") == "paper"
    spec = Spec(name="e1", title="E1", sources=(), claims=(), archs=(), profiles={"smoke": 0, "cpu": 0, "paper": 0})
    assert experiment_parser(spec, "E1").parse_args([]).profile is None  # resolved later
    rc, _, err = run_cli(
        capsys,
        [
            "train",
            "--preset",
            "hust",
            "--style",
            "mosaic",
            "--weights",
            "random",
            "--size",
            "32",
            "--batch",
            "2",
            "--steps",
            "1",
            "--progress-every",
            "0",
            "--out",
            tmp_path / "t",
        ],
    )
    assert rc == 0, err
    assert "[train hust] profile cpu (the default on cpu" in err
    rec = json.loads((tmp_path / "t" / "run.json").read_text())
    assert rec["data"]["root"].endswith("coco100")  # the cpu profile's data, as the scripts use
