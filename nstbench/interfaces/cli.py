"""The `nstbench` command line. User errors (argparse's included) print one line and exit with status 2.

Output convention (README "Outputs"): `stylize` and `train` write a folder (`--out DIR`), which
they lock while they write; a folder holding a finished run is replaced only with `--overwrite`
(train: or continued with `--resume`), and never a folder holding another command's run. `apply`
writes one image file when `--out` ends in an image suffix (.png, .jpg, .webp, ...), else a folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from .. import __version__
from ..config.errors import NstbenchError
from ..config.profiles import PROFILE_NAMES
from ..harness.compute_args import add_compute_arguments


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage block, the same prefix and exit status as ours."""

    def error(self, message: str):
        self.exit(2, f"nstbench: error: {message} (see `{self.prog} --help`)\n")

    def format_help(self) -> str:
        # help texts listed from the registries (presets, weights keywords, network variants) are
        # filled in only here: those modules import torch, and parsing a command line stays torch-free
        for action in self._actions:
            fill = getattr(action, "help_from", None)
            if fill is not None:
                action.help = fill()
        return super().format_help()


def _help_from(action: argparse.Action, fill) -> None:
    """The help of `action` is `fill()`, computed when --help is printed (see _Parser.format_help)."""
    action.help_from = fill  # type: ignore[attr-defined]
    action.help = "(listed by --help)"


def _gatys_presets_help() -> str:
    from ..config.presets import PRESETS

    return "one of " + ", ".join(PRESETS) + " (nstbench presets: their sources)"


def _fast_presets_help() -> str:
    from ..config.presets import FAST_PRESETS

    return "one of " + ", ".join(FAST_PRESETS) + " (nstbench presets --fast: their sources)"


def _networks_help() -> str:
    from ..config.variants import VARIANTS

    return "override the network variant: " + " | ".join(VARIANTS)


def _size_help() -> str:
    """What --size sets for each Gatys preset, read from the presets' content Resize: the presets
    differ (a long side for some, a short side for others), so the text must come from them."""
    from ..config.presets import PRESETS

    by_side: dict[str, list[str]] = {}
    for name, p in PRESETS.items():
        by_side.setdefault(p.content_resize.sets(), []).append(f"{name} ({p.content_resize.size})")
    sides = "; ".join(f"{side} for {', '.join(names)}" for side, names in by_side.items())
    return (
        f"override the working size in px: {sides} (each preset's default in brackets); a content "
        "image enlarged past its own size is warned about"
    )


def _weights_help(prefix: str = "") -> str:
    from ..config.families import weights_help

    return prefix + weights_help()


