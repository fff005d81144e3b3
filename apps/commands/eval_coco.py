"""``edgeps eval-coco``: the full metric report of COCO-panoptic predictions against ground truth.

Prints PQ/SQ/RQ (All/Things/Stuff), mIoU, pixel accuracy, mask AP / AP50 / AP75 of the thing
classes and a per-class table, in points (0..100); ``--json`` keeps the full report (fractions
0..1) for scripts and dashboards (keys in docs/metrics.md). Mask AP ranks instances by the
``score`` of each predicted thing segment in ``segments_info`` (``edgeps run --coco-dir`` writes
them); without scores, or without pycocotools, AP is "n/a" with the reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt-json", required=True, type=Path, help="ground-truth COCO panoptic JSON")
    parser.add_argument("--gt-dir", required=True, type=Path, help="folder of the ground-truth PNGs")
    parser.add_argument("--pred-json", required=True, type=Path, help="predicted COCO panoptic JSON")
    parser.add_argument("--pred-dir", required=True, type=Path, help="folder of the predicted PNGs")
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        metavar="OUT",
        help="also write the report (fractions) here; keys in docs/metrics.md",
    )


def run(args: argparse.Namespace) -> int:
    from edgeps.io.coco_panoptic import write_json
    from edgeps.metrics import evaluate_coco_panoptic, format_report

    result = evaluate_coco_panoptic(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir, mask_ap=True)
    print(format_report(result))
    if args.json_out is not None:
        write_json(args.json_out, result)
    return 0
