"""The full metric report of a COCO-panoptic prediction set against ground truth, read from
JSON + PNG files.

Single process on purpose: the per-image work is vectorized, and a plain loop keeps errors
(which name the file and the segment id) easy to trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeps.errors import FormatError
from edgeps.io.coco_panoptic import CocoPanopticSet, load_coco_panoptic, read_id_png
from edgeps.metrics.accumulator import PanopticAccumulator


def _by_image_id(dataset: CocoPanopticSet) -> dict[Any, dict]:
    out: dict[Any, dict] = {}
    for ann in dataset.annotations:
        image_id = ann["image_id"]
        if image_id in out:
            raise FormatError(f"{dataset.json_path}: image_id {image_id!r} has more than one annotation")
        out[image_id] = ann
    return out


def evaluate_coco_panoptic(
    gt_json: str | Path, gt_dir: str | Path, pred_json: str | Path, pred_dir: str | Path, *, mask_ap: bool = False
) -> dict[str, Any]:
    """The report (:data:`edgeps.metrics.report.REPORT_KEYS`) of COCO-panoptic predictions.

    Args:
        gt_json, gt_dir: the ground-truth panoptic JSON and its PNG folder; the categories
            come from this JSON.
        pred_json, pred_dir: the predicted panoptic JSON and its PNG folder.
        mask_ap: also compute mask AP of the thing classes (pycocotools' COCOeval); it needs a
            ``score`` in every predicted thing segment's ``segments_info`` entry (``edgeps run
            --coco-dir`` writes them), else it is "n/a" with the reason. Without it, "n/a".
    Returns:
        PQ/SQ/RQ (fractions) for All, Things and Stuff, ``per_class`` counts, ``miou``,
        ``per_class_iou``, ``pixel_accuracy``, ``mask_ap`` and ``images``. Images are matched by
        ``image_id``; predictions for images absent from the GT are ignored, as in the COCO
        reference.
    Raises:
        FormatError naming the file when an image has no prediction or a file is malformed.
    """
    gt = load_coco_panoptic(gt_json, gt_dir)
    pred = load_coco_panoptic(pred_json, pred_dir, require_categories=False)
    acc = PanopticAccumulator(gt.categories, mask_ap=mask_ap)
    gt_anns = _by_image_id(gt)
    pred_anns = _by_image_id(pred)
    for image_id, gt_ann in gt_anns.items():
        pred_ann = pred_anns.get(image_id)
        if pred_ann is None:
            raise FormatError(f"{pred.json_path}: no prediction for image_id {image_id!r} (listed in {gt.json_path})")
        gt_png, pred_png = gt.png_path(gt_ann), pred.png_path(pred_ann)
        acc.update_segments(
            read_id_png(gt_png),
            gt_ann["segments_info"],
            read_id_png(pred_png),
            pred_ann["segments_info"],
            void_id=0,
            gt_name=f"{gt_png} (image_id {image_id!r} in {gt.json_path})",
            pred_name=f"{pred_png} (image_id {image_id!r} in {pred.json_path})",
        )
    return acc.result()
