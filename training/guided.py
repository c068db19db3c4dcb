"""Guided backpropagation through the U-Net (METHOD.md section 3), two ways.

* `guided_gradient` is the reference: torch autograd on a copy of the network whose ReLUs are
  replaced by `GuidedReLU`, an autograd.Function applying the guided rule
  ``g_in = 1[f > 0] * 1[g_out > 0] * g_out``.
* `GuidedBackprop` writes the same backward pass out as ordinary tensor operations, so that it
  can be exported to ONNX (which has no autograd) as ``guided.onnx``: BatchNorm folded into the
  convolutions, a conv's backward as a transposed conv with the same weights (computed as an
  ordinary conv with the kernels flipped and in/out channels swapped, the same numbers, because
  onnxruntime's Conv is about twice as fast as its ConvTranspose), max-pool's backward
  as an equality mask, bilinear upsampling's backward as its adjoint ``A_h^T g A_w``, the
  sigmoid's as ``y (1 - y) g`` and the concatenation's as a channel split.

Both take the gradient at the *sigmoid output* ``y`` (``grad_output``, e.g. 1 inside a cell's
region S_u and 0 elsewhere) and return the gradient at the input image, raw.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .unet import DoubleConv, UNet

__all__ = [
    "GuidedReLU",
    "GuidedReLUModule",
    "guided_gradient",
    "plain_gradient",
    "fold_batchnorm",
    "GuidedBackprop",
]


class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward keeps only positive gradients at positive activations."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x > 0).to(grad.dtype) * (grad > 0).to(grad.dtype)


class GuidedReLUModule(nn.Module):
    """`GuidedReLU` as a module, to swap for ``nn.ReLU`` in a network copy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return GuidedReLU.apply(x)


def _with_guided_relus(model: nn.Module) -> nn.Module:
    guided = copy.deepcopy(model).eval()
    for module in list(guided.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, GuidedReLUModule())
    return guided


def _input_gradient(model: nn.Module, image: torch.Tensor, grad_output: torch.Tensor):
    image = image.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        output = model(image)
        (grad,) = torch.autograd.grad(output, image, grad_output)
    return grad


def guided_gradient(
    model: nn.Module, image: torch.Tensor, grad_output: torch.Tensor
) -> torch.Tensor:
    """Reference guided backpropagation by torch autograd.

    Parameters
    ----------
    model : nn.Module
        The network (used in eval mode, on a copy; the original is untouched).
    image : Tensor [B, 1, H, W]
        Normalised input.
    grad_output : Tensor [B, 1, H, W]
        Gradient at the output likelihood (one cell's seed per batch item).

    Returns
    -------
    Tensor [B, 1, H, W]
        Guided gradient at the input.
    """
    return _input_gradient(_with_guided_relus(model), image, grad_output)


def plain_gradient(model: nn.Module, image: torch.Tensor, grad_output: torch.Tensor):
    """Ordinary gradient (no guided rule), to show that the guided rule changes the answer."""
    return _input_gradient(copy.deepcopy(model).eval(), image, grad_output)


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the single conv equal to ``bn(conv(x))`` in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale[:, None, None, None]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    bias = (bias - bn.running_mean) * scale + bn.bias
    return weight.detach().clone(), bias.detach().clone()


