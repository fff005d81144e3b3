"""Checkpoints: weights + config + categories in one file, loadable with ``weights_only=True``.

Written atomically (temporary file, then rename) so a killed run never leaves a truncated
checkpoint that looks valid.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from edgeps.atomic import atomic_path
from edgeps.errors import DataNotFoundError, FormatError, brief

FORMAT = "edgeps-checkpoint/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise FormatError(
            f"{path}: not a readable edgeps checkpoint (expected the zip archive torch.save writes; the file is "
            "truncated or something else)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise FormatError(f"{path}: not a readable edgeps checkpoint ({brief(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FormatError(f"{path}: not an edgeps checkpoint (expected format '{FORMAT}')")
    for key in ("model", "config", "categories"):
        if key not in ckpt:
            raise FormatError(f"{path}: checkpoint has no '{key}' entry")
    return ckpt
