"""``edgeps eval``: the full metric report (PQ/SQ/RQ All/Things/Stuff and per class, mIoU and
per-class IoU, pixel accuracy, mask AP of the thing classes) of a checkpoint or of bundles on
data. One bundle or a checkpoint prints the whole report; several bundles give one table, with
each bundle's parity figures. ``--json`` writes the report (fractions 0..1; for bundles, one
entry per bundle: ``result``, ``info``, ``parity``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


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
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        metavar="OUT",
        help="write the report (fractions) here; keys in docs/metrics.md",
    )


def scored_checkpoint_predictor(path: Path) -> Callable[[np.ndarray], Any]:
    """The checkpoint's model as a predictor returning a ``PanopticPrediction`` with segment
    scores (mean semantic probability x center score), so mask AP can rank its instances."""
    from edgeps.postprocess import panoptic_from_outputs
    from edgeps.preprocess import frame_geometry
    from edgeps.training.inference import predictor_from_checkpoint

    torch_predictor = predictor_from_checkpoint(path)

    def predict(frame: np.ndarray) -> Any:
        return panoptic_from_outputs(
            torch_predictor.heads(frame),
            thing_ids=torch_predictor.thing_ids,
            settings=torch_predictor.settings,
            geometry=frame_geometry(frame.shape[:2], torch_predictor.spec),
        )

    return predict


def _ap_cell(report: dict[str, Any]) -> str:
    ap = report["mask_ap"]
    return f"{100 * ap['ap']:6.1f}" if ap["status"] == "ok" else f"{'n/a':>6}"


def run(args: argparse.Namespace) -> int:
    from edgeps.data.datasets import open_dataset
    from edgeps.evaluation import evaluate_predictor
    from edgeps.io.coco_panoptic import write_json
    from edgeps.metrics.report import format_mask_ap, format_report

    dataset = open_dataset(args.data)
    if args.checkpoint:
        result = evaluate_predictor(
            scored_checkpoint_predictor(args.checkpoint), dataset, max_images=args.max_images, mask_ap=True
        )
        print(
            f"{args.checkpoint} on {args.data} ({result['images']} images, {result['ms_per_image']:.0f} ms/image "
            "incl. post-processing)"
        )
        print(format_report(result))
        if args.json_out:
            write_json(args.json_out, result)
        return 0

    from edgeps.runtimes import load

    rows, results = [], {}
    for bundle in args.bundle:
        rt = load(bundle, backend=args.backend, threads=args.threads)
        res = evaluate_predictor(rt.predict, dataset, max_images=args.max_images, desc=bundle.name, mask_ap=True)
        parity = rt.manifest.parity or {}
        results[str(bundle)] = {"result": res, "info": rt.info, "parity": parity}
        rows.append((bundle.name, rt.info["backend"], rt.manifest.precision, res, parity))
    if len(rows) == 1:
        name, backend, prec, res, _ = rows[0]
        print(f"{args.data}, {res['images']} images: {name} ({backend}, {prec}), {res['ms_per_image']:.1f} ms/image")
        print(format_report(res))
    head = (
        f"{'bundle':<18}{'backend':<13}{'prec':<6}{'PQ':>6}{'SQ':>6}{'RQ':>6}{'PQth':>6}{'SQth':>6}{'RQth':>6}"
        f"{'PQst':>6}{'SQst':>6}{'RQst':>6}{'mIoU':>6}{'Acc':>6}{'AP':>6}{'ms/img':>8}"
        "  parity (max|diff|, agree %, dPQ)"
    )
    print("" if len(rows) == 1 else f"{args.data}, {rows[0][3]['images']} images")
    print(head)
    for name, backend, prec, r, p in rows:
        cells = "".join(f"{100 * r[g][k]:6.1f}" for g in ("All", "Things", "Stuff") for k in ("pq", "sq", "rq"))
        cells += f"{100 * r['miou']:6.1f}{100 * r['pixel_accuracy']:6.1f}{_ap_cell(r)}"
        par = "-"
        if p:
            par = f"{max(p['max_abs_diff'].values()):.1e}, {100 * p['class_agreement']:.2f}, {p['pq_diff_points']:+.2f}"
        print(f"{name:<18}{backend:<13}{prec:<6}{cells}{r['ms_per_image']:8.1f}  {par}")
    for reason in dict.fromkeys(r["mask_ap"]["reason"] for *_, r, _ in rows if r["mask_ap"]["status"] != "ok"):
        print(format_mask_ap({"status": "n/a", "reason": reason}))
    if args.json_out:
        write_json(args.json_out, results)
    return 0
