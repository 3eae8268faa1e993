"""The learned line-art extractor: the informative-drawings generator.

Chan, Durand & Isola, "Learning to generate line drawings that convey geometry
and semantics" (CVPR 2022). LongAnimation's public release extracts its
training sketches with this network (3 residual blocks, the "anime style"
weights) and calls a pixel a line where the output is below 0.78.

Architecture (a ResNet-style image-to-image generator, instance norm without
affine parameters, so the norms hold no weights):

    stem:  reflection pad 3, 7x7 conv -> C, norm, ReLU
    down:  two 3x3 stride-2 convs (C -> 2C -> 4C), each with norm, ReLU
    body:  N residual blocks at 4C (reflection pad 1, 3x3 conv, norm, ReLU,
           reflection pad 1, 3x3 conv, norm; plus the input)
    up:    two 3x3 stride-2 transposed convs (4C -> 2C -> C), norm, ReLU
    head:  reflection pad 3, 7x7 conv -> 1 channel, sigmoid

Input is RGB in [0, 1]; output is in [0, 1], near 1 on paper and near 0 on
lines. The five stages are named ``model0`` .. ``model4`` and the layers inside
them keep the indices of the published model definition, so the state-dict
keys of a checkpoint converted from the published weights (``model0.1.weight``,
``model1.0.weight``, ``model1.3.weight``, ``model2.<i>.conv_block.1.weight``,
``model2.<i>.conv_block.5.weight``, ``model3.0.weight``, ``model3.3.weight``,
``model4.1.weight`` and their biases) load directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn

from ..data.lineart_extraction import LINE_THRESHOLD
from ..errors import UserError
from .checkpoint import PretrainedModule, load_state_dict_checked, refuse_pickle

_SIZE_MULTIPLE = 4  # two stride-2 stages: inputs are padded to a multiple of 4, outputs cropped back


@dataclass(frozen=True)
class LineArtGeneratorConfig:
    """Shape of the generator; the defaults are those of the published line-art weights."""

    in_channels: int = 3
    out_channels: int = 1
    base_channels: int = 64
    num_residual_blocks: int = 3


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.conv_block(features)


def _normalized_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels), nn.ReLU(inplace=True)]


class LineArtGenerator(PretrainedModule):
    """Informative-drawings generator: RGB in [0, 1] -> line map in [0, 1] (lines dark)."""

    config_class = LineArtGeneratorConfig

    def __init__(self, config: LineArtGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        width = config.base_channels
        self.model0 = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(config.in_channels, width, kernel_size=7), *_normalized_relu(width)
        )
        self.model1 = nn.Sequential(
            nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1),
            *_normalized_relu(2 * width),
            nn.Conv2d(2 * width, 4 * width, kernel_size=3, stride=2, padding=1),
            *_normalized_relu(4 * width),
        )
        self.model2 = nn.Sequential(*(ResidualBlock(4 * width) for _ in range(config.num_residual_blocks)))
        self.model3 = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, kernel_size=3, stride=2, padding=1, output_padding=1),
            *_normalized_relu(2 * width),
            nn.ConvTranspose2d(2 * width, width, kernel_size=3, stride=2, padding=1, output_padding=1),
            *_normalized_relu(width),
        )
        self.model4 = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(width, config.out_channels, kernel_size=7), nn.Sigmoid()
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [0, 1] -> (B, out_channels, 4*ceil(H/4), 4*ceil(W/4)) in [0, 1]."""
        features = self.model1(self.model0(images))
        return self.model4(self.model3(self.model2(features)))

    @torch.no_grad()
    def line_map(self, rgb: np.ndarray) -> np.ndarray:
        """Run on one uint8 (H, W, 3) frame; float32 (H, W) in [0, 1], 1 = paper, 0 = line.

        Any frame size works: the frame is edge-padded to a multiple of 4 and
        the output cropped back.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != self.config.in_channels:
            raise UserError(
                f"the line-art generator takes uint8 (H, W, {self.config.in_channels}) frames, "
                f"got {rgb.dtype} {rgb.shape}"
            )
        height, width = rgb.shape[:2]
        parameter = next(self.parameters())
        images = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(parameter.device, parameter.dtype) / 255.0
        pad_bottom = -height % _SIZE_MULTIPLE
        pad_right = -width % _SIZE_MULTIPLE
        images = F.pad(images, (0, pad_right, 0, pad_bottom), mode="replicate")
        output = self(images)[0, 0, :height, :width]
        return output.float().cpu().numpy()

    def extract(self, rgb: np.ndarray, threshold: float = LINE_THRESHOLD) -> np.ndarray:
        """Line mask (bool (H, W)) of one uint8 RGB frame: lines where the output is below ``threshold``."""
        if not 0.0 < threshold < 1.0:
            raise UserError(f"learned line threshold must be within (0, 1), got {threshold}")
        return self.line_map(rgb) < threshold

    @classmethod
    def from_safetensors_file(
        cls,
        path: str | os.PathLike,
        config: LineArtGeneratorConfig | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> LineArtGenerator:
        """Load a bare ``.safetensors`` state dict converted from the published weights.

        With ``config=None`` the shape (channels, number of residual blocks) is
        read off the tensors. Pickle checkpoints (``.pth``) are refused.
        """
        path = Path(path)
        refuse_pickle(path)
        if not path.is_file():
            raise UserError(f"missing line-art weights file {path}")
        if config is None:
            config = infer_config(_tensor_shapes(path), source=path)
        generator = cls(config)
        load_state_dict_checked(generator, path)
        return generator.eval().to(device)


def infer_config(shapes: dict[str, tuple[int, ...]], *, source: Path) -> LineArtGeneratorConfig:
    """Read the generator's shape off a state dict's tensor shapes."""
    stem, head = shapes.get("model0.1.weight"), shapes.get("model4.1.weight")
    if stem is None or head is None or len(stem) != 4 or len(head) != 4:
        raise UserError(
            f"{source} is not an informative-drawings line-art generator (no model0.1.weight / model4.1.weight)"
        )
    blocks = sum(1 for name in shapes if name.startswith("model2.") and name.endswith(".conv_block.1.weight"))
    return LineArtGeneratorConfig(
        in_channels=stem[1], out_channels=head[0], base_channels=stem[0], num_residual_blocks=blocks
    )


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: not a valid safetensors file ({error})") from None