def _at_least(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {v}")
        return v

    return parse


def _weight(text: str) -> float:
    """A loss weight: a finite number >= 0 (a negative weight would maximise its term)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v >= 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    """A rate or a scale: one rule for 0 and negatives alike."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0 < v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def _weights_list(text: str) -> list[float]:
    return [_weight(t) for t in text.split(",")]


POSITIVE, NON_NEGATIVE = _at_least(1), _at_least(0)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _set_threads(args: argparse.Namespace) -> None:
    """--threads N: torch's intra-op threads for this run (run.json's provenance records the count)."""
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def _weights_note(w: dict | None, what: str = "weights") -> str:
    """The weights' kind first (ImageNet, a file, random), then which exactly: every last line says it."""
    from ..nets.weights import weights_label

    if not w:
        return f"{what}: not recorded"
    kind = {"imagenet": "ImageNet", "file": "file"}.get(w.get("kind", ""), "")
    return f"{what}: {kind + ' ' if kind else ''}{weights_label(w)}{'' if w.get('imagenet') else ' (not ImageNet)'}"


def _toy_note(w: dict | None, trained_steps: int | None = None) -> str:
    """'; TOY: ...' when the output cannot show a style: random loss-network weights (features that
    measure no style), or a fast network trained for fewer steps than `toy_train_steps()`."""
    toy = ["random weights"] if w and w.get("kind") == "random" else []
    least = toy_train_steps()
    if trained_steps is not None and trained_steps < least:
        toy.append(f"trained {trained_steps} steps (under {least}, the cpu profile's)")
    return f"; TOY: {', '.join(toy)}" if toy else ""


def toy_train_steps() -> int:
    """Fewer training steps than this make a toy network: the `cpu` profile's step count, the least
    this project calls faithful (the smoke profile's 4 steps and the README's quick start leave the
    network near its initialisation, a flat image); the sources train 2 epochs or 40,000 steps."""
    from ..config.presets import TRAIN_PROFILES

    return int(TRAIN_PROFILES["cpu"].steps or 0)


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def _stylize(args: argparse.Namespace) -> None:
    from ..config.presets import get_preset
    from ..harness.compute_args import compute_from_args
    from ..methods.gatys import RunOptions
    from ..methods.gatys_run import OVERRIDES, Extras, override, stylize_to_folder
    from ..nets.device import resolve_device

    if args.scales and args.size is not None:
        raise NstbenchError("give --size or --scales, not both (the last scale is the working size)")
    _set_threads(args)
    given = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    preset = override(get_preset(args.preset), given)
    recorded = dict(given, **({"scales": args.scales} if args.scales else {}))
    extras = Extras(
        overrides=recorded,
        original_colors=args.original_colors,
        output=args.output,
        style_blend=args.style_blend,
        save_every=args.save_every,
        scales=tuple(args.scales) if args.scales else None,
    )
    rec = stylize_to_folder(
        preset,
        args.content,
        args.style,
        args.out,
        run=RunOptions(
            seed=args.seed,
            compute=compute_from_args(args),  # stylize refuses emulated bf16 itself, into its record
            progress_every=args.progress_every,
            weights=args.weights,
            device=resolve_device(args.device),
        ),
        extras=extras,
        overwrite=args.overwrite,
        allow_slow_bf16=args.allow_slow_bf16,
    )
    modified = (
        f"; preset {preset.name} modified: " + ", ".join(f"{k}={v}" for k, v in recorded.items()) if recorded else ""
    )
    scales = len(args.scales) if args.scales else 1
    steps = _count(preset.steps, "step") + (f" x {_count(scales, 'scale')}" if args.scales else "")
    if rec["evaluations"] != preset.steps * scales:  # the sources' L-BFGS while loop runs past `steps`
        steps += f" ({rec['evaluations']} evaluations)"
    h, w = rec["working_size_hw"]
    print(
        f"wrote {Path(args.out)}/{args.output}, curve.csv, run.json ({steps}, {h}x{w} px (H x W)"
        f"{', upscaled' if rec['upscaled'] else ''}, {rec['seconds']:.1f}s, {_weights_note(rec['weights'])}"
        f"{_toy_note(rec['weights'])}{modified})"
    )


def _sizes(text: str) -> list[int]:
    return [POSITIVE(t) for t in text.split(",")]


def _init(text: str) -> str:
    """content | noise | style, or an image (a registered name or a path)."""
    from ..nets.assets import image_names

    if text in ("content", "noise", "style") or text in image_names() or Path(text).suffix or "/" in text:
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from content, noise, style, or give an image name or path)"
    )


def _presets(args: argparse.Namespace) -> None:
    from ..config.presets import FAST_PRESETS, PRESETS

    if not args.fast:
        print("Gatys presets (nstbench stylize --preset NAME):")
        for name, p in PRESETS.items():
            print(f"  {name:17s} {p.backbone:14s} {p.weights:11s} {p.optimizer.name:8s} {p.steps:5d} steps  {p.source}")
    if args.fast or args.all:
        print("Fast-transfer presets (nstbench train --preset NAME):")
        for name, p in FAST_PRESETS.items():
            length = f"{p.steps:5d} steps" if p.steps else f"{p.epochs:2d} epochs   "
            print(
                f"  {name:17s} {p.backbone:6s} {p.weights:11s} batch {p.batch:2d} {p.size:4d} px {length}  {p.source}"
            )


def _images(args: argparse.Namespace) -> None:
    from ..nets.assets import cache_dir, local_assets_dir, registry

    local, cache = local_assets_dir(), cache_dir()
    print(
        f"asset folder: {local or 'none (NSTBENCH_ASSETS unset, no ../shared/assets beside the clone)'}; cache: {cache}"
    )
    reg = registry()
    for name, e in sorted(reg["images"].items()):
        where = (
            "asset folder"
            if local is not None and (local / e["file"]).is_file()
            else "cache"
            if (cache / e["file"]).is_file()
            else "missing (downloaded on first use)"
        )
        print(f"  {name:15s} {where:33s} {e.get('source', e.get('url', ''))}")
    for name, e in sorted(reg["datasets"].items()):
        present = local is not None and (local / e["folder"]).is_dir()
        print(
            f"  {name:15s} {'asset folder' if present else 'missing (downloaded on first use)':33s} "
            f"{e.get('source', '')} (dataset, {len(e['files'])} files)"
        )


