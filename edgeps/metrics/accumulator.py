"""The full metric set accumulated image by image: PQ/SQ/RQ, mIoU, pixel accuracy, mask AP.

Two ways in, one report out (:func:`edgeps.metrics.report.build_report`):

- :meth:`PanopticAccumulator.update`: in-memory maps in the edgeps encoding
  (``class * label_divisor + instance``, void ``void_label``), for validation loops, benchmarks
  and ``edgeps eval``;
- :meth:`PanopticAccumulator.update_segments`: COCO-style segment-id maps with their
  ``segments_info``, for :func:`edgeps.metrics.evaluate_coco_panoptic` (``edgeps eval-coco``).

The PQ rules are those of the COCO reference via :func:`edgeps.metrics.pq.pq_image`, so a run
scored here equals the same maps written as COCO files and scored from the files. Mask AP (thing
classes) is pycocotools' COCOeval on the conversions of :mod:`edgeps.metrics.ap`; it is collected
only when asked for (``mask_ap=True``) and needs a score per predicted thing segment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.categories import Categories
from edgeps.errors import CategoryError, FormatError, InputShapeError
from edgeps.fusion import panoptic_to_instances
from edgeps.metrics.ap import detection_ground_truth, mask_ap, mask_ap_not_available
from edgeps.metrics.pq import PQStat, pq_image
from edgeps.metrics.report import build_report
from edgeps.panoptic import compact_ids

NOT_REQUESTED = "not requested (PanopticAccumulator(..., mask_ap=True) computes it)"


def _lookup(ids: np.ndarray, keys: np.ndarray, values: np.ndarray, default: int) -> np.ndarray:
    """``values[k]`` where ``ids == keys[k]``, else ``default``: an int64 map of ``ids``' shape.

    A binary search of every pixel among the few segment ids (no sort of the pixels, which
    ``np.unique`` would do). ``keys`` are distinct.
    """
    flat = np.asarray(ids).ravel().astype(np.int64, copy=False)
    if keys.size == 0:
        return np.full(np.shape(ids), default, np.int64)
    order = np.argsort(keys)
    sorted_keys, sorted_values = keys[order], np.asarray(values, np.int64)[order]
    pos = np.minimum(np.searchsorted(sorted_keys, flat), keys.size - 1)
    return np.where(sorted_keys[pos] == flat, sorted_values[pos], default).reshape(np.shape(ids))


class PanopticAccumulator:
    """Sums PQ statistics, a semantic confusion matrix and (optionally) mask-AP instances.

    Args:
        categories: the category set the maps use (their ids are the maps' class ids, or the
            ``category_id`` of COCO segments).
        label_divisor, void_label: the edgeps encoding of :meth:`update`'s maps.
        mask_ap: collect the thing instances of every image for mask AP (pycocotools is
            needed only in :meth:`result`). Without it the report's ``mask_ap`` is "n/a".
    """

    def __init__(
        self,
        categories: Categories,
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
        *,
        mask_ap: bool = False,
    ):
        if label_divisor <= 0:
            raise ValueError(f"label_divisor must be positive, got {label_divisor}")
        self.categories = categories
        self.label_divisor = int(label_divisor)
        self.void_label = int(void_label)
        self.mask_ap = bool(mask_ap)
        self._index = categories.id_to_train_id(ignore=-1)  # category id -> row of _conf
        self._thing_ids = categories.thing_ids
        self.reset()

    def reset(self) -> None:
        """Forget every image added so far."""
        n = len(self.categories)
        self.stat = PQStat()
        # Rows: GT class; columns: predicted class, last column = predicted void.
        self._conf = np.zeros((n, n + 1), np.int64)
        self.images = 0
        self._ap_images: list[dict[str, Any]] = []
        self._ap_gt: list[dict[str, Any]] = []
        self._ap_pred: list[dict[str, Any]] = []
        self._ap_reason: str | None = None if self.mask_ap else NOT_REQUESTED
        self._ap_result: dict[str, Any] | None = None

    # -- in-memory maps ---------------------------------------------------------------------
    def _segments(self, pan: np.ndarray, name: str, crowd_ids: set[int] | None) -> tuple[list[dict], np.ndarray]:
        """segments_info for a map (crowd flags for GT) and its per-pixel category row."""
        ids, inverse = compact_ids(pan)
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

    def update(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        gt_crowd_ids: Iterable[int] = (),
        *,
        pred_scores: Mapping[int, float] | None = None,
    ) -> None:
        """Add one image of (H, W) integer panoptic maps in the edgeps encoding.

        Args:
            pred, gt: the prediction and the ground truth, same shape.
            gt_crowd_ids: GT panoptic ids that are crowd regions; GT thing segments with
                instance 0 are crowd too.
            pred_scores: panoptic id -> score of the predicted segments (every thing segment
                needs one, e.g. ``PanopticPrediction.scores``). Used only with ``mask_ap``;
                None makes mask AP "n/a" (an instance result needs a score).
        Raises:
            InputShapeError for maps that are not (H, W) integer or differ in shape;
            CategoryError for a class outside the category set (names ``pred``/``gt``).
        """
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
        self._add(gt_a, gt_segments, pred_a, pred_segments, self.void_label, "gt", "pred", (gt_rows, pred_rows))
        if self._ap_reason is not None:
            return
        image_id = self._ap_image(gt_a.shape)
        self._ap_gt += detection_ground_truth(gt_a, gt_segments, thing_ids=self._thing_ids, image_id=image_id)
        if pred_scores is None:
            self._ap_stop(f"image {image_id}: the prediction has no segment scores (an instance result needs one)")
            return
        self._ap_instances(pred_a, pred_scores, self.label_divisor, self.void_label, image_id, f"image {image_id}")

    # -- COCO segment maps ------------------------------------------------------------------
    def update_segments(
        self,
        gt_ids: np.ndarray,
        gt_segments: Sequence[Mapping[str, Any]],
        pred_ids: np.ndarray,
        pred_segments: Sequence[Mapping[str, Any]],
        *,
        void_id: int = 0,
        gt_name: str = "gt",
        pred_name: str = "pred",
    ) -> None:
        """Add one image as COCO panoptic data: segment-id maps and their ``segments_info``.

        Args:
            gt_ids, pred_ids: (H, W) integer segment-id maps (e.g. decoded PNGs).
            gt_segments, pred_segments: ``segments_info`` (``id``, ``category_id``; GT
                ``iscrowd`` and ``area`` as the COCO reference reads them). With ``mask_ap``,
                each predicted thing segment needs a ``score``; a missing one makes mask AP
                "n/a" with the reason.
            void_id: the unlabelled id of both maps (0 in COCO PNGs).
            gt_name, pred_name: prefixes of error messages (file, image id).
        Raises:
            FormatError / CategoryError / InputShapeError from :func:`pq_image`, naming the map;
            FormatError for a ``score`` that is not a finite number.
        """
        gt_a, pred_a = np.asarray(gt_ids), np.asarray(pred_ids)
        self._add(gt_a, gt_segments, pred_a, pred_segments, void_id, gt_name, pred_name, None)
        if self._ap_reason is not None:
            return
        image_id = self._ap_image(gt_a.shape)
        self._ap_gt += detection_ground_truth(gt_a, gt_segments, thing_ids=self._thing_ids, image_id=image_id)
        things = set(self._thing_ids)
        segs = [s for s in pred_segments if int(s["category_id"]) in things]
        scores = []
        for s in segs:
            if "score" not in s:
                self._ap_stop(
                    f"{pred_name}: segment id {s['id']} has no 'score' in segments_info "
                    "(edgeps run --coco-dir writes segment scores)"
                )
                return
            score = s["score"]
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise FormatError(f"{pred_name}: segment id {s['id']}: 'score' must be a finite number, got {score!r}")
            scores.append(float(score))
        # The thing segments as an edgeps map (segment k -> class * divisor + k + 1, the rest
        # void), so that panoptic_to_instances is the one conversion of predictions.
        divisor = max(self.label_divisor, 10 ** len(str(len(segs) + 1)))
        pan_ids = np.array([int(s["category_id"]) * divisor + k + 1 for k, s in enumerate(segs)], np.int64)
        pan = _lookup(pred_a, np.array([int(s["id"]) for s in segs], np.int64), pan_ids, -1)
        by_id = dict(zip(pan_ids.tolist(), scores))
        self._ap_instances(pan, by_id, divisor, -1, image_id, pred_name)

    # -- shared -----------------------------------------------------------------------------
    def _add(
        self,
        gt: np.ndarray,
        gt_segments: Sequence[Mapping[str, Any]],
        pred: np.ndarray,
        pred_segments: Sequence[Mapping[str, Any]],
        void_id: int,
        gt_name: str,
        pred_name: str,
        rows: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        """PQ statistics and the confusion matrix of one image (rows: per-pixel category rows
        of gt and pred when the caller has them)."""
        self.stat.add(
            pq_image(
                gt,
                gt_segments,
                pred,
                pred_segments,
                void_id=void_id,
                categories=self.categories,
                gt_name=gt_name,
                pred_name=pred_name,
            )
        )
        if rows is None:
            rows = self._rows(gt, gt_segments), self._rows(pred, pred_segments)
        gt_rows, pred_rows = rows
        n = len(self.categories)
        keep = gt_rows < n  # GT void pixels are ignored; predicted void counts as a miss
        cells = np.bincount(gt_rows[keep] * (n + 1) + pred_rows[keep], minlength=n * (n + 1))
        self._conf += cells.reshape(n, n + 1)
        self.images += 1
        self._ap_result = None

    def _rows(self, ids: np.ndarray, segments: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Per-pixel confusion row of a checked segment-id map (void, i.e. unlisted -> last)."""
        seg_ids = np.array([int(s["id"]) for s in segments], np.int64)
        cats = np.array([int(s["category_id"]) for s in segments], np.int64)
        return _lookup(ids, seg_ids, self._index[cats] if len(cats) else cats, len(self.categories)).ravel()

    def _ap_image(self, shape: tuple[int, ...]) -> int:
        image_id = len(self._ap_images) + 1
        self._ap_images.append({"id": image_id, "height": int(shape[0]), "width": int(shape[1])})
        return image_id

    def _ap_stop(self, reason: str) -> None:
        self._ap_reason = reason
        self._ap_images, self._ap_gt, self._ap_pred = [], [], []

    def _ap_instances(
        self, pan: np.ndarray, scores: Mapping[int, float], divisor: int, void: int, image_id: int, where: str
    ) -> None:
        try:
            self._ap_pred += panoptic_to_instances(
                pan, scores, thing_ids=self._thing_ids, image_id=image_id, label_divisor=divisor, void_label=void
            )
        except InputShapeError as exc:  # a thing segment without a score
            self._ap_stop(f"{where}: {exc}")

    # -- the report -------------------------------------------------------------------------
    def _mask_ap(self) -> dict[str, Any]:
        if self._ap_reason is not None:
            return mask_ap_not_available(self._ap_reason)
        if self._ap_result is None:
            cats = [{"id": c.id, "name": c.name} for c in self.categories if c.isthing]
            if not cats:
                return mask_ap_not_available("the category set has no thing class")
            self._ap_result = mask_ap(self._ap_images, self._ap_gt, self._ap_pred, cats)
        return self._ap_result

    def result(self) -> dict[str, Any]:
        """The report of every image added (:func:`edgeps.metrics.report.build_report`).

        Returns:
            ``All``/``Things``/``Stuff`` (PQ, SQ, RQ, n), ``per_class`` (category id keys),
            ``miou`` and ``per_class_iou`` (classes with a non-empty union on non-void GT
            pixels), ``pixel_accuracy`` (predicted void on labelled GT counts as wrong),
            ``mask_ap`` and ``images``; fractions 0..1.
        """
        return build_report(self.stat, self._conf, self.categories, self._mask_ap(), self.images)
