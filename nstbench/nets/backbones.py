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
`keras_resnet50` is Keras' ResNet50 v1 itself (keras/src/applications/resnet.py): ZeroPadding2D(3)
before the 7x7 stride-2 conv, ZeroPadding2D(1) before the 3x3 stride-2 max pool, stride 2 in the
first 1x1 conv (and the 1x1 shortcut) of a stage's first block, every conv with a bias, batch norm
epsilon 1.001e-5. Same names, the same taps; a `_conv` tap includes its bias.

Every extractor carries `feature_info`: name -> FeatureInfo (channels, reduction = input pixels per
output pixel along a side, kind conv/bn/relu/pool/add; convs also their input channels, kernel and
stride), declared below where the layers are built, so callers need not recompute shapes.

In-place ReLUs: torchvision builds VGG and ResNet with `ReLU(inplace=True)`, which overwrites a
conv output that was stored for later (the UPES appendix taps `conv1_1` and actually gets
relu1_1). The extractor uses out-of-place ReLUs, so a tapped `conv4_2` is the real conv output;
presets that reproduce the in-place quirk ask for the relu layers explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config.errors import NstbenchError, unknown
from ..config.specs import Space
from .images import unit_to_space

ARCHS = ("vgg16", "vgg19", "resnet50", "keras_resnet50")
RESNETS = ("resnet50", "keras_resnet50")
VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_CHANNELS = (64, 128, 256, 512, 512)  # per block (torchvision cfgs "D"/"E", Keras VGG16/VGG19)
RESNET50_BLOCKS = (3, 4, 6, 3)  # blocks per stage, Keras stages conv2..conv5
KERAS_BN_EPS = 1.001e-5  # resnet.py: BatchNormalization(epsilon=1.001e-5); torchvision uses 1e-5

Pooling = Literal["max", "avg"]


@dataclass(frozen=True)
class FeatureInfo:
    """One named layer's output: channels, reduction (stride from the input), kind; for convs also
    the input channels, kernel size and the conv's own stride."""

    channels: int
    reduction: int
    kind: Literal["conv", "bn", "relu", "pool", "add"]
    in_channels: int | None = None
    kernel: int | None = None
    stride: int | None = None


def vgg_feature_info(arch: str) -> dict[str, FeatureInfo]:
    """Same order and names as vgg_layer_names: 3x3 convs (padding 1), ReLUs, 2x2 stride-2 pools."""
    info, cin, red = {}, 3, 1
    for b, (n, c) in enumerate(zip(VGG_BLOCKS[arch], VGG_CHANNELS), start=1):
        for i in range(1, n + 1):
            info[f"conv{b}_{i}"] = FeatureInfo(c, red, "conv", in_channels=cin, kernel=3, stride=1)
            info[f"relu{b}_{i}"] = FeatureInfo(c, red, "relu")
            cin = c
        red *= 2
        info[f"pool{b}"] = FeatureInfo(c, red, "pool")
    return info


def resnet50_feature_info(arch: str) -> dict[str, FeatureInfo]:
    """Keras names in forward order. A stage's first block halves the size (stages conv3..conv5): in
    its first 1x1 conv for Keras' v1 (keras_resnet50), in its 3x3 conv for torchvision's v1.5."""
    v1 = arch == "keras_resnet50"
    info = {
        "conv1_conv": FeatureInfo(64, 2, "conv", in_channels=3, kernel=7, stride=2),
        "conv1_bn": FeatureInfo(64, 2, "bn"),
        "conv1_relu": FeatureInfo(64, 2, "relu"),
        "pool1_pool": FeatureInfo(64, 4, "pool"),
    }
    cin, red = 64, 4
    for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
        f = 64 * 2 ** (s - 2)
        for b in range(1, nblocks + 1):
            p, stride = f"conv{s}_block{b}", (2 if s > 2 and b == 1 else 1)
            out_red = red * stride
            if b == 1:
                info[f"{p}_0_conv"] = FeatureInfo(4 * f, out_red, "conv", in_channels=cin, kernel=1, stride=stride)
                info[f"{p}_0_bn"] = FeatureInfo(4 * f, out_red, "bn")
            r1, s1, s2 = (out_red, stride, 1) if v1 else (red, 1, stride)
            info[f"{p}_1_conv"] = FeatureInfo(f, r1, "conv", in_channels=cin, kernel=1, stride=s1)
            info[f"{p}_1_bn"], info[f"{p}_1_relu"] = FeatureInfo(f, r1, "bn"), FeatureInfo(f, r1, "relu")
            info[f"{p}_2_conv"] = FeatureInfo(f, out_red, "conv", in_channels=f, kernel=3, stride=s2)
            info[f"{p}_2_bn"], info[f"{p}_2_relu"] = FeatureInfo(f, out_red, "bn"), FeatureInfo(f, out_red, "relu")
            info[f"{p}_3_conv"] = FeatureInfo(4 * f, out_red, "conv", in_channels=f, kernel=1, stride=1)
            info[f"{p}_3_bn"] = FeatureInfo(4 * f, out_red, "bn")
            info[f"{p}_add"], info[f"{p}_out"] = FeatureInfo(4 * f, out_red, "add"), FeatureInfo(4 * f, out_red, "relu")
            cin, red = 4 * f, out_red
    return info


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
            names += [
                f"{p}_1_conv",
                f"{p}_1_bn",
                f"{p}_1_relu",
                f"{p}_2_conv",
                f"{p}_2_bn",
                f"{p}_2_relu",
                f"{p}_3_conv",
                f"{p}_3_bn",
                f"{p}_add",
                f"{p}_out",
            ]
    return names


