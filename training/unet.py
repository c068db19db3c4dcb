"""The detection network: a U-Net of configurable width and depth (METHOD.md section 1).

DoubleConv = (3x3 conv pad 1, BatchNorm, ReLU) x 2; max-pool 2; bilinear x2 upsampling with
``align_corners=True``; the skip is concatenated *before* the upsampled path (``cat([skip, up])``);
a 1x1 conv and a sigmoid give the likelihood. The ReLUs are attributes (``relu1``/``relu2``) so the
guided-backprop reference can swap them (see `cellprop.training.guided`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DoubleConv", "UNet", "receptive_field_radius"]


class DoubleConv(nn.Module):
    """(3x3 conv, BatchNorm, ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(x)))


class UNet(nn.Module):
    """U-Net from 1 channel to a 1-channel likelihood in [0, 1].

    Parameters
    ----------
    base_channels : int
        Channels of the first level; each deeper level doubles them, capped at ``8 * base`` as in
        the paper's 64-128-256-512-512.
    depth : int
        Number of max-pool steps; input sides must be multiples of ``2**depth`` (the stride).
    """

    def __init__(self, base_channels: int = 16, depth: int = 4):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if base_channels < 1:
            raise ValueError(f"base_channels must be at least 1, got {base_channels}")
        self.base_channels = base_channels
        self.depth = depth
        widths = [base_channels * min(2**i, 8) for i in range(depth + 1)]
        # The bottom level keeps the width of the level above it (paper: ...512-512), so the
        # concatenation at every decoder level is 2 * widths[i].
        widths[depth] = widths[depth - 1]
        self.widths = widths
        self.inc = DoubleConv(1, widths[0])
        self.down = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        # Decoder level i takes cat(skip_i, up(x)), 2 * widths[i] channels (the bottom and each
        # decoder level output the width of the skip they meet next), and outputs widths[i-1]
        # (widths[0] at the top), as in the original U-Net code.
        self.up = nn.ModuleList(
            DoubleConv(2 * widths[i], widths[max(i - 1, 0)]) for i in reversed(range(depth))
        )
        self.outc = nn.Conv2d(widths[0], 1, 1)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for block in self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
            x = block(torch.cat([skips.pop(), x], dim=1))
        return torch.sigmoid(self.outc(x))


def receptive_field_radius(depth: int) -> int:
    """Theoretical receptive-field radius of `UNet` (pixels at the network's scale).

    Follows the deepest path (the skips add nothing): in terms of the field's size at
    cumulative stride ``s``, a 3x3 conv adds ``2 s``, a 2x2 max-pool adds ``s`` (then ``s``
    doubles), a bilinear x2 upsampling with ``align_corners=True`` adds up to two coarse
    pixels (its sample points drift across a coarse pixel along the image; then ``s`` halves). Encoder
    levels and the bottom have two convs each, so does every decoder level. The effective
    field, where gradients are not negligible, is much smaller. The result is an upper bound:
    measured by autograd on a net with all-positive weights, the field reaches 10, 26, 58, 122
    pixels for depths 1-4.

    Examples
    --------
    >>> receptive_field_radius(1), receptive_field_radius(4)
    (11, 130)
    """
    size, stride = 1, 1
    for level in range(depth + 1):  # encoder and bottom
        size += 2 * 2 * stride
        if level < depth:
            size += stride
            stride *= 2
    for _ in range(depth):  # decoder
        size += 2 * stride  # two coarse pixels
        stride //= 2
        size += 2 * 2 * stride
    return size // 2
