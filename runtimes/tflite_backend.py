"""TFLite (LiteRT) backend: the CPU interpreter with XNNPACK, for ARM boards and phones.

The interpreter comes from ``ai_edge_litert`` (the current package) or, when that is
missing, ``tflite_runtime`` (the old name, what many device images ship); the API is the same.
``threads`` goes to the interpreter (XNNPACK's thread pool). Tensors are allocated once.
Measured: tflite_runtime 2.14's default XNNPACK leaves int8 graphs to the builtin kernels
(about 15x slower than ai_edge_litert 2.3 at 256x512); fp32 runs at the same speed in both.

int8 bundles take an int8 input, quantized here with the input tensor's own scale and zero
point; a head that comes out as an int8/uint8/int16 tensor is dequantized with its own (the
bundles edgeps exports keep the heads float; other tools' may not); the int32 class map is
returned as is. Outputs are taken by the manifest's indices (the flatbuffer's output order
need not be the heads' order).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.bundle import Manifest
from edgeps.errors import ConfigError, FormatError, brief
from edgeps.runtimes.base import Runtime

try:
    from ai_edge_litert.interpreter import Interpreter

    PACKAGE, DISTRIBUTION = "ai_edge_litert", "ai-edge-litert"
except ImportError:  # older images: the same interpreter under its previous name
    from tflite_runtime.interpreter import Interpreter

    PACKAGE, DISTRIBUTION = "tflite_runtime", "tflite-runtime"

_INTEGER_IO = (np.int8, np.uint8, np.int16)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def quantize_input(batch: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """float batch -> the input tensor's dtype: ``round(x / scale) + zero_point``, clipped."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return batch
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = batch * np.float32(1.0 / scale)
    np.rint(q, out=q)
    q += np.float32(zero_point)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def dequantize_output(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """An int8/uint8/int16 head with a scale -> float32; float and int32 outputs as they are."""
    scale, zero_point = detail["quantization"]
    if value.dtype not in _INTEGER_IO or not scale:
        return value
    return (value.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


class TfliteRuntime(Runtime):
    name = "tflite"

    def __init__(
        self, bundle_dir: Path, manifest: Manifest, *, device: str = "cpu", threads: int | None = None, **options: Any
    ):
        super().__init__(bundle_dir, manifest, device=device, threads=threads, **options)
        if options:
            raise ConfigError(f"tflite: unknown options {sorted(options)}")
        if device != "cpu":
            raise ConfigError(f"device: the tflite backend runs on cpu (XNNPACK), got {device!r}")
        path = bundle_dir / manifest.model_file
        n = threads or os.cpu_count() or 1
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=n)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a bad file
            raise FormatError(f"{path}: {PACKAGE} cannot load this model ({brief(exc)})") from None
        self._input = self.interpreter.get_input_details()[0]
        self._outputs = self.interpreter.get_output_details()
        h, w = manifest.input.size
        if manifest.batch == "dynamic":
            raise FormatError(f"{bundle_dir}: input.batch 'dynamic': a TFLite model has a fixed batch")
        batch = int(manifest.batch)
        expected = [batch, 3, h, w] if manifest.input.layout == "NCHW" else [batch, h, w, 3]
        shape = [int(v) for v in self._input["shape"]]
        if shape != expected:
            raise FormatError(f"{path}: model input is {shape}, the manifest says {expected} ({manifest.input.layout})")
        self.info.update(
            {
                "device": "cpu",
                "interpreter": PACKAGE,
                "delegate": "XNNPACK",
                "threads": n,
                "io_dtype": np.dtype(self._input["dtype"]).name,
                "versions": {PACKAGE: _version()},
            }
        )

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.interpreter.set_tensor(self._input["index"], quantize_input(batch, self._input))
        self.interpreter.invoke()
        values = [dequantize_output(self.interpreter.get_tensor(d["index"]), d) for d in self._outputs]
        return self._outputs_by_head(values)


BACKEND = TfliteRuntime
