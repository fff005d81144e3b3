"""The evaluation report: one dict built in one place, printed in one format.

:class:`~edgeps.metrics.PanopticAccumulator` builds it (in-memory maps: ``edgeps eval``), and so
does :func:`~edgeps.metrics.evaluate_coco_panoptic` (COCO files: ``edgeps eval-coco``), both via
:func:`build_report`. Every figure is a fraction (0..1); the printed tables show points (0..100).
The keys are listed in :data:`REPORT_KEYS` and documented in ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeps.categories import Categories
from edgeps.metrics.pq import PQStat

REPORT_KEYS = (
    "All",  # PQ/SQ/RQ averaged over the categories that occur, and their count n
    "Things",
    "Stuff",
    "per_class",  # category id -> pq, sq, rq, tp, fp, fn, name, isthing
    "miou",
    "per_class_iou",  # category id -> IoU, for the categories with a non-empty union
    "pixel_accuracy",
    "mask_ap",  # status ("ok" / "n/a"), reason, ap, ap50, ap75, gt_instances, pred_instances
    "images",
)


def semantic_metrics(confusion: np.ndarray, categories: Categories) -> dict[str, Any]:
    """mIoU, per-class IoU and pixel accuracy of a semantic confusion matrix.

    Args:
        confusion: (N, N + 1) pixel counts; row = GT category (in ``categories`` order),
            column = predicted category, last column = predicted void. GT void pixels are not
            in it; predicted void on labelled GT counts against the class.
        categories: the N categories, giving the ids of the ``per_class_iou`` keys.
    Returns:
        ``miou`` (mean over the categories with a non-empty union; 0.0 when none),
        ``per_class_iou`` (category id -> IoU) and ``pixel_accuracy`` (correct pixels / GT
        labelled pixels; 0.0 when no pixel is labelled).
    """
    n = len(categories)
    conf = np.asarray(confusion, dtype=np.int64)
    inter = np.diag(conf[:, :n])
    union = conf.sum(axis=1) + conf[:, :n].sum(axis=0) - inter
    per_class_iou = {cat.id: float(inter[k] / union[k]) for k, cat in enumerate(categories) if union[k] > 0}
    total = int(conf.sum())
    return {
        "miou": float(np.mean(list(per_class_iou.values()))) if per_class_iou else 0.0,
        "per_class_iou": per_class_iou,
        "pixel_accuracy": float(inter.sum() / total) if total else 0.0,
    }


def build_report(
    stat: PQStat, confusion: np.ndarray, categories: Categories, mask_ap: Mapping[str, Any], images: int
) -> dict[str, Any]:
    """The report dict: :meth:`PQStat.results` + :func:`semantic_metrics` + ``mask_ap`` + ``images``.

    Args:
        stat: PQ statistics summed over the images.
        confusion: the semantic confusion matrix, as :func:`semantic_metrics` takes it.
        categories: the evaluated categories.
        mask_ap: :func:`edgeps.metrics.ap.mask_ap`'s dict (or its "n/a" form).
        images: number of images evaluated.
    Returns:
        A dict with exactly the keys of :data:`REPORT_KEYS` (``per_class`` and
        ``per_class_iou`` keyed by integer category id).
    """
    out = stat.results(categories)
    out.update(semantic_metrics(confusion, categories))
    out["mask_ap"] = dict(mask_ap)
    out["images"] = int(images)
    return out


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def format_mask_ap(mask_ap: Mapping[str, Any]) -> str:
    """One line: ``mask AP 41.2  AP50 60.3  AP75 44.0 (things, ...)`` or ``mask AP n/a (reason)``."""
    if mask_ap.get("status") != "ok":
        return f"mask AP n/a ({mask_ap.get('reason')})"
    return (
        f"mask AP {_points(mask_ap['ap'])}  AP50 {_points(mask_ap['ap50'])}  AP75 {_points(mask_ap['ap75'])}  "
        f"(things; {mask_ap['gt_instances']} GT instances, {mask_ap['pred_instances']} predicted; pycocotools)"
    )


def format_report(report: Mapping[str, Any]) -> str:
    """The printed report, in points (0..100).

    Lines: the PQ/SQ/RQ/N header, All/Things/Stuff, mIoU with pixel accuracy, mask AP, a blank
    line, then the per-class table (PQ, SQ, RQ, TP, FP, FN, IoU). Classes with no TP, FP, FN and
    no IoU are not listed; an IoU not defined (empty union) prints as ``-``.
    """
    lines = [f"{'':<8}{'PQ':>7}{'SQ':>7}{'RQ':>7}{'N':>6}"]
    for group in ("All", "Things", "Stuff"):
        r = report[group]
        lines.append(f"{group:<8}{100 * r['pq']:7.1f}{100 * r['sq']:7.1f}{100 * r['rq']:7.1f}{r['n']:6d}")
    lines.append(f"mIoU {_points(report['miou'])}  pixel accuracy {_points(report['pixel_accuracy'])}")
    lines.append(format_mask_ap(report["mask_ap"]))
    lines.append("")
    lines.append(f"{'category':<24}{'kind':<7}{'PQ':>7}{'SQ':>7}{'RQ':>7}{'TP':>7}{'FP':>7}{'FN':>7}{'IoU':>7}")
    iou = report["per_class_iou"]
    for cid, c in report["per_class"].items():
        if c["tp"] + c["fp"] + c["fn"] == 0 and cid not in iou:
            continue
        kind = "thing" if c["isthing"] else "stuff"
        iou_cell = f"{100 * iou[cid]:7.1f}" if cid in iou else f"{'-':>7}"
        lines.append(
            f"{c['name'][:23]:<24}{kind:<7}{100 * c['pq']:7.1f}{100 * c['sq']:7.1f}{100 * c['rq']:7.1f}"
            f"{c['tp']:7d}{c['fp']:7d}{c['fn']:7d}{iou_cell}"
        )
    return "\n".join(lines)
