"""FID and FVD: Fréchet distances between Gaussians fitted to network features.

* FID: Inception pool3 (2048-d) of every frame, each protocol frame resized
  to 299x299 (bilinear) and scaled to [-1, 1].
* FVD: I3D logits (400-d) of 16-frame clips, each protocol frame centre-cropped
  to 224x224 and scaled to [-1, 1]; clips start every ``stride`` frames
  (non-overlapping by default).

The Fréchet distance ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2)``
needs no general matrix square root: ``tr((S_a S_b)^1/2)`` is the sum of the
square roots of the eigenvalues of ``S_a S_b``, which are those of a symmetric
positive semi-definite matrix (see :func:`frechet_distance`). With fewer
samples than feature dimensions (one shot: hundreds of frames against 2048-d
features) it works on the samples' Gram-like matrix, which is small and exact
for the singular covariances. With fewer than two samples the covariance is
taken as zero. Estimates from one shot have a large variance.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .networks import I3D, FIDInceptionV3
from .networks.i3d import CLIP_FRAMES
from .networks.i3d import INPUT_SIZE as I3D_SIZE
from .networks.inception import INPUT_SIZE as INCEPTION_SIZE
from .perceptual import frames_to_tensor

BATCH_FRAMES = 16
BATCH_CLIPS = 2


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (one sample: zero covariance)."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    scale_a = 1.0 / (len(a) - 1) if len(a) > 1 else 0.0
    scale_b = 1.0 / (len(b) - 1) if len(b) > 1 else 0.0
    if len(a) * len(b) <= a.shape[1] ** 2:
        # Few samples: the eigenvalues of S_a S_b are the squared singular values of
        # A_c B_c^T (times scale_a * scale_b), a small matrix; exact for singular covariances.
        singular = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False)
        trace_root = float(singular.sum()) * np.sqrt(scale_a * scale_b)
    else:
        # Many samples: S_a S_b has the eigenvalues of the PSD matrix S_a^1/2 S_b S_a^1/2.
        root_a = _psd_sqrt(scale_a * centred_a.T @ centred_a)
        cross = np.linalg.eigvalsh(root_a @ (scale_b * centred_b.T @ centred_b) @ root_a)
        trace_root = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    diff = a.mean(axis=0) - b.mean(axis=0)
    traces = scale_a * float((centred_a**2).sum()) + scale_b * float((centred_b**2).sum())
    return max(float(diff @ diff) + traces - 2.0 * trace_root, 0.0)


def _device(network: torch.nn.Module) -> torch.device:
    return next(network.parameters()).device


@torch.no_grad()
def inception_features(frames: np.ndarray, network: FIDInceptionV3) -> np.ndarray:
    """(T, H, W, 3) frames in [0, 1] -> (T, 2048) pool3 features."""
    device = _device(network)
    features = []
    for start in range(0, len(frames), BATCH_FRAMES):
        batch = frames_to_tensor(frames[start : start + BATCH_FRAMES], device)
        batch = F.interpolate(batch, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        features.append(network(batch))
    return torch.cat(features).double().cpu().numpy()


def clip_starts(num_frames: int, stride: int = CLIP_FRAMES) -> list[int]:
    """First frames of the 16-frame clips FVD uses (empty for shots shorter than 16 frames)."""
    return list(range(0, num_frames - CLIP_FRAMES + 1, stride))


@torch.no_grad()
def i3d_features(frames: np.ndarray, network: I3D, stride: int = CLIP_FRAMES) -> np.ndarray:
    """(T, H, W, 3) frames in [0, 1], H and W >= 224 -> (clips, 400) I3D logits of the clips of :func:`clip_starts`."""
    device = _device(network)
    top = (frames.shape[1] - I3D_SIZE) // 2
    left = (frames.shape[2] - I3D_SIZE) // 2
    cropped = frames[:, top : top + I3D_SIZE, left : left + I3D_SIZE]
    starts = clip_starts(len(frames), stride)
    features = []
    for first in range(0, len(starts), BATCH_CLIPS):
        clips = [frames_to_tensor(cropped[s : s + CLIP_FRAMES], device) for s in starts[first : first + BATCH_CLIPS]]
        features.append(network(torch.stack(clips).transpose(1, 2)))  # (N, T, C, H, W) -> (N, C, T, H, W)
    return torch.cat(features).double().cpu().numpy()
