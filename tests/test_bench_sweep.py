"""``edgeps bench --target-fps``: the choice rule on hand tables, and a real sweep of a tiny
model (2 sizes x 2 backends) that picks the row the rule says from its own measured table."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import yaml

from edgeps.apps.bench.sweep import choose_row, pareto_front, sweep_sizes
from edgeps.apps.cli import main


def row(pq: float, fps: float, name: str = "x") -> dict:
    return {"pq": pq, "stream_fps": fps, "bundle": name}


def test_choose_row_takes_the_best_pq_reaching_the_target_and_breaks_ties_by_fps():
    rows = [row(0.700, 10), row(0.690, 20), row(0.6975, 18), row(0.650, 40), row(0.720, 8)]
    # 15 FPS: rows 1, 2, 3 reach it; best PQ 0.6975 (row 2); row 1 is 0.75 points below: not tied
    assert choose_row(rows, 15) == 2
    # ties within 0.3 points go to the faster row
    rows[1]["pq"] = 0.695
    assert choose_row(rows, 15) == 1
    assert choose_row(rows, 30) == 3
    assert choose_row(rows, 5) == 4  # every row reaches it: the most accurate
    assert choose_row(rows, 41) is None


def test_pareto_front_keeps_the_rows_nothing_beats_on_both():
    rows = [row(0.70, 10), row(0.69, 20), row(0.68, 15), row(0.65, 40), row(0.72, 8), row(0.65, 40)]
    assert pareto_front(rows) == [0, 1, 3, 4, 5]  # row 2 is beaten by row 1; equal rows both stay


def test_sweep_sizes_are_three_around_the_trained_size_in_multiples_of_32():
    assert sweep_sizes((256, 512)) == [(192, 384), (256, 512), (320, 640)]
    assert sweep_sizes((64, 128)) == [(64, 96), (64, 128), (64, 160)]  # at least 64 a side


def test_sweep_of_a_tiny_model_picks_the_row_of_its_own_table(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    args = [
        "bench", "--checkpoint", str(tiny_checkpoint), "--target-fps", "1", "--formats", "onnx,openvino",
        "--precisions", "fp32", "--sizes", "64x128,96x192", "--thread-counts", "1", "--pq-data", "synth:val:2",
        "--data", "synth:val:2", "--iters", "2", "--warmup", "1", "--stream-frames", "4", "--cache",
        str(tmp_path / "cache"), "--json", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["schema"] == "edgeps-bench-sweep/1" and report["target_fps"] == 1.0
    rows = report["rows"]
    assert sorted((r["format"], tuple(r["input_size"])) for r in rows) == [
        ("onnx", (64, 128)), ("onnx", (96, 192)), ("openvino", (64, 128)), ("openvino", (96, 192)),
    ]  # fmt: skip
    for r in rows:
        assert 0 <= r["pq"] <= 1 and r["stream_fps"] > 0 and r["stream_latency_ms"]["p99"] > 0
        assert r["peak_rss_mb"] > 0 and r["threads"] == 1
    chosen = choose_row(rows, 1.0)
    assert chosen is not None and report["chosen"]["index"] == chosen
    assert report["chosen"]["bundle"] == rows[chosen]["bundle"] and Path(rows[chosen]["bundle"]).is_dir()
    assert "<= chosen" in text and "Pareto front" in text
    assert cv2.imread(str(out.with_suffix(".png"))).shape == (460, 760, 3)
    # post-processing settings are in model pixels: stuff_area scales with the input area
    areas = {}
    for r in rows:
        manifest = yaml.safe_load((Path(r["bundle"]) / "edgeps.yaml").read_text())
        areas[tuple(r["input_size"])] = manifest["postprocess"]["stuff_area"]
    assert areas[(96, 192)] == round(areas[(64, 128)] * (96 * 192) / (64 * 128))

    # an unreachable target: every row listed, none chosen, exit 1; --max-minutes 0 skips and says so
    assert main([*args[:4], "1000000", *args[5:]]) == 1
    assert "no configuration reaches 1e+06 FPS" in capsys.readouterr().out
    assert main([*args, "--max-minutes", "0"]) == 2
    err = capsys.readouterr().err
    assert "no configuration was measured" in err and "64x128 (export): --max-minutes reached" in err
