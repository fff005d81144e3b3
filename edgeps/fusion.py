"""Panoptic maps from two networks: a semantic map fused with scored instance masks.

The procedure of Kirillov et al. 2019 (section 7) as panopticapi's
``combine_semantic_and_instance_predictions.py`` implements it:

1. Instances are taken in descending score order; equal scores keep their input order.
   Instances scoring below ``score_threshold`` are dropped.
2. An instance whose mask is empty is skipped. Otherwise, with ``taken`` the pixels of its
   mask that earlier instances already hold, it is dropped when ``taken / area`` is strictly
   greater than ``overlap_threshold``; else it takes only its free pixels (an instance left
   with no free pixel, possible only when ``overlap_threshold >= 1``, is dropped too).
3. Accepted instances are numbered 1, 2, ... per class in the order they are accepted.
4. The pixels no instance holds follow the semantic map: a stuff class keeps its leftover
   pixels when that leftover area is at least ``stuff_area``, else they become void. Pixels
   of a thing class that no instance covers are void.

Masks may come at the output size, at another size (resized to it) or relative to their box
(pasted into it); see :func:`fuse_semantic_and_instances` for the exact resampling rules.
Each instance is worked on inside its box only (its given box, or the box of its mask), so the
cost grows with the instances' area, not with their number times the image.

:func:`panoptic_to_instances` goes the other way: the thing segments of a panoptic map with
segment scores become COCO instance-segmentation results (RLE + score), for mask AP.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import FormatError, InputShapeError
from edgeps.io.rle import bbox_of_counts, decode_counts, encode_label_map, rle_counts, rle_decode, rle_size
from edgeps.panoptic import segments_of
from edgeps.postprocess import PanopticPrediction

_INT32_MAX = 2**31 - 1


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _check_settings(
    overlap_threshold: float, stuff_area: int, score_threshold: float, label_divisor: int, void_label: int
) -> None:
    for name, value in (("overlap_threshold", overlap_threshold), ("score_threshold", score_threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputShapeError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise InputShapeError(f"{name}: expected a finite number, got {value!r}")
    if overlap_threshold < 0:
        raise InputShapeError(f"overlap_threshold: must be >= 0, got {overlap_threshold}")
    for name, value in (("stuff_area", stuff_area), ("label_divisor", label_divisor), ("void_label", void_label)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputShapeError(f"{name}: expected an integer, got {value!r}")
    if stuff_area < 0:
        raise InputShapeError(f"stuff_area: must be >= 0, got {stuff_area}")
    if label_divisor < 1:
        raise InputShapeError(f"label_divisor: must be >= 1, got {label_divisor}")


def _id_array(ids: Iterable[int], name: str) -> np.ndarray:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InputShapeError(f"{name}: expected an iterable of class ids, got {type(ids).__name__}")
    values = list(ids)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise InputShapeError(f"{name}: expected integer class ids, got {values!r}")
    arr = np.array(values, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise InputShapeError(f"{name}: class ids must be >= 0, got {sorted(arr[arr < 0].tolist())}")
    return arr


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise InputShapeError(f"size: expected (H, W) as two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _semantic_map(semantic: Any, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W) non-negative integer class map at the output size."""
    if not isinstance(semantic, np.ndarray):
        raise InputShapeError(f"semantic: expected a numpy array, got {type(semantic).__name__}")
    if semantic.ndim == 2:
        if not np.issubdtype(semantic.dtype, np.integer):
            raise InputShapeError(f"semantic: a (H, W) class map must be integer, got dtype {semantic.dtype}")
        if semantic.size and semantic.dtype != np.uint8 and semantic.min() < 0:
            raise InputShapeError(f"semantic: class ids must be >= 0, got {int(semantic.min())}")
        sem = semantic
    elif semantic.ndim == 3:
        if not np.issubdtype(semantic.dtype, np.floating):
            raise InputShapeError(
                f"semantic: (C, H, W) logits or probabilities must be float, got dtype {semantic.dtype}"
            )
        if semantic.shape[0] == 0:
            raise InputShapeError(f"semantic: logits need at least one class, got shape {semantic.shape}")
        if not np.isfinite(semantic).all():
            raise InputShapeError(f"semantic: logits of shape {semantic.shape} contain NaN or Inf")
        sem = semantic.argmax(axis=0)
    else:
        raise InputShapeError(
            f"semantic: expected (H, W) class ids or (C, H, W) logits/probabilities, got shape {semantic.shape}"
        )
    if sem.shape[0] == 0 or sem.shape[1] == 0:
        raise InputShapeError(f"semantic: the map is empty, shape {semantic.shape}")
    if size is not None and sem.shape != size:
        rows = _nearest_index(sem.shape[0], size[0])
        cols = _nearest_index(sem.shape[1], size[1])
        sem = sem[rows[:, None], cols[None, :]]
    return sem


