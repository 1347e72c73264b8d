"""Fast style transfer (Johnson et al. 2016): presets, training a transformer, stylising with it.

`train_transformer` trains one network for one style on a folder of images; `stylize_images`
applies a trained network (an nstbench checkpoint or a pytorch/examples state dict).
The `nstbench train` / `nstbench apply` handlers are in cli.py.

Training data: any folder of JPEG/PNG images (searched recursively). The papers and reports use
COCO train2014 (82,783 images, about 13 GB): get train2014.zip from https://cocodataset.org/#download
(http://images.cocodataset.org/zips/train2014.zip), unzip it and pass `--data .../train2014`.
nstbench never downloads it. The `smoke` and `cpu` profiles use the 100 COCO images of the asset
folder (`coco100`, see ../shared/assets/SOURCES.md) instead.

Output folder of a training run:
  checkpoint.pt  the latest state (network, optimizer, step, RNG), for `--resume`; rewritten
                 every `checkpoint_every` steps and at the end
  transformer.pt the final network with its metadata (no optimizer state), for `nstbench apply`
  loss.csv       one row per step: step, epoch, images, total, content, style, tv, seconds
                 (content/style/tv unweighted and reduced over the batch as in the total)
  run.json       every setting, the backbone weights used, the data, timings, provenance
Both .pt files hold kind="nstbench-transformer", the network variant, the preset, the backbone
weights record, the data description, the style image (path, sha256) and provenance.

Resuming: the data order depends only on (seed, step), the network and Adam state are restored
from the checkpoint, so a resumed run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import torch

from .assets import resolve_dataset, resolve_image, sha256_of
from .backbones import Backbone
from .device import resolve_device
from .errors import NstbenchError, unknown
from .images import MIN_SIDE, Resize, image_format, load_image, probe_image, save_image, save_truncated_255
from .losses import tv_loss
from .perceptual import GATYS_STYLE_LAYERS, JOHNSON_STYLE_LAYERS, FeatureLoss, LossSpec
from .records import atomic_write, ensure_writable_dir, provenance, to_jsonable, write_csv, write_json
from .transformer import CHECKPOINT_KIND, TransformerConfig, build_transformer, get_variant, load_state, \
    load_transformer, read_checkpoint
from .weights import load_backbone

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
LOSS_COLUMNS = ["step", "epoch", "images", "total", "content", "style", "tv", "seconds"]
COCO_HELP = ("COCO train2014 (82,783 images, about 13 GB) is not downloaded by nstbench: get "
             "http://images.cocodataset.org/zips/train2014.zip (see https://cocodataset.org/#download), unzip it "
             "and pass --data .../train2014, or use --data coco100 (100 images from the asset folder)")


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
    weights: str  # the source's ImageNet weight family (see presets.GatysPreset.weights)
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
    # The HUST notebook computes the content targets from the /255-normalised batch but feeds it to
    # an extractor that expects 0..255, so its content targets are features of a nearly black image.
    # True reproduces that (content features of x / 255); False uses the real content image.
    content_target_quirk: bool = False
    checkpoint_every: int = 1000


HUST = FastPreset(
    name="hust",
    source="000 HUST report sec. 3.2; code khanhnn20042002/cv20222 fast-style-transfer.ipynb",
    network="hust",
    backbone="vgg19",  # notebook: tf.keras.applications.VGG19(weights="imagenet")
    weights="keras",  # Keras applications' ImageNet VGG19 (the Caffe weights, BGR 0..255 input)
    loss=LossSpec(
        content_layers=(("relu4_2", 1.0),),  # CONTENT_LAYERS = ['block4_conv2'] (Keras conv output is post-ReLU)
        style_layers=tuple((n, 0.2) for n in GATYS_STYLE_LAYERS),  # block1..5_conv1; style_loss divides by 5 layers
        content_mode="mean",  # 2 * tf.nn.l2_loss(F - P) / num_elements = mean (F - P)^2
        gram_norm="chw",  # gram_matrix: einsum('bijc,bijd->bcd') / (H * W * C)
        style_mode="mean",  # 2 * tf.nn.l2_loss(G - A) / num_elements = mean (G - A)^2
        alpha=2.0,  # CONTENT_WEIGHT = 2
        beta=40.0,  # STYLE_WEIGHT = 40
        gamma=200.0,  # TOTAL_VARIATION_WEIGHT = 200
        tv_mode="l1_mean",  # tf.image.total_variation(img) / H / W (L1, summed over channels)
    ),
    tv_batch="sum",  # tf.reduce_sum over the batch for TV, while content and style are batch means
    lr=1e-3,  # LEARNING_RATE = 1e-3 (tf.keras Adam; its epsilon 1e-7 vs torch's 1e-8 is ignored here)
    batch=8,  # BATCH_SIZE = 8
    epochs=2,  # EPOCHS = 2
    size=256,  # get_image(path, (256, 256, 3)): skimage resize to 256 x 256, no crop
    data_resize="exact",
    shuffle=False,  # glob order, no shuffling (nstbench: sorted order)
    style_size=None,  # get_image(STYLE_PATH): the style image at its own size
    checkpoint_every=1000,  # SAVE_PERIOD = 1000
)

JOHNSON2016 = FastPreset(
    name="johnson2016",
    source="Johnson et al. 2016 sec. 3 and 4.1; loss weights from Johnson's fast-neural-style train.lua defaults",
    network="johnson2016",
    backbone="vgg16",  # sec. 3: "16-layer VGG network pretrained on ImageNet"
    weights="caffe",  # Johnson's code trains against the Caffe VGG16 (models/vgg16.t7 from the Caffe model zoo)
    loss=LossSpec(
        content_layers=(("relu2_2", 1.0),),  # sec. 4.1: feature reconstruction loss at relu2_2
        # sec. 4.1: relu1_2, relu2_2, relu3_3, relu4_3. The paper gives no lambda_s; the layer weights
        # 5 / C_l^2 are its code's style_weights 5.0 restated for the paper's loss: the code takes the
        # mean of (G - A)^2 over the C^2 entries (johnson2016-code), the paper's eq. 4 their sum
        style_layers=tuple((n, 5.0 / c**2) for n, c in zip(JOHNSON_STYLE_LAYERS, (64, 128, 256, 512))),
        content_mode="mean",  # eq. 2: 1/(C H W) ||phi(y_hat) - phi(y)||^2
        gram_norm="chw",  # eq. 3: G = psi psi^T / (C H W)
        style_mode="frobenius",  # eq. 4: squared Frobenius norm of G(y_hat) - G(y_s)
        alpha=1.0,  # the paper gives no lambda_c: the code's content_weights 1.0
        beta=1.0,  # lambda_s sits in the layer weights above
        gamma=1e-6,  # sec. 4.1: TV strength "between 1e-6 and 1e-4", cross-validated per style; 1e-6 = code default
        tv_mode="squared_sum",  # Johnson's TV regulariser: squared neighbour differences
    ),
    tv_batch="mean",
    lr=1e-3,  # sec. 4.1: Adam, learning rate 1e-3
    batch=4,  # sec. 4.1: "batch size of 4"
    epochs=2,
    steps=40000,  # sec. 4.1: "40,000 iterations, giving roughly two epochs over the training data"
    size=256,  # sec. 4.1: "resize each of the 80k training images to 256 x 256"
    data_resize="exact",
    shuffle=True,
    style_size=256,  # not in the paper; Johnson's code default style_image_size 256 (uncertain)
    checkpoint_every=1000,
)

PYTORCH_EXAMPLES = FastPreset(
    name="pytorch-examples",
    source="pytorch/examples fast_neural_style/neural_style/neural_style.py (train defaults)",
    network="pytorch-examples",
    backbone="vgg16",  # vgg.Vgg16: relu1_2, relu2_2, relu3_3, relu4_3
    weights="torchvision",  # vgg.py: models.vgg16(pretrained=True)
    loss=LossSpec(
        content_layers=(("relu2_2", 1.0),),  # mse_loss(features_y.relu2_2, features_x.relu2_2)
        style_layers=tuple((n, 1.0) for n in JOHNSON_STYLE_LAYERS),  # summed over the four layers
        content_mode="mean",  # torch.nn.MSELoss()
        gram_norm="chw",  # utils.gram_matrix: bmm / (ch * h * w)
        style_mode="mean",  # MSELoss(gram_y, gram_style)
        alpha=1e5,  # --content-weight 1e5
        beta=1e10,  # --style-weight 1e10
        gamma=0.0,  # no TV term
    ),
    lr=1e-3,  # --lr 1e-3
    batch=4,  # --batch-size 4
    epochs=2,  # --epochs 2
    size=256,  # --image-size 256
    data_resize="center_crop",  # transforms.Resize(256) then CenterCrop(256)
    shuffle=False,  # DataLoader(ImageFolder) without shuffle: sorted order (its last partial batch is kept; dropped here)
    style_size=None,  # --style-size None: the style image as it is
    checkpoint_every=2000,  # --checkpoint-interval 2000
)

JOHNSON2016_CODE = FastPreset(
    name="johnson2016-code",
    source="jcjohnson/fast-neural-style train.lua defaults and fast_neural_style/*.lua",
    network="johnson2016-code",  # -arch c9s1-32,d64,d128,R128 x5,u64,u32,c9s1-3, instance norm, reflect-start
    backbone="vgg16",  # -loss_network models/vgg16.t7
    weights="caffe",  # vgg16.t7: the Caffe VGG16 loaded with loadcaffe (BGR 0..255 minus the mean)
    loss=LossSpec(
        # -content_layers 16 of the loadcaffe VGG16: relu3_3 (not the paper's relu2_2)
        content_layers=(("relu3_3", 1.0),),  # -content_weights 1.0
        # -style_layers 4,9,16,23 = relu1_2, relu2_2, relu3_3, relu4_3; -style_weights 5.0 for each
        style_layers=tuple((n, 1.0) for n in JOHNSON_STYLE_LAYERS),
        content_mode="mean",  # ContentLoss: nn.MSECriterion (mean over N C H W)
        gram_norm="chw",  # GramMatrix: `normalize or true` is always true, output:div(C * H * W)
        style_mode="mean",  # StyleLoss: nn.MSECriterion(G, A), the target expanded over the batch
        alpha=1.0,
        beta=5.0,  # the 5.0 of every style layer
        gamma=1e-6,  # -tv_strength 1e-6
        tv_mode="squared_half_interior",  # TotalVariation.lua's gradient (see losses.py)
    ),
    tv_batch="sum",  # TotalVariation adds each image's gradient, while the MSE criteria average over N
    lr=1e-3,  # -learning_rate 1e-3 (optim.adam, its default betas and epsilon)
    batch=4,  # -batch_size 4
    epochs=2,
    steps=40000,  # -num_iterations 40000
    size=256,  # -h5_file data/ms-coco-256.h5: COCO resized to 256 x 256
    data_resize="exact",
    shuffle=True,
    style_size=256,  # -style_image_size 256: image.scale(style, 256), the long side
    checkpoint_every=1000,  # -checkpoint_every 1000
)

FAST_PRESETS: dict[str, FastPreset] = {p.name: p for p in (HUST, JOHNSON2016, PYTORCH_EXAMPLES, JOHNSON2016_CODE)}

# Profiles change sizes, step counts and data volume only, never the method (EXPERIMENTS.md).
PROFILES: dict[str, dict] = {
    "smoke": dict(size=32, steps=4, batch=2, max_images=16, style_size=64, checkpoint_every=2, data="coco100"),
    "cpu": dict(size=128, steps=200, data="coco100"),
    "paper": {},
}


def get_fast_preset(name: str) -> FastPreset:
    if name not in FAST_PRESETS:
        raise unknown("training preset", name, FAST_PRESETS)
    return FAST_PRESETS[name]


def override(preset: FastPreset, *, steps=None, epochs=None, batch=None, size=None, content_weight=None,
             style_weight=None, tv_weight=None, network=None, norm=None, max_images=None,
             style_size=None, checkpoint_every=None) -> FastPreset:
    """A copy of the preset with the CLI's overrides. --steps and --epochs exclude each other."""
    if steps is not None and epochs is not None:
        raise NstbenchError("give --steps or --epochs, not both")
    for name, v in (("steps", steps), ("epochs", epochs), ("batch", batch), ("size", size),
                    ("checkpoint-every", checkpoint_every), ("max-images", max_images), ("style-size", style_size)):
        if v is not None and v < 1:
            raise NstbenchError(f"--{name} must be at least 1, got {v}")
    if size is not None and size < 16:
        raise NstbenchError(f"--size must be at least 16 (the network downsamples by 4), got {size}")
    changes: dict = {}
    if steps is not None:
        changes["steps"] = steps
    if epochs is not None:
        changes.update(epochs=epochs, steps=None)
    for k, v in (("batch", batch), ("size", size), ("network", network), ("norm", norm),
                 ("max_images", max_images), ("style_size", style_size), ("checkpoint_every", checkpoint_every)):
        if v is not None:
            changes[k] = v
    loss = {k: v for k, v in (("alpha", content_weight), ("beta", style_weight), ("gamma", tv_weight)) if v is not None}
    if loss:
        changes["loss"] = replace(preset.loss, **loss)
    return replace(preset, **changes)


