"""LiteRT adapter: a calibration set as the representative-data dict ai_edge_quantizer wants."""

from __future__ import annotations

import numpy as np

from edgeps.calibration.sets import CalibrationSet

# litert_torch names the one signature of a converted module this way.
SIGNATURE = "serving_default"


def representative_data(
    calib: CalibrationSet, input_name: str, signature: str = SIGNATURE
) -> dict[str, list[dict[str, np.ndarray]]]:
    """``{signature: [{input_name: batch}, ...]}``: ai_edge_quantizer calibrates per signature.

    The batches already went through inference preprocessing with the export's InputSpec, so
    they have the layout the float model takes.
    """
    return {signature: [{input_name: batch} for batch in calib.batches]}
