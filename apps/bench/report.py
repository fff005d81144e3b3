"""The bench JSON (schema ``edgeps-bench/1``, documented in :mod:`edgeps.apps.bench` and
docs/bench.md), its validator, the tables printed on screen, and ``--compare``.

The validator exists so a JSON from another machine (or an older edgeps) fails with the name
of the bad field instead of a KeyError halfway through a comparison.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeps import __version__
from edgeps.atomic import atomic_write_text
from edgeps.errors import DataNotFoundError, FormatError
from edgeps.validate import check_mapping

SCHEMA = "edgeps-bench/1"
STAGES = ("total", "preprocess", "infer", "postprocess")
STATS = ("min", "p50", "p90", "p99", "mean")

_NUM = (int, float)
_DEVICE_FIELDS: dict[str, Any] = {
    "cpu_model": str,
    "cpu_count": int,
    "isa_flags": list,
    "machine": str,
    "platform": str,
    "python": str,
    "versions": dict,
}
_CONFIG_FIELDS: dict[str, Any] = {"threads": (int, type(None)), "warmup": int, "iters": int, "data": str}
_RESULT_FIELDS: dict[str, Any] = {
    "bundle": str,
    "format": str,
    "backend": str,
    "precision": str,
    "input_size": list,
    "threads": (int, type(None)),
    "device": str,
    "providers": (list, type(None)),
    "fps": _NUM,
    "infer_fps": _NUM,
    "latency_ms": dict,
    "peak_rss_mb": _NUM,
    "torch_imported": bool,
}


def build_report(device: dict[str, Any], config: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Assemble a bench JSON object (validated before it is returned)."""
    obj = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "edgeps_version": __version__,
        "device": device,
        "config": config,
        "results": results,
    }
    validate_bench_json(obj)
    return obj


def _check_fields(obj: Any, fields: dict[str, Any], where: str, src: str) -> None:
    check_mapping(obj, fields, f"{src}: {where}", required=fields, allow_unknown=True, error=FormatError)


def validate_bench_json(obj: Any, source: str = "bench JSON") -> None:
    """Check ``obj`` against schema ``edgeps-bench/1``; raise FormatError naming the bad field.

    Beyond types it checks what comparisons rely on: input_size is [H, W] of positive ints,
    latency has every stage and statistic, min <= p50 <= p90 <= p99, and rates are positive.
    """
    if not isinstance(obj, dict):
        raise FormatError(f"{source}: expected a JSON object at the top level, got {type(obj).__name__}")
    if obj.get("schema") != SCHEMA:
        raise FormatError(f"{source}: field 'schema' must be '{SCHEMA}', got {json.dumps(obj.get('schema'))}")
    _check_fields(obj.get("device"), _DEVICE_FIELDS, "device", source)
    _check_fields(obj.get("config"), _CONFIG_FIELDS, "config", source)
    results = obj.get("results")
    if not isinstance(results, list):
        raise FormatError(f"{source}: field 'results' must be an array, got {json.dumps(results)[:60]}")
    for i, row in enumerate(results):
        where = f"results[{i}]"
        _check_fields(row, _RESULT_FIELDS, where, source)
        size = row["input_size"]
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            raise FormatError(
                f"{source}: field '{where}.input_size' must be [H, W] of positive integers, got {json.dumps(size)}"
            )
        for key in ("fps", "infer_fps", "peak_rss_mb"):
            if not row[key] > 0:
                raise FormatError(f"{source}: field '{where}.{key}' must be > 0, got {row[key]}")
        for stage in STAGES:
            st = row["latency_ms"].get(stage)
            _check_fields(st, {s: _NUM for s in STATS}, f"{where}.latency_ms.{stage}", source)
            for a, b in zip(("min", "p50", "p90"), ("p50", "p90", "p99")):
                if st[a] > st[b] + 1e-9:
                    raise FormatError(
                        f"{source}: field '{where}.latency_ms.{stage}.{b}' ({st[b]}) is below {a} ({st[a]})"
                    )
            if st["min"] < 0:
                raise FormatError(f"{source}: field '{where}.latency_ms.{stage}.min' is negative ({st['min']})")
            if "max" in st:  # written since the field was added; older reports lack it
                if not (
                    isinstance(st["max"], (int, float))
                    and st["p99"] <= st["max"] + 1e-9
                    and st["min"] <= st["mean"] <= st["max"] + 1e-9
                ):
                    raise FormatError(
                        f"{source}: field '{where}.latency_ms.{stage}.max' ({st['max']}) is below p99 or the mean"
                    )


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and validate a bench JSON file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"bench JSON not found: {path}")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    validate_bench_json(obj, str(path))
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write JSON via a temp file + rename, so a reader never sees half a file."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def row_label(row: dict[str, Any]) -> str:
    """Short name of a result: ``onnx-fp32 64x128``."""
    h, w = row["input_size"]
    return f"{row['format']}-{row['precision']} {h}x{w}"


def row_key(row: dict[str, Any]) -> tuple[str, str, tuple[int, int], str]:
    """How ``--compare`` matches rows of two machines: format, precision, size, backend."""
    return (row["format"], row["precision"], tuple(row["input_size"]), row["backend"])


def describe_device_line(device: dict[str, Any]) -> str:
    """One line: CPU model, cores, ISA flags."""
    flags = ",".join(device.get("isa_flags", [])) or "-"
    cores = device.get("cpu_count", "?")
    return f"{device.get('cpu_model', '?')} | {cores} cores | {flags} | {device.get('platform', '?')}"


