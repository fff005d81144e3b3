"""Training curves as a PNG drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edgeps.atomic import atomic_path


def _panel(
    title: str, xs: Sequence[float], series: dict[str, Sequence[float]], log_y: bool, size=(360, 640)
) -> np.ndarray:
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 20, 30, 40
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    values = [np.asarray(v, float) for v in series.values() if len(v)]
    if not xs or not values:
        return img
    allv = np.concatenate(values)
    allv = allv[np.isfinite(allv)]
    if log_y:
        allv = np.log10(np.maximum(allv, 1e-8))
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    x0, x1 = float(min(xs)), float(max(xs)) if max(xs) > min(xs) else float(min(xs)) + 1
    colors = [(200, 60, 20), (20, 140, 20), (20, 20, 200), (140, 20, 140)]
    for k, (name, ys) in enumerate(series.items()):
        ys = np.asarray(ys, float)
        if not len(ys):
            continue
        yv = np.log10(np.maximum(ys, 1e-8)) if log_y else ys
        px = left + (np.asarray(xs[: len(yv)], float) - x0) / (x1 - x0) * (w - left - right)
        py = (h - bottom) - (yv - lo) / (hi - lo) * (h - top - bottom)
        pts = np.stack([px, py], axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, colors[k % len(colors)], 1, cv2.LINE_AA)
        if len(pts) < 30:
            for p in pts:
                cv2.circle(img, tuple(int(v) for v in p), 3, colors[k % len(colors)], -1)
        cv2.putText(
            img,
            name,
            (w - right - 150, top + 18 + 16 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colors[k % len(colors)],
            1,
            cv2.LINE_AA,
        )
    fmt = (lambda v: f"{10**v:.3g}") if log_y else (lambda v: f"{v:.3g}")
    cv2.putText(img, fmt(hi), (2, top + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, fmt(lo), (2, h - bottom), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        img, f"step {int(x0)}..{int(x1)}", (left, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
    )
    return img


def plot_curves(path: str | Path, history: dict[str, list]) -> None:
    """history: 'step' + loss terms per logged step; 'eval_step' + 'pq'/'pq_things' per eval."""
    loss = _panel(
        "training loss (log scale)",
        history.get("step", []),
        {k: history.get(k, []) for k in ("loss", "semantic", "center", "offset")},
        log_y=True,
    )
    pq = _panel(
        "PQ on the held-out split (points)",
        history.get("eval_step", []),
        {k: [100 * v for v in history.get(k, [])] for k in ("pq", "pq_things", "pq_stuff")},
        log_y=False,
    )
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), np.vstack([loss, pq]))
