"""``edgeps eval``: PQ/SQ/RQ (All/Things/Stuff, per class) and mIoU of a checkpoint on data."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "eval"
HELP = "PQ/SQ/RQ and mIoU of a checkpoint on synth:val or a COCO-panoptic folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (.pt)")
    parser.add_argument("--data", default="synth:val", help="synth:val (default) or a COCO-panoptic folder")
    parser.add_argument("--max-images", type=int, help="evaluate only the first N images")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="write the result (fractions) here")


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.commands.eval_coco import format_results
    from edgeps.data.datasets import open_dataset
    from edgeps.evaluation import evaluate_predictor
    from edgeps.io.coco_panoptic import write_json
    from edgeps.training.inference import predictor_from_checkpoint

    predictor = predictor_from_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    result = evaluate_predictor(predictor, dataset, max_images=args.max_images)
    print(f"{args.checkpoint} on {args.data} ({result['images']} images, {result['ms_per_image']:.0f} ms/image incl. post-processing)")
    print(format_results(result))
    print(f"mIoU {100 * result['miou']:.1f}")
    if args.json_out:
        write_json(args.json_out, {k: v for k, v in result.items()})
    return 0