def _train(args: argparse.Namespace) -> None:
    rec = train_command(args)
    first, last = rec["first"] or {}, rec["last"] or {}
    print(
        f"wrote {args.out}/transformer.pt, checkpoint.pt, loss.csv, run.json ({_count(rec['steps_done'], 'step')}, "
        f"{rec['seconds']:.1f}s, loss {first.get('total', float('nan')):.4g} -> "
        f"{last.get('total', float('nan')):.4g}, {_weights_note(rec['weights'], 'loss-network weights')}"
        f"{_toy_note(rec['weights'], rec['steps_done'])})"
    )


def _apply(args: argparse.Namespace) -> None:
    from ..methods.inference import export_onnx, stylize_images

    if not args.content and not args.export_onnx:
        raise NstbenchError("give --content (images to stylise) and --out, or --export-onnx PATH")
    if args.content and args.out is None:
        raise NstbenchError("--out is required with --content (an image file or a folder)")
    for r in (
        stylize_images(
            args.checkpoint,
            args.content or [],
            args.out,
            size=args.size,
            scale=args.content_scale,
            device=args.device,
            crop=args.crop,
            overwrite=args.overwrite,
        )
        if args.content
        else []
    ):
        h, w = r["size_hw"]
        trained = f", trained {r['steps_trained']} steps" if r["steps_trained"] is not None else ""
        print(
            f"wrote {r['output']} ({w}x{h}, {r['seconds'] * 1000:.0f} ms, {r['format']} {r['network']} network{trained}, "
            f"{_weights_note(r['loss_weights'], 'loss-network weights')}"
            f"{_toy_note(r['loss_weights'], r['steps_trained'])})"
        )
    if args.export_onnx:
        print(
            f"wrote {export_onnx(args.checkpoint, args.export_onnx)} (ONNX: image [N, 3, H, W] in [0, 1] -> stylized)"
        )


def _app(args: argparse.Namespace) -> None:
    from .app import app_command

    app_command(args)


def _report(args: argparse.Namespace) -> None:
    from ..harness.report import build_reports

    for p in build_reports(args.results, args.out):
        print(f"wrote {p}")


def _train_preset(args: argparse.Namespace, resumed: dict):
    """(the fast preset, the training data, whether the profile was chosen by default) of `nstbench
    train`: the preset with the profile's overrides (or the resumed run's), then the options'."""
    from ..config.presets import FAST_OVERRIDES, TRAIN_PROFILES, get_fast_preset, network_config, override_fast
    from ..config.profiles import default_profile
    from ..methods.training import check_training_size
    from ..nets.data import COCO_HELP

    preset = get_fast_preset(args.preset)
    chosen = args.profile is None and not args.resume
    if chosen:
        args.profile = default_profile(args.device)
    prof = TRAIN_PROFILES[args.profile].overrides() if args.profile else dict(resumed)
    profile_data = prof.pop("data", None)
    data = args.data or profile_data
    if data is None:
        raise NstbenchError(
            f"--data is required for the {preset.name} preset with the {args.profile} profile. {COCO_HELP}"
        )
    if args.steps is not None or args.epochs is not None:
        prof.pop("steps", None)  # an explicit length wins over the profile's
    preset = override_fast(preset, prof)
    # every override is an option of its own name but max_images, which only profiles set
    preset = override_fast(preset, {k: getattr(args, k) for k in FAST_OVERRIDES if k != "max_images"})
    if args.lr is not None:
        preset = dataclasses.replace(preset, lr=args.lr)
    network_config(preset)  # an unknown --network or --norm fails before any work
    check_training_size(preset)
    return preset, data, chosen


