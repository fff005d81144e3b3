"""What machine a benchmark ran on: CPU model, cores, ISA flags, platform, package versions.

Figures from two machines are only comparable with this next to them (an int8 model is fast
with VNNI and slow without it), so every bench JSON carries it.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# ISA extensions that decide which kernels the runtimes can use.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "avx_vnni",
    "amx_int8",
    "neon",
    "asimd",
    "asimddp",
    "sve",
)

# distribution name -> label, for the runtime packages (looked up without importing them)
RUNTIME_PACKAGES = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime-gpu",
    "openvino": "openvino",
    "ai-edge-litert": "ai_edge_litert",
    "tflite-runtime": "tflite_runtime",
    "torch": "torch",
}


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(model name, the flags of :data:`ISA_FLAGS` this CPU has); ('', []) where unknown."""
    from edgeps.runtimes.cpu import cpu_flags

    model = ""
    try:
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("model name", "hardware", "cpu model"):
                model = value.strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    return model, sorted(f for f in ISA_FLAGS if f in flags)


def has_vnni() -> bool:
    """True when this CPU has VNNI (AVX512-VNNI or AVX-VNNI): full-range int8 is safe here."""
    return any(f in ("avx512_vnni", "avx_vnni") for f in _cpuinfo()[1])


def package_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of python, numpy, cv2 and the installed runtime packages (not imported here,
    so describing the machine never pulls torch into the process)."""
    out = {"python": platform.python_version()}
    for dist, label in (("numpy", "numpy"), *RUNTIME_PACKAGES.items()):
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        try:
            import cv2  # noqa: F811 - cheap and in every edgeps install
        except ImportError:
            cv2 = None
    if cv2 is not None:
        out["cv2"] = cv2.__version__
    out.update(extra or {})
    return out


def describe_device() -> dict[str, Any]:
    """The ``device`` section of a bench JSON (see :mod:`edgeps.apps.bench`)."""
    model, flags = _cpuinfo()
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "cpu_count": os.cpu_count() or 0,
        "isa_flags": flags,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
    }
