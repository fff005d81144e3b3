"""Parsers for command-line values shared by several ``edgeps`` commands."""

from __future__ import annotations

from edgeps.errors import ConfigError


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` -> (H, W); both sides >= 16."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size: expected HxW such as 512x1024, got {text!r}") from None
    if h < 16 or w < 16:
        raise ConfigError(f"--size: each side must be >= 16, got {text!r}")
    return h, w


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated CLI lists)."""
    return [part.strip() for part in text.split(",") if part.strip()]


__all__ = ["parse_size", "split_list"]
