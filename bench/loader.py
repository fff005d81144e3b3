"""Training throughput by loader worker count, measured in one run.

Runs ``edgeps train`` once per worker setting (each in its own process, alternating over
``--repeats`` rounds) and reports steps/s and images/s after the first few steps, and the ratio
of each setting to ``workers=0`` (decoding and augmenting inside the training step).

    python bench/loader.py --config configs/synth.yaml --data /tmp/cs:train --val-data /tmp/cs:val:1 \\
        --steps 30 --workers auto,0

``auto`` is the default (``data.workers: -1``: the cores of a process minus one). Prints a
table and writes ``--json`` when asked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(args: argparse.Namespace, workers: str, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "edgeps.apps.cli",
        "train",
        "--config",
        str(args.config),
        "--out",
        str(out),
        "--max-steps",
        str(args.steps),
        "--no-progress",
        "--device",
        args.device,
    ]
    if args.data:
        cmd += ["--data", args.data]
    if args.val_data:
        cmd += ["--val-data", args.val_data]
    if workers != "auto":
        cmd += ["--workers", workers]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("configs/synth.yaml"))
    p.add_argument("--data", help="training data spec (default: the config's)")
    p.add_argument("--val-data", help="held-out data spec for the closing eval (keep it small)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--workers", default="auto,0", help="comma list of worker settings: auto or N")
    p.add_argument("--repeats", type=int, default=1, help="rounds over the settings, alternating")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    settings = [w.strip() for w in args.workers.split(",") if w.strip()]
    rows: dict[str, list[dict]] = {w: [] for w in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for w in settings:
                m = run_once(args, w, Path(tmp) / f"{w}-{r}")
                rows[w].append(m)
                print(
                    f"round {r}: workers {w} ({m['workers']}): {m['steps_per_s']:.3f} steps/s, "
                    f"{m['images_per_s']:.1f} images/s",
                    flush=True,
                )
    mean = {w: sum(m["steps_per_s"] for m in ms) / len(ms) for w, ms in rows.items()}
    base = mean.get("0")
    print(f"{'workers':<10}{'steps/s':>10}{'images/s':>10}{'vs 0':>8}")
    for w, ms in rows.items():
        ratio = f"{mean[w] / base:8.2f}" if base else f"{'-':>8}"
        print(
            f"{w + ' (' + str(ms[0]['workers']) + ')':<10}{mean[w]:10.3f}"
            f"{mean[w] * ms[0]['images_per_s'] / ms[0]['steps_per_s']:10.1f}{ratio}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "mean_steps_per_s": mean,
                    "runs": {
                        w: [{k: m[k] for k in ("steps", "steps_per_s", "images_per_s", "workers")} for m in ms]
                        for w, ms in rows.items()
                    },
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
