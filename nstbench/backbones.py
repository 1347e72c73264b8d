"""Backbones (VGG16, VGG19, ResNet50) as feature extractors with canonical layer names.

Layer names are resolved once, when the extractor is built. `extract(x, layers)` runs the network
only as far as the deepest requested layer and returns {name: tensor}.

VGG names: conv{b}_{i}, relu{b}_{i}, pool{b} (torchvision `features` order). Keras aliases
`block{b}_conv{i}` map to relu{b}_{i}, because a Keras conv layer has its ReLU built in, so its
output is post-ReLU; `block{b}_pool` maps to pool{b}.

ResNet50 names follow Keras (`conv3_block1_0_bn`, ...), mapped to torchvision's resnet50 as in
EXPERIMENTS.md: conv{S}_block{B}_{k}_{conv|bn|relu} -> layer{S-1}[B-1].{conv|bn}{k} (+ReLU),
conv{S}_block{B}_0_{conv|bn} -> layer{S-1}[0].downsample[0|1], conv{S}_block{B}_out -> block output.
Note: torchvision's resnet50 is "v1.5" (stride 2 in the 3x3 conv); Keras' ResNet50 is v1 (stride
2 in the first 1x1 conv). Shapes of every named layer agree; the weights do not transfer.

In-place ReLUs: torchvision builds VGG and ResNet with `ReLU(inplace=True)`, which overwrites a
conv output that was stored for later (the UPES appendix taps `conv1_1` and actually gets
relu1_1). The extractor uses out-of-place ReLUs, so a tapped `conv4_2` is the real conv output;
presets that reproduce the in-place quirk ask for the relu layers explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import NstbenchError, unknown

ARCHS = ("vgg16", "vgg19", "resnet50")
VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
RESNET50_BLOCKS = (3, 4, 6, 3)  # blocks per stage, Keras stages conv2..conv5

Pooling = Literal["max", "avg"]


def vgg_layer_names(arch: str) -> list[str]:
    """Canonical names in torchvision `features` order, one per module (index = position)."""
    names = []
    for b, n in enumerate(VGG_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def vgg_aliases(arch: str) -> dict[str, str]:
    out = {}
    for b, n in enumerate(VGG_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            out[f"block{b}_conv{i}"] = f"relu{b}_{i}"  # Keras conv outputs are post-ReLU
        out[f"block{b}_pool"] = f"pool{b}"
    return out


def resnet50_layer_names() -> list[str]:
    """Keras ResNet50 names in forward order (stem, then each bottleneck's parts)."""
    names = ["conv1_conv", "conv1_bn", "conv1_relu", "pool1_pool"]
    for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
        for b in range(1, nblocks + 1):
            p = f"conv{s}_block{b}"
            if b == 1:
                names += [f"{p}_0_conv", f"{p}_0_bn"]
            names += [f"{p}_1_conv", f"{p}_1_bn", f"{p}_1_relu", f"{p}_2_conv", f"{p}_2_bn", f"{p}_2_relu",
                      f"{p}_3_conv", f"{p}_3_bn", f"{p}_add", f"{p}_out"]
    return names


def layer_names(arch: str) -> list[str]:
    if arch in VGG_BLOCKS:
        return vgg_layer_names(arch)
    if arch == "resnet50":
        return resnet50_layer_names()
    raise unknown("backbone", arch, ARCHS)


def canonical(arch: str, name: str) -> str:
    """Resolve an alias (Keras VGG names) to the canonical name; error lists the valid names."""
    names = layer_names(arch)
    aliases = vgg_aliases(arch) if arch in VGG_BLOCKS else {}
    if name in aliases:
        return aliases[name]
    if name in names:
        return name
    raise unknown(f"{arch} layer", name, names)  # aliases (block{b}_conv{i}) are not listed


def _requests(arch: str, layers) -> dict[str, list[str]]:
    """canonical name -> the names the caller asked for (an alias and its target may both be asked)."""
    want: dict[str, list[str]] = {}
    for n in layers:
        want.setdefault(canonical(arch, n), []).append(n)
    if not want:
        raise NstbenchError("no layers requested")
    return want


def build_torchvision(arch: str) -> nn.Module:
    """The torchvision architecture, randomly initialised (the caller seeds the RNG).

    For VGG only `features` is built (with torchvision's own conv init: Kaiming normal, fan_out,
    zero bias): the 120M-parameter classifier is never used here and takes ~2 s to initialise.
    The result still has torchvision's module path `features.N`, so its state-dict keys match.
    """
    import torchvision

    if arch not in ARCHS:
        raise unknown("backbone", arch, ARCHS)
    if arch in VGG_BLOCKS:
        from torchvision.models.vgg import cfgs, make_layers

        model = nn.Module()
        model.features = make_layers(cfgs["D" if arch == "vgg16" else "E"], batch_norm=False)
        for m in model.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return model
    return getattr(torchvision.models, arch)(weights=None)


class VGGExtractor(nn.Module):
    """torchvision VGG `features` behind canonical names; stops at the deepest tapped layer."""

    def __init__(self, features: nn.Sequential, arch: str, pooling: Pooling = "max"):
        super().__init__()
        self.arch = arch
        self.names = vgg_layer_names(arch)
        mods = []
        for name, m in zip(self.names, features):
            if isinstance(m, nn.ReLU):
                m = nn.ReLU(inplace=False)  # never overwrite a tapped conv output
            elif isinstance(m, nn.MaxPool2d) and pooling == "avg":
                m = nn.AvgPool2d(kernel_size=2, stride=2)  # Gatys: average pooling looks smoother
            mods.append(m)
        self.layers = nn.ModuleList(mods)
        self.index = {n: i for i, n in enumerate(self.names)}

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        want = _requests(self.arch, layers)
        last = max(self.index[c] for c in want)
        out = {}
        for i in range(last + 1):
            x = self.layers[i](x)
            for asked in want.get(self.names[i], ()):
                out[asked] = x
        return out

    def convs(self) -> list[tuple[str, nn.Conv2d]]:
        return [(n, m) for n, m in zip(self.names, self.layers) if isinstance(m, nn.Conv2d)]


class ResNet50Extractor(nn.Module):
    """torchvision resnet50 behind Keras layer names; stops after the block of the deepest tap.

    The bottleneck is written out here (rather than calling torchvision's forward) because that
    forward applies its ReLU and the residual add in place, which would overwrite tapped bn outputs.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.arch = "resnet50"
        self.stem = nn.ModuleDict({"conv": model.conv1, "bn": model.bn1})
        self.stages = nn.ModuleList([model.layer1, model.layer2, model.layer3, model.layer4])
        self.names = resnet50_layer_names()
        # which block produces each name: 0 = stem, then 1, 2, ... in forward order
        self.block_of = {n: 0 for n in self.names if n.startswith(("conv1_", "pool1_"))}
        order = 0
        for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
            for b in range(1, nblocks + 1):
                order += 1
                self.block_of.update({n: order for n in self.names if n.startswith(f"conv{s}_block{b}_")})

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        want = _requests("resnet50", layers)
        last = max(self.block_of[c] for c in want)
        taps: dict[str, torch.Tensor] = {}

        def tap(name: str, t: torch.Tensor) -> torch.Tensor:
            for asked in want.get(name, ()):
                taps[asked] = t
            return t

        x = tap("conv1_conv", self.stem["conv"](x))
        x = tap("conv1_bn", self.stem["bn"](x))
        x = tap("conv1_relu", F.relu(x))
        x = tap("pool1_pool", F.max_pool2d(x, kernel_size=3, stride=2, padding=1))
        order = 0
        for s, stage in enumerate(self.stages, start=2):
            for b, blk in enumerate(stage, start=1):
                order += 1
                if order > last:
                    return taps
                p = f"conv{s}_block{b}"
                identity = x
                if blk.downsample is not None:
                    identity = tap(f"{p}_0_conv", blk.downsample[0](x))
                    identity = tap(f"{p}_0_bn", blk.downsample[1](identity))
                y = tap(f"{p}_1_conv", blk.conv1(x))
                y = tap(f"{p}_1_bn", blk.bn1(y))
                y = tap(f"{p}_1_relu", F.relu(y))
                y = tap(f"{p}_2_conv", blk.conv2(y))
                y = tap(f"{p}_2_bn", blk.bn2(y))
                y = tap(f"{p}_2_relu", F.relu(y))
                y = tap(f"{p}_3_conv", blk.conv3(y))
                y = tap(f"{p}_3_bn", blk.bn3(y))
                y = tap(f"{p}_add", y + identity)
                x = tap(f"{p}_out", F.relu(y))
        return taps


@dataclass
class Backbone:
    """A frozen feature extractor plus where its weights came from (recorded in every output)."""

    arch: str
    extractor: nn.Module
    weights: dict  # {"kind": "imagenet"|"file"|"random", ...}; see weights.py

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """x is in the network's input space: ImageNet-normalised RGB (torchvision weights)."""
        return self.extractor.extract(x, layers)

    def to(self, device=None, memory_format=None) -> "Backbone":
        self.extractor.to(device=device)
        if memory_format is not None:
            self.extractor.to(memory_format=memory_format)
        return self


def make_extractor(model: nn.Module, arch: str, pooling: Pooling = "max") -> nn.Module:
    if arch in VGG_BLOCKS:
        ext = VGGExtractor(model.features, arch, pooling)
    elif arch == "resnet50":
        if pooling != "max":
            raise NstbenchError("average pooling is only available for the VGG backbones")
        ext = ResNet50Extractor(model)
    else:
        raise unknown("backbone", arch, ARCHS)
    ext.eval()  # batch norm uses its running statistics; nothing here is trained
    for p in ext.parameters():
        p.requires_grad_(False)  # frozen: gradients flow to the image only
    return ext


@torch.no_grad()
def gatys_normalize(ext: VGGExtractor, images: torch.Tensor) -> dict[str, float]:
    """Gatys et al.: rescale each conv filter so its mean (post-ReLU) activation over `images` is 1.

    Layers are rescaled in forward order. Dividing layer l's filters (and biases) by s_l scales
    its output channels by 1/s_l; ReLU and pooling commute with positive scales, so layer l+1
    multiplies its input channels by s_l to undo it. The network then computes the same function
    up to a positive per-channel scale at every layer, as Gatys et al. state. Dead filters (mean
    0) keep scale 1. Returns the mean scale per layer, for the run record.
    """
    if not isinstance(ext, VGGExtractor):
        raise NstbenchError("Gatys' activation normalisation is defined for the VGG backbones only")
    summary = {}
    prev = None
    for name, conv in ext.convs():
        if prev is not None:
            conv.weight.mul_(prev.view(1, -1, 1, 1))  # undo the scaling of this layer's input
        relu = "relu" + name[4:]
        act = ext.extract(images, [relu])[relu]
        mean = act.mean(dim=(0, 2, 3))
        scale = torch.where(mean > 0, mean, torch.ones_like(mean))
        conv.weight.div_(scale.view(-1, 1, 1, 1))
        conv.bias.div_(scale)
        prev = scale
        summary[name] = float(scale.mean())
    return summary
