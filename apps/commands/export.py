"""``edgeps export``: checkpoint -> one bundle per format and precision (``DIR/onnx-int8/``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgeps.bundle import POSTPROCESS_PLACES
    from edgeps.formats import (
        BATCH_FORMATS,
        FORMATS,
        GRAPH_GROUPING_FORMATS,
        GRAPH_POSTPROCESS_FORMATS,
        PRECISIONS,
        formats_help,
        precisions_help,
    )

    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--formats", default="torch,onnx", help=f"comma list of {', '.join(FORMATS)}: {formats_help()}")
    parser.add_argument(
        "--precision",
        default="fp32",
        help=f"comma list of {', '.join(PRECISIONS)}; each format gets those it offers: {precisions_help()}",
    )
    parser.add_argument(
        "--calib",
        metavar="SPEC",
        help="int8 calibration images: a data spec (DIR[:SPLIT[:N]], no split = val; synth:train:N), an image "
        "folder/glob "
        "or a video (default: the checkpoint's own training split)",
    )
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument(
        "--parity-data",
        metavar="SPEC",
        help="held-out images for the parity gate, disjoint from --calib (default: the checkpoint's own validation "
        "split)",
    )
    parser.add_argument("--parity-images", type=int, default=8)
    parser.add_argument("--size", help="model input HxW (default: the training input size)")
    targets = "; ".join(f"{f.name}: {', '.join(f.targets)}" for f in FORMATS.values() if f.targets)
    parser.add_argument(
        "--target", default="generic", help=f"int8 target ({targets}); generic is safe on CPUs without VNNI"
    )
    parser.add_argument("--dynamic-hw", action="store_true", help="ONNX with dynamic input height/width")
    parser.add_argument(
        "--postprocess",
        choices=list(POSTPROCESS_PLACES),
        help=f"graph: center extraction (max-pool NMS, threshold, top-k) inside the graph "
        f"({', '.join(GRAPH_POSTPROCESS_FORMATS)}; others keep host); grouping: that and each thing pixel "
        f"grouped to its nearest voted center in the graph too, for GPU targets "
        f"({', '.join(GRAPH_GROUPING_FORMATS)}; others keep graph); recorded in the manifest and parity-checked; "
        "host: all post-processing on the host (default, graph for --target tensorrt or gpu)",
    )
    parser.add_argument(
        "--batch",
        default="1",
        metavar="N|dynamic",
        help=f"frames per model call ({', '.join(BATCH_FORMATS)}; others export 1): a fixed N (the runtime pads a "
        "shorter batch) or dynamic; several cameras served by one model (edgeps ros2 image_topics) infer the frames "
        "that arrive together as one batch (default 1)",
    )
    parser.add_argument(
        "--resize", default="letterbox", choices=["letterbox", "stretch"], help="frames of another aspect ratio"
    )
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.arguments import parse_size
    from edgeps.export.pipeline import ExportFailed, export_bundles

    logging.getLogger("edgeps").setLevel(logging.INFO)
    failures: dict[str, str] = {}
    try:
        results = export_bundles(
            args.checkpoint,
            [f.strip() for f in args.formats.split(",") if f.strip()],
            [p.strip() for p in args.precision.split(",") if p.strip()],
            args.out,
            calib=args.calib,
            calib_images=args.calib_images,
            parity_data=args.parity_data,
            parity_images=args.parity_images,
            size=parse_size(args.size) if args.size else None,
            target=args.target,
            dynamic_hw=args.dynamic_hw,
            resize=args.resize,
            postprocess=args.postprocess or ("graph" if args.target in ("tensorrt", "gpu") else "host"),
            batch=args.batch,
        )
    except ExportFailed as exc:
        results, failures = exc.results, exc.failures
    print(f"{'bundle':<16}{'seconds':>9}{'MB':>8}{'max|diff|':>11}{'agree %':>9}{'PQ':>7}{'PQ torch':>10}")
    for r in results:
        p = r.parity
        print(
            f"{r.name:<16}{r.seconds:9.1f}{r.size_bytes / 1e6:8.2f}{max(p['max_abs_diff'].values()):11.2e}"
            f"{100 * p['class_agreement']:9.2f}{100 * p['pq_bundle']:7.1f}{100 * p['pq_torch_fp32']:10.1f}"
        )
    for name in failures:
        print(f"{name:<16}  FAILED (see below)")
    if failures:
        print(f"edgeps export: {len(failures)} of {len(failures) + len(results)} failed:", file=sys.stderr)
        for name, why in failures.items():
            print(f"  {name}: {why}", file=sys.stderr)
        return 1
    return 0
