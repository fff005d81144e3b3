"""Typed errors for edgeps.

Each error subclasses the built-in exception it refines, so callers that catch ``ValueError``
or ``FileNotFoundError`` keep working, while the CLI can tell an edgeps error (one clear line)
from a bug (a traceback).
"""

from __future__ import annotations


class EdgepsError(Exception):
    """Base of every error edgeps raises on purpose."""


def brief(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of a foreign exception on one line, cut to ``limit`` characters, for
    wrapping it in an edgeps error (the CLI prints errors as one line)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class InputShapeError(EdgepsError, ValueError):
    """An array argument has the wrong shape, dtype or values."""


class CategoryError(EdgepsError, ValueError):
    """A category set is malformed (duplicate ids, unknown thing ids, bad colours)."""


class FormatError(EdgepsError, ValueError):
    """A data file (PNG, JSON, YAML) does not follow its documented format."""


class ConfigError(EdgepsError, ValueError):
    """A configuration value or file is invalid; the message names the field."""


class DataNotFoundError(EdgepsError, FileNotFoundError):
    """A file or folder edgeps was asked to read does not exist."""


class ExportError(EdgepsError, RuntimeError):
    """An export failed (converter error, or the parity gate rejected the result)."""


class SourceError(EdgepsError, OSError):
    """A frame source (camera, video, stream) cannot be opened or has died."""
