"""The transformer network: variants, shapes, and loading pytorch/examples fast_neural_style checkpoints.

The reference below is this test's own module with the parameter names, shapes and semantics of
pytorch/examples' TransformerNet (fast_neural_style/neural_style/transformer_net.py): reflection
padding, instance norm with affine parameters, nearest x2 upsampling before a conv, unbounded
output in 0..255 units. A state dict saved from it must load through `nstbench apply` and give
the same output.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nstbench.config.errors import NstbenchError
from nstbench.config.variants import VARIANTS, get_variant
from nstbench.interfaces.cli import main
from nstbench.nets.transformer import build_transformer, load_transformer

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- reference module


class _RefConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=False):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(k // 2)  # no parameters: not in the state dict
        self.conv2d = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        if self.upsample:
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv2d(self.reflection_pad(x))


class _RefRes(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.in1 = _RefConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.conv2, self.in2 = _RefConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        return self.in2(self.conv2(torch.relu(self.in1(self.conv1(x))))) + x


class RefExamplesNet(nn.Module):
    """Same names, shapes and computation as pytorch/examples' TransformerNet."""

    def __init__(self):
        super().__init__()
        self.conv1, self.in1 = _RefConv(3, 32, 9), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = _RefConv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = _RefConv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        for i in range(1, 6):
            setattr(self, f"res{i}", _RefRes(128))
        self.deconv1, self.in4 = _RefConv(128, 64, 3, upsample=True), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = _RefConv(64, 32, 3, upsample=True), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = _RefConv(32, 3, 9)

    def forward(self, x):  # x in 0..255
        y = torch.relu(self.in1(self.conv1(x)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        for i in range(1, 6):
            y = getattr(self, f"res{i}")(y)
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


@pytest.fixture(scope="module")
def ref_net():
    torch.manual_seed(123)
    net = RefExamplesNet()
    with torch.no_grad():  # non-trivial norm affine parameters, so every key matters
        for name, p in net.named_parameters():
            if ".weight" in name and p.dim() == 1:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.3 * torch.randn_like(p))
    return net.eval()


def _save_examples(net, path, old=False):
    state = net.state_dict()
    if old:  # PyTorch < 0.4 InstanceNorm2d saved running statistics; pytorch/examples deletes them
        for k in [k for k in state if k.endswith(".weight") and "in" in k.split(".")[-2]]:
            prefix = k[: -len("weight")]
            c = state[k].shape[0]
            state[prefix + "running_mean"] = torch.randn(c)
            state[prefix + "running_var"] = torch.rand(c) + 0.5
    torch.save(state, path)
    return path


def _content_png(path, h=36, w=44, seed=0):
    a = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(a, mode="RGB").save(path)
    return path


# ----------------------------------------------------------------------------- tests


def test_variant_names_and_shapes():
    assert set(VARIANTS) == {"johnson2016", "hust", "pytorch-examples", "johnson2016-code"}
    # 48 px: johnson2016-code reflection-pads its input by 40, which needs more than 40 px
    x = torch.rand(2, 3, 48, 56, generator=torch.Generator().manual_seed(0))
    for name in VARIANTS:
        net = build_transformer(get_variant(name), seed=0).eval()
        with torch.no_grad():
            y = net.stylize_unit(x)
        assert y.shape == x.shape, name
        if VARIANTS[name].output == "tanh":  # scaled tanh: output within [0, 255] (johnson: about -26..282)
            lo, hi = (-0.2, 1.2) if name.startswith("johnson2016") else (0.0, 1.0)
            assert lo <= float(y.min()) and float(y.max()) <= hi


def test_examples_layout_matches_reference(ref_net):
    ours = build_transformer(get_variant("pytorch-examples"))
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref_net.state_dict().items()}
    assert mine == theirs
    assert "conv1.conv2d.weight" in mine and "res3.in2.bias" in mine and "deconv1.conv2d.weight" in mine


def test_norm_override_and_unknown_variant():
    assert get_variant("hust", norm="instance").norm == "instance"
    assert get_variant("hust").norm == "batch"
    with pytest.raises(NstbenchError, match="network variant"):
        get_variant("nope")
    net = build_transformer(get_variant("johnson2016", norm="instance"))
    assert isinstance(net.in1, nn.InstanceNorm2d)
    assert isinstance(build_transformer(get_variant("johnson2016")).in1, nn.BatchNorm2d)


