"""Binary line art: the in-memory and on-disk conventions, and binarization of drawn sketches.

Conventions used everywhere in the package:

- in memory, line art is a ``bool`` array (H, W), ``True`` where there is a line;
- on disk, it is an 8-bit grayscale PNG with black lines (0) on white (255)
  (:func:`lineart_to_image` / :func:`image_to_lineart`).

The paper (Sec. 4.1, "Binaryzation") turns a gray sketch whose lines are dark
into binary line art by setting values greater than 200 to 0 (background) and
all others to 1 (line); :func:`binarize` applies that rule to whatever a user
drew: grayscale or colored lines, anti-aliased strokes, lines on a transparent
layer, or light lines on a dark ground. Extraction of line art from colored
frames lives in :mod:`longanimation.data.lineart_extraction`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import UserError

PAPER_THRESHOLD = 200
"""Gray level above which a sketch pixel is background (the paper's binarization rule)."""

_OPAQUE_ALPHA = 128
_POLARITY_SAMPLE_PIXELS = 1 << 20


def lineart_to_image(mask: np.ndarray) -> np.ndarray:
    """Render line masks as on-disk images: bool (H, W) or (T, H, W) -> uint8, lines 0 on 255."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.ndim not in (2, 3):
        raise UserError(f"line art must be a bool (H, W) or (T, H, W) mask, got {mask.dtype} {mask.shape}")
    return np.where(mask, np.uint8(0), np.uint8(255))


def image_to_lineart(image: np.ndarray, *, light_lines: bool | None = False) -> np.ndarray:
    """Read a binary line-art image as a mask: by default the on-disk convention (dark lines on white).

    Pixels darker than mid-gray are lines, so slightly compressed copies (an mp4
    of a binary sketch) come back as the mask they were written from. With
    ``light_lines=True`` the image has white lines on black (pixels lighter than
    mid-gray are lines); ``None`` detects it (:func:`has_light_lines`). For a
    whole shot decide once with :func:`frames_have_light_lines`, as
    :func:`binarize_frames` does.
    """
    return binarize(image, threshold=127, invert=light_lines)


def binarize(image: np.ndarray, threshold: int = PAPER_THRESHOLD, *, invert: bool | None = None) -> np.ndarray:
    """Binarize a drawn sketch into a line mask with the paper's rule (gray > ``threshold`` is background).

    ``image`` is uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), or already a
    bool mask (returned as a copy). How each kind is read:

    - color: a pixel's ink value is its darkest channel, so colored strokes
      (red, blue, even yellow) count as lines, and a gray image is read as is;
    - RGBA: the drawing is composited onto a plain ground by its alpha, so the
      color stored under transparent pixels never matters; faint
      anti-aliasing (low alpha) falls on the background side like any light gray;
    - polarity: with ``invert=None`` it is detected (:func:`has_light_lines`);
      ``invert=True`` reads light lines on a dark ground, ``False`` dark lines on a light one.
    """
    if not 0 <= threshold <= 255:
        raise UserError(f"binarization threshold must be within 0..255, got {threshold}")
    image = _checked_image(image)
    if image.dtype == np.bool_:
        return image.copy()
    if invert is None:
        invert = has_light_lines(image)
    ink = _ink_gray(image, light_lines=invert)
    return ink <= threshold


def binarize_frames(
    frames: np.ndarray, threshold: int = PAPER_THRESHOLD, *, invert: bool | None = None
) -> np.ndarray:
    """Binarize every frame of a shot, uint8 (T, H, W[, C]) -> bool (T, H, W), as :func:`binarize` does.

    With ``invert=None`` the polarity is detected once for the whole shot
    (:func:`frames_have_light_lines`), so a mostly dark frame cannot flip it.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise UserError(f"sketch frames must be (T, H, W) or (T, H, W, C) with T > 0, got shape {frames.shape}")
    if invert is None:
        invert = frames_have_light_lines(frames)
    return np.stack([binarize(frame, threshold, invert=invert) for frame in frames])


def frames_have_light_lines(frames: np.ndarray) -> bool:
    """:func:`has_light_lines` decided on all frames of a shot, (T, H, W[, C]), at once."""
    frames = np.asarray(frames)
    return has_light_lines(frames.reshape(-1, *frames.shape[2:]))


