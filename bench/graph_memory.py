"""Infer time and peak memory of one ONNX file in ONNX Runtime (CPU), one process per file.

For comparing graphs with and without in-graph post-processing (``export --postprocess
graph|grouping``) at a large input, where the grouping's distance tensors decide the peak. Each
file runs in its own subprocess so that its peak RSS is its own. The input is zeros at the file's
static shape; ``--repeats`` timed calls follow one warm-up call.

    .venv/bin/python bench/graph_memory.py B1/model.onnx B2/model.onnx [--threads 2] [--repeats 3] [--no-arena]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def measure(path: str, threads: int, repeats: int, arena: bool) -> dict:
    """Median infer ms and peak RSS (MB) of ``path`` in this process."""
    import resource
    import time

    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_cpu_mem_arena = arena
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.zeros(inp.shape, np.float32)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        session.run(None, {inp.name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "file": path,
        "input": list(inp.shape),
        "outputs": [o.name for o in session.get_outputs()],
        "infer_ms": float(np.median(times[1:])),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_load_mb": loaded,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-arena", action="store_true", help="ONNX Runtime's CPU memory arena off")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.files[0], args.threads, args.repeats, not args.no_arena)))
        return 0
    for path in args.files:
        cmd = [sys.executable, __file__, path, "--worker", "--threads", str(args.threads)]
        cmd += ["--repeats", str(args.repeats)] + (["--no-arena"] if args.no_arena else [])
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(
            f"{row['file']}: input {row['input']}, {len(row['outputs'])} outputs, infer {row['infer_ms']:.0f} ms, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB (after load {row['rss_after_load_mb']:.0f} MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
