"""Panoptic metrics: PQ/SQ/RQ with the COCO reference rules, from files or from memory."""

from edgeps.metrics.accumulator import PanopticAccumulator
from edgeps.metrics.coco import evaluate_coco_panoptic
from edgeps.metrics.pq import CategoryStat, PQStat, pq_image

__all__ = ["CategoryStat", "PQStat", "PanopticAccumulator", "evaluate_coco_panoptic", "pq_image"]
