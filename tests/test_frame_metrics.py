"""PSNR / SSIM with the field's protocol and the fig. 8 frequency analysis."""

from __future__ import annotations

import numpy as np
import pytest

from longanimation.evaluation.frame_metrics import (
    PSNR_CAP,
    frequency_analysis,
    psnr_per_frame,
    split_frequencies,
    ssim_per_frame,
    to_protocol,
)


def _pair(seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    a = rng.random((3, 64, 64, 3))
    return a, np.clip(a + rng.normal(0, noise, a.shape), 0, 1)


def test_identical_frames_give_capped_psnr_and_unit_ssim():
    a, _ = _pair()
    assert np.all(psnr_per_frame(a, a) == PSNR_CAP)
    assert np.allclose(ssim_per_frame(a, a), 1.0)


def test_psnr_matches_definition_and_orders_noise():
    a, b = _pair(noise=0.1)
    expected = 10 * np.log10(1 / ((a - b) ** 2).reshape(3, -1).mean(1))
    assert np.allclose(psnr_per_frame(a, b), expected)
    _, worse = _pair(noise=0.3)
    assert (psnr_per_frame(a, worse) < psnr_per_frame(a, b)).all()
    assert (ssim_per_frame(a, worse) < ssim_per_frame(a, b)).all()


def test_ssim_agrees_with_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _pair()
    ours = ssim_per_frame(a, b)
    theirs = [
        metrics.structural_similarity(
            a[i], b[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=2
        )
        for i in range(3)
    ]
    assert np.allclose(ours, theirs, atol=1e-6)


def test_protocol_resizes_to_256_in_unit_range():
    frames = np.full((2, 90, 160, 3), 255, np.uint8)
    out = to_protocol(frames)
    assert out.shape == (2, 256, 256, 3) and out.max() == 1.0


def test_frequency_split_and_decay():
    a, _ = _pair()
    low, high = split_frequencies(a)
    assert np.allclose(low + high, a)
    # A flat color shift lives in the low frequencies only.
    shifted = np.clip(a + 0.2, 0, 1)
    pred = np.concatenate([a[:1].repeat(14, 0), shifted[:1].repeat(14, 0)])
    target = np.concatenate([a[:1].repeat(28, 0)])
    report = frequency_analysis(pred, target)
    assert report.low_psnr.shape == (28,)
    assert report.low_psnr[:14].min() == PSNR_CAP and report.low_psnr[14:].max() < 30
    assert report.low_decay > 0.2 and report.low_decay > report.high_decay
