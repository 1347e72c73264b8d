"""E3 (claims C4, C5): content-layer ablation and batch size of the fast network, NYU report 002 section 4.2.

The `johnson2016` fast preset (nstbench.config.sources.FAST_JOHNSON2016: Johnson et al.'s transformer with batch
norm, VGG16 loss network, style relu1_2, relu2_2, relu3_3, relu4_3, Adam lr 1e-3, batch 4, 256 x 256
COCO images) trained on the mosaic style with the content layer set to relu2_2 (the paper's),
relu3_3 or relu4_3 at the preset's batch 4, and at relu2_2 with other batch sizes (the report does
not say which it compared). Every run passes over the same training images the same number of
epochs, so the batch-size runs see the same images and differ in batch size (and hence in the
number of updates) only; the run relu2_2 / batch 4 belongs to both sweeps. Every network starts
from the same seeded initialisation and stylises the cat photo (chelsea) in eval mode, as
`nstbench apply` does.

Measured: colour_artifact_index (metrics: low-passed a*b* distance to the content in CIE Lab, the
"colour lumps" of C4), SSIM / PSNR to the content, the style distance to the style image in a
network no run trained with (VGG19 relu1_1..relu5_1, metrics.style_distance), the training loss
network's style loss on the cat, and the training time: seconds_per_epoch = measured training
seconds (the training loop only: data loading, forward, backward, update; no checkpoint writes)
x images per epoch / images processed.

Training time per batch size (claim C5's time half): one whole training per batch size is one
measurement, which a neighbour on a shared machine can slow for its whole length. After the
trainings, each batch size's step is therefore timed again (timing.time_training) on a fresh
network of its own (the trained networks and their quality metrics are untouched): `timing_repeats`
passes of `timing_images` images per batch size, interleaved (each repeat times every batch size
once), after one untimed warm-up step; seconds per epoch = pass seconds x images per epoch /
timing_images. C5 takes the median of the repeats per batch size and their median absolute
deviation as the noise (claims.rule_c5).

Training data: `coco100` (the asset folder's 100 COCO images) for the smoke and cpu profiles; the
paper profile needs COCO train2014: pass `--data /path/to/train2014` (nstbench never downloads it).

Writes results/e3_content_layer/: table.csv (one row per sweep point and sweep: `sweep` is
content_layer or batch_size; C4 on sweep == 'content_layer'; the batch-size rows also carry the
timed repeats' median, min, max and MAD of seconds per epoch), repeats.csv (one row per batch
size and timed repeat, with the trained network's ssim_content: C5 reads it), curves.csv (training loss per step, thinned to at most ~200 rows per
run), grid_content_layer.png, grid_batch_size.png, curves.png, outputs/<layer>_b<batch>.png,
manifest.json. The training runs (checkpoints) live in the run's temp folder and are deleted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from nstbench.config.claims import timing_spread
from nstbench.config.errors import NstbenchError
from nstbench.config.presets import override_fast
from nstbench.config.sources import FAST_JOHNSON2016
from nstbench.config.specs import Resize
from nstbench.harness.experiment import Experiment, cli, pyplot, thin_curve
from nstbench.harness.registry import Spec, families_of
from nstbench.methods import metrics
from nstbench.methods.timing import time_training
from nstbench.methods.training import TrainOptions, train_and_apply_unit
from nstbench.nets.data import COCO_HELP
from nstbench.nets.images import load_image

NAME = "e3_content_layer"


@dataclass(frozen=True)
class Profile:
    size: int  # training images are size x size px
    steps: int | None  # training steps per run (tests); None: `epochs` passes over the data, every run
    epochs: int
    batch_sizes: tuple[int, ...]  # compared at relu2_2; must include the preset's batch 4
    max_images: int | None  # only the first N training images (sorted); None: all
    eval_size: int  # long side of the cat photo the networks stylise, px
    data: str | None  # training images (dataset name or folder); None: --data is required
    progress_every: int  # progress line every N training steps
    timing_images: int  # images per timed training pass (C5), a multiple of every batch size
    timing_repeats: int  # timed passes per batch size (C5 needs at least claims.TIMING_MIN_REPEATS)


PROFILES = {
    # plumbing only: 8 images at 32 px, one epoch (4, 2 and 1 steps)
    "smoke": Profile(
        size=32,
        steps=None,
        epochs=1,
        batch_sizes=(2, 4, 8),
        max_images=8,
        eval_size=64,
        data="coco100",
        progress_every=0,
        timing_images=8,  # 3 x 3 passes of 8 images at 32 px: about a second
        timing_repeats=3,
    ),
    # 96 COCO images (divisible by every batch size: no image dropped) at 64 px, 4 epochs: 384
    # images per run (192, 96 and 48 steps), about 50 CPU-seconds per run
    "cpu": Profile(
        size=64,
        steps=None,
        epochs=4,
        batch_sizes=(2, 4, 8),
        max_images=96,
        eval_size=128,
        data="coco100",
        progress_every=48,
        # 5 x 3 passes of 24 images (+ 3 warm-up steps): ~380 images, a fifth of the five trainings' 1,920
        timing_images=24,
        timing_repeats=5,
    ),
    # paper sec. 4.1: 256 x 256 COCO, batch 4, 40,000 iterations (~2 epochs); here 2 epochs for every
    # run (41,391 steps at batch 4) so all batch sizes see the same images. Batch sizes 4, 8, 16:
    # the NYU report does not name its sizes (our choice: the paper's 4 and two doublings)
    "paper": Profile(
        size=256,
        steps=None,
        epochs=2,
        batch_sizes=(4, 8, 16),
        max_images=None,
        eval_size=512,
        data=None,
        progress_every=1000,
        timing_images=64,  # 4 to 16 steps per pass: a few seconds on a GPU
        timing_repeats=5,
    ),
}
CONTENT, STYLE = "chelsea", "mosaic"  # report Fig. 6/7: the cat; its style is not named (mosaic: Johnson's example)
LAYERS = ("relu2_2", "relu3_3", "relu4_3")  # report 4.2 / paper Fig. 3
BASE_LAYER, BASE_BATCH = FAST_JOHNSON2016.loss.content_layers[0][0], FAST_JOHNSON2016.batch  # relu2_2, 4
JUDGE, JUDGE_LAYERS = "vgg19", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # not the VGG16 trained with
SPEC = Spec(
    name=NAME,
    title="content-layer ablation and batch size of the fast network, NYU report 002 section 4.2",
    sources=("nyu",),
    claims=("C4", "C5"),
    archs=(FAST_JOHNSON2016.backbone, JUDGE),
    profiles=PROFILES,
    options={"steps": int, "size": int, "data": str},
    test_argv=(),  # the smoke profile is already minimal
    families=families_of(FAST_JOHNSON2016),
    units="the five trainings",
)
CURVE_ROWS = 200  # curves.csv keeps about this many steps per run

TABLE_COLUMNS = [
    "sweep",
    "content_layer",
    "batch_size",
    "colour_artifact_index",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "style_distance",
    "judge",
    "judge_weights",
    "style_loss",
    "seconds_per_epoch",
    "seconds_per_epoch_median",
    "seconds_per_epoch_min",
    "seconds_per_epoch_max",
    "seconds_per_epoch_mad",
    "timing_repeats",
    "seconds_per_step",
    "images_per_second",
    "train_seconds",
    "train_steps",
    "train_images",
    "images_per_epoch",
    "epochs",
    "first_total",
    "last_total",
    "height",
    "width",
    "output",
]
REPEAT_COLUMNS = [
    "batch_size",
    "content_layer",
    "repeat",
    "images",
    "steps",
    "seconds",
    "seconds_per_epoch",
    "ssim_content",
]
CURVE_COLUMNS = ["run", "content_layer", "batch_size", "step", "epoch", "total", "content", "style", "tv", "seconds"]


def run_name(layer: str, batch: int) -> str:
    return f"{layer}_b{batch}"


def points(profile: Profile) -> list[tuple[str, int]]:
    pts = [(layer, BASE_BATCH) for layer in LAYERS] + [(BASE_LAYER, b) for b in profile.batch_sizes]
    return list(dict.fromkeys(pts))


def training_preset(profile: Profile):
    """johnson2016 with the profile's sizes and lengths. The style image (Johnson's code: long side
    256 for 256 px training) is scaled with the training size, so its texture keeps its scale
    relative to the training images."""
    length = {"steps": profile.steps} if profile.steps else {"epochs": profile.epochs}
    style_size = None
    if profile.size != FAST_JOHNSON2016.size:
        native = max(load_image(STYLE, Resize()).shape[-2:])
        style_size = max(32, round((FAST_JOHNSON2016.style_size or native) * profile.size / FAST_JOHNSON2016.size))
    # checkpoint only at the end: intermediate checkpoint writes would count as training time
    return override_fast(
        FAST_JOHNSON2016,
        dict(**length, size=profile.size, max_images=profile.max_images, style_size=style_size, checkpoint_every=10**9),
    )


def with_content_layer(preset, layer: str):
    return replace(preset, loss=replace(preset.loss, content_layers=((layer, 1.0),)))


def train_point(exp: Experiment, layer: str, batch: int) -> dict:
    """One run: train with content `layer` at `batch` and stylise the cat; a unit (a job under
    --executor local|slurm), so it returns plain data and CPU tensors (training.train_and_apply_unit)."""
    preset, name = training_preset(exp.profile), run_name(layer, batch)
    content = load_image(CONTENT, Resize("long", exp.profile.eval_size)).to(exp.device)
    style_train = load_image(STYLE, Resize("long", preset.style_size) if preset.style_size else Resize()).to(exp.device)
    p = override_fast(with_content_layer(preset, layer), dict(batch=batch))
    print(f"[{NAME}] training {name}: content {layer}, batch {batch}", file=sys.stderr, flush=True)
    return train_and_apply_unit(
        p,
        STYLE,
        exp.profile.data,
        content,
        style_train,
        backbone=exp.backbone(p.backbone),
        run=TrainOptions(log=lambda m: print(f"[{NAME} {name}] {m}", file=sys.stderr, flush=True), **exp.run_options()),
    )


def time_batch_sizes(exp: Experiment, preset, results: dict) -> list[dict]:
    """C5's time: interleaved timed training passes per batch size (module docstring), one row per
    repeat; seconds per epoch scale the pass to the batch size's epoch (its last incomplete batch
    dropped, as in training). The batch-size rows of `results` get the repeats' spread."""
    prof, batches = exp.profile, exp.profile.batch_sizes
    print(
        f"[{NAME}] timing batch sizes {', '.join(map(str, batches))}: {prof.timing_repeats} x {prof.timing_images} images",
        file=sys.stderr,
        flush=True,
    )
    base = with_content_layer(preset, BASE_LAYER)
    times = time_training(
        {b: override_fast(base, dict(batch=b)) for b in batches},
        STYLE,
        exp.profile.data,
        exp.backbone(preset.backbone),
        images=prof.timing_images,
        repeats=prof.timing_repeats,
        run=TrainOptions(device=str(exp.device), seed=exp.seed, compute=exp.compute),
    )
    rows = []
    for b in batches:
        r = results[(BASE_LAYER, b)]
        epoch = [s * r["images_per_epoch"] / prof.timing_images for s in times[b]]
        spread = timing_spread(epoch)
        r.update(
            seconds_per_epoch_median=spread.median,
            seconds_per_epoch_min=spread.min,
            seconds_per_epoch_max=spread.max,
            seconds_per_epoch_mad=spread.mad,
            timing_repeats=spread.n,
        )
        rows += [
            {
                "batch_size": b,
                "content_layer": BASE_LAYER,
                "repeat": k + 1,
                "images": prof.timing_images,
                "steps": prof.timing_images // b,
                "seconds": s,
                "seconds_per_epoch": e,
                "ssim_content": r["ssim_content"],
            }
            for k, (s, e) in enumerate(zip(times[b], epoch))
        ]
    return rows


