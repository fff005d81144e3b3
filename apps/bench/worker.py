"""Bench worker: ``python -m edgeps.apps.bench.worker --bundle DIR [...]`` measures one bundle
in this fresh process and prints one JSON object (a ``results`` row) on stdout.

A process of its own per bundle makes the peak RSS that bundle's alone and keeps torch (which
the exporter in the parent may have loaded) out of the measured process. Errors go to stderr
with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the worker's flags, measure, print the row as JSON."""
    from edgeps.errors import EdgepsError

    p = argparse.ArgumentParser(prog="python -m edgeps.apps.bench.worker", description=__doc__)
    p.add_argument("--bundle", required=True)
    p.add_argument("--backend")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--data", default="synth:val:8")
    p.add_argument("--frames-file", help="(N, H, W, 3) uint8 .npy from the parent (else --data is read here)")
    p.add_argument("--stream-frames", type=int, default=0, help="also run N frames through the stream pipeline")
    args = p.parse_args(argv)
    from edgeps.apps.bench.measure import measure_bundle, read_frames

    try:
        frames = read_frames(args.frames_file) if args.frames_file else None
        row = measure_bundle(
            args.bundle,
            backend=args.backend,
            device=args.device,
            threads=args.threads,
            warmup=args.warmup,
            iters=args.iters,
            data=args.data,
            frames=frames,
            isolation="subprocess",
            stream_frames=args.stream_frames,
        )
    except EdgepsError as exc:
        print(f"bench worker: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(row) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