class _FoldedDoubleConv(nn.Module):
    """A `DoubleConv` with BatchNorm folded in, giving its forward and guided backward."""

    def __init__(self, block: DoubleConv):
        super().__init__()
        w1, b1 = fold_batchnorm(block.conv1, block.bn1)
        w2, b2 = fold_batchnorm(block.conv2, block.bn2)
        self.register_buffer("w1", w1)
        self.register_buffer("b1", b1)
        self.register_buffer("w2", w2)
        self.register_buffer("b2", b2)
        self.register_buffer("w1_adjoint", _adjoint_kernel(w1))
        self.register_buffer("w2_adjoint", _adjoint_kernel(w2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both ReLU outputs: the second is the block's output, the first is kept for backward."""
        a1 = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        a2 = F.relu(F.conv2d(a1, self.w2, self.b2, padding=1))
        return a1, a2

    def backward(self, a1: torch.Tensor, a2: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Guided gradient at the block's input from the gradient at its output."""
        grad = _guided_relu_backward(a2, grad)
        grad = F.conv2d(grad, self.w2_adjoint, padding=1)
        grad = _guided_relu_backward(a1, grad)
        return F.conv2d(grad, self.w1_adjoint, padding=1)


def _adjoint_kernel(weight: torch.Tensor) -> torch.Tensor:
    """Kernel of the conv equal to ``conv_transpose2d(., weight)`` (stride 1, 'same' padding)."""
    return weight.transpose(0, 1).flip(2, 3).contiguous()


def _guided_relu_backward(activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    # 1[f > 0] * 1[g > 0] * g = relu(g) * sign(a): the recorded ReLU output a is >= 0, so its
    # sign is the 0/1 mask of f > 0; two cheap ops instead of comparisons, casts and products.
    return F.relu(grad) * torch.sign(activation)


def _maxpool_backward(x: torch.Tensor, pooled: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Route the gradient of a 2x2/2 max-pool to the position of each window's maximum.

    Written with strided slices, equality masks and a depth-to-space shuffle (no MaxUnpool, which
    does not trace with dynamic shapes). On ties the first position in row-major order wins, as
    in torch's own max-pool, so flat regions agree with autograd exactly.
    """
    remaining = torch.ones_like(pooled)
    parts = []
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        hit = (x[:, :, i::2, j::2] == pooled).to(grad.dtype) * remaining
        remaining = remaining - hit
        parts.append(hit * grad)
    # Channel c * 4 + (2 i + j) of the stack lands at (2 h + i, 2 w + j) after the shuffle.
    stacked = torch.stack(parts, dim=2).flatten(1, 2)
    return F.pixel_shuffle(stacked, 2)


def _interpolation_matrix(like_in: torch.Tensor, like_out: torch.Tensor) -> torch.Tensor:
    """Matrix A [n_out, n_in] of 1-D linear interpolation with ``align_corners=True``.

    ``like_in``/``like_out`` are 1-D tensors of the input/output lengths; the sizes are taken from
    them with tensor operations (cumsum of ones) so that ONNX keeps them dynamic. Row j holds the
    hat function ``max(0, 1 - |s_j - i|)`` at source position ``s_j = j (n_in-1) / (n_out-1)``,
    which equals the two-tap weights (1 - t, t) of linear interpolation.
    """
    index_in = torch.cumsum(torch.ones_like(like_in), 0) - 1
    index_out = torch.cumsum(torch.ones_like(like_out), 0) - 1
    n_in = index_in[-1:] + 1
    n_out = index_out[-1:] + 1
    source = index_out * ((n_in - 1) / (n_out - 1))
    return F.relu(1 - torch.abs(source[:, None] - index_in[None, :]))


def _upsample_backward(coarse: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Adjoint of bilinear x2 upsampling (align_corners=True): ``A_h^T g A_w``."""
    a_h = _interpolation_matrix(coarse[0, 0, :, 0], grad[0, 0, :, 0])
    a_w = _interpolation_matrix(coarse[0, 0, 0, :], grad[0, 0, 0, :])
    return torch.matmul(torch.matmul(a_h.transpose(0, 1), grad), a_w)


class GuidedBackprop(nn.Module):
    """The U-Net's forward pass and its guided backward pass, in plain exportable ops.

    Parameters
    ----------
    unet : UNet
        A trained network; its weights are copied (BatchNorm folded, eval statistics).

    Notes
    -----
    ``forward(image, grad_output)`` returns the guided gradient at the input, equal to
    `guided_gradient` up to float rounding. Input sides must be multiples of ``unet.stride``.
    """

    def __init__(self, unet: UNet):
        super().__init__()
        unet = unet.eval()
        self.depth = unet.depth
        self.inc = _FoldedDoubleConv(unet.inc)
        self.down = nn.ModuleList(_FoldedDoubleConv(block) for block in unet.down)
        self.up = nn.ModuleList(_FoldedDoubleConv(block) for block in unet.up)
        self.skip_channels = [unet.widths[i] for i in reversed(range(unet.depth))]
        self.register_buffer("w_out", unet.outc.weight.detach().clone())
        self.register_buffer("b_out", unet.outc.bias.detach().clone())
        self.register_buffer("w_out_adjoint", _adjoint_kernel(self.w_out))

    def forward(self, image: torch.Tensor, grad_output: torch.Tensor) -> torch.Tensor:
        # Forward pass, recording what the backward pass needs: every ReLU output, every
        # max-pool's input and output, every upsampling's coarse input.
        encoder = [self.inc(image)]  # (a1, a2) per level; a2 is the level's output
        pooled = []
        for block in self.down:
            pooled.append(F.max_pool2d(encoder[-1][1], 2))
            encoder.append(block(pooled[-1]))
        x = encoder[-1][1]
        decoder, coarse = [], []
        for level, block in enumerate(self.up):
            coarse.append(x)
            up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
            skip = encoder[self.depth - 1 - level][1]
            decoder.append(block(torch.cat([skip, up], dim=1)))
            x = decoder[-1][1]
        y = torch.sigmoid(F.conv2d(x, self.w_out, self.b_out))

        # Backward pass.
        grad = grad_output * y * (1 - y)
        grad = F.conv2d(grad, self.w_out_adjoint)
        skip_grads = []
        for level in reversed(range(self.depth)):
            block = self.up[level]
            a1, a2 = decoder[level]
            grad_cat = block.backward(a1, a2, grad)
            n_skip = self.skip_channels[level]
            skip_grads.append(grad_cat[:, :n_skip])
            grad = _upsample_backward(coarse[level], grad_cat[:, n_skip:])
        # skip_grads[k] is now the gradient reaching encoder level k through its skip.
        for level in reversed(range(self.depth)):
            a1, a2 = encoder[level + 1]
            grad = self.down[level].backward(a1, a2, grad)
            grad = _maxpool_backward(encoder[level][1], pooled[level], grad)
            grad = grad + skip_grads[level]
        a1, a2 = encoder[0]
        return self.inc.backward(a1, a2, grad)
