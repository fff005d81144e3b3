"""One runtime interface for every backend (installed as ``edgeps.runtimes``).

    rt = edgeps.runtimes.load(bundle_dir, backend=None, device="cpu", threads=None)
    batch = rt.preprocess(image)   # HxWx3 uint8 BGR -> model input
    heads = rt.infer(batch)        # semantic class map, semantic_prob, center, offset (numpy)
    result = rt.predict(image)     # PanopticResult at the image's size
    rt.info                        # backend, device/provider actually used, precision, versions

Backends are registered by name; a backend's package (onnxruntime, openvino, ...) is
imported only when that backend is asked for, so ``import edgeps.runtimes`` stays light.
Adding a backend is one new module plus one line in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgeps.bundle import read_manifest
from edgeps.errors import ConfigError
from edgeps.runtimes.base import Runtime

# backend name -> (module under edgeps.runtimes, bundle formats it runs, package it needs
# or a tuple of packages any one of which will do)
BACKENDS: dict[str, tuple[str, tuple[str, ...], str | tuple[str, ...]]] = {
    "onnxruntime": ("onnxruntime_backend", ("onnx",), "onnxruntime"),
    "openvino": ("openvino_backend", ("openvino",), "openvino"),
    "torch": ("torch_backend", ("torch",), "torch"),
    "tflite": ("tflite_backend", ("tflite",), ("ai_edge_litert", "tflite_runtime")),
}

# preference when backend=None, per bundle format
_DEFAULT_FOR_FORMAT = {"onnx": "onnxruntime", "torch": "torch", "openvino": "openvino", "tflite": "tflite"}


def available_backends() -> list[str]:
    """Backends whose package is importable here (checked without importing it)."""
    import importlib.util

    def importable(pkg: str | tuple[str, ...]) -> bool:
        return any(importlib.util.find_spec(p) is not None for p in ((pkg,) if isinstance(pkg, str) else pkg))

    return [name for name, (_, _, pkg) in BACKENDS.items() if importable(pkg)]


def load(
    bundle_dir: str | Path, backend: str | None = None, device: str = "cpu", threads: int | None = None, **options: Any
) -> Runtime:
    """Open a bundle with a backend; ``backend=None`` picks the one made for its format."""
    manifest = read_manifest(bundle_dir)
    name = backend or _DEFAULT_FOR_FORMAT.get(manifest.format)
    if name not in BACKENDS:
        raise ConfigError(f"backend: unknown '{name}' (known: {', '.join(BACKENDS)})")
    module_name, formats, packages = BACKENDS[name]
    package = packages if isinstance(packages, str) else "' or '".join(packages)
    if manifest.format not in formats:
        raise ConfigError(f"backend '{name}' runs {', '.join(formats)} bundles; {bundle_dir} is a {manifest.format} bundle")
    try:
        module = importlib.import_module(f"edgeps.runtimes.{module_name}")
    except ImportError as exc:
        raise ConfigError(f"backend '{name}' needs the '{package}' package: pip install 'edgeps[{_extra(name)}]' ({exc})") from None
    return module.BACKEND(Path(bundle_dir), manifest, device=device, threads=threads, **options)


def _extra(name: str) -> str:
    return {"onnxruntime": "ort", "torch": "train"}.get(name, name)


__all__ = ["BACKENDS", "Runtime", "available_backends", "load"]
