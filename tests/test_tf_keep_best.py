"""Keep-best as the TensorFlow style-transfer tutorial (the IIT Bombay code, 001) does it.

Its loop: loss and gradients at the current image, TF Adam update, clip, then `if loss < best_loss:
best_loss = loss; best_img = init_image` -- the image *after* the update whose pre-update loss was the
lowest. The reference below is that loop written for this test (TF1 AdamOptimizer's update).
"""

import math

import pytest
import torch
from conftest import needs_assets

from nstbench.config.errors import NstbenchError
from nstbench.config.sources import IITB_VGG19
from nstbench.config.specs import OptimizerSpec
from nstbench.methods.gatys import RunOptions, initial_image, make_gatys_loss, optimize_image
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.nets.images import space_bounds


def reference_tf_keep_best(loss_fn, init, steps, lr, betas, eps, lo, hi):
    """(best_img, best_loss, losses) of the TF tutorial's loop."""
    b1, b2 = betas
    x = torch.max(torch.min(init.clone(), hi), lo)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    best_loss, best_img, losses = math.inf, None, []
    for i in range(steps):
        xv = x.clone().requires_grad_(True)
        loss = loss_fn(xv)["total"].sum()
        (g,) = torch.autograd.grad(loss, xv)
        t = i + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        x = torch.max(torch.min(x - lr_t * m / (v.sqrt() + eps), hi), lo)
        losses.append(loss.item())
        if loss.item() < best_loss:
            best_loss, best_img = loss.item(), x.clone()
    return best_img, best_loss, losses


def overshooting_quad(x):
    # lr 0.6 on a unit quadratic overshoots: the loss falls, then oscillates; the best is mid-run
    d = (x - 0.3).pow(2).flatten(1).sum(1)
    z = torch.zeros_like(d)
    return {"total": d, "content": d, "style": z, "tv": z}


def test_after_update_keeps_the_image_after_the_best_pre_update_loss():
    init = torch.linspace(-1, 1, 12).view(1, 3, 2, 2)
    lo, hi = torch.full((1, 3, 1, 1), -0.8), torch.full((1, 3, 1, 1), 0.9)
    spec = OptimizerSpec("adam_tf", lr=0.6, betas=(0.9, 0.999), eps=1e-3)
    ref_img, ref_best, ref_losses = reference_tf_keep_best(
        overshooting_quad, init, 12, spec.lr, spec.betas, spec.eps, lo, hi
    )
    k = ref_losses.index(ref_best)
    assert 0 < k < 11  # the fixture does what it says: the best loss is neither the first nor the last
    r = optimize_image(overshooting_quad, init, 12, spec, clamp=(lo, hi), keep_best=True, keep_best_as="after_update")
    assert [h["total"] for h in r.history] == pytest.approx(ref_losses, rel=1e-6)
    assert r.best_step == [k + 1]
    assert torch.allclose(r.image, ref_img, atol=1e-6)
    # the image the best loss was measured on is another one: "measured" returns that instead
    measured = optimize_image(overshooting_quad, init, 12, spec, clamp=(lo, hi), keep_best=True)
    assert not torch.allclose(measured.image, ref_img, atol=1e-3)
    assert overshooting_quad(measured.image)["total"].item() == pytest.approx(ref_best, rel=1e-6)


def test_after_update_refuses_lbfgs():
    with pytest.raises(NstbenchError, match="after_update"):
        optimize_image(
            overshooting_quad,
            torch.zeros(1, 3, 2, 2),
            3,
            OptimizerSpec("lbfgs"),
            keep_best=True,
            keep_best_as="after_update",
        )


@needs_assets
def test_iitb_preset_returns_the_tf_tutorials_best_image(vgg19_random):
    preset = override(IITB_VGG19, dict(steps=6, size=56, init="noise"))
    assert preset.keep_best and preset.keep_best_as == "after_update"
    content, style = load_pair(preset, "chelsea", "starry_night")
    result = run_preset(preset, content, style, vgg19_random, run=RunOptions(progress_every=0))
    loss_fn = make_gatys_loss(vgg19_random, content, style, preset.loss, preset.space)
    x0 = initial_image(preset.init, content, style, preset.space)
    lo, hi = space_bounds(preset.space, x0)
    o = preset.optimizer
    ref_img, ref_best, ref_losses = reference_tf_keep_best(loss_fn, x0, preset.steps, o.lr, o.betas, o.eps, lo, hi)
    assert [h["total"] for h in result.history] == pytest.approx(ref_losses, rel=1e-5)
    assert result.history[result.best_step[0] - 1]["total"] == pytest.approx(ref_best, rel=1e-5)
    assert torch.allclose(result.image, ref_img, atol=1e-3)  # caffe space: pixels are 0..255 minus the mean
