"""``edgeps tune-postprocess`` and edgeps.tuning: settings chosen on held-out data."""

from __future__ import annotations

import json

import numpy as np
import yaml

from edgeps.apps.cli import main
from edgeps.postprocess import PostprocessSettings
from edgeps.tuning import TuningRow, best_row, settings_grid


def test_grid_starts_with_the_base_and_has_every_combination_once() -> None:
    base = PostprocessSettings(threshold=0.3, nms_kernel=7, top_k=200, stuff_area=512)
    grid = settings_grid(base, thresholds=[0.2, 0.3], nms_kernels=[5, 7, 9])
    assert grid[0] == base
    assert len(grid) == 6  # 2 x 3, the base among them once
    assert {(s.threshold, s.nms_kernel) for s in grid} == {(t, k) for t in (0.2, 0.3) for k in (5, 7, 9)}
    assert all(s.top_k == 200 and s.stuff_area == 512 and s.thing_area == 0 for s in grid)
    by_area = settings_grid(base, thing_areas=[0, 16, 64])
    assert [s.thing_area for s in by_area] == [0, 16, 64] and by_area[0] == base


def test_best_row_breaks_near_ties_toward_the_first() -> None:
    s = PostprocessSettings()
    rows = [TuningRow(s, 60.0, 40, 70, {}), TuningRow(s, 60.05, 41, 70, {}), TuningRow(s, 59.0, 30, 70, {})]
    assert best_row(rows) is rows[0]  # 0.05 better is noise
    rows[1].pq = 60.5
    assert best_row(rows) is rows[1]


def test_cli_scores_the_grid_on_held_out_data_and_writes_the_config(tiny_checkpoint, tmp_path, capsys) -> None:
    out_json, out_cfg, out_pt = tmp_path / "tune.json", tmp_path / "tuned.yaml", tmp_path / "tuned.pt"
    args = ["--checkpoint", tiny_checkpoint, "--data", "synth:dev:3", "--threshold", "0.05,0.9", "--nms-kernel", "3"]
    args += ["--thing-area", "0,1000000"]
    assert (
        main(
            [
                "tune-postprocess",
                *map(str, args),
                "--json",
                str(out_json),
                "--write-config",
                str(out_cfg),
                "--write-checkpoint",
                str(out_pt),
            ]
        )
        == 0
    )
    report = json.loads(out_json.read_text())
    assert report["images"] == 3 and len(report["rows"]) == 5  # the checkpoint's own + 2 x 2
    pqs = [r["pq"] for r in report["rows"]]
    best = int(np.argmax(pqs))
    assert report["chosen"] == report["rows"][best]["settings"] or max(pqs) - pqs[0] <= 0.1
    # a threshold of 0.9 finds (almost) no centers: its things PQ is not above the low threshold's
    rows = [r for r in report["rows"] if r["settings"]["nms_kernel"] == 3]
    by_thr = {r["settings"]["threshold"]: r for r in rows if r["settings"]["thing_area"] == 0}
    assert by_thr[0.9]["pq_things"] <= by_thr[0.05]["pq_things"]
    # a thing area larger than the image drops every instance: no thing is found
    assert all(r["pq_things"] == 0 for r in rows if r["settings"]["thing_area"] == 1000000)
    written = yaml.safe_load(out_cfg.read_text())
    assert written["postprocess"] == {**written["postprocess"], **report["chosen"]}
    assert "PQth" in capsys.readouterr().out
    from edgeps.training.inference import predictor_from_checkpoint

    tuned = predictor_from_checkpoint(out_pt)
    assert tuned.settings.to_dict() == report["chosen"]  # eval and export of the copy use the chosen settings


def test_cli_without_a_grid_says_what_is_missing(tiny_checkpoint, capsys) -> None:
    assert main(["tune-postprocess", "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "give at least one of --threshold" in capsys.readouterr().err
