"""Choosing a deployment for a frame-rate budget: the sweep's sizes, its Pareto front, the
chosen row, its table and chart, and its JSON (schema ``edgeps-bench-sweep/1``).

A row is one measured configuration (format x precision x input size x threads) with ``pq``
(fraction), ``stream_fps`` (end-to-end frames/s of the ``edgeps run`` pipeline),
``stream_latency_ms`` (percentiles) and ``peak_rss_mb``. The rule (:func:`choose_row`): the
highest PQ among the rows that reach the target FPS, where rows within ``tie_pq`` PQ of the
best count as tied and the fastest of them wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps.atomic import atomic_write_bytes
from edgeps.errors import FormatError

SCHEMA = "edgeps-bench-sweep/1"
SIZE_FACTORS = (0.75, 1.0, 1.25)  # input sizes swept around the trained one (linear scale)
SIZE_MULTIPLE = 32  # every side a multiple of the model's output stride
TIE_PQ = 0.003  # rows within 0.3 PQ points of the best are tied (PQ as a fraction)


def sweep_sizes(trained: tuple[int, int], factors: Sequence[float] = SIZE_FACTORS) -> list[tuple[int, int]]:
    """Input sizes (H, W) around ``trained``: each factor scales both sides, rounded to a
    multiple of 32 (at least 64); duplicates dropped, ascending."""
    out: set[tuple[int, int]] = set()
    for f in factors:
        h, w = (max(2 * SIZE_MULTIPLE, SIZE_MULTIPLE * round(v * f / SIZE_MULTIPLE)) for v in trained)
        out.add((h, w))
    return sorted(out)


def pareto_front(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Indices of the rows no other row beats on both PQ and stream FPS (ties kept)."""
    front = []
    for i, r in enumerate(rows):
        dominated = any(
            o["pq"] >= r["pq"]
            and o["stream_fps"] >= r["stream_fps"]
            and (o["pq"] > r["pq"] or o["stream_fps"] > r["stream_fps"])
            for j, o in enumerate(rows)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def choose_row(rows: Sequence[dict[str, Any]], target_fps: float, tie_pq: float = TIE_PQ) -> int | None:
    """Index of the chosen row: among rows with ``stream_fps >= target_fps``, those within
    ``tie_pq`` of the best PQ, the fastest (then the first). None when no row reaches it."""
    fast = [i for i, r in enumerate(rows) if r["stream_fps"] >= target_fps]
    if not fast:
        return None
    best = max(rows[i]["pq"] for i in fast)
    tied = [i for i in fast if rows[i]["pq"] >= best - tie_pq - 1e-12]
    return max(tied, key=lambda i: (rows[i]["stream_fps"], -i))


def row_name(row: dict[str, Any]) -> str:
    h, w = row["input_size"]
    return f"{row['format']}-{row['precision']} {h}x{w} t{row['threads']}"


def format_sweep(rows: Sequence[dict[str, Any]], chosen: int | None, target_fps: float) -> str:
    """The Pareto table: one line per row, fastest first; ``*`` marks the Pareto front and
    ``<=`` the chosen row."""
    front = set(pareto_front(rows))
    lines = [
        f"{'':2}{'configuration':<30}{'PQ':>7}{'stream FPS':>12}{'p99 ms':>9}{'peak MB':>9}  ",
    ]
    for i in sorted(range(len(rows)), key=lambda k: -rows[k]["stream_fps"]):
        r = rows[i]
        mark = "*" if i in front else " "
        lines.append(
            f"{mark:2}{row_name(r):<30}{100 * r['pq']:7.1f}{r['stream_fps']:12.1f}"
            f"{r['stream_latency_ms']['p99']:9.1f}{r['peak_rss_mb']:9.0f}" + ("  <= chosen" if i == chosen else "")
        )
    if chosen is None:
        lines.append(f"no configuration reaches {target_fps:g} FPS; the fastest reached {max_fps(rows):.1f}")
    else:
        lines.append(
            f"chosen for {target_fps:g} FPS: {row_name(rows[chosen])} ({100 * rows[chosen]['pq']:.1f} PQ, "
            f"{rows[chosen]['stream_fps']:.1f} FPS): {rows[chosen]['bundle']}"
        )
    lines.append("* Pareto front (no row has both more PQ and more FPS)")
    return "\n".join(lines)


def max_fps(rows: Sequence[dict[str, Any]]) -> float:
    return max((r["stream_fps"] for r in rows), default=0.0)


def sweep_report(
    rows: Sequence[dict[str, Any]],
    chosen: int | None,
    target_fps: float,
    device: dict[str, Any],
    config: dict[str, Any],
    skipped: Sequence[dict[str, str]],
) -> dict[str, Any]:
    """The sweep JSON: rows (each with ``pareto``), the chosen row and its bundle path (None
    when no row reaches the target), and every configuration skipped with the reason."""
    front = set(pareto_front(rows))
    return {
        "schema": SCHEMA,
        "target_fps": target_fps,
        "device": device,
        "config": config,
        "rows": [{**r, "pareto": i in front} for i, r in enumerate(rows)],
        "chosen": None if chosen is None else {"index": chosen, "bundle": rows[chosen]["bundle"], **rows[chosen]},
        "skipped": list(skipped),
    }


def _ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    span = max(hi - lo, 1e-9)
    step = 10 ** np.floor(np.log10(span / most))
    for k in (1, 2, 5, 10):
        if span / (k * step) <= most:
            step *= k
            break
    start = np.ceil(lo / step) * step
    return [float(round(v, 10)) for v in np.arange(start, hi + 1e-9, step)]


def render_pareto(rows: Sequence[dict[str, Any]], chosen: int | None, target_fps: float) -> np.ndarray:
    """A PQ (y) vs stream FPS (x) scatter as a BGR image: front points joined, the chosen row
    ringed, the target FPS as a vertical line."""
    w, h, m = 760, 460, 60
    img = np.full((h, w, 3), 255, np.uint8)
    if not rows:
        return img
    fps = np.array([r["stream_fps"] for r in rows], float)
    pq = np.array([100 * r["pq"] for r in rows], float)
    x_max = max(float(fps.max()), target_fps) * 1.1 or 1.0
    y_lo, y_hi = float(pq.min()) - 2, float(pq.max()) + 2

    def pt(f: float, q: float) -> tuple[int, int]:
        return int(m + (w - 2 * m) * f / x_max), int(h - m - (h - 2 * m) * (q - y_lo) / max(y_hi - y_lo, 1e-6))

    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    tx = pt(target_fps, y_lo)[0]
    cv2.line(img, (tx, m), (tx, h - m), (0, 0, 200), 1)
    cv2.putText(img, f"target {target_fps:g} FPS", (tx + 4, m + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1)
    front = sorted(pareto_front(rows), key=lambda i: fps[i])
    for a, b in zip(front, front[1:]):
        cv2.line(img, pt(fps[a], pq[a]), pt(fps[b], pq[b]), (160, 160, 160), 1, cv2.LINE_AA)
    for i, r in enumerate(rows):
        p = pt(fps[i], pq[i])
        cv2.circle(img, p, 4, (200, 90, 0) if i in front else (150, 150, 150), -1, cv2.LINE_AA)
        cv2.putText(img, row_name(r), (p[0] + 6, p[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (60, 60, 60), 1)
    if chosen is not None:
        cv2.circle(img, pt(fps[chosen], pq[chosen]), 9, (0, 160, 0), 2, cv2.LINE_AA)
    for q in _ticks(y_lo, y_hi):
        cv2.putText(img, f"{q:g}", (8, pt(0, q)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    for f in _ticks(0.0, x_max):
        cv2.putText(img, f"{f:g}", (pt(f, y_lo)[0] - 8, h - m + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, "PQ vs stream FPS", (m, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    return img


def write_pareto_chart(path: str | Path, rows: Sequence[dict[str, Any]], chosen: int | None, target_fps: float) -> Path:
    """Write :func:`render_pareto` as a PNG, atomically."""
    ok, buf = cv2.imencode(".png", render_pareto(rows, chosen, target_fps))
    if not ok:
        raise FormatError(f"{path}: OpenCV could not encode the chart as PNG")
    return atomic_write_bytes(path, buf.tobytes())


__all__ = [
    "SCHEMA",
    "TIE_PQ",
    "choose_row",
    "format_sweep",
    "pareto_front",
    "render_pareto",
    "sweep_report",
    "sweep_sizes",
    "write_pareto_chart",
]
