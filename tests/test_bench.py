"""``edgeps bench``: checkpoint matrix + cache, worker-process measurement, JSON schema and
validator, PNG chart, --compare. Real bundles of the tiny model (64x128); small --iters and no
timing assertions (shared machines are noisy)."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import cv2
import pytest

from edgeps.apps.bench.report import SCHEMA, STAGES, validate_bench_json
from edgeps.apps.cli import main
from edgeps.errors import FormatError

REPO = Path(__file__).resolve().parents[1]
ITERS = ["--iters", "3", "--warmup", "1", "--threads", "1", "--data", "synth:val:2"]


@pytest.fixture(scope="module")
def matrix_run(tiny_checkpoint, tmp_path_factory) -> dict:
    """One ``edgeps bench --checkpoint`` run: exports onnx-fp32 64x128 into a fresh cache,
    measures it in a worker, writes a.json + a.png."""
    out = tmp_path_factory.mktemp("bench")
    cache = out / "cache"
    args = [
        "bench",
        "--checkpoint",
        str(tiny_checkpoint),
        "--sizes",
        "64x128",
        "--formats",
        "onnx",
        "--precisions",
        "fp32",
        "--cache",
        str(cache),
        *ITERS,
        "--json",
        str(out / "a.json"),
    ]
    return {"out": out, "cache": cache, "args": args}


@pytest.fixture(scope="module")
def first_run(matrix_run) -> dict:
    import subprocess
    import sys

    # its own process: the test process keeps the parent's view (progress lines on stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "edgeps.apps.cli", *matrix_run["args"]], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((matrix_run["out"] / "a.json").read_text())
    return {**matrix_run, "stdout": proc.stdout, "stderr": proc.stderr, "report": report}


def _bundle(first_run) -> Path:
    return Path(first_run["report"]["results"][0]["bundle"])


def test_checkpoint_run_exports_into_cache_then_reuses_it(first_run, tiny_checkpoint, monkeypatch, capsys):
    from edgeps.hashing import file_sha256

    assert "[export 1/1] onnx-fp32 64x128" in first_run["stderr"]
    bundle = _bundle(first_run)
    sha = file_sha256(tiny_checkpoint)
    assert bundle == first_run["cache"] / sha[:12] / "64x128" / "onnx-fp32"
    assert (bundle / "edgeps.yaml").is_file()

    # second run: nothing to export (the exporter would fail loudly if called)
    import edgeps.export.pipeline as pipeline

    def no_export(*a, **k):
        raise AssertionError("export_bundles called although the cache holds the bundle")

    monkeypatch.setattr(pipeline, "export_bundles", no_export)
    json2 = first_run["out"] / "second.json"
    args = [*first_run["args"][:-1], str(json2)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "[cache] onnx-fp32 64x128: reusing" in err and "[export" not in err
    assert json.loads(json2.read_text())["results"][0]["bundle"] == str(bundle)


def test_json_follows_the_schema(first_run):
    report = first_run["report"]
    validate_bench_json(report)
    assert report["schema"] == SCHEMA
    cfg = report["config"]
    assert (cfg["iters"], cfg["warmup"], cfg["threads"], cfg["data"], cfg["isolation"]) == (
        3,
        1,
        1,
        "synth:val:2",
        "subprocess",
    )
    dev = report["device"]
    assert dev["cpu_count"] >= 1 and isinstance(dev["isa_flags"], list) and dev["cpu_model"]
    assert {"python", "numpy", "cv2", "onnxruntime"} <= set(dev["versions"])
    (row,) = report["results"]
    assert (row["format"], row["precision"], row["backend"], row["input_size"]) == (
        "onnx",
        "fp32",
        "onnxruntime",
        [64, 128],
    )
    assert row["providers"] == ["CPUExecutionProvider"] and row["device"] == "cpu" and row["threads"] == 1
    for stage in STAGES:  # total + the stage split
        st = row["latency_ms"][stage]
        assert st["min"] <= st["p50"] <= st["p90"] <= st["p99"]
        assert st["min"] <= st["mean"] <= st["max"] and st["p99"] <= st["max"]
    assert row["infer_fps"] == pytest.approx(1000 / row["latency_ms"]["infer"]["p50"])
    assert row["fps"] > 0
    # measured in its own worker: RSS of that process, torch never imported there
    assert row["isolation"] == "subprocess"
    assert row["peak_rss_mb"] > 0 and row["torch_imported"] is False
    assert row["memory_mb"]["before_load"] <= row["memory_mb"]["after_load"] <= row["peak_rss_mb"]
    assert "onnx-fp32" in first_run["stdout"] and "inferFPS" in first_run["stdout"]


def test_validator_names_the_bad_field(first_run):
    good = first_run["report"]
    cases = [
        (lambda o: o["results"][0]["latency_ms"]["infer"].pop("p90"), r"results\[0\]\.latency_ms\.infer\.p90"),
        (lambda o: o["results"][0]["latency_ms"]["total"].update(p99=-1.0), r"results\[0\]\.latency_ms\.total\.p99"),
        (lambda o: o["results"][0].update(torch_imported="no"), r"results\[0\]\.torch_imported"),
        (lambda o: o["results"][0].update(fps=True), r"results\[0\]\.fps"),
        (lambda o: o["results"][0].update(input_size=[64]), r"results\[0\]\.input_size"),
        (lambda o: o["config"].pop("iters"), r"config\.iters"),
        (lambda o: o["device"].update(cpu_count="2"), r"device\.cpu_count"),
        (lambda o: o.update(schema="edgeps-bench/0"), r"'schema'"),
    ]
    for break_it, field in cases:
        bad = copy.deepcopy(good)
        break_it(bad)
        with pytest.raises(FormatError, match=field):
            validate_bench_json(bad)
    validate_bench_json(good)  # untouched


def test_chart_png_decodes(first_run):
    png = first_run["out"] / "a.png"
    img = cv2.imread(str(png))
    assert img is not None and img.ndim == 3 and img.shape[0] > 100
    assert not list(first_run["out"].glob(".*.tmp*"))  # atomic writes leave no temp files


def test_bundle_mode_in_process_with_deprecated_frames_and_compare(first_run, tmp_path, capsys):
    bundle = _bundle(first_run)
    b_json = tmp_path / "b.json"
    chart = tmp_path / "chart" / "b.png"
    rc = main(
        [
            "bench",
            "--bundle",
            str(bundle),
            "--in-process",
            "--frames",
            "2",
            "--warmup",
            "0",
            "--data",
            "synth:val:1",
            "--json",
            str(b_json),
            "--chart",
            str(chart),
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "--frames is deprecated" in err
    b = json.loads(b_json.read_text())
    validate_bench_json(b)
    assert b["config"]["iters"] == 2 and b["results"][0]["isolation"] == "in-process"
    assert cv2.imread(str(chart)) is not None

    before = sorted(p.name for p in tmp_path.rglob("*"))
    rc = main(["bench", "--compare", str(first_run["out"] / "a.json"), str(b_json)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "B/A" in out and "onnx-fp32 64x128" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("onnx-fp32 64x128"))
    assert len(re.findall(r"\d+\.\d\d", line)) >= 3  # three ratios
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # --compare writes nothing by default

    cmp_json = tmp_path / "cmp.json"
    assert main(["bench", "--compare", str(first_run["out"] / "a.json"), str(b_json), "--json", str(cmp_json)]) == 0
    rows = json.loads(cmp_json.read_text())["rows"]
    assert rows[0]["fps_ratio"] > 0 and cv2.imread(str(cmp_json.with_suffix(".png"))) is not None


def test_clear_errors(first_run, tmp_path, capsys):
    assert main(["bench", "--iters", "1"]) == 2
    err = capsys.readouterr().err
    assert "--bundle" in err and "--checkpoint" in err
    assert main(["bench", "--bundle", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    bad = copy.deepcopy(first_run["report"])
    del bad["results"][0]["peak_rss_mb"]
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(bad))
    assert main(["bench", "--compare", str(first_run["out"] / "a.json"), str(bad_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "results[0].peak_rss_mb" in err


def test_runtime_only_worker_never_has_torch(first_run, tmp_path):
    """The worker under the runtime-only venv (no torch installed), as on an edge device."""
    py = Path(os.environ.get("EDGEPS_RUNTIME_PYTHON", REPO / ".venv-runtime" / "bin" / "python"))
    if not py.exists():
        pytest.fail(f"runtime-only environment missing at {py}: scripts/test.sh builds it (.[ort], no torch)")
    out = tmp_path / "rt.json"
    assert main(["bench", "--bundle", str(_bundle(first_run)), "--python", str(py), *ITERS, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["torch_imported"] is False and "torch" not in row["versions"] and row["peak_rss_mb"] > 0
