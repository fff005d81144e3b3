"""`edgeps demo`, the README's main job, end to end on a tiny budget: train, export, video,
stream with PQ and tracking, bench, and the second run that reuses what the first made.

The first run happens once, in the module fixture; each test starts from what it made, so
the tests pass alone and in any order."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml

from edgeps.apps.bench.report import validate_bench_json
from edgeps.apps.cli import main

TINY = {
    "model": {
        "width_mult": 0.5,
        "pretrained": False,
        "semantic_channels": 32,
        "instance_channels": 32,
        "aspp_channels": 32,
        "head_channels": 16,
    },
    "data": {
        "train_images": 8,
        "val": "synth:val:2",
        "val_images": 2,
        "input_size": [64, 128],
        "crop": [64, 128],
        "scale_range": [1.0, 1.0],
        "center_sigma": 3.0,
    },
    "schedule": {"max_steps": 12, "batch_size": 4, "lr": 0.005, "eval_every": 0, "checkpoint_every": 0, "threads": 2},
    "postprocess": {"stuff_area": 32, "threshold": 0.01},
}


DOCS = Path(__file__).resolve().parents[1] / "docs"


def _docs_state() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in DOCS.glob("*.png")}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The first demo run (trains, exports, streams, benchmarks): (out, argv, its stdout,
    the docs/*.png state before it)."""
    out = tmp_path_factory.mktemp("demo")
    cfg = out / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    argv = [
        "demo",
        "--out",
        str(out),
        "--config",
        str(cfg),
        "--train-minutes",
        "0.5",
        "--formats",
        "onnx",
        "--precisions",
        "fp32",
        "--frames",
        "8",
        "--video-size",
        "96x192",
    ]
    docs_before = _docs_state()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    assert code == 0, buf.getvalue()[-3000:]
    return out, argv, buf.getvalue(), docs_before


def test_demo_makes_every_artefact_under_out_only(demo_run):
    out, argv, text, docs_before = demo_run
    assert "done in" in text and "README pictures" not in text
    assert _docs_state() == docs_before  # the clone's docs/*.png are left alone without --update-docs
    assert (out / "demo_frame.png").stat().st_size > 0
    rows = json.loads((out / "pq.json").read_text())
    assert [r["bundle"] for r in rows] == ["onnx-fp32"]
    row = rows[0]
    assert 0.0 <= row["pq"] <= 1.0 and row["stream"]["frames"] == 8
    assert row["tracking"]["frames"] == 8 and row["infer_fps"] > 0 and row["stream_over_infer"] > 0
    # the bench ran between two timed passes of the stream: the stream FPS is their mean
    assert len(row["stream_fps_passes"]) == 2 and row["stream_fps"] == pytest.approx(sum(row["stream_fps_passes"]) / 2)
    assert (out / "stream" / "onnx-fp32.mp4").stat().st_size > 0
    validate_bench_json(json.loads((out / "bench.json").read_text()))
    assert (out / "bench.png").stat().st_size > 0


def test_second_run_reuses_model_bundles_and_video(demo_run, capsys):
    out, argv, _, _ = demo_run
    video = out / "video" / "synth.mp4"
    before = (out / "train" / "checkpoints" / "best.pt").stat().st_mtime_ns, video.stat().st_mtime_ns
    assert main([*argv, "--no-docs"]) == 0
    text = capsys.readouterr().out
    assert "reusing" in text and "--no-docs is no longer needed" in text
    assert ((out / "train" / "checkpoints" / "best.pt").stat().st_mtime_ns, video.stat().st_mtime_ns) == before


def test_an_export_that_failed_for_this_checkpoint_is_not_tried_again(demo_run, capsys):
    from edgeps.hashing import file_sha256

    out, argv, _, _ = demo_run
    sha = file_sha256(out / "train" / "checkpoints" / "best.pt")
    marker = out / "bundles" / "onnx-int8.failed.json"
    marker.write_text(json.dumps({"checkpoint_sha256": sha, "target": "generic", "error": "parity 97.15 % < 98 %"}))
    argv = [
        *argv[: argv.index("--precisions")],
        "--precisions",
        "fp32,int8",
        "--target",
        "generic",
        *argv[argv.index("--precisions") + 2 :],
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "onnx-int8: not exported (failed for this checkpoint before: parity 97.15 % < 98 %" in text
    assert [r["bundle"] for r in json.loads((out / "pq.json").read_text())] == ["onnx-fp32"]
    assert not (out / "bundles" / "onnx-int8").exists()
    # a marker from another checkpoint is no reason to skip: the export is tried (and here passes or fails anew)
    marker.write_text(json.dumps({"checkpoint_sha256": "0" * 64, "target": "generic", "error": "old"}))
    assert main(argv) == 0
    assert "failed for this checkpoint before" not in capsys.readouterr().out
