"""Exact and analytic checks of nstbench.methods.metrics (tiny images; runs in a few seconds on CPU)."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from nstbench.methods import metrics
from nstbench.nets.backbones import Backbone


def _rand(b=2, h=32, w=40, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)


def _const(rgb, h=16, w=16) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, h, w).clone()


# --- SSIM / PSNR ------------------------------------------------------------------------------


def test_ssim_identity_and_shape():
    x = _rand()
    s = metrics.ssim(x, x)
    assert s.shape == (2,) and s.dtype == torch.float64
    assert torch.allclose(s, torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    # sigma = 0 everywhere, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) exactly
    a, b = 0.3, 0.7
    c1 = (0.01) ** 2
    expect = (2 * a * b + c1) / (a * a + b * b + c1)
    got = metrics.ssim(_const([a] * 3), _const([b] * 3))
    assert got.item() == pytest.approx(expect, rel=1e-12)


def test_ssim_matches_an_independent_scipy_implementation():
    # skimage's construction: Gaussian filter (sigma 1.5, truncate 3.5 -> 11 taps), then crop the
    # 5-pixel border, i.e. the valid window positions; population statistics; mean over RGB.
    x = _rand(1, 24, 28, seed=1)
    y = (x + 0.1 * _rand(1, 24, 28, seed=2)).clamp(0, 1)
    a, b = x[0].numpy(), y[0].numpy()
    f = lambda z: gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]  # noqa: E731
    vals = []
    for c in range(3):
        mx, my = f(a[c]), f(b[c])
        sxx, syy, sxy = f(a[c] ** 2) - mx**2, f(b[c] ** 2) - my**2, f(a[c] * b[c]) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        vals.append((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean())
    assert metrics.ssim(x, y).item() == pytest.approx(float(np.mean(vals)), abs=1e-10)


def test_ssim_broadcasts_a_batch1_reference_and_rejects_tiny_images():
    x = _rand(3)
    ref = x[:1]
    s = metrics.ssim(x, ref)
    assert s[0].item() == pytest.approx(1.0) and (s[1:] < 1).all()
    with pytest.raises(ValueError):
        metrics.ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_psnr_of_known_mse():
    x = _const([0.5] * 3)
    y = x + 0.1  # MSE = 0.01 -> PSNR = 20 dB
    assert metrics.psnr(x, y).item() == pytest.approx(20.0, abs=1e-9)
    assert math.isinf(metrics.psnr(x, x).item())


# --- spectra ---------------------------------------------------------------------------------


def test_luma_is_bt601():
    y = metrics.luma(_const([1.0, 0.0, 0.0], 2, 2))
    assert torch.allclose(y, torch.full((1, 2, 2), 0.299, dtype=torch.float64))


def test_constant_image_has_all_energy_at_dc():
    x = _const([0.4, 0.5, 0.6])
    assert metrics.high_frequency_fraction(x).item() == 0.0
    amp = metrics.fft_log_amplitude(x)[0]
    # centred: DC at (H//2, W//2) = log(1 + H*W*Y); everything else 0
    y = 0.299 * 0.4 + 0.587 * 0.5 + 0.114 * 0.6
    assert amp[8, 8].item() == pytest.approx(math.log1p(16 * 16 * y))
    amp[8, 8] = 0
    assert amp.abs().max().item() < 1e-12


def test_checkerboard_is_all_high_frequency():
    i, j = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    x = ((i + j) % 2).to(torch.float64).expand(1, 3, 16, 16)
    assert metrics.high_frequency_fraction(x).item() == pytest.approx(1.0, abs=1e-12)


def test_hf_fraction_radius_splits_two_sinusoids():
    j = torch.arange(64, dtype=torch.float64)
    low = 0.2 * torch.cos(2 * math.pi * (4 / 64) * j)  # 0.0625 cycles/px
    high = 0.1 * torch.cos(2 * math.pi * (24 / 64) * j)  # 0.375 cycles/px
    x = (0.5 + low + high).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    # energy ratio of the two cosines: 0.1^2 / (0.2^2 + 0.1^2) = 0.2
    assert metrics.high_frequency_fraction(x, radius=0.25).item() == pytest.approx(0.2, abs=1e-12)
    assert metrics.high_frequency_fraction(x, radius=0.05).item() == pytest.approx(1.0, abs=1e-12)


def test_radial_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    j = torch.arange(64, dtype=torch.float64)
    x = (0.5 + 0.4 * torch.cos(2 * math.pi * (8 / 64) * j)).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    freqs, power = metrics.radial_spectrum(x)
    assert freqs.shape == (33,) and power.shape == (1, 33)
    assert freqs[0].item() == 0.0 and freqs[-1].item() == pytest.approx(0.5)
    assert freqs[1 + power[0, 1:].argmax()].item() == pytest.approx(0.125)
    # DC bin holds mean(Y)^2 alone
    assert power[0, 0].item() == pytest.approx(0.5**2)


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]], dtype=torch.float64).expand(1, 3, 2, 2)
    # per channel: vertical |2-0| + |4-1| = 5, horizontal |1-0| + |4-2| = 3 -> 8; 3 channels / 4 px
    assert metrics.total_variation(x).item() == pytest.approx(3 * 8 / 4)


# --- colour ----------------------------------------------------------------------------------


def test_lab_reference_colours():
    white = metrics.srgb_to_lab(_const([1.0, 1.0, 1.0], 1, 1)).flatten()
    assert white.tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-9)
    black = metrics.srgb_to_lab(_const([0.0, 0.0, 0.0], 1, 1)).flatten()
    assert black.tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    red = metrics.srgb_to_lab(_const([1.0, 0.0, 0.0], 1, 1)).flatten()
    assert red.tolist() == pytest.approx([53.2408, 80.0925, 67.2032], abs=1e-3)
    grey = metrics.srgb_to_lab(_const([0.5, 0.5, 0.5], 1, 1)).flatten()  # sRGB 0.5 -> L* 53.389
    assert grey.tolist() == pytest.approx([53.3890, 0.0, 0.0], abs=1e-3)


def test_colour_artifact_index_zero_for_identity_and_grows_with_chroma_shift():
    x = _rand(1, 24, 24)
    assert metrics.colour_artifact_index(x, x).item() == 0.0
    shifts = [
        metrics.colour_artifact_index((x + torch.tensor([d, 0, -d]).view(1, 3, 1, 1)).clamp(0, 1), x).item()
        for d in (0.02, 0.05, 0.1)
    ]
    assert 0 < shifts[0] < shifts[1] < shifts[2]


def test_colour_artifact_index_of_flat_colours_is_their_ab_distance():
    # flat images survive the low-pass unchanged: the index is |(a, b)| of red vs white
    got = metrics.colour_artifact_index(_const([1.0, 0.0, 0.0]), _const([1.0, 1.0, 1.0]))
    assert got.item() == pytest.approx(math.hypot(80.0925, 67.2032), abs=1e-3)


def test_colour_artifact_index_ignores_lightness():
    x = _const([0.5, 0.5, 0.5])
    assert metrics.colour_artifact_index(x, _const([0.8, 0.8, 0.8])).item() == pytest.approx(0.0, abs=1e-9)


# --- style distance --------------------------------------------------------------------------


class _Tiny(nn.Module):
    """Two-layer stand-in for a backbone extractor (the real ones take seconds to build)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def extract(self, x, layers):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a))
        return {n: {"a": a, "b": b}[n] for n in layers}


