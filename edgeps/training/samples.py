"""One training sample: image + panoptic ground truth -> network input + targets.

numpy/OpenCV only. The geometry is the deployed one: the frame is scaled to fit the model
input exactly as :func:`edgeps.preprocess.preprocess` letterboxes it (same resize rule, same
padding colour, same mean/std), then jittered in scale and cropped; padding is void in the
targets, so every loss ignores it. With ``augment=False`` the network input equals
``preprocess(frame, spec)``. Targets come from :func:`edgeps.data.targets.panoptic_targets`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.data.targets import panoptic_targets
from edgeps.panoptic import compact_ids
from edgeps.preprocess import InputSpec, frame_geometry, pad_color_bgr, preprocess
from edgeps.training.config import DataConfig

IGNORE = 255


@dataclass
class TrainSample:
    """Network input and targets of one crop of (h, w) pixels."""

    image: np.ndarray  # (3, h, w) float32, normalized
    semantic: np.ndarray  # (h, w) int64, IGNORE on void, padding (and crowd when asked)
    semantic_weight: np.ndarray  # (h, w) float32, small instances up-weighted
    center: np.ndarray  # (1, h, w) float32
    center_weight: np.ndarray  # (h, w) float32: 0 on void, padding and crowd regions
    offset: np.ndarray  # (2, h, w) float32
    offset_weight: np.ndarray  # (h, w) float32


def resize_pair(image: np.ndarray, panoptic: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image (bilinear, as preprocess) and panoptic map (nearest) to ``size`` (H, W)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, panoptic
    return (
        cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR),
        cv2.resize(panoptic, (w, h), interpolation=cv2.INTER_NEAREST_EXACT),
    )


def _color_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    if strength <= 0:
        return image
    gain = rng.uniform(1 - strength, 1 + strength, size=3)  # per channel: colour cast
    contrast = rng.uniform(1 - strength, 1 + strength)
    bright = rng.uniform(-strength, strength) * 64
    x = image.astype(np.float32) * gain
    x = (x - x.mean()) * contrast + x.mean() + bright
    return np.clip(x, 0, 255).astype(np.uint8)


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


def make_train_sample(
    image: np.ndarray,
    panoptic: np.ndarray,
    thing_ids: list[int],
    cfg: DataConfig,
    spec: InputSpec,
    rng: np.random.Generator,
    *,
    augment: bool = True,
) -> TrainSample:
    """Letterbox-scale to ``spec.size``, scale-jitter, crop ``cfg.crop`` (mean-colour padding,
    void labels), flip, colour-jitter; ``augment=False``: the letterboxed frame at ``spec.size``,
    nothing random. ``image`` (H, W, 3) uint8 BGR, ``panoptic`` (H, W) int32 train ids."""
    g = frame_geometry(image.shape[:2], spec)
    s = float(rng.uniform(*cfg.scale_range)) if augment else 1.0
    h, w = max(1, round(g.height * s)), max(1, round(g.width * s))
    image, panoptic = resize_pair(image, panoptic, (h, w))
    ch, cw = tuple(cfg.crop) if augment else spec.size
    y0, x0 = _origin(h, ch, rng if augment else None), _origin(w, cw, rng if augment else None)
    if augment:  # jitter the frame's own pixels only: the padding stays the mean colour
        image = _color_jitter(image[max(0, y0) : y0 + ch, max(0, x0) : x0 + cw], cfg.color_jitter, rng)
        y_in, x_in = min(0, y0), min(0, x0)
    else:
        y_in, x_in = y0, x0
    image = _window(image, y_in, x_in, ch, cw, pad_color_bgr(spec))
    panoptic = _window(panoptic, y0, x0, ch, cw, VOID_LABEL)
    if augment and cfg.flip and rng.random() < 0.5:
        image, panoptic = np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(panoptic[:, ::-1])

    t = panoptic_targets(panoptic, thing_ids, sigma=cfg.center_sigma, ignore_label=IGNORE)
    void = panoptic == VOID_LABEL
    crowd = ~void & np.isin(panoptic // LABEL_DIVISOR, thing_ids) & (panoptic % LABEL_DIVISOR == 0)
    semantic = t.semantic
    if cfg.ignore_crowd_in_semantic and crowd.any():
        semantic = np.where(crowd, IGNORE, semantic)
    weight = np.ones(panoptic.shape, np.float32)
    on_instance = t.offset_weight > 0
    if on_instance.any():
        ids, inverse = compact_ids(panoptic[on_instance])
        small = np.bincount(inverse, minlength=len(ids)) < cfg.small_instance_area
        if small.any():
            weight[on_instance] = np.where(small[inverse], cfg.small_instance_weight, 1.0)
    x = preprocess(image, InputSpec(size=(ch, cw), mean=spec.mean, std=spec.std))[0]
    center_weight = (~void & ~crowd).astype(np.float32)
    return TrainSample(x, semantic, weight, t.center[None], center_weight, t.offsets, t.offset_weight)


def collate(samples: list[TrainSample]) -> dict[str, np.ndarray]:
    """Stack samples into a batch: one array per :class:`TrainSample` field, batch first."""
    return {f.name: np.stack([getattr(s, f.name) for s in samples]) for f in fields(TrainSample)}


__all__ = ["IGNORE", "TrainSample", "collate", "make_train_sample", "resize_pair"]
