"""Panoptic quality (PQ = SQ x RQ) of one image, and its averages over categories.

The matching rules follow the COCO panoptic reference (panopticapi ``pq_compute``, Kirillov
et al. 2019) to the letter, so numbers are comparable with published results. Both the file
evaluator (:mod:`edgeps.metrics.coco`) and the in-memory accumulator call :func:`pq_image`,
so the rules live in exactly one place.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeps.categories import Categories
from edgeps.errors import CategoryError, FormatError, InputShapeError
from edgeps.panoptic import compact_ids

# Above this many (gt segment, pred segment) cells, count pairs with np.unique instead of a
# dense np.bincount, so a pathological image cannot allocate a huge matrix.
_DENSE_PAIRS_MAX = 1 << 22


@dataclass
class CategoryStat:
    """Matching counts of one category: true/false positives, false negatives, summed IoU."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou: float = 0.0


class PQStat:
    """Per-category PQ statistics; images are summed with :meth:`add`."""

    def __init__(self) -> None:
        self.per_category: dict[int, CategoryStat] = {}

    def __getitem__(self, category_id: int) -> CategoryStat:
        return self.per_category.setdefault(int(category_id), CategoryStat())

    def add(self, other: PQStat) -> PQStat:
        """Add another image's (or run's) statistics into this one; returns self."""
        for cid, s in other.per_category.items():
            mine = self[cid]
            mine.tp += s.tp
            mine.fp += s.fp
            mine.fn += s.fn
            mine.iou += s.iou
        return self

    def class_metrics(self, category_id: int) -> dict[str, float] | None:
        """PQ, SQ, RQ of one category, or None if it has no TP, FP or FN (not averaged)."""
        s = self.per_category.get(int(category_id))
        if s is None or s.tp + s.fp + s.fn == 0:
            return None
        denom = s.tp + 0.5 * s.fp + 0.5 * s.fn
        return {"pq": s.iou / denom, "sq": s.iou / s.tp if s.tp else 0.0, "rq": s.tp / denom}

    def average(self, categories: Categories, isthing: bool | None = None) -> dict[str, Any]:
        """Mean PQ/SQ/RQ over the categories that occur (all, things only or stuff only)."""
        pq = sq = rq = 0.0
        n = 0
        for cat in categories:
            if isthing is not None and cat.isthing != isthing:
                continue
            m = self.class_metrics(cat.id)
            if m is None:
                continue
            n += 1
            pq += m["pq"]
            sq += m["sq"]
            rq += m["rq"]
        if n == 0:
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}

    def results(self, categories: Categories) -> dict[str, Any]:
        """The report shape shared by every evaluator: All/Things/Stuff plus per_class."""
        per_class: dict[int, dict[str, Any]] = {}
        for cat in categories:
            s = self.per_category.get(cat.id, CategoryStat())
            m = self.class_metrics(cat.id) or {"pq": 0.0, "sq": 0.0, "rq": 0.0}
            per_class[cat.id] = {
                **m,
                "tp": s.tp,
                "fp": s.fp,
                "fn": s.fn,
                "name": cat.name,
                "isthing": cat.isthing,
            }
        return {
            "All": self.average(categories, None),
            "Things": self.average(categories, True),
            "Stuff": self.average(categories, False),
            "per_class": per_class,
        }


@dataclass
class _SegmentTable:
    """Per unique label of an id map: is it a real segment, its category, crowd flag, area."""

    valid: np.ndarray  # bool: a listed segment (not void)
    category: np.ndarray  # int64
    crowd: np.ndarray  # bool
    area: np.ndarray  # int64 or float64 (a JSON 'area' may be a float)
    crowd_row_by_category: dict[int, int]


def _segment_table(
    labels: np.ndarray,
    counts: np.ndarray,
    segments: Iterable[Mapping[str, Any]],
    void_id: int,
    where: str,
    categories: Container[int] | None,
    use_listed_area: bool,
) -> _SegmentTable:
    rows = {int(label): k for k, label in enumerate(labels.tolist())}
    n = len(labels)
    valid = np.zeros(n, bool)
    category = np.zeros(n, np.int64)
    crowd = np.zeros(n, bool)
    area: list[float] = counts.tolist()
    crowd_rows: dict[int, int] = {}
    for seg in segments:
        try:
            sid, cat = int(seg["id"]), int(seg["category_id"])
        except (TypeError, ValueError):
            raise FormatError(f"{where}: segment {seg!r} needs integer 'id' and 'category_id'") from None
        if sid == void_id:
            raise FormatError(f"{where}: segment id {sid} is the void id and cannot be listed in segments_info")
        if categories is not None and cat not in categories:
            raise CategoryError(f"{where}: segment id {sid} has unknown category_id {cat}")
        k = rows.get(sid)
        if k is None:
            raise FormatError(f"{where}: segment id {sid} is listed in segments_info but absent from the id map")
        if valid[k]:
            raise FormatError(f"{where}: segment id {sid} is listed twice in segments_info")
        valid[k] = True
        category[k] = cat
        crowd[k] = bool(seg.get("iscrowd", 0))
        if crowd[k]:
            crowd_rows[cat] = k  # the reference keeps one crowd region per category: the last
        listed = seg.get("area") if use_listed_area else None
        if listed is not None:
            if isinstance(listed, bool) or not isinstance(listed, (int, float)) or listed <= 0:
                raise FormatError(f"{where}: segment id {sid} has invalid area {listed!r}")
            area[k] = listed
    for k, label in enumerate(labels.tolist()):
        if not valid[k] and label != void_id:
            raise FormatError(f"{where}: segment id {label} is in the id map but not in segments_info")
    return _SegmentTable(valid, category, crowd, np.asarray(area), crowd_rows)


