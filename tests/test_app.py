"""The web app (nstbench/interfaces/app.py, nstbench/interfaces/app_page.py) under Streamlit's headless test framework:
both tabs, the side by side, bad uploads, no checkpoints, a cancelled run. Random weights, tiny sizes."""

from __future__ import annotations

import io
import shutil
import struct
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from apptools import APP_PAGE, make_models
from conftest import needs_assets
from PIL import Image

from nstbench.config.errors import NstbenchError
from nstbench.interfaces import app
from nstbench.methods.gatys import RunOptions
from nstbench.nets.assets import resolve_image
from nstbench.nets.images import load_image

pytest.importorskip("streamlit", reason="the app needs Streamlit: pip install -e '.[app]'")
from streamlit.testing.v1 import AppTest  # noqa: E402

pytestmark = [needs_assets, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def models(tmp_path_factory, vgg19_random):
    return make_models(tmp_path_factory.mktemp("models"), vgg19_random)


@pytest.fixture
def page(models, monkeypatch):
    monkeypatch.setenv(app.MODELS_ENV, str(models))
    at = AppTest.from_file(str(APP_PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    yield at
    for slot in ("gatys", "cmp"):  # no run outlives its test
        job = at.session_state[slot] if slot in at.session_state else None
        if job is not None:
            job.cancel()
            assert job.wait(30)
    if "workdir" in at.session_state:  # the session's uploads and outputs
        shutil.rmtree(at.session_state["workdir"])


def poll(at: AppTest, slot: str, timeout: float = 60.0) -> app.GatysJob:
    """Rerun the page until the job in `slot` has ended (what the page's polling fragment does)."""
    job = at.session_state[slot]
    end = time.monotonic() + timeout
    while job.running and time.monotonic() < end:
        time.sleep(0.1)
    assert not job.running, f"the {slot} run did not end within {timeout} s"
    at.run()
    assert not at.exception
    return job


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (no pixel data): refusable without decoding."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_find_checkpoints_lists_both_formats_with_weights(models):
    entries, problems = app.find_checkpoints([models, models / "missing"])
    assert [(e.style, e.format, e.network) for e in entries] == [
        ("mosaic", "pytorch-examples", "pytorch-examples"),
        ("udnie", "nstbench", "hust"),
    ]  # HUST order
    mosaic, udnie = entries
    assert udnie.weights.startswith("RANDOM vgg19") and udnie.steps == 2
    assert "not recorded" in mosaic.weights
    assert udnie.style_image is not None and udnie.style_image.name.startswith("udnie")
    assert mosaic.style_image is not None and mosaic.style_image.name.startswith("mosaic")
    assert len(problems) == 1 and "broken.pth" in problems[0]  # checkpoint.pt (resumable state) is not listed


def test_fast_tab_stylizes_and_labels_weights(page, models):
    at = page
    assert at.radio(key="fast_style").options == ["mosaic", "udnie"]
    assert any("wave, rain_princess" in c.value for c in at.caption)  # HUST styles not trained yet
    at.radio(key="fast_style").set_value(1)
    at.button(key="fast_go").click().run()
    assert not at.exception and not at.error
    key, res = at.session_state["fast"]
    assert res.entry.style == "udnie" and res.size_hw == [300, 451]  # chelsea fits the 512 px default
    assert any("RANDOM vgg19" in w.value for w in at.warning)  # random weights are said on the page
    out = torch.from_numpy(np.asarray(Image.open(io.BytesIO(res.png)), dtype=np.float32) / 255).permute(2, 0, 1)
    assert (out - load_image("chelsea")[0]).abs().mean() > 0.05  # the network changed the picture
    assert at.get("download_button")[0].proto.label == "Download PNG"
    at.radio(key="fast_style").set_value(0)
    at.sidebar.slider[0].set_value(128)
    at.button(key="fast_go").click().run()
    _, res = at.session_state["fast"]
    assert res.entry.style == "mosaic" and max(res.size_hw) == 128
    assert any(
        c.value.startswith("Loss network this pytorch-examples network was trained against: not recorded")
        for c in at.caption
    )


def test_no_checkpoints_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv(app.MODELS_ENV, str(tmp_path))
    at = AppTest.from_file(str(APP_PAGE), default_timeout=60).run()
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "No fast-network checkpoint found" in text and "make app-models" in text and ".pth" in text
    assert str(tmp_path) in text


def test_a_style_found_twice_is_told_apart(models, tmp_path, monkeypatch):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copyfile(models / "hust-udnie" / "transformer.pt", tmp_path / sub / "transformer.pt")
    monkeypatch.setenv(app.MODELS_ENV, str(tmp_path))
    at = AppTest.from_file(str(APP_PAGE), default_timeout=60).run()
    assert at.radio(key="fast_style").options == ["udnie (a/transformer.pt)", "udnie (b/transformer.pt)"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the header says 100 Mpx: refused
def test_bad_upload_gives_a_message_and_the_page_keeps_working(page):
    at = page

    def upload(name, data, mime):
        at.sidebar.file_uploader(key="content_upload").set_value((name, data, mime)).run()

    upload("notes.txt", b"hello, not an image", "text/plain")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Upload refused: cannot read image notes.txt: not an image format Pillow recognises"
    ]
    upload("huge.png", png_header_only(10000, 10000), "image/png")
    assert not at.exception and "above the limit" in at.error[0].value and "huge.png" in at.error[0].value
    upload("cat.png", resolve_image("chelsea").read_bytes(), "image/png")
    assert not at.error
    at.button(key="fast_go").click().run()
    assert not at.exception and at.session_state["fast"][1].size_hw == [300, 451]


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.png", b"", "is empty"),
        ("text.jpg", b"plain text", "not an image format"),
        ("cut.png", None, "cannot read image cut.png: image file is truncated"),
        ("huge.png", png_header_only(9000, 8000), "above the limit of"),
        ("tiny.png", png_bytes(Image.new("RGB", (8, 8))), "at least 16 px"),
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_refused_uploads(tmp_path, name, data, message):
    if data is None:  # a PNG cut in the middle of its pixel data
        data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))[:400]
    with pytest.raises(NstbenchError, match=message) as e:
        app.read_upload(name, data, tmp_path)
    assert str(tmp_path) not in str(e.value)  # the message names the upload, not the temp file


def test_upload_over_the_size_limit_is_refused_unread(tmp_path):
    big = b"\xff\xd8" + bytes(app.MAX_UPLOAD_MB * 2**20)  # a JPEG start, then 50 MB of zeros
    with pytest.raises(NstbenchError, match="big.jpg is 50 MB, above the upload limit of 50 MB"):
        app.read_upload("big.jpg", big, tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written or opened


def test_accepted_uploads_say_what_was_done(tmp_path):
    a16 = np.full((20, 24), 65535, dtype=np.uint16)
    a16[:, :12] = 0
    pic = app.read_upload("deep.png", png_bytes(Image.fromarray(a16)), tmp_path / "a")
    assert pic.notes == ["16-bit grayscale: scaled from 0..65535 to 8-bit RGB"]
    assert pic.image[0, :, 0, 0].tolist() == [0, 0, 0] and pic.image[0, :, 0, -1].tolist() == [1, 1, 1]
    cmyk = app.read_upload(
        "print.jpg", png_bytes(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"), tmp_path / "b"
    )
    assert cmyk.notes[0].startswith("CMYK image")
    assert cmyk.image[0, 0].mean() > 0.9 and cmyk.image[0, 1].mean() < 0.1  # CMYK (0, 255, 255, 0) is red
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = png_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pic = app.read_upload("anim.gif", gif, tmp_path / "c")
    assert pic.notes == ["animated GIF (2 frames): the first frame is used"]
    assert pic.image[0, 0].mean() > 0.9 and pic.image[0, 2].mean() < 0.1  # red: the first frame


def test_gatys_tab_runs_live_and_offers_the_files(page):
    at = page
    at.sidebar.selectbox(key="weights").set_value("random")
    at.number_input(key="gatys_steps").set_value(3)
    at.number_input(key="gatys_size").set_value(64)
    at.button(key="gatys_go").click().run()
    assert not at.exception
    job = poll(at, "gatys")
    assert job.status == "done", job.error
    assert [r["step"] for r in job.losses] == [1, 2, 3] and job.preview is not None
    assert {b.proto.label for b in at.get("download_button")} >= {"output.png", "curve.csv", "run.json"}
    assert {p.name for p in job.out.iterdir()} == {"output.png", "curve.csv", "run.json"}
    assert job.record["weights"]["kind"] == "random"
    assert any("RANDOM vgg19" in w.value for w in at.warning)
    curve = (job.out / "curve.csv").read_text().splitlines()
    assert len(curve) == 4 and float(curve[1].split(",")[2]) == pytest.approx(job.losses[0]["total"], rel=1e-12)


def test_gatys_run_can_be_cancelled(page):
    at = page
    at.sidebar.selectbox(key="weights").set_value("random")
    at.number_input(key="gatys_steps").set_value(5000)
    at.number_input(key="gatys_size").set_value(64)
    at.button(key="gatys_go").click().run()
    assert at.button(key="gatys_go").disabled and not at.button(key="gatys_cancel").disabled
    job = at.session_state["gatys"]
    end = time.monotonic() + 60
    while job.step < 2 and job.running and time.monotonic() < end:
        time.sleep(0.05)
    at.run()
    assert job.running and at.get("progress")  # the live view
    at.button(key="gatys_cancel").click().run()
    job = poll(at, "gatys")
    assert job.status == "cancelled" and 2 <= job.step < 5000
    assert any(w.value.startswith(f"Cancelled at step {job.step} of 5000") for w in at.warning)
    assert not job.out.exists() or list(job.out.iterdir()) == []  # nothing written
    assert not at.button(key="gatys_go").disabled  # a new run can start


def test_side_by_side_times_both_methods(page):
    at = page
    at.sidebar.selectbox(key="weights").set_value("random")
    at.sidebar.slider[0].set_value(64)
    at.number_input(key="cmp_steps").set_value(2)
    at.button(key="cmp_go").click().run()
    job = poll(at, "cmp")
    assert job.status == "done", job.error
    fast = at.session_state["cmp_fast"]
    assert max(fast.size_hw) == 64 and list(job.record["content_size_hw"]) == fast.size_hw  # same photo, same size
    assert job.record["preset"]["name"] == "hust" and job.record["preset"]["steps"] == 2
    ratio = job.record["seconds"] / fast.seconds
    assert any(s.value.endswith(f"{ratio:,.0f}x") for s in at.success)


def test_on_step_reports_each_step(vgg19_random):
    from nstbench.config.presets import get_preset
    from nstbench.methods.gatys_run import load_pair, override, run_preset

    preset = override(get_preset("hust"), dict(steps=3, size=64))
    c, s = load_pair(preset, "chelsea", "starry_night")
    seen = []
    res = run_preset(
        preset, c, s, vgg19_random, run=RunOptions(on_step=lambda k, x, losses: seen.append((k, x.shape, losses)))
    )
    assert [k for k, _, _ in seen] == [1, 2, 3] and all(shape == c.shape for _, shape, _ in seen)
    assert [d["total"] for _, _, d in seen] == [r["total"] for r in res.history]


def test_app_command_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from nstbench.interfaces.cli import main

    for args, msg in (
        (["--models", str(tmp_path / "nope")], "--models folder not found"),
        (["--port", "0"], "--port must be 1..65535"),
    ):
        assert main(["app", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nstbench: error: ") and msg in err and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "streamlit", None)  # as if the app extra were not installed
    assert main(["app"]) == 2
    assert "pip install -e '.[app]'" in capsys.readouterr().err
