"""The plain baseline for the Gatys benchmark: the UPES appendix loop (004, Appendix I), as written.

Written for the benchmark, deliberately without tricks: torchvision's full VGG19 `features`
(`make_layers(cfgs["E"])`, ReLU(inplace=True), all 37 modules run to pool5 although the deepest
tapped layer is relu5_1), frozen with requires_grad_(False) as the appendix does, the appendix's
get_features / gram_matrix, a per-layer Python loop of the style losses, Adam on the image, and
`.item()` of the loss every step. Only the image loading is left out: the benchmark hands both
implementations the same ImageNet-normalised tensors, and times iterations only.

The in-place ReLUs make the appendix's conv1_1 ... conv5_1 taps the post-ReLU maps, which is
what nstbench's `upes` preset asks for (relu1_1 ... relu5_1, relu4_2), so both minimise the same
loss and their loss trajectories must agree (tests/test_upes_reference.py checks it too).
"""

from __future__ import annotations

import time

import torch
import torch.optim as optim
from torchvision.models.vgg import cfgs, make_layers

# the appendix's layer table (torchvision indices) and style weights
LAYERS = {"0": "conv1_1", "5": "conv2_1", "10": "conv3_1", "19": "conv4_1", "21": "conv4_2", "28": "conv5_1"}
STYLE_WEIGHTS = {"conv1_1": 1.0, "conv2_1": 0.75, "conv3_1": 0.2, "conv4_1": 0.2, "conv5_1": 0.2}
CONTENT_WEIGHT, STYLE_WEIGHT, LR = 1, 1e6, 0.003


def plain_vgg19(features_state: dict) -> torch.nn.Sequential:
    """models.vgg19().features with the given weights (keys "0.weight", "0.bias", ...)."""
    vgg = make_layers(cfgs["E"])
    vgg.load_state_dict(features_state)
    for param in vgg.parameters():
        param.requires_grad_(False)
    return vgg.eval()


def get_features(image, model, layers=None):
    if layers is None:
        layers = LAYERS
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


def run_appendix(vgg, content: torch.Tensor, style: torch.Tensor, steps: int, sync=lambda: None):
    """The appendix loop on ImageNet-normalised [1, 3, H, W] tensors.

    Returns (totals per step, seconds per step, final image). Step k's total is the loss of the
    image before update k, as nstbench's history records it; `sync` (torch.cuda.synchronize on a
    GPU) makes the per-step clock honest on asynchronous devices.
    """
    content_features = get_features(content, vgg)
    style_features = get_features(style, vgg)
    style_grams = {layer: gram_matrix(style_features[layer]) for layer in style_features}
    target = content.clone().requires_grad_(True)
    optimizer = optim.Adam([target], lr=LR)
    totals, seconds = [], []
    for ii in range(1, steps + 1):
        sync()
        t0 = time.perf_counter()
        target_features = get_features(target, vgg)
        content_loss = torch.mean((target_features["conv4_2"] - content_features["conv4_2"]) ** 2)
        style_loss = 0
        for layer in STYLE_WEIGHTS:
            target_feature = target_features[layer]
            target_gram = gram_matrix(target_feature)
            _, d, h, w = target_feature.shape
            style_gram = style_grams[layer]
            layer_style_loss = STYLE_WEIGHTS[layer] * torch.mean((target_gram - style_gram) ** 2)
            style_loss += layer_style_loss / (d * h * w)
        total_loss = CONTENT_WEIGHT * content_loss + STYLE_WEIGHT * style_loss
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.step()
        totals.append(total_loss.item())
        sync()
        seconds.append(time.perf_counter() - t0)
    return totals, seconds, target.detach()
