"""The fast networks' variants as data (TransformerConfig): one per source's code, each value
cited. Torch-free: sources.py names a variant for each fast preset and `nstbench train --help`
lists them without loading torch; transformer.py builds the networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from .errors import unknown

IMAGENET_MEAN_255 = (123.68, 116.779, 103.939)  # RGB ImageNet mean in 0..255 (Johnson's "vgg" preprocessing)


@dataclass(frozen=True)
class TransformerConfig:
    """One network variant. Network input = unit * in_scale - in_mean (per channel); output in
    0..255 units = out_offset + tanh_scale * tanh(y) ("tanh") or y itself ("linear")."""

    name: str
    source: str
    norm: Literal["batch", "instance"]
    upsample: Literal["transpose", "nearest"]  # ConvTranspose2d(k3, s2) or nearest x2 + conv(k3, s1)
    padding: Literal["zero", "reflect"]
    output: Literal["tanh", "linear"]
    tanh_scale: float = 127.5
    out_offset: tuple[float, float, float] = (127.5, 127.5, 127.5)
    in_scale: float = 255.0
    in_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    conv_bias: bool = True
    final_norm: bool = False  # a norm layer (`in6`) between the last conv and the output tanh
    norm_eps: float = 1e-5
    norm_momentum: float = 0.1  # PyTorch convention: new = (1 - m) * old + m * batch (Keras' 0.99 is m = 0.01)
    # "symmetric": the stride-2 convs pad k // 2 on every side and the transposed convs give 2H with
    # padding 1, output_padding 1 (PyTorch's usual choice). "tf_same": TensorFlow's padding="same",
    # which splits the padding pad_total = max((ceil(H/s) - 1) s + k - H, 0) as pad_total // 2 before
    # and the rest after (an even side gets its one extra row only at the bottom/right), and whose
    # Conv2DTranspose keeps the first 2H rows of the full transposed output. Stride 1 is the same.
    stride2_padding: Literal["symmetric", "tf_same"] = "symmetric"
    # Batch norm in inference mode during training too: the moving statistics (0 and 1 when
    # initialised, never updated) normalise, gamma and beta still learn. What a Keras model does when
    # a custom train_step calls it without training=True.
    bn_inference: bool = False
    # "bgr": the network takes and returns BGR (Johnson's vgg preprocessing, img:index(2, {3, 2, 1})).
    channel_order: Literal["rgb", "bgr"] = "rgb"
    # "valid": the residual blocks' convs are unpadded and the identity is shaved by 2 px per side
    # (Johnson's padding_type reflect-start); input_reflect_pad reflection-pads the input so that
    # the output keeps the input's size (train.lua adds (H - H_out) / 2 = 40 px for 5 such blocks).
    residual_padding: Literal["same", "valid"] = "same"
    input_reflect_pad: int = 0


JOHNSON2016 = TransformerConfig(
    name="johnson2016",
    source="Johnson et al. 2016 sec. 3.1 and supplementary Table 1; tanh scale from Johnson's fast-neural-style code",
    norm="batch",  # supplementary: every conv "immediately followed by spatial batch normalization and a ReLU"
    upsample="transpose",  # "convolutions with stride 1/2" (fractionally strided = transposed)
    padding="zero",  # activation sizes in Table 1 stay 256 -> 128 -> 64 -> 256: "same" zero padding assumed
    output="tanh",  # "a scaled tanh to ensure that the output image has pixels in the range [0, 255]"
    # Johnson's code: input is 0..255 minus the ImageNet mean, output 150 * tanh in the same
    # mean-subtracted units (so 0..255 after adding the mean back). The paper gives no constant;
    # 150 is the code's `-tanh_constant` default. Uncertain for the 2016 paper models.
    tanh_scale=150.0,
    out_offset=IMAGENET_MEAN_255,
    in_scale=255.0,
    in_mean=IMAGENET_MEAN_255,
    final_norm=False,  # "except for the output layer, which instead uses a scaled tanh"
)


HUST_NET = TransformerConfig(
    name="hust",
    source="000 HUST report sec. 2.2; code khanhnn20042002/cv20222 fast-style-transfer.ipynb (ImageTransformNet)",
    norm="batch",  # notebook ConvBlock / ResidualBlock: tf.keras.layers.BatchNormalization()
    upsample="transpose",  # notebook ConvBlock(upsample=True): Conv2DTranspose(k3, strides 2, "same")
    padding="zero",  # notebook: padding="same" (zeros)
    output="tanh",  # notebook OutputBlock: (tanh(x) + 1) * 255 / 2, i.e. 127.5 + 127.5 * tanh
    tanh_scale=127.5,
    out_offset=(127.5, 127.5, 127.5),
    in_scale=1.0,  # notebook train_step: normalize(content_images) = img / 255 before the network
    in_mean=(0.0, 0.0, 0.0),
    conv_bias=False,  # notebook: every Conv2D / Conv2DTranspose has use_bias=False
    final_norm=True,  # notebook OutputBlock: conv -> BatchNormalization -> scaled tanh
    norm_eps=1e-3,  # Keras BatchNormalization default epsilon
    norm_momentum=0.01,  # Keras BatchNormalization default momentum 0.99
    stride2_padding="tf_same",  # notebook: Conv2D / Conv2DTranspose(strides=2, padding="same") in TensorFlow
    # notebook train_step calls the model as transformer(content_images), without training=True:
    # TF2 Keras then runs BatchNormalization in inference mode (moving mean 0, variance 1, not updated)
    bn_inference=True,
)
# Note: the models saved in that repository (style/*/saved_models, a later version) use
# tensorflow-addons InstanceNormalization instead; `--norm instance` selects that.


PYTORCH_EXAMPLES = TransformerConfig(
    name="pytorch-examples",
    source="pytorch/examples fast_neural_style/neural_style/transformer_net.py (TransformerNet)",
    norm="instance",  # InstanceNorm2d(affine=True), no running statistics
    upsample="nearest",  # UpsampleConvLayer: nn.Upsample(nearest, x2), reflection pad, conv stride 1
    padding="reflect",  # ConvLayer: ReflectionPad2d(kernel_size // 2)
    output="linear",  # deconv3 output returned as is (0..255 units, unbounded)
    tanh_scale=0.0,
    out_offset=(0.0, 0.0, 0.0),
    in_scale=255.0,  # stylize: ToTensor() then x.mul(255)
    in_mean=(0.0, 0.0, 0.0),
)


JOHNSON_MEAN_BGR = tuple(reversed(IMAGENET_MEAN_255))  # vgg_mean = {103.939, 116.779, 123.68}


JOHNSON2016_CODE = TransformerConfig(
    name="johnson2016-code",
    source="jcjohnson/fast-neural-style train.lua and fast_neural_style/models.lua (defaults)",
    norm="instance",  # -use_instance_norm 1 (InstanceNormalization.lua: eps 1e-5, batch statistics always)
    upsample="transpose",  # u64, u32: SpatialFullConvolution(3, 3, 2, 2, 1, 1, 1, 1)
    # -padding_type reflect-start: the c9 convs keep their zero padding (models.lua tests the global
    # `padding_type`, which is nil), d64/d128 pad 1 with zeros
    padding="zero",
    output="tanh",  # nn.Tanh, nn.MulConstant(-tanh_constant 150)
    tanh_scale=150.0,
    out_offset=JOHNSON_MEAN_BGR,  # output in preprocessed units: BGR 0..255 minus the mean
    in_scale=255.0,
    in_mean=JOHNSON_MEAN_BGR,  # preprocess.vgg: RGB -> BGR, * 255, minus vgg_mean
    final_norm=False,  # c9s1-3 is the last layer: no norm, no ReLU
    channel_order="bgr",
    residual_padding="valid",  # build_conv_block with p = 0, ShaveImage(2) on the identity
    input_reflect_pad=40,  # train.lua: SpatialReflectionPadding(pw, pw, ph, ph) inserted at the start
)


VARIANTS: dict[str, TransformerConfig] = {
    c.name: c for c in (JOHNSON2016, HUST_NET, PYTORCH_EXAMPLES, JOHNSON2016_CODE)
}


def get_variant(name: str, norm: str | None = None) -> TransformerConfig:
    """A named variant, optionally with another norm ("batch" | "instance")."""
    if name not in VARIANTS:
        raise unknown("network variant", name, VARIANTS)
    cfg = VARIANTS[name]
    if norm is not None and norm != cfg.norm:
        if norm not in ("batch", "instance"):
            raise unknown("norm", norm, ("batch", "instance"))
        cfg = dataclasses.replace(cfg, norm=norm)
    return cfg