def train_command(args: argparse.Namespace) -> dict:
    """`nstbench train`: the preset with the profile's and the options' overrides, checked before
    any work (sizes, the output folder, resuming), then train_transformer under the folder's lock."""
    from ..methods.training import TrainOptions, train_transformer
    from ..nets.records import run_dir

    _set_threads(args)
    if args.resume and args.overwrite:
        raise NstbenchError("give --resume or --overwrite, not both")
    resumed = _resume_settings(args) if args.resume else {}
    if args.preset is None or args.style is None:
        raise NstbenchError("train needs --preset and --style (or --resume to continue the run in --out)")
    args.weights = args.weights or "auto"
    args.seed = 0 if args.seed is None else args.seed
    preset, data, chosen = _train_preset(args, resumed)
    compute = _compute(args)
    with run_dir(args.out, "train", writes="checkpoint.pt, transformer.pt, loss.csv, run.json") as out:
        if args.resume:
            _check_resumable(out, preset)
        elif args.overwrite:
            for name in ("checkpoint.pt", "transformer.pt", "loss.csv", "run.json"):
                (out / name).unlink(missing_ok=True)
        elif (out / "checkpoint.pt").exists():
            done = _finished_steps(out)
            resume = f"--resume --steps N (N > {done}) to train it further" if done else "--resume to continue it"
            raise NstbenchError(
                f"{out} already holds a {'finished ' if done else ''}training run (checkpoint.pt); pass {resume}, "
                "--overwrite to start afresh, or choose another --out"
            )
        if chosen:  # said once everything is checked, so that an error stays one line
            print(
                f"[train {preset.name}] profile {args.profile} (the default on {args.device}; --profile paper "
                "runs the preset's own sizes and steps)",
                file=sys.stderr,
            )
        run = TrainOptions(
            weights=args.weights,
            seed=args.seed,
            device=args.device,
            compute=compute,
            progress_every=args.progress_every,
        )
        return train_transformer(preset, args.style, data, out, run=run, resume=args.resume)


# train options a resumed run takes from its checkpoint when they are not given (checkpoint key in
# the recorded preset, where it differs from the option's name)
_RESUMED = {"size": "size", "batch": "batch", "lr": "lr", "style_size": "style_size", "network": "network",
            "norm": "norm", "checkpoint_every": "checkpoint_every"}  # fmt: skip


def _resume_settings(args: argparse.Namespace) -> dict:
    """--resume: the options not given are the checkpoint's (its preset, style, data, weights, seed,
    sizes and loss weights; the length is its own unless --steps/--epochs extend it), read from the
    checkpoint alone, before anything slow. Returns the profile-like overrides (max_images)."""
    from ..nets.assets import image_names
    from ..nets.records import check_out_name
    from ..nets.transformer import read_checkpoint

    ckpt_path = check_out_name(args.out, "checkpoint.pt, transformer.pt, loss.csv, run.json") / "checkpoint.pt"
    if not ckpt_path.is_file():
        raise NstbenchError(f"nothing to resume: {ckpt_path} not found")
    ckpt = read_checkpoint(ckpt_path)
    p = ckpt.get("preset") or {}
    if not p.get("name"):
        raise NstbenchError(f"{ckpt_path} is not a resumable nstbench training checkpoint")
    style = ckpt.get("style") or {}
    weights = ckpt.get("weights") or {}
    fill = {
        "preset": p["name"],
        "style": style.get("name") if style.get("name") in image_names() else style.get("path"),
        "data": (ckpt.get("data") or {}).get("root"),
        "weights": "random" if weights.get("kind") == "random" else "auto",
        "seed": ckpt.get("seed"),
        **{opt: p.get(key) for opt, key in _RESUMED.items()},
        "content_weight": (p.get("loss") or {}).get("alpha"),
        "style_weight": (p.get("loss") or {}).get("beta"),
        "tv_weight": (p.get("loss") or {}).get("gamma"),
    }
    for k, v in fill.items():
        if getattr(args, k, None) is None and v is not None:
            setattr(args, k, v)
    if args.steps is None and args.epochs is None:
        args.steps = ckpt.get("total_steps")
    return {"max_images": p.get("max_images")}


def _finished_steps(out) -> int | None:
    """The steps of the finished training run in `out` (run.json), or None when it did not finish."""
    import json

    try:
        rec = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None  # no record (interrupted before the first write): train_transformer checks the checkpoint
    return rec.get("steps_done") if rec.get("status") == "ok" and rec.get("model") else None


def _check_resumable(out, preset) -> None:
    """A finished run has nothing to resume, unless --steps asks for more than it did."""
    done = _finished_steps(out)
    if done is not None and (preset.steps is None or preset.steps <= done):
        raise NstbenchError(
            f"the run in {out} finished at step {done}; nothing to resume: pass --steps N with N > {done} "
            "to train it further, or --overwrite (instead of --resume) to start afresh"
        )


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _compute(args: argparse.Namespace):
    """The Compute of the compute options; emulated bf16 refused here, before any work."""
    from ..harness.compute_args import compute_from_args
    from ..nets.device import resolve_device
    from ..nets.precision import require_native_bf16

    dev = resolve_device(args.device)
    if args.dtype == "bfloat16":
        require_native_bf16(dev, args.allow_slow_bf16)
    return compute_from_args(args, dev.type)


