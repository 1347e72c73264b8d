"""Issue 23: nothing a user owns is overwritten, nothing crashes, and every number says what ran.
Each test names the item of the issue it covers."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_assets, one_line_error, run_cli
from PIL import Image

import nstbench
from nstbench.config.errors import NstbenchError
from nstbench.config.variants import get_variant
from nstbench.nets.transformer import CHECKPOINT_KIND, build_transformer

pytestmark = [needs_assets, pytest.mark.usefixtures("one_thread")]
ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(path: Path, variant: str) -> Path:
    cfg = get_variant(variant)
    state = build_transformer(cfg).state_dict()
    torch.save({"kind": CHECKPOINT_KIND, "network": dataclasses.asdict(cfg), "state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def net_pt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("net") / "transformer.pt", "pytorch-examples")


@pytest.fixture(scope="module")
def code_pt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("code") / "transformer.pt", "johnson2016-code")


def _images(folder: Path, n: int = 2) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24, 28, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# ---------------------------------------------------------------------------------------------
# Item 1: apply never overwrites silently
# ---------------------------------------------------------------------------------------------


def test_item1_apply_into_the_content_folder_is_refused(net_pt, tmp_path, capsys):
    before = _images(tmp_path / "photos")
    for extra in ([], ["--overwrite"]):
        rc, _, err = run_cli(
            capsys,
            ["apply", "--checkpoint", net_pt, "--content", tmp_path / "photos", "--out", tmp_path / "photos", *extra],
        )
        one_line_error(rc, err, "input image")
    assert {p.name: p.read_bytes() for p in (tmp_path / "photos").iterdir()} == before


def test_item1_apply_onto_its_own_input_is_refused_even_with_overwrite(net_pt, tmp_path, capsys):
    before = _images(tmp_path, 1)
    me = tmp_path / "img0.png"
    for extra in ([], ["--overwrite"]):
        rc, _, err = run_cli(capsys, ["apply", "--checkpoint", net_pt, "--content", me, "--out", me, *extra])
        one_line_error(rc, err, "would overwrite the input image", "not even with --overwrite")
    assert me.read_bytes() == before["img0.png"]


def test_item1_apply_folder_of_inputs_with_other_suffixes_is_refused(net_pt, tmp_path, capsys):
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "a.jpg")
    rc, _, err = run_cli(capsys, ["apply", "--checkpoint", net_pt, "--content", tmp_path / "a.jpg", "--out", tmp_path])
    one_line_error(rc, err, "folder of the content images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_item1_a_rerun_needs_overwrite(net_pt, tmp_path, capsys):
    argv = ["apply", "--checkpoint", net_pt, "--content", "chelsea", "--size", "32", "--out", tmp_path / "o.png"]
    assert run_cli(capsys, argv)[0] == 0
    first = (tmp_path / "o.png").read_bytes()
    rc, _, err = run_cli(capsys, argv)
    one_line_error(rc, err, "already exists", "--overwrite")
    assert (tmp_path / "o.png").read_bytes() == first
    assert run_cli(capsys, [*argv, "--overwrite"])[0] == 0
    # a folder output too: the second run names the existing file
    argv = ["apply", "--checkpoint", net_pt, "--content", "chelsea", "--size", "32", "--out", tmp_path / "dir"]
    assert run_cli(capsys, argv)[0] == 0
    one_line_error(*run_cli(capsys, argv)[::2], "chelsea.png already exists")


def test_item1_apply_into_another_commands_run_folder_is_refused(net_pt, tmp_path, capsys):
    run_folder = tmp_path / "first"
    run_folder.mkdir()
    (run_folder / "run.json").write_text(json.dumps({"command": "stylize"}))
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", net_pt, "--content", "chelsea", "--size", "32", "--out", run_folder]
    )
    one_line_error(rc, err, "holds a `stylize` run")
    assert sorted(p.name for p in run_folder.iterdir()) == ["run.json"]


# ---------------------------------------------------------------------------------------------
# Item 3: johnson2016-code on small inputs is a one-line refusal naming the minimum, everywhere
# ---------------------------------------------------------------------------------------------


def test_item3_train_too_small_for_johnson2016_code(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, ["train", "--preset", "johnson2016-code", "--style", "mosaic", "--data", "coco100", "--size", "32",
                              "--batch", "2", "--steps", "1", "--weights", "random", "--progress-every", "0", "--out", out])  # fmt: skip
    one_line_error(rc, err, "at least 41 px", "40 px reflection padding")
    assert not out.exists()
    with pytest.raises(NstbenchError, match="at least 41 px"):
        nstbench.train(
            "mosaic", tmp_path / "api", preset="johnson2016-code", size=32, batch=2, steps=1, weights="random"
        )
    assert not (tmp_path / "api").exists()


def test_item3_apply_too_small_for_johnson2016_code(code_pt, tmp_path, capsys):
    rc, _, err = run_cli(
        capsys, ["apply", "--checkpoint", code_pt, "--content", "chelsea", "--size", "32", "--out", tmp_path / "o.png"]
    )
    one_line_error(rc, err, "at least 41 px")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NstbenchError, match="at least 41 px"):
        nstbench.apply(code_pt, "chelsea", size=32)
    assert nstbench.apply(code_pt, "chelsea", size=64).shape[-2:] == (43, 64)  # 43 px >= 41: runs


def test_item3_the_app_shows_the_refusal(code_pt, tmp_path):
    from nstbench.interfaces import app

    entry = app._read_entry(str(code_pt), 0, 0)
    picture = app.named_picture("chelsea")
    with pytest.raises(NstbenchError, match="at least 41 px"):
        app.run_fast(entry, picture, 32, tmp_path)


# ---------------------------------------------------------------------------------------------
# Item 4: a closed pipe is a quiet exit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["presets", "--all"], ["images"]])
def test_item4_output_into_a_closed_pipe_is_quiet(argv):
    # the reader is gone before the command writes anything: every write fails with EPIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "nstbench", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=60)
    assert err == "" and rc == 141, (rc, err)


# ---------------------------------------------------------------------------------------------
# Item 5: a file that is no checkpoint / weights file says what it is
# ---------------------------------------------------------------------------------------------


def test_item5_non_checkpoints_are_named(net_pt, tmp_path, capsys):
    (tmp_path / "run.json").write_text(json.dumps({"command": "train"}))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "fake.jpg")
    assert run_cli(capsys, ["apply", "--checkpoint", net_pt, "--export-onnx", tmp_path / "net.onnx"])[0] == 0
    for name, what in (("run.json", "JSON"), ("net.onnx", "an ONNX model"), ("fake.jpg", "a JPEG image")):
        argv = ["apply", "--checkpoint", tmp_path / name, "--content", "chelsea", "--out", tmp_path / "o.png"]
        one_line_error(*run_cli(capsys, argv)[::2], f"not a checkpoint file: {tmp_path / name} (it is {what})")
    from conftest import stylize_argv

    argv = stylize_argv(1, 32, "--out", tmp_path / "s") + ["--weights", tmp_path / "fake.jpg"]
    one_line_error(*run_cli(capsys, argv)[::2], f"not a weights file: {tmp_path / 'fake.jpg'} (it is a JPEG image)")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------------------------
# Item 8: smaller frictions
# ---------------------------------------------------------------------------------------------


def test_item8_nstbench_alone_prints_help(capsys):
    rc, out, err = run_cli(capsys, [])
    assert rc in (0, 2) and "usage: nstbench" in out + err
    assert all(c in out + err for c in ("stylize", "train", "apply", "presets", "images"))


def test_item8_lr_zero_and_negative_follow_one_rule(tmp_path, capsys):
    from conftest import stylize_argv

    lines = [
        one_line_error(*run_cli(capsys, stylize_argv(1, 32, "--out", tmp_path / "o", "--lr", v))[::2], "--lr")
        for v in ("0", "-1")
    ]
    assert all("must be a finite number > 0, got" in ln for ln in lines), lines


def test_item8_zero_style_blend_is_refused_before_the_backbone_loads(tmp_path, capsys, monkeypatch):
    import nstbench.methods.gatys_run as stylize_mod

    def no_load(*a, **k):
        raise AssertionError("the backbone was loaded before the blend weights were checked")

    monkeypatch.setattr(stylize_mod, "load_backbone", no_load)
    argv = ["stylize", "--preset", "upes", "--content", "octopus", "--style", "hockney", "mosaic",
            "--style-blend", "0,0", "--weights", "random", "--size", "32", "--out", tmp_path / "o"]  # fmt: skip
    one_line_error(*run_cli(capsys, argv)[::2], "--style-blend", "positive sum")
    assert not (tmp_path / "o").exists()


def test_item8_offline_means_no_image_download(tmp_path, monkeypatch):
    from nstbench.nets import assets

    reg = {"images": {"thing": {"file": "style/thing.png", "url": "http://127.0.0.1:9/x", "sha256": "0" * 64}}}
    monkeypatch.setattr(assets, "registry", lambda: reg)
    monkeypatch.setenv("NSTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NSTBENCH_OFFLINE", "1")
    monkeypatch.delenv("NSTBENCH_ASSETS")
    monkeypatch.setattr(assets, "_BESIDE_CLONE", tmp_path / "none")
    with pytest.raises(NstbenchError, match="NSTBENCH_OFFLINE=1") as e:
        assets.resolve_image("thing")
    assert str(tmp_path / "cache" / "style" / "thing.png") in str(e.value)
    assert not (tmp_path / "cache" / "style").exists() or not any((tmp_path / "cache" / "style").iterdir())


def test_item8_a_missing_asset_folder_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NSTBENCH_ASSETS", str(tmp_path / "nonexistent"))
    one_line_error(*run_cli(capsys, ["images"])[::2], f"NSTBENCH_ASSETS={tmp_path / 'nonexistent'} is not a folder")


def test_item8_a_busy_app_port_is_refused_before_the_announcement(capsys):
    pytest.importorskip("streamlit")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, _, err = run_cli(capsys, ["app", "--port", port])
    one_line_error(rc, err, f"port {port}", "choose another --port")
    assert "nstbench app on" not in err


def test_item8_api_errors_name_keywords(tmp_path):
    kw = dict(preset="upes", steps=1, size=32, weights="random", out=tmp_path / "o")
    nstbench.stylize("octopus", "hockney", **kw)
    with pytest.raises(NstbenchError) as e:
        nstbench.stylize("octopus", "hockney", **kw)
    assert "overwrite=True" in str(e.value) and "--" not in str(e.value), e.value


def test_item8_threads_step_files_and_plurals(tmp_path, capsys):
    from conftest import stylize_argv

    torch.set_num_threads(2)
    try:
        rc, out, err = run_cli(
            capsys, stylize_argv(1, 32, "--out", tmp_path / "o", "--threads", "1", "--save-every", "1")
        )
        assert rc == 0, err
        assert json.loads((tmp_path / "o" / "run.json").read_text())["provenance"]["threads"] == 1
    finally:
        torch.set_num_threads(1)
    assert "(1 step," in out, out
    names = [p.name for p in (tmp_path / "o" / "steps").iterdir()]
    assert names == ["step_00001.png"]
    readme = (ROOT / "README.md").read_text()
    assert "steps/step_00010.png" in readme and "--threads N" in readme  # the README says what the code writes


def test_item8_checksum_list_of_a_data_set_is_not_a_stray_file():
    from nstbench.nets.assets import resolve_dataset
    from nstbench.nets.data import ImageFolderData

    root = resolve_dataset("coco100")
    assert (root / "SHA256SUMS").is_file()
    logs = []
    ImageFolderData(root, 32, 2, log=logs.append)
    assert not any("skipped" in m for m in logs), logs


def test_item8_readme_warns_about_scripts_beside_the_clone():
    assert "a script saved beside it imports that folder" in " ".join((ROOT / "README.md").read_text().split())


# ---------------------------------------------------------------------------------------------
# Item 6: a finished training run: the messages suggest what works (the quick start twice:
# tests/test_readme.py::test_quick_start_commands_run_as_written)
# ---------------------------------------------------------------------------------------------

TRAIN = ["train", "--preset", "hust", "--style", "mosaic", "--profile", "smoke", "--weights", "random",
         "--progress-every", "0", "--size", "32", "--batch", "2"]  # fmt: skip


def test_item6_a_finished_run_suggests_what_works(tmp_path, capsys):
    out = tmp_path / "t"
    rc, stdout, err = run_cli(capsys, TRAIN + ["--steps", "1", "--out", out])
    assert rc == 0, err
    assert "(1 step," in stdout  # item 8: no "1 steps"
    line = one_line_error(*run_cli(capsys, TRAIN + ["--steps", "1", "--out", out])[::2], "finished training run")
    assert "--resume --steps N (N > 1)" in line and "--overwrite" in line
    line = one_line_error(
        *run_cli(capsys, TRAIN + ["--steps", "1", "--resume", "--out", out])[::2], "nothing to resume"
    )
    assert "--steps N with N > 1" in line and "--overwrite" in line
    # what they suggest works
    assert run_cli(capsys, TRAIN + ["--steps", "2", "--resume", "--out", out])[0] == 0
    assert json.loads((out / "run.json").read_text())["steps_done"] == 2
    assert run_cli(capsys, TRAIN + ["--steps", "1", "--overwrite", "--out", out])[0] == 0
    assert json.loads((out / "run.json").read_text())["steps_done"] == 1


# ---------------------------------------------------------------------------------------------
# Item 2: stopping `nstbench app` stops its server
# ---------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie is gone
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the server's pid through /proc (Linux)")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_item2_stopping_the_app_stops_its_server(tmp_path, sig):
    pytest.importorskip("streamlit")
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nstbench", "app", "--port", str(port), "--models", str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[int] = []
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end:
            assert proc.poll() is None, f"nstbench app exited with {proc.returncode}"
            servers = servers or _children(proc.pid)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the app did not serve within 90 s")
        servers = _children(proc.pid)
        assert servers, "no server process under nstbench app"
        proc.send_signal(getattr(signal, sig))
        proc.wait(15)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(_alive(c) for c in servers):
            time.sleep(0.2)
        assert not any(_alive(c) for c in servers), f"the server outlived nstbench app ({sig})"
        with socket.socket() as s:  # the port is free again (bound as the server binds it)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    finally:
        for pid in [proc.pid, *servers]:  # only what this test started, by pid
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(5)


# ---------------------------------------------------------------------------------------------
# Item 9: the memory refusal comes before any loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scales", [None, "64,2000"])
def test_item9_memory_refusal_before_decoding_or_loading(tmp_path, capsys, monkeypatch, scales):
    import nstbench.methods.gatys_run as stylize_mod
    from nstbench.nets import device as device_mod

    def nothing_loaded(*a, **k):
        raise AssertionError("an image was decoded or the backbone loaded before the memory check")

    monkeypatch.setattr(device_mod, "available_bytes", lambda dev: 2**30)  # 1 GiB free
    monkeypatch.setattr(stylize_mod, "load_backbone", nothing_loaded)
    monkeypatch.setattr(stylize_mod, "load_image", nothing_loaded)
    size = ["--scales", scales] if scales else ["--size", "2000"]
    argv = ["stylize", "--preset", "hust", "--content", "chelsea", "--style", "hockney", "--weights", "random",
            "--steps", "1", *size, "--out", tmp_path / "o"]  # fmt: skip
    line = one_line_error(
        *run_cli(capsys, argv)[::2], "a 2000x1330 vgg19 optimisation needs about", "use a smaller --size"
    )
    assert float(line.split("needs about ")[1].split(" GiB")[0]) > 3
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# Item 7: --resume takes its settings from the checkpoint; a mismatch is named, before loading
# ---------------------------------------------------------------------------------------------


def test_item7_resume_needs_no_retyping_and_checks_before_loading(tmp_path, capsys, monkeypatch):
    out = tmp_path / "t"
    assert run_cli(capsys, TRAIN + ["--steps", "1", "--out", out])[0] == 0
    first = json.loads((out / "run.json").read_text())
    rc, _, err = run_cli(capsys, ["train", "--resume", "--steps", "2", "--progress-every", "0", "--out", out])
    assert rc == 0, err
    rec = json.loads((out / "run.json").read_text())
    assert rec["steps_done"] == 2 and rec["preset"]["size"] == 32 and rec["preset"]["batch"] == 2
    assert rec["style"]["name"] == first["style"]["name"] == "mosaic" and rec["weights"]["kind"] == "random"
    # an explicit option still overrides, and is checked against the checkpoint before the backbone loads
    import nstbench.methods.training as training_mod

    def no_load(*a, **k):
        raise AssertionError("the backbone was loaded before the settings were checked")

    monkeypatch.setattr(training_mod, "load_backbone", no_load)
    argv = ["train", "--resume", "--steps", "3", "--style", "udnie", "--out", out]
    line = one_line_error(*run_cli(capsys, argv)[::2], "style: checkpoint mosaic, now udnie")
    assert "sha256" not in line
    one_line_error(*run_cli(capsys, ["train", "--resume", "--steps", "3", "--size", "36", "--out", out])[::2], "size")
    assert json.loads((out / "run.json").read_text())["steps_done"] == 2
    one_line_error(*run_cli(capsys, ["train", "--out", tmp_path / "new"])[::2], "--preset and --style")