def network_config(preset: FastPreset) -> TransformerConfig:
    return get_variant(preset.network, preset.norm)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # how JPEG and PNG files begin


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8).startswith(_MAGIC)
    except OSError:
        return False


class ImageFolderData:
    """The training images of a folder (recursive; .jpg/.jpeg/.png, any case), as [B, 3, S, S] unit batches.

    Batch k of a run is a pure function of (seed, k): epoch e = k // batches_per_epoch uses the
    permutation of torch.randperm under seed `seed * 1_000_003 + e` (sorted order when shuffle is
    off). Grayscale, palette and 16-bit images are converted by images.load_image. A file that
    cannot be decoded is skipped: the next file in sorted order takes its place (so the order stays
    deterministic), and it is counted and reported once.
    """

    # Decoded images are kept in memory when they fit in this budget (small data sets, CPU runs).
    CACHE_BYTES = 512 * 2**20

    def __init__(self, root: Path, size: int, batch: int, resize: str = "exact", shuffle: bool = True,
                 seed: int = 0, max_images: int | None = None, log: Callable[[str], None] = print):
        self.root, self.size, self.batch, self.resize, self.shuffle, self.seed = Path(root), size, batch, resize, shuffle, seed
        self.log = log
        if not self.root.is_dir():
            raise NstbenchError(f"data folder not found: {self.root}; {COCO_HELP}")
        self.check_size(size)
        all_files = sorted(p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith("."))
        named = [p for p in all_files if p.suffix.lower() in IMAGE_EXTENSIONS]
        files = [p for p in named if _looks_like_image(p)]  # empty and non-image files are not usable images
        self.other_files = len(all_files) - len(named)
        self.not_images = len(named) - len(files)
        self.total_found = len(files)
        if max_images is not None:
            files = files[:max_images]
        self.files = files
        if len(files) < batch:
            skipped = f" ({self.not_images} empty or non-JPEG/PNG file(s) named as images skipped)" if self.not_images else ""
            raise NstbenchError(f"data folder {self.root} has {len(files)} usable image file(s) "
                                f"(.jpg/.jpeg/.png){skipped}; a batch needs {batch}. {COCO_HELP}")
        self.batches_per_epoch = len(files) // batch
        rel = "\n".join(str(p.relative_to(self.root)) for p in files)
        self.list_sha256 = hashlib.sha256(rel.encode()).hexdigest()
        self.unreadable: dict[str, str] = {}
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_ok = len(files) * 3 * size * size * 4 <= self.CACHE_BYTES
        log(f"data: {len(files)} images under {self.root}"
            + (f" (first {max_images} of {self.total_found})" if max_images is not None and self.total_found > len(files) else "")
            + (f"; skipped {self.other_files} non-image file(s)" if self.other_files else "")
            + (f"; skipped {self.not_images} empty or non-JPEG/PNG file(s) named as images" if self.not_images else "")
            + f"; {self.batches_per_epoch} batches of {batch} per epoch")

    def describe(self) -> dict:
        return {"root": str(self.root), "images": len(self.files), "found": self.total_found,
                "non_image_files_skipped": self.other_files, "not_images_skipped": self.not_images,
                "unreadable_skipped": sorted(self.unreadable),
                "list_sha256": self.list_sha256, "size": self.size, "resize": self.resize,
                "shuffle": self.shuffle, "batches_per_epoch": self.batches_per_epoch}

    @staticmethod
    def check_size(size: int) -> None:
        """The transformers downsample twice by 2 and upsample back: a side that is not a multiple
        of 4 comes out larger than it went in, so its loss against the input cannot be taken."""
        if size < 16 or size % 4:
            raise NstbenchError(f"training size {size} px is not valid: it must be a multiple of 4 and at least 16 "
                                f"(e.g. {max(16, size - size % 4)} or {max(16, size - size % 4 + 4)})")

    def order(self, epoch: int) -> torch.Tensor:
        n = len(self.files)
        if not self.shuffle:
            return torch.arange(n)
        # an arbitrary large prime keeps (seed, epoch) pairs apart
        return torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))

    def _load(self, i: int) -> torch.Tensor:
        if i in self._cache:
            return self._cache[i]
        S = self.size
        for k in range(len(self.files)):  # on failure, the next file in sorted order
            j = (i + k) % len(self.files)
            path = self.files[j]
            if str(path) in self.unreadable:
                continue
            try:
                if self.resize == "exact":
                    x = load_image(path, Resize("exact", (S, S), "bilinear"))
                else:  # torchvision Resize(S) then CenterCrop(S): crop offsets round((H - S) / 2)
                    x = load_image(path, Resize("short", S, "bilinear"))
                    h, w = x.shape[-2:]
                    top, left = int(round((h - S) / 2.0)), int(round((w - S) / 2.0))
                    x = x[..., top:top + S, left:left + S]
            except NstbenchError as e:
                self.unreadable[str(path)] = str(e)
                self.log(f"data: skipping unreadable image ({len(self.unreadable)} so far): {e}")
                continue
            x = x[0].contiguous()
            if self._cache_ok:
                self._cache[i] = x
            return x
        raise NstbenchError(f"no readable image in {self.root}")

    def batch_at(self, step: int) -> tuple[torch.Tensor, int]:
        """(images [B, 3, S, S] in unit space, epoch) for the 0-based step."""
        epoch, pos = divmod(step, self.batches_per_epoch)
        idx = self.order(epoch)[pos * self.batch:(pos + 1) * self.batch].tolist()
        return torch.stack([self._load(i) for i in idx]), epoch


# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------

class PerceptualLoss:
    """Johnson's perceptual loss for a batch of outputs y and inputs x (both unit space).

    The loss network sees the input its weights expect (Backbone.preprocess: ImageNet-normalised
    RGB for torchvision and random weights, BGR 0..255 minus the mean for Keras and Caffe weights).
    The style Grams are computed once here and broadcast over every batch. Note: the Caffe/Keras
    VGGs produce features on another scale than torchvision's VGG, so the same lambdas weigh the
    terms differently unless the preset's own weight family is loaded; see README.
    """

    def __init__(self, backbone: Backbone, style: torch.Tensor, spec: LossSpec, tv_batch: str = "mean",
                 content_target_quirk: bool = False):
        self.backbone, self.spec, self.tv_batch, self.quirk = backbone, spec, tv_batch, content_target_quirk
        self.terms = FeatureLoss(backbone, spec, backbone.preprocess(style))  # style Grams [1, C, C], once

    @property
    def targets(self) -> dict[str, torch.Tensor]:
        """The style Grams, one [1, C, C] per style layer (broadcast over every batch)."""
        return self.terms.style_targets

    def __call__(self, y: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spec, pre = self.spec, self.backbone.preprocess
        p = self.terms.content_targets(pre(x / 255.0 if self.quirk else x))
        lc, ls = self.terms(pre(y), p)
        if spec.gamma != 0.0:
            ltv = tv_loss(y * 255.0, spec.tv_mode)  # 0..255 pixel units
            tv = ltv.sum() if self.tv_batch == "sum" else ltv.mean()
        else:
            tv = torch.zeros((), device=y.device)
        content, style = lc.mean(), ls.mean()
        total = spec.alpha * content + spec.beta * style + spec.gamma * tv
        return {"total": total, "content": content, "style": style, "tv": tv}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def total_steps(preset: FastPreset, batches_per_epoch: int) -> int:
    return preset.steps if preset.steps is not None else preset.epochs * batches_per_epoch


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fingerprint(preset: FastPreset, cfg: TransformerConfig, seed: int, style: dict, data: dict, weights: dict) -> dict:
    """What must not change between a run and its resumption (step counts may: they extend a run)."""
    p = dataclasses.asdict(preset)
    for k in ("steps", "epochs", "checkpoint_every"):
        p.pop(k)
    w = {k: weights.get(k) for k in ("kind", "arch", "seed", "sha256", "sha256_prefix")}
    d = {k: data[k] for k in ("list_sha256", "size", "resize", "shuffle", "images")}
    return {"preset": p, "network": dataclasses.asdict(cfg), "seed": seed, "style_sha256": style["sha256"],
            "data": d, "weights": w}


def _jsonable_eq(a, b) -> bool:
    # checkpoints store lists where the live objects hold tuples; compare through JSON
    return json.dumps(to_jsonable(a), sort_keys=True) == json.dumps(to_jsonable(b), sort_keys=True)


def _differences(old, new, where: str = "") -> list[str]:
    """'field: checkpoint X, now Y' for every leaf that differs between two fingerprints."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in dict.fromkeys(list(old) + list(new))
                for d in _differences(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))]
    if _jsonable_eq(old, new):
        return []
    return [f"{where}: checkpoint {json.dumps(to_jsonable(old))}, now {json.dumps(to_jsonable(new))}"]


def _save_atomic(obj: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


class _StopRequest:
    """First Ctrl-C: finish the current step, write a checkpoint, stop. Second Ctrl-C: abort now."""

    def __init__(self, log):
        self.stop, self.log, self.old = False, log, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        self.log("interrupt: stopping after this step and writing a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


def train_transformer(
    preset: FastPreset,
    style: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weights: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    backbone: Backbone | None = None,
    progress_every: int | None = None,
    progress_seconds: float = 10.0,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[dict], bool | None] | None = None,
) -> dict:
    """Train a transformer for `style` on the images under `data`; write the run into `out`.

    progress_every: a progress line every N steps (0: none; None: every `progress_seconds`).
    backbone: an already loaded loss network (tests share one); otherwise load_backbone(weights).
    on_step(row) is called after every step; returning True stops the run like a Ctrl-C does:
    a checkpoint is written and KeyboardInterrupt is raised. Returns the run record (run.json).
    """
    log = log or (lambda m: print(f"[train {preset.name}] {m}", file=sys.stderr, flush=True))
    out = ensure_writable_dir(Path(out))
    ckpt_path, model_path, csv_path = out / "checkpoint.pt", out / "transformer.pt", out / "loss.csv"
    if resume and not ckpt_path.is_file():
        raise NstbenchError(f"nothing to resume: {ckpt_path} not found")
    if not resume and ckpt_path.exists():
        raise NstbenchError(f"{out} already holds a training run ({ckpt_path.name}); pass --resume to continue it "
                            "or choose another --out")
    dev = resolve_device(device)
    cfg = network_config(preset)

    style_path = resolve_image(style)
    style_img = load_image(style_path, Resize("long", preset.style_size) if preset.style_size else Resize())
    style_rec = {"name": str(style), "path": str(style_path), "sha256": sha256_of(Path(style_path)),
                 "size_hw": list(style_img.shape[-2:])}
    dataset = ImageFolderData(resolve_dataset(data), preset.size, preset.batch, preset.data_resize,
                              preset.shuffle, seed, preset.max_images, log)
    steps = total_steps(preset, dataset.batches_per_epoch)

    if backbone is None:
        backbone = load_backbone(preset.backbone, weights, seed=seed, family=preset.weights)
    elif backbone.arch != preset.backbone:
        raise NstbenchError(f"preset {preset.name} needs {preset.backbone}, got a {backbone.arch} backbone")
    backbone.to(dev)
    loss_fn = PerceptualLoss(backbone, style_img.to(dev), preset.loss, preset.tv_batch, preset.content_target_quirk)

    net = build_transformer(cfg, seed).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=preset.lr)
    fingerprint = _fingerprint(preset, cfg, seed, style_rec, dataset.describe(), backbone.weights)
    start = 0
    if resume:
        ckpt = read_checkpoint(ckpt_path)
        if ckpt.get("kind") != CHECKPOINT_KIND or "optimizer" not in ckpt:
            raise NstbenchError(f"{ckpt_path} is not a resumable nstbench training checkpoint")
        if not _jsonable_eq(ckpt.get("fingerprint"), fingerprint):
            diff = _differences(ckpt.get("fingerprint") or {}, fingerprint)
            raise NstbenchError(f"cannot resume {ckpt_path}: {'; '.join(diff[:4])} "
                                "(preset, network, seed, style, data and weights must match)")
        load_state(net, ckpt["state_dict"], f"checkpoint {ckpt_path}")
        net.to(dev)
        opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start = int(ckpt["step"])
        if start > steps:
            raise NstbenchError(f"{ckpt_path} is at step {start}, beyond the requested {steps} steps")
        log(f"resuming from step {start} of {steps}")
    net.train()

    # loss.csv: on resume keep the rows up to the checkpoint (later ones were never checkpointed)
    rows_kept = []
    if resume and csv_path.is_file():
        with open(csv_path, newline="") as f:
            rows_kept = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
    write_csv(csv_path, rows_kept, LOSS_COLUMNS)
    seconds_before = float(rows_kept[-1]["seconds"]) if rows_kept else 0.0  # the seconds column spans sessions

    record = {
        "command": "train",
        "preset": dataclasses.asdict(preset),
        "network": dataclasses.asdict(cfg),
        "style": style_rec,
        "data": dataset.describe(),
        "seed": seed,
        "steps": steps,
        "weights": backbone.weights,
        "loss_terms": "loss.csv: content, style, tv unweighted (batch-reduced); total = alpha*content + beta*style + gamma*tv",
        "provenance": provenance(dev),  # git and library versions: read once per run
    }

    def checkpoint(done: int, final: bool = False) -> None:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        meta = {
            "kind": CHECKPOINT_KIND, "format": 1, "network": dataclasses.asdict(cfg),
            "preset": dataclasses.asdict(preset), "weights": backbone.weights, "data": dataset.describe(),
            "style": style_rec, "seed": seed, "step": done, "total_steps": steps,
            "epoch": done // dataset.batches_per_epoch, "batch_in_epoch": done % dataset.batches_per_epoch,
            "images_seen": done * preset.batch, "fingerprint": fingerprint, "provenance": record["provenance"],
            "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        meta = json.loads(json.dumps(to_jsonable(meta)))  # plain types only: loadable with weights_only=True
        _save_atomic({**meta, "state_dict": state, "optimizer": opt.state_dict(),
                      "rng": {"torch": torch.get_rng_state()}}, ckpt_path)
        if final:
            _save_atomic({**meta, "state_dict": state}, model_path)

    first = last = None
    t0 = time.perf_counter()
    last_print = t0
    done = start
    status = "ok"
    with _StopRequest(log) as stop, open(csv_path, "a", newline="") as fcsv:
        writer = csv.DictWriter(fcsv, fieldnames=LOSS_COLUMNS, lineterminator="\n")
        for step in range(start, steps):
            x, epoch = dataset.batch_at(step)
            x = x.to(dev)
            opt.zero_grad(set_to_none=True)
            terms = loss_fn(net.stylize_unit(x), x)
            terms["total"].backward()
            vals = {k: v.item() for k, v in terms.items()}  # one host sync per step
            if not all(math.isfinite(v) for v in vals.values()):
                status = "diverged"
                log(f"loss became non-finite at step {step + 1}; the last checkpoint is at step {done}")
                break
            opt.step()
            done = step + 1
            now = time.perf_counter()
            row = {"step": done, "epoch": epoch, "images": done * preset.batch, **vals, "seconds": round(seconds_before + now - t0, 4)}
            writer.writerow(row)
            fcsv.flush()
            first = first or row
            last = row
            if done % preset.checkpoint_every == 0 or done == steps:
                checkpoint(done, final=done == steps)
            session = done - start
            due = (progress_every is None and (now - last_print >= progress_seconds or session == 1)) or \
                (bool(progress_every) and done % progress_every == 0)
            if progress_every != 0 and (due or done == steps):
                rate = session * preset.batch / (now - t0)
                eta = (now - t0) / session * (steps - done)
                log(f"step {done}/{steps} ({100 * done / steps:.0f}%) {rate:.2f} img/s total={vals['total']:.4g} "
                    f"content={vals['content']:.4g} style={vals['style']:.4g} tv={vals['tv']:.4g} "
                    f"elapsed {_fmt_time(now - t0)} ETA {_fmt_time(eta)}")
                last_print = now
            if (on_step is not None and on_step(row)) or stop.stop:
                if done < steps:
                    status = "interrupted"
                    if done % preset.checkpoint_every != 0:
                        checkpoint(done)
                    log(f"stopped at step {done}/{steps}; continue with --resume")
                break
    seconds = time.perf_counter() - t0
    session = done - start
    record.update(status=status, steps_done=done, resumed_from=start if resume else None, seconds=seconds,
                  images_per_second=session * preset.batch / seconds if seconds > 0 and session else None,
                  first=first, last=last, checkpoint=str(ckpt_path),
                  model=str(model_path) if done == steps else None, data=dataset.describe())
    write_json(out / "run.json", record)
    if status == "interrupted":
        raise KeyboardInterrupt
    if status == "diverged":
        raise NstbenchError(f"training diverged (non-finite loss) after step {done}; see {csv_path}")
    return record


# ---------------------------------------------------------------------------------------------
# Stylising
# ---------------------------------------------------------------------------------------------

def _output_paths(contents: list[str], out: Path) -> list[Path]:
    """out is one image file when it has a suffix (any format Pillow writes), else a folder."""
    if out.suffix:
        image_format(out)  # a suffix Pillow cannot write is an error, not a folder name
        if len(contents) > 1:
            raise NstbenchError(f"--out {out} is one file but {len(contents)} content images were given; "
                                "pass a folder")
        if out.is_dir():
            raise NstbenchError(f"--out {out} is a folder; give a file name or a folder without a suffix")
        ensure_writable_dir(out.parent)
        return [out]
    ensure_writable_dir(out)
    names = [Path(str(c)).stem for c in contents]
    dup = {n for n in names if names.count(n) > 1}
    return [out / (f"{n}_{i}.png" if n in dup else f"{n}.png") for i, n in enumerate(names)]


def run_network(net, x: torch.Tensor, examples: bool = False, crop: bool = False) -> torch.Tensor:
    """The network's output for unit images x: unit RGB, or for a pytorch/examples network (examples)
    its raw 0..255 output of ToTensor() * 255, as that project's stylize computes it. Sides that are
    not multiples of 4 come out rounded up (two stride-2 convs, two x2 upsamplings; pytorch/examples
    saves a 452-column image for a 451-column input); `crop` drops the extra bottom/right rows."""
    y = net(x * 255.0) if examples else net.stylize_unit(x)
    return y[..., :x.shape[-2], :x.shape[-1]] if crop else y


def _expand_folders(contents: list) -> list[str]:
    """A folder among the contents stands for its image files (sorted; not recursive)."""
    out: list[str] = []
    for c in contents:
        p = Path(str(c)).expanduser()
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise NstbenchError(f"content folder {p} holds no .jpg/.jpeg/.png images")
            out += found
        else:
            out.append(str(c))
    return out


def _content_resize(content: str, size: int | None, scale: float | None) -> Resize:
    """The resize of one content image, checked from its header (probe_image) before any work."""
    if scale is None:
        resize = Resize("long", size) if size is not None else Resize()
    else:
        w, h = probe_image(content, Resize(), min_side=1)
        resize = Resize("exact", (int(h / scale), int(w / scale)))
    probe_image(content, resize)
    return resize


@torch.inference_mode()
def stylize_images(checkpoint: str | os.PathLike, contents: list[str], out: str | os.PathLike, *,
                   size: int | None = None, scale: float | None = None, device: str = "cpu",
                   crop: bool = False) -> list[dict]:
    """Apply a trained network to each content image (name, path, or a folder of images).

    out: an image path (one content) or a folder (out/<content stem>.png). size: long side of the
    content in pixels (default: as loaded); scale: divide both sides by it instead (pytorch/examples'
    --content-scale: int(w / scale) x int(h / scale)). The output has the network's size (see
    run_network; `crop` cuts it to the content's). Saving clamps to [0, 255]; a pytorch/examples
    checkpoint is quantised as that project's save_image does (numpy astype("uint8") of the 0..255
    output: truncation), nstbench's own round. Returns one record per image: content, output,
    size_hw, seconds.
    """
    dev = resolve_device(device)
    if size is not None and size < MIN_SIDE:
        raise NstbenchError(f"--size must be at least {MIN_SIDE} px, got {size}")
    if size is not None and scale is not None:
        raise NstbenchError("give --size or --content-scale, not both")
    if str(out).strip() == "":
        raise NstbenchError("--out is empty; give an output image file or folder")
    contents = _expand_folders(contents)
    resizes = [_content_resize(c, size, scale) for c in contents]  # every input checked before any output
    net, info = load_transformer(checkpoint)
    net.to(dev)
    paths = _output_paths([str(c) for c in contents], Path(out))
    recs = []
    for c, path, resize in zip(contents, paths, resizes):
        x = load_image(c, resize).to(dev)
        t = time.perf_counter()
        examples = info["format"] == "pytorch-examples"
        # pytorch/examples' own size unless --crop; nstbench's networks are cut to the content's size
        y = run_network(net, x, examples=examples, crop=crop or not examples)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t
        if examples:
            save_truncated_255(y, path)
        else:
            save_image(y.cpu(), path)
        recs.append({"content": str(c), "output": str(path), "size_hw": list(y.shape[-2:]), "seconds": seconds,
                     "network": info.get("network", {}).get("name"), "format": info["format"]})
    return recs


class _UnitNetwork(torch.nn.Module):
    """What `apply` computes, as one module: unit RGB in, unit RGB out (clamped)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.stylize_unit(x).clamp(0, 1)


