"""NNCF adapter: a calibration set as an ``nncf.Dataset`` for OpenVINO post-training INT8."""

from __future__ import annotations

import nncf
import numpy as np

from edgeps.calibration.sets import CalibrationSet


def _as_model_input(batch: np.ndarray) -> np.ndarray:
    """The batches already went through inference preprocessing: (1, 3, H, W) float32 as is."""
    return batch


def nncf_dataset(calib: CalibrationSet) -> nncf.Dataset:
    """Wrap the preprocessed batches; NNCF feeds each one to the model's single input."""
    return nncf.Dataset(calib.batches, _as_model_input)
