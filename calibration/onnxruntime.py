"""ONNX Runtime adapter: a CalibrationDataReader over a calibration set."""

from __future__ import annotations

from onnxruntime.quantization import CalibrationDataReader

from edgeps.calibration.sets import CalibrationSet

MAX_IMAGES_PER_PASS = 4


def calibration_stride(n_images: int, most: int = MAX_IMAGES_PER_PASS) -> int:
    """Images per calibration pass: the largest divisor of ``n_images`` up to ``most``.

    ONNX Runtime keeps every intermediate tensor of every image of a pass in memory before it
    histograms them: for the default model, 32 images in one pass peaked at 9.1 GB at 256x512
    and were killed at 24 GB at 512x1024. Passes of a few images are merged into the same
    histograms (ORT's ``CalibStridedMinMax``, which needs the stride to divide the count)."""
    return max(d for d in range(1, max(1, most) + 1) if n_images % d == 0)


class OrtCalibrationReader(CalibrationDataReader):
    """The calibration batches in order; ``set_range`` limits a pass to some of them (ORT's
    strided calibration calls it once per pass)."""

    def __init__(self, calib: CalibrationSet, input_name: str):
        self._batches = calib.batches
        self._input = input_name
        self._start, self._end = 0, len(self._batches)
        self._i = 0

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._end = max(0, start_index), min(end_index, len(self._batches))
        self._i = self._start

    def get_next(self) -> dict | None:
        if self._i >= self._end:
            return None
        batch = self._batches[self._i]
        self._i += 1
        return {self._input: batch}

    def rewind(self) -> None:
        self._i = self._start
