"""I3D (Carreira & Zisserman 2017), the 400-class Kinetics network used for FVD.

The layout is that of the PyTorch port used by the common FVD code
(``InceptionI3d(400)`` of pytorch-i3d / VideoGPT, weights
``i3d_pretrained_400.pt``): Inception-v1 inflated to 3-D, TensorFlow "SAME"
padding computed from the input size, batch-norm eps 1e-5. :meth:`I3D.forward`
takes clips (N, 3, T, 224, 224) in [-1, 1] and returns the 400 Kinetics logits
averaged over time, the features FVD compares.

State-dict layout (``*.num_batches_tracked`` dropped)::

    Conv3d_1a_7x7.conv3d.weight, Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var}
    Conv3d_2b_1x1, Conv3d_2c_3x3                                   (same .conv3d/.bn)
    Mixed_{3b,3c,4b,4c,4d,4e,4f,5b,5c}.{b0,b1a,b1b,b2a,b2b,b3b}.conv3d.weight / .bn.*
    logits.conv3d.{weight,bias}                                    Conv3d(1024, 400, 1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FrozenBatchNorm

CLASSES = 400
CLIP_FRAMES = 16
INPUT_SIZE = 224
Triple = tuple[int, int, int]

# Inception modules: name, input channels, (b0, b1a, b1b, b2a, b2b, b3b) output channels.
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
# Max pools (kernel, stride) before the Inception module named.
POOL_BEFORE = {
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),
}


def same_padding(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Zero-pad (T, H, W) of a (N, C, T, H, W) tensor as TensorFlow's "SAME" does (extra pixel at the end)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def max_pool_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Max pool after "SAME" zero padding."""
    return F.max_pool3d(same_padding(x, kernel, stride), kernel, stride)


class Unit3D(nn.Module):
    """3-D convolution with "SAME" padding, then frozen batch norm and ReLU (or only a biased conv)."""

    def __init__(self, cin: int, cout: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1), head: bool = False):
        super().__init__()
        self.kernel, self.stride, self.head = kernel, stride, head
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=head)
        if not head:
            self.bn = FrozenBatchNorm(cout, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_padding(x, self.kernel, self.stride))
        return x if self.head else F.relu(self.bn(x))


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1."""

    def __init__(self, cin: int, widths: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, widths[0])
        self.b1a = Unit3D(cin, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(cin, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3b = Unit3D(cin, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], dim=1)


class I3D(nn.Module):
    """``forward(clips)``: (N, 3, T, 224, 224) in [-1, 1] -> (N, 400) time-averaged logits."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, cin, widths in MIXED:
            self.add_module(name, InceptionModule(cin, widths))
        self.logits = Unit3D(1024, CLASSES, head=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool_same(self.Conv3d_1a_7x7(x), (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        for name, _, _ in MIXED:
            if name in POOL_BEFORE:
                x = max_pool_same(x, *POOL_BEFORE[name])
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))
