"""Panoptic-DeepLab training targets from a panoptic map (numpy, vectorized over pixels).

The same function makes the heads a perfect network would predict, which the post-processing
benchmark and the demo use as input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import InputShapeError
from edgeps.panoptic import compact_ids


@dataclass
class PanopticTargets:
    """semantic (H, W) int64 (``ignore_label`` on void), center (H, W) float32 heatmap,
    offsets (2, H, W) float32 (dy, dx) to the instance's center of mass (0 off instances),
    offset_weight (H, W) float32 (1 on thing instances), centers (N, 2) float64 (y, x)."""

    semantic: np.ndarray
    center: np.ndarray
    offsets: np.ndarray
    offset_weight: np.ndarray
    centers: np.ndarray


def panoptic_targets(
    panoptic: np.ndarray,
    thing_ids: Iterable[int],
    *,
    sigma: float = 8.0,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    ignore_label: int = 255,
) -> PanopticTargets:
    """Semantic, center-heatmap (2-D Gaussian at each rounded center of mass) and offsets.

    Crowd regions (thing class, instance 0) get semantic labels but no center and no offsets.
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2 or not np.issubdtype(pan.dtype, np.integer):
        raise InputShapeError(f"panoptic: expected an (H, W) integer map, got {pan.dtype} {pan.shape}")
    h, w = pan.shape
    void = pan == void_label
    cls = np.where(void, ignore_label, pan // label_divisor).astype(np.int64)
    things = np.asarray(sorted(set(int(t) for t in thing_ids)), dtype=np.int64)
    is_instance = ~void & np.isin(cls, things) & (pan % label_divisor > 0)

    center = np.zeros((h, w), np.float32)
    offsets = np.zeros((2, h, w), np.float32)
    idx = np.flatnonzero(is_instance)
    if idx.size == 0:
        return PanopticTargets(cls, center, offsets, is_instance.astype(np.float32), np.zeros((0, 2)))
    ids, inverse = compact_ids(pan.ravel()[idx])  # no sort of the pixels (a bincount over the id range)
    ys, xs = idx // w, idx % w
    count = np.bincount(inverse)
    cy = np.bincount(inverse, weights=ys) / count
    cx = np.bincount(inverse, weights=xs) / count
    offsets[0].ravel()[idx] = cy[inverse] - ys
    offsets[1].ravel()[idx] = cx[inverse] - xs

    radius = int(np.ceil(3 * sigma))
    g = np.arange(-radius, radius + 1, dtype=np.float32)
    gauss = np.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma**2))
    for y, x in zip(np.round(cy).astype(int), np.round(cx).astype(int)):
        y0, y1 = max(0, y - radius), min(h, y + radius + 1)
        x0, x1 = max(0, x - radius), min(w, x + radius + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        patch = gauss[y0 - y + radius : y1 - y + radius, x0 - x + radius : x1 - x + radius]
        np.maximum(center[y0:y1, x0:x1], patch, out=center[y0:y1, x0:x1])
    return PanopticTargets(cls, center, offsets, is_instance.astype(np.float32), np.stack([cy, cx], axis=1))
