"""What a preset is made of, as frozen data: how images are resized (Resize) and which pixel
space they are optimised in (Space), what the loss measures (LossSpec, its normalisation modes, the
sources' style layers), how the optimiser runs (OptimizerSpec, Feed), and the presets made of
them (GatysPreset, FastPreset).

Torch-free (no torch or numpy import): sources.py declares every source's presets from these, and
`nstbench presets` and the commands' --help list them without loading torch. The code that acts on
them lives above: images.py (resizing), losses.py and perceptual.py (the loss), gatys.py (the
optimiser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Resample = Literal["bilinear", "bicubic", "lanczos", "nearest", "bilinear_tf"]


@dataclass(frozen=True)
class Resize:
    """How an image is resized before use.

    mode:
      "long"  - scale so the long side is `size` (output dims rounded, as the Keras codes do);
      "short" - torchvision `Resize(int)`: the short side becomes `size`, the long side
                `int(size * long / short)` (truncated, as torchvision computes it);
      "short_capped" - the UPES appendix's load_image(max_size=size): n = size if the long side
                exceeds it, else the long side; then torchvision Resize(n) sets the *short* side to n
                (so an image already within `size` is upscaled: a quirk of that code, kept);
      "exact" - to `size` = (H, W);
      "none"  - keep the image as it is.
    only_shrink: leave images already within `size` untouched ("long" mode only).
    size_rounding: "round" (Keras codes: round(w * scale)) or "floor" (HUST: tf.cast to int32).
    """

    mode: Literal["long", "short", "short_capped", "exact", "none"] = "none"
    size: int | tuple[int, int] | None = None
    resample: Resample = "bilinear"
    only_shrink: bool = False
    size_rounding: Literal["round", "floor"] = "round"

    def output_size(self, w: int, h: int) -> tuple[int, int]:
        """(W, H) after resizing an image of (w, h)."""
        if self.mode == "none":
            return w, h
        if self.mode == "exact":
            H, W = self.size  # type: ignore[misc]
            return int(W), int(H)
        n = int(self.size)  # type: ignore[arg-type]
        if self.mode == "long":
            if self.only_shrink and max(w, h) <= n:
                return w, h
            scale = n / max(w, h)
            r = round if self.size_rounding == "round" else int
            return max(1, r(w * scale)), max(1, r(h * scale))
        if self.mode == "short_capped":
            n = n if max(w, h) > n else max(w, h)
        if self.mode in ("short", "short_capped"):
            if w <= h:
                return n, int(n * h / w)
            return int(n * w / h), n
        raise ValueError(f"unknown resize mode {self.mode!r}")

    def sets(self) -> str:
        """Which side `size` sets, in words, for help texts and messages (the one place that says
        it: the presets differ, and `--size` is a long side for some and a short side for others)."""
        if self.mode == "long":
            return "the long side" + (" (never enlarged)" if self.only_shrink else "")
        if self.mode == "short":
            return "the short side"
        if self.mode == "short_capped":
            return "the short side, at most the image's long side"
        return "nothing (fixed size)" if self.mode == "exact" else "nothing (the image's own size)"


Space = Literal["unit", "imagenet", "caffe", "gatys", "hed"]
# unit:     RGB in [0, 1]; the network normalises with ImageNet mean/std (PyTorch tutorial, HUST).
# imagenet: the pixels *are* ImageNet-normalised RGB (torchvision Normalize); UPES optimises here.
# caffe:    BGR, 0..255, ImageNet mean subtracted (Keras `preprocess_input` mode "caffe"; IIT Bombay).
# gatys:    BGR, 0..255, Gatys' mean subtracted (the input of his normalised VGG19, vgg_conv.pth).
# hed:      BGR, 0..255, HED's mean subtracted (the input of the HED VGG16 trunk, the stand-in).
# The last four are also the input conventions of the backbone weights (Backbone.input_space).


ContentMode = Literal["half_sum", "sum", "mean"]


GramNorm = Literal["none", "hw", "chw"]


StyleMode = Literal["gatys", "frobenius", "mean", "upes"]


TVMode = Literal["l1_sum", "l1_mean", "squared_sum", "squared_half_interior"]


Reduce = Literal["sum", "mean"]


CONTENT_MODES = ("half_sum", "sum", "mean")


GRAM_NORMS = ("none", "hw", "chw")


STYLE_MODES = ("gatys", "frobenius", "mean", "upes")


TV_MODES = ("l1_sum", "l1_mean", "squared_sum", "squared_half_interior")


# The sources' standard style layers (post-ReLU VGG names): Gatys et al.'s conv1_1 .. conv5_1 (a
# Keras blockN_conv1 output is post-ReLU; the PyTorch codes tap after in-place ReLUs) and Johnson
# et al.'s relu1_2, relu2_2, relu3_3, relu4_3 (VGG16).
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


JOHNSON_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass(frozen=True)
class LossSpec:
    """What is measured: layers with weights, normalisation modes (see losses.py), and the mix
    total = alpha * content + beta * style + gamma * tv."""

    content_layers: tuple[tuple[str, float], ...]
    style_layers: tuple[tuple[str, float], ...]
    content_mode: ContentMode
    gram_norm: GramNorm
    style_mode: StyleMode
    style_reduce: Reduce = "sum"
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 0.0
    tv_mode: TVMode = "l1_sum"


@dataclass(frozen=True)
class OptimizerSpec:
    """adam: torch.optim.Adam. adam_tf: TensorFlow/Keras Adam, whose epsilon is added outside the
    bias correction (x -= lr_t * m / (sqrt(v) + eps), lr_t = lr sqrt(1-b2^t) / (1-b1^t)); with a
    large eps such as the Keras codes' 0.1 the two differ a lot. lbfgs: torch.optim.LBFGS, one
    history row per loss evaluation.

    lbfgs_loop says how L-BFGS is driven (`steps` counts loss evaluations in both):
      "single" - one optimizer.step(closure) with max_iter = max_eval = steps and zero tolerances:
                 exactly `steps` evaluations (steps - 1 updates);
      "while"  - `while evaluations <= steps: optimizer.step(closure)` with torch's LBFGS defaults
                 (max_iter 20, max_eval 25, tolerance_grad 1e-7, tolerance_change 1e-9), the loop of
                 the PyTorch tutorial and of Gatys' official code: each call evaluates up to 20 times
                 and the state (history, step size) carries over, so steps=300 runs 320 evaluations
                 and 320 updates.
    """

    name: Literal["adam", "adam_tf", "lbfgs"] = "adam"
    lr: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lbfgs_loop: Literal["single", "while"] = "single"

    def evaluations(self, steps: int) -> int:
        """The loss evaluations a run of `steps` makes (fewer if L-BFGS's tolerances end it early):
        `steps`, except in the sources' while loop, where each optimizer.step(closure) evaluates
        LBFGS_MAX_ITER times until more than `steps` were made (nyu's 300 steps: 320; 30: 40)."""
        if self.name == "lbfgs" and self.lbfgs_loop == "while":
            return (steps // LBFGS_MAX_ITER + 1) * LBFGS_MAX_ITER
        return steps


LBFGS_MAX_ITER = 20  # torch.optim.LBFGS's default max_iter: evaluations per optimizer.step(closure)


# How make_gatys_loss hands the images to the backbone:
#   "network"   - every source but one: the optimised pixels and the target images alike, converted
#                 to the weights' input convention (to_network);
#   "hust_code" - the HUST notebook's quirk, kept (khanhnn20042002/cv20222@265a671 style_transfer.ipynb):
#                 the optimised image goes into VGG19 as it is, RGB in [0, 1] (In[20] makes it
#                 uint8 / 255; train_step, In[32], calls the extractors on it directly), while the
#                 content and style targets go through its preprocess() (In[10], In[11], In[18]):
#                 vgg19.preprocess_input on the *uint8* image, then / 255. preprocess_input flips RGB to
#                 BGR and adds the mean cast to the image's dtype: -103.939 etc. cast to uint8 is 0 on
#                 the GPU the notebook ran on (Colab T4; CUDA saturates, tensorflow/tensorflow#59702;
#                 a CPU would wrap to 153, 140, 133), so the targets are BGR in [0, 1], no mean
#                 subtracted. Neither matches the input convention of the Keras weights; unit space only.
Feed = Literal["network", "hust_code"]


FEEDS = ("network", "hust_code")


@dataclass(frozen=True)
class GatysPreset:
    name: str
    source: str
    backbone: str
    # The ImageNet weight family the source used (weights.py): "torchvision" (torchvision's
    # IMAGENET1K_V1), "keras" (Keras applications' HDF5 files, converted Caffe weights), "caffe"
    # (the Oxford Caffe VGG models as converted by jcjohnson) or "gatys" (Gatys' normalised VGG19,
    # vgg_conv.pth). `--weights imagenet` loads this family; each expects its own input convention.
    weights: str
    space: Space  # what the optimised pixels are (images.py): fixes the meaning of lr and clamping
    content_resize: Resize
    style_resize: Resize | None  # None: resized to exactly the content's (H, W)
    loss: LossSpec
    optimizer: OptimizerSpec
    steps: int
    init: str = "content"
    clamp: bool = False
    keep_best: bool = False
    keep_best_as: str = "measured"  # which image keep_best returns (gatys.optimize_image)
    pooling: str = "max"
    print_every: int = 0
    feed: Feed = "network"  # how the images reach the backbone (gatys.Feed); "hust_code" is one source's quirk


@dataclass(frozen=True)
class FastPreset:
    """How one source trains its transformer. total loss = alpha * content + beta * style +
    gamma * tv (the LossSpec's alpha/beta/gamma are lambda_c, lambda_s, lambda_tv); content and
    style are averaged over the batch, tv averaged or summed (tv_batch) as the source does.
    TV is measured on the output in 0..255 pixel units (both sources' output units)."""

    name: str
    source: str
    network: str  # transformer variant (transformer.VARIANTS)
    backbone: str
    weights: str  # the source's ImageNet weight family (see GatysPreset.weights)
    loss: LossSpec
    tv_batch: Literal["mean", "sum"] = "mean"
    lr: float = 1e-3
    batch: int = 4
    epochs: int = 2
    steps: int | None = None  # None: `epochs` passes over the data (incomplete last batch dropped)
    size: int = 256  # training images are size x size
    data_resize: Literal["exact", "center_crop"] = "exact"  # resize to size x size, or short side + centre crop
    shuffle: bool = True  # False: sorted file order every epoch
    style_size: int | None = None  # long side of the style image; None: as it is
    max_images: int | None = None  # only the first N files (sorted); profiles use it
    norm: str | None = None  # None: the variant's norm; "batch" | "instance" overrides it
    # The FAST_HUST notebook computes the content targets from the /255-normalised batch but feeds it to
    # an extractor that expects 0..255, so its content targets are features of a nearly black image.
    # True reproduces that (content features of x / 255); False uses the real content image.
    content_target_quirk: bool = False
    checkpoint_every: int = 1000