def compute(exp: Experiment, preset, data: str) -> None:
    judge = exp.backbone(JUDGE)
    tag = exp.tag(preset.backbone)
    content = load_image(CONTENT, Resize("long", exp.profile.eval_size)).to(exp.device)
    style_judge = load_image(STYLE, Resize("long", exp.profile.eval_size)).to(exp.device)
    style_distance = metrics.style_distance_fn(style_judge, judge, JUDGE_LAYERS)  # the style's Grams once
    h, w = content.shape[-2:]
    results, curves = {}, []
    pts = points(exp.profile)
    runs = exp.map_units(
        train_point, {run_name(layer, batch): {"layer": layer, "batch": batch} for layer, batch in pts}
    )
    if exp.jobs.executor != "inline":  # table.csv's per-training seconds; C5 reads repeats.csv (this process)
        exp.note(
            f"the trainings ran as separate {exp.jobs.executor} jobs: their seconds per epoch are comparable "
            "only where the jobs had the same hardware and no job slowed another (local jobs share the cores); "
            "C5's time half uses the timing passes this process runs afterwards (repeats.csv)"
        )
    for k, (layer, batch) in enumerate(pts):
        name = run_name(layer, batch)
        unit = runs[name]
        out, terms, rec, loss = unit["image"].to(exp.device), unit["terms"], unit["record"], unit["loss"]
        exp.image(out, f"outputs/{name}.png")
        steps = rec["steps_done"]
        images = steps * batch
        per_epoch = rec["data"]["batches_per_epoch"] * batch  # the incomplete last batch is dropped
        seconds = float(loss["seconds"].iloc[-1])  # loss.csv's clock: the training loop, no checkpoint writes
        results[(layer, batch)] = {
            "content_layer": layer,
            "batch_size": batch,
            "colour_artifact_index": float(metrics.colour_artifact_index(out, content)[0]),
            **exp.content_quality(out, content)[0],
            "style_distance": float(style_distance(out)[0]),
            "judge": JUDGE,
            "judge_weights": exp.weights_kind(JUDGE),
            "style_loss": terms["style"],
            "seconds_per_epoch": seconds * per_epoch / images,
            "seconds_per_step": seconds / steps,
            "images_per_second": images / seconds,
            "train_seconds": seconds,
            "train_steps": steps,
            "train_images": images,
            "images_per_epoch": per_epoch,
            "epochs": images / per_epoch,
            "first_total": float(loss["total"].iloc[0]),
            "last_total": float(loss["total"].iloc[-1]),
            "height": h,
            "width": w,
            "output": f"outputs/{name}.png",
            "image": out.cpu(),
        }
        curves += [
            {**tag, "run": name, "content_layer": layer, "batch_size": batch, **r}
            for r in thin_curve(loss, CURVE_ROWS).to_dict("records")
        ]
        if k == 0:
            exp.record("training_data", rec["data"])
    # after the trainings and their metrics: the timing passes train networks of their own
    repeats = [{**tag, **r} for r in time_batch_sizes(exp, preset, results)]

    rows = [{**tag, "sweep": "content_layer", **results[(layer, BASE_BATCH)]} for layer in LAYERS]
    rows += [{**tag, "sweep": "batch_size", **results[(BASE_LAYER, b)]} for b in exp.profile.batch_sizes]
    exp.write_csv("table.csv", rows, TABLE_COLUMNS)
    exp.write_csv("repeats.csv", repeats, REPEAT_COLUMNS)
    exp.write_csv("curves.csv", curves, CURVE_COLUMNS)
    figures(exp, content.cpu(), style_judge.cpu(), results, curves)
    exp.claim("C4", "table.csv", where="sweep == 'content_layer'")
    exp.claim("C5", "repeats.csv")

    base = results[(BASE_LAYER, BASE_BATCH)]
    exp.note(
        f"profile {exp.profile_label}: {len(pts)} networks at {preset.size} x {preset.size} px on {data}, "
        f"{base['epochs']:g} epoch(s) of {base['images_per_epoch']} images each ({base['train_steps']} steps at "
        f"batch {BASE_BATCH}); paper: 40,000 iterations of batch 4 (~2 epochs of COCO train2014) at 256 x 256. "
        f"Style image at {'its own size' if preset.style_size is None else f'long side {preset.style_size} px'}; "
        f"the cat stylised at {w}x{h} px"
    )
    exp.note(
        f"batch sizes {', '.join(map(str, exp.profile.batch_sizes))} at content {BASE_LAYER}: the NYU report "
        "does not name its batch sizes. seconds_per_epoch = training-loop seconds x images per epoch / images "
        "processed, measured on this machine while it may be shared. C5's time half reads repeats.csv instead: "
        f"{exp.profile.timing_repeats} interleaved timed passes of {exp.profile.timing_images} images per batch "
        "size after the trainings (median, and the MAD as the noise)"
    )
    exp.note(
        "loss weights: lambda_c 1, lambda_s 5, lambda_tv 1e-6 (Johnson's code defaults; the paper gives none), "
        "unchanged across content layers, so the content term's scale differs between layers as in the report"
    )
    exp.note(
        f"colour_artifact_index: metrics.colour_artifact_index (mean low-passed a*b* distance to the content, "
        f"sigma 4 px, CIE Lab); style_distance in {JUDGE} {'/'.join(JUDGE_LAYERS)}, a network no run trained with"
    )
    if exp.weights_kind(preset.backbone) != "imagenet":
        exp.note(
            "random loss-network weights: the perceptual terms carry no image semantics; this tests the "
            "pipeline, not the report's observations"
        )


