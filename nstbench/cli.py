"""The `nstbench` command line. User errors print one line and exit with status 2."""
from __future__ import annotations

import argparse
import sys

from .errors import NstbenchError


def _stylize(args: argparse.Namespace) -> None:
    from .gatys import Compute
    from .presets import get_preset
    from .stylize import override, stylize

    preset = override(get_preset(args.preset), steps=args.steps, size=args.size, init=args.init)
    rec = stylize(preset, args.content, args.style, args.out, weights=args.weights, seed=args.seed,
                  device=args.device, progress_every=args.print_every, compute=Compute(dtype=args.dtype),
                  allow_slow_bf16=args.allow_slow_bf16)
    from .weights import weights_label

    w = rec["weights"]
    print(f"wrote {args.out}/output.png, curve.csv, run.json ({preset.steps} steps, {rec['seconds']:.1f}s, "
          f"weights: {weights_label(w)}{'' if w.get('imagenet') else ' (not ImageNet)'})")


def _presets(args: argparse.Namespace) -> None:
    from .fast import FAST_PRESETS
    from .presets import PRESETS

    print(f"{'command':8s} {'preset':17s} {'backbone':9s} {'weights':11s} {'optimiser':9s} {'length':12s} source")
    for name, p in PRESETS.items():
        print(f"{'stylize':8s} {name:17s} {p.backbone:9s} {p.weights:11s} {p.optimizer.name:9s} "
              f"{f'{p.steps} steps':12s} {p.source}")
    for name, p in FAST_PRESETS.items():
        length = f"{p.steps} steps" if p.steps else f"{p.epochs} epochs"
        print(f"{'train':8s} {name:17s} {p.backbone:9s} {p.weights:11s} {'adam':9s} {length:12s} {p.source}")


def _train(args: argparse.Namespace) -> None:
    from .fast import train_command

    train_command(args)


def _apply(args: argparse.Namespace) -> None:
    from .fast import apply_command

    apply_command(args)


def _app(args: argparse.Namespace) -> None:
    from .app import app_command

    app_command(args)


def _report(args: argparse.Namespace) -> None:
    from .report import build_reports

    for p in build_reports(args.results, args.out):
        print(f"wrote {p}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nstbench", description="Neural style transfer benchmarks (Gatys; Johnson).")
    sub = ap.add_subparsers(dest="command", required=True)

    st = sub.add_parser("stylize", help="Gatys optimisation with a source preset")
    st.add_argument("--preset", required=True, help="hust | nyu | iitb-vgg19 | iitb-resnet50 | upes")
    st.add_argument("--content", required=True, help="image name (e.g. tubingen) or path")
    st.add_argument("--style", required=True, help="image name (e.g. starry_night) or path")
    st.add_argument("--weights", default="auto", help="auto | imagenet (the source's own ImageNet weights) | "
                    "torchvision | keras | caffe | gatys (another family's) | random | PATH (default auto)")
    st.add_argument("--steps", type=int, help="override the preset's iteration count")
    st.add_argument("--size", type=int, help="override the working size (the preset's resize rule is kept)")
    st.add_argument("--init", choices=["content", "noise", "style"], help="override the initial image")
    st.add_argument("--seed", type=int, default=0, help="seed for random weights and noise (default 0)")
    st.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    st.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="backbone precision: bfloat16 = autocast, Grams and losses stay fp32 (default float32); "
                         "refused on a CPU without native bf16 (no AVX512_BF16/AMX)")
    st.add_argument("--allow-slow-bf16", action="store_true",
                    help="run --dtype bfloat16 even where the CPU would emulate it (many times slower than float32)")
    st.add_argument("--print-every", type=int, default=None, help="progress line every N steps (default: preset's)")
    st.add_argument("--out", required=True, help="output folder")
    st.set_defaults(func=_stylize)

    pr = sub.add_parser("presets", help="list the presets (stylize and train) with their source and weights family")
    pr.set_defaults(func=_presets)

    rp = sub.add_parser("report", help="build reports/ (Markdown per source, claims index, HTML) from results/")
    rp.add_argument("--results", default="results", help="results folder (default results)")
    rp.add_argument("--out", default="reports", help="output folder (default reports)")
    rp.set_defaults(func=_report)

    tr = sub.add_parser("train", help="train a fast style transfer network (Johnson et al.)")
    tr.add_argument("--preset", required=True, help="hust | johnson2016 | pytorch-examples")
    tr.add_argument("--style", required=True, help="style image name (e.g. mosaic) or path")
    tr.add_argument("--data", help="folder of training images (e.g. COCO train2014) or coco100; "
                                   "default for the smoke/cpu profiles: coco100")
    tr.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="paper",
                    help="sizes, steps and data volume (default paper: the preset's own)")
    length = tr.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="number of training steps (batches)")
    length.add_argument("--epochs", type=int, help="number of passes over the data")
    tr.add_argument("--batch", type=int, help="override the batch size")
    tr.add_argument("--size", type=int, help="override the training image size (size x size)")
    tr.add_argument("--content-weight", type=float, help="override lambda_c")
    tr.add_argument("--style-weight", type=float, help="override lambda_s")
    tr.add_argument("--tv-weight", type=float, help="override lambda_tv")
    tr.add_argument("--network", help="override the network variant: johnson2016 | hust | pytorch-examples")
    tr.add_argument("--norm", choices=["batch", "instance"], help="override the network's norm layers")
    tr.add_argument("--weights", default="auto", help="loss network weights: auto | imagenet | torchvision | keras "
                    "| caffe | gatys | random | PATH")
    tr.add_argument("--seed", type=int, default=0, help="seed for the network init and data order (default 0)")
    tr.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    tr.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default: preset's)")
    tr.add_argument("--print-every", type=int, default=None, help="progress line every N steps (default: every 10 s)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    tr.add_argument("--out", required=True, help="output folder")
    tr.set_defaults(func=_train)

    ap_ = sub.add_parser("apply", help="stylise images with a trained fast network")
    ap_.add_argument("--checkpoint", required=True, help="nstbench transformer.pt/checkpoint.pt or a "
                                                        "pytorch/examples fast_neural_style .model/.pth")
    ap_.add_argument("--content", required=True, nargs="+", help="content image name(s) or path(s)")
    ap_.add_argument("--out", required=True, help="output image path (one content) or folder")
    ap_.add_argument("--size", type=int, help="scale each content so its long side is N px")
    ap_.add_argument("--crop", action="store_true", help="crop the output to the content's size (sides that are "
                     "not multiples of 4 come out rounded up, as in the sources)")
    ap_.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap_.set_defaults(func=_apply)

    web = sub.add_parser("app", help="the web app (Streamlit, on 127.0.0.1): fast networks, Gatys, side by side")
    web.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    web.add_argument("--models", help="folder of fast-network checkpoints (default: runs/ and ~/.cache/nstbench/models)")
    web.set_defaults(func=_app)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NstbenchError as e:
        print(f"nstbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nstbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
