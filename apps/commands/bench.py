"""``edgeps bench``: FPS, latency percentiles, stage split and peak RSS per bundle.

    edgeps bench --bundle DIR [DIR ...] [--threads N] [--warmup K] [--iters N] [--json OUT]
    edgeps bench --checkpoint CKPT --formats onnx,openvino --precisions fp32,int8 --sizes 256x512,512x1024
    edgeps bench --compare A.json B.json

Bundles have a fixed input size, so with ``--checkpoint`` the requested matrix is exported
into a cache first (reused on the next run). Each bundle is measured in a fresh worker process
(``--in-process`` to skip), so its peak RSS is its own and torch never loads where it runs.
The machines we measure on are shared and noisy: compare bundles within one run, machines
with ``--compare``. JSON schema: :mod:`edgeps.apps.bench` and docs/bench.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("edgeps.bench")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("what to measure (one of --bundle, --checkpoint, --compare)")
    src.add_argument(
        "--bundle", type=Path, nargs="+", help="bundle folders; the first is the baseline of the speed-up column"
    )
    src.add_argument(
        "--checkpoint", type=Path, help="export --formats x --precisions x --sizes into --cache first, then measure"
    )
    src.add_argument("--formats", default="onnx", help="with --checkpoint: comma list (default onnx)")
    src.add_argument(
        "--precisions",
        "--precision",
        dest="precisions",
        default="fp32",
        help="with --checkpoint: comma list of fp32, fp16, int8",
    )
    src.add_argument(
        "--sizes", help="with --checkpoint: comma list of HxW, e.g. 256x512,512x1024 (default: the training size)"
    )
    src.add_argument(
        "--cache", type=Path, help="bundle cache (default ~/.cache/edgeps/bench/<checkpoint sha256[:12]>/<HxW>/)"
    )
    src.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("A.json", "B.json"),
        help="side-by-side table of two bench JSONs with ratios B/A",
    )
    run_ = parser.add_argument_group("how to measure")
    run_.add_argument(
        "--data",
        default="synth:val:8",
        help="frames to run on, a data spec: synth:val:8 (default), synth:train:N or DIR[:SPLIT[:N]] of a "
        "Cityscapes or COCO-panoptic root (no split = val); every image is loaded into memory, so give a small N",
    )
    run_.add_argument("--iters", type=int, default=20, help="timed calls per bundle")
    run_.add_argument("--frames", type=int, help="deprecated alias of --iters")
    run_.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    run_.add_argument("--threads", type=int, help="inference threads (default: the backend's)")
    run_.add_argument("--backend", help="force a backend (default: each bundle's own)")
    run_.add_argument(
        "--device",
        default="cpu",
        help="runtime device: cpu, cuda, tensorrt (ONNX Runtime), CPU/GPU/NPU/AUTO (OpenVINO)",
    )
    run_.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process (peak RSS then covers everything loaded so far)",
    )
    run_.add_argument(
        "--python",
        type=Path,
        help="interpreter for the worker processes, e.g. .venv-runtime/bin/python (default: this one)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        metavar="OUT",
        help="write the results (schema edgeps-bench/1); the chart goes to OUT.png",
    )
    out.add_argument("--chart", type=Path, help="PNG chart path (default: next to --json)")


def _chart_path(args: argparse.Namespace) -> Path | None:
    if args.chart:
        return args.chart
    if args.json_out:
        return args.json_out.with_suffix(".png") if args.json_out.suffix == ".json" else Path(f"{args.json_out}.png")
    return None


def _run_compare(args: argparse.Namespace) -> int:
    from edgeps.apps.bench.report import (
        compare_rows,
        format_compare,
        load_report,
        write_json_atomic,
    )

    a, b = (load_report(p) for p in args.compare)
    print(format_compare(a, b, names=(str(args.compare[0]), str(args.compare[1]))))
    if args.json_out:
        rows = []
        for key, ra, rb in compare_rows(a, b):
            row: dict[str, Any] = {"format": key[0], "precision": key[1], "input_size": list(key[2]), "backend": key[3]}
            for name in ("fps", "infer_fps", "peak_rss_mb"):
                va, vb = (ra or {}).get(name), (rb or {}).get(name)
                row.update({f"{name}_a": va, f"{name}_b": vb, f"{name}_ratio": (vb / va) if va and vb else None})
            rows.append(row)
        write_json_atomic(
            args.json_out,
            {"schema": "edgeps-bench-compare/1", "a": str(args.compare[0]), "b": str(args.compare[1]), "rows": rows},
        )
    chart = _chart_path(args)
    if chart:
        from edgeps.apps.bench.chart import write_chart

        write_chart(chart, [(args.compare[0].stem, a), (args.compare[1].stem, b)], title="edgeps bench --compare (FPS)")
        print(f"chart: {chart}")
    return 0


def _matrix_bundles(args: argparse.Namespace) -> tuple[list[Path], list[str]]:
    """Export/reuse the checkpoint matrix; (bundle folders, error lines)."""
    from edgeps.apps.arguments import parse_size, split_list
    from edgeps.apps.bench.cache import ensure_matrix

    if args.sizes:
        sizes = [parse_size(s) for s in split_list(args.sizes)]
    else:
        from edgeps.training.checkpoint import load_checkpoint

        sizes = [tuple(int(v) for v in load_checkpoint(args.checkpoint)["config"]["data"]["input_size"])]
    entries = ensure_matrix(args.checkpoint, split_list(args.formats), split_list(args.precisions), sizes, args.cache)
    errors = [f"{e.format}-{e.precision} {e.size[0]}x{e.size[1]}: {e.error}" for e in entries if e.error]
    return [e.path for e in entries if not e.error], errors


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.bench.report import publish, run_config
    from edgeps.errors import ConfigError, DataNotFoundError

    if args.compare:
        if args.bundle or args.checkpoint:
            raise ConfigError(
                "--compare A.json B.json compares two earlier runs: do not combine it with --bundle/--checkpoint"
            )
        return _run_compare(args)
    if not args.bundle and not args.checkpoint:
        raise ConfigError("give --bundle DIR [DIR ...] or --checkpoint CKPT (or --compare A.json B.json)")
    if args.frames is not None:
        print("edgeps bench: --frames is deprecated, use --iters", file=sys.stderr)
        args.iters = args.frames
    if args.iters < 1 or args.warmup < 0:
        raise ConfigError(f"--iters must be >= 1 and --warmup >= 0 (got {args.iters}, {args.warmup})")
    for b in args.bundle or []:
        if not b.is_dir():
            raise DataNotFoundError(f"--bundle: not a folder: {b}")
    if args.python is not None and args.in_process:
        raise ConfigError("--python runs the workers with another interpreter; it cannot be combined with --in-process")

    from edgeps.apps.bench.measure import (
        load_frames,
        measure_bundle,
        measure_in_worker,
        save_frames,
    )

    bundles = list(args.bundle or [])
    errors: list[str] = []
    if args.checkpoint:
        more, errors = _matrix_bundles(args)
        bundles += more
    if not bundles:
        raise ConfigError("nothing to measure: every export failed:\n  " + "\n  ".join(errors))
    isolation = "in-process" if args.in_process else "subprocess"
    # frames are read once here; workers get them as one raw .npy (no re-rendering per bundle)
    frames = load_frames(args.data)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeps-bench-") as tmp:
        frames_file = None if args.in_process else save_frames(frames, Path(tmp) / "frames.npy")
        for k, bundle in enumerate(bundles, 1):
            print(
                f"[measure {k}/{len(bundles)}] {bundle} ({isolation}, {args.warmup}+{args.iters} calls)",
                file=sys.stderr,
                flush=True,
            )
            opts = dict(
                backend=args.backend,
                device=args.device,
                threads=args.threads,
                warmup=args.warmup,
                iters=args.iters,
                data=args.data,
            )
            if args.in_process:
                row = measure_bundle(bundle, frames=frames, isolation=isolation, **opts)
            else:
                row = measure_in_worker(bundle, python=args.python, frames_file=frames_file, **opts)
            results.append(row)
    config = run_config(
        threads=args.threads,
        warmup=args.warmup,
        iters=args.iters,
        data=args.data,
        frames=results[0].get("frames", 0),
        device=args.device,
        isolation=isolation,
        python=args.python,
    )
    publish(results, config, args.json_out, _chart_path(args))
    if errors:
        print("export failures (not measured):\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0