def _threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=POSITIVE,
        metavar="N",
        help="CPU threads for torch (torch.set_num_threads; default: torch's, recorded in run.json)",
    )


def _progress_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--progress-every",
        type=NON_NEGATIVE,
        default=None,
        metavar="N",
        help=f"progress line every N steps; 0: none (default: {default})",
    )
    # the old name of the same option, kept working but not advertised
    p.add_argument("--print-every", type=NON_NEGATIVE, dest="progress_every", help=argparse.SUPPRESS)


def _stylize_parser(sub) -> None:
    st = sub.add_parser("stylize", help="Gatys optimisation with a source preset")
    _help_from(st.add_argument("--preset", required=True), _gatys_presets_help)
    st.add_argument("--content", required=True, help="image name (e.g. tubingen) or path")
    st.add_argument(
        "--style",
        required=True,
        nargs="+",
        help="image name(s) (e.g. starry_night) or path(s); several are blended (--style-blend)",
    )
    st.add_argument(
        "--style-blend",
        type=_weights_list,
        metavar="W1,W2,...",
        help="weights of several --style images (normalised; default equal)",
    )
    _help_from(st.add_argument("--weights", default="auto"), _weights_help)
    st.add_argument("--steps", type=POSITIVE, help="override the preset's iteration count")
    _help_from(st.add_argument("--size", type=POSITIVE), _size_help)
    st.add_argument("--init", type=_init, help="override the initial image: content | noise | style | IMAGE")
    _loss_options(
        st,
        (
            "alpha (the content term's weight)",
            "beta (the style term's weight)",
            "gamma (the total variation term's weight)",
        ),
        "override the learning rate",
    )
    st.add_argument("--optimizer", choices=["adam", "lbfgs"], help="override the optimizer (torch's Adam or L-BFGS)")
    st.add_argument("--seed", type=int, default=0, help="seed for random weights and noise (default 0)")
    st.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    add_compute_arguments(st, "the backbone")
    _threads_option(st)
    _progress_options(st, "every 10 s")
    st.add_argument("--out", required=True, help="output folder (gets output.png, curve.csv, run.json)")
    st.add_argument("--overwrite", action="store_true", help="replace the stylize run already in --out")
    st.add_argument(
        "--scales",
        type=_sizes,
        metavar="S1,S2,...",
        help="multi-scale: run the preset at each working size in turn (coarse to fine), each "
        "starting from the previous result upsampled",
    )
    st.add_argument(
        "--save-every",
        type=NON_NEGATIVE,
        default=0,
        metavar="N",
        help="also save every N-th step's image as --out/steps/step_<N>.png, N in five digits "
        "(step_00010.png; default 0: none)",
    )
    st.add_argument(
        "--output",
        default="output.png",
        metavar="NAME",
        help="the image's file name inside --out; its suffix picks the format (default output.png)",
    )
    st.add_argument(
        "--original-colors",
        action="store_true",
        help="keep the content's colours: the result's luminance with the content's chroma (Gatys et al. 2017)",
    )
    st.set_defaults(func=_stylize)


def _loss_options(p: argparse.ArgumentParser, weights: tuple[str, str, str], lr_help: str) -> None:
    """--content-weight, --style-weight, --tv-weight and --lr: stylize and train both take them."""
    for term, what in zip(("content", "style", "tv"), weights):
        p.add_argument(f"--{term}-weight", type=_weight, help=f"override {what}")
    p.add_argument("--lr", type=_positive_float, help=lr_help)


