"""The image transformation network of Johnson et al. (2016) and loading of its checkpoints.

Layout (Johnson et al., supplementary Table 1): c9s1-32, d64, d128, five residual blocks of 128,
u64, u32, c9s1-3. Every conv but the last is followed by a norm layer and a ReLU; a residual block
is conv-norm-ReLU-conv-norm plus the input, without a ReLU after the addition (Gross and Wilber's
design, which the supplementary material names).

Parameter names follow pytorch/examples fast_neural_style (`conv1.conv2d.weight`, `in1.weight`,
`res1.conv1.conv2d.weight`, `deconv1.conv2d.weight`, ...), so that project's state dicts load
as they are. The norm layers keep the name `in<k>` even when they are batch norm.

Units: every variant takes a unit-space image ([0, 1] RGB) through `stylize_unit`, which maps it
to the variant's own input units, runs the network and returns the output in unit space
(output / 255, *not* clamped: clamping happens when the image is saved). `forward` is the raw
network in its source's units, for comparisons with that source.

Variants (`VARIANTS`):
  johnson2016       the paper: batch norm, zero padding, transposed convs (stride 1/2), 150*tanh
  hust              the HUST notebook (khanhnn20042002/cv20222 fast-style-transfer.ipynb)
  pytorch-examples  pytorch/examples fast_neural_style TransformerNet
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch
from torch import nn

from ..config.errors import NstbenchError
from ..config.variants import PYTORCH_EXAMPLES, TransformerConfig
from .checkpoints import check_state, read_torch_file

CHECKPOINT_KIND = "nstbench-transformer"


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


def _norm(cfg: TransformerConfig, channels: int) -> nn.Module:
    if cfg.norm == "instance":
        # affine, no running statistics: the same at training and test time (pytorch/examples)
        return nn.InstanceNorm2d(channels, affine=True, eps=cfg.norm_eps)
    return nn.BatchNorm2d(channels, eps=cfg.norm_eps, momentum=cfg.norm_momentum)


def tf_same_pads(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow padding="same" along one side: (before, after)."""
    total = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class TFSamePad(nn.Module):
    """Zero padding as TensorFlow's padding="same" computes it for this input size."""

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_pads(x.shape[-2], self.kernel_size, self.stride)
        left, right = tf_same_pads(x.shape[-1], self.kernel_size, self.stride)
        return nn.functional.pad(x, (left, right, top, bottom))


class ConvLayer(nn.Module):
    """Pad by kernel_size // 2 (zero or reflect; TF "same" at stride 2 with tf_same), then convolve:
    `pad` + `conv2d`."""

    def __init__(self, cfg: TransformerConfig, cin: int, cout: int, kernel_size: int, stride: int = 1):
        super().__init__()
        p = kernel_size // 2
        if stride > 1 and cfg.stride2_padding == "tf_same":
            self.pad = TFSamePad(kernel_size, stride)
        else:
            self.pad = nn.ReflectionPad2d(p) if cfg.padding == "reflect" else nn.ZeroPad2d(p)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride, bias=cfg.conv_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.pad(x))


class UpsampleLayer(nn.Module):
    """x2 upsampling: a transposed conv (k3, stride 2, output exactly 2x the input) or nearest
    upsampling followed by a padded k3 conv (pytorch/examples UpsampleConvLayer)."""

    def __init__(self, cfg: TransformerConfig, cin: int, cout: int):
        super().__init__()
        self.transpose = cfg.upsample == "transpose"
        self.tf_same = self.transpose and cfg.stride2_padding == "tf_same"
        if self.transpose:
            self.pad = nn.Identity()
            # symmetric: padding=1, output_padding=1 gives 2H, the size of Keras' "same" Conv2DTranspose,
            # shifted by a row; tf_same: padding=0 (2H + 1 rows), then forward keeps the first 2H as TF
            p = 0 if self.tf_same else 1
            self.conv2d = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=p, output_padding=p, bias=cfg.conv_bias)
        else:
            self.pad = nn.ReflectionPad2d(1) if cfg.padding == "reflect" else nn.ZeroPad2d(1)
            self.conv2d = nn.Conv2d(cin, cout, 3, 1, bias=cfg.conv_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transpose:
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        y = self.conv2d(self.pad(x))
        return y[..., : 2 * x.shape[-2], : 2 * x.shape[-1]] if self.tf_same else y


class ResidualBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig, channels: int = 128):
        super().__init__()
        self.conv1 = ConvLayer(cfg, channels, channels, 3)
        self.in1 = _norm(cfg, channels)
        self.conv2 = ConvLayer(cfg, channels, channels, 3)
        self.in2 = _norm(cfg, channels)
        self.shave = 0
        if cfg.residual_padding == "valid":  # unpadded convs: the branch loses 2 px per side
            self.conv1.pad = self.conv2.pad = nn.Identity()
            self.shave = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.in1(self.conv1(x)))
        s = self.shave
        skip = x[..., s : x.shape[-2] - s, s : x.shape[-1] - s] if s else x
        return self.in2(self.conv2(y)) + skip  # no ReLU after the addition (Gross and Wilber)


