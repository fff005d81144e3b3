"""Checking values read from files or given as parameters: one helper for training configs,
model configs, bundle manifests, post-processing settings, ROS parameters and bench JSON.

Every error names where the value came from (``where``: a file and field path such as
``edgeps.yaml.input.size`` or ``parameter 'qos'``) and what was expected, and is raised as the
caller's error class (:class:`~edgeps.errors.ConfigError` for settings,
:class:`~edgeps.errors.FormatError` for files edgeps wrote).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from edgeps.errors import ConfigError, EdgepsError

Kind = type | tuple[type, ...]

_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "list",
    "tuple": "list",
    "dict": "mapping",
    "NoneType": "null",
}


def type_name(kind: Kind) -> str:
    """``(int, type(None))`` -> ``"integer or null"``: the words errors use for types."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = dict.fromkeys(_NAMES.get(k.__name__, k.__name__) for k in kinds)  # ordered, unique
    return " or ".join(names)


def check_value(value: Any, kind: Kind, where: str, *, error: type[EdgepsError] = ConfigError) -> Any:
    """``value`` if it is of ``kind``, else ``error`` naming ``where``.

    A bool is never accepted as a number (YAML ``true`` for a count is a mistake), and an int
    is accepted where a float is expected and returned as a float; floats must be finite.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if object in kinds:  # any value: the caller checks it
        return value
    if isinstance(value, bool):
        ok = bool in kinds
    elif isinstance(value, int) and float in kinds and int not in kinds:
        return float(value)
    else:
        ok = isinstance(value, kinds)
    if not ok:
        got = f"{type(value).__name__} {value!r}"
        raise error(f"{where}: expected {type_name(kind)}, got {got[:200]}")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{where}: expected a finite number, got {value!r}")
    return value


def check_mapping(
    raw: Any,
    kinds: Mapping[str, Kind],
    where: str,
    *,
    required: Collection[str] = (),
    allow_unknown: bool = False,
    error: type[EdgepsError] = ConfigError,
) -> dict[str, Any]:
    """Check a mapping's keys and value types; returns the checked values (ints given for float
    fields become floats).

    Args:
        raw: the mapping to check.
        kinds: key -> accepted type(s); ``object`` accepts any value (checked by the caller).
        where: where the mapping is (``config.yaml: schedule``); fields are ``where.key``.
        required: keys that must be present.
        allow_unknown: keep keys outside ``kinds`` unchecked instead of refusing them.
        error: the exception class raised.

    Raises:
        ``error``: not a mapping, a missing or unknown key (with the closest known one), or a
        value of the wrong type.
    """
    if not isinstance(raw, Mapping):
        raise error(f"{where}: expected a mapping, got {type(raw).__name__}")
    for key in required:
        if key not in raw:
            raise error(f"{where}.{key}: missing (a required key)")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in kinds:
            if allow_unknown:
                out[key] = value
                continue
            close = difflib.get_close_matches(str(key), list(kinds), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(kinds)}"
            raise error(f"{where}: unknown key '{key}' ({hint})")
        out[key] = check_value(value, kinds[key], f"{where}.{key}", error=error)
    return out


def check_choice(value: Any, choices: Collection[Any], where: str, *, error: type[EdgepsError] = ConfigError) -> Any:
    """``value`` if it is one of ``choices``, else ``error`` listing them."""
    if value not in choices:
        raise error(f"{where}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    return value


__all__ = ["Kind", "check_choice", "check_mapping", "check_value", "type_name"]


def check_batch_value(value: Any, where: str, *, error: type[EdgepsError] = ConfigError) -> int | str:
    """A model batch: a positive integer or ``"dynamic"``; anything else raises ``error`` naming
    ``where``."""
    if value == "dynamic" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise error(f"{where}: expected a positive integer or 'dynamic', got {value!r}")
