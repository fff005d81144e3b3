"""A plain, obviously-correct loop implementation of Panoptic-DeepLab post-processing.

Slow on purpose (Python loops over pixels): it is the oracle the fast vectorized version in
``edgeps.postprocess`` must match exactly on small inputs.
"""

from __future__ import annotations

import numpy as np


def oracle_panoptic(
    semantic,
    center,
    offsets,
    thing_ids,
    label_divisor=1000,
    stuff_area=2048,
    void_label=-1,
    threshold=0.1,
    nms_kernel=7,
    top_k=200,
):
    if semantic.ndim == 3:
        semantic = semantic.argmax(axis=0)
    h, w = semantic.shape
    things = {int(t) for t in thing_ids}
    r = nms_kernel // 2
    # 1. centers: threshold, window max, top-k (keep strictly above the k-th score and > 0)
    cand = []  # (y, x, score) in row-major order
    for y in range(h):
        for x in range(w):
            v = float(center[y, x])
            if v <= threshold:
                continue
            window_max = -1.0
            for yy in range(max(0, y - r), min(h, y + r + 1)):
                for xx in range(max(0, x - r), min(w, x + r + 1)):
                    u = float(center[yy, xx])
                    u = u if u > threshold else -1.0
                    window_max = max(window_max, u)
            if v == window_max and v > 0:
                cand.append((y, x, v))
    if top_k is not None and len(cand) >= top_k and top_k < h * w:
        kth = sorted((c[2] for c in cand), reverse=True)[top_k - 1]
        cand = [c for c in cand if c[2] > max(kth, 0.0)]
    # 2. grouping: nearest center to (y + dy, x + dx), ties to the first center
    inst = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            if int(semantic[y, x]) not in things or not cand:
                continue
            vy = y + float(offsets[0, y, x])
            vx = x + float(offsets[1, y, x])
            best, best_d = -1, None
            for k, (cy, cx, _) in enumerate(cand):
                dy, dx = vy - cy, vx - cx
                d = dy * dy + dx * dx
                if best_d is None or d < best_d:
                    best, best_d = k, d
            inst[y][x] = best + 1
    # 3. fusion: majority class per instance, numbered per class in center order
    pan = np.full((h, w), void_label, dtype=np.int32)
    counter = {}
    for k in range(1, len(cand) + 1):
        votes = {}
        pixels = [(y, x) for y in range(h) for x in range(w) if inst[y][x] == k]
        if not pixels:
            continue
        for y, x in pixels:
            c = int(semantic[y, x])
            votes[c] = votes.get(c, 0) + 1
        best_count = max(votes.values())
        cls = min(c for c, n in votes.items() if n == best_count)
        counter[cls] = counter.get(cls, 0) + 1
        for y, x in pixels:
            pan[y, x] = cls * label_divisor + counter[cls]
    for cls in sorted({int(v) for v in np.unique(semantic)}):
        if cls in things:
            continue
        pixels = [(y, x) for y in range(h) for x in range(w) if int(semantic[y, x]) == cls]
        if len(pixels) >= stuff_area:
            for y, x in pixels:
                pan[y, x] = cls * label_divisor
    return pan
