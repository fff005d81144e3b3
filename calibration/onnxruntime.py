"""ONNX Runtime adapter: a CalibrationDataReader over a calibration set."""

from __future__ import annotations

from onnxruntime.quantization import CalibrationDataReader

from edgeps.calibration.sets import CalibrationSet


class OrtCalibrationReader(CalibrationDataReader):
    def __init__(self, calib: CalibrationSet, input_name: str):
        self._batches = calib.batches
        self._input = input_name
        self._i = 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._batches):
            return None
        batch = self._batches[self._i]
        self._i += 1
        return {self._input: batch}

    def rewind(self) -> None:
        self._i = 0
