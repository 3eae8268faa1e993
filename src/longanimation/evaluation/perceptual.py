"""LPIPS (AlexNet) of each frame pair, on protocol frames (256x256, [0, 1])."""

from __future__ import annotations

import numpy as np
import torch

from .networks import LPIPSAlexNet

BATCH_FRAMES = 16


def frames_to_tensor(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(T, H, W, 3) float in [0, 1] -> (T, 3, H, W) float32 tensor in [-1, 1] on ``device``."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)
    return tensor.to(device) * 2.0 - 1.0


@torch.no_grad()
def lpips_per_frame(pred: np.ndarray, target: np.ndarray, network: LPIPSAlexNet) -> np.ndarray:
    """LPIPS distance of each frame pair (lower is more similar); inputs (T, H, W, 3) in [0, 1]."""
    device = next(network.parameters()).device
    values = []
    for start in range(0, len(pred), BATCH_FRAMES):
        stop = start + BATCH_FRAMES
        values.append(network(frames_to_tensor(pred[start:stop], device), frames_to_tensor(target[start:stop], device)))
    return torch.cat(values).double().cpu().numpy()
