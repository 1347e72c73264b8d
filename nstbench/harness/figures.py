"""What every experiment figure says about itself, and axes that show only what the data supports.

A figure outlives its folder: it is pasted into reports and slides, where the manifest beside it is
gone. So each one carries a stamp (which weights, which profile) drawn under it and written into
the PNG's text chunk (key STAMP_KEY), where a test or a reader checks it without looking at pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

STAMP_KEY = "nstbench-stamp"  # the PNG text chunk holding the stamp
# a log axis only for data spanning at least this ratio: below it a log axis draws a change of a
# fraction of a percent as a fall across the whole panel (E5's VGG19 curve: 2e-4 relative)
LOG_MIN_RATIO = 10.0
# float32 losses keep about 7 significant digits: a value under 1e-6 of a curve's largest is at the
# level of its rounding (or an exact 0, as the content loss at the content init), not a trend
LOG_DYNAMIC_RANGE = 1e6


def weights_stamp(records: Mapping[str, dict]) -> str:
    """'random (seed 0)', or per kind of weights the backbones it loaded, e.g.
    'ImageNet keras (vgg19, keras_resnet50), ImageNet torchvision (vgg16)' (arch -> weights record)."""
    by_label: dict[str, list[str]] = {}
    for arch, w in records.items():
        if w.get("kind") == "random":
            label = f"random (seed {w.get('seed', 0)})"
        elif w.get("kind") == "imagenet":
            label = f"ImageNet {w.get('family', '?')}"
        elif w.get("kind") == "standin":  # never to be read as a source's weights (weights.py, HED_LABEL)
            label = f"stand-in {w.get('family', '?')}, not the source's weights"
        else:
            label = f"file {w.get('file_name') or Path(str(w.get('file', '?'))).name}"
        by_label.setdefault(label, []).append(arch)
    if len(by_label) == 1:
        return next(iter(by_label))
    return ", ".join(f"{label} ({', '.join(archs)})" for label, archs in by_label.items())


def stamp_text(weights: str, profile: str) -> str:
    return f"weights: {weights} · profile: {profile}"


def save_figure(fig, path: str | Path, stamp: str, dpi: int = 120) -> Path:
    """Draw `stamp` under the figure, save it as PNG with the stamp in its text chunk, close it."""
    import matplotlib.pyplot as plt

    # under everything drawn (tick labels and axis labels may reach below the figure's own area), at
    # its left edge; bbox_inches="tight" then grows the image to hold it
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    fig.text(box.x0 / fig.get_figwidth(), box.y0 / fig.get_figheight(), stamp, fontsize=7, color="0.3", va="top")
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={STAMP_KEY: stamp})
    plt.close(fig)
    return path


def read_stamp(path: str | Path) -> str | None:
    """The stamp save_figure wrote into a PNG, or None."""
    from PIL import Image

    with Image.open(path) as im:
        return im.info.get(STAMP_KEY)


def loss_axis(ax, values: Iterable[float]) -> float | None:
    """The y axis a positive quantity (a loss) supports: log when its values span LOG_MIN_RATIO
    or more, limited below to what is not rounding (log_floor); linear otherwise, with the relative
    range written in the panel. Call after plotting, with the values plotted (zeros included: they
    run off the bottom edge). Returns the log axis's bottom, None for a linear axis."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    top, floor = float(v.max()), log_floor(v)
    if top > 0 and top / floor >= LOG_MIN_RATIO:
        ax.set_yscale("log")
        bottom = floor / 2  # half a step below the smallest meaningful value: it stays visible
        ax.set_ylim(bottom=bottom)
        if (v < floor).any():  # zeros and rounding-level values sit on the bottom edge: say so
            ax.text(0.99, 0.01, f"log axis from {bottom:.2g}: smaller values (zeros) run off it", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=6, color="0.3")  # fmt: skip
        return bottom
    ax.set_yscale("linear")
    lo = float(v.min())
    spread = (top - lo) / abs(top) if top else 0.0
    ax.text(0.99, 0.99, f"linear axis: (max - min) / max = {spread:.2g}", transform=ax.transAxes,
            ha="right", va="top", fontsize=6, color="0.3")  # fmt: skip
    return None


def log_floor(values: Iterable[float]) -> float:
    """The smallest value a log axis should show: the smallest positive value at least
    1 / LOG_DYNAMIC_RANGE of the largest (below that: rounding, or an exact 0)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    top = float(v.max()) if v.size else 1.0
    if top <= 0:
        return 1.0
    meaningful = v[v >= top / LOG_DYNAMIC_RANGE]
    return float(meaningful.min())


def readable_log_x(ax) -> None:
    """A log x axis spanning about a decade labels its minor ticks as crowded '2x10^-2' strings
    that overlap: label 1-2-5 ticks as plain numbers instead."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
