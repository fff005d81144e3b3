"""``edgeps eval-coco``: the printed tables, the --json result, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeps.apps.cli import main


def sample_args(coco_sample: Path) -> list[str]:
    gt_json, gt_dir = (
        str(coco_sample / "panoptic_examples.json"),
        str(coco_sample / "panoptic_examples"),
    )
    return [
        "eval-coco",
        "--gt-json",
        gt_json,
        "--gt-dir",
        gt_dir,
        "--pred-json",
        gt_json,
        "--pred-dir",
        gt_dir,
    ]


def test_identity_table_and_json(coco_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "result.json"
    assert main([*sample_args(coco_sample), "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()

    summary = {line.split()[0]: line.split()[1:] for line in lines[1:4]}
    # The sample has 8 categories with GT segments: 4 things, 4 stuff.
    assert summary == {
        "All": ["100.0", "100.0", "100.0", "8"],
        "Things": ["100.0", "100.0", "100.0", "4"],
        "Stuff": ["100.0", "100.0", "100.0", "4"],
    }
    assert lines[0].split() == ["PQ", "SQ", "RQ", "N"]
    header = next(i for i, line in enumerate(lines) if line.startswith("category"))
    assert lines[header].split() == ["category", "kind", "PQ", "SQ", "RQ", "TP", "FP", "FN", "IoU"]
    rows = {line[:24].strip(): line[24:].split() for line in lines[header + 1 :]}
    assert len(rows) == 8  # only the categories that count in the averages
    # 13 + 13 non-crowd persons in the two images; the crowd regions are neither TP nor FP.
    assert rows["person"] == ["thing", "100.0", "100.0", "100.0", "26", "0", "0", "100.0"]
    assert rows["sky-other-merged"] == ["stuff", "100.0", "100.0", "100.0", "2", "0", "0", "100.0"]

    result = json.loads(out_json.read_text())
    assert result["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 8}
    assert result["per_class"]["1"]["name"] == "person" and result["per_class"]["1"]["tp"] == 26
    assert len(result["per_class"]) == 133


def test_bad_path_is_a_one_line_error(coco_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = sample_args(coco_sample)
    missing = tmp_path / "missing.json"
    args[args.index("--pred-json") + 1] = str(missing)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgeps eval-coco: error:") and str(missing) in err[0]