@pytest.mark.parametrize("old", [False, True])
def test_load_examples_state_dict_same_output(ref_net, tmp_path, old):
    path = _save_examples(ref_net, tmp_path / "mosaic.pth", old=old)
    net, info = load_transformer(path)
    assert info["format"] == "pytorch-examples"
    x = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref_net(x * 255.0)  # their stylize: ToTensor() then mul(255)
        got = net(x * 255.0)
        got_unit = net.stylize_unit(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(got_unit * 255.0, expected, rtol=1e-5, atol=1e-3)


def reference_examples_stylize(net, content_path, out_path):
    """pytorch/examples neural_style.py stylize + utils.save_image, on this test's reference net:
    ToTensor() then mul(255), the network, clamp(0, 255), astype("uint8") (truncation)."""
    x = torch.from_numpy(np.array(Image.open(content_path).convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
    x = (x.float().div(255) * 255)[None]
    with torch.no_grad():
        y = net(x)
    Image.fromarray(y[0].clamp(0, 255).numpy().transpose(1, 2, 0).astype("uint8")).save(out_path)


@pytest.mark.parametrize("h,w", [(36, 44), (30, 41)])  # 41 columns: the network returns 44 (two x2 upsamplings)
def test_apply_cli_with_examples_checkpoint_gives_its_output_exactly(ref_net, tmp_path, capsys, h, w):
    ckpt = _save_examples(ref_net, tmp_path / "candy.model", old=True)
    content = _content_png(tmp_path / "content.png", h, w)
    out = tmp_path / "styled.png"
    assert main(["apply", "--checkpoint", str(ckpt), "--content", str(content), "--out", str(out)]) == 0
    assert "pytorch-examples" in capsys.readouterr().out
    reference_examples_stylize(ref_net, content, tmp_path / "theirs.png")
    got, theirs = np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "theirs.png"))
    assert got.shape == theirs.shape == (-(-h // 4) * 4, -(-w // 4) * 4, 3)
    assert np.array_equal(got, theirs)
    # --crop: the same pixels, cut to the content's size
    assert (
        main(
            ["apply", "--checkpoint", str(ckpt), "--content", str(content), "--out", str(out), "--crop", "--overwrite"]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(out)), theirs[:h, :w])


def test_apply_many_contents_into_folder(ref_net, tmp_path):
    ckpt = _save_examples(ref_net, tmp_path / "m.pth")
    a, b = _content_png(tmp_path / "a.png", 30, 41, 1), _content_png(tmp_path / "b.png", 32, 32, 2)
    assert main(["apply", "--checkpoint", str(ckpt), "--content", str(a), str(b), "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "a.png").size == (44, 32)  # sides not multiple of 4: rounded up, as theirs
    assert Image.open(tmp_path / "o" / "b.png").size == (32, 32)
    with pytest.raises(NstbenchError, match="one file"):
        from nstbench.methods.inference import stylize_images

        stylize_images(ckpt, [str(a), str(b)], tmp_path / "one.png")


def _cli_error(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nstbench: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_apply_errors_name_the_file(ref_net, tmp_path, capsys):
    content = _content_png(tmp_path / "c.png")
    good = _save_examples(ref_net, tmp_path / "good.pth")

    missing = tmp_path / "missing.pth"
    assert str(missing) in _cli_error(
        ["apply", "--checkpoint", str(missing), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )

    vgg = tmp_path / "vgg.pth"  # a state dict of another kind
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, vgg)
    err = _cli_error(
        ["apply", "--checkpoint", str(vgg), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )
    assert str(vgg) in err and "not a transformer checkpoint" in err

    lst = tmp_path / "list.pt"  # a pickle that is not a dict
    torch.save([1, 2, 3], lst)
    assert str(lst) in _cli_error(
        ["apply", "--checkpoint", str(lst), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )

    text = tmp_path / "notes.pth"  # not a torch file at all
    text.write_text("hello")
    assert str(text) in _cli_error(
        ["apply", "--checkpoint", str(text), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )

    obj = tmp_path / "module.pth"  # a pickled module: refused by weights_only loading
    torch.save(RefExamplesNet(), obj)
    assert str(obj) in _cli_error(
        ["apply", "--checkpoint", str(obj), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )

    shapes = tmp_path / "shapes.pth"  # right keys, wrong shapes
    state = ref_net.state_dict()
    state["conv1.conv2d.weight"] = torch.zeros(32, 3, 5, 5)
    torch.save(state, shapes)
    err = _cli_error(
        ["apply", "--checkpoint", str(shapes), "--content", str(content), "--out", str(tmp_path / "o.png")], capsys
    )
    assert str(shapes) in err and "shape" in err

    bad_img = tmp_path / "broken.jpg"
    bad_img.write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert str(bad_img) in _cli_error(
        ["apply", "--checkpoint", str(good), "--content", str(bad_img), "--out", str(tmp_path / "o.png")], capsys
    )
