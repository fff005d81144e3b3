"""Checkpoint -> the bundle matrix a bench measures, exported once into a cache and reused.

Bundles have a fixed input size, so ``edgeps bench --checkpoint`` exports every requested
(format, precision, size) first. Layout: ``<cache>/<checkpoint sha256[:12]>/<H>x<W>/<fmt>-<prec>/``
(default cache ``~/.cache/edgeps/bench``). A bundle is reused when its manifest records the same
checkpoint sha256, the same input size and a parity report (a bundle whose export was cut short
has none). Only the export imports torch; the measuring happens elsewhere.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeps.errors import ConfigError, DataNotFoundError, EdgepsError
from edgeps.hashing import file_sha256

log = logging.getLogger("edgeps.bench")

DEFAULT_CACHE = Path("~/.cache/edgeps/bench")


@dataclass
class MatrixEntry:
    """One (format, precision, size) of the matrix and whether it came from the cache."""

    format: str
    precision: str
    size: tuple[int, int]
    path: Path
    cached: bool
    error: str | None = None


def cache_dir(cache: str | Path | None, sha: str, size: tuple[int, int]) -> Path:
    """``<cache>/<sha[:12]>/<H>x<W>``."""
    root = Path(cache).expanduser() if cache else DEFAULT_CACHE.expanduser()
    return root / sha[:12] / f"{size[0]}x{size[1]}"


def reusable(bundle: Path, sha: str, size: tuple[int, int]) -> bool:
    """True when ``bundle`` was exported from this checkpoint at this size and passed parity."""
    from edgeps.bundle import read_manifest

    if not bundle.is_dir():
        return False
    try:
        m = read_manifest(bundle)
    except EdgepsError:
        return False
    return (
        m.source_checkpoint_sha256 == sha
        and tuple(m.input.size) == tuple(size)
        and bool(m.parity)
        and (bundle / m.model_file).is_file()
    )


def _default_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_matrix(
    checkpoint: str | Path,
    formats: list[str],
    precisions: list[str],
    sizes: list[tuple[int, int]],
    cache: str | Path | None = None,
    *,
    progress: Callable[[str], None] = _default_progress,
    exporter: Callable[..., object] | None = None,
    export_options: dict | None = None,
) -> list[MatrixEntry]:
    """Export what the cache lacks, return every entry (cached or new, or failed with
    ``error`` set: one rejected export does not end the whole bench).

    ``exporter`` defaults to :func:`edgeps.export.pipeline.export_bundles` (imports torch).
    """
    from edgeps.export import FORMATS

    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"--formats: unknown format '{f}' (known: {', '.join(FORMATS)})")
    if not sizes:
        raise ConfigError("--sizes: at least one HxW is needed with --checkpoint")
    if not Path(checkpoint).is_file():
        raise DataNotFoundError(f"--checkpoint: file not found: {checkpoint}")
    sha = file_sha256(checkpoint)
    entries: list[MatrixEntry] = []
    for size in sizes:
        folder = cache_dir(cache, sha, size)
        for f in formats:
            for p in precisions:
                if p not in FORMATS[f].precisions:
                    progress(f"skip {f}-{p}: {f} supports {', '.join(FORMATS[f].precisions)}")
                    continue
                path = folder / f"{f}-{p}"
                entries.append(MatrixEntry(f, p, size, path, reusable(path, sha, size)))
    if not entries:
        raise ConfigError(f"nothing to bench: no format in {formats} supports precisions {precisions}")
    missing = [e for e in entries if not e.cached]
    for e in entries:
        if e.cached:
            progress(f"[cache] {e.format}-{e.precision} {e.size[0]}x{e.size[1]}: reusing {e.path}")
    if missing and exporter is None:
        from edgeps.export.pipeline import export_bundles as exporter
    for k, e in enumerate(missing, 1):
        progress(f"[export {k}/{len(missing)}] {e.format}-{e.precision} {e.size[0]}x{e.size[1]} -> {e.path}")
        try:
            exporter(checkpoint, [e.format], [e.precision], e.path.parent, size=e.size, **(export_options or {}))
        except EdgepsError as exc:
            e.error = str(exc)
            progress(f"[export {k}/{len(missing)}] {e.format}-{e.precision} {e.size[0]}x{e.size[1]} failed: {exc}")
            continue
        if not reusable(e.path, sha, e.size):
            e.error = f"export wrote no usable bundle at {e.path}"
    return entries
