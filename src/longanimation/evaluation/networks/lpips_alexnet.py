"""LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018): ImageNet features plus learned linear heads.

State-dict layout (the keys of ``lpips.LPIPS(net="alex")``, without its
duplicate ``lins.*`` entries and constant ``scaling_layer.*`` buffers)::

    net.slice1.0.{weight,bias}    Conv2d(3, 64, 11, stride 4, padding 2)   = torchvision alexnet features.0
    net.slice2.3.{weight,bias}    Conv2d(64, 192, 5, padding 2)           = features.3
    net.slice3.6.{weight,bias}    Conv2d(192, 384, 3, padding 1)          = features.6
    net.slice4.8.{weight,bias}    Conv2d(384, 256, 3, padding 1)          = features.8
    net.slice5.10.{weight,bias}   Conv2d(256, 256, 3, padding 1)          = features.10
    lin{0..4}.model.1.weight      Conv2d(C_k, 1, 1, bias=False), C = 64, 192, 384, 256, 256
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

CHANNELS = (64, 192, 384, 256, 256)
# Input scaling of LPIPS v0.1, applied to images in [-1, 1] (constants, not weights).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def _slice(layers: dict[int, nn.Module]) -> nn.Sequential:
    """A Sequential whose children keep their index in torchvision's ``alexnet().features``."""
    return nn.Sequential(OrderedDict((str(index), layer) for index, layer in layers.items()))


class AlexNetSlices(nn.Module):
    """AlexNet's convolutional trunk cut after each ReLU: five feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.slice1 = _slice({0: nn.Conv2d(3, 64, 11, stride=4, padding=2), 1: nn.ReLU()})
        self.slice2 = _slice({2: nn.MaxPool2d(3, 2), 3: nn.Conv2d(64, 192, 5, padding=2), 4: nn.ReLU()})
        self.slice3 = _slice({5: nn.MaxPool2d(3, 2), 6: nn.Conv2d(192, 384, 3, padding=1), 7: nn.ReLU()})
        self.slice4 = _slice({8: nn.Conv2d(384, 256, 3, padding=1), 9: nn.ReLU()})
        self.slice5 = _slice({10: nn.Conv2d(256, 256, 3, padding=1), 11: nn.ReLU()})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = block(x)
            features.append(x)
        return features


class LinearHead(nn.Module):
    """A learned 1x1 convolution to one channel; index 1 of ``model`` as in LPIPS (0 was a dropout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(OrderedDict([("1", nn.Conv2d(channels, 1, 1, bias=False))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPSAlexNet(nn.Module):
    """``forward(x, y)``: LPIPS distance of each image pair; images (N, 3, H, W) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetSlices()
        self.lin0, self.lin1, self.lin2, self.lin3, self.lin4 = (LinearHead(c) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        both = self.net((torch.cat([x, y]) - self.shift) / self.scale)
        heads = (self.lin0, self.lin1, self.lin2, self.lin3, self.lin4)
        distance = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for features, head in zip(both, heads, strict=True):
            unit = features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fx, fy = unit.chunk(2)
            distance = distance + head((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return distance
