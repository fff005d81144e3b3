"""PQ and mIoU accumulated over in-memory panoptic maps (validation loops, live benchmarks).

Maps use the edgeps encoding (``class * label_divisor + instance``, void ``void_label``). The
PQ rules are those of the COCO reference via :func:`edgeps.metrics.pq.pq_image`, so a run
scored here equals the same maps written as COCO files and scored by
:func:`edgeps.metrics.evaluate_coco_panoptic`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.categories import Categories
from edgeps.errors import CategoryError, InputShapeError
from edgeps.metrics.pq import PQStat, pq_image


class PanopticAccumulator:
    """Sums PQ statistics and a semantic confusion matrix over ``update`` calls."""

    def __init__(
        self,
        categories: Categories,
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
    ):
        if label_divisor <= 0:
            raise ValueError(f"label_divisor must be positive, got {label_divisor}")
        self.categories = categories
        self.label_divisor = int(label_divisor)
        self.void_label = int(void_label)
        self._index = categories.id_to_train_id(ignore=-1)  # category id -> row of _conf
        self.reset()

    def reset(self) -> None:
        n = len(self.categories)
        self.stat = PQStat()
        # Rows: GT class; columns: predicted class, last column = predicted void.
        self._conf = np.zeros((n, n + 1), np.int64)

    def _segments(self, pan: np.ndarray, name: str, crowd_ids: set[int] | None) -> tuple[list[dict], np.ndarray]:
        """segments_info for a map (crowd flags for GT) and its per-pixel category row."""
        ids, inverse = np.unique(pan.ravel(), return_inverse=True)
        ids = ids.astype(np.int64)
        segments = []
        rows = np.full(len(ids), len(self.categories), np.int64)  # void -> extra column
        for k, sid in enumerate(ids.tolist()):
            if sid == self.void_label:
                continue
            cid = sid // self.label_divisor
            if cid not in self.categories:
                raise CategoryError(f"{name}: class {cid} (panoptic id {sid}) is not in the category set")
            rows[k] = self._index[cid]
            seg: dict[str, Any] = {"id": sid, "category_id": cid}
            if crowd_ids is not None:
                is_crowd = sid in crowd_ids or (self.categories[cid].isthing and sid % self.label_divisor == 0)
                seg["iscrowd"] = int(is_crowd)
            segments.append(seg)
        return segments, rows[inverse.ravel()]

    def update(self, pred: np.ndarray, gt: np.ndarray, gt_crowd_ids: Iterable[int] = ()) -> None:
        """Add one image. GT thing segments with instance 0, and ``gt_crowd_ids``, are crowd."""
        pred_a, gt_a = np.asarray(pred), np.asarray(gt)
        for name, a in (("pred", pred_a), ("gt", gt_a)):
            if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
                raise InputShapeError(
                    f"{name}: expected an (H, W) integer panoptic map, got shape {a.shape} dtype {a.dtype}"
                )
        if pred_a.shape != gt_a.shape:
            raise InputShapeError(f"pred: shape {pred_a.shape} differs from gt shape {gt_a.shape}")
        gt_segments, gt_rows = self._segments(gt_a, "gt", {int(i) for i in gt_crowd_ids})
        pred_segments, pred_rows = self._segments(pred_a, "pred", None)
        self.stat.add(pq_image(gt_a, gt_segments, pred_a, pred_segments, void_id=self.void_label))

        n = len(self.categories)
        keep = gt_rows < n  # GT void pixels are ignored; predicted void counts as a miss
        cells = np.bincount(gt_rows[keep] * (n + 1) + pred_rows[keep], minlength=n * (n + 1))
        self._conf += cells.reshape(n, n + 1)

    def result(self) -> dict[str, Any]:
        """evaluate_coco_panoptic's dict plus ``miou`` and ``per_class_iou`` (category id keys).

        mIoU averages the classes with a non-empty union on non-void GT pixels.
        """
        out = self.stat.results(self.categories)
        n = len(self.categories)
        inter = np.diag(self._conf[:, :n])
        union = self._conf.sum(axis=1) + self._conf[:, :n].sum(axis=0) - inter
        per_class_iou = {cat.id: float(inter[k] / union[k]) for k, cat in enumerate(self.categories) if union[k] > 0}
        out["miou"] = float(np.mean(list(per_class_iou.values()))) if per_class_iou else 0.0
        out["per_class_iou"] = per_class_iou
        return out