def stream_has_light_lines(frames: Iterable[np.ndarray], num_frames: int) -> bool:
    """:func:`frames_have_light_lines` over frames read one at a time (a strided sample of each is kept).

    The sample is copied out of each frame: a strided view would keep the whole
    frame alive, every frame of the shot at once (1.9 GB for 300 frames at 1080p).
    """
    per_frame = max(1, _POLARITY_SAMPLE_PIXELS // max(num_frames, 1))
    samples = []
    for frame in frames:
        frame = _checked_image(frame)
        pixels = frame.reshape(frame.shape[0] * frame.shape[1], *frame.shape[2:])
        samples.append(pixels[:: max(1, len(pixels) // per_frame)].copy())
    sample = np.concatenate(samples)
    return has_light_lines(sample.reshape(len(sample), 1, *sample.shape[1:]))


def has_light_lines(image: np.ndarray) -> bool:
    """Guess whether a sketch has light lines on a dark ground (white on black).

    Lines are a minority of a drawing's pixels, so the ground is the median
    pixel. With transparency the ground is transparent, and the decision is
    made on the opaque pixels instead: light strokes mean light lines. Large
    inputs are judged on an evenly strided sample of about a million pixels.
    """
    image = _checked_image(image)
    if image.dtype == np.bool_:
        return False
    pixels = image.reshape(image.shape[0] * image.shape[1], -1)
    pixels = pixels[:: max(1, len(pixels) // _POLARITY_SAMPLE_PIXELS)]
    if pixels.shape[1] == 4 and int(pixels[:, 3].min()) < 255:
        opaque = pixels[pixels[:, 3] >= _OPAQUE_ALPHA]
        return len(opaque) > 0 and bool(np.median(_luminance(opaque[:, :3])) > 127)
    gray = pixels[:, 0] if pixels.shape[1] == 1 else _luminance(pixels[:, :3])
    return bool(np.median(gray) < 128)


def is_binary(image: np.ndarray, tolerance: int = 0) -> bool:
    """True if ``image`` holds only pure black and pure white (within ``tolerance`` gray levels).

    A bool mask is binary. A color image must be gray (R = G = B, within the
    tolerance) and an RGBA image fully opaque. Use a small tolerance for
    sketches that went through lossy video compression.
    """
    if not 0 <= tolerance < 128:
        raise UserError(f"binary tolerance must be within 0..127 gray levels, got {tolerance}")
    image = _checked_image(image)
    if image.dtype == np.bool_:
        return True
    if image.ndim == 3 and image.shape[2] == 4:
        if int(image[..., 3].min()) < 255 - tolerance:
            return False
        image = image[..., :3]
    near_black = image <= tolerance
    near_white = image >= 255 - tolerance
    if image.ndim == 3:  # all channels of a pixel must agree: near black, or near white
        near_black = near_black.all(axis=2)
        near_white = near_white.all(axis=2)
    return bool(np.all(near_black | near_white))


def _checked_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.bool_):
        raise UserError(f"a sketch must be an 8-bit image or a bool mask, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype == np.bool_ and image.ndim != 2:
        raise UserError(f"a bool line mask must be (H, W), got shape {image.shape}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise UserError(f"a sketch must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.size == 0:
        raise UserError("a sketch must not be empty")
    return image


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (..., 3) RGB values."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _ink_gray(image: np.ndarray, *, light_lines: bool) -> np.ndarray:
    """Gray image (uint8 as float) with dark lines on a light ground, whatever the input's polarity.

    RGBA is composited onto a ground that contrasts with the strokes: white
    under dark strokes, black under light strokes (then inverted); fully
    opaque pixels are unchanged by it.
    """
    if image.ndim == 2:
        gray = image.astype(np.float32)
        return 255.0 - gray if light_lines else gray
    color = image[..., :3].astype(np.float32)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        ground = 0.0 if light_lines else 255.0
        color = np.rint(alpha * color + (1.0 - alpha) * ground)  # as an 8-bit composite would be
    if light_lines:
        return 255.0 - color.max(axis=2)
    return color.min(axis=2)
