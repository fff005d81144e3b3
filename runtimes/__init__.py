"""One runtime interface for every backend (installed as ``edgeps.runtimes``).

    rt = edgeps.runtimes.load(bundle_dir, backend=None, device="cpu", threads=None)
    batch = rt.preprocess(image)   # HxWx3 uint8 BGR -> model input
    heads = rt.infer(batch)        # semantic class map, semantic_prob, center, offset (numpy)
    result = rt.predict(image)     # PanopticResult at the image's size
    rt.info                        # backend, device/provider actually used, precision, versions

Backends are registered by name; a backend's package (onnxruntime, openvino, ...) is
imported only when that backend is asked for, so ``import edgeps.runtimes`` stays light.
Backends are the rows of :data:`edgeps.formats.BACKENDS`; a bundle opens with its format's
default backend (``FORMATS[format].backend``) unless one is named.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgeps.bundle import read_manifest
from edgeps.errors import ConfigError
from edgeps.formats import BACKENDS, FORMATS
from edgeps.runtimes.base import Runtime


def available_backends() -> list[str]:
    """Backends whose package is importable here (checked without importing it)."""
    import importlib.util

    return [b.name for b in BACKENDS.values() if any(importlib.util.find_spec(p) is not None for p in b.packages)]


def load(
    bundle_dir: str | Path, backend: str | None = None, device: str = "cpu", threads: int | None = None, **options: Any
) -> Runtime:
    """Open a bundle with a backend; ``backend=None`` picks the one made for its format."""
    manifest = read_manifest(bundle_dir)
    name = backend or FORMATS[manifest.format].backend
    if name not in BACKENDS:
        raise ConfigError(f"backend: unknown '{name}' (known: {', '.join(BACKENDS)})")
    b = BACKENDS[name]
    if manifest.format not in b.formats:
        raise ConfigError(
            f"backend '{name}' runs {', '.join(b.formats)} bundles; {bundle_dir} is a {manifest.format} bundle"
        )
    try:
        module = importlib.import_module(f"edgeps.runtimes.{b.runtime_module}")
    except ImportError as exc:
        package = "' or '".join(b.packages)
        raise ConfigError(
            f"backend '{name}' needs the '{package}' package: pip install 'edgeps[{b.extra}]' ({exc})"
        ) from None
    return module.BACKEND(Path(bundle_dir), manifest, device=device, threads=threads, **options)


__all__ = ["BACKENDS", "Runtime", "available_backends", "load"]