class TransformerNet(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.conv1 = ConvLayer(cfg, 3, 32, 9)
        self.in1 = _norm(cfg, 32)
        self.conv2 = ConvLayer(cfg, 32, 64, 3, 2)
        self.in2 = _norm(cfg, 64)
        self.conv3 = ConvLayer(cfg, 64, 128, 3, 2)
        self.in3 = _norm(cfg, 128)
        self.res1 = ResidualBlock(cfg)
        self.res2 = ResidualBlock(cfg)
        self.res3 = ResidualBlock(cfg)
        self.res4 = ResidualBlock(cfg)
        self.res5 = ResidualBlock(cfg)
        self.deconv1 = UpsampleLayer(cfg, 128, 64)
        self.in4 = _norm(cfg, 64)
        self.deconv2 = UpsampleLayer(cfg, 64, 32)
        self.in5 = _norm(cfg, 32)
        self.deconv3 = ConvLayer(cfg, 32, 3, 9)
        self.in6 = _norm(cfg, 3) if cfg.final_norm else nn.Identity()
        self.register_buffer("in_mean", torch.tensor(cfg.in_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("out_offset", torch.tensor(cfg.out_offset).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "TransformerNet":
        """nn.Module.train, except that with bn_inference the batch norm layers stay in eval mode."""
        super().train(mode)
        if self.cfg.bn_inference:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The raw network: input and output in the source's units (see TransformerConfig)."""
        if self.cfg.input_reflect_pad:
            p = self.cfg.input_reflect_pad
            x = nn.functional.pad(x, (p, p, p, p), mode="reflect")
        y = torch.relu(self.in1(self.conv1(x)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        y = self.in6(self.deconv3(y))
        if self.cfg.output == "tanh":
            y = self.out_offset + self.cfg.tanh_scale * torch.tanh(y)
        return y

    def stylize_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-space image [B, 3, H, W] in, unit-space image out (output / 255, not clamped).
        H and W should be multiples of 4; otherwise the output size differs from the input's
        (two stride-2 convs then two x2 upsamplings), exactly as in the sources."""
        if self.cfg.channel_order == "bgr":
            return self(x.flip(1) * self.cfg.in_scale - self.in_mean).flip(1) / 255.0
        return self(x * self.cfg.in_scale - self.in_mean) / 255.0


def min_input_side(cfg: TransformerConfig) -> int:
    """The smallest side a network takes: a reflection pad must be narrower than its input
    (johnson2016-code's 40 px input pad needs 41 px); every other variant runs from 1 px."""
    return cfg.input_reflect_pad + 1


def check_input_size(cfg: TransformerConfig, wh: tuple[int, int], what: str) -> None:
    """Refuse, before any work, an input too small for the network (one line naming the minimum)."""
    w, h = wh
    need = min_input_side(cfg)
    if min(w, h) < need:
        raise NstbenchError(
            f"{what} is {w}x{h} px; the {cfg.name} network needs at least {need} px on each side "
            f"(its {cfg.input_reflect_pad} px reflection padding of the input)"
        )


def build_transformer(cfg: TransformerConfig, seed: int = 0) -> TransformerNet:
    """A freshly initialised network (PyTorch's default init, seeded; the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TransformerNet(cfg)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

# Old pytorch/examples checkpoints (PyTorch < 0.4) carry running statistics for InstanceNorm2d,
# which the current module no longer has; their stylize script deletes them before loading.
_OLD_IN_KEYS = re.compile(r"in\d+\.(running_mean|running_var|num_batches_tracked)$")
# Keys that only a pytorch/examples TransformerNet state dict has (all present in every version).
_EXAMPLES_KEYS = ("conv1.conv2d.weight", "res1.conv1.conv2d.weight", "deconv1.conv2d.weight", "deconv3.conv2d.weight")


def is_examples_state_dict(obj) -> bool:
    return (
        isinstance(obj, dict)
        and all(k in obj for k in _EXAMPLES_KEYS)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def read_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True, with one-line errors naming the file."""
    path = Path(path).expanduser()
    obj = read_torch_file(path, "checkpoint")
    if not isinstance(obj, dict):
        raise NstbenchError(f"{path} is not a transformer checkpoint (it holds a {type(obj).__name__})")
    return obj


def load_state(net: TransformerNet, state: dict, origin: str) -> None:
    """load_state_dict with one-line errors; drops old InstanceNorm running statistics."""
    state = dict(state)
    if net.cfg.norm == "instance":
        for k in [k for k in state if _OLD_IN_KEYS.search(k)]:
            del state[k]
    expected = {k: v.shape for k, v in net.state_dict().items()}
    check_state(expected, state, f"{origin} does not fit the {net.cfg.name} network ({net.cfg.norm} norm)")
    net.load_state_dict(state)


def load_transformer(path: str | Path) -> tuple[TransformerNet, dict]:
    """A trained network from an nstbench checkpoint or a pytorch/examples state dict, in eval mode.

    Returns (net, info); info["format"] is "nstbench" or "pytorch-examples", and for nstbench
    checkpoints info holds the whole checkpoint dict except the tensors.
    """
    path = Path(path).expanduser()
    ckpt = read_checkpoint(path)
    if ckpt.get("kind") == CHECKPOINT_KIND:
        try:
            cfg = TransformerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["network"].items()})
            state = ckpt["state_dict"]
        except (KeyError, TypeError) as e:
            raise NstbenchError(f"checkpoint {path} is damaged: {e}") from None
        info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "rng")}
        info["format"] = "nstbench"
    elif is_examples_state_dict(ckpt):
        cfg, state = PYTORCH_EXAMPLES, ckpt
        info = {"format": "pytorch-examples", "network": dataclasses.asdict(cfg)}
    else:
        keys = ", ".join(list(map(str, ckpt))[:3])
        raise NstbenchError(
            f"{path} is not a transformer checkpoint (neither nstbench nor pytorch/examples "
            f"fast_neural_style; its first keys: {keys or 'none'})"
        )
    net = TransformerNet(cfg)
    load_state(net, state, f"checkpoint {path}")
    net.eval()  # batch norm: running statistics at test time
    return net, info
