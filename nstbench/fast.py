"""Fast style transfer (Johnson et al. 2016): presets, training a transformer, stylising with it.

`train_transformer` trains one network for one style on a folder of images; `stylize_images`
applies a trained network (an nstbench checkpoint or a pytorch/examples state dict).
`train_command` / `apply_command` are the `nstbench train` / `nstbench apply` handlers.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import torch

from .assets import resolve_dataset, resolve_image, sha256_of
from .backbones import Backbone
from .errors import NstbenchError, unknown
from .images import Resize, load_image, save_image
from .losses import tv_loss
from .perceptual import GATYS_STYLE_LAYERS, JOHNSON_STYLE_LAYERS, FeatureLoss, LossSpec
from .records import ensure_writable_dir, provenance, to_jsonable, write_csv, write_json
from .stylize import resolve_device
from .transformer import CHECKPOINT_KIND, TransformerConfig, build_transformer, get_variant, load_state, \
    load_transformer, read_checkpoint
from .weights import load_backbone, weights_label

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
        style_layers=tuple((n, 1.0) for n in JOHNSON_STYLE_LAYERS),  # sec. 4.1: relu1_2, relu2_2, relu3_3, relu4_3
        content_mode="mean",  # eq. 2: 1/(C H W) ||phi(y_hat) - phi(y)||^2
        gram_norm="chw",  # eq. 3: G = psi psi^T / (C H W)
        style_mode="frobenius",  # eq. 4: squared Frobenius norm of G(y_hat) - G(y_s)
        # The paper gives no lambda_c / lambda_s; 1 and 5 are the defaults of Johnson's later code
        # (content_weights 1.0, style_weights 5.0). Uncertain for the paper's own models.
        alpha=1.0,
        beta=5.0,
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

FAST_PRESETS: dict[str, FastPreset] = {p.name: p for p in (HUST, JOHNSON2016, PYTORCH_EXAMPLES)}

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
        all_files = sorted(p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith("."))
        files = [p for p in all_files if p.suffix.lower() in IMAGE_EXTENSIONS]
        self.other_files = len(all_files) - len(files)
        self.total_found = len(files)
        if max_images is not None:
            files = files[:max_images]
        self.files = files
        if len(files) < batch:
            raise NstbenchError(f"data folder {self.root} has {len(files)} usable image file(s) "
                                f"(.jpg/.jpeg/.png); a batch needs {batch}. {COCO_HELP}")
        self.batches_per_epoch = len(files) // batch
        rel = "\n".join(str(p.relative_to(self.root)) for p in files)
        self.list_sha256 = hashlib.sha256(rel.encode()).hexdigest()
        self.unreadable: dict[str, str] = {}
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_ok = len(files) * 3 * size * size * 4 <= self.CACHE_BYTES
        log(f"data: {len(files)} images under {self.root}"
            + (f" (first {max_images} of {self.total_found})" if max_images is not None and self.total_found > len(files) else "")
            + (f"; skipped {self.other_files} non-image file(s)" if self.other_files else "")
            + f"; {self.batches_per_epoch} batches of {batch} per epoch")

    def describe(self) -> dict:
        return {"root": str(self.root), "images": len(self.files), "found": self.total_found,
                "non_image_files_skipped": self.other_files, "unreadable_skipped": sorted(self.unreadable),
                "list_sha256": self.list_sha256, "size": self.size, "resize": self.resize,
                "shuffle": self.shuffle, "batches_per_epoch": self.batches_per_epoch}

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


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
            old, new = ckpt.get("fingerprint") or {}, fingerprint
            diff = [k for k in new if not _jsonable_eq(old.get(k), new.get(k))]
            raise NstbenchError(f"cannot resume {ckpt_path}: the run differs in {', '.join(diff)} "
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
    if out.suffix.lower() in (".png", ".jpg", ".jpeg"):
        if len(contents) > 1:
            raise NstbenchError(f"--out {out} is one file but {len(contents)} content images were given; "
                                "pass a folder")
        ensure_writable_dir(out.parent if str(out.parent) else Path("."))
        return [out]
    ensure_writable_dir(out)
    names = [Path(str(c)).stem for c in contents]
    dup = {n for n in names if names.count(n) > 1}
    return [out / (f"{n}_{i}.png" if n in dup else f"{n}.png") for i, n in enumerate(names)]


@torch.inference_mode()
def stylize_images(checkpoint: str | os.PathLike, contents: list[str], out: str | os.PathLike, *,
                   size: int | None = None, device: str = "cpu") -> list[dict]:
    """Apply a trained network to each content image (name or path).

    out: an image path (one content) or a folder (out/<content stem>.png). size: long side of the
    content in pixels (default: as loaded). The network's output is clamped to [0, 255] and rounded
    when saved. Returns one record per image: content, output, size_hw, seconds.
    """
    dev = resolve_device(device)
    net, info = load_transformer(checkpoint)
    net.to(dev)
    paths = _output_paths([str(c) for c in contents], Path(out))
    resize = Resize("long", size) if size else Resize()
    recs = []
    for c, path in zip(contents, paths):
        x = load_image(c, resize).to(dev)
        t = time.perf_counter()
        # Sides that are not multiples of 4 come out rounded up (two stride-2 convs, two x2
        # upsamplings); the extra bottom/right rows are dropped, the rest is the network's output.
        y = net.stylize_unit(x)[..., :x.shape[-2], :x.shape[-1]]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t
        save_image(y.cpu(), path)
        recs.append({"content": str(c), "output": str(path), "size_hw": list(y.shape[-2:]), "seconds": seconds,
                     "network": info.get("network", {}).get("name"), "format": info["format"]})
    return recs


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


# ---------------------------------------------------------------------------------------------
# CLI handlers
# ---------------------------------------------------------------------------------------------

def train_command(args) -> None:
    preset = get_fast_preset(args.preset)
    profile = getattr(args, "profile", None) or "paper"
    if profile not in PROFILES:
        raise unknown("profile", profile, PROFILES)
    prof = dict(PROFILES[profile])
    profile_data = prof.pop("data", None)
    data = args.data or profile_data
    if data is None:
        raise NstbenchError(f"--data is required for the {preset.name} preset with the {profile} profile. {COCO_HELP}")
    if args.steps is not None or args.epochs is not None:
        prof.pop("steps", None)  # an explicit length wins over the profile's
    preset = override(preset, **prof)
    preset = override(preset, steps=args.steps, epochs=args.epochs, batch=args.batch, size=args.size,
                      content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
                      network=args.network, norm=args.norm, checkpoint_every=args.checkpoint_every)
    network_config(preset)  # an unknown --network or --norm fails before any work
    rec = train_transformer(preset, args.style, data, args.out, weights=args.weights, seed=args.seed,
                            device=args.device, resume=args.resume, progress_every=args.print_every)
    w = rec["weights"]
    first, last = rec["first"] or {}, rec["last"] or {}
    print(f"wrote {args.out}/transformer.pt, checkpoint.pt, loss.csv, run.json ({rec['steps_done']} steps, "
          f"{rec['seconds']:.1f}s, loss {first.get('total', float('nan')):.4g} -> {last.get('total', float('nan')):.4g}, "
          f"weights: {weights_label(w)}{'' if w.get('imagenet') else ' (not ImageNet)'})")


def apply_command(args) -> None:
    recs = stylize_images(args.checkpoint, args.content, args.out, size=args.size, device=args.device)
    for r in recs:
        h, w = r["size_hw"]
        print(f"wrote {r['output']} ({w}x{h}, {r['seconds'] * 1000:.0f} ms, {r['format']} {r['network']} network)")
