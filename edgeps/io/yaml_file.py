"""The one way edgeps reads a YAML file: ``yaml.safe_load`` (never arbitrary objects), with
errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgeps.errors import DataNotFoundError, EdgepsError, FormatError


def read_yaml(path: str | Path, *, kind: str = "YAML file", error: type[EdgepsError] = FormatError) -> Any:
    """Parsed content of ``path``; a missing file is a DataNotFoundError ("<kind> not found"),
    unparsable text an ``error`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{kind} not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {str(exc)[:300]}") from None
