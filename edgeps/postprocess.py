"""Bottom-up panoptic post-processing (Panoptic-DeepLab, Cheng et al. 2020), vectorized.

Four pure functions, in the order a frame goes through them:

1. :func:`find_instance_centers`: threshold + max-pool NMS + top-k on the center heatmap.
2. :func:`group_pixels`: every thing pixel joins the center nearest to where its offset votes.
3. :func:`merge_semantic_and_instance`: majority class per instance, stuff area filter, fusion.
4. :func:`panoptic_from_heads`: the one entry point, with input validation.

Non-finite heads: a NaN or Inf anywhere in the logits, the center heatmap, the offsets or the
semantic probability is an :class:`~edgeps.errors.InputShapeError` naming the head and its
shape, never a silently wrong map (a NaN offset would vote nowhere, a NaN heatmap compares
false everywhere): it means a broken model or a bad quantization, which should be seen.

Tie rules (the reference leaves them to torch): equal distances go to the center that comes
first in row-major order; a tied majority vote goes to the smallest class id.

Speed: the nearest-center step never builds a K x H x W distance array. The plane around the
voted positions is cut into square cells; for each cell only the centers that can be nearest
to some point of the cell survive (a center whose closest possible distance to the cell is
larger than another center's farthest possible distance cannot win anywhere in it). Each pixel
then compares exact float64 distances against its cell's few candidates, which keeps the
result identical to a brute-force search, ties included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import CategoryError, InputShapeError
from edgeps.panoptic import Segment, compact_ids, segments_of
from edgeps.preprocess import Geometry, frame_index, map_to_frame

# Cap on (occupied cells x centers) in the exact nearest-center search (bounds memory).
_MAX_CELL_CENTER_PAIRS = 1 << 21
_BRUTE_FORCE_PAIRS = 1 << 17
_CHUNK = 1 << 16  # points per chunk in the exact-distance step
_RELATIVE_MAP: int | None = getattr(cv2, "WARP_RELATIVE_MAP", None)  # OpenCV >= 4.10
# Below this many pixels, float32 histogram counts are exact (calcHist returns float32).
_EXACT_FLOAT32_COUNT = 1 << 24


@dataclass
class PanopticPrediction:
    """A panoptic map plus what consumers want besides it.

    ``panoptic``: (H, W) int32 ids. ``scores``: panoptic id -> score (instances: mean semantic
    probability x center score; stuff: mean semantic probability); empty when no semantic
    probability was given. ``centers``: (K, 2) int (y, x) kept centers, ``center_scores``: (K,).
    ``model_panoptic`` / ``frame_index``: when ``panoptic`` was mapped to a frame, the map at
    model resolution (padding cropped) and the (rows, cols) that make it the frame's map.
    """

    panoptic: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    centers: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    center_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    model_panoptic: np.ndarray | None = None
    frame_index: tuple[np.ndarray, np.ndarray] | None = None
    compact: tuple[np.ndarray, np.ndarray] | None = None  # compact_ids of model_panoptic (ids, (H, W) index)

    def segments(self, label_divisor: int = LABEL_DIVISOR, void_label: int = VOID_LABEL) -> list[Segment]:
        """The segments of :attr:`panoptic`, counted at model resolution when it was upscaled
        to the frame (the same figures, a fraction of the pixels)."""
        if self.model_panoptic is None or self.frame_index is None:
            return segments_of(self.panoptic, label_divisor, void_label, compact=self.compact)
        rows, cols = self.frame_index
        return segments_of(self.model_panoptic, label_divisor, void_label, rows=rows, cols=cols, compact=self.compact)


# ---------------------------------------------------------------------------------------------
# 1. centers
# ---------------------------------------------------------------------------------------------
def find_instance_centers(
    center_heatmap: np.ndarray, threshold: float = 0.1, nms_kernel: int = 7, top_k: int | None = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the center heatmap.

    Args:
        center_heatmap: (H, W) float heatmap.
    Returns:
        centers (K, 2) int64 as (y, x) in row-major order, and their scores (K,) float.
        Values <= threshold are dropped; a center equals the max of its ``nms_kernel`` window;
        only centers scoring strictly above the top_k-th score (and > 0) are kept.
    """
    heat = center_heatmap
    if heat.dtype not in (np.float32, np.float64):
        heat = heat.astype(np.float32)
    # The reference zeroes values <= threshold (or sets them to -1) before the window max. No
    # need: a peak must exceed both the threshold and 0, and for such a pixel the window max of
    # the thresholded map equals that of the raw one (what the threshold removes lies below the
    # pixel's own value, which is in its window). The threshold is compared in the heatmap's
    # dtype, as OpenCV's threshold does.
    floor = max(heat.dtype.type(threshold), heat.dtype.type(0))
    # Border replication gives the same window max as padding with -inf: the replicated value
    # is always inside the window already.
    kernel = np.ones((nms_kernel, nms_kernel), np.uint8)
    pooled = cv2.dilate(heat, kernel, borderType=cv2.BORDER_REPLICATE)
    peak_mask = heat == pooled
    peak_mask &= heat > floor
    flat_idx = np.flatnonzero(peak_mask)
    scores = heat.ravel()[flat_idx]
    if top_k is not None and scores.size >= top_k and top_k < heat.size:
        kth = np.partition(scores, scores.size - top_k)[scores.size - top_k]
        keep = scores > max(kth, 0)
        flat_idx, scores = flat_idx[keep], scores[keep]
    w = heat.shape[1]
    centers = np.stack([flat_idx // w, flat_idx % w], axis=1).astype(np.int64)
    return centers, scores


def _candidate_order(
    index: np.ndarray, score: np.ndarray, shape: tuple[int, int], top_k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat index (K,) int64, score (K,), positions of the candidates that are centers in
    row-major order): the peaks (non-peaks are 0; a peak is > max(threshold, 0)), less the ties
    at the K-th score when all K are peaks (the top_k-th score may tie with peaks left out)."""
    index = np.asarray(index).reshape(-1).astype(np.int64)
    score = np.asarray(score).reshape(-1)
    keep = score > 0
    h, w = shape
    if top_k is not None and top_k < h * w and int(keep.sum()) >= top_k:
        keep &= score > score[keep].min()
    positions = np.flatnonzero(keep)
    return index, score, positions[np.argsort(index[positions], kind="stable")]


def centers_from_candidates(
    index: np.ndarray, score: np.ndarray, shape: tuple[int, int], top_k: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`find_instance_centers`' answer from an exported graph's top-K peak candidates.

    Args:
        index: (K,) integer flat (row-major) pixel indices, ``score``: (K,) float: the K largest
            values of the peak map (the heatmap where it is a peak above the threshold, else 0),
            K = min(top_k, H * W), any order among ties.
        shape: (H, W) of the heatmap; ``top_k``: the value the graph was exported with.
    Returns:
        centers (K', 2) int64 (y, x) in row-major order and their scores (K',): the same as
        :func:`find_instance_centers` on that heatmap with the graph's settings.
    """
    index, score, order = _candidate_order(index, score, shape, top_k)
    h, w = shape
    flat_idx, scores = index[order], score[order]
    return np.stack([flat_idx // w, flat_idx % w], axis=1).astype(np.int64), scores


def instance_from_graph(
    instance: np.ndarray, index: np.ndarray, score: np.ndarray, shape: tuple[int, int], top_k: int | None
) -> np.ndarray:
    """A graph's grouping (:func:`edgeps.model.deploy.group_candidates`) in the host's numbering.

    Args:
        instance: (H, W) integer, 0 off the thing pixels, else 1 + a candidate position.
        index, score, shape, top_k: as for :func:`centers_from_candidates`.
    Returns:
        (H, W) unsigned map as :func:`group_pixels` gives it: 0 off the thing pixels, else
        1 + the index of the center among ``centers_from_candidates``' (row-major) centers.
    """
    index, _, order = _candidate_order(index, score, shape, top_k)  # host center i <- candidate order[i]
    instance = np.asarray(instance)
    lo, hi = (0.0, 0.0) if instance.size == 0 else cv2.minMaxLoc(instance.astype(np.int32, copy=False))[:2]
    if lo < 0 or hi > index.size:
        raise InputShapeError(f"instance: values must be 0..{index.size} (1 + a candidate position)")
    if index.size < 255:  # one byte per pixel: OpenCV's LUT
        table = np.zeros(256, dtype=np.uint8)
        table[order + 1] = np.arange(1, order.size + 1)
        return cv2.LUT(instance.astype(np.uint8), table)
    lut = np.zeros(index.size + 1, dtype=np.int64)
    lut[order + 1] = np.arange(1, order.size + 1)
    return lut[instance]


# ---------------------------------------------------------------------------------------------
# 2. grouping
# ---------------------------------------------------------------------------------------------
def _lookup(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]``, through OpenCV's LUT when the index is uint8 (several times faster)."""
    if index.dtype == np.uint8 and table.size == 256 and table.dtype != np.int64:
        return cv2.LUT(index, table)
    return table[index]


def _dominance_map(centers: np.ndarray, shape: tuple[int, int], first: int = 1) -> np.ndarray:
    """(H, W) map with first + k on a disk around center k where k is surely the nearest center.

    With rho_k half the distance from center k to its nearest neighbour, every point closer
    than rho_k to center k is strictly nearer to k than to any other center. The disk is
    painted with radius floor(rho_k - 1) (OpenCV paints no pixel beyond the radius), so a
    voted position whose nearest pixel lies on the disk is within rho_k - 0.29 of center k.
    """
    out = np.zeros(shape, dtype=_label_dtype(first + len(centers) - 1))
    cy = centers[:, 0].astype(np.float64)
    cx = centers[:, 1].astype(np.float64)
    dy = cy[:, None] - cy[None, :]
    dx = cx[:, None] - cx[None, :]
    d2 = dy * dy + dx * dx
    np.fill_diagonal(d2, np.inf)
    radius = np.floor(np.sqrt(d2.min(axis=1)) / 2.0 - 1.0)
    drawn = np.flatnonzero(radius >= 0)
    at = centers[drawn].astype(np.int64)
    rows = zip(at[:, 1].tolist(), at[:, 0].tolist(), radius[drawn].astype(np.int64).tolist(), drawn.tolist())
    for x, y, r, i in rows:  # plain ints: numpy scalars cost more than the drawing here
        cv2.circle(out, (x, y), r, i + first, -1, lineType=cv2.LINE_8)
    return out


def _label_dtype(max_label: int) -> type:
    """The narrowest OpenCV-friendly dtype holding labels up to ``max_label``."""
    return np.uint8 if max_label < 255 else np.uint16 if max_label < 65535 else np.float32


def _cell_candidates(centers: np.ndarray, y0: np.ndarray, x0: np.ndarray, cell: float) -> np.ndarray:
    """(U, K) bool: which centers may be nearest to some point of each cell.

    A cell is the square [y0, y0 + cell] x [x0, x0 + cell]. A center is dropped only when its
    nearest possible distance to the cell exceeds another center's farthest possible one.
    """
    py = centers[:, 0].astype(np.float64)[None, :]
    px = centers[:, 1].astype(np.float64)[None, :]
    lo_y, hi_y = y0[:, None], (y0 + cell)[:, None]
    lo_x, hi_x = x0[:, None], (x0 + cell)[:, None]
    near_y = np.maximum(np.maximum(lo_y - py, py - hi_y), 0.0)
    near_x = np.maximum(np.maximum(lo_x - px, px - hi_x), 0.0)
    far_y = np.maximum(np.abs(py - lo_y), np.abs(py - hi_y))
    far_x = np.maximum(np.abs(px - lo_x), np.abs(px - hi_x))
    near = near_y * near_y + near_x * near_x
    far = far_y * far_y + far_x * far_x
    bound = far.min(axis=1, keepdims=True)
    # A relative slack keeps rounding from dropping a center that ties exactly.
    return near <= bound * (1.0 + 1e-9) + 1e-6


def _nearest_center(vy: np.ndarray, vx: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Exact index of the nearest center for points (vy, vx) (float64), ties to the lower index.

    The points are binned into square cells; each occupied cell keeps only the centers that
    can be nearest somewhere in it, and each point compares float64 distances against those.
    """
    k = len(centers)
    if vy.size * k <= _BRUTE_FORCE_PAIRS:  # few points: a plain search is cheaper
        dy = vy[:, None] - centers[:, 0].astype(np.float64)
        dx = vx[:, None] - centers[:, 1].astype(np.float64)
        return (dy * dy + dx * dx).argmin(axis=1)
    lo_y = min(float(vy.min()), float(centers[:, 0].min()))
    lo_x = min(float(vx.min()), float(centers[:, 1].min()))
    span = max(float(vy.max()) - lo_y, float(vx.max()) - lo_x, float(np.ptp(centers)), 1.0)
    cell = max(span / 64.0, 1.0)
    while True:
        ny = int((float(vy.max()) - lo_y) / cell) + 1
        nx = int((float(vx.max()) - lo_x) / cell) + 1
        gy = np.minimum(((vy - lo_y) / cell).astype(np.int64), ny - 1)
        gx = np.minimum(((vx - lo_x) / cell).astype(np.int64), nx - 1)
        cells = gy * nx + gx
        occupied, rows = compact_ids(cells)  # np.unique's answer, by a histogram over the few cells
        if occupied.size * k <= _MAX_CELL_CENTER_PAIRS:
            break
        cell *= 2.0
    # Cells are widened by a hair so a point that rounding put just outside is still covered.
    eps = 1e-6 * cell
    cand = _cell_candidates(
        centers, lo_y + (occupied // nx) * cell - eps, lo_x + (occupied % nx) * cell - eps, cell + 2 * eps
    )
    counts = cand.sum(axis=1)
    m = int(counts.max())
    # Candidate lists in ascending center order, padded by repeating the first one (a repeat
    # never changes the first-minimum answer).
    order = np.argsort(~cand, axis=1, kind="stable")[:, :m]
    table = np.where(np.arange(m)[None, :] < counts[:, None], order, order[:, :1])
    out = np.empty(vy.size, dtype=np.int64)
    point_counts = counts[rows]
    for c in np.flatnonzero(np.bincount(point_counts)):  # the distinct candidate counts, ascending
        sel = np.flatnonzero(point_counts == c)
        out[sel] = _nearest_among(vy[sel], vx[sel], table[rows[sel], :c], centers)
    return out


def _nearest_among(vy: np.ndarray, vx: np.ndarray, cands: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Per point, the candidate center (from ``cands`` (N, M), ascending) nearest to it.

    float64 squared distances, first minimum on ties: the same arithmetic as a plain loop.
    """
    cy = centers[:, 0].astype(np.float64)
    cx = centers[:, 1].astype(np.float64)
    out = np.empty(vy.size, dtype=np.int64)
    for s in range(0, vy.size, _CHUNK):
        c = cands[s : s + _CHUNK]
        dy = vy[s : s + _CHUNK, None] - cy[c]
        dx = vx[s : s + _CHUNK, None] - cx[c]
        dist = dy * dy + dx * dx
        out[s : s + _CHUNK] = c[np.arange(len(c)), dist.argmin(axis=1)]
    return out


def group_pixels(thing_mask: np.ndarray, offsets: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Assign every thing pixel to the center nearest to its voted position.

    Args:
        thing_mask: (H, W) bool, the pixels to group.
        offsets: (2, H, W) float, (dy, dx) from each pixel to its instance center.
        centers: (K, 2) int (y, x), in row-major order.
    Returns:
        (H, W) unsigned int map: 0 outside ``thing_mask``, else 1 + index of the nearest
        center (Euclidean, from (y + dy, x + dx); ties to the lower index). uint8 when
        K < 255, wider otherwise. All 0 when K == 0.

    Most votes land near their center: a lookup of each voted position in a map of disks
    where one center is provably nearest settles them in one OpenCV remap. The rest (votes
    near a Voronoi boundary or off the image) get an exact search over candidate centers.
    """
    return _group_pixels(thing_mask, offsets, centers, 1)


def _group_pixels(thing_mask: np.ndarray, offsets: np.ndarray, centers: np.ndarray, first: int) -> np.ndarray:
    """:func:`group_pixels` with labels ``first + index`` (dtype from :func:`_label_dtype`)."""
    thing_mask = np.ascontiguousarray(thing_mask, dtype=bool)
    h, w = thing_mask.shape
    k = len(centers)
    if k == 0 or not thing_mask.any():
        return np.zeros((h, w), dtype=np.uint8)
    if k == 1:
        label = thing_mask.astype(_label_dtype(first))
        label *= first
        return label
    off_y = np.ascontiguousarray(offsets[0], dtype=np.float32)
    off_x = np.ascontiguousarray(offsets[1], dtype=np.float32)
    dominance = _dominance_map(centers, (h, w), first)
    label = _remap_nearest(dominance, off_x, off_y)
    label *= thing_mask
    if cv2.countNonZero(label) == cv2.countNonZero(thing_mask.view(np.uint8)):
        return label  # every thing pixel was settled by the dominance disks
    rest = np.flatnonzero(thing_mask.ravel() & (label.ravel() == 0))
    ys = rest // w
    vy = ys + offsets[0].ravel()[rest].astype(np.float64)
    vx = (rest - ys * w) + offsets[1].ravel()[rest].astype(np.float64)
    label.ravel()[rest] = _nearest_center(vy, vx, centers) + first
    return label


def _remap_nearest(src: np.ndarray, off_x: np.ndarray, off_y: np.ndarray) -> np.ndarray:
    """``src`` sampled (nearest pixel, 0 outside) at (y + off_y, x + off_x) for every (y, x).

    ``off_x`` / ``off_y``: (H, W) float32 C-contiguous. OpenCV's relative maps (4.10+) read
    the offsets as they are; older versions get absolute maps built here.
    """
    flags = cv2.INTER_NEAREST
    if _RELATIVE_MAP is not None:
        map_x, map_y = off_x, off_y
        flags |= _RELATIVE_MAP
    else:
        h, w = off_x.shape
        map_y = off_y + np.arange(h, dtype=np.float32)[:, None]
        map_x = off_x + np.arange(w, dtype=np.float32)[None, :]
    return cv2.remap(src, map_x, map_y, flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---------------------------------------------------------------------------------------------
# 3. fusion
# ---------------------------------------------------------------------------------------------
def merge_semantic_and_instance(
    semantic: np.ndarray,
    instance: np.ndarray,
    thing_lut: np.ndarray,
    n_instances: int,
    *,
    label_divisor: int = LABEL_DIVISOR,
    stuff_area: int = 2048,
    void_label: int = VOID_LABEL,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse a class map and an instance map into panoptic ids.

    Args:
        semantic: (H, W) class map, non-negative integers (uint8 takes the fast path).
        instance: (H, W) unsigned, 0 = no instance, k = instance k (thing pixels only).
        thing_lut: (n_classes,) bool, ``thing_lut[c]`` is True for thing classes; n_classes
            exceeds every value in ``semantic``.
        n_instances: number of instance indices (K).
    Returns:
        (panoptic (H, W) int32, instance_ids (K,) int64 with the panoptic id of each instance
        index, or ``void_label`` for instances with no pixels).
    """
    n_classes = thing_lut.size
    if _fusable(semantic, n_classes, n_instances) and instance.dtype == np.uint8:
        semantic, instance = np.ascontiguousarray(semantic), np.ascontiguousarray(instance)
        index = semantic.copy()
        if n_instances:
            shifted = cv2.add(instance, n_classes - 1)  # labels n_classes + k, no overflow (< 255)
            cv2.copyTo(shifted, instance, index)
        return _fuse_index(index, semantic, thing_lut, n_instances, label_divisor, stuff_area, void_label)
    area = np.bincount(semantic.ravel(), minlength=n_classes)
    classes = np.arange(n_classes, dtype=np.int64)
    stuff_value = np.where((area >= stuff_area) & ~thing_lut, classes * label_divisor, void_label).astype(np.int32)
    pan = _lookup(_pad_table(stuff_value, semantic), semantic)
    instance_ids = np.full(n_instances, void_label, dtype=np.int64)
    if n_instances == 0:
        return pan, instance_ids
    inside = instance.ravel() > 0
    key = (instance.ravel()[inside].astype(np.int64) - 1) * n_classes + semantic.ravel()[inside]
    votes = np.bincount(key, minlength=n_instances * n_classes).reshape(n_instances, n_classes)
    instance_ids = _number_instances(votes, label_divisor, void_label)
    table = np.concatenate([[void_label], instance_ids]).astype(np.int32)
    values = _lookup(_pad_table(table, instance), instance)
    np.copyto(pan, values, where=instance > 0)
    return pan, instance_ids


def _fusable(semantic: np.ndarray, n_classes: int, n_instances: int) -> bool:
    """Whether the one-byte index of :func:`_fuse_index` can hold the frame."""
    return (
        semantic.dtype == np.uint8
        and n_classes + n_instances - 1 < 255  # labels up to n_classes + K - 1, below 255
        and semantic.size < _EXACT_FLOAT32_COUNT  # calcHist's float32 counts stay exact
    )


def _fuse_index(
    index: np.ndarray,
    semantic: np.ndarray,
    thing_lut: np.ndarray,
    n_instances: int,
    label_divisor: int,
    stuff_area: int,
    void_label: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Panoptic map from a one-byte index per pixel, as :func:`merge_semantic_and_instance`.

    ``index``: (H, W) uint8, the class id (< n_classes = ``thing_lut.size``) where a pixel has
    no instance, n_classes + k on a pixel of instance k. ``semantic``: (H, W) uint8 class map.
    One joint (index, class) histogram gives the class areas and the instance votes; one int32
    lookup gives the map (a thing class without an instance, or small stuff, maps to void).
    """
    n_classes = thing_lut.size
    joint = cv2.calcHist([index, semantic], [0, 1], None, [256, n_classes], [0, 256, 0, n_classes])
    joint = joint.astype(np.int64)
    area = joint.sum(axis=0)
    instance_ids = _number_instances(joint[n_classes : n_classes + n_instances], label_divisor, void_label)
    table = np.full(256, void_label, np.int32)
    classes = np.arange(n_classes, dtype=np.int64)
    table[:n_classes] = np.where((area >= stuff_area) & ~thing_lut, classes * label_divisor, void_label)
    table[n_classes : n_classes + n_instances] = instance_ids
    return cv2.LUT(index, table), instance_ids


def _number_instances(votes: np.ndarray, label_divisor: int, void_label: int) -> np.ndarray:
    """(K,) int64 panoptic ids from (K, n_classes) class votes per instance.

    The majority class wins (the smallest class id on a tie); instances are numbered 1, 2, ...
    per class in instance (row-major center) order; an instance with no votes is void.
    """
    instance_ids = np.full(len(votes), void_label, dtype=np.int64)
    present = votes.sum(axis=1) > 0
    cls_present = votes[present].argmax(axis=1)  # first max = smallest class id on ties
    order = np.argsort(cls_present, kind="stable")
    sorted_cls = cls_present[order]
    numbers = np.empty_like(order)
    numbers[order] = np.arange(order.size) - np.searchsorted(sorted_cls, sorted_cls, side="left") + 1
    if numbers.size and numbers.max() >= label_divisor:
        raise InputShapeError(
            f"more than {label_divisor - 1} instances of one class: raise label_divisor or lower top_k"
        )
    instance_ids[present] = cls_present * label_divisor + numbers
    return instance_ids


def _pad_table(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pad a lookup table to 256 entries for OpenCV's LUT when the index is uint8."""
    if index.dtype == np.uint8 and table.size <= 256:
        return np.concatenate([table, np.zeros(256 - table.size, table.dtype)])
    return table


# ---------------------------------------------------------------------------------------------
# 4. entry point
# ---------------------------------------------------------------------------------------------
def _all_finite(arr: np.ndarray) -> bool:
    """True when every value of a float array is finite.

    A finite sum proves it (an Inf or NaN anywhere makes the sum Inf or NaN) in one pass with
    no temporary array; only a non-finite sum, which finite values can also give by overflow,
    takes the exact element-wise check."""
    if arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous and arr.ndim >= 2 and arr.size:
        # OpenCV's sum: the same proof, about twice as fast as numpy's pairwise sum.
        total = cv2.sumElems(arr.reshape(-1, arr.shape[-1]))[0]
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            total = arr.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(arr).all())


def _check_inputs(
    semantic: np.ndarray, center_heatmap: np.ndarray, offsets: np.ndarray, semantic_prob: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int | None]:
    """The heads, checked, and the largest class id of a (H, W) class map (None for logits)."""
    max_class = None
    for name, arr in (("semantic", semantic), ("center_heatmap", center_heatmap), ("offsets", offsets)):
        if not isinstance(arr, np.ndarray):
            raise InputShapeError(f"{name}: expected a numpy array, got {type(arr).__name__}")
    if semantic.ndim == 2:
        if not np.issubdtype(semantic.dtype, np.integer):
            raise InputShapeError(f"semantic: a (H, W) class map must be integer, got dtype {semantic.dtype}")
        max_class = _max_class(semantic)  # raises on a negative id
    elif semantic.ndim == 3:
        if not np.issubdtype(semantic.dtype, np.floating):
            raise InputShapeError(f"semantic: (C, H, W) logits must be float, got dtype {semantic.dtype}")
        if semantic.shape[0] == 0:
            raise InputShapeError(f"semantic: logits need at least one class, got shape {semantic.shape}")
        if not _all_finite(semantic):
            raise InputShapeError(f"semantic: logits of shape {semantic.shape} contain NaN or Inf")
    else:
        raise InputShapeError(f"semantic: expected (H, W) class ids or (C, H, W) logits, got shape {semantic.shape}")
    hw = semantic.shape[-2:]
    if center_heatmap.ndim == 3 and center_heatmap.shape[0] == 1:
        center_heatmap = center_heatmap[0]
    if center_heatmap.shape != hw:
        raise InputShapeError(
            f"center_heatmap: expected shape {tuple(hw)} to match semantic, got {center_heatmap.shape}"
        )
    if not np.issubdtype(center_heatmap.dtype, np.floating):
        raise InputShapeError(f"center_heatmap: expected a float array, got dtype {center_heatmap.dtype}")
    if offsets.shape != (2, *hw):
        raise InputShapeError(f"offsets: expected shape (2, {hw[0]}, {hw[1]}) as (dy, dx), got {offsets.shape}")
    if not np.issubdtype(offsets.dtype, np.floating):
        raise InputShapeError(f"offsets: expected a float array, got dtype {offsets.dtype}")
    if not _all_finite(center_heatmap):
        raise InputShapeError(f"center_heatmap: shape {center_heatmap.shape} contains NaN or Inf")
    if not _all_finite(offsets):
        raise InputShapeError(f"offsets: shape {offsets.shape} contains NaN or Inf")
    if semantic_prob is not None:
        if semantic_prob.shape != hw or not np.issubdtype(semantic_prob.dtype, np.floating):
            raise InputShapeError(
                f"semantic_prob: expected float {tuple(hw)}, got {semantic_prob.dtype} {semantic_prob.shape}"
            )
        if not _all_finite(semantic_prob):
            raise InputShapeError(f"semantic_prob: shape {semantic_prob.shape} contains NaN or Inf")
    return semantic, center_heatmap, offsets, semantic_prob, max_class


def _max_class(semantic: np.ndarray) -> int:
    """Largest value of an integer class map (0 when empty); InputShapeError on a negative one.

    One pass: viewed as unsigned, a negative value is larger than every non-negative one.
    """
    if semantic.size == 0:
        return 0
    if np.issubdtype(semantic.dtype, np.signedinteger):
        top = int(semantic.view(np.dtype(f"u{semantic.dtype.itemsize}")).max())
        if top >= 1 << (8 * semantic.dtype.itemsize - 1):
            raise InputShapeError(f"semantic: class ids must be >= 0, got {int(semantic.min())}")
        return top
    return int(semantic.max())


def _check_settings(label_divisor: int, stuff_area: int, nms_kernel: int, top_k: int | None) -> None:
    if label_divisor < 1:
        raise InputShapeError(f"label_divisor: must be >= 1, got {label_divisor}")
    if stuff_area < 0:
        raise InputShapeError(f"stuff_area: must be >= 0, got {stuff_area}")
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise InputShapeError(f"nms_kernel: must be a positive odd integer, got {nms_kernel}")
    if top_k is not None and top_k < 1:
        raise InputShapeError(f"top_k: must be >= 1 or None, got {top_k}")


def panoptic_prediction_from_heads(
    semantic: np.ndarray,
    center_heatmap: np.ndarray,
    offsets: np.ndarray,
    *,
    thing_ids: Iterable[int],
    label_divisor: int = LABEL_DIVISOR,
    stuff_area: int = 2048,
    void_label: int = VOID_LABEL,
    threshold: float = 0.1,
    nms_kernel: int = 7,
    top_k: int | None = 200,
    thing_area: int = 0,
    semantic_prob: np.ndarray | None = None,
    compute_scores: bool = True,
    center_candidates: tuple[np.ndarray, np.ndarray] | None = None,
    instance: np.ndarray | None = None,
) -> PanopticPrediction:
    """Like :func:`panoptic_from_heads`, plus centers and per-segment scores.

    ``center_candidates``: (flat index (K,), score (K,)) from a graph that ran the center
    extraction with these settings (see :func:`centers_from_candidates`); the heatmap is then
    not scanned here. ``instance``: with them, the (H, W) grouping the graph did too (see
    :func:`instance_from_graph`); the pixels are then not grouped here.

    ``semantic_prob`` (H, W) is the max class probability (what the exported graph emits
    beside its ArgMax); given logits, it is computed here by softmax. Scores are left empty
    when ``compute_scores`` is False or no probability is available.

    ``thing_area``: thing instances smaller than this many pixels become void (0: keep all);
    small fragments of a split object are false positives in PQ, while the pixels they leave
    void cost the matched segment little.
    """
    semantic, center_heatmap, offsets, semantic_prob, max_class = _check_inputs(
        semantic, center_heatmap, offsets, semantic_prob
    )
    _check_settings(label_divisor, stuff_area, nms_kernel, top_k)
    _check_thing_area(thing_area)
    things = np.fromiter((int(t) for t in thing_ids), dtype=np.int64)
    if things.size and things.min() < 0:
        raise InputShapeError(f"thing_ids: must be >= 0, got {things.tolist()}")
    if semantic.ndim == 3 and things.size and things.max() >= semantic.shape[0]:
        bad = sorted(set(things[things >= semantic.shape[0]].tolist()))
        raise CategoryError(
            f"thing_ids: {bad} are not among the {semantic.shape[0]} classes (0..{semantic.shape[0] - 1}) of the "
            "semantic logits"
        )
    if semantic.ndim == 3:
        if semantic_prob is None and compute_scores:
            shifted = semantic - semantic.max(axis=0, keepdims=True)
            semantic_prob = (1.0 / np.exp(shifted).sum(axis=0)).astype(np.float32)
        semantic = semantic.argmax(axis=0)
        max_class = _max_class(semantic)
    n_classes = max(max_class, int(things.max(initial=-1))) + 1
    thing_lut = np.zeros(n_classes, dtype=bool)
    thing_lut[things] = True
    # uint8 class maps take OpenCV's LUT/histogram paths; wider ones stay exact in numpy.
    if n_classes <= 256 and semantic.dtype != np.uint8:
        semantic = semantic.astype(np.uint8)
    elif n_classes > 256 and semantic.dtype not in (np.int32, np.int64):
        semantic = semantic.astype(np.int64)

    if center_candidates is None:
        centers, center_scores = find_instance_centers(center_heatmap, threshold, nms_kernel, top_k)
    else:
        centers, center_scores = centers_from_candidates(*center_candidates, center_heatmap.shape, top_k)
    if instance is not None:
        if center_candidates is None:
            raise InputShapeError("instance: a graph's grouping needs its center_candidates")
        if np.shape(instance) != semantic.shape:
            raise InputShapeError(f"instance: shape {np.shape(instance)} differs from semantic {semantic.shape}")
        labels = instance_from_graph(instance, *center_candidates, center_heatmap.shape, top_k)
        panoptic, instance_ids = merge_semantic_and_instance(
            semantic,
            labels,
            thing_lut,
            len(centers),
            label_divisor=label_divisor,
            stuff_area=stuff_area,
            void_label=void_label,
        )
    elif _fusable(semantic, n_classes, len(centers)):
        # One byte per pixel from here on: the class id, replaced on thing pixels by the
        # grouping's label placed after the class ids.
        semantic = np.ascontiguousarray(semantic)
        thing_mask = cv2.LUT(semantic, _pad_table(thing_lut.astype(np.uint8), semantic)).view(bool)
        label = _group_pixels(thing_mask, offsets, centers, n_classes)
        index = semantic.copy()
        cv2.copyTo(label, label, index)  # label is 0 off the thing pixels
        panoptic, instance_ids = _fuse_index(
            index, semantic, thing_lut, len(centers), label_divisor, stuff_area, void_label
        )
    else:
        thing_mask = _lookup(_pad_table(thing_lut.astype(np.uint8), semantic), semantic).view(bool)
        instance = group_pixels(thing_mask, offsets, centers)
        panoptic, instance_ids = merge_semantic_and_instance(
            semantic,
            instance,
            thing_lut,
            len(centers),
            label_divisor=label_divisor,
            stuff_area=stuff_area,
            void_label=void_label,
        )
    if thing_area > 0 and len(centers):
        panoptic, instance_ids = _drop_small_instances(panoptic, instance_ids, thing_area, void_label)
    scores: dict[int, float] = {}
    pred = PanopticPrediction(panoptic, scores, centers, center_scores)
    if semantic_prob is not None and compute_scores:
        ids, inverse = compact_ids(panoptic)
        pred.compact = (ids, inverse.reshape(panoptic.shape))  # kept for the segments
        scores.update(_segment_scores(ids, inverse, semantic_prob, instance_ids, center_scores, void_label))
    return pred


def _check_thing_area(thing_area: int) -> None:
    if thing_area < 0:
        raise InputShapeError(f"thing_area: must be >= 0, got {thing_area}")


def _drop_small_instances(
    panoptic: np.ndarray, instance_ids: np.ndarray, thing_area: int, void_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """``panoptic`` with every instance of fewer than ``thing_area`` pixels set to void, and
    ``instance_ids`` (one panoptic id per center) with those ids set to ``void_label``."""
    ids, inverse = compact_ids(panoptic)
    area = np.bincount(inverse, minlength=len(ids))
    small = (area < thing_area) & np.isin(ids, instance_ids[instance_ids != void_label])
    if not small.any():
        return panoptic, instance_ids
    table = np.where(small, void_label, ids).astype(panoptic.dtype)
    dropped = ids[small]
    kept_ids = np.where(np.isin(instance_ids, dropped), void_label, instance_ids)
    return table[inverse].reshape(panoptic.shape), kept_ids


def _segment_scores(
    ids: np.ndarray,
    inverse: np.ndarray,
    prob: np.ndarray,
    instance_ids: np.ndarray,
    center_scores: np.ndarray,
    void_label: int,
) -> dict[int, float]:
    mean_prob = np.bincount(inverse, weights=prob.ravel().astype(np.float64)) / np.bincount(inverse)
    center_of = {
        int(pid): float(s) for pid, s in zip(instance_ids.tolist(), center_scores.tolist()) if pid != void_label
    }
    return {
        int(pid): float(p) * center_of.get(int(pid), 1.0)
        for pid, p in zip(ids.tolist(), mean_prob.tolist())
        if pid != void_label
    }


def panoptic_from_heads(
    semantic: np.ndarray,
    center_heatmap: np.ndarray,
    offsets: np.ndarray,
    *,
    thing_ids: Iterable[int],
    label_divisor: int = LABEL_DIVISOR,
    stuff_area: int = 2048,
    void_label: int = VOID_LABEL,
    threshold: float = 0.1,
    nms_kernel: int = 7,
    top_k: int | None = 200,
) -> np.ndarray:
    """Panoptic map from the three heads (the one post-processing entry point).

    Args:
        semantic: (H, W) integer class map, or (C, H, W) float logits (argmax taken here, at
            a cost: put the ArgMax in the model graph instead).
        center_heatmap: (H, W) float (a leading axis of 1 is accepted).
        offsets: (2, H, W) float, (dy, dx) in pixels from each pixel to its instance center.
    Returns:
        (H, W) int32 panoptic ids ``class * label_divisor + instance``; stuff has instance 0;
        ``void_label`` where nothing is assigned.
    Raises:
        InputShapeError (a ValueError) naming the argument, its shape or dtype.
    """
    return panoptic_prediction_from_heads(
        semantic,
        center_heatmap,
        offsets,
        thing_ids=thing_ids,
        label_divisor=label_divisor,
        stuff_area=stuff_area,
        void_label=void_label,
        threshold=threshold,
        nms_kernel=nms_kernel,
        top_k=top_k,
        compute_scores=False,
    ).panoptic


# ---------------------------------------------------------------------------------------------
# settings and model outputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PostprocessSettings:
    """Post-processing settings, in pixels of the model's output (its input size).

    Defaults are the Panoptic-DeepLab literature values; configs and bundle manifests
    override them by name.
    """

    threshold: float = 0.1
    nms_kernel: int = 7
    top_k: int | None = 200
    stuff_area: int = 2048
    label_divisor: int = LABEL_DIVISOR
    void_label: int = VOID_LABEL
    thing_area: int = 0

    @classmethod
    def from_dict(cls, raw: dict | None, where: str = "postprocess") -> PostprocessSettings:
        from edgeps.errors import ConfigError
        from edgeps.validate import check_mapping

        kinds = {
            "threshold": float,
            "nms_kernel": int,
            "top_k": (int, type(None)),
            "stuff_area": int,
            "label_divisor": int,
            "void_label": int,
            "thing_area": int,
        }
        settings = cls(**check_mapping({} if raw is None else raw, kinds, where))
        try:
            _check_settings(settings.label_divisor, settings.stuff_area, settings.nms_kernel, settings.top_k)
            _check_thing_area(settings.thing_area)
        except InputShapeError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        return settings

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "nms_kernel": self.nms_kernel,
            "top_k": self.top_k,
            "stuff_area": self.stuff_area,
            "label_divisor": self.label_divisor,
            "void_label": self.void_label,
            "thing_area": self.thing_area,
        }


def _squeeze_batch(name: str, arr: np.ndarray, ndim: int) -> np.ndarray:
    arr = np.asarray(arr)
    while arr.ndim > ndim and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != ndim:
        raise InputShapeError(f"outputs['{name}']: expected batch size 1 and {ndim} other axes, got shape {arr.shape}")
    return arr


def panoptic_from_outputs(
    outputs: dict[str, np.ndarray],
    *,
    thing_ids: Iterable[int],
    settings: PostprocessSettings | None = None,
    geometry: Geometry | None = None,
    compute_scores: bool = True,
) -> PanopticPrediction:
    """Model outputs of one frame (any backend) -> panoptic prediction at the frame's size.

    ``outputs``: ``semantic`` (class map (1, H, W) int, or logits (1, C, H, W) float),
    optional ``semantic_prob`` (1, H, W), ``center`` (1, 1, H, W), ``offset`` (1, 2, H, W)
    (dy, dx) in model-input pixels; optional ``center_index`` / ``center_score`` (1, K), the
    graph's center candidates, and ``instance`` (1, H, W), the graph's grouping (used as they
    are: the caller drops them when the settings are not those the graph was exported with).
    Post-processing runs at the model's resolution (so ``stuff_area`` counts model pixels);
    with a ``geometry`` from preprocessing the map is then
    cropped of letterbox padding and resized (nearest) to the frame, centers likewise.
    """
    s = settings or PostprocessSettings()
    for key in ("semantic", "center", "offset"):
        if key not in outputs:
            raise InputShapeError(f"outputs: missing head '{key}' (got {sorted(outputs)})")
    sem = np.asarray(outputs["semantic"])
    sem = _squeeze_batch("semantic", sem, 3 if np.issubdtype(sem.dtype, np.floating) else 2)
    prob = outputs.get("semantic_prob")
    prob = None if prob is None else _squeeze_batch("semantic_prob", prob, 2)
    pred = panoptic_prediction_from_heads(
        sem,
        _squeeze_batch("center", outputs["center"], 2),
        _squeeze_batch("offset", outputs["offset"], 3),
        thing_ids=thing_ids,
        label_divisor=s.label_divisor,
        stuff_area=s.stuff_area,
        void_label=s.void_label,
        threshold=s.threshold,
        nms_kernel=s.nms_kernel,
        top_k=s.top_k,
        thing_area=s.thing_area,
        semantic_prob=prob,
        compute_scores=compute_scores,
        center_candidates=(
            (np.asarray(outputs["center_index"]), np.asarray(outputs["center_score"]))
            if "center_index" in outputs and "center_score" in outputs
            else None
        ),
        instance=_squeeze_batch("instance", outputs["instance"], 2) if "instance" in outputs else None,
    )
    if geometry is not None:
        g = geometry
        crop = (slice(g.top, g.top + g.height), slice(g.left, g.left + g.width))
        pred.model_panoptic = pred.panoptic[crop]
        pred.frame_index = frame_index(g)
        if pred.compact is not None:
            pred.compact = (pred.compact[0], pred.compact[1][crop])
        pred.panoptic = map_to_frame(pred.panoptic, g)
        scale = np.array([g.frame[0] / g.height, g.frame[1] / g.width])
        pred.centers = np.floor((pred.centers - [g.top, g.left] + 0.5) * scale).astype(np.int64)
    return pred
