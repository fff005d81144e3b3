"""The panoptic id encoding used everywhere in edgeps.

A panoptic map is an (H, W) int32 array with ``class_id * label_divisor + instance_id``;
stuff has instance 0, void is ``void_label`` (-1 by default). Instance numbers stay below
``label_divisor``; identities that must outlive a frame (track ids) live in segment metadata.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import InputShapeError


def encode(class_id: np.ndarray | int, instance_id: np.ndarray | int, label_divisor: int = LABEL_DIVISOR) -> np.ndarray:
    return np.asarray(class_id, dtype=np.int32) * np.int32(label_divisor) + np.asarray(instance_id, dtype=np.int32)


def decode(
    panoptic: np.ndarray, label_divisor: int = LABEL_DIVISOR, void_label: int = VOID_LABEL
) -> tuple[np.ndarray, np.ndarray]:
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
            raise InputShapeError(
                f"compact: index map of shape {np.shape(index)}, expected {pan.shape} (the panoptic map's)"
            )
        inverse = np.asarray(index).ravel()
    n = len(ids)
    # Two histograms of (segment, line): per segment and source row, the output columns its
    # pixels there become (row_w); per segment and source column, the output rows (col_w).
    # Area, position sums and the lines a segment touches all follow from those two.
    row_w = _line_histogram(inverse, n, h, _line_index(h, w, 0), c_n, lambda: np.tile(c_n.astype(np.float64), h))
    col_w = _line_histogram(inverse, n, w, _line_index(h, w, 1), r_n, lambda: np.repeat(r_n.astype(np.float64), w))
    # lines nobody sees (a downscale drops them) hold no segment
    row_hits = (row_w > 0) & (r_n > 0)[None, :]
    col_hits = (col_w > 0) & (c_n > 0)[None, :]
    area = np.rint(row_w @ r_n.astype(np.float64)).astype(np.int64)
    sum_y, sum_x = row_w @ r_sum, col_w @ c_sum
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


@functools.lru_cache(maxsize=8)
def _line_index(h: int, w: int, axis: int) -> np.ndarray:
    """Row (axis 0) or column (axis 1) of every pixel of an (h, w) map, flattened (read-only:
    the same frame size comes every frame)."""
    line = np.repeat(np.arange(h), w) if axis == 0 else np.tile(np.arange(w), h)
    line.setflags(write=False)
    return line


def _line_histogram(
    inverse: np.ndarray, n: int, lines: int, line_of: np.ndarray, across: np.ndarray, weights: Callable[[], np.ndarray]
) -> np.ndarray:
    """(n, lines) float64: per segment and line, the summed weight of its pixels there, a
    pixel weighing ``across`` of its position on the other axis (``weights()`` per pixel).
    A uniform resize (every source line shown equally often) needs no per-pixel weights."""
    key = inverse * lines + line_of
    if across.size and (across == across[0]).all():
        return np.bincount(key, minlength=n * lines).reshape(n, lines) * float(across[0])
    return np.bincount(key, weights=weights(), minlength=n * lines).reshape(n, lines)


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
