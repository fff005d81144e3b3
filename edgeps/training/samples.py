"""One training crop: image + panoptic ground truth -> the crop a loader worker hands over.

numpy/OpenCV only; this is the work a DataLoader worker does per sample. The geometry is the
deployed one: the frame is scaled to fit the model input exactly as
:func:`edgeps.preprocess.preprocess` letterboxes it (same resize rule, same padding colour),
then jittered in scale and cropped; padding is void in the panoptic crop, so every loss
ignores it. Everything per pixel that does not need the frame at full size (colour jitter,
normalization, the targets) is left to :mod:`edgeps.training.batch`, on the training device:
a worker hands over a uint8 crop and an int32 panoptic crop (3.5 MB at 512x1024, not the
22 MB of float inputs and targets), plus the jitter it drew. With ``augment=False`` the crop is
the letterboxed frame at ``spec.size``, nothing random, and the network input made from it
equals ``preprocess(frame, spec)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeps import VOID_LABEL
from edgeps.preprocess import InputSpec, frame_geometry, pad_color_bgr
from edgeps.training.config import DataConfig

IGNORE = 255
NO_JITTER = (1.0, 1.0, 1.0, 1.0, 0.0)  # gain B, G, R; contrast; brightness


@dataclass
class TrainCrop:
    """One augmented crop of (h, w) pixels, as a worker hands it over."""

    image: np.ndarray  # (h, w, 3) uint8 BGR; outside the frame the letterbox padding colour
    panoptic: np.ndarray  # (h, w) int32 panoptic ids (train ids), VOID_LABEL on padding
    jitter: np.ndarray  # (5,) float32: per-channel gain (B, G, R), contrast, brightness; NO_JITTER = none
    frame_box: np.ndarray  # (4,) int32 top, bottom, left, right: the frame's pixels in the crop


def resize_pair(image: np.ndarray, panoptic: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image (bilinear, as preprocess) and panoptic map (nearest) to ``size`` (H, W)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, panoptic
    return (
        cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR),
        cv2.resize(panoptic, (w, h), interpolation=cv2.INTER_NEAREST_EXACT),
    )


def _window(a: np.ndarray, y0: int, x0: int, ch: int, cw: int, fill: object) -> np.ndarray:
    """The (ch, cw) window of ``a`` whose top-left corner is (y0, x0); outside ``a`` is ``fill``."""
    top, left = max(0, -y0), max(0, -x0)
    src = a[max(0, y0) : max(0, y0) + ch - top, max(0, x0) : max(0, x0) + cw - left]
    bottom, right = ch - top - src.shape[0], cw - left - src.shape[1]
    if top or bottom or left or right:
        return cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_CONSTANT, value=fill)
    return np.ascontiguousarray(src)


def _origin(size: int, crop: int, rng: np.random.Generator | None) -> int:
    """Crop origin along one axis of a scaled frame of ``size``; negative = padding before it.
    Random over every placement when augmenting, else centred as the letterbox centres."""
    if rng is not None:
        return int(rng.integers(min(0, size - crop), max(0, size - crop) + 1))
    return (size - crop) // 2 if size >= crop else -((crop - size) // 2)


def _draw_jitter(strength: float, rng: np.random.Generator) -> np.ndarray:
    """Colour-jitter parameters (see :func:`edgeps.training.batch.network_inputs`)."""
    if strength <= 0:
        return np.asarray(NO_JITTER, np.float32)
    gain = rng.uniform(1 - strength, 1 + strength, size=3)  # per channel: colour cast
    contrast = rng.uniform(1 - strength, 1 + strength)
    bright = rng.uniform(-strength, strength) * 64
    return np.asarray([*gain, contrast, bright], np.float32)


def make_train_crop(
    image: np.ndarray,
    panoptic: np.ndarray,
    cfg: DataConfig,
    spec: InputSpec,
    rng: np.random.Generator,
    *,
    augment: bool = True,
) -> TrainCrop:
    """Letterbox-scale to ``spec.size``, scale-jitter, crop ``cfg.crop`` (padding in the mean
    colour, void labels), draw the colour jitter, flip; ``augment=False``: the letterboxed frame
    at ``spec.size``, nothing random. ``image`` (H, W, 3) uint8 BGR, ``panoptic`` (H, W) int32
    train ids. The random draws, in order: scale, crop row, crop column, jitter, flip."""
    g = frame_geometry(image.shape[:2], spec)
    s = float(rng.uniform(*cfg.scale_range)) if augment else 1.0
    h, w = max(1, round(g.height * s)), max(1, round(g.width * s))
    image, panoptic = resize_pair(image, panoptic, (h, w))
    ch, cw = tuple(cfg.crop) if augment else spec.size
    y0, x0 = _origin(h, ch, rng if augment else None), _origin(w, cw, rng if augment else None)
    image = _window(image, y0, x0, ch, cw, pad_color_bgr(spec))
    panoptic = _window(panoptic.astype(np.int32, copy=False), y0, x0, ch, cw, VOID_LABEL)
    top, bottom, left, right = max(0, -y0), min(ch, h - y0), max(0, -x0), min(cw, w - x0)
    jitter = _draw_jitter(cfg.color_jitter if augment else 0.0, rng)
    if augment and cfg.flip and rng.random() < 0.5:
        image, panoptic = np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(panoptic[:, ::-1])
        left, right = cw - right, cw - left
    return TrainCrop(image, panoptic, jitter, np.asarray([top, bottom, left, right], np.int32))


__all__ = ["IGNORE", "NO_JITTER", "TrainCrop", "make_train_crop", "resize_pair"]
