"""``edgeps eval-video`` end to end: one short synthetic video through the tiny checkpoint and
the tracker, then the same frames and ground truth given as the user's files (KITTI-STEP and
COCO-panoptic PNGs), which must score exactly the same; and the ground-truth masks instead of
a model, whose segmentation is exact (SQ 1; single-frame VPQ loses only where the tracker gives two
objects one id).

The tiny checkpoint is trained for a few dozen steps on 64x128 crops: on the street video it
finds no object, so its STQ and VPQ are near 0 (the ground truth's tracks still count)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeps.apps.cli import main
from edgeps.data.tracking_videos import synth_video, video_path

SEED, FRAMES, SIZE = 3, 8, (64, 128)


def _synthetic(model: list[str], cache: Path, out: Path) -> list[str]:
    return [
        "eval-video",
        *model,
        "--seeds",
        str(SEED),
        "--num-frames",
        str(FRAMES),
        "--size",
        f"{SIZE[0]}x{SIZE[1]}",
        "--cache",
        str(cache),
        "--json",
        str(out),
    ]


def _figures(row: dict) -> dict:
    keys = ("frames", "stq", "aq", "sq", "tracks", "vpq", "id_switches", "tracked_fraction", "objects")
    return {**{k: row[k] for k in keys}, **{f"vpq{k}": v for k, v in row["vpq_per_span"].items()}}


def test_eval_video_synthetic_and_user_files_agree(tiny_checkpoint, tmp_path, capsys):
    cache = tmp_path / "cache"
    out = tmp_path / "synth.json"
    ckpt = ["--checkpoint", str(tiny_checkpoint)]
    assert main(_synthetic(ckpt, cache, out)) == 0
    captured = capsys.readouterr()
    assert "frames inferred" in captured.err
    lines = captured.out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("video"))
    assert lines[head].split()[:6] == ["video", "frames", "STQ", "AQ", "SQ", "VPQ"]
    assert [ln.split()[0] for ln in lines[head + 1 :]] == [f"seed{SEED}", "all"]
    # 8 frames: spans 0 and 5 have windows, 10 and 15 none (printed as "-")
    assert lines[head + 1].split()[8:10] == ["-", "-"]

    result = json.loads(out.read_text())
    (video,) = result["videos"]
    overall = result["overall"]
    assert video["name"] == f"seed{SEED}" and video["frames"] == FRAMES
    assert _figures(video) == pytest.approx(_figures(overall))  # one video: overall = the video
    assert overall["stq"] == pytest.approx(math.sqrt(overall["aq"] * overall["sq"]))
    assert sorted(video["vpq_per_span"]) == ["0", "5"]
    assert overall["vpq"] == pytest.approx(np.mean(list(video["vpq_per_span"].values())))
    assert overall["switches_per_100_frames"] == pytest.approx(100 * overall["id_switches"] / FRAMES)
    for key in ("stq", "aq", "sq", "vpq", "tracked_fraction"):
        assert 0.0 <= overall[key] <= 1.0, key
    assert overall["tracks"] > 5 and overall["objects"] > 5  # from the ground truth
    assert result["vpq"]["per_span"]["5"]["windows"] == FRAMES - 5
    # printed figures are the JSON's in points
    printed = lines[head + 2].split()
    assert float(printed[2]) == pytest.approx(100 * overall["stq"], abs=0.051)
    assert float(printed[5]) == pytest.approx(100 * overall["vpq"], abs=0.051)

    # a second run reads the model's maps from the cache
    assert main(_synthetic(ckpt, cache, tmp_path / "again.json")) == 0
    assert "inferred" not in capsys.readouterr().err
    assert json.loads((tmp_path / "again.json").read_text())["overall"] == result["overall"]

    # the same frames (written losslessly) and ground truth as the user's own files
    images, gts = synth_video(cache, SEED, FRAMES, SIZE)
    frames_dir, kitti_dir = tmp_path / "frames", tmp_path / "kitti"
    frames_dir.mkdir()
    kitti_dir.mkdir()
    for i, (img, gt) in enumerate(zip(images, gts, strict=True)):
        assert cv2.imwrite(str(frames_dir / f"{i:06d}.png"), img)
        rgb = np.zeros((*gt.shape, 3), np.uint8)
        rgb[..., 0] = np.where(gt < 0, 255, gt // 1000)
        inst = np.where(gt < 0, 0, gt % 1000) + 300 * (gt % 1000 > 0)  # instance numbers above 255
        rgb[..., 1], rgb[..., 2] = inst // 256, inst % 256
        assert cv2.imwrite(str(kitti_dir / f"{i:06d}.png"), rgb[..., ::-1])
    coco_dir = tmp_path / "coco"
    mp4 = video_path(cache, SEED, FRAMES, SIZE)
    shutil.copytree(mp4.with_name(mp4.stem + "_gt"), coco_dir)  # panoptic.json + panoptic/
    for fmt, gt_dir in (("kitti-step", kitti_dir), ("coco", coco_dir)):
        out_user = tmp_path / f"{fmt}.json"
        argv = ["eval-video", "--checkpoint", str(tiny_checkpoint), "--frames", str(frames_dir)]
        assert main([*argv, "--gt", str(gt_dir), "--gt-format", fmt, "--json", str(out_user)]) == 0
        user = json.loads(out_user.read_text())
        assert user["source"]["gt_format"] == fmt
        assert user["videos"][0]["name"] == "frames"
        assert _figures(user["overall"]) == pytest.approx(_figures(overall), abs=1e-12), fmt
    # several videos: one sub-folder each in --frames and --gt; each scores as the video alone
    for name in ("a", "b"):
        shutil.copytree(frames_dir, tmp_path / "multi" / "frames" / name)
        shutil.copytree(kitti_dir, tmp_path / "multi" / "gt" / name)
    argv = ["eval-video", *ckpt, "--frames", str(tmp_path / "multi" / "frames"), "--gt", str(tmp_path / "multi" / "gt")]
    assert main([*argv, "--gt-format", "kitti-step", "--json", str(tmp_path / "multi.json")]) == 0
    multi = json.loads((tmp_path / "multi.json").read_text())
    assert [v["name"] for v in multi["videos"]] == ["a", "b"]
    for v in multi["videos"]:
        assert _figures(v) == pytest.approx(_figures(overall), abs=1e-12)
    assert multi["overall"]["frames"] == 2 * FRAMES and multi["overall"]["tracks"] == 2 * overall["tracks"]
    capsys.readouterr()

    # the ground-truth masks: every frame's segments are exact, so SQ is 1 and single-frame VPQ near 1
    # (only the tracker's ids can cost anything), from the synthetic video and from COCO files
    runs = {
        "synthetic": _synthetic(["--gt-masks"], cache, tmp_path / "gt-synthetic.json"),
        "coco": [
            "eval-video",
            "--gt-masks",
            "--frames",
            str(frames_dir),
            "--gt",
            str(coco_dir),
            "--gt-format",
            "coco",
            "--json",
            str(tmp_path / "gt-coco.json"),
        ],
    }
    for name, argv in runs.items():
        assert main(argv) == 0
        r = json.loads((tmp_path / f"gt-{name}.json").read_text())["overall"]
        assert r["sq"] == 1.0 and r["vpq_per_span"]["0"] > 0.9, name
        assert r["aq"] > 0.5 and r["tracked_fraction"] > 0.5, name
        assert r["tracks"] == overall["tracks"], name
    assert "ground-truth masks + tracker: 1 videos, 8 frames" in capsys.readouterr().out
    tracked = json.loads((tmp_path / "gt-synthetic.json").read_text())
    assert tracked["association"] == "tracker" and tracked["tracker_settings"]["max_age"] == 10

    # association by ground truth on the ground-truth masks: every segment gets its object's id,
    # so AQ is 1 and nothing switches (the bound the tracker is measured against)
    argv = _synthetic(["--gt-masks", "--oracle-association"], cache, tmp_path / "oracle.json")
    assert main(argv) == 0
    assert "ground-truth masks + association by ground truth: 1 videos" in capsys.readouterr().out
    oracle = json.loads((tmp_path / "oracle.json").read_text())
    assert oracle["association"] == "ground truth" and oracle["tracker_settings"] is None
    assert oracle["overall"]["aq"] == pytest.approx(1.0) and oracle["overall"]["id_switches"] == 0
    assert oracle["overall"]["tracks"] == overall["tracks"]
    # on the model's masks the bound is no better than perfect and the tracker no better than it
    assert main(_synthetic([*ckpt, "--oracle-association"], cache, tmp_path / "oracle-model.json")) == 0
    bound = json.loads((tmp_path / "oracle-model.json").read_text())["overall"]
    assert overall["aq"] <= bound["aq"] + 1e-9 <= 1.0 + 1e-9
    assert bound["sq"] == pytest.approx(overall["sq"])  # the same masks

    # a tracker setting from the command line reaches the tracker and the JSON
    argv = _synthetic(["--gt-masks", "--track", "max_age=3", "--track", "steady_ratio=[0.7,1.4]"], cache, out)
    assert main(argv) == 0
    settings = json.loads(out.read_text())["tracker_settings"]
    assert settings["max_age"] == 3 and settings["steady_ratio"] == [0.7, 1.4]
    capsys.readouterr()

    # a frame without ground truth is a one-line error naming it
    (frames_dir / "000099.png").write_bytes((frames_dir / "000000.png").read_bytes())
    argv = ["eval-video", "--checkpoint", str(tiny_checkpoint), "--frames", str(frames_dir)]
    assert main([*argv, "--gt", str(kitti_dir), "--gt-format", "kitti-step"]) == 2
    err = capsys.readouterr().err
    assert "no ground truth for 1 of 9 frames" in err and "000099" in err and len(err.strip().splitlines()) == 1


def test_eval_video_bad_arguments_are_one_line_errors(tiny_checkpoint, tmp_path, capsys):
    ckpt = ["eval-video", "--checkpoint", str(tiny_checkpoint)]
    assert main([*ckpt, "--seeds", "7,x"]) == 2
    assert "--seeds: expected comma-separated integers" in capsys.readouterr().err
    assert main([*ckpt, "--frames", str(tmp_path)]) == 2
    assert "--frames needs --gt DIR and --gt-format" in capsys.readouterr().err
    assert main([*ckpt, "--gt", str(tmp_path), "--gt-format", "coco"]) == 2
    assert "--gt and --gt-format go with --frames DIR" in capsys.readouterr().err
    assert main(["eval-video", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    argv = ["eval-video", "--gt-masks", "--frames", str(tmp_path), "--gt", str(tmp_path), "--gt-format", "kitti-step"]
    assert main(argv) == 2
    assert "no images and no sub-folders" in capsys.readouterr().err
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "000000.png").write_bytes(b"")
    argv[3] = str(tmp_path / "f")
    assert main(argv) == 2
    assert "--gt-masks takes its category set from the ground truth" in capsys.readouterr().err
    for bad, message in (
        (["--track", "no_such_rule=1"], "--track 'no_such_rule=1': expected NAME=VALUE"),
        (["--track", "max_age"], "--track 'max_age': expected NAME=VALUE"),
        (["--track", "max_age=x"], "the value is not a number"),
        (["--track", "max_age=2.5"], "expected int for max_age"),
        (["--track", "max_age=3", "--oracle-association"], "--track sets the tracker"),
    ):
        assert main(["eval-video", "--gt-masks", *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, bad