def _vector(arr: Any, name: str, n: int | None) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise InputShapeError(f"{name}: expected shape (N,), got {a.shape}")
    if n is not None and a.shape[0] != n:
        raise InputShapeError(f"{name}: expected {n} entries (one per mask), got {a.shape[0]}")
    return a


# ---------------------------------------------------------------------------------------------
# resampling: index and weight vectors along one axis
# ---------------------------------------------------------------------------------------------
def _nearest_index(n_src: int, n_out: int) -> np.ndarray:
    """Source index of each output position of a nearest resize, centres aligned:
    ``floor((p + 0.5) * n_src / n_out)``, in exact integer arithmetic."""
    p = np.arange(n_out, dtype=np.int64)
    return (2 * p + 1) * n_src // (2 * n_out)


class _Axis:
    """How one output axis (positions ``lo .. hi - 1``) reads a source axis of ``n_src``.

    ``box`` is None for a whole-image resize (the source spans the output axis ``n_out``;
    bilinear clamps at the edges), or the box's (start, end) in output pixels for a
    box-relative mask (outside the source, values are 0).
    """

    def __init__(self, n_src: int, n_out: int, lo: int, hi: int, box: tuple[float, float] | None) -> None:
        self.n_src, self.n_out, self.box = n_src, n_out, box
        self.pos = np.arange(lo, hi, dtype=np.int64)
        self.scale = n_src / n_out if box is None else n_src / (box[1] - box[0])

    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """(source index clipped into range, valid) per position."""
        if self.box is None:
            idx = (2 * self.pos + 1) * self.n_src // (2 * self.n_out)
            return idx, np.ones(idx.shape, bool)
        idx = np.floor((self.pos + 0.5 - self.box[0]) * self.scale).astype(np.int64)
        valid = (idx >= 0) & (idx < self.n_src)
        return np.clip(idx, 0, self.n_src - 1), valid

    def linear(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i0, i1, f) per position: the value is ``(1 - f) * src[i0] + f * src[i1]`` on the
        source padded with one zero on each side (indices here are into the padded axis)."""
        if self.box is None:
            coord = np.maximum((self.pos + 0.5) * self.scale - 0.5, 0.0)
            i0 = np.floor(coord).astype(np.int64)
            f = coord - i0
            i1 = np.minimum(i0 + 1, self.n_src - 1)
            i0 = np.minimum(i0, self.n_src - 1)
        else:
            coord = (self.pos + 0.5 - self.box[0]) * self.scale - 0.5
            i0 = np.floor(coord).astype(np.int64)
            f = coord - i0
            i1 = np.clip(i0 + 1, -1, self.n_src)
            i0 = np.clip(i0, -1, self.n_src)
        return i0 + 1, i1 + 1, f

    def touching(self, s0: int, s1: int, nearest: bool) -> tuple[int, int]:
        """The range of positions (offsets into ``pos``) whose value can depend on source
        indices ``s0 .. s1 - 1``; (0, 0) when none does."""
        if nearest:
            idx, valid = self.nearest()
            hit = valid & (idx >= s0) & (idx < s1)
        else:
            i0, i1, _ = self.linear()
            hit = ((i0 > s0) & (i0 <= s1)) | ((i1 > s0) & (i1 <= s1))  # padded indices: +1
        where = np.flatnonzero(hit)
        return (int(where[0]), int(where[-1]) + 1) if where.size else (0, 0)


def _resample(src: np.ndarray, rows: _Axis, cols: _Axis, nearest: bool) -> np.ndarray:
    """The resampled mask over ``rows.pos`` x ``cols.pos``, as bool."""
    if nearest:
        ri, rv = rows.nearest()
        ci, cv = cols.nearest()
        return (src[ri[:, None], ci[None, :]] != 0) & rv[:, None] & cv[None, :]
    padded = np.zeros((src.shape[0] + 2, src.shape[1] + 2), dtype=np.float64)
    padded[1:-1, 1:-1] = src
    r0, r1, fy = rows.linear()
    c0, c1, fx = cols.linear()
    along_rows = (1.0 - fy)[:, None] * padded[r0] + fy[:, None] * padded[r1]
    value = (1.0 - fx)[None, :] * along_rows[:, c0] + fx[None, :] * along_rows[:, c1]
    return value > 0.5


def _strong_bbox(src: np.ndarray, nearest: bool) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the source pixels that can make an output pixel true."""
    strong = src != 0 if nearest else src > 0.5
    ys = np.flatnonzero(strong.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(strong.any(axis=0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


# ---------------------------------------------------------------------------------------------
# instance masks -> (window, bool mask in the window)
# ---------------------------------------------------------------------------------------------
Window = tuple[int, int, int, int, np.ndarray]  # y0, y1, x0, x1, (y1 - y0, x1 - x0) bool


class _Masks:
    """The instance masks, whatever their form, one window at a time."""

    def __init__(self, masks: Any, n: int | None, hw: tuple[int, int], boxes: np.ndarray | None) -> None:
        self.hw, self.boxes = hw, boxes
        self._ranges: list[tuple[int, int, int, int]] | None = None
        if isinstance(masks, np.ndarray):
            if masks.ndim != 3:
                raise InputShapeError(f"masks: expected (N, H, W) or a list of RLE dicts, got shape {masks.shape}")
            if not (masks.dtype in (np.bool_, np.uint8) or np.issubdtype(masks.dtype, np.floating)):
                raise InputShapeError(f"masks: expected dtype bool, uint8 or float, got {masks.dtype}")
            if masks.shape[0] and (masks.shape[1] == 0 or masks.shape[2] == 0):
                raise InputShapeError(f"masks: expected non-empty masks, got shape {masks.shape}")
            self.array: np.ndarray | None = masks
            self.rles: list[Mapping] | None = None
            self.n = masks.shape[0]
        elif isinstance(masks, Sequence) and not isinstance(masks, (str, bytes)):
            for i, m in enumerate(masks):
                if not isinstance(m, Mapping):
                    raise InputShapeError(
                        f"masks[{i}]: expected an RLE dict (masks is a list), got {type(m).__name__}; "
                        "pass arrays stacked as (N, H, W)"
                    )
            self.array, self.rles, self.n = None, list(masks), len(masks)
        else:
            raise InputShapeError(
                f"masks: expected an (N, H, W) array or a list of RLE dicts, got {type(masks).__name__}"
            )
        if n is not None and self.n != n:
            raise InputShapeError(f"masks: {self.n} masks for {n} classes/scores")

    def box_range(self, k: int) -> tuple[int, int, int, int]:
        """Pixels a box touches, clipped to the image: (y0, y1, x0, x1); empty for a box of
        zero width or height."""
        if self._ranges is None:
            b = self.boxes
            h, w = self.hw
            y0 = np.clip(np.floor(b[:, 1]), 0, h)
            y1 = np.clip(np.ceil(b[:, 3]), 0, h)
            x0 = np.clip(np.floor(b[:, 0]), 0, w)
            x1 = np.clip(np.ceil(b[:, 2]), 0, w)
            empty = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
            y1, x1 = np.where(empty, y0, y1), np.where(empty, x0, x1)
            self._ranges = np.stack([y0, y1, x0, x1], axis=1).astype(np.int64).tolist()
        return self._ranges[k]

    def window(self, k: int) -> Window | None:
        """Instance ``k`` as (y0, y1, x0, x1, bool mask of the window), None when it is empty."""
        if self.array is not None:
            src = self.array[k]
            nearest = not np.issubdtype(src.dtype, np.floating)
        else:
            where = f"masks[{k}]"
            rle = self.rles[k]
            size = rle_size(rle, where)
            if size == self.hw:
                return self._rle_window(k, rle, where)
            src, nearest = rle_decode(rle, where=where), True
        if src.shape == self.hw:
            return self._full_size_window(k, src, nearest)
        return self._resampled_window(k, src, nearest)

    def _rle_window(self, k: int, rle: Mapping, where: str) -> Window | None:
        counts = rle_counts(rle, where)
        bbox = bbox_of_counts(counts, self.hw[0])
        if bbox is None:
            return None
        y0, y1, x0, x1 = bbox
        if self.boxes is not None:
            by0, by1, bx0, bx1 = self.box_range(k)
            y0, y1, x0, x1 = max(y0, by0), min(y1, by1), max(x0, bx0), min(x1, bx1)
            if y0 >= y1 or x0 >= x1:
                return None
        return y0, y1, x0, x1, decode_counts(counts, self.hw, (y0, y1, x0, x1))

    def _full_size_window(self, k: int, src: np.ndarray, nearest: bool) -> Window | None:
        if self.boxes is not None:
            y0, y1, x0, x1 = self.box_range(k)
            if y0 >= y1 or x0 >= x1:
                return None
            crop = src[y0:y1, x0:x1]
        else:
            if not nearest and not np.isfinite(src).all():
                raise InputShapeError(f"masks[{k}]: contains NaN or Inf")
            bbox = _strong_bbox(src, nearest)
            if bbox is None:
                return None
            y0, y1, x0, x1 = bbox
            crop = src[y0:y1, x0:x1]
        if crop.dtype == np.bool_:
            return y0, y1, x0, x1, crop
        if not nearest and not np.isfinite(crop).all():
            raise InputShapeError(f"masks[{k}]: contains NaN or Inf")
        return y0, y1, x0, x1, (crop != 0 if nearest else crop > 0.5)

    def _resampled_window(self, k: int, src: np.ndarray, nearest: bool) -> Window | None:
        h, w = self.hw
        if not nearest and not np.isfinite(src).all():
            raise InputShapeError(f"masks[{k}]: contains NaN or Inf")
        if self.boxes is not None:
            y0, y1, x0, x1 = self.box_range(k)
            if y0 >= y1 or x0 >= x1:
                return None
            bx1, by1, bx2, by2 = (float(v) for v in self.boxes[k])
            rows = _Axis(src.shape[0], h, y0, y1, (by1, by2))
            cols = _Axis(src.shape[1], w, x0, x1, (bx1, bx2))
        else:
            y0, x0 = 0, 0
            rows = _Axis(src.shape[0], h, 0, h, None)
            cols = _Axis(src.shape[1], w, 0, w, None)
        strong = _strong_bbox(src, nearest)
        if strong is None:
            return None
        r_lo, r_hi = rows.touching(strong[0], strong[1], nearest)
        c_lo, c_hi = cols.touching(strong[2], strong[3], nearest)
        if r_lo >= r_hi or c_lo >= c_hi:
            return None
        rows.pos, cols.pos = rows.pos[r_lo:r_hi], cols.pos[c_lo:c_hi]
        crop = _resample(src, rows, cols, nearest)
        return y0 + r_lo, y0 + r_hi, x0 + c_lo, x0 + c_hi, crop


def _check_boxes(boxes: Any, n: int) -> np.ndarray:
    b = np.asarray(boxes)
    if b.shape != (n, 4):
        raise InputShapeError(f"boxes: expected shape ({n}, 4) as x1, y1, x2, y2, got {b.shape}")
    if not (np.issubdtype(b.dtype, np.floating) or np.issubdtype(b.dtype, np.integer)) or b.dtype == np.bool_:
        raise InputShapeError(f"boxes: expected a numeric array, got dtype {b.dtype}")
    b = b.astype(np.float64)
    if not np.isfinite(b).all():
        raise InputShapeError(f"boxes: shape {b.shape} contains NaN or Inf")
    bad = np.flatnonzero((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))
    if bad.size:
        i = int(bad[0])
        raise InputShapeError(f"boxes[{i}]: expected x1 <= x2 and y1 <= y2, got {b[i].tolist()}")
    return b


# ---------------------------------------------------------------------------------------------
# fusion
# ---------------------------------------------------------------------------------------------
def fuse_semantic_and_instances(
    semantic: np.ndarray,
    masks: np.ndarray | Sequence[Mapping[str, Any]],
    classes: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    *,
    thing_ids: Iterable[int],
    overlap_threshold: float = 0.5,
    stuff_area: int = 4096,
    score_threshold: float = 0.5,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    boxes: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
    stuff_ids: Iterable[int] | None = None,
) -> PanopticPrediction:
    """Fuse a semantic map and scored instance masks into one panoptic prediction.

    The rules are those of the module docstring (panopticapi's combine script).

    Args:
        semantic: (H, W) non-negative integer class map, or (C, H, W) float logits or
            probabilities (reduced by argmax over C). At a size other than ``size`` it is
            resized nearest (centres aligned: source index ``floor((p + 0.5) * n_src / n_out)``).
        masks: one of
            - (N, H, W) bool, uint8 (non-zero is the object) or float (``> 0.5`` is the
              object) at the output size;
            - (N, h, w) at another size: without ``boxes`` resized to the whole output image,
              float bilinear (source coordinate ``(p + 0.5) * n_src / n_out - 0.5``, clamped
              at the edges, as ``cv2.resize``) then ``> 0.5``, bool/uint8 nearest as above;
              with ``boxes`` relative to the box (Mask R-CNN's 28 x 28) and pasted into it:
              source coordinate ``(p + 0.5 - box_start) * n_src / box_size - 0.5``, values
              outside the mask 0 (as detectron2's paste), bilinear for float, nearest
              (``floor((p + 0.5 - box_start) * n_src / box_size)``) for bool/uint8;
            - a list of N COCO RLE dicts (``{"size": [h, w], "counts": ...}``), decoded; an
              RLE at another size is treated as a bool mask of that size.
            An output-size mask with ``boxes`` is cut to its box.
        classes: (N,) integer class of each mask; every one must be in ``thing_ids``.
        scores: (N,) finite scores.
        thing_ids: the thing classes.
        overlap_threshold: an instance is dropped when more than this fraction of its mask is
            already taken (``taken / area > overlap_threshold``).
        stuff_area: minimum leftover area, in output pixels, of a stuff class.
        score_threshold: instances with ``score < score_threshold`` are dropped.
        label_divisor, void_label: the panoptic id encoding.
        boxes: optional (N, 4) float ``x1, y1, x2, y2`` in output pixels (a box covers the
            pixels it overlaps: columns ``floor(x1) .. ceil(x2) - 1``); each instance is
            worked on inside its box only.
        size: (H, W) of the output; default the semantic map's size.
        stuff_ids: the classes that may become stuff segments; default every class not in
            ``thing_ids``. Pixels of any other class (an "ignore" value) become void.
    Returns:
        A :class:`~edgeps.postprocess.PanopticPrediction`: ``panoptic`` (H, W) int32 ids
        ``class * label_divisor + instance`` (stuff has instance 0, ``void_label`` where
        nothing is assigned) and ``scores`` mapping each instance segment's panoptic id to its
        instance's score (stuff segments carry no score).
    Raises:
        InputShapeError (a ValueError) naming the argument, its shape, dtype or the offending
        instance (index and class), e.g. an instance whose class is not a thing class.
        FormatError for a malformed RLE dict.
    """
    _check_settings(overlap_threshold, stuff_area, score_threshold, label_divisor, void_label)
    out_size = _check_size(size)
    sem = _semantic_map(semantic, out_size)
    hw = (int(sem.shape[0]), int(sem.shape[1]))
    things = _id_array(thing_ids, "thing_ids")
    stuff = None if stuff_ids is None else _id_array(stuff_ids, "stuff_ids")

    cls = _vector(classes, "classes", None)
    n = cls.shape[0]
    if n and (not np.issubdtype(cls.dtype, np.integer) or cls.dtype == np.bool_):
        raise InputShapeError(f"classes: expected integer class ids, got dtype {cls.dtype}")
    cls = cls.astype(np.int64)
    sc = _vector(scores, "scores", n)
    if n and (not (np.issubdtype(sc.dtype, np.floating) or np.issubdtype(sc.dtype, np.integer)) or sc.dtype == bool):
        raise InputShapeError(f"scores: expected a float array, got dtype {sc.dtype}")
    sc = sc.astype(np.float64)
    if not np.isfinite(sc).all():
        bad = int(np.flatnonzero(~np.isfinite(sc))[0])
        raise InputShapeError(f"scores[{bad}]: expected a finite score, got {sc[bad]}")
    non_thing = np.flatnonzero(~np.isin(cls, things))
    if non_thing.size:
        i = int(non_thing[0])
        raise InputShapeError(
            f"classes[{i}]: instance {i} has class {int(cls[i])}, which is not a thing class "
            f"(thing_ids: {sorted(set(things.tolist()))})"
        )
    bx = None if boxes is None else _check_boxes(boxes, n)
    source = _Masks(masks, n, hw, bx)

    top = max(int(sem.max()), int(things.max(initial=0)), int(stuff.max(initial=0)) if stuff is not None else 0)
    n_classes = top + 1
    if top * label_divisor + label_divisor - 1 > _INT32_MAX:
        raise InputShapeError(
            f"semantic: class id {top} (semantic map, thing_ids or stuff_ids) x label_divisor {label_divisor} "
            "does not fit int32 panoptic ids"
        )
    if n_classes <= 256 and sem.dtype != np.uint8:
        sem = sem.astype(np.uint8)

    # 1-3: instances by descending score (stable), each inside its window.
    order = np.argsort(-sc, kind="stable")
    order = order[sc[order] >= score_threshold]
    accepted, occupied = _place_instances(source, order, cls, overlap_threshold, label_divisor)

    # 4: stuff fills the leftover where its leftover area is large enough.
    stuffable = np.ones(n_classes, dtype=bool)
    if stuff is not None:
        stuffable[:] = False
        stuffable[stuff] = True
    stuffable[things] = False
    stuff_value = np.where(stuffable, np.arange(n_classes, dtype=np.int64) * label_divisor, void_label)
    pan = _compose(sem, occupied, accepted, stuff_value, stuff_area, void_label)
    return PanopticPrediction(pan, {pid: float(sc[k]) for pid, k, *_ in accepted})


Placed = tuple[int, int, int, int, int, int, np.ndarray]  # panoptic id, index, y0, y1, x0, x1, free pixels (uint8)


def _place_instances(
    source: _Masks, order: np.ndarray, cls: np.ndarray, overlap_threshold: float, label_divisor: int
) -> tuple[list[Placed], np.ndarray]:
    """Rules 2-3 over the instances in ``order``: the accepted ones with the pixels they take
    (uint8 0/1 in their window), and the (H, W) uint8 map of taken pixels."""
    occupied = np.zeros(source.hw, dtype=np.uint8)
    accepted: list[Placed] = []
    number: dict[int, int] = {}
    for k in order.tolist():
        win = source.window(k)
        if win is None:
            continue
        y0, y1, x0, x1, m = win
        if m.strides[1] != 1:  # OpenCV wants contiguous rows
            m = np.ascontiguousarray(m)
        m = m.view(np.uint8)
        area = cv2.countNonZero(m)
        if area == 0:
            continue
        occ = occupied[y0:y1, x0:x1]
        overlap = cv2.bitwise_and(occ, m)
        taken = cv2.countNonZero(overlap)
        if taken / area > overlap_threshold or taken == area:
            continue
        free = cv2.bitwise_xor(m, overlap) if taken else m
        cv2.bitwise_or(occ, m, dst=occ)
        c = int(cls[k])
        number[c] = number.get(c, 0) + 1
        if number[c] >= label_divisor:
            raise InputShapeError(f"more than {label_divisor - 1} instances of class {c}: raise label_divisor")
        accepted.append((c * label_divisor + number[c], k, y0, y1, x0, x1, free))
    return accepted, occupied


def _compose(
    sem: np.ndarray,
    occupied: np.ndarray,
    accepted: list[Placed],
    stuff_value: np.ndarray,
    stuff_area: int,
    void_label: int,
) -> np.ndarray:
    """Rule 4 and the final map: stuff by leftover area, then the instances' pixels.

    Fast path (uint8 class map, classes + instances <= 256): the instances' pixels get codes
    above the class ids in a uint8 copy of the map, whose histogram gives the leftover areas
    and whose one table lookup gives the panoptic map.
    """
    n_classes = stuff_value.size
    if sem.dtype == np.uint8:
        class_of_code = np.arange(n_classes)
        codes = sem
        if n_classes + len(accepted) > 256:  # renumber the classes present in this map
            present = np.flatnonzero(cv2.calcHist([sem], [0], None, [256], [0, 256]).ravel()[:n_classes])
            remap = np.zeros(256, np.uint8)
            remap[present] = np.arange(present.size)
            class_of_code, codes = present, cv2.LUT(sem, remap)
        base = class_of_code.size
        if base + len(accepted) <= 256:
            codes = codes.copy() if codes is sem else codes
            for j, (_, _, y0, y1, x0, x1, free) in enumerate(accepted):
                win = codes[y0:y1, x0:x1]
                # numpy's product: OpenCV would read a 1 x 1 window times a number as two scalars
                cv2.max(win, free * np.uint8(base + j), dst=win)
            leftover = np.rint(cv2.calcHist([codes], [0], None, [256], [0, 256]).ravel()[:base]).astype(np.int64)
            table = np.zeros(256, np.int32)
            value = stuff_value[class_of_code]
            table[:base] = np.where(leftover >= stuff_area, value, void_label)
            table[base : base + len(accepted)] = [pid for pid, *_ in accepted]
            return cv2.LUT(codes, table)
    # General path: wider class ids or more instances than a uint8 code holds.
    leftover = np.bincount(sem[occupied == 0].astype(np.int64), minlength=n_classes)
    table = np.where(leftover >= stuff_area, stuff_value, void_label).astype(np.int32)
    pan = table[sem]
    for pid, _, y0, y1, x0, x1, free in accepted:
        np.copyto(pan[y0:y1, x0:x1], np.int32(pid), where=free.view(bool))
    return pan


# ---------------------------------------------------------------------------------------------
# panoptic segments -> COCO instance results
# ---------------------------------------------------------------------------------------------
def panoptic_to_instances(
    prediction: PanopticPrediction | np.ndarray,
    scores: Mapping[int, float] | None = None,
    *,
    thing_ids: Iterable[int],
    image_id: Any,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    category_map: Mapping[int, int] | None = None,
) -> list[dict[str, Any]]:
    """The thing segments of a panoptic map as COCO instance-segmentation results.

    Args:
        prediction: a :class:`~edgeps.postprocess.PanopticPrediction` (its ``panoptic`` map,
            and its ``scores`` when ``scores`` is None) or an (H, W) integer panoptic map.
        scores: panoptic id -> score; every thing segment needs one.
        thing_ids: the thing classes; segments of other classes are left out, and so are
            thing segments with instance 0 (crowd regions).
        image_id: the ``image_id`` written into every result.
        label_divisor, void_label: the panoptic id encoding.
        category_map: class id -> COCO ``category_id`` (e.g. train ids back to dataset ids);
            default the class id itself.
    Returns:
        One dict per thing segment, by ascending panoptic id: ``image_id``, ``category_id``,
        ``segmentation`` (compressed RLE ``{"size": [H, W], "counts": str}``, what
        ``pycocotools.mask.encode`` writes), ``score``, ``area`` (pixels) and ``bbox``
        ``[x, y, w, h]``: the format ``COCO.loadRes`` reads for ``iouType="segm"``.
    Raises:
        InputShapeError naming the argument when the map is not (H, W) integer, a thing segment
        has no score, or a class is missing from ``category_map``.
    """
    if isinstance(prediction, PanopticPrediction):
        pan = np.asarray(prediction.panoptic)
        if scores is None:
            scores = prediction.scores
    else:
        pan = np.asarray(prediction)
    if pan.ndim != 2 or not np.issubdtype(pan.dtype, np.integer):
        raise InputShapeError(f"prediction: expected an (H, W) integer panoptic map, got {pan.dtype} {pan.shape}")
    things = set(_id_array(thing_ids, "thing_ids").tolist())
    segs = [s for s in segments_of(pan, label_divisor, void_label) if s.category_id in things and s.instance != 0]
    score_of = {} if scores is None else {int(k): float(v) for k, v in scores.items()}
    missing = [s.id for s in segs if s.id not in score_of]
    if missing:
        raise InputShapeError(
            f"scores: no score for thing segment(s) {missing[:10]} (an instance result needs one; "
            "fuse_semantic_and_instances and panoptic_prediction_from_heads with a semantic probability give them)"
        )
    if category_map is not None:
        unmapped = sorted({s.category_id for s in segs if s.category_id not in category_map})
        if unmapped:
            raise InputShapeError(f"category_map: no category_id for class(es) {unmapped}")
    rles = encode_label_map(pan, [s.id for s in segs])
    out = []
    for seg, rle in zip(segs, rles):
        cat = seg.category_id if category_map is None else int(category_map[seg.category_id])
        out.append(
            {
                "image_id": image_id,
                "category_id": cat,
                "segmentation": rle,
                "score": score_of[seg.id],
                "area": seg.area,
                "bbox": [float(v) for v in seg.bbox],
            }
        )
    return out


def instances_from_coco_results(
    results: Sequence[Mapping[str, Any]], where: str = "results"
) -> tuple[list[Mapping[str, Any]], np.ndarray, np.ndarray]:
    """COCO instance-segmentation results of one image -> (RLE masks, classes, scores), the
    inputs of :func:`fuse_semantic_and_instances` (``category_id`` is the class).

    Args:
        results: entries with ``segmentation`` (an RLE dict; polygons are not accepted),
            ``category_id`` and ``score``.
        where: how errors name the list (e.g. the file it came from).
    Returns:
        (list of N RLE dicts, (N,) int64 classes, (N,) float64 scores).
    Raises:
        FormatError naming the entry and field when one is missing or malformed.
    """
    masks, classes, scores = [], [], []
    for i, r in enumerate(results):
        at = f"{where}[{i}]"
        if not isinstance(r, Mapping):
            raise FormatError(f"{at}: expected an object, got {type(r).__name__}")
        for key in ("segmentation", "category_id", "score"):
            if key not in r:
                raise FormatError(f"{at}: missing field '{key}'")
        seg = r["segmentation"]
        if not isinstance(seg, Mapping):
            raise FormatError(
                f"{at}.segmentation: expected an RLE dict {{'size': [h, w], 'counts': ...}}, got "
                f"{type(seg).__name__} (polygons are not supported: encode them as RLE)"
            )
        cat, score = r["category_id"], r["score"]
        if isinstance(cat, bool) or not isinstance(cat, (int, np.integer)) or cat < 0:
            raise FormatError(f"{at}.category_id: expected a non-negative integer, got {cat!r}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise FormatError(f"{at}.score: expected a finite number, got {score!r}")
        masks.append(seg)
        classes.append(int(cat))
        scores.append(float(score))
    return masks, np.array(classes, dtype=np.int64), np.array(scores, dtype=np.float64)
