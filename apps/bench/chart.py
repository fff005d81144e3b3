"""Bench chart as a PNG drawn with OpenCV (no plotting library on edge installs).

One bar per bundle (per machine with ``--compare``): its height is the end-to-end FPS, split
into preprocess / infer / postprocess / other in proportion to each stage's p50 share of a
call, with a black tick at the model-only FPS (1000 / infer p50).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps.atomic import atomic_write_bytes
from edgeps.errors import FormatError

# BGR colours per stage
STAGE_COLORS = {
    "preprocess": (80, 175, 76),
    "infer": (200, 120, 30),
    "postprocess": (40, 130, 240),
    "other": (170, 170, 170),
}
SERIES_SHADE = (1.0, 0.6)  # A full colour, B lighter


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.42, color=(0, 0, 0)) -> None:
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _shade(color: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(255 - (255 - c) * k) for c in color)  # type: ignore[return-value]


def render_chart(series: Sequence[tuple[str, dict[str, Any]]], title: str = "edgeps bench") -> np.ndarray:
    """The chart image (BGR uint8) of one or two bench reports ``[(label, report), ...]``."""
    from edgeps.apps.bench.report import compare_rows, row_label

    if not series:
        raise FormatError("chart: no report to draw")
    if len(series) == 1:
        groups = [(row_label(r), [r]) for r in series[0][1]["results"]]
    else:
        groups = [(row_label(ra or rb), [ra, rb]) for _, ra, rb in compare_rows(series[0][1], series[1][1])]
    n_series = len(series)
    bar_w, gap, left, right, top, bottom = 34, 36, 60, 20, 60, 70
    group_w = n_series * bar_w + gap
    w = max(520, left + right + group_w * max(1, len(groups)))
    h = 420
    img = np.full((h, w, 3), 255, np.uint8)
    rows = [r for _, rs in groups for r in rs if r is not None]
    ymax = max([r["fps"] for r in rows] + [r["infer_fps"] for r in rows] + [1e-6]) * 1.12
    y0, y1 = h - bottom, top

    def ypix(v: float) -> int:
        return int(round(y0 - (v / ymax) * (y0 - y1)))

    _text(img, title, (left, 22), 0.55)
    # legend
    x = left
    for stage, col in STAGE_COLORS.items():
        cv2.rectangle(img, (x, 34), (x + 12, 46), col, -1)
        _text(img, stage, (x + 16, 45), 0.4)
        x += 26 + 8 * len(stage)
    cv2.line(img, (x, 40), (x + 14, 40), (0, 0, 0), 2)
    _text(img, "model-only FPS", (x + 18, 45), 0.4)
    if n_series > 1:
        _text(img, f"left bar: {series[0][0]}    right bar (lighter): {series[1][0]}", (left, 58), 0.38)
    # axes and grid
    cv2.line(img, (left, y0), (w - right, y0), (0, 0, 0), 1)
    cv2.line(img, (left, y0), (left, y1), (0, 0, 0), 1)
    for k in range(5):
        v = ymax * k / 4
        yy = ypix(v)
        cv2.line(img, (left - 3, yy), (w - right, yy), (225, 225, 225) if k else (0, 0, 0), 1)
        _text(img, f"{v:.3g}", (4, yy + 4), 0.38)
    _text(img, "FPS", (4, top - 8), 0.4)
    for g, (label, rs) in enumerate(groups):
        gx = left + gap // 2 + g * group_w
        for s, r in enumerate(rs):
            bx = gx + s * bar_w
            if r is None:
                _text(img, "n/a", (bx + 4, y0 - 6), 0.35, (120, 120, 120))
                continue
            lat = r["latency_ms"]
            total = max(lat["total"]["p50"], 1e-9)
            parts = {st: lat[st]["p50"] for st in ("preprocess", "infer", "postprocess")}
            parts["other"] = max(0.0, total - sum(parts.values()))
            scale = r["fps"] / max(total, sum(parts.values()))
            y = float(y0)
            for st, ms in parts.items():
                top_y = y - ms * scale / ymax * (y0 - y1)
                cv2.rectangle(
                    img,
                    (bx, int(round(top_y))),
                    (bx + bar_w - 4, int(round(y))),
                    _shade(STAGE_COLORS[st], SERIES_SHADE[s % 2]),
                    -1,
                )
                y = top_y
            cv2.rectangle(img, (bx, ypix(r["fps"])), (bx + bar_w - 4, y0), (60, 60, 60), 1)
            yi = ypix(r["infer_fps"])
            cv2.line(img, (bx - 2, yi), (bx + bar_w - 2, yi), (0, 0, 0), 2)
            _text(img, f"{r['fps']:.1f}", (bx, ypix(r["fps"]) - 4), 0.35)
        _text(img, label, (gx - 10, y0 + 18 + 14 * (g % 2)), 0.36)
        backend = next(r for r in rs if r is not None)["backend"]
        _text(img, backend, (gx - 10, y0 + 50), 0.32, (90, 90, 90))
    return img


def write_chart(path: str | Path, series: Sequence[tuple[str, dict[str, Any]]], title: str = "edgeps bench") -> Path:
    """Render and write the PNG atomically (temp file + rename: no half-written chart)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = render_chart(series, title)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise FormatError(f"{path}: OpenCV could not encode the chart as PNG")
    return atomic_write_bytes(path, buf.tobytes())