def export_onnx(checkpoint: str | os.PathLike, path: str | os.PathLike, size: int = 256) -> Path:
    """The network as an ONNX graph: input "image" [N, 3, H, W] unit RGB, output "stylized" the same
    (H, W multiples of 4; other sides come out rounded up, as from the network itself). Needs the
    `onnx` package (pip install 'nstbench[onnx]'); traced at size x size, batch and sides dynamic."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise NstbenchError(f"--export-onnx {path}: the file name must end in .onnx")
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise NstbenchError("--export-onnx needs the onnx package: pip install 'nstbench[onnx]'") from None
    net, _ = load_transformer(checkpoint)
    ensure_writable_dir(path.parent)
    model = _UnitNetwork(net).eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes and legacy export: not the user's
        atomic_write(path, lambda tmp: torch.onnx.export(
            model, (torch.rand(1, 3, size, size),), str(tmp), dynamo=False, input_names=["image"],
            output_names=["stylized"], dynamic_axes={"image": axes, "stylized": axes}))
    return path


@dataclass
class TrainedRun:
    """A network trained by train_and_apply and its output on one content image."""

    image: torch.Tensor  # [1, 3, H, W] in [0, 1]: the content through the network in eval mode
    terms: dict[str, float]  # the training loss terms (total, content, style, tv; unweighted) on that image
    record: dict  # train_transformer's run record
    loss_csv: Path  # per-step training losses (its clock is the training loop's: no checkpoint writes)


def train_and_apply(preset: FastPreset, style: str | os.PathLike, data: str | os.PathLike, out: Path,
                    content: torch.Tensor, style_image: torch.Tensor, *, backbone: Backbone, seed: int = 0,
                    progress_every: int | None = None, log: Callable[[str], None] | None = None) -> TrainedRun:
    """Train one network (train_transformer into `out`), stylise `content` as `nstbench apply` does
    (eval mode, output cropped to the input's size, clamped) and measure the training loss terms
    on it with `style_image` as the style target. The experiments' sweeps run one of these per point."""
    rec = train_transformer(preset, style, data, out, backbone=backbone, seed=seed, device=str(content.device),
                            progress_every=progress_every, log=log)
    net, _ = load_transformer(out / "transformer.pt")
    net.to(content.device)
    h, w = content.shape[-2:]
    with torch.no_grad():
        y = net.stylize_unit(content)[..., :h, :w].clamp(0, 1)  # sides not multiples of 4 come out larger
        terms = PerceptualLoss(backbone, style_image, preset.loss, preset.tv_batch)(y, content)
    return TrainedRun(y, {k: v.item() for k, v in terms.items()}, rec, out / "loss.csv")


def train_and_apply_unit(preset: FastPreset, style: str | os.PathLike, data: str | os.PathLike,
                         content: torch.Tensor, style_image: torch.Tensor, *, backbone: Backbone, seed: int = 0,
                         progress_every: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """train_and_apply in a temporary folder (deleted afterwards: no checkpoint is kept), as plain
    data an experiment's unit (a job under --executor local|slurm) can return: image (CPU), terms,
    record and loss (loss.csv as a DataFrame)."""
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="nstbench-train-") as tmp:
        run = train_and_apply(preset, style, data, Path(tmp) / "run", content, style_image, backbone=backbone,
                              seed=seed, progress_every=progress_every, log=log)
        return {"image": run.image.cpu(), "terms": run.terms, "record": run.record, "loss": pd.read_csv(run.loss_csv)}