def layer_names(arch: str) -> list[str]:
    if arch in VGG_BLOCKS:
        return vgg_layer_names(arch)
    if arch in RESNETS:
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


def _requests(arch: str, layers, instead_of: str | None = None) -> dict[str, list[str]]:
    """canonical name -> the names the caller asked for (an alias and its target may both be asked).
    instead_of: the architecture this one stands in for (a VGG19 preset on the VGG16 stand-in trunk
    runs its own layers by canonical name; a layer only VGG19 has is a one-line error naming it)."""
    want: dict[str, list[str]] = {}
    for n in layers:
        if instead_of and n in layer_names(instead_of) + list(vgg_aliases(instead_of)):
            try:
                canonical(arch, n)
            except NstbenchError:
                raise NstbenchError(
                    f"layer {n} of {instead_of} is not in the {arch} that stands in for it (the HED stand-in "
                    f"trunk is a VGG16: conv1_1 .. conv5_3); use --weights random or the source's ImageNet weights"
                ) from None
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

    if arch not in ("vgg16", "vgg19", "resnet50"):
        raise unknown("torchvision backbone", arch, ("vgg16", "vgg19", "resnet50"))
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


def build_model(arch: str) -> nn.Module:
    """The randomly initialised network for any backbone (the caller seeds the RNG)."""
    if arch == "keras_resnet50":
        return KerasResNet50()
    if arch not in ARCHS:
        raise unknown("backbone", arch, ARCHS)
    return build_torchvision(arch)


def keras_resnet50_weighted_layers() -> list[str]:
    """The layers with weights of Keras' ResNet50 in the order of its `model.layers`, which is the
    order legacy .h5 files store them in and Keras loads them by. In a stage's first block that is
    1_conv, 1_bn, 2_conv, 2_bn, 0_conv, 3_conv, 0_bn, 3_bn (the model's summary lists the shortcut
    conv after 2_relu: layers are sorted by depth in the graph), in later blocks 1, 2, 3."""
    names = ["conv1_conv", "conv1_bn"]
    for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
        for b in range(1, nblocks + 1):
            p = f"conv{s}_block{b}"
            names += [f"{p}_1_conv", f"{p}_1_bn", f"{p}_2_conv", f"{p}_2_bn"]
            names += (
                [f"{p}_0_conv", f"{p}_3_conv", f"{p}_0_bn", f"{p}_3_bn"] if b == 1 else [f"{p}_3_conv", f"{p}_3_bn"]
            )
    return names


def _block_of(names: list[str]) -> dict[str, int]:
    """Which block produces each ResNet name: 0 = stem, then 1, 2, ... in forward order."""
    block_of = {n: 0 for n in names if n.startswith(("conv1_", "pool1_"))}
    order = 0
    for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
        for b in range(1, nblocks + 1):
            order += 1
            block_of.update({n: order for n in names if n.startswith(f"conv{s}_block{b}_")})
    return block_of


