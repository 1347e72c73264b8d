"""The README's first figure: every Gatys preset on its source's own images, and a fast network.

    python docs/gallery.py [--weights hed] [--size 192] [--out docs]    (make gallery)

Each Gatys preset runs as its source did (loss, optimiser, pixel space, resize rule, init) but at a
small working size and for a capped number of steps (--steps-adam / --steps-lbfgs: the presets'
own 300-2000 steps at 400-512 px take hours on a CPU); the fast network is the HUST app's mosaic
(`hust` fast preset, the cpu training profile, as `make app-models` trains it into runs/hust-mosaic,
reused when it is there). Writes gallery.png (a grid: content, style, one output per preset) and
gallery.csv (per panel: preset, images, working size, steps, seconds, SSIM to the content, the
weights that ran). The figure carries the weights' stamp: on the stand-in it is not any source's
result, and presets of the torchvision family (nyu, upes) run with a content/style balance tuned for
other activation scales (README, "The stand-in").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nstbench
from nstbench.config.presets import PRESETS, get_preset
from nstbench.harness.figures import save_figure
from nstbench.methods.gatys_run import load_pair, override
from nstbench.methods.metrics import ssim
from nstbench.nets.images import space_to_unit
from nstbench.nets.weights import weights_label

# preset -> its source's own content and style (the images its experiment uses; EXPERIMENTS.md)
PAIRS = {
    "hust": ("hust_cat", "hust_picasso"),  # HUST repository: cat.jpg, picasso.jpg (E1)
    "hust-code": ("hust_cat", "hust_picasso"),
    "nyu": ("chelsea", "starry_night"),  # E4's pair (the tutorial's own images are not published with hashes)
    "iitb-vgg19": ("golden_gate", "starry_night"),  # E5: the report's Starry Night; a bridge for its Sea Link
    "iitb-resnet50": ("golden_gate", "starry_night"),
    "upes": ("octopus", "hockney"),  # the UPES appendix's images (E7)
    "gatys2016": ("tubingen", "starry_night_gatys"),  # Gatys et al. Fig. 2/3, the official code's image
    "gatys2016-code": ("tubingen", "starry_night_gatys"),
}
FAST = ("hust", "mosaic", "chelsea")  # the HUST app's network: preset, style, a content


def _steps(preset_name: str, adam: int, lbfgs: int) -> int:
    p = get_preset(preset_name)
    return min(p.steps, lbfgs if p.optimizer.name == "lbfgs" else adam)


def gatys_panel(name: str, weights: str, size: int, steps: int) -> dict:
    content, style = PAIRS[name]
    started = time.time()
    r = nstbench.stylize(content, style, preset=name, steps=steps, size=size, weights=weights, progress_every=0)
    c, _ = load_pair(override(get_preset(name), dict(size=size)), content, style)
    c = space_to_unit(c, get_preset(name).space)
    return {
        "panel": name,
        "content": content,
        "style": style,
        "working_size_hw": "x".join(map(str, r.image.shape[-2:])),
        "steps": steps,
        "seconds": round(time.time() - started, 1),
        "ssim_content": round(float(ssim(r.image, c)), 4),
        "weights": weights_label(r.record["weights"]),
        "image": r.image,
    }


def fast_panel(weights: str, models: Path) -> dict:
    from nstbench.config.presets import TRAIN_PROFILES
    from nstbench.nets.transformer import load_transformer

    preset, style, content = FAST
    folder = models / f"{preset}-{style}"
    started = time.time()
    if not (folder / "transformer.pt").is_file():  # what `make app-models` trains for this style
        cpu = TRAIN_PROFILES["cpu"]  # 200 steps at 128 px on coco100, the preset's batch
        nstbench.train(style, folder, preset=preset, steps=cpu.steps, size=cpu.size, weights=weights, progress_every=20)
    y = nstbench.apply(folder / "transformer.pt", content, size=256)
    _, info = load_transformer(folder / "transformer.pt")
    return {
        "panel": f"fast {preset} ({style})",
        "content": content,
        "style": style,
        "working_size_hw": "x".join(map(str, y.shape[-2:])),
        "steps": info.get("step", ""),
        "seconds": round(time.time() - started, 1),
        "ssim_content": "",
        "weights": weights_label(info["weights"]) if info.get("weights") else "not recorded",
        "image": y,
    }


def draw(panels: list[dict], stamp: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nstbench.nets.images import to_pil

    cols = 5
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, panels):
        ax.imshow(to_pil(p["image"]))
        ssim_text = f", SSIM {p['ssim_content']:.2f}" if p["ssim_content"] != "" else ""
        # three short lines: one line of content + style + steps ran into the next panel's title
        ax.set_title(f"{p['panel']}\n{p['content']} + {p['style']}\n{p['steps']} steps{ssim_text}", fontsize=7)
    return save_figure(fig, out, stamp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--weights", default="hed", help="backbone weights (default hed: the stand-in)")
    ap.add_argument("--size", type=int, default=192, help="each preset's working size (its own resize rule)")
    ap.add_argument("--steps-adam", type=int, default=300, help="steps of the Adam presets (at most their own)")
    ap.add_argument("--steps-lbfgs", type=int, default=100, help="steps of the L-BFGS presets (at most their own)")
    ap.add_argument("--models", type=Path, default=Path("runs"), help="fast networks' folder (make app-models')")
    ap.add_argument("--out", type=Path, default=Path("docs"), help="folder for gallery.png and gallery.csv")
    ap.add_argument("--only", nargs="*", help="these presets only (a quick look)")
    args = ap.parse_args(argv)
    panels = []
    for name in args.only or list(PRESETS):
        steps = _steps(name, args.steps_adam, args.steps_lbfgs)
        print(f"[gallery] {name}: {steps} steps at size {args.size}", file=sys.stderr, flush=True)
        panels.append(gatys_panel(name, args.weights, args.size, steps))
    if not args.only:
        panels.append(fast_panel(args.weights, args.models))
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame([{k: v for k, v in p.items() if k != "image"} for p in panels]).to_csv(
        args.out / "gallery.csv", index=False
    )
    kinds = sorted({p["weights"] for p in panels})
    path = draw(panels, weights_stamp_line(kinds, args.size), args.out / "gallery.png")
    print(f"wrote {path} and {args.out / 'gallery.csv'} (weights: {'; '.join(kinds)})", file=sys.stderr)
    return 0


def weights_stamp_line(labels: list[str], size: int) -> str:
    return f"weights: {'; '.join(labels)} · size {size}"


if __name__ == "__main__":
    sys.exit(main())
