"""Guided backpropagation: the rule itself, and its written-out form against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from cellprop.training.guided import (  # noqa: E402
    GuidedBackprop,
    _maxpool_backward,
    _upsample_backward,
    fold_batchnorm,
    guided_gradient,
    plain_gradient,
)
from cellprop.training.unet import UNet  # noqa: E402

torch.set_num_threads(2)


def _tiny_network() -> nn.Sequential:
    """One input pixel -> 3 hidden units (1x1 conv) -> ReLU -> 1 output (1x1 conv)."""
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -1.0, 2.0]).reshape(3, 1, 1, 1))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
        net[2].weight.copy_(torch.tensor([2.0, 5.0, -3.0]).reshape(1, 3, 1, 1))
        net[2].bias.zero_()
    return net


def test_guided_rule_on_a_tiny_network_computed_by_hand():
    # x = 1: hidden pre-activations f = (1, -1, 1); the gradient arriving at the ReLU outputs is
    # the second layer's weights g = (2, 5, -3).
    # Plain ReLU keeps f > 0:            (2, 0, -3) -> dx = 1*2 + 2*(-3) = -4.
    # Guided keeps f > 0 and g > 0:      (2, 0,  0) -> dx = 1*2          =  2.
    net = _tiny_network()
    x = torch.ones(1, 1, 1, 1)
    seed = torch.ones(1, 1, 1, 1)
    assert guided_gradient(net, x, seed).item() == pytest.approx(2.0)
    assert plain_gradient(net, x, seed).item() == pytest.approx(-4.0)
    # A negative seed flips every g: the guided rule then blocks all but the unit whose weight
    # was negative: g = (-2, -5, 3) -> keep (0, 0, 3) -> dx = 2 * 3 = 6 (times |seed| = 0.5).
    assert guided_gradient(net, x, -0.5 * seed).item() == pytest.approx(3.0)


def test_guided_gradient_leaves_the_model_untouched():
    net = _tiny_network()
    guided_gradient(net, torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    assert isinstance(net[1], nn.ReLU)


def _randomised_unet(base: int, depth: int, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    model = UNet(base, depth)
    # Non-trivial BatchNorm statistics, so that folding them into the convs is really tested.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def test_fold_batchnorm_matches_conv_then_batchnorm():
    model = _randomised_unet(4, 1)
    block = model.inc
    x = torch.randn(2, 1, 16, 16)
    weight, bias = fold_batchnorm(block.conv1, block.bn1)
    expected = block.bn1(block.conv1(x))
    got = F.conv2d(x, weight, bias, padding=1)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_written_out_backward_equals_autograd(depth):
    model = _randomised_unet(6, depth, seed=depth)
    stride = 2**depth
    x = torch.randn(3, 1, 5 * stride, 7 * stride)
    seeds = torch.zeros_like(x)
    seeds[0, 0, 2:9, 3:12] = 1.0
    seeds[1, 0, -8:, -9:] = 1.0
    seeds[2] = torch.rand_like(seeds[2])
    expected = guided_gradient(model, x, seeds)
    with torch.no_grad():
        got = GuidedBackprop(model)(x, seeds)
    assert expected.abs().max() > 0
    rel = (got - expected).norm() / expected.norm()
    assert rel < 1e-4
    # The guided rule really changes the answer.
    plain = plain_gradient(model, x, seeds)
    assert (plain - expected).norm() / expected.norm() > 0.1


def test_maxpool_backward_routes_to_the_first_maximum_like_torch():
    # Flat windows (ties) included: torch sends the gradient to the first maximum only.
    x = torch.tensor([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 3.0, 2.0]]]], requires_grad=True)
    pooled = F.max_pool2d(x, 2)
    grad = torch.tensor([[[[5.0, 7.0]]]])
    (expected,) = torch.autograd.grad(pooled, x, grad)
    got = _maxpool_backward(x.detach(), pooled.detach(), grad)
    assert torch.equal(got, expected)
    assert got.sum() == 12.0


def test_upsample_backward_is_the_adjoint_of_bilinear_upsampling():
    torch.manual_seed(0)
    coarse = torch.randn(2, 3, 5, 7, requires_grad=True)
    fine = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=True)
    grad = torch.randn_like(fine)
    (expected,) = torch.autograd.grad(fine, coarse, grad)
    got = _upsample_backward(coarse.detach(), grad)
    assert torch.allclose(got, expected, atol=1e-5)
    # <A x, g> == <x, A^T g>: the adjoint identity itself.
    assert torch.dot(fine.flatten(), grad.flatten()).item() == pytest.approx(
        torch.dot(coarse.flatten(), got.flatten()).item(), rel=1e-4
    )


def test_guided_backprop_keeps_the_input_shape_for_a_batch_of_one():
    model = _randomised_unet(4, 2)
    x = torch.from_numpy(np.linspace(0, 1, 16 * 20, dtype=np.float32).reshape(1, 1, 16, 20))
    seeds = torch.ones_like(x)
    with torch.no_grad():
        got = GuidedBackprop(model)(x, seeds)
    assert got.shape == x.shape
    assert torch.isfinite(got).all()
