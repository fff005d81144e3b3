"""Model throughput of a bundle with a batch dimension: N frames in one call against N calls of
one frame, same runtime, same frames, in one run.

    .venv/bin/python bench/batch.py --bundle BUNDLE [BUNDLE ...] [--batches 1,2,4] [--threads 2]

A bundle exported with ``edgeps export --batch dynamic`` takes every batch size; one with a
fixed ``--batch N`` is timed at N only (and at 1, padded to N: what a lone frame costs it). Each
row is the median over ``--repeats`` rounds of ``rt.infer`` on a stack of frames from
``synth:val``, after a warm-up call; frames per second is frames / median seconds. Only the
model call is timed: pre- and post-processing are per frame either way. Prints a markdown
table; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from edgeps.apps.arguments import split_list
from edgeps.data.datasets import open_dataset
from edgeps.errors import ConfigError
from edgeps.runtimes import load


def time_batches(bundle: Path, batches: list[int], threads: int | None, repeats: int) -> list[dict]:
    rt = load(bundle, threads=threads)
    most = rt.max_batch
    data = open_dataset(f"synth:val:{max(batches)}")
    frames = [rt.preprocess(data[i].image) for i in range(len(data))]
    rows = []
    for n in batches:
        if most is not None and n > most:
            continue
        stack = np.concatenate(frames[:n], axis=0)
        rt.infer(stack)  # warm-up: the first call of a shape compiles or allocates
        for single in (False, True) if n > 1 else (True,):
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                if single:
                    for f in frames[:n]:
                        rt.infer(f)
                else:
                    rt.infer(stack)
                samples.append(time.perf_counter() - t0)
            sec = statistics.median(samples)
            rows.append(
                {
                    "bundle": str(bundle),
                    "backend": rt.info["backend"],
                    "precision": rt.manifest.precision,
                    "model_batch": "dynamic" if most is None else most,
                    "frames": n,
                    "calls": n if single else 1,
                    "ms_per_frame": round(1e3 * sec / n, 2),
                    "fps": round(n / sec, 2),
                    "threads": rt.info.get("threads"),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, nargs="+", required=True)
    ap.add_argument("--batches", default="1,2,4", help="frames per round, comma list")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0: the backend's default)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    try:
        batches = [int(b) for b in split_list(args.batches)]
    except ValueError:
        raise ConfigError(f"--batches: expected comma-separated integers, got {args.batches!r}") from None
    if not batches or min(batches) < 1 or args.repeats < 1:
        raise ConfigError("--batches: positive integers; --repeats: >= 1")
    rows = [r for b in args.bundle for r in time_batches(b, batches, args.threads or None, args.repeats)]
    print("| bundle | model batch | frames | model calls | ms per frame | frames/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = f"{Path(r['bundle']).name} ({r['backend']}, {r['threads']} threads)"
        print(f"| {name} | {r['model_batch']} | {r['frames']} | {r['calls']} | {r['ms_per_frame']} | {r['fps']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
