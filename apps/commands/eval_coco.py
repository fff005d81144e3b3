"""``edgeps eval-coco``: PQ/SQ/RQ of COCO-panoptic predictions against ground truth.

Prints the All/Things/Stuff summary and a per-class table in points (0..100); ``--json``
keeps the full result (fractions 0..1) for scripts and dashboards.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
        help="also write the result (fractions) here",
    )


def format_results(result: dict[str, Any]) -> str:
    """The summary and the per-class table (classes left out of the averages are not listed)."""
    lines = [f"{'':<8}{'PQ':>7}{'SQ':>7}{'RQ':>7}{'N':>6}"]
    for group in ("All", "Things", "Stuff"):
        r = result[group]
        lines.append(f"{group:<8}{100 * r['pq']:7.1f}{100 * r['sq']:7.1f}{100 * r['rq']:7.1f}{r['n']:6d}")
    lines.append("")
    lines.append(f"{'category':<24}{'kind':<7}{'PQ':>7}{'SQ':>7}{'RQ':>7}{'TP':>7}{'FP':>7}{'FN':>7}")
    for c in result["per_class"].values():
        if c["tp"] + c["fp"] + c["fn"] == 0:
            continue
        kind = "thing" if c["isthing"] else "stuff"
        lines.append(
            f"{c['name'][:23]:<24}{kind:<7}{100 * c['pq']:7.1f}{100 * c['sq']:7.1f}{100 * c['rq']:7.1f}"
            f"{c['tp']:7d}{c['fp']:7d}{c['fn']:7d}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edgeps.io.coco_panoptic import write_json
    from edgeps.metrics import evaluate_coco_panoptic

    result = evaluate_coco_panoptic(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir)
    print(format_results(result))
    if args.json_out is not None:
        write_json(args.json_out, result)
    return 0
