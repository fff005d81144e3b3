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


def compact_ids(panoptic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids, per-pixel index into them), without sorting the pixels when the
    id range is small (the usual case: class * 1000 + instance)."""
    flat = panoptic.ravel()
    if flat.size == 0:
        return np.zeros(0, flat.dtype), np.zeros(0, np.int64)
    lo, hi = int(flat.min()), int(flat.max())
    if hi - lo > 4 * flat.size + 65536:
        return np.unique(flat, return_inverse=True)
    shifted = flat.astype(np.int64) - lo
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    ids = np.flatnonzero(present)
    lut = np.zeros(hi - lo + 1, np.int64)
    lut[ids] = np.arange(ids.size)
    return (ids + lo).astype(flat.dtype), lut[shifted]


def segments_of(
    panoptic: np.ndarray,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    compact: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Segment]:
    """Area, bounding box and centroid of every segment, vectorized over pixels: per-segment
    row and column occupancy from two bincounts give the boxes.

    ``rows`` / ``cols`` (non-decreasing source indices, one per output row / column) describe a
    nearest-neighbour resize: the segments are then those of ``panoptic[rows][:, cols]`` (the
    map at the frame's size), computed exactly from ``panoptic`` itself, so a 2x upscaled map
    costs a quarter of the pixels (each source pixel weighs the output pixels it becomes).
    ``compact``: :func:`compact_ids` of ``panoptic`` when the caller has it already (ids, and
    the (H, W) index map; ids with no pixel are left out).
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2:
        raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
    h, w = pan.shape
    r_n, r_sum, r_first, r_last = _axis_weights(rows, h, "rows")
    c_n, c_sum, c_first, c_last = _axis_weights(cols, w, "cols")
    if compact is None:
        ids, inverse = compact_ids(pan)
    else:
        ids, index = compact
        if np.shape(index) != pan.shape:
            raise InputShapeError(f"compact: index map of shape {np.shape(index)}, expected {pan.shape} (the panoptic map's)")
        inverse = np.asarray(index).ravel()
    n = len(ids)
    if rows is None and cols is None:
        area = np.bincount(inverse, minlength=n)
    else:  # every source pixel stands for r_n[row] x c_n[col] output pixels
        area = np.rint(np.bincount(inverse, weights=np.outer(r_n, c_n).ravel(), minlength=n)).astype(np.int64)
        if (r_n == 0).any() or (c_n == 0).any():  # a downscale: lines nobody sees hold no segment
            inverse = np.where(((r_n[:, None] > 0) & (c_n[None, :] > 0)).ravel(), inverse, n)
    row_hits = np.bincount(inverse * h + np.repeat(np.arange(h), w), minlength=(n + 1) * h)[: n * h].reshape(n, h)
    col_hits = np.bincount(inverse * w + np.tile(np.arange(w), h), minlength=(n + 1) * w)[: n * w].reshape(n, w)
    # position sums separate per axis: sum of y over a segment = sum over its source rows of
    # (its pixels in that row, each output column they become) x (sum of output rows showing it)
    if rows is None and cols is None:
        sum_y, sum_x = row_hits @ r_sum, col_hits @ c_sum
    else:
        sum_y = np.bincount(inverse, weights=np.outer(r_sum, c_n).ravel(), minlength=n + 1)[:n]
        sum_x = np.bincount(inverse, weights=np.outer(r_n, c_sum).ravel(), minlength=n + 1)[:n]
    out = []
    for k, sid in enumerate(ids.tolist()):
        if sid == void_label or area[k] == 0:
            continue
        ry = np.flatnonzero(row_hits[k])
        cx = np.flatnonzero(col_hits[k])
        y0, y1, x0, x1 = int(r_first[ry[0]]), int(r_last[ry[-1]]), int(c_first[cx[0]]), int(c_last[cx[-1]])
        out.append(
            Segment(
                id=int(sid),
                category_id=int(sid // label_divisor),
                instance=int(sid % label_divisor),
                area=int(area[k]),
                bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                centroid=(float(sum_x[k] / area[k]), float(sum_y[k] / area[k])),
            )
        )
    return out


def _axis_weights(index: np.ndarray | None, size: int, name: str) -> tuple[np.ndarray, ...]:
    """Per source line: how many output lines show it, the sum of their positions, the first
    and the last of them (identity when ``index`` is None)."""
    if index is None:
        line = np.arange(size)
        return np.ones(size, np.int64), line.astype(np.float64), line, line
    idx = np.asarray(index)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or (idx.size and (idx.min() < 0 or idx.max() >= size)):
        raise InputShapeError(f"{name}: expected 1-D integer indices in [0, {size}), got {idx.dtype} {idx.shape}")
    if idx.size > 1 and (np.diff(idx) < 0).any():
        raise InputShapeError(f"{name}: expected non-decreasing indices (a resize), got a permutation")
    lines = np.arange(size)
    counts = np.bincount(idx, minlength=size)
    sums = np.bincount(idx, weights=np.arange(idx.size, dtype=np.float64), minlength=size)
    first = np.searchsorted(idx, lines, side="left")
    last = np.searchsorted(idx, lines, side="right") - 1
    return counts, sums, first, last
