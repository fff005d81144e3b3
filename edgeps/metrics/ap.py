"""Mask AP / AP50 / AP75 of the thing classes, computed by pycocotools' ``COCOeval``.

edgeps does not implement AP itself: it converts panoptic maps into the two lists ``COCOeval``
reads and reports the numbers ``COCOeval.summarize`` computes (``stats[0:3]``).

- **Ground truth**, as panopticapi's ``panoptic2detection_coco_format.py --things_only`` builds
  it (:func:`detection_ground_truth`): one annotation per thing segment of ``segments_info``, its
  mask as a compressed RLE, ``iscrowd`` kept (``COCOeval`` ignores detections on crowd regions),
  stuff left out. Annotation ids are numbered from 1, not 0 as that script does: ``COCOeval``
  takes a detection matched to ground-truth id 0 for an unmatched one.
- **Predictions**: one result per thing segment, RLE + score, from
  :func:`edgeps.fusion.panoptic_to_instances`.

pycocotools is imported inside :func:`mask_ap` only, so edgeps imports and computes every other
metric without it; when it is missing, AP is "n/a" with the reason ``pip install pycocotools``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from edgeps.io.rle import encode_label_map, rle_area, rle_bbox

INSTALL_HINT = "pip install pycocotools"
AP_KEYS = ("ap", "ap50", "ap75")


def mask_ap_not_available(reason: str) -> dict[str, Any]:
    """The ``mask_ap`` entry of a report when AP cannot be computed.

    Returns:
        ``{"status": "n/a", "reason": reason}`` with ``ap``, ``ap50``, ``ap75``,
        ``gt_instances`` and ``pred_instances`` set to None.
    """
    return {
        "status": "n/a",
        "reason": reason,
        **{k: None for k in AP_KEYS},
        "gt_instances": None,
        "pred_instances": None,
    }


def detection_ground_truth(
    id_map: np.ndarray, segments: Iterable[Mapping[str, Any]], *, thing_ids: Iterable[int], image_id: int
) -> list[dict[str, Any]]:
    """Thing segments of one panoptic ground-truth image as COCO instance annotations.

    Args:
        id_map: (H, W) integer map of segment ids (COCO ids decoded from the PNG, or edgeps
            panoptic ids).
        segments: ``segments_info`` entries: ``id``, ``category_id``, optional ``iscrowd`` and
            ``area`` (pixels; as in panopticapi the listed area is kept, else the mask's).
        thing_ids: the thing category ids; other segments are left out.
        image_id: written into every annotation.
    Returns:
        One dict per thing segment, in ``segments`` order: ``image_id``, ``category_id``,
        ``segmentation`` (compressed RLE), ``area``, ``bbox`` ``[x, y, w, h]`` of the mask and
        ``iscrowd`` (0 or 1). No ``id``: :func:`mask_ap` numbers them.
    """
    things = {int(t) for t in thing_ids}
    segs = [s for s in segments if int(s["category_id"]) in things]
    rles = encode_label_map(np.asarray(id_map), [int(s["id"]) for s in segs])
    out = []
    for seg, rle in zip(segs, rles):
        box = rle_bbox(rle)
        y0, y1, x0, x1 = box if box is not None else (0, 0, 0, 0)
        listed = seg.get("area")
        out.append(
            {
                "image_id": image_id,
                "category_id": int(seg["category_id"]),
                "segmentation": rle,
                "area": float(listed) if listed is not None else float(rle_area(rle)),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "iscrowd": int(bool(seg.get("iscrowd", 0))),
            }
        )
    return out


def mask_ap(
    images: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    categories: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Mask AP of instance results against instance ground truth, by pycocotools' COCOeval.

    Args:
        images: ``{"id", "height", "width"}`` of every evaluated image (images with no
            annotation count: a detection there is a false positive).
        ground_truth: annotations as :func:`detection_ground_truth` returns them.
        results: ``image_id``, ``category_id``, ``segmentation`` (RLE) and ``score`` per
            instance, as :func:`edgeps.fusion.panoptic_to_instances` returns them.
        categories: the thing categories evaluated, ``{"id", "name"}``.
    Returns:
        ``{"status": "ok", "reason": None, "ap", "ap50", "ap75"}`` (fractions 0..1: AP averaged
        over IoU 0.50:0.05:0.95, at IoU 0.50 and at 0.75; all areas, 100 detections per image,
        101-point interpolation, mean over the categories with ground truth) plus
        ``gt_instances`` (non-crowd) and ``pred_instances``; or :func:`mask_ap_not_available`
        with the reason (pycocotools missing, no non-crowd ground-truth instance).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return mask_ap_not_available(f"pycocotools is not installed: {INSTALL_HINT}")
    n_gt = sum(1 for a in ground_truth if not a["iscrowd"])
    if n_gt == 0:
        return mask_ap_not_available("the ground truth has no non-crowd instance of a thing class")

    imgs = [{"id": im["id"], "height": int(im["height"]), "width": int(im["width"])} for im in images]
    cats = [{"id": int(c["id"]), "name": str(c["name"])} for c in categories]
    anns = [{**a, "id": k + 1} for k, a in enumerate(ground_truth)]
    # Without "bbox", loadRes takes the mask area as the detection's area (with it: the box's).
    dets = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {"images": imgs, "categories": cats, "annotations": anns}
        gt.createIndex()
        if dets:
            dt = gt.loadRes(dets)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": imgs, "categories": cats, "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    values = [float(v) for v in ev.stats[:3]]
    return {
        "status": "ok",
        "reason": None,
        **dict(zip(AP_KEYS, values)),
        "gt_instances": n_gt,
        "pred_instances": len(dets),
    }
