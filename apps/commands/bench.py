"""``edgeps bench``: latency and FPS per bundle (backend, precision) in one run.

Speed figures are ratios measured in the same run on the same frames, because the machines
we measure on are shared and noisy: the table gives each bundle's speed-up over the first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

NAME = "bench"
HELP = "latency/FPS of bundles (preprocess, infer, postprocess) on the same frames"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, nargs="+", required=True, help="bundle folders; the first is the baseline")
    parser.add_argument("--data", default="synth:val:8", help="frames to run on (data spec)")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per bundle")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--backend", help="force a backend (default: each bundle's own)")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT")


def bench_runtime(rt, frames, n: int, warmup: int) -> dict:
    """Median ms per stage and end-to-end FPS of ``rt.predict`` over ``n`` frames."""
    for i in range(warmup):
        rt.predict(frames[i % len(frames)])
    stages: dict[str, list[float]] = {"preprocess": [], "infer": [], "postprocess": [], "total": []}
    t0 = time.perf_counter()
    for i in range(n):
        res = rt.predict(frames[i % len(frames)])
        for k, v in res.timings.items():
            stages[k].append(v)
        stages["total"].append(sum(res.timings.values()))
    wall = time.perf_counter() - t0
    out = {f"{k}_ms": statistics.median(v) for k, v in stages.items()}
    out["fps"] = n / wall
    out["infer_fps"] = 1e3 / out["infer_ms"]
    return out


def run(args: argparse.Namespace) -> int:
    from edgeps.data.datasets import open_dataset
    from edgeps.io.coco_panoptic import write_json
    from edgeps.runtimes import load

    ds = open_dataset(args.data)
    frames = [ds[i].image for i in range(len(ds))]
    rows = []
    for bundle in args.bundle:
        rt = load(bundle, backend=args.backend, threads=args.threads)
        r = bench_runtime(rt, frames, args.frames, args.warmup)
        r.update({"bundle": str(bundle), "backend": rt.info["backend"], "precision": rt.manifest.precision, "input_size": rt.info["input_size"], "threads": rt.info.get("threads")})
        rows.append(r)
        del rt
    base = rows[0]["infer_ms"]
    h, w = rows[0]["input_size"]
    print(f"{len(frames)} frames from {args.data}, model input {h}x{w}, {args.frames} timed calls each (medians)")
    print(f"{'bundle':<16}{'backend':<13}{'prec':<6}{'pre ms':>8}{'infer ms':>10}{'post ms':>9}{'total ms':>10}{'FPS':>7}{'infer x':>9}")
    for r in rows:
        print(
            f"{Path(r['bundle']).name:<16}{r['backend']:<13}{r['precision']:<6}{r['preprocess_ms']:8.1f}{r['infer_ms']:10.1f}"
            f"{r['postprocess_ms']:9.1f}{r['total_ms']:10.1f}{r['fps']:7.1f}{base / r['infer_ms']:9.2f}"
        )
    if args.json_out:
        write_json(args.json_out, rows)
    return 0
