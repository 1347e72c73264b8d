"""Issue 23, "every number says what ran", for the figures: each one is stamped with its weights and
profile (drawn and in the PNG's text chunk), and its axes show what the data supports. The
experiments' own plotting functions run here on small made-up data, without any optimisation."""

import itertools

import pytest
import torch
from conftest import load_script

from nstbench.harness.experiment import pyplot
from nstbench.harness.figures import STAMP_KEY, read_stamp, save_figure, stamp_text, weights_stamp


class Figures:
    """The part of an Experiment the plotting functions use: figures are kept open for the test."""

    def __init__(self):
        self.figs = {}

    def figure(self, fig, name):
        fig.canvas.draw()
        self.figs[name] = fig

    def panels(self, *args, **kwargs):
        pass


def test_save_figure_draws_the_stamp_and_writes_it_into_the_png(tmp_path):
    random, imagenet = {"kind": "random", "seed": 0}, {"kind": "imagenet", "family": "keras"}
    assert weights_stamp({"vgg19": random, "vgg16": random}) == "random (seed 0)"
    assert weights_stamp({"vgg19": imagenet, "vgg16": random}) == "ImageNet keras (vgg19), random (seed 0) (vgg16)"
    stamp = stamp_text("random (seed 0)", "cpu")
    assert stamp == "weights: random (seed 0) · profile: cpu"
    fig, ax = pyplot().subplots()
    ax.plot([1, 2], [3, 4])
    save_figure(fig, tmp_path / "f.png", stamp)
    assert stamp in [t.get_text() for t in fig.texts]
    assert read_stamp(tmp_path / "f.png") == stamp and STAMP_KEY == "nstbench-stamp"


def test_e4_content_loss_axis_stops_at_the_data():
    """From the content the content loss is exactly 0 at first: the axis went down to 1e-31."""
    e4, figs = load_script("e4_init"), Figures()
    curves = [
        {"init": init, "iteration": k, "content": 0.0 if (init == "content" and k < 3) else v * k,
         "style": 1e-6 * k, "total": 1.0 + k}
        for init, v in (("content", 1e-5), ("noise", 0.3), ("style", 0.05))
        for k in range(1, 21)
    ]  # fmt: skip
    e4.figures(figs, None, None, {}, [], curves)
    content = figs.figs["loss_curves.png"].axes[0]
    smallest = min(c["content"] for c in curves if c["content"] > 0)  # 2e-5
    assert content.get_yscale() == "log" and smallest / 2 <= content.get_ylim()[0] <= smallest
    pyplot().close("all")


def test_e5_fig7_draws_a_tiny_relative_change_on_a_linear_axis():
    """VGG19 on random weights: a 2e-4 relative change, drawn on a log axis as a fall across the panel."""
    e5, figs = load_script("e5_vgg_resnet"), Figures()
    vgg = [0.0615 * (1 - 2e-4 * k / 10) for k in range(11)]
    resnet = [6.8e5 / (1 + 50 * k) for k in range(11)]  # falls 500x: a log axis is what it needs
    curves = [
        {"net": net, "n_style_layers": 5, "iteration": k, "total_loss": v}
        for net, values in zip(e5.NETS, (vgg, resnet))
        for k, v in enumerate(values)
    ]
    rows = []  # fig7 comes first and reads only the curves
    fig = _fig7_only(e5, figs, rows, curves)
    vgg_ax, resnet_ax = fig.axes[:2]
    assert vgg_ax.get_yscale() == "linear" and resnet_ax.get_yscale() == "log"
    assert any("(max - min) / max = 0.0002" in t.get_text() for t in vgg_ax.texts)
    pyplot().close("all")


def _fig7_only(e5, figs, rows, curves):
    """e5.figures draws fig7 first, then table1 and the image grid: stop after fig7."""

    class Stop(Exception):
        pass

    def figure(fig, name):
        Figures.figure(figs, fig, name)
        raise Stop

    figs.figure = figure
    with pytest.raises(Stop):
        e5.figures(figs, None, None, {}, rows, curves)
    return figs.figs["fig7.png"]


def test_e10_fig5_y_label_fits_its_axis():
    e10, figs = load_script("e10_fast_vs_optimisation"), Figures()
    curve = [{"iteration": k, "best_objective": 1e4 / k} for k in range(1, 501)]
    e10.figure_fig5(figs, curve, 50.0)
    fig = figs.figs["fig5.png"]
    ax, renderer = fig.axes[0], fig.canvas.get_renderer()
    assert ax.yaxis.label.get_window_extent(renderer).height <= ax.get_window_extent(renderer).height
    pyplot().close("all")


def test_e1_radial_spectrum_tick_labels_do_not_overlap():
    """At smoke sizes the frequencies span about a decade, where the default log labels collided."""
    e1, figs = load_script("e1_tv_gamma"), Figures()
    n, f = len(e1.GAMMAS), torch.linspace(0, 0.5, 24)
    power = torch.stack([(f + 0.02) ** -2 * (1 + i) for i in range(n)])
    rows = [{"ssim_content": 0.5} for _ in e1.GAMMAS]
    curves = [{"gamma": g, "step": k, "total": 1.0 / k} for g in e1.GAMMAS for k in range(1, 4)]
    e1.figures(figs, torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.rand(n, 3, 16, 16), f, power,
               power[:1], rows, curves)  # fmt: skip
    fig = figs.figs["radial_spectrum.png"]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = ax.get_xticklabels() + ax.get_xticklabels(minor=True)
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    assert len(boxes) >= 3  # the axis is labelled
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    pyplot().close("all")
