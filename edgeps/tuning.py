"""Choose post-processing settings on held-out data: heads computed once, settings scored in a grid.

The network runs once per image; each candidate :class:`~edgeps.postprocess.PostprocessSettings`
then only re-runs the post-processing and the PQ accumulation, so a grid of a dozen settings
costs about one evaluation. Choose on held-out training data (``synth:dev``, a split of your
own), never on the set you report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edgeps.metrics import PanopticAccumulator
from edgeps.postprocess import PostprocessSettings, panoptic_from_outputs
from edgeps.preprocess import Geometry
from edgeps.progress import progress

TIE_POINTS = 0.1  # PQ points: settings closer than this count as tied, broken toward the base


@dataclass
class CachedImage:
    """One held-out image: the model's heads (batch of one), its letterbox geometry, the GT map."""

    heads: dict[str, np.ndarray]
    geometry: Geometry
    panoptic: np.ndarray


@dataclass
class TuningRow:
    """One candidate's scores (PQ points, 0..100) on the cached images."""

    settings: PostprocessSettings
    pq: float
    pq_things: float
    pq_stuff: float
    per_class: dict[str, float]  # thing class name -> PQ points


def settings_grid(
    base: PostprocessSettings,
    *,
    thresholds: Sequence[float] = (),
    nms_kernels: Sequence[int] = (),
    top_ks: Sequence[int | None] = (),
    stuff_areas: Sequence[int] = (),
    thing_areas: Sequence[int] = (),
) -> list[PostprocessSettings]:
    """Every combination of the given values; an empty list keeps ``base``'s value. ``base``
    itself is always the first entry."""
    axes = {
        "threshold": list(thresholds) or [base.threshold],
        "nms_kernel": list(nms_kernels) or [base.nms_kernel],
        "top_k": list(top_ks) or [base.top_k],
        "stuff_area": list(stuff_areas) or [base.stuff_area],
        "thing_area": list(thing_areas) or [base.thing_area],
    }
    grid = [base]
    for values in itertools.product(*axes.values()):
        candidate = replace(base, **dict(zip(axes, values)))
        if candidate not in grid:
            grid.append(candidate)
    return grid


def score_settings(
    cached: Sequence[CachedImage],
    grid: Iterable[PostprocessSettings],
    categories: Any,
    *,
    show_progress: bool = True,
) -> list[TuningRow]:
    """PQ (All / Things / Stuff, per class) of each settings candidate on the cached images.

    Args:
        cached: heads + geometry + ground truth per image (see :func:`cache_heads`).
        grid: the candidates, e.g. from :func:`settings_grid`.
        categories: the maps' category set (train ids).
    Returns:
        One row per candidate, in the grid's order.
    """
    rows = []
    grid = list(grid)
    thing_ids = categories.thing_ids
    for settings in progress(grid, total=len(grid), desc="settings", enabled=show_progress):
        acc = PanopticAccumulator(categories)
        for item in cached:
            pred = panoptic_from_outputs(
                item.heads, thing_ids=thing_ids, settings=settings, geometry=item.geometry, compute_scores=False
            )
            acc.update(pred.panoptic, item.panoptic)
        r = acc.result()
        per_class = {m["name"]: 100 * m["pq"] for m in r["per_class"].values() if m["isthing"]}
        rows.append(
            TuningRow(settings, 100 * r["All"]["pq"], 100 * r["Things"]["pq"], 100 * r["Stuff"]["pq"], per_class)
        )
    return rows


def best_row(rows: Sequence[TuningRow], tie_points: float = TIE_POINTS) -> TuningRow:
    """The highest PQ; rows within ``tie_points`` of it count as tied and the earliest wins (the
    base settings come first, so a change must beat them by more than noise)."""
    top = max(r.pq for r in rows)
    return next(r for r in rows if r.pq >= top - tie_points)


def cache_heads(
    heads: Callable[[np.ndarray], dict[str, np.ndarray]],
    geometry: Callable[[tuple[int, int]], Geometry],
    dataset: Any,
    *,
    max_images: int | None = None,
    show_progress: bool = True,
) -> list[CachedImage]:
    """Run the network once per image of ``dataset`` (``[i]`` has ``image`` and ``panoptic``).

    Args:
        heads: frame (H, W, 3) uint8 BGR -> the model's heads (``semantic``, ``center``, ...).
        geometry: frame (H, W) -> its letterbox geometry in the model input.
    """
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    out = []
    for i in progress(range(n), total=n, desc="heads", enabled=show_progress):
        sample = dataset[i]
        out.append(CachedImage(heads(sample.image), geometry(sample.image.shape[:2]), np.asarray(sample.panoptic)))
    return out


__all__ = ["TIE_POINTS", "CachedImage", "TuningRow", "best_row", "cache_heads", "score_settings", "settings_grid"]
