"""The `upes` preset against a plain re-implementation of the UPES appendix loop (004, Appendix I).

The reference follows the appendix line by line (torchvision `features` with its in-place ReLUs,
the same load_image, Gram, losses and Adam): its loop is the benchmark's plain baseline
(benchmarks/baseline_upes.py, one copy for both), its load_image is here. Both load the same
weights file, which the test creates. The loss trajectories must agree to 1e-4 relative.
"""

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from conftest import needs_assets
from PIL import Image
from torchvision import transforms

from nstbench.config.sources import UPES
from nstbench.methods.gatys import RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.nets.assets import resolve_image
from nstbench.nets.weights import load_backbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from baseline_upes import plain_vgg19, run_appendix  # noqa: E402

MAX_SIZE = 64  # the appendix uses 400; the loop is the same at any size
STEPS = 40


def reference_upes(weights_file, content_path, style_path, steps, max_size):
    """The appendix: its load_image here, its network, Gram, losses and Adam loop from the plain
    baseline module (benchmarks/baseline_upes.py, written line by line after the appendix)."""
    vgg = plain_vgg19(torch.load(weights_file))  # models.vgg19().features: ReLU(inplace=True) after every conv

    def load_image(img_path, max_size=max_size, shape=None):
        image = Image.open(img_path).convert("RGB")
        if max(image.size) > max_size:
            size = max_size
        else:
            size = max(image.size)
        if shape is not None:
            size = shape
        in_transform = transforms.Compose(
            [
                transforms.Resize(size),
                transforms.ToTensor(),
                transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            ]
        )
        return in_transform(image)[:3, :, :].unsqueeze(0)

    content = load_image(content_path)
    style = load_image(style_path, shape=content.shape[-2:])
    totals, _, target = run_appendix(vgg, content, style, steps)
    return totals, target, content.shape


@needs_assets
def test_upes_preset_matches_the_appendix_loop(tmp_path):
    # a weights file in torchvision's features layout, with a seed no other test uses
    feats = load_backbone("vgg19", "random", seed=2024).extractor.state_dict()
    torch.save({k.split(".", 1)[1]: v for k, v in feats.items()}, tmp_path / "vgg19_features.pth")

    ref_totals, ref_image, ref_shape = reference_upes(
        tmp_path / "vgg19_features.pth", resolve_image("octopus"), resolve_image("hockney"), STEPS, MAX_SIZE
    )

    preset = override(UPES, dict(steps=STEPS, size=MAX_SIZE))
    content, style = load_pair(preset, "octopus", "hockney")
    assert content.shape == ref_shape  # same resize rule: short side 64, long side int(64 * 800 / 540)
    backbone = load_backbone("vgg19", str(tmp_path / "vgg19_features.pth"))
    result = run_preset(preset, content, style, backbone, run=RunOptions(progress_every=0))
    ours = [h["total"] for h in result.history]
    assert ours == pytest.approx(ref_totals, rel=1e-4)
    assert ref_totals[-1] < ref_totals[0]  # it is optimising, not standing still
    assert torch.allclose(result.last, ref_image, atol=1e-4)


@needs_assets
def test_reference_differs_if_the_inplace_relu_quirk_is_ignored(tmp_path):
    """With the conv (pre-ReLU) layers the appendix names, our loss is not the appendix's loss."""
    feats = load_backbone("vgg19", "random", seed=2024).extractor.state_dict()
    torch.save({k.split(".", 1)[1]: v for k, v in feats.items()}, tmp_path / "w.pth")
    ref_totals, _, _ = reference_upes(
        tmp_path / "w.pth", resolve_image("octopus"), resolve_image("hockney"), 1, MAX_SIZE
    )
    conv_names = dataclasses.replace(
        UPES.loss,
        content_layers=(("conv4_2", 1.0),),
        style_layers=tuple((n.replace("relu", "conv"), w) for n, w in UPES.loss.style_layers),
    )
    preset = dataclasses.replace(override(UPES, dict(steps=1, size=MAX_SIZE)), loss=conv_names)
    content, style = load_pair(preset, "octopus", "hockney")
    result = run_preset(
        preset, content, style, load_backbone("vgg19", str(tmp_path / "w.pth")), run=RunOptions(progress_every=0)
    )
    assert result.history[0]["total"] != pytest.approx(ref_totals[0], rel=1e-2)
