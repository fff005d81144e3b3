"""What the running CPU can do: its ISA flags, and whether it runs a bundle precision natively.

The flags come from ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``). Where that file does
not exist (macOS, Windows) the flags are empty and OpenVINO's own capability list, when
OpenVINO is installed, answers whether the CPU has native bf16. Nothing is ever assumed from
the CPU's name: a precision runs natively only where one of its flags in
:data:`edgeps.formats.PRECISION_TABLE` is detected.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from edgeps.formats import PRECISION_TABLE

CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Every ISA flag of this CPU, lower case, from ``/proc/cpuinfo``; empty where it cannot be read."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(v.lower() for v in value.split())
    return frozenset(flags)


def _openvino_capabilities() -> frozenset[str]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` (``BF16``, ``INT8``, ...); empty without OpenVINO."""
    try:
        import openvino as ov

        return frozenset(str(c).upper() for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # not installed, or no CPU plugin: nothing detected
        return frozenset()


def runs_natively(precision: str) -> bool:
    """True when this CPU computes ``precision`` (a name from :data:`edgeps.formats.PRECISIONS`)
    natively: the precision needs no CPU feature, or one of its ``native_cpu_flags`` is
    detected here. The one capability query the runtimes and the benchmark sweep ask (tests
    monkeypatch it to stand for a CPU without the feature).

    Raises:
        KeyError: ``precision`` is not in the table.
    """
    needed = PRECISION_TABLE[precision].native_cpu_flags
    if not needed:
        return True
    flags = cpu_flags()
    if flags:
        return any(f in flags for f in needed)
    return precision.upper() in _openvino_capabilities()  # no /proc/cpuinfo: ask OpenVINO


def flags_key() -> str:
    """A short stable hash of this CPU's flags: what a hardware-specific cache is keyed by."""
    return hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]


__all__ = ["cpu_flags", "flags_key", "runs_natively"]