def _pair_counts(g_inv: np.ndarray, p_inv: np.ndarray, n_gt: int, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty (gt row, pred col) intersections as (key = row * n_pred + col, pixel count)."""
    key = g_inv.astype(np.int64) * n_pred + p_inv
    if n_gt * n_pred <= _DENSE_PAIRS_MAX:
        counts = np.bincount(key, minlength=n_gt * n_pred)
        keys = np.flatnonzero(counts)
        return keys, counts[keys]
    return np.unique(key, return_counts=True)


def _check_map(arr: Any, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
        raise InputShapeError(f"{name}: expected an (H, W) integer id map, got shape {a.shape} dtype {a.dtype}")
    return a


def pq_image(
    gt_ids: np.ndarray,
    gt_segments: Sequence[Mapping[str, Any]],
    pred_ids: np.ndarray,
    pred_segments: Sequence[Mapping[str, Any]],
    void_id: int = 0,
    *,
    categories: Container[int] | None = None,
    gt_name: str = "gt",
    pred_name: str = "pred",
) -> PQStat:
    """PQ statistics of one image, as the COCO reference counts them.

    ``*_segments`` are COCO ``segments_info`` entries (``id``, ``category_id``, optional
    ``iscrowd``; for GT an optional ``area`` that, as in the reference, replaces the pixel
    count). ``void_id`` marks unlabelled pixels in both maps. ``categories`` (ids) enables the
    unknown-category check; ``gt_name``/``pred_name`` prefix error messages (file, image id).
    """
    gt = _check_map(gt_ids, gt_name)
    pred = _check_map(pred_ids, pred_name)
    if gt.shape != pred.shape:
        raise InputShapeError(f"{pred_name}: size {pred.shape} differs from {gt_name} size {gt.shape}")
    g_labels, g_inv = compact_ids(gt)
    p_labels, p_inv = compact_ids(pred)
    g_cnt, p_cnt = np.bincount(g_inv, minlength=len(g_labels)), np.bincount(p_inv, minlength=len(p_labels))
    g_labels, p_labels = g_labels.astype(np.int64), p_labels.astype(np.int64)
    g = _segment_table(g_labels, g_cnt, gt_segments, void_id, gt_name, categories, use_listed_area=True)
    p = _segment_table(p_labels, p_cnt, pred_segments, void_id, pred_name, categories, use_listed_area=False)

    n_pred = len(p_labels)
    keys, inter = _pair_counts(g_inv.ravel(), p_inv.ravel(), len(g_labels), n_pred)
    gi, pi = keys // n_pred, keys % n_pred
    void_inter = np.zeros(n_pred, np.int64)
    g_void = g_labels[gi] == void_id
    void_inter[pi[g_void]] = inter[g_void]

    # Matches: same category, non-crowd GT, IoU > 0.5 with pred pixels on GT void left out of
    # the union. IoU > 0.5 makes every match unique, so no assignment step is needed.
    cand = g.valid[gi] & ~g.crowd[gi] & p.valid[pi] & (g.category[gi] == p.category[pi])
    union = p.area[pi] + g.area[gi] - inter - void_inter[pi]
    iou = np.zeros(len(keys), np.float64)
    np.divide(inter, union, out=iou, where=cand & (union > 0))
    matched = cand & (iou > 0.5)

    stat = PQStat()
    for row, m_iou in zip(gi[matched].tolist(), iou[matched].tolist(), strict=True):
        s = stat[int(g.category[row])]
        s.tp += 1
        s.iou += m_iou
    gt_matched = np.zeros(len(g_labels), bool)
    gt_matched[gi[matched]] = True
    pred_matched = np.zeros(n_pred, bool)
    pred_matched[pi[matched]] = True

    for row in np.flatnonzero(g.valid & ~g.crowd & ~gt_matched).tolist():
        stat[int(g.category[row])].fn += 1

    # An unmatched prediction is forgiven when more than half of it lies on void or on the
    # crowd region of its own category.
    crowd_row = np.array(
        [
            g.crowd_row_by_category.get(c, -1) if ok else -1
            for c, ok in zip(p.category.tolist(), p.valid.tolist(), strict=True)
        ],
        np.int64,
    )
    on_crowd = gi == crowd_row[pi]
    ignored = void_inter.copy()
    ignored[pi[on_crowd]] += inter[on_crowd]
    for col in np.flatnonzero(p.valid & ~pred_matched).tolist():
        if ignored[col] / p.area[col] > 0.5:
            continue
        stat[int(p.category[col])].fp += 1
    return stat
