"""Score any predictor (torch model, exported bundle) on a dataset with the COCO-rules PQ.

A predictor is a callable ``image_bgr -> panoptic map`` at the image's size, in the
dataset's train-id encoding; the torch model and every runtime backend provide one, so
their figures are comparable line for line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeps.metrics import PanopticAccumulator
from edgeps.progress import progress

Predictor = Callable[[np.ndarray], np.ndarray]


def evaluate_predictor(
    predict: Predictor, dataset: Any, *, max_images: int | None = None, show_progress: bool = True, desc: str = "eval"
) -> dict[str, Any]:
    """PQ/SQ/RQ (All/Things/Stuff, per class) and mIoU of ``predict`` on ``dataset``.

    ``dataset`` has ``categories`` (train ids), ``len()`` and ``[i] -> sample`` with ``image``
    and ``panoptic``. The result also carries ``images`` and ``ms_per_image`` (predictor only).
    """
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    acc = PanopticAccumulator(dataset.categories)
    spent = 0.0
    for i in progress(range(n), total=n, desc=desc, enabled=show_progress):
        sample = dataset[i]
        t0 = time.perf_counter()
        pred = predict(sample.image)
        spent += time.perf_counter() - t0
        acc.update(pred, sample.panoptic)
    result = acc.result()
    result["images"] = n
    result["ms_per_image"] = 1e3 * spent / max(n, 1)
    return result
