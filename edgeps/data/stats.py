"""Properties of a dataset that synth:val promises: thing pixels, occlusion, instances per image."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import ConfigError


def dataset_stats(dataset: Any, n: int | None = None) -> dict[str, float]:
    """Mean thing-pixel fraction, fraction of images with occlusion, mean instances per image.

    Occlusion is exact for synthetic scenes (two visible instances whose drawn shapes
    overlap); for other data, where hidden shapes are unknown, it is approximated by two
    instances touching (4-neighbour pixels).
    """
    count = len(dataset) if n is None else min(n, len(dataset))
    if count < 1:
        raise ConfigError("the dataset has no images to measure")
    things = np.asarray(dataset.categories.thing_ids, np.int64)
    fractions, occluded, instances, exact = [], [], [], True
    for i in range(count):
        s = dataset[i]
        pan = s.panoptic.astype(np.int64)
        cls = np.where(pan == VOID_LABEL, -1, pan // LABEL_DIVISOR)
        is_thing = np.isin(cls, things)
        inst = np.where(is_thing & (pan % LABEL_DIVISOR > 0), pan, -1)
        fractions.append(float(is_thing.mean()))
        instances.append(len(np.unique(inst[inst >= 0])))
        if s.occlusion is None:
            exact = False
            occluded.append(_touching(inst))
        else:
            occluded.append(bool(s.occlusion))
    return {
        "images": count,
        "thing_fraction": float(np.mean(fractions)),
        "occlusion_fraction": float(np.mean(occluded)),
        "instances_per_image": float(np.mean(instances)),
        "occlusion_exact": exact,
    }


def _touching(inst: np.ndarray) -> bool:
    """Do two different instances share a 4-neighbour edge?"""
    a, b = inst[:, 1:], inst[:, :-1]
    c, d = inst[1:, :], inst[:-1, :]
    return bool(np.any((a >= 0) & (b >= 0) & (a != b)) or np.any((c >= 0) & (d >= 0) & (c != d)))


__all__ = ["dataset_stats"]