def test_style_distance_zero_for_identity_and_positive_otherwise():
    bb = Backbone(arch="tiny", extractor=_Tiny().eval(), weights={"kind": "random"})
    x = _rand(2, 16, 16).float()
    assert torch.equal(metrics.style_distance(x, x, bb, ["a", "b"]), torch.zeros(2, dtype=torch.float64))
    # against a batch-1 style image (the usual call): float32 convolutions of a batch of 2 and of 1
    # may round differently, hence approx
    d = metrics.style_distance(x, x[:1], bb, ["a", "b"])
    assert d.shape == (2,) and d[0].item() == pytest.approx(0.0, abs=1e-5) and d[1].item() > 0.01
    # a style image of another size is fine (Grams are C x C)
    assert metrics.style_distance(x, _rand(1, 24, 20).float(), bb, ["b"]).shape == (2,)
    with pytest.raises(ValueError):
        metrics.style_distance(x, x, bb, [])


# --- LPIPS -----------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("metrics tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_lpips_without_cached_weights_is_none_and_offline(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ok, reason = metrics.lpips_status()
    assert not ok and "alexnet" in reason.lower() and str(tmp_path) in reason
    assert metrics.lpips_distance(_rand(1, 16, 16), _rand(1, 16, 16, seed=3)) is None


def test_lpips_loads_cached_alexnet_features(tmp_path, monkeypatch, no_network):
    # A features-only AlexNet checkpoint under torchvision's file name (random values; the hash
    # check is bypassed because this file is not the real one).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(metrics, "verified", lambda path, prefix: True)
    ckpt, _ = metrics._alexnet_checkpoint()
    ckpt.parent.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    state = {}
    for i, s in shapes.items():
        state[f"features.{i}.weight"] = torch.randn(*s, generator=g) * 0.05
        state[f"features.{i}.bias"] = torch.randn(s[0], generator=g) * 0.05
    torch.save(state, ckpt)
    metrics._lpips_model.cache_clear()
    try:
        assert metrics.lpips_status()[0]
        model = metrics._lpips_model()
        assert torch.equal(getattr(model.net.slice1, "0").weight, state["features.0.weight"])
        assert torch.equal(getattr(model.net.slice5, "10").bias, state["features.10.bias"])
        x, y = _rand(2, 32, 32), _rand(1, 32, 32, seed=5)
        assert torch.allclose(metrics.lpips_distance(x, x), torch.zeros(2, dtype=torch.float64))
        d = metrics.lpips_distance(x, y)
        assert d.shape == (2,) and (d > 0).all()
    finally:
        metrics._lpips_model.cache_clear()


def test_style_distance_fn_computes_the_style_targets_once_and_matches_style_distance(monkeypatch):
    from nstbench.nets.weights import load_backbone

    bb = load_backbone("vgg16", "random", seed=0)
    calls = []
    real = bb.extract
    monkeypatch.setattr(bb, "extract", lambda x, layers: calls.append(x.shape) or real(x, layers))
    style, xs = _rand(1, 24, 32, seed=1), [_rand(2, 16, 16, seed=s) for s in (2, 3)]
    judge = metrics.style_distance_fn(style, bb, ["relu1_2", "relu2_2"])
    assert len(calls) == 1  # the style image, once
    got = [judge(x) for x in xs]
    assert len(calls) == 3  # then one forward per measured batch, none for the style
    for x, d in zip(xs, got):
        assert torch.equal(d, metrics.style_distance(x, style, bb, ["relu1_2", "relu2_2"]))
