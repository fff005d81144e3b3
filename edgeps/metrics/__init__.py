"""Panoptic metrics: PQ/SQ/RQ with the COCO reference rules, from files or from memory; STQ and VPQ of videos."""

from edgeps.metrics.accumulator import PanopticAccumulator
from edgeps.metrics.coco import evaluate_coco_panoptic
from edgeps.metrics.pq import CategoryStat, PQStat, pq_image
from edgeps.metrics.video import STQAccumulator, VPQAccumulator

__all__ = [
    "CategoryStat",
    "PQStat",
    "PanopticAccumulator",
    "STQAccumulator",
    "VPQAccumulator",
    "evaluate_coco_panoptic",
    "pq_image",
]