def figures(exp, content, style, results, curves) -> None:
    given = [("content", content), ("style", style)]
    by_layer = [results[(layer, BASE_BATCH)] for layer in LAYERS]
    by_batch = [results[(BASE_LAYER, b)] for b in exp.profile.batch_sizes]
    exp.panels(
        "grid_content_layer.png",
        f"content layer (batch {BASE_BATCH})",
        given
        + [(f"{r['content_layer']}\ncolour artifact {r['colour_artifact_index']:.2f}", r["image"]) for r in by_layer],
    )
    exp.panels(
        "grid_batch_size.png",
        f"batch size (content {BASE_LAYER})",
        given
        + [
            (f"batch {r['batch_size']}\nSSIM {r['ssim_content']:.2f}, {r['seconds_per_epoch']:.3g} s/epoch", r["image"])
            for r in by_batch
        ],
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name in dict.fromkeys(c["run"] for c in curves):
        pts = np.array([(c["step"] * c["batch_size"], c["total"]) for c in curves if c["run"] == name])
        ax.semilogy(pts[:, 0], pts[:, 1], lw=1.2, label=name)
    ax.set_xlabel("training images processed")
    ax.set_ylabel("training loss (weighted total)")
    ax.legend(fontsize=7)
    exp.figure(fig, "curves.png")


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    data = exp.profile.data  # the profile's, or --data / $NSTBENCH_DATA
    if data is None:
        raise NstbenchError(f"the {exp.profile_name} profile trains on COCO train2014: pass --data. {COCO_HELP}")
    if BASE_BATCH not in exp.profile.batch_sizes:  # the shared run of both sweeps
        raise NstbenchError(f"batch sizes {exp.profile.batch_sizes} must include the preset's {BASE_BATCH}")
    preset = training_preset(exp.profile)
    exp.settings.update(
        preset=preset,
        data=data,
        content=CONTENT,
        style=STYLE,
        layers=LAYERS,
        batch_sizes=exp.profile.batch_sizes,
        judge=JUDGE,
        judge_layers=JUDGE_LAYERS,
    )
    exp.run(lambda e: compute(e, preset, data))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
