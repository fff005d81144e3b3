"""Score any predictor (torch model, exported bundle) on a dataset: the full metric report.

A predictor is a callable ``image_bgr -> prediction`` at the image's size, in the dataset's
train-id encoding; the torch model and every runtime backend provide one, so their figures are
comparable line for line. The prediction is either the (H, W) panoptic map alone, or an object
that also carries segment scores (needed for mask AP):

- a :class:`~edgeps.postprocess.PanopticPrediction` (``panoptic`` and ``scores``), or
- a :class:`~edgeps.result.PanopticResult` (``panoptic`` and ``segments`` with ``score``), what
  a runtime's ``predict`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgeps.errors import InputShapeError
from edgeps.metrics import PanopticAccumulator
from edgeps.progress import progress

Predictor = Callable[[np.ndarray], Any]


def map_and_scores(prediction: Any) -> tuple[np.ndarray, dict[int, float] | None]:
    """A predictor's output -> (panoptic map, panoptic id -> score, or None without scores).

    Args:
        prediction: an (H, W) integer array; or an object with ``panoptic`` and either a
            ``scores`` mapping or ``segments`` whose ``id``/``score`` give the scores (segments
            with a None score are left out).
    Returns:
        The map as an array, and the scores (None for a bare map).
    Raises:
        InputShapeError when the object has no ``panoptic``.
    """
    if isinstance(prediction, np.ndarray):
        return prediction, None
    pan = getattr(prediction, "panoptic", None)
    if pan is None:
        raise InputShapeError(
            f"prediction: expected a panoptic map or an object with 'panoptic', got {type(prediction).__name__}"
        )
    scores = getattr(prediction, "scores", None)
    if isinstance(scores, Mapping):
        return np.asarray(pan), {int(k): float(v) for k, v in scores.items()}
    segments = getattr(prediction, "segments", None)
    if segments is None:
        return np.asarray(pan), None
    return np.asarray(pan), {int(s.id): float(s.score) for s in segments if s.score is not None}


def evaluate_predictor(
    predict: Predictor,
    dataset: Any,
    *,
    max_images: int | None = None,
    show_progress: bool = True,
    desc: str = "eval",
    mask_ap: bool = False,
) -> dict[str, Any]:
    """The report (:data:`edgeps.metrics.report.REPORT_KEYS`) of ``predict`` on ``dataset``.

    Args:
        predict: image (H, W, 3) uint8 BGR -> prediction (see :func:`map_and_scores`).
        dataset: has ``categories`` (train ids), ``len()`` and ``[i] -> sample`` with ``image``
            and ``panoptic`` (GT thing segments with instance 0 are crowd).
        max_images: evaluate only the first N images.
        show_progress, desc: the progress bar.
        mask_ap: also compute mask AP (pycocotools); it is "n/a" with the reason when the
            predictions carry no scores.
    Returns:
        PQ/SQ/RQ (All/Things/Stuff, per class), mIoU, per-class IoU, pixel accuracy, ``mask_ap``
        and ``images``, plus ``ms_per_image`` (the predictor's time only, milliseconds).
    """
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    acc = PanopticAccumulator(dataset.categories, mask_ap=mask_ap)
    spent = 0.0
    for i in progress(range(n), total=n, desc=desc, enabled=show_progress):
        sample = dataset[i]
        t0 = time.perf_counter()
        out = predict(sample.image)
        spent += time.perf_counter() - t0
        pred, scores = map_and_scores(out)
        acc.update(pred, sample.panoptic, pred_scores=scores)
    result = acc.result()
    result["ms_per_image"] = 1e3 * spent / max(n, 1)
    return result
