"""Content digests of files (checkpoints, weights): hashlib only, so a runtime-only install has it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeps.errors import DataNotFoundError

_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes as 64 lowercase hex digits, read in 1 MiB blocks.

    Raises:
        DataNotFoundError: ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"file not found: {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["file_sha256"]
