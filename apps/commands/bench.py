"""``edgeps bench``: FPS, latency percentiles, stage split and peak RSS per bundle.

    edgeps bench --bundle DIR [DIR ...] [--threads N] [--warmup K] [--iters N] [--json OUT]
    edgeps bench --checkpoint CKPT --formats onnx,openvino --precisions fp32,int8 --sizes 256x512,512x1024
    edgeps bench --compare A.json B.json
    edgeps bench --target-fps 15 --checkpoint CKPT [--pq-data SPEC] [--max-minutes M]   (or --bundle DIR ...)

Bundles have a fixed input size, so with ``--checkpoint`` the requested matrix is exported
into a cache first (reused on the next run). Each bundle is measured in a fresh worker process
(``--in-process`` to skip), so its peak RSS is its own and torch never loads where it runs.
The machines we measure on are shared and noisy: compare bundles within one run, machines
with ``--compare``. JSON schema: :mod:`edgeps.apps.bench` and docs/bench.md.

``--target-fps N`` sweeps formats x precisions x input sizes x threads, measures each row's PQ
and its end-to-end stream FPS (the ``edgeps run`` pipeline), prints the Pareto table and picks
the most accurate row that reaches N FPS (:mod:`edgeps.apps.bench.sweep`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeps.formats import FORMATS, PRECISIONS

log = logging.getLogger("edgeps.bench")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("what to measure (one of --bundle, --checkpoint, --compare)")
    src.add_argument(
        "--bundle", type=Path, nargs="+", help="bundle folders; the first is the baseline of the speed-up column"
    )
    src.add_argument(
        "--checkpoint", type=Path, help="export --formats x --precisions x --sizes into --cache first, then measure"
    )
    src.add_argument(
        "--formats", help="with --checkpoint: comma list (default onnx; with --target-fps every exportable format)"
    )
    src.add_argument(
        "--precisions",
        "--precision",
        dest="precisions",
        help=f"with --checkpoint: comma list of {', '.join(PRECISIONS)} (default fp32; with --target-fps fp32,int8 "
        "and bf16 where the CPU runs it natively)",
    )
    src.add_argument(
        "--sizes",
        help="with --checkpoint: comma list of HxW, e.g. 256x512,512x1024 (default: the training size; with "
        "--target-fps three sizes around it)",
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
    sweep = parser.add_argument_group("choose a deployment for a frame rate (--target-fps)")
    sweep.add_argument(
        "--target-fps", type=float, help="pick the most accurate configuration whose stream reaches N FPS"
    )
    sweep.add_argument(
        "--pq-data", default="synth:dev:16", help="data spec the PQ of each row is measured on (choose on dev, not val)"
    )
    sweep.add_argument(
        "--thread-counts", help="comma list of inference threads to sweep (default: 1, cores - 1 and cores)"
    )
    sweep.add_argument("--stream-frames", type=int, default=40, help="frames timed through the stream per row")
    sweep.add_argument(
        "--max-minutes", type=float, help="stop the sweep after M minutes; rows not measured are listed as skipped"
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
    entries = ensure_matrix(
        args.checkpoint, split_list(args.formats or "onnx"), split_list(args.precisions or "fp32"), sizes, args.cache
    )
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
    if args.target_fps is not None:
        return _run_sweep(args)
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


def _sweep_threads(text: str | None) -> list[int]:
    from edgeps.apps.arguments import split_list
    from edgeps.errors import ConfigError

    if text is None:
        cores = os.cpu_count() or 1
        return sorted({1, max(1, cores - 1), cores})
    try:
        counts = sorted({int(v) for v in split_list(text)})
    except ValueError:
        raise ConfigError(f"--thread-counts: expected a comma list of integers, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise ConfigError(f"--thread-counts: expected integers >= 1, got {text!r}")
    return counts


def _bundle_pq(bundle: Path, data: str, backend: str | None) -> float:
    """PQ (fraction) of ``bundle`` on the data spec (PQ does not depend on the thread count)."""
    from edgeps.data.datasets import open_dataset
    from edgeps.evaluation import evaluate_predictor
    from edgeps.runtimes import load

    rt = load(bundle, backend=backend)
    return float(evaluate_predictor(rt, open_dataset(data), show_progress=False)["All"]["pq"])


def _run_sweep(args: argparse.Namespace) -> int:
    """``--target-fps``: export (or take) the bundles, measure PQ and stream FPS per thread
    count, print the Pareto table and the chosen row, write the JSON and chart."""
    from edgeps.apps.arguments import parse_size, split_list
    from edgeps.apps.bench.cache import ensure_matrix
    from edgeps.apps.bench.device import describe_device
    from edgeps.apps.bench.measure import load_frames, measure_in_worker, save_frames
    from edgeps.apps.bench.sweep import choose_row, format_sweep, sweep_report, sweep_sizes, write_pareto_chart
    from edgeps.bundle import read_manifest
    from edgeps.errors import ConfigError, EdgepsError
    from edgeps.io.coco_panoptic import write_json
    from edgeps.runtimes.cpu import runs_natively

    if args.target_fps <= 0:
        raise ConfigError(f"--target-fps: expected > 0, got {args.target_fps}")
    if args.stream_frames < 2:
        raise ConfigError(f"--stream-frames: expected >= 2, got {args.stream_frames}")
    if args.in_process:
        raise ConfigError("--target-fps measures every row in its own worker process; drop --in-process")
    deadline = None if args.max_minutes is None else time.monotonic() + 60 * args.max_minutes
    threads = _sweep_threads(args.thread_counts)
    skipped: list[dict[str, str]] = []
    bf16_ok = runs_natively("bf16")
    bundles: list[Path] = list(args.bundle or [])
    if args.checkpoint:
        from edgeps.training.checkpoint import load_checkpoint

        trained = tuple(int(v) for v in load_checkpoint(args.checkpoint)["config"]["data"]["input_size"])
        sizes = [parse_size(v) for v in split_list(args.sizes)] if args.sizes else sweep_sizes(trained)
        formats = split_list(args.formats) if args.formats else [f for f in FORMATS if f != "torch"]
        wanted = split_list(args.precisions) if args.precisions else ["fp32", "int8", "bf16"]
        precisions = [p for p in wanted if p in PRECISIONS]
        if "bf16" in precisions and not bf16_ok:
            precisions.remove("bf16")
            if args.precisions:
                skipped.append({"row": "bf16", "reason": "this CPU has no native bf16 (AVX512-BF16 / AMX)"})
        for size in sizes:
            if deadline is not None and time.monotonic() > deadline:
                skipped.append({"row": f"{size[0]}x{size[1]} (export)", "reason": "--max-minutes reached"})
                continue
            for e in ensure_matrix(args.checkpoint, formats, precisions, [size], args.cache):
                if e.error:
                    skipped.append({"row": f"{e.format}-{e.precision} {size[0]}x{size[1]}", "reason": e.error})
                else:
                    bundles.append(e.path)
    frames = load_frames(args.data)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgeps-sweep-") as tmp:
        frames_file = save_frames(frames, Path(tmp) / "frames.npy")
        for bundle in bundles:
            m = read_manifest(bundle)
            name = f"{m.format}-{m.precision} {m.input.size[0]}x{m.input.size[1]}"
            if m.precision == "bf16" and not bf16_ok:
                skipped.append({"row": name, "reason": "this CPU has no native bf16 (AVX512-BF16 / AMX)"})
                continue
            if deadline is not None and time.monotonic() > deadline:
                skipped.append({"row": name, "reason": "--max-minutes reached"})
                continue
            try:
                pq = _bundle_pq(bundle, args.pq_data, args.backend)
            except EdgepsError as exc:
                skipped.append({"row": name, "reason": f"PQ failed: {exc}"})
                continue
            for t in threads:
                if deadline is not None and time.monotonic() > deadline:
                    skipped.append({"row": f"{name} t{t}", "reason": "--max-minutes reached"})
                    continue
                print(f"[sweep] {name}, {t} thread(s): PQ {100 * pq:.1f}", file=sys.stderr, flush=True)
                row = measure_in_worker(
                    bundle,
                    backend=args.backend,
                    device=args.device,
                    threads=t,
                    warmup=args.warmup,
                    iters=args.iters,
                    data=args.data,
                    python=args.python,
                    frames_file=frames_file,
                    stream_frames=args.stream_frames,
                )
                row["threads"] = t
                row["pq"] = pq
                rows.append(row)
    if not rows:
        raise ConfigError(
            "--target-fps: no configuration was measured:\n  "
            + "\n  ".join(f"{s['row']}: {s['reason']}" for s in skipped)
        )
    chosen = choose_row(rows, args.target_fps)
    print(format_sweep(rows, chosen, args.target_fps))
    for s in skipped:
        print(f"skipped {s['row']}: {s['reason']}")
    config = {
        "pq_data": args.pq_data,
        "data": args.data,
        "stream_frames": args.stream_frames,
        "thread_counts": threads,
        "iters": args.iters,
        "warmup": args.warmup,
        "max_minutes": args.max_minutes,
    }
    if args.json_out:
        write_json(args.json_out, sweep_report(rows, chosen, args.target_fps, describe_device(), config, skipped))
        print(f"json: {args.json_out}")
    chart = _chart_path(args)
    if chart:
        write_pareto_chart(chart, rows, chosen, args.target_fps)
        print(f"chart: {chart}")
    return 0 if chosen is not None else 1
