"""The `upes` preset against a plain re-implementation of the UPES appendix loop (004, Appendix I).

The reference below follows the appendix line by line (torchvision `features` with its in-place
ReLUs, the same load_image, Gram, losses and Adam), written for this test. Both load the same
weights file, which the test creates. The loss trajectories must agree to 1e-4 relative.
"""
import dataclasses

import pytest
import torch
import torch.optim as optim
from PIL import Image
from torchvision import transforms
from torchvision.models.vgg import cfgs, make_layers

from conftest import needs_assets
from nstbench.assets import resolve_image
from nstbench.presets import UPES
from nstbench.stylize import load_pair, override, run_preset
from nstbench.weights import load_backbone

MAX_SIZE = 64  # the appendix uses 400; the loop is the same at any size
STEPS = 40


def reference_upes(weights_file, content_path, style_path, steps, max_size):
    vgg = make_layers(cfgs["E"])  # models.vgg19().features: ReLU(inplace=True) after every conv
    vgg.load_state_dict(torch.load(weights_file))
    for param in vgg.parameters():
        param.requires_grad_(False)
    vgg.eval()

    def load_image(img_path, max_size=max_size, shape=None):
        image = Image.open(img_path).convert("RGB")
        if max(image.size) > max_size:
            size = max_size
        else:
            size = max(image.size)
        if shape is not None:
            size = shape
        in_transform = transforms.Compose([
            transforms.Resize(size),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        return in_transform(image)[:3, :, :].unsqueeze(0)

    content = load_image(content_path)
    style = load_image(style_path, shape=content.shape[-2:])

    def get_features(image, model):
        layers = {"0": "conv1_1", "5": "conv2_1", "10": "conv3_1", "19": "conv4_1", "21": "conv4_2", "28": "conv5_1"}
        features = {}
        x = image
        for name, layer in model._modules.items():
            x = layer(x)
            if name in layers:
                features[layers[name]] = x
        return features

    def gram_matrix(tensor):
        _, d, h, w = tensor.size()
        tensor = tensor.view(d, h * w)
        return torch.mm(tensor, tensor.t())

    content_features = get_features(content, vgg)
    style_features = get_features(style, vgg)
    style_grams = {layer: gram_matrix(style_features[layer]) for layer in style_features}
    target = content.clone().requires_grad_(True)
    style_weights = {"conv1_1": 1.0, "conv2_1": 0.75, "conv3_1": 0.2, "conv4_1": 0.2, "conv5_1": 0.2}
    content_weight, style_weight = 1, 1e6
    optimizer = optim.Adam([target], lr=0.003)
    totals = []
    for ii in range(1, steps + 1):
        target_features = get_features(target, vgg)
        content_loss = torch.mean((target_features["conv4_2"] - content_features["conv4_2"]) ** 2)
        style_loss = 0
        for layer in style_weights:
            target_feature = target_features[layer]
            target_gram = gram_matrix(target_feature)
            _, d, h, w = target_feature.shape
            style_gram = style_grams[layer]
            layer_style_loss = style_weights[layer] * torch.mean((target_gram - style_gram) ** 2)
            style_loss += layer_style_loss / (d * h * w)
        total_loss = content_weight * content_loss + style_weight * style_loss
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.step()
        totals.append(total_loss.item())
    return totals, target.detach(), content.shape


@needs_assets
def test_upes_preset_matches_the_appendix_loop(tmp_path):
    # a weights file in torchvision's features layout, with a seed no other test uses
    feats = load_backbone("vgg19", "random", seed=2024).extractor.state_dict()
    torch.save({k.split(".", 1)[1]: v for k, v in feats.items()}, tmp_path / "vgg19_features.pth")

    ref_totals, ref_image, ref_shape = reference_upes(tmp_path / "vgg19_features.pth", resolve_image("octopus"),
                                                      resolve_image("hockney"), STEPS, MAX_SIZE)

    preset = override(UPES, steps=STEPS, size=MAX_SIZE)
    content, style = load_pair(preset, "octopus", "hockney")
    assert content.shape == ref_shape  # same resize rule: short side 64, long side int(64 * 800 / 540)
    backbone = load_backbone("vgg19", str(tmp_path / "vgg19_features.pth"))
    result = run_preset(preset, content, style, backbone, progress_every=0)
    ours = [h["total"] for h in result.history]
    assert ours == pytest.approx(ref_totals, rel=1e-4)
    assert ref_totals[-1] < ref_totals[0]  # it is optimising, not standing still
    assert torch.allclose(result.last, ref_image, atol=1e-4)


@needs_assets
def test_reference_differs_if_the_inplace_relu_quirk_is_ignored(tmp_path):
    """With the conv (pre-ReLU) layers the appendix names, our loss is not the appendix's loss."""
    feats = load_backbone("vgg19", "random", seed=2024).extractor.state_dict()
    torch.save({k.split(".", 1)[1]: v for k, v in feats.items()}, tmp_path / "w.pth")
    ref_totals, _, _ = reference_upes(tmp_path / "w.pth", resolve_image("octopus"), resolve_image("hockney"), 1, MAX_SIZE)
    conv_names = dataclasses.replace(UPES.loss, content_layers=(("conv4_2", 1.0),),
                                     style_layers=tuple((n.replace("relu", "conv"), w) for n, w in UPES.loss.style_layers))
    preset = dataclasses.replace(override(UPES, steps=1, size=MAX_SIZE), loss=conv_names)
    content, style = load_pair(preset, "octopus", "hockney")
    result = run_preset(preset, content, style, load_backbone("vgg19", str(tmp_path / "w.pth")), progress_every=0)
    assert result.history[0]["total"] != pytest.approx(ref_totals[0], rel=1e-2)
