"""The panoptic id encoding used everywhere in edgeps.

A panoptic map is an (H, W) int32 array with ``class_id * label_divisor + instance_id``;
stuff has instance 0, void is ``void_label`` (-1 by default). Instance numbers stay below
``label_divisor``; identities that must outlive a frame (track ids) live in segment metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import InputShapeError


def encode(class_id: np.ndarray | int, instance_id: np.ndarray | int, label_divisor: int = LABEL_DIVISOR) -> np.ndarray:
    return np.asarray(class_id, dtype=np.int32) * np.int32(label_divisor) + np.asarray(instance_id, dtype=np.int32)


def decode(panoptic: np.ndarray, label_divisor: int = LABEL_DIVISOR, void_label: int = VOID_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """Split a panoptic map into (class map, instance map); void pixels get class ``void_label``."""
    pan = np.asarray(panoptic)
    void = pan == void_label
    cls = np.where(void, void_label, pan // label_divisor).astype(np.int32)
    ins = np.where(void, 0, pan % label_divisor).astype(np.int32)
    return cls, ins


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG colour (R, G, B channels last) -> segment id ``R + 256 G + 256^2 B``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputShapeError(f"rgb: expected (H, W, 3), got shape {rgb.shape}")
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (H, W) -> (H, W, 3) uint8 RGB, the inverse of :func:`rgb_to_id`."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise InputShapeError(f"ids: expected (H, W), got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= 256**3):
        raise InputShapeError(f"ids: values must lie in [0, 2^24), got [{ids.min()}, {ids.max()}]")
    ids = ids.astype(np.uint32)
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)


@dataclass
class Segment:
    """One segment of a panoptic map, as consumers (JSON lines, COCO, ROS) need it."""

    id: int
    category_id: int
    instance: int
    area: int
    bbox: tuple[int, int, int, int]  # x, y, w, h
    centroid: tuple[float, float]  # x, y
    iscrowd: int = 0
    score: float | None = None
    track_id: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        d["centroid"] = [round(self.centroid[0], 2), round(self.centroid[1], 2)]
        return d


def segments_of(panoptic: np.ndarray, label_divisor: int = LABEL_DIVISOR, void_label: int = VOID_LABEL) -> list[Segment]:
    """Area, bounding box and centroid of every segment, vectorized over pixels."""
    pan = np.asarray(panoptic)
    if pan.ndim != 2:
        raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
    flat = pan.ravel()
    ids, inverse, area = np.unique(flat, return_inverse=True, return_counts=True)
    n = len(ids)
    w = pan.shape[1]
    idx = np.arange(flat.size)
    ys, xs = idx // w, idx % w
    sum_x = np.bincount(inverse, weights=xs, minlength=n)
    sum_y = np.bincount(inverse, weights=ys, minlength=n)
    x0 = np.full(n, np.iinfo(np.int64).max)
    y0 = np.full(n, np.iinfo(np.int64).max)
    x1 = np.full(n, -1)
    y1 = np.full(n, -1)
    np.minimum.at(x0, inverse, xs)
    np.minimum.at(y0, inverse, ys)
    np.maximum.at(x1, inverse, xs)
    np.maximum.at(y1, inverse, ys)
    out = []
    for k, sid in enumerate(ids.tolist()):
        if sid == void_label:
            continue
        out.append(
            Segment(
                id=int(sid),
                category_id=int(sid // label_divisor),
                instance=int(sid % label_divisor),
                area=int(area[k]),
                bbox=(int(x0[k]), int(y0[k]), int(x1[k] - x0[k] + 1), int(y1[k] - y0[k] + 1)),
                centroid=(float(sum_x[k] / area[k]), float(sum_y[k] / area[k])),
            )
        )
    return out
