"""Built-in synthetic panoptic data, made on the fly from a seed (no download).

``SYNTH_CATEGORIES`` is the category set of the built-in data: five stuff classes of a street
scene and three thing classes. ``random_scene`` is a quick layout (stuff bands under a
horizon, overlapping elliptic things) for benchmarks and demos of the parts that need no
network; ``noisy_heads`` turns its ground truth into the heads an imperfect network would give.
"""

from __future__ import annotations

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.categories import Categories
from edgeps.data.targets import panoptic_targets

SYNTH_CATEGORIES = Categories.from_list(
    [
        {"id": 0, "name": "road", "isthing": 0, "color": [128, 64, 128]},
        {"id": 1, "name": "sidewalk", "isthing": 0, "color": [244, 35, 232]},
        {"id": 2, "name": "building", "isthing": 0, "color": [70, 70, 70]},
        {"id": 3, "name": "vegetation", "isthing": 0, "color": [107, 142, 35]},
        {"id": 4, "name": "sky", "isthing": 0, "color": [70, 130, 180]},
        {"id": 5, "name": "car", "isthing": 1, "color": [0, 0, 142]},
        {"id": 6, "name": "person", "isthing": 1, "color": [220, 20, 60]},
        {"id": 7, "name": "bicycle", "isthing": 1, "color": [119, 11, 32]},
    ],
    where="SYNTH_CATEGORIES",
)


def random_scene(h: int, w: int, *, n_instances: int = 40, seed: int = 0) -> np.ndarray:
    """A (H, W) int32 panoptic ground truth: sky, building, vegetation, sidewalk and road
    bands, then ``n_instances`` overlapping ellipses of thing classes (later ones occlude
    earlier ones; an instance hidden entirely disappears). A thin void border, as in
    annotated data."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    horizon = rng.uniform(0.3, 0.5) * h
    stuff = np.where(
        yy < horizon * 0.6,
        4,
        np.where(yy < horizon, np.where(xx < rng.uniform(0.2, 0.8) * w, 2, 3), np.where(yy < horizon + 0.12 * h, 1, 0)),
    )
    pan = (stuff * LABEL_DIVISOR).astype(np.int32)
    things = SYNTH_CATEGORIES.thing_ids
    counters = dict.fromkeys(things, 0)
    scale = min(h, w)
    for _ in range(n_instances):
        cls = int(rng.choice(things))
        cy, cx = rng.uniform(horizon * 0.8, h), rng.uniform(-0.05, 1.05) * w
        ry, rx = rng.uniform(0.03, 0.12) * scale, rng.uniform(0.03, 0.2) * scale
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        if mask.any():
            counters[cls] += 1
            pan[mask] = cls * LABEL_DIVISOR + counters[cls]
    # renumber so instance numbers are 1..n per class over the instances still visible
    out = pan.copy()
    for cls in things:
        ids = np.unique(pan[(pan // LABEL_DIVISOR) == cls])
        for n, pid in enumerate(ids, start=1):
            out[pan == pid] = cls * LABEL_DIVISOR + n
    out[:2, :] = out[-2:, :] = VOID_LABEL
    return out


def noisy_heads(
    panoptic: np.ndarray, *, seed: int = 0, offset_noise: float = 1.5, label_noise: float = 0.01, extra_peaks: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(semantic (H, W) int64, center (H, W) float32, offsets (2, H, W) float32) from ground
    truth, with label flips, offset noise and spurious heatmap peaks."""
    rng = np.random.default_rng(seed)
    t = panoptic_targets(panoptic, SYNTH_CATEGORIES.thing_ids)
    sem = np.where(t.semantic == 255, 0, t.semantic)
    flip = rng.random(sem.shape) < label_noise
    sem[flip] = rng.integers(0, len(SYNTH_CATEGORIES), int(flip.sum()))
    offsets = t.offsets + rng.normal(0, offset_noise, t.offsets.shape).astype(np.float32) * (t.offset_weight > 0)
    center = t.center * rng.uniform(0.6, 1.0)
    h, w = sem.shape
    for _ in range(extra_peaks):
        center[rng.integers(0, h), rng.integers(0, w)] = rng.uniform(0.11, 0.5)
    return sem, center.astype(np.float32), offsets.astype(np.float32)