class KerasResNet50(nn.Module):
    """Keras' ResNet50 v1 (resnet.py ResNet50, include_top=False) behind its own layer names.

    Modules live in `layers`, keyed by the Keras layer name, so a Keras file maps onto them layer
    by layer. Random init as torchvision's resnet50 (Kaiming normal, fan_out; zero biases; batch norm
    1, 0, running mean 0, variance 1), not Keras' Glorot-uniform: with eval-mode batch norm Glorot
    halves the activations' variance at every ReLU, and 50 layers on, the deep taps of a random
    network are ~1e-7 and an optimisation on them barely moves (useless for regression bands).
    """

    def __init__(self):
        super().__init__()
        self.arch = "keras_resnet50"
        self.names = resnet50_layer_names()
        self.feature_info = resnet50_feature_info(self.arch)
        self.block_of = _block_of(self.names)
        layers = {}
        for name, fi in self.feature_info.items():
            if fi.kind == "conv":
                pad = 1 if fi.kernel == 3 else 0  # the 3x3 convs are padding="SAME"; 1x1 and the stem "valid"
                conv = nn.Conv2d(fi.in_channels, fi.channels, fi.kernel, stride=fi.stride, padding=pad, bias=True)
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
                layers[name] = conv
            elif fi.kind == "bn":
                layers[name] = nn.BatchNorm2d(fi.channels, eps=KERAS_BN_EPS)
        self.layers = nn.ModuleDict(layers)

    def weighted_layers(self) -> list[tuple[str, nn.Module]]:
        return [(n, self.layers[n]) for n in keras_resnet50_weighted_layers()]

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        want = _requests(self.arch, layers)
        last = max(self.block_of[c] for c in want)
        taps: dict[str, torch.Tensor] = {}
        L = self.layers

        def tap(name: str, t: torch.Tensor) -> torch.Tensor:
            for asked in want.get(name, ()):
                taps[asked] = t
            return t

        x = tap("conv1_conv", L["conv1_conv"](F.pad(x, (3, 3, 3, 3))))  # conv1_pad: ZeroPadding2D(3)
        x = tap("conv1_bn", L["conv1_bn"](x))
        x = tap("conv1_relu", F.relu(x))
        x = tap("pool1_pool", F.max_pool2d(F.pad(x, (1, 1, 1, 1)), kernel_size=3, stride=2))  # pool1_pad: zeros
        order = 0
        for s, nblocks in enumerate(RESNET50_BLOCKS, start=2):
            for b in range(1, nblocks + 1):
                order += 1
                if order > last:
                    return taps
                p = f"conv{s}_block{b}"
                shortcut = x
                if b == 1:
                    shortcut = tap(f"{p}_0_bn", L[f"{p}_0_bn"](tap(f"{p}_0_conv", L[f"{p}_0_conv"](x))))
                y = x
                for k in (1, 2):
                    y = tap(f"{p}_{k}_bn", L[f"{p}_{k}_bn"](tap(f"{p}_{k}_conv", L[f"{p}_{k}_conv"](y))))
                    y = tap(f"{p}_{k}_relu", F.relu(y))
                y = tap(f"{p}_3_bn", L[f"{p}_3_bn"](tap(f"{p}_3_conv", L[f"{p}_3_conv"](y))))
                y = tap(f"{p}_add", shortcut + y)
                x = tap(f"{p}_out", F.relu(y))
        return taps


