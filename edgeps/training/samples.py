"""One augmented training sample: image + panoptic ground truth -> network input + targets.

numpy/OpenCV only. The image goes through :func:`edgeps.preprocess.preprocess` (the very
function inference uses); targets come from :func:`edgeps.data.targets.panoptic_targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeps import VOID_LABEL
from edgeps.data.targets import panoptic_targets
from edgeps.preprocess import InputSpec, preprocess
from edgeps.training.config import DataConfig

IGNORE = 255


@dataclass
class TrainSample:
    image: np.ndarray  # (3, h, w) float32, normalized
    semantic: np.ndarray  # (h, w) int64, IGNORE on void
    semantic_weight: np.ndarray  # (h, w) float32, small instances up-weighted
    center: np.ndarray  # (1, h, w) float32
    offset: np.ndarray  # (2, h, w) float32
    offset_weight: np.ndarray  # (h, w) float32


def resize_pair(image: np.ndarray, panoptic: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image (bilinear) and panoptic map (nearest) to ``size`` (H, W)."""
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


def make_train_sample(
    image: np.ndarray,
    panoptic: np.ndarray,
    thing_ids: list[int],
    cfg: DataConfig,
    spec: InputSpec,
    rng: np.random.Generator,
) -> TrainSample:
    """Resize to the model input size, scale-jitter, random crop (void padding), flip, colour."""
    image, panoptic = resize_pair(image, panoptic, cfg.input_size)
    s = rng.uniform(*cfg.scale_range)
    h, w = max(1, round(image.shape[0] * s)), max(1, round(image.shape[1] * s))
    image, panoptic = resize_pair(image, panoptic, (h, w))
    ch, cw = cfg.crop
    if h < ch or w < cw:  # pad: image with mean grey, labels with void
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(124, 116, 104))
        panoptic = cv2.copyMakeBorder(panoptic, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=VOID_LABEL)
        h, w = image.shape[:2]
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    image = image[y0 : y0 + ch, x0 : x0 + cw]
    panoptic = panoptic[y0 : y0 + ch, x0 : x0 + cw]
    if cfg.flip and rng.random() < 0.5:
        image, panoptic = image[:, ::-1], panoptic[:, ::-1]
    image = _color_jitter(np.ascontiguousarray(image), cfg.color_jitter, rng)
    panoptic = np.ascontiguousarray(panoptic)

    t = panoptic_targets(panoptic, thing_ids, sigma=cfg.center_sigma, ignore_label=IGNORE)
    weight = np.ones(panoptic.shape, np.float32)
    inst = panoptic[t.offset_weight > 0]
    if inst.size:
        ids, area = np.unique(inst, return_counts=True)
        small = ids[area < cfg.small_instance_area]
        if small.size:
            weight[np.isin(panoptic, small)] = cfg.small_instance_weight
    x = preprocess(image, InputSpec(size=(ch, cw), mean=spec.mean, std=spec.std))[0]
    return TrainSample(x, t.semantic, weight, t.center[None], t.offsets, t.offset_weight)


def collate(samples: list[TrainSample]) -> dict[str, np.ndarray]:
    return {
        "image": np.stack([s.image for s in samples]),
        "semantic": np.stack([s.semantic for s in samples]),
        "semantic_weight": np.stack([s.semantic_weight for s in samples]),
        "center": np.stack([s.center for s in samples]),
        "offset": np.stack([s.offset for s in samples]),
        "offset_weight": np.stack([s.offset_weight for s in samples]),
    }


__all__ = ["IGNORE", "TrainSample", "collate", "make_train_sample", "resize_pair"]
