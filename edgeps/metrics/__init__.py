"""Panoptic metrics: PQ/SQ/RQ with the COCO reference rules, mIoU, pixel accuracy and mask AP
(pycocotools, imported only when AP is computed) in one report, from files or from memory; STQ
and VPQ of videos."""

from edgeps.metrics.accumulator import PanopticAccumulator
from edgeps.metrics.ap import detection_ground_truth, mask_ap, mask_ap_not_available
from edgeps.metrics.coco import evaluate_coco_panoptic
from edgeps.metrics.pq import CategoryStat, PQStat, pq_image
from edgeps.metrics.report import REPORT_KEYS, build_report, format_report, semantic_metrics
from edgeps.metrics.video import STQAccumulator, VPQAccumulator

__all__ = [
    "REPORT_KEYS",
    "CategoryStat",
    "PQStat",
    "PanopticAccumulator",
    "STQAccumulator",
    "VPQAccumulator",
    "build_report",
    "detection_ground_truth",
    "evaluate_coco_panoptic",
    "format_report",
    "mask_ap",
    "mask_ap_not_available",
    "pq_image",
    "semantic_metrics",
]
