"""bench/tracking.py: tracking quality over several synthetic videos, from cached results."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "tracking.py"


def _bench():
    spec = importlib.util.spec_from_file_location("edgeps_bench_tracking", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tracking_bench_scores_a_settings_grid_and_caches_the_model_results(onnx_bundle, tmp_path, capsys):
    bench = _bench()
    common = [
        "--bundle",
        str(onnx_bundle),
        "--seeds",
        "3,4",
        "--frames",
        "12",
        "--size",
        "128x256",
        "--cache",
        str(tmp_path),
    ]
    assert bench.main([*common, "--track", "iou_threshold=0.1,0.3", "--per-video"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("post")]
    assert len(lines) == 2  # one line per tracker setting
    for ln in lines:
        m = re.search(r"switches (\d+) / 24 frames = ([\d.]+) per 100, tracked ([\d.]+) %, PQ ([\d.]+)", ln)
        assert m, ln
        assert float(m.group(2)) == pytest.approx(100 * int(m.group(1)) / 24, abs=0.005)  # printed with 2 decimals
        assert 0 <= float(m.group(3)) <= 100
    cached = sorted((tmp_path / "results").glob("*.npz"))
    assert len(cached) == 2  # one per video for the bundle's own post-processing
    # a second run reads the cache instead of running the model again
    assert bench.main(common) == 0
    assert "inferred" not in capsys.readouterr().err
    # the oracle scores the tracker alone, on ground-truth masks renumbered each frame
    assert bench.main([*common, "--oracle"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("post")]
    assert "PQ" not in line and "tracked" in line
