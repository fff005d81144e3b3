"""``edgeps export``: checkpoint -> one bundle per format and precision (``DIR/onnx-int8/``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "export"
HELP = "export a checkpoint to bundles (torch, onnx) with calibration and a parity gate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgeps.export import FORMATS

    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--formats", default="torch,onnx", help=f"comma list of {', '.join(FORMATS)}")
    parser.add_argument("--precision", default="fp32", help="comma list of fp32, fp16, int8")
    parser.add_argument(
        "--calib", metavar="SPEC",
        help="int8 calibration images: a data spec (DIR[:SPLIT[:N]], no split = val; synth:train:N), an image folder/glob "
        "or a video (default: the checkpoint's own training split)",
    )
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument(
        "--parity-data", metavar="SPEC",
        help="held-out images for the parity gate, disjoint from --calib (default: the checkpoint's own validation split)",
    )
    parser.add_argument("--parity-images", type=int, default=8)
    parser.add_argument("--size", help="model input HxW (default: the training input size)")
    parser.add_argument("--target", default="generic", help="int8 target: generic (safe on CPUs without VNNI), cpu-vnni; onnx also tensorrt, openvino also gpu, npu")
    parser.add_argument("--dynamic-hw", action="store_true", help="ONNX with dynamic input height/width")
    parser.add_argument("--resize", default="letterbox", choices=["letterbox", "stretch"], help="frames of another aspect ratio")
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.commands.data import parse_size
    from edgeps.export.pipeline import export_bundles

    logging.getLogger("edgeps").setLevel(logging.INFO)
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
    )
    print(f"{'bundle':<14}{'seconds':>9}{'MB':>8}{'max|diff|':>11}{'agree %':>9}{'PQ':>7}{'PQ torch':>10}")
    for r in results:
        p = r.parity
        print(
            f"{r.name:<14}{r.seconds:9.1f}{r.size_bytes / 1e6:8.2f}{max(p['max_abs_diff'].values()):11.2e}"
            f"{100 * p['class_agreement']:9.2f}{100 * p['pq_bundle']:7.1f}{100 * p['pq_torch_fp32']:10.1f}"
        )
    return 0
