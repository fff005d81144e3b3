"""``edgeps eval``: PQ/SQ/RQ (All/Things/Stuff, per class) and mIoU of a checkpoint or of
bundles on data; several bundles give one table, with each bundle's parity figures."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="training checkpoint (.pt)")
    src.add_argument("--bundle", type=Path, nargs="+", help="one or more exported bundle folders")
    parser.add_argument(
        "--data",
        default="synth:val",
        help="data spec: synth:val[:N] (default synth:val), synth:train[:N], or DIR[:SPLIT[:N]] of a Cityscapes or "
        "COCO-panoptic root (no split = val); see docs/training.md",
    )
    parser.add_argument("--max-images", type=int, help="evaluate only the first N images")
    parser.add_argument("--backend", help="runtime backend for --bundle (default: the bundle's own)")
    parser.add_argument("--threads", type=int, help="inference threads")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="write the result (fractions) here")


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.commands.eval_coco import format_results
    from edgeps.data.datasets import open_dataset
    from edgeps.evaluation import evaluate_predictor
    from edgeps.io.coco_panoptic import write_json

    dataset = open_dataset(args.data)
    if args.checkpoint:
        from edgeps.training.inference import predictor_from_checkpoint

        result = evaluate_predictor(predictor_from_checkpoint(args.checkpoint), dataset, max_images=args.max_images)
        print(
            f"{args.checkpoint} on {args.data} ({result['images']} images, {result['ms_per_image']:.0f} ms/image "
            "incl. post-processing)"
        )
        print(format_results(result))
        print(f"mIoU {100 * result['miou']:.1f}")
        if args.json_out:
            write_json(args.json_out, result)
        return 0

    from edgeps.runtimes import load

    rows, results = [], {}
    for bundle in args.bundle:
        rt = load(bundle, backend=args.backend, threads=args.threads)
        res = evaluate_predictor(rt, dataset, max_images=args.max_images, desc=bundle.name)
        parity = rt.manifest.parity or {}
        results[str(bundle)] = {"result": res, "info": rt.info, "parity": parity}
        rows.append((bundle.name, rt.info["backend"], rt.manifest.precision, res, parity))
    head = (
        f"{'bundle':<18}{'backend':<13}{'prec':<6}{'PQ':>6}{'SQ':>6}{'RQ':>6}{'PQth':>6}{'SQth':>6}{'RQth':>6}"
        f"{'PQst':>6}{'SQst':>6}{'RQst':>6}{'ms/img':>8}  parity (max|diff|, agree %, dPQ)"
    )
    print(f"{args.data}, {rows[0][3]['images']} images")
    print(head)
    for name, backend, prec, r, p in rows:
        cells = "".join(f"{100 * r[g][k]:6.1f}" for g in ("All", "Things", "Stuff") for k in ("pq", "sq", "rq"))
        par = "-"
        if p:
            par = f"{max(p['max_abs_diff'].values()):.1e}, {100 * p['class_agreement']:.2f}, {p['pq_diff_points']:+.2f}"
        print(f"{name:<18}{backend:<13}{prec:<6}{cells}{r['ms_per_image']:8.1f}  {par}")
    if args.json_out:
        write_json(args.json_out, results)
    return 0