def _train_parser(sub) -> None:
    tr = sub.add_parser("train", help="train a fast style transfer network (Johnson et al.)")
    # --preset, --style and the other settings are required unless --resume reads them from the checkpoint
    _help_from(tr.add_argument("--preset"), lambda: _fast_presets_help() + " (with --resume: the checkpoint's)")
    tr.add_argument("--style", help="style image name (e.g. mosaic) or path (with --resume: the checkpoint's)")
    tr.add_argument(
        "--data",
        help="folder of training images (e.g. COCO train2014) or coco100; default for the smoke/cpu profiles: coco100",
    )
    tr.add_argument(
        "--profile",
        choices=list(PROFILE_NAMES),
        default=None,
        help="sizes, steps and data volume: paper is the preset's own (default paper with "
        "--device cuda, else cpu, as for the experiment scripts)",
    )
    length = tr.add_mutually_exclusive_group()
    length.add_argument("--steps", type=POSITIVE, help="number of training steps (batches)")
    length.add_argument("--epochs", type=POSITIVE, help="number of passes over the data")
    tr.add_argument("--batch", type=POSITIVE, help="override the batch size")
    tr.add_argument("--size", type=POSITIVE, help="override the training image size (size x size, a multiple of 4)")
    _loss_options(tr, ("lambda_c", "lambda_s", "lambda_tv"), "override the Adam learning rate")
    tr.add_argument("--style-size", type=POSITIVE, help="override the style image's long side (px)")
    _help_from(tr.add_argument("--network"), _networks_help)
    tr.add_argument("--norm", choices=["batch", "instance"], help="override the network's norm layers")
    # no defaults here: with --resume an option not given is the checkpoint's (auto and 0 otherwise)
    _help_from(tr.add_argument("--weights"), lambda: _weights_help("loss network weights: "))
    tr.add_argument("--seed", type=int, help="seed for the network init and data order (default 0)")
    tr.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    tr.add_argument("--checkpoint-every", type=POSITIVE, help="checkpoint every N steps (default: preset's)")
    add_compute_arguments(tr, "the transformer and the loss network")
    _threads_option(tr)
    _progress_options(tr, "every 10 s")
    tr.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, with its settings (options given must match)",
    )
    tr.add_argument("--overwrite", action="store_true", help="start afresh, deleting the training run in --out")
    tr.add_argument("--out", required=True, help="output folder")
    tr.set_defaults(func=_train)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="nstbench", description="Neural style transfer benchmarks (Gatys; Johnson).")
    ap.add_argument("--version", action="version", version=f"nstbench {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _stylize_parser(sub)

    pr = sub.add_parser(
        "presets",
        help="list the presets with their source and weights family (Gatys; --fast: fast transfer; --all: both)",
    )
    kind = pr.add_mutually_exclusive_group()
    kind.add_argument("--fast", action="store_true", help="the fast-transfer (train) presets")
    kind.add_argument("--all", action="store_true", help="both kinds")
    pr.set_defaults(func=_presets)

    im = sub.add_parser("images", help="the named images and data sets: source and whether they are here")
    im.set_defaults(func=_images)

    rp = sub.add_parser("report", help="build reports/ (Markdown per source, claims index, HTML) from results/")
    rp.add_argument("--results", default="results", help="results folder (default results)")
    rp.add_argument("--out", default="reports", help="output folder (default reports)")
    rp.set_defaults(func=_report)

    _train_parser(sub)

    ap_ = sub.add_parser("apply", help="stylise images with a trained fast network")
    ap_.add_argument(
        "--checkpoint",
        required=True,
        help="nstbench transformer.pt/checkpoint.pt or a pytorch/examples fast_neural_style .model/.pth",
    )
    ap_.add_argument("--content", nargs="+", help="content image name(s), path(s) or folder(s)")
    ap_.add_argument("--export-onnx", metavar="PATH", help="also write the network as an ONNX file (needs onnx)")
    ap_.add_argument("--out", help="output image file (one content; .png, .jpg, .webp, ...) or folder")
    ap_.add_argument("--size", type=POSITIVE, help="scale each content so its long side is N px")
    ap_.add_argument(
        "--content-scale",
        type=_positive_float,
        metavar="F",
        help="divide each content's sides by F (pytorch/examples' --content-scale)",
    )
    ap_.add_argument(
        "--crop",
        action="store_true",
        help="crop the output to the content's size (sides that are "
        "not multiples of 4 come out rounded up, as in the sources)",
    )
    ap_.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    ap_.add_argument("--overwrite", action="store_true", help="replace output images that already exist")
    ap_.set_defaults(func=_apply)

    web = sub.add_parser("app", help="the web app (Streamlit, on 127.0.0.1): fast networks, Gatys, side by side")
    web.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    web.add_argument(
        "--models", help="folder of fast-network checkpoints (default: runs/ and ~/.cache/nstbench/models)"
    )
    web.set_defaults(func=_app)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # `nstbench` alone: what it can do, not a terse usage error
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed on one line)
        return e.code if isinstance(e.code, int) else 0
    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's exit
    except BrokenPipeError:
        return _reader_gone()
    except NstbenchError as e:
        print(f"nstbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # stylize and train save what they have first and say where
        print(f"nstbench: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    return 0


def _reader_gone() -> int:
    """The reader of our output left (`nstbench images | head -3`): stop quietly, as a command
    killed by SIGPIPE would, and keep Python from complaining when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