class VGGExtractor(nn.Module):
    """torchvision VGG `features` behind canonical names; stops at the deepest tapped layer."""

    def __init__(self, features: nn.Sequential, arch: str, pooling: Pooling = "max", instead_of: str | None = None):
        super().__init__()
        self.arch = arch
        self.instead_of = instead_of  # the VGG this one stands in for (weights.py, --weights hed), or None
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
        self.feature_info = vgg_feature_info(arch)

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        want = _requests(self.arch, layers, self.instead_of)
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
        self.feature_info = resnet50_feature_info(self.arch)
        self.block_of = _block_of(self.names)

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
    weights: dict  # {"kind": "imagenet"|"file"|"random", "family": ..., ...}; see weights.py
    # The input convention of the weights (images.Space): "imagenet" (torchvision: mean/std RGB),
    # "caffe" (Keras and Caffe VGG: BGR 0..255 minus the mean) or "gatys" (vgg_conv.pth). Random
    # weights keep "imagenet", the convention every random-weight band was measured with.
    input_space: Space = "imagenet"

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """x is in the network's input space (`input_space`; see `preprocess`)."""
        return self.extractor.extract(x, layers)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Unit RGB [B, 3, H, W] -> the input these weights expect."""
        return unit_to_space(x, self.input_space)

    @property
    def feature_info(self) -> dict[str, FeatureInfo]:
        return self.extractor.feature_info

    def to(self, device=None, memory_format=None) -> "Backbone":
        self.extractor.to(device=device)
        if memory_format is not None:
            self.extractor.to(memory_format=memory_format)
        return self


def make_extractor(model: nn.Module, arch: str, pooling: Pooling = "max", instead_of: str | None = None) -> nn.Module:
    if arch in VGG_BLOCKS:
        ext = VGGExtractor(model.features, arch, pooling, instead_of)
    elif arch in RESNETS:
        if pooling != "max":
            raise NstbenchError("average pooling is only available for the VGG backbones")
        ext = ResNet50Extractor(model) if arch == "resnet50" else model
    else:
        raise unknown("backbone", arch, ARCHS)
    ext.eval()  # batch norm uses its running statistics; nothing here is trained
    for p in ext.parameters():
        p.requires_grad_(False)  # frozen: gradients flow to the image only
    return ext


@torch.no_grad()
def gatys_scales(
    ext: VGGExtractor, images: torch.Tensor | Iterable[torch.Tensor], silent: float = 0.0
) -> dict[str, torch.Tensor]:
    """Gatys et al.'s per-filter scales: each conv's mean (post-ReLU) activation over `images`.

    images: one batch in the network's input space, or an iterable of batches (a data set in
    pieces); the mean is over every image and position, accumulated in float64 (100 images x 50k
    positions of float32 would lose digits). Dead filters (mean 0) get scale 1, and so do silent
    ones when `silent` > 0 (see silent_scales).
    """
    if not isinstance(ext, VGGExtractor):
        raise NstbenchError("Gatys' activation normalisation is defined for the VGG backbones only")
    relus = {"relu" + name[4:]: name for name, _ in ext.convs()}
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(relus, 0)
    for batch in [images] if isinstance(images, torch.Tensor) else images:
        acts = ext.extract(batch, list(relus))
        for r, a in acts.items():
            sums[r] = sums.get(r, 0) + a.double().sum(dim=(0, 2, 3))
            counts[r] += a.shape[0] * a.shape[2] * a.shape[3]
    return {relus[r]: silent_scales(sums[r] / counts[r], silent) for r in relus}


def silent_scales(means: torch.Tensor, silent: float = 0.0) -> torch.Tensor:
    """Scales from one layer's filter means: the mean itself, except 1 (left unscaled) for a dead
    filter (mean 0) and for a silent one, whose mean is below `silent` times the median of the
    layer's live filters. Dividing by a silent filter's mean would amplify its rare responses by
    up to 1/mean: on the HED stand-in, fine-tuned for edges, conv5_1 has a filter of mean 7e-8 over
    coco100, and the amplified trunk drives gatys2016's loss to inf within 100 L-BFGS evaluations."""
    live = means[means > 0]
    keep = means > (silent * live.median() if silent > 0 and live.numel() else 0)
    return torch.where(keep, means, torch.ones_like(means))


@torch.no_grad()
def apply_gatys_scales(ext: VGGExtractor, scales: dict[str, torch.Tensor]) -> dict[str, float]:
    """Divide each conv's filters (and biases) by its scale s_l, which scales its output channels by
    1/s_l; ReLU and max/average pooling commute with positive scales, so layer l+1 multiplies its
    input channels by s_l to undo it. The network then computes the original activations divided by
    s_l at every layer (the same function up to a positive per-channel scale, as Gatys et al. state),
    so scales measured on the original network (gatys_scales, one pass) give mean activation 1.
    Returns the mean scale per layer, for the run record."""
    summary, prev = {}, None
    for name, conv in ext.convs():
        scale = scales[name].to(conv.weight.dtype)
        if prev is not None:
            conv.weight.mul_(prev.view(1, -1, 1, 1))  # undo the scaling of this layer's input
        conv.weight.div_(scale.view(-1, 1, 1, 1))
        conv.bias.div_(scale)
        prev = scale
        summary[name] = float(scale.mean())
    return summary


def gatys_normalize(ext: VGGExtractor, images: torch.Tensor | Iterable[torch.Tensor]) -> dict[str, float]:
    """Gatys et al.: rescale each conv filter so its mean (post-ReLU) activation over `images` is 1."""
    return apply_gatys_scales(ext, gatys_scales(ext, images))
