"""Image formats, resize semantics, spaces, and one-line errors for unreadable files."""

import numpy as np
import pytest
import torch
from PIL import Image

from nstbench.config.errors import NstbenchError
from nstbench.config.specs import Resize
from nstbench.nets.images import load_image, save_image, space_bounds, space_to_unit, to_pil, unit_to_space


def _rgb(w=40, h=30):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_jpeg_and_png_rgb(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 30, 40) and x.dtype == torch.float32
    assert torch.equal((x[0].permute(1, 2, 0) * 255).round().byte(), torch.from_numpy(a))
    yy, xx = np.mgrid[0:30, 0:40]
    smooth = np.dstack([xx * 6, yy * 8, xx * 3 + yy * 3]).astype(np.uint8)  # JPEG keeps smooth images
    Image.fromarray(smooth).save(tmp_path / "s.jpg", quality=95)
    j = load_image(tmp_path / "s.jpg")
    assert j.shape == x.shape and (j[0].permute(1, 2, 0) * 255 - torch.from_numpy(smooth).float()).abs().mean() < 3


def test_grayscale_rgba_palette(tmp_path):
    g = np.arange(40 * 30, dtype=np.uint8).reshape(30, 40)
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert x.shape == (1, 3, 30, 40) and torch.equal(x[0, 0], x[0, 2])
    rgba = np.dstack([_rgb(), np.full((30, 40), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    y = load_image(tmp_path / "a.png")
    assert torch.equal((y[0].permute(1, 2, 0) * 255).round().byte(), torch.from_numpy(rgba[:, :, :3]))  # alpha dropped
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (1, 3, 30, 40)
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "pt.png", transparency=0)
    assert load_image(tmp_path / "pt.png").shape == (1, 3, 30, 40)


def test_16bit_png_keeps_its_range(tmp_path):
    a = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    x = load_image(tmp_path / "d.png")
    assert x.max().item() == pytest.approx(1.0) and x.min().item() == 0.0
    assert torch.allclose(x[0, 1], torch.from_numpy(a / 65535.0).float(), atol=1e-6)
    assert load_image(tmp_path / "d.png", Resize("long", 20)).shape == (1, 3, 15, 20)


def test_exif_rotation_is_applied(tmp_path):
    im = Image.fromarray(_rgb(40, 30))
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (1, 3, 40, 30)


@pytest.mark.parametrize(
    "resize,w,h,expect",
    [
        (Resize("long", 512), 1024, 640, (512, 320)),
        (Resize("long", 512), 451, 300, (512, 341)),  # round(300 * 512/451) = round(340.6)
        (Resize("long", 512, only_shrink=True), 451, 300, (451, 300)),
        (Resize("short", 400), 800, 540, (592, 400)),  # torchvision: int(400 * 800 / 540) = 592
        (Resize("short", 400), 540, 800, (400, 592)),
        (Resize("short_capped", 400), 800, 540, (592, 400)),  # UPES: long side 800 > 400
        (Resize("short_capped", 400), 192, 263, (263, 360)),  # UPES: n = 263, int(263 * 263 / 192) = 360
        (Resize("exact", (64, 96)), 800, 540, (96, 64)),
        (Resize(), 800, 540, (800, 540)),
    ],
)
def test_resize_rules(resize, w, h, expect):
    assert resize.output_size(w, h) == expect


def test_short_side_resize_matches_torchvision(tmp_path):
    from torchvision import transforms

    Image.fromarray(_rgb(80, 54)).save(tmp_path / "a.png")
    ref = transforms.ToTensor()(transforms.Resize(40)(Image.open(tmp_path / "a.png").convert("RGB"))).unsqueeze(0)
    assert torch.equal(load_image(tmp_path / "a.png", Resize("short", 40)), ref)


@pytest.mark.parametrize("space", ["unit", "imagenet", "caffe"])
def test_space_round_trip_and_bounds(space):
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(space_to_unit(unit_to_space(x, space), space), x, atol=1e-5)
    lo, hi = space_bounds(space, x)
    assert torch.allclose(space_to_unit(lo, space), torch.zeros(1, 3, 1, 1), atol=1e-6)
    assert torch.allclose(space_to_unit(hi, space), torch.ones(1, 3, 1, 1), atol=1e-6)


def test_caffe_space_is_bgr_minus_mean():
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0
    c = unit_to_space(red, "caffe").flatten().tolist()
    assert c == pytest.approx([-103.939, -116.779, 255 - 123.68])


def test_save_round_trip(tmp_path):
    x = torch.rand(1, 3, 20, 30)
    save_image(x, tmp_path / "o.png")
    back = load_image(tmp_path / "o.png")
    assert (back - x).abs().max() <= 0.5 / 255 + 1e-6
    assert to_pil(x).size == (30, 20)
    assert not list(tmp_path.glob(".*tmp"))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_bad_files_give_one_line_errors(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "ok.jpg")
    full = (tmp_path / "ok.jpg").read_bytes()
    cases = {
        "missing": (tmp_path / "nope.jpg", "not found"),
        "empty": (_write(tmp_path / "empty.jpg", b""), "empty"),
        "truncated": (_write(tmp_path / "trunc.jpg", full[: len(full) // 2]), "cannot read"),
        "text": (_write(tmp_path / "text.jpg", b"hello, I am not a picture\n"), "not an image"),
        "folder": (tmp_path, "folder"),
    }
    for name, (path, msg) in cases.items():
        with pytest.raises(NstbenchError, match=msg) as e:
            load_image(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value), name


def test_tiny_and_huge_images_are_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "1x1.png")
    with pytest.raises(NstbenchError, match="1x1"):
        load_image(tmp_path / "1x1.png")
    Image.fromarray(_rgb(100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr("nstbench.nets.images.MAX_PIXELS", 5000)
    with pytest.raises(NstbenchError, match="limit"):
        load_image(tmp_path / "big.png")


def test_unknown_name_lists_registered_images():
    with pytest.raises(NstbenchError, match="starry_night"):
        load_image("no_such_painting")


def test_hust_tf_resize_truncates_and_does_not_antialias(tmp_path):
    a = np.zeros((30, 41, 3), np.uint8)
    a[:, ::2] = 255  # 1-px stripes: PIL's antialiased bilinear averages them, tf's bilinear samples
    Image.fromarray(a).save(tmp_path / "s.png")
    r = Resize("long", 20, "bilinear_tf", size_rounding="floor")
    assert r.output_size(41, 30) == (20, 14)  # int(30 * 20 / 41) = int(14.63)
    tf_like = load_image(tmp_path / "s.png", r)
    pil = load_image(tmp_path / "s.png", Resize("long", 20, "bilinear"))
    assert tf_like.shape == (1, 3, 14, 20) and pil.shape == (1, 3, 15, 20)
    assert tf_like.std() > 2 * pil.std()  # aliasing keeps the stripes' contrast
    assert torch.equal((tf_like * 255).round(), (tf_like * 255).round().floor())  # whole 8-bit levels


def _tf_bilinear_reference(a, h, w):
    """tf.image.resize(..., "bilinear") pixel by pixel, as TensorFlow's CPU kernel computes it in
    float32 (half-pixel centres, no antialiasing): written out here as the plain reference."""
    import numpy as np

    f = np.float32
    H, W = a.shape[:2]
    out = np.zeros((h, w, a.shape[2]), dtype=np.float32)
    sy, sx = f(H / h), f(W / w)
    for i in range(h):
        y = (f(i) + f(0.5)) * sy - f(0.5)
        y0, y1, dy = max(int(np.floor(y)), 0), min(int(np.ceil(y)), H - 1), f(y - f(np.floor(y)))
        for j in range(w):
            x = (f(j) + f(0.5)) * sx - f(0.5)
            x0, x1, dx = max(int(np.floor(x)), 0), min(int(np.ceil(x)), W - 1), f(x - f(np.floor(x)))
            top = a[y0, x0] + (a[y0, x1] - a[y0, x0]) * dx
            bottom = a[y1, x0] + (a[y1, x1] - a[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


def test_tf_bilinear_resize_is_tensorflows_arithmetic_on_every_cpu():
    """Computed in numpy (per-op IEEE float32, no CPU-kernel choice): equal to the pixel-by-pixel
    TF formula exactly, and the same sampling as torch's interpolate up to float rounding."""
    import numpy as np

    from nstbench.nets.images import _resize_bilinear_tf

    a = np.random.default_rng(0).integers(0, 256, (13, 17, 3)).astype(np.float32)
    for h, w in ((6, 8), (13, 17), (29, 23)):  # shrink, same size, enlarge
        ours = _resize_bilinear_tf(a, h, w)
        assert np.array_equal(ours, _tf_bilinear_reference(a, h, w))
        t = (
            torch.nn.functional.interpolate(
                torch.from_numpy(a).permute(2, 0, 1)[None],
                size=(h, w),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        assert np.abs(ours - t).max() < 1e-3
