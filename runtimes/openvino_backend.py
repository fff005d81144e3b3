"""OpenVINO backend: CPU, and Intel GPU / NPU, or AUTO to let OpenVINO choose.

``device``: an OpenVINO device string ("CPU", "GPU", "GPU.1", "NPU", "AUTO"; lowercase is
accepted). A device that ``core.available_devices`` lacks falls back to CPU with a warning;
``info["device"]`` reports the devices the compiled model actually runs on.

Options: ``hint`` = "latency" (default: one frame at a time, what a camera loop needs) or
"throughput"; ``inference_precision`` = "f32", "bf16" or "f16". On CPU and AUTO the default is
f32, because the CPU plugin otherwise picks bf16 on CPUs that have it (AVX512-BF16, AMX) and
fp32 bundles then miss the 1e-3 parity bar by orders of magnitude; GPU/NPU keep their
plugin's default (f16).

A ``bf16`` bundle (f32 weights, see :mod:`edgeps.export.openvino_format`) runs with
``INFERENCE_PRECISION_HINT`` bf16 on a CPU that has native bf16 (AVX512-BF16 / AMX, detected by
:func:`edgeps.runtimes.cpu.runs_natively`); on a CPU without it OpenVINO would emulate bf16,
slower than f32, so the bundle runs f32 and a warning says so (``info["inference_precision"]``
reports what runs). An explicit ``inference_precision`` option always wins.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from edgeps.bundle import Manifest
from edgeps.errors import ConfigError, DataNotFoundError, FormatError, brief
from edgeps.formats import PRECISION_TABLE
from edgeps.runtimes import cpu
from edgeps.runtimes.base import Runtime

log = logging.getLogger("edgeps.runtimes.openvino")

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
PRECISIONS = ("f32", "bf16", "f16")
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO")  # they pick among real devices themselves


def resolve_device(device: str, available: list[str]) -> tuple[str, str | None]:
    """(device to compile for, warning or None): upper-cased; CPU when ``device`` is missing."""
    name = device.strip().upper()
    if not name:
        raise ConfigError("device: empty OpenVINO device string (CPU, GPU, NPU, AUTO)")
    if name.split(":")[0] in VIRTUAL_DEVICES:
        return name, None
    if name in available or any(a.split(".")[0] == name for a in available):
        return name, None
    return "CPU", f"OpenVINO device '{name}' is not available here (available: {', '.join(available) or 'none'})"


def bundle_precision_hint(precision: str) -> tuple[str, str | None]:
    """(CPU inference precision for a bundle of ``precision``, warning or None).

    ``bf16`` -> "bf16" where this CPU runs bf16 natively, else "f32" with a warning; every other
    bundle precision -> "f32" (fp16 weights are decompressed, int8 keeps its FakeQuantize ops)."""
    if precision != "bf16":
        return "f32", None
    if cpu.runs_natively("bf16"):
        return "bf16", None
    return "f32", (
        "this CPU has no native bf16 (none of the flags "
        f"{', '.join(PRECISION_TABLE['bf16'].native_cpu_flags)}): the bf16 bundle runs in f32 "
        "(emulated bf16 would be slower than f32)"
    )


def compile_config(
    device: str, threads: int | None, options: dict[str, Any], default_precision: str = "f32"
) -> dict[str, Any]:
    """The compile_model config for ``device`` from threads and the runtime options.

    ``default_precision``: the CPU/AUTO inference precision when the options name none (from
    :func:`bundle_precision_hint`); GPU/NPU keep their plugin's default unless an option names one."""
    options = dict(options)
    hint = str(options.pop("hint", "latency")).lower()
    if hint not in HINTS:
        raise ConfigError(f"hint: openvino takes one of {', '.join(HINTS)}, got {hint!r}")
    precision = options.pop("inference_precision", None)
    if precision is not None and precision not in PRECISIONS:
        raise ConfigError(f"inference_precision: openvino takes one of {', '.join(PRECISIONS)}, got {precision!r}")
    if options:
        raise ConfigError(f"openvino: unknown options {sorted(options)} (known: hint, inference_precision)")
    kind = device.split(".")[0].split(":")[0]
    config: dict[str, Any] = {"PERFORMANCE_HINT": HINTS[hint]}
    if kind in ("CPU", "AUTO"):
        config["INFERENCE_NUM_THREADS"] = threads or os.cpu_count() or 1
        config["INFERENCE_PRECISION_HINT"] = precision or default_precision
    elif precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def _static_shape(manifest: Manifest) -> list[int]:
    """The input shape to compile: the manifest's size and batch (-1 for a dynamic batch)."""
    h, w = manifest.input.size
    n = -1 if manifest.batch == "dynamic" else int(manifest.batch)
    return [n, 3, h, w] if manifest.input.layout == "NCHW" else [n, h, w, 3]


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(
        self, bundle_dir: Path, manifest: Manifest, *, device: str = "cpu", threads: int | None = None, **options: Any
    ):
        super().__init__(bundle_dir, manifest, device=device, threads=threads, **options)
        core = ov.Core()
        target, warning = resolve_device(device, core.available_devices)
        if warning:
            log.warning("%s: falling back to CPU", warning)
        default_precision = "f32"
        if target.split(".")[0].split(":")[0] in ("CPU", "AUTO") and "inference_precision" not in options:
            default_precision, precision_warning = bundle_precision_hint(manifest.precision)
            if precision_warning:
                log.warning("%s: %s", bundle_dir, precision_warning)
        config = compile_config(target, threads, options, default_precision)
        path = bundle_dir / manifest.model_file
        weights = path.with_suffix(".bin")
        if path.suffix.lower() == ".xml" and not weights.is_file():
            raise DataNotFoundError(f"{path}: its weights file {weights.name} is missing from {bundle_dir}")
        try:
            model = core.read_model(str(path))
            if model.inputs[0].get_partial_shape().is_dynamic:
                model.reshape({model.inputs[0]: _static_shape(manifest)})
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for a bad file
            raise FormatError(
                f"{path} (+ {weights.name}): OpenVINO cannot read this model, the .xml or the .bin is corrupt "
                f"({brief(exc)})"
            ) from None
        if len(model.outputs) < len(manifest.outputs):
            raise FormatError(
                f"{path}: the model has {len(model.outputs)} outputs, the manifest expects {len(manifest.outputs)}"
            )
        self.compiled = core.compile_model(model, target, config)
        self.request = self.compiled.create_infer_request()
        self._n_outputs = len(self.compiled.outputs)
        self.info.update(
            {
                "device": ",".join(self.compiled.get_property("EXECUTION_DEVICES")),
                "requested_ov_device": target,
                "hint": config["PERFORMANCE_HINT"],
                "threads": config.get("INFERENCE_NUM_THREADS"),
                "inference_precision": config.get("INFERENCE_PRECISION_HINT", "device default"),
                "versions": {"openvino": ov.get_version()},
            }
        )

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.request.infer({0: batch})
        # copies: the request's output buffers are overwritten by the next frame
        return self._outputs_by_head([self.request.get_output_tensor(i).data.copy() for i in range(self._n_outputs)])


BACKEND = OpenVinoRuntime