def format_table(report: dict[str, Any]) -> str:
    """The on-screen table: one row per bundle, medians and tails, infer-alone FPS, RSS."""
    cfg = report["config"]
    rows = report["results"]
    lines = [
        f"device: {describe_device_line(report['device'])}",
        f"data {cfg['data']}, {cfg['warmup']} warm-up + {cfg['iters']} timed calls per bundle, threads "
        f"{cfg['threads'] or 'default'}, "
        f"{cfg.get('isolation', '?')}",
        f"{'bundle':<22}{'backend':<12}{'dev':<5}{'thr':>4}{'pre':>7}{'infer':>8}{'post':>7}{'p50':>8}{'p90':>8}{'p99':>8}"
        f"{'FPS':>7}{'inferFPS':>9}{'x':>6}{'RSS MB':>8}{'torch':>6}",
    ]
    base = rows[0]["latency_ms"]["infer"]["p50"] if rows else 1.0
    for r in rows:
        lat = r["latency_ms"]
        lines.append(
            f"{row_label(r):<22}{r['backend']:<12}{r['device'][:4]:<5}"
            f"{r['threads'] if r['threads'] is not None else '-':>4}"
            f"{lat['preprocess']['p50']:7.1f}{lat['infer']['p50']:8.1f}{lat['postprocess']['p50']:7.1f}"
            f"{lat['total']['p50']:8.1f}{lat['total']['p90']:8.1f}{lat['total']['p99']:8.1f}"
            f"{r['fps']:7.1f}{r['infer_fps']:9.1f}{base / lat['infer']['p50']:6.2f}{r['peak_rss_mb']:8.0f}"
            f"{'yes' if r['torch_imported'] else 'no':>6}"
        )
    lines.append(
        "ms are p50 per stage; p50/p90/p99 are end-to-end; x = infer speed-up over the first row; RSS = peak of the "
        "measuring process"
    )
    return "\n".join(lines)


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[tuple, dict | None, dict | None]]:
    """Rows of A and B matched by :func:`row_key`, in A's order then B-only rows."""
    bmap = {row_key(r): r for r in b["results"]}
    out, seen = [], set()
    for r in a["results"]:
        k = row_key(r)
        out.append((k, r, bmap.get(k)))
        seen.add(k)
    out += [(row_key(r), None, r) for r in b["results"] if row_key(r) not in seen]
    return out


def format_compare(a: dict[str, Any], b: dict[str, Any], names: Sequence[str] = ("A", "B")) -> str:
    """Side-by-side table of two bench JSONs with ratios B/A (FPS: > 1 means B is faster;
    latency: < 1 means B is faster)."""
    na, nb = names
    lines = [f"{na}: {describe_device_line(a['device'])}", f"{nb}: {describe_device_line(b['device'])}"]
    lines.append(
        f"{'bundle':<22}{'backend':<12}{'FPS A':>8}{'FPS B':>8}{'B/A':>6}{'infFPS A':>9}{'infFPS B':>9}{'B/A':>6}"
        f"{'p99 A':>8}{'p99 B':>8}{'B/A':>6}{'RSS A':>7}{'RSS B':>7}"
    )

    def num(v: float | None, w: int, p: int = 1) -> str:
        return f"{v:{w}.{p}f}" if v is not None else f"{'-':>{w}}"

    def ratio(x: float | None, y: float | None) -> str:
        return f"{y / x:6.2f}" if x and y else f"{'-':>6}"

    for _key, ra, rb in compare_rows(a, b):
        r = ra or rb
        fa, fb = (ra or {}).get("fps"), (rb or {}).get("fps")
        ia, ib = (ra or {}).get("infer_fps"), (rb or {}).get("infer_fps")
        pa = ra["latency_ms"]["total"]["p99"] if ra else None
        pb = rb["latency_ms"]["total"]["p99"] if rb else None
        ma, mb = (ra or {}).get("peak_rss_mb"), (rb or {}).get("peak_rss_mb")
        lines.append(
            f"{row_label(r):<22}{r['backend']:<12}{num(fa, 8)}{num(fb, 8)}{ratio(fa, fb)}"
            f"{num(ia, 9)}{num(ib, 9)}{ratio(ia, ib)}"
            f"{num(pa, 8)}{num(pb, 8)}{ratio(pa, pb)}{num(ma, 7, 0)}{num(mb, 7, 0)}"
        )
    lines.append(
        "ratios are B/A: FPS > 1 means B is faster, p99 latency < 1 means B is faster; '-' = bundle only on one side"
    )
    return "\n".join(lines)


def run_config(
    *,
    threads: int | None,
    warmup: int,
    iters: int,
    data: str,
    frames: int,
    device: str = "cpu",
    isolation: str = "subprocess",
    python: str | Path | None = None,
) -> dict[str, Any]:
    """The ``config`` block of the bench JSON: how the rows were measured."""
    return {
        "threads": threads,
        "warmup": warmup,
        "iters": iters,
        "data": data,
        "frames": frames,
        "device": device,
        "isolation": isolation,
        "python": str(python or sys.executable),
    }


def publish(
    results: list[dict[str, Any]], config: dict[str, Any], json_out: Path | None, chart: Path | None
) -> dict[str, Any]:
    """The bench report of measured rows: the table on screen, the JSON, the PNG chart (one
    place, so ``edgeps demo``, which measures each bundle right after streaming it, reports
    exactly as ``edgeps bench`` does)."""
    from edgeps.apps.bench.device import describe_device

    report = build_report(describe_device(), config, results)
    print(format_table(report))
    if json_out:
        write_json_atomic(json_out, report)
        print(f"json: {json_out}")
    if chart:
        from edgeps.apps.bench.chart import write_chart

        write_chart(
            chart, [("this run", report)], title=f"edgeps bench: FPS per bundle ({report['device']['cpu_model'][:50]})"
        )
        print(f"chart: {chart}")
    return report
