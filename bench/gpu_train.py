"""GPU training throughput: a synthetic Cityscapes-layout folder, ``configs/cityscapes.yaml``
trained on it for a few minutes, GPU utilization sampled with ``nvidia-smi`` once a second.

    python bench/gpu_train.py --out OUT [--minutes 3] [--images 120] [--size 1024x2048]

Writes ``OUT/gpu_train.json`` (steps/s, images/s, utilization mean/median over the training
loop, the samples) and ``OUT/train.log``. Utilization counts the samples between the first
step's log line + 10 s and the end of the loop (start-up, worker spawning and the closing
evaluation left out). The same script with ``--device cpu --steps 50`` gives the CPU figure
the GPU's images/s is compared with. ``--loader-seconds S`` first measures what the loader alone
delivers (images/s from the same workers, no training step): the most the GPU can be fed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def sample_gpu(samples: list[tuple[float, float, float]], stop: threading.Event) -> None:
    """(time, utilization %, memory MiB) once a second until ``stop``."""
    while not stop.is_set():
        try:
            line = (
                subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                .stdout.strip()
                .splitlines()[0]
            )
            util, mem = (float(v) for v in line.split(","))
            samples.append((time.monotonic(), util, mem))
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            pass
        stop.wait(1.0)


def loader_alone(config: str, data: str, seconds: float, workers: int | None) -> dict:
    """images/s the training DataLoader delivers with nothing consuming it but this loop."""
    from edgeps.data.datasets import open_dataset
    from edgeps.preprocess import InputSpec
    from edgeps.training.config import load_config
    from edgeps.training.distributed import DistInfo
    from edgeps.training.loader import (
        BatchStream,
        EpochSampler,
        TrainSamples,
        default_workers,
        train_loader,
    )

    cfg = load_config(config)
    ds = open_dataset(data, default_split="train")
    n_workers = workers if workers is not None else default_workers()
    samples = TrainSamples(ds, cfg.data, InputSpec(size=tuple(cfg.data.input_size)), cfg.schedule.seed)
    loader = train_loader(samples, EpochSampler(len(ds), DistInfo(), 0), cfg.schedule.batch_size, workers=n_workers)
    images, t0 = 0, None
    with BatchStream(loader) as batches:
        for _ in range(3):  # worker start-up
            next(batches)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            images += len(next(batches)["index"])
    return {"loader_workers": n_workers, "loader_images_per_s": images / (time.monotonic() - t0)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--data", type=Path, default=Path("/tmp/edgeps_cityscapes"), help="folder for the synthetic Cityscapes layout"
    )
    p.add_argument("--images", type=int, default=120, help="training images to write")
    p.add_argument("--size", default="1024x2048")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--steps", type=int, help="stop after N steps instead of --minutes")
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, help="loader workers (default: the config's, from the core count)")
    p.add_argument("--config", default="configs/cityscapes.yaml")
    p.add_argument("--loader-seconds", type=float, default=0.0, help="first time the loader alone for this long")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "edgeps.apps.cli"]
    t = time.monotonic()
    if not (args.data / "gtFine" / "cityscapes_panoptic_train.json").is_file():
        for split, n in (("train", args.images), ("val", 4)):
            synth = ["data", "synth", "--format", "cityscapes", "--out", str(args.data), "--n", str(n)]
            subprocess.run(cli + synth + ["--size", args.size, "--split", split], check=True)
    write_s = time.monotonic() - t
    alone = (
        loader_alone(args.config, f"{args.data}:train", args.loader_seconds, args.workers)
        if args.loader_seconds > 0
        else {}
    )
    if alone:
        print(json.dumps(alone), flush=True)
    cmd = cli + [
        "train",
        "--config",
        args.config,
        "--data",
        f"{args.data}:train",
        "--val-data",
        f"{args.data}:val:4",
        "--out",
        str(args.out / "run"),
        "--no-progress",
        "--device",
        args.device,
    ]
    cmd += (
        ["--max-steps", str(args.steps)]
        if args.steps
        else ["--max-minutes", str(args.minutes), "--max-steps", "1000000"]
    )
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_gpu, args=(samples, stop), daemon=True)
    if args.device == "cuda":
        sampler.start()
    t_first = t_end = None
    with (
        open(args.out / "train.log", "w") as log,
        subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=log, text=True) as proc,
    ):
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            log.flush()
            if t_first is None and " step 1/" in line:
                t_first = time.monotonic()
            if "time budget" in line or "throughput:" in line:
                t_end = t_end or time.monotonic()
        rc = proc.wait()
    stop.set()
    if rc != 0:
        print((args.out / "train.log").read_text()[-3000:])
        return rc
    metrics = json.loads((args.out / "run" / "metrics.json").read_text())
    window = [u for (ts, u, _) in samples if t_first is not None and t_first + 10 <= ts <= (t_end or ts)]
    result = {
        "device": args.device,
        "train_images": metrics["train_images"],
        "image_size": args.size,
        "write_seconds": round(write_s, 1),
        "steps": metrics["steps"],
        "workers": metrics["workers"],
        "steps_per_s": metrics["steps_per_s"],
        "images_per_s": metrics["images_per_s"],
        **alone,
        "gpu_util_mean": statistics.fmean(window) if window else None,
        "gpu_util_median": statistics.median(window) if window else None,
        "gpu_mem_max_mib": max((m for _, _, m in samples), default=None),
        "util_samples": [u for _, u, _ in samples],
    }
    (args.out / "gpu_train.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "util_samples"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
