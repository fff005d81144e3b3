"""ONNX Runtime backend: CPU, and CUDA / TensorRT execution providers for Jetson.

``device``: "cpu", "cuda" or "tensorrt" (optionally "cuda:1" for a device id). A requested
GPU provider that this onnxruntime build lacks falls back to CPU with a warning; ``info``
reports the providers the session actually uses (``session.get_providers()``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeps.bundle import Manifest
from edgeps.errors import ConfigError, FormatError, brief
from edgeps.runtimes.base import Runtime

log = logging.getLogger("edgeps.runtimes.onnxruntime")

DEVICES = ("cpu", "cuda", "tensorrt")


def provider_config(
    device: str, manifest: Manifest, bundle_dir: Path, available: list[str], options: dict[str, Any] | None = None
) -> tuple[list[Any], list[str]]:
    """(providers with options for InferenceSession, warnings) for a device string.

    TensorRT gets FP16/INT8 from the bundle's precision, an engine cache beside the model
    (building an engine takes minutes on a Jetson; the cache makes it once), and the device id.
    """
    options = dict(options or {})
    kind, _, index = device.partition(":")
    if kind not in DEVICES:
        raise ConfigError(f"device: onnxruntime takes one of {', '.join(DEVICES)} (optionally ':<id>'), got {device!r}")
    device_id = int(index) if index.isdigit() else 0
    warnings: list[str] = []
    providers: list[Any] = []
    if kind == "tensorrt":
        trt = {
            "device_id": device_id,
            "trt_fp16_enable": manifest.precision in ("fp16", "int8"),
            "trt_int8_enable": manifest.precision == "int8",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(options.pop("trt_engine_cache_path", bundle_dir / "trt_cache")),
            "trt_timing_cache_enable": True,
        }
        trt.update(options.pop("tensorrt_options", {}))
        if "TensorrtExecutionProvider" in available:
            providers.append(("TensorrtExecutionProvider", trt))
        else:
            warnings.append("TensorrtExecutionProvider is not in this onnxruntime build")
    if kind in ("tensorrt", "cuda"):
        cuda = {"device_id": device_id, **options.pop("cuda_options", {})}
        if "CUDAExecutionProvider" in available:
            providers.append(("CUDAExecutionProvider", cuda))
        else:
            warnings.append("CUDAExecutionProvider is not in this onnxruntime build")
    if options:
        raise ConfigError(f"onnxruntime: unknown options {sorted(options)}")
    providers.append("CPUExecutionProvider")
    return providers, warnings


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def __init__(
        self, bundle_dir: Path, manifest: Manifest, *, device: str = "cpu", threads: int | None = None, **options: Any
    ):
        super().__init__(bundle_dir, manifest, device=device, threads=threads, **options)
        options = dict(options)
        # Memory patterns pre-plan one block for all activations: more peak memory for no speed
        # gain (docs/measurements.md), and an edge device shares a few GB with everything else.
        # ``mem_pattern=True`` turns it back on.
        mem_pattern = bool(options.pop("mem_pattern", False))
        providers, warnings = provider_config(device, manifest, bundle_dir, ort.get_available_providers(), options)
        for w in warnings:
            log.warning("%s: falling back to CPU for device '%s'", w, device)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads or os.cpu_count() or 1
        so.inter_op_num_threads = 1
        so.enable_mem_pattern = mem_pattern
        path = bundle_dir / manifest.model_file
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for a bad file
            raise FormatError(f"{path}: ONNX Runtime cannot load this model ({brief(exc)})") from None
        self._input = self.session.get_inputs()[0].name
        self._names = [o.name for o in self.session.get_outputs()]
        self.info.update(
            {
                "device": "gpu" if self.session.get_providers()[0] != "CPUExecutionProvider" else "cpu",
                "providers": self.session.get_providers(),
                "requested_providers": [p if isinstance(p, str) else p[0] for p in providers],
                "threads": so.intra_op_num_threads,
                "versions": {"onnxruntime": ort.__version__},
            }
        )

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self._outputs_by_head(self.session.run(self._names, {self._input: batch}))


BACKEND = OnnxRuntime
