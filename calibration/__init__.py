"""Calibration sets for INT8 quantization (installed as ``edgeps.calibration``).

A set comes from a data spec (``synth:train:64``, a COCO-panoptic folder), an image folder
or glob, or a video (N frames spread over it). Frames go through the very preprocessing
inference uses; adapters turn the batches into what each quantizer wants.
"""

from edgeps.calibration.sets import CalibrationSet, load_calibration_set

__all__ = ["CalibrationSet", "load_calibration_set"]
