"""panopticapi's PQ evaluator, as shipped in cityscapesscripts: the reference the tests score against."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as reference


def reference_pq(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path) -> dict:
    """panopticapi's ``pq_compute`` on one core, quietly: it matches predictions to ground truth
    by image id and refuses unknown category ids or PNG/JSON disagreements."""
    gt, pred = json.loads(gt_json.read_text()), json.loads(pred_json.read_text())
    categories = {c["id"]: c for c in gt["categories"]}
    preds = {a["image_id"]: a for a in pred["annotations"]}
    matched = [(a, preds[a["image_id"]]) for a in gt["annotations"]]
    with contextlib.redirect_stdout(io.StringIO()):
        stat = reference.pq_compute_single_core(0, matched, str(gt_dir), str(pred_dir), categories)
    return reference.average_pq(stat, categories)
