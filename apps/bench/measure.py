"""Timing one bundle: warm-up, then ``iters`` timed ``rt.predict`` calls, per-stage latency
percentiles, end-to-end FPS, model-only FPS and peak RSS.

Each bundle is measured in its own fresh worker process by default (``measure_in_worker``),
so its peak RSS is its own (not the previous bundle's, nor the exporter's torch) and torch is
never imported where the model runs; ``measure_bundle`` is the in-process form the worker calls.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.errors import ConfigError, EdgepsError

STAGES = ("total", "preprocess", "infer", "postprocess")
WORKER_MODULE = "edgeps.apps.bench.worker"


class BenchWorkerError(EdgepsError, RuntimeError):
    """A bench worker process failed or printed something that is not a result."""


def latency_stats(values_ms: Sequence[float]) -> dict[str, float]:
    """min / p50 / p90 / p99 / max / mean of one stage (ms); percentiles are linear, so ordered."""
    v = np.asarray(values_ms, float)
    if v.size == 0:
        raise ConfigError("latency_stats: no timings (iters must be >= 1)")
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "min": float(v.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


def bench_runtime(rt: Any, frames: Sequence[np.ndarray], n: int, warmup: int) -> dict[str, Any]:
    """Time ``n`` calls of ``rt.predict`` (after ``warmup`` untimed ones) on ``frames`` in turn.

    Returns ``fps`` (calls per wall second), ``infer_fps`` (1000 / infer p50: the model-only
    figure the streaming target is defined against), ``latency_ms`` per stage (total is the
    wall time of each call) and, for older callers, the medians as ``<stage>_ms``.
    """
    if n < 1:
        raise ConfigError(f"--iters: must be >= 1, got {n}")
    if not frames:
        raise ConfigError("bench: no frames to run on")
    for i in range(max(0, warmup)):
        rt.predict(frames[i % len(frames)])
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        res = rt.predict(frames[i % len(frames)])
        per_stage["total"].append((time.perf_counter() - t0) * 1e3)
        for stage in ("preprocess", "infer", "postprocess"):
            per_stage[stage].append(float(res.timings.get(stage, 0.0)))
    wall = time.perf_counter() - t_start
    latency = {s: latency_stats(v) for s, v in per_stage.items()}
    out: dict[str, Any] = {
        "fps": n / wall,
        "infer_fps": 1e3 / max(latency["infer"]["p50"], 1e-9),
        "latency_ms": latency,
    }
    out.update({f"{s}_ms": latency[s]["p50"] for s in STAGES})
    return out


def peak_rss_mb() -> tuple[float, str]:
    """Peak resident set size of this process in MB, and where it was read.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this process's own memory
    map. ``ru_maxrss`` is not used there because the kernel carries it across fork + exec, so
    a worker started by a large parent (one with torch loaded) would report the parent's size.
    Elsewhere ``ru_maxrss`` (KB on Linux/BSD, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0, "VmHWM"
    except (OSError, ValueError, IndexError):
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (ru / 2**20 if sys.platform == "darwin" else ru / 1024.0), "ru_maxrss"


def load_frames(data: str) -> list[np.ndarray]:
    """The frames of a data spec (``synth:val:8``, a COCO folder, ...), BGR uint8."""
    from edgeps.data.datasets import open_dataset

    ds = open_dataset(data)
    return [ds[i].image for i in range(len(ds))]


def save_frames(frames: Sequence[np.ndarray], path: str | Path) -> Path | None:
    """Stack same-shape frames into one ``.npy`` (no pickle) for the workers, so each worker
    reads raw pixels instead of rendering/decoding them again: less CPU, and the renderer's
    temporary memory does not inflate the bundle's peak RSS. None when shapes differ."""
    if not frames or len({f.shape for f in frames}) != 1:
        return None
    path = Path(path)
    np.save(path, np.stack(frames), allow_pickle=False)
    return path


def read_frames(path: str | Path) -> list[np.ndarray]:
    """Frames written by :func:`save_frames`."""
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ConfigError(f"{path}: expected an (N, H, W, 3) uint8 frame stack, got {arr.dtype} {arr.shape}")
    return list(arr)


def vm_kb(field: str) -> float | None:
    """A ``Vm*`` line of /proc/self/status in MB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def stream_stats(rt: Any, frames: Sequence[np.ndarray], n: int) -> dict[str, Any]:
    """``n`` frames (``frames`` repeated) through the ``edgeps run`` pipeline in record mode,
    with the tracker: ``stream_fps`` (frames/s after the first frame) and ``stream_latency_ms``
    (capture to result, ``latency_stats``)."""
    from edgeps.stream.pipeline import StreamPipeline
    from edgeps.stream.sources import ArraySource
    from edgeps.stream.tracker import Tracker

    repeat = -(-n // len(frames))
    source = ArraySource(list(frames), repeat=repeat)
    tracker = Tracker(rt.manifest.categories.thing_ids, label_divisor=rt.manifest.postprocess.label_divisor)
    pipe = StreamPipeline(rt, source, realtime=False, tracker=tracker, max_frames=n)
    for _ in pipe:
        pass
    summary = pipe.summary()
    return {"stream_fps": summary["fps_steady"], "stream_latency_ms": latency_stats(list(pipe.timings["latency"]))}


def measure_bundle(
    bundle: str | Path,
    *,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    iters: int = 20,
    data: str = "synth:val:8",
    frames: Sequence[np.ndarray] | None = None,
    isolation: str = "in-process",
    stream_frames: int = 0,
) -> dict[str, Any]:
    """Load ``bundle`` here, time it and return one ``results`` row of the bench JSON; with
    ``stream_frames`` > 0 the row also has :func:`stream_stats`' fields."""
    from edgeps.apps.bench.device import package_versions
    from edgeps.runtimes import load

    frames = list(frames) if frames is not None else load_frames(data)
    before_load = vm_kb("VmHWM")
    rt = load(bundle, backend=backend, device=device, threads=threads)
    after_load = vm_kb("VmHWM")
    timing = bench_runtime(rt, frames, iters, warmup)
    stream = stream_stats(rt, frames, stream_frames) if stream_frames > 0 else {}
    info = rt.info
    rss, rss_source = peak_rss_mb()
    row = {
        "bundle": str(bundle),
        "name": Path(bundle).name,
        "format": info.get("format", rt.manifest.format),
        "backend": info["backend"],
        "precision": info.get("precision", rt.manifest.precision),
        "input_size": [int(v) for v in info["input_size"]],
        "threads": info.get("threads"),
        "device": str(info.get("device", device)),
        "providers": list(info["providers"]) if info.get("providers") else None,
        "fps": timing["fps"],
        "infer_fps": timing["infer_fps"],
        "latency_ms": timing["latency_ms"],
        "peak_rss_mb": rss,
        "peak_rss_source": rss_source,
        "torch_imported": "torch" in sys.modules,
        "isolation": isolation,
        "versions": package_versions({k: str(v) for k, v in (info.get("versions") or {}).items()}),
        "frames": len(frames),
        # where the peak comes from: high-water mark before loading the bundle (interpreter,
        # packages, frames), after loading it (session), and at the end (inference + post)
        "memory_mb": {"before_load": before_load, "after_load": after_load, "peak": rss}
        if before_load is not None
        else None,
        **stream,
    }
    del rt
    return row


def worker_command(
    bundle: str | Path,
    *,
    backend: str | None,
    device: str,
    threads: int | None,
    warmup: int,
    iters: int,
    data: str,
    python: str | Path | None = None,
    frames_file: str | Path | None = None,
    stream_frames: int = 0,
) -> list[str]:
    """The argv of a worker measuring ``bundle`` (no shell involved)."""
    cmd = [
        str(python or sys.executable),
        "-m",
        WORKER_MODULE,
        "--bundle",
        str(bundle),
        "--device",
        device,
        "--warmup",
        str(warmup),
        "--iters",
        str(iters),
        "--data",
        data,
    ]
    if backend:
        cmd += ["--backend", backend]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if frames_file is not None:
        cmd += ["--frames-file", str(frames_file)]
    if stream_frames:
        cmd += ["--stream-frames", str(stream_frames)]
    return cmd


def measure_in_worker(
    bundle: str | Path,
    *,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    iters: int = 20,
    data: str = "synth:val:8",
    python: str | Path | None = None,
    frames_file: str | Path | None = None,
    timeout: float = 3600.0,
    stream_frames: int = 0,
) -> dict[str, Any]:
    """Measure ``bundle`` in a fresh ``python -m edgeps.apps.bench.worker`` process (JSON on
    its stdout) so the row's peak RSS and torch_imported describe that bundle alone.
    ``python`` picks another interpreter, e.g. a runtime-only venv without torch."""
    cmd = worker_command(
        bundle,
        backend=backend,
        device=device,
        threads=threads,
        warmup=warmup,
        iters=iters,
        data=data,
        python=python,
        frames_file=frames_file,
        stream_frames=stream_frames,
    )
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        raise ConfigError(f"--python: interpreter not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise BenchWorkerError(f"{bundle}: bench worker did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise BenchWorkerError(
            f"{bundle}: bench worker failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        row = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchWorkerError(
            f"{bundle}: bench worker printed no JSON result (stdout: {proc.stdout[-300:]!r})"
        ) from None
    if not isinstance(row, dict):
        raise BenchWorkerError(f"{bundle}: bench worker result is not a JSON object")
    return row
