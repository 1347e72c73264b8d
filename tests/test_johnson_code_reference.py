"""`johnson2016-code` against plain re-implementations of jcjohnson/fast-neural-style's Lua modules.

Written for this test from train.lua and fast_neural_style/*.lua: the model of models.lua with
-padding_type reflect-start (c9 convs zero-padded, d convs stride 2 pad 1, residual blocks of
unpadded convs with the identity shaved by 2, full convolutions up, tanh * 150, and train.lua's
reflection padding of the input by (H - H_out) / 2), StyleLoss (nn.MSECriterion over the Gram
normalised by C H W, target expanded over the batch), ContentLoss (nn.MSECriterion) and the gradient
TotalVariation.lua adds (it reports no loss).
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nstbench.config.sources import FAST_JOHNSON2016 as JOHNSON2016
from nstbench.config.sources import FAST_JOHNSON2016_CODE as JOHNSON2016_CODE
from nstbench.config.variants import get_variant
from nstbench.methods.perceptual import PerceptualLoss
from nstbench.nets.images import imagenet_normalize
from nstbench.nets.losses import tv_loss
from nstbench.nets.transformer import build_transformer

pytestmark = pytest.mark.usefixtures("one_thread")


class Shave(nn.Module):
    def forward(self, x):
        return x[:, :, 2:-2, 2:-2]


class LuaResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
            nn.ReLU(),
            nn.Conv2d(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x):
        return self.branch(x) + Shave()(x)  # ConcatTable(conv_block, ShaveImage(2)) + CAddTable


def lua_model():
    """c9s1-32,d64,d128,R128 x5,u64,u32,c9s1-3 with instance norm; input and output in vgg-preprocessed units."""
    IN = lambda c: nn.InstanceNorm2d(c, affine=True)  # noqa: E731
    layers = [
        nn.ReflectionPad2d(40),  # train.lua's reflect-start padding for this architecture
        nn.Conv2d(3, 32, 9, 1, 4),
        IN(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        IN(64),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, 2, 1),
        IN(128),
        nn.ReLU(),
    ]
    layers += [LuaResBlock(128) for _ in range(5)]
    layers += [
        nn.ConvTranspose2d(128, 64, 3, 2, 1, 1),
        IN(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, 2, 1, 1),
        IN(32),
        nn.ReLU(),
        nn.Conv2d(32, 3, 9, 1, 4),
        nn.Tanh(),
    ]
    return nn.Sequential(*layers)


def test_network_is_the_lua_model():
    ours = build_transformer(get_variant("johnson2016-code"), seed=4).eval()
    ref = lua_model().eval()
    ps_ours, ps_ref = list(ours.parameters()), list(ref.parameters())
    assert [p.shape for p in ps_ours] == [p.shape for p in ps_ref]
    with torch.no_grad():
        for a, b in zip(ps_ours, ps_ref):
            b.copy_(a + 0.1 * torch.randn_like(a) if a.dim() == 1 else a)  # non-trivial norm affine parameters
            a.copy_(b)
        rgb = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
        # preprocess.vgg: RGB -> BGR, * 255, minus vgg_mean
        mean = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
        x = rgb.flip(1) * 255 - mean
        expected = 150 * ref(x)  # nn.MulConstant(tanh_constant): preprocessed units
        got_raw = ours(x) - mean  # nstbench's raw output adds the mean back (0..255 BGR)
        got_unit = ours.stylize_unit(rgb)
    assert got_raw.shape == x.shape  # the reflect-start padding keeps the size
    torch.testing.assert_close(got_raw, expected, rtol=1e-4, atol=1e-3)
    # preprocess.vgg's deprocess: + mean, / 255, BGR -> RGB
    torch.testing.assert_close(got_unit, ((expected + mean) / 255).flip(1), rtol=1e-4, atol=1e-5)


def lua_tv_grad(y, strength):
    """TotalVariation.lua updateGradInput, without the upstream gradient."""
    g = torch.zeros_like(y)
    x_diff = y[:, :, :-1, :-1] - y[:, :, :-1, 1:]
    y_diff = y[:, :, :-1, :-1] - y[:, :, 1:, :-1]
    g[:, :, :-1, :-1] += x_diff + y_diff
    g[:, :, :-1, 1:] -= x_diff
    g[:, :, 1:, :-1] -= y_diff
    return strength * g


def test_losses_are_the_lua_criteria(vgg16_random):
    spec = JOHNSON2016_CODE.loss
    gen = torch.Generator().manual_seed(1)
    style = torch.rand(1, 3, 40, 48, generator=gen)
    x = torch.rand(2, 3, 32, 32, generator=gen)
    y255 = (torch.rand(2, 3, 32, 32, generator=gen) * 255).requires_grad_(True)
    crit = PerceptualLoss(vgg16_random, style, spec, JOHNSON2016_CODE.tv_batch)
    terms = crit(y255 / 255.0, x)
    terms["total"].backward()

    # the reference: MSECriterion means over every element of the batch, Gram / (C H W)
    layers = [n for n, _ in spec.style_layers] + ["relu3_3"]
    fy = vgg16_random.extract(imagenet_normalize(y255 / 255.0), layers)
    with torch.no_grad():
        fx = vgg16_random.extract(imagenet_normalize(x), ["relu3_3"])
        fs = vgg16_random.extract(imagenet_normalize(style), layers)

    def gram(f):
        n, c, h, w = f.shape
        flat = f.reshape(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)

    style_loss = sum(5.0 * F.mse_loss(gram(fy[n]), gram(fs[n]).expand(2, -1, -1)) for n, _ in spec.style_layers)
    content_loss = 1.0 * F.mse_loss(fy["relu3_3"], fx["relu3_3"])
    assert (spec.beta * terms["style"]).item() == pytest.approx(style_loss.item(), rel=1e-5)
    assert (spec.alpha * terms["content"]).item() == pytest.approx(content_loss.item(), rel=1e-5)
    (ref_grad,) = torch.autograd.grad(style_loss + content_loss, y255)
    ref_grad = ref_grad + lua_tv_grad(y255.detach(), 1e-6)
    torch.testing.assert_close(y255.grad, ref_grad, rtol=1e-4, atol=1e-9)
    # the paper preset's TV (every neighbour pair, no 1/2) has another gradient
    assert not torch.allclose(lua_tv_grad(y255.detach(), 1e-6), _paper_tv_grad(y255.detach()), rtol=1e-2)


def _paper_tv_grad(y):
    y = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(1e-6 * tv_loss(y, JOHNSON2016.loss.tv_mode).sum(), y)
    return g


def test_paper_and_code_style_terms_agree_by_construction(vgg16_random):
    """johnson2016 restates the code's style weights for eq. 4: 5 / C^2 on the Frobenius sum equals 5 on the mean."""
    gen = torch.Generator().manual_seed(2)
    style = torch.rand(1, 3, 40, 48, generator=gen)
    x, y = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    paper = PerceptualLoss(vgg16_random, style, JOHNSON2016.loss)(y, x)
    code = PerceptualLoss(vgg16_random, style, JOHNSON2016_CODE.loss)(y, x)
    assert float(JOHNSON2016.loss.beta * paper["style"]) == pytest.approx(
        float(JOHNSON2016_CODE.loss.beta * code["style"]), rel=1e-5
    )
