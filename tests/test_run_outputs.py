"""``edgeps run`` outputs other tools read, and nothing lost on a bad file or a failed run.

Real files throughout: the two COCO sample photos, a corrupt JPEG, a real MJPEG camera on
loopback, the panopticapi evaluator (as shipped in cityscapesscripts) as the judge of the
COCO output and the Cityscapes reader for the instanceIds output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from coco_reference import reference_pq
from mjpeg_server import MjpegCamera

from edgeps.apps.cli import main
from edgeps.errors import ConfigError
from edgeps.io.cityscapes import instance_ids_to_panoptic, read_instance_ids_png
from edgeps.io.coco_panoptic import image_ids_for_files, load_coco_panoptic, read_id_png
from edgeps.metrics import evaluate_coco_panoptic

PHOTOS = ("000000142238.jpg", "000000439180.jpg")


@pytest.fixture(scope="module")
def coco_bundle(onnx_bundle: Path, coco_sample: Path, tmp_path_factory) -> Path:
    """The tiny synthetic model's bundle, its classes mapped to COCO category ids (as a bundle
    trained on COCO panoptic carries them), so its output scores against COCO ground truth."""
    out = tmp_path_factory.mktemp("coco_bundle") / "bundle"
    shutil.copytree(onnx_bundle, out)
    coco = json.loads((coco_sample / "panoptic_coco_categories.json").read_text())
    things = iter(c["id"] for c in coco if c["isthing"])
    stuff = iter(c["id"] for c in coco if not c["isthing"])
    manifest = yaml.safe_load((out / "edgeps.yaml").read_text())
    for cat in manifest["categories"]:
        cat["dataset_id"] = next(things if cat["isthing"] else stuff)
    (out / "edgeps.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def photo_folder(coco_sample: Path, folder: Path, extra: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(coco_sample / "input_images" / name, folder / name)
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return folder


def run_cli(*args: str | Path) -> int:
    return main(["run", *map(str, args)])


def test_folder_with_a_corrupt_file_is_processed_and_scored_by_the_reference(
    coco_bundle, coco_sample, tmp_path, capsys, caplog
):
    folder = photo_folder(coco_sample, tmp_path / "images", {"broken.jpg": b"\xff\xd8 not a jpeg"})
    out = tmp_path / "out"
    rc = run_cli(
        "--bundle", coco_bundle, "--source", folder, "--threshold", "0.01",
        "--jsonl", out / "a.jsonl", "--save", out / "a.mp4", "--coco-dir", out / "coco",
        "--images-json", coco_sample / "images_info_examples.json", "--summary-json", out / "summary.json",
    )  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 frames" in text and "1 unreadable file(s) skipped" in text and "tracking off" in text
    assert any("broken.jpg" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and summary["skipped"] == 1 and summary["completed"] is True
    assert summary["skipped_files"][0]["file"].endswith("broken.jpg") and summary["tracking"] is False

    lines = [json.loads(x) for x in (out / "a.jsonl").read_text().splitlines()]
    assert [r["file"] for r in lines] == list(PHOTOS)
    assert all(s["track_id"] is None for r in lines for s in r["segments"])  # tracking off for folders
    video = cv2.VideoCapture(str(out / "a.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 2

    pred = json.loads((out / "coco" / "panoptic.json").read_text())
    assert [im["file_name"] for im in pred["images"]] == list(PHOTOS)
    assert [im["id"] for im in pred["images"]] == [142238, 439180]  # from the images JSON
    assert [(im["height"], im["width"]) for im in pred["images"]] == [(427, 640), (360, 640)]
    assert [a["file_name"] for a in pred["annotations"]] == ["000000142238.png", "000000439180.png"]
    manifest = yaml.safe_load((coco_bundle / "edgeps.yaml").read_text())
    dataset_ids = {c["dataset_id"] for c in manifest["categories"]}
    assert {c["id"] for c in pred["categories"]} == dataset_ids
    used = {s["category_id"] for a in pred["annotations"] for s in a["segments_info"]}
    assert used and used <= dataset_ids

    # The reference evaluator accepts the files (ids, names, PNG/JSON agreement) and edgeps agrees with it.
    gt_json, gt_dir = coco_sample / "panoptic_examples.json", coco_sample / "panoptic_examples"
    ref = reference_pq(gt_json, gt_dir, out / "coco" / "panoptic.json", out / "coco" / "panoptic")
    ours = evaluate_coco_panoptic(gt_json, gt_dir, out / "coco" / "panoptic.json", out / "coco" / "panoptic")
    for group in ("All", "Things", "Stuff"):
        assert ours[group]["n"] == ref[group]["n"]
        assert abs(ours[group]["pq"] - ref[group]["pq"]) < 1e-9
    pred_json, pred_dir = out / "coco" / "panoptic.json", out / "coco" / "panoptic"
    args = ["--gt-json", gt_json, "--gt-dir", gt_dir, "--pred-json", pred_json, "--pred-dir", pred_dir]
    assert main(["eval-coco", *map(str, args)]) == 0


def test_strict_stops_at_the_bad_file_with_every_output_valid_for_the_frames_before(
    onnx_bundle, coco_sample, tmp_path, capsys
):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(coco_sample / "input_images" / PHOTOS[0], folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    shutil.copy(coco_sample / "input_images" / PHOTOS[1], folder / "c.jpg")
    out = tmp_path / "out"
    rc = run_cli(
        "--bundle", onnx_bundle, "--source", folder, "--strict", "--jsonl", out / "a.jsonl", "--save",
        out / "a.avi", "--coco-dir", out / "coco", "--out-dir", out / "each", "--summary-json", out / "summary.json",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2 and "b.jpg" in captured.err and "not a readable image" in captured.err
    assert [json.loads(x)["file"] for x in (out / "a.jsonl").read_text().splitlines()] == ["a.jpg"]
    assert int(cv2.VideoCapture(str(out / "a.avi")).get(cv2.CAP_PROP_FRAME_COUNT)) == 1
    coco = load_coco_panoptic(out / "coco" / "panoptic.json", out / "coco" / "panoptic")
    assert [a["file_name"] for a in coco.annotations] == ["a.png"]
    assert [im["id"] for im in coco.data["images"]] == [0]  # non-numeric stems: index in sorted order
    assert sorted(p.name for p in (out / "each").iterdir()) == ["a.json", "a.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is False and summary["frames"] == 1 and "b.jpg" in summary["error"]
    assert not list(out.rglob(".*tmp*"))


@pytest.mark.parametrize("out_format", ["coco", "cityscapes"])
def test_out_dir_writes_outputs_named_after_each_input(onnx_bundle, coco_sample, tmp_path, out_format):
    from edgeps.bundle import read_manifest

    folder = photo_folder(coco_sample, tmp_path / "images")
    out = tmp_path / "each"
    rc = run_cli(
        "--bundle", onnx_bundle, "--source", folder / "*.jpg", "--threshold", "0.01", "--out-dir", out,
        "--out-format", out_format, "--overlay",
    )  # fmt: skip
    assert rc == 0
    manifest = read_manifest(onnx_bundle)
    cats = manifest.categories.with_dataset_ids()
    divisor = manifest.postprocess.label_divisor
    png = "{}.png" if out_format == "coco" else "{}_instanceIds.png"
    expected = sorted(n.format(Path(p).stem) for p in PHOTOS for n in (png, "{}.json", "{}_overlay.png"))
    assert sorted(p.name for p in out.iterdir()) == expected
    for name in PHOTOS:
        stem = Path(name).stem
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["file"] == name and record["segments"]
        h, w = cv2.imread(str(folder / name)).shape[:2]
        if out_format == "coco":
            ids = read_id_png(out / f"{stem}.png").astype(np.int64)
            assert ids.shape == (h, w)
            # the PNG holds exactly the segments of the JSON (segment id = panoptic id + 1), areas included
            for seg in record["segments"]:
                dataset_pan = seg["dataset_id"] * divisor + seg["instance"]
                assert int((ids == dataset_pan + 1).sum()) == seg["area"]
            assert sum(s["area"] for s in record["segments"]) == int((ids > 0).sum())
        else:
            pan = instance_ids_to_panoptic(read_instance_ids_png(out / f"{stem}_instanceIds.png"), cats, divisor)
            assert pan.shape == (h, w)
            for seg in record["segments"]:
                # Cityscapes numbers instances from 0 and keeps no number for stuff: compare by class and area
                cls = pan // divisor
                assert int(((cls == seg["dataset_id"]) & (pan >= 0)).sum()) >= seg["area"]
        assert cv2.imread(str(out / f"{stem}_overlay.png")).shape == (h, w, 3)


def test_consumer_failure_and_ctrl_c_leave_valid_files_and_a_non_zero_exit(
    onnx_bundle, synth_video, tmp_path, monkeypatch, capsys
):
    from edgeps.apps import consumers

    calls = {"n": 0}
    original = consumers.PerImageOutputs.consume

    def fail_at_third(self, item):  # a consumer that breaks mid-run (e.g. the disk filled up)
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        original(self, item)

    monkeypatch.setattr(consumers.PerImageOutputs, "consume", fail_at_third)
    out = tmp_path / "fail"
    rc = run_cli(
        "--bundle", onnx_bundle, "--source", synth_video, "--jsonl", out / "a.jsonl", "--coco-dir", out / "coco",
        "--out-dir", out / "each", "--summary-json", out / "summary.json",
    )  # fmt: skip
    assert rc == 2 and "No space left" in capsys.readouterr().err
    assert len((out / "a.jsonl").read_text().splitlines()) == 3  # the consumers before it got frame 3
    coco = load_coco_panoptic(out / "coco" / "panoptic.json", out / "coco" / "panoptic")
    assert [a["file_name"] for a in coco.annotations] == ["000000.png", "000001.png", "000002.png"]
    assert all((out / "coco" / "panoptic" / a["file_name"]).is_file() for a in coco.annotations)
    assert json.loads((out / "summary.json").read_text())["completed"] is False

    def interrupt_at_third(self, item):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, item)

    calls["n"] = 0
    monkeypatch.setattr(consumers.PerImageOutputs, "consume", interrupt_at_third)
    out = tmp_path / "interrupt"
    rc = run_cli("--bundle", onnx_bundle, "--source", synth_video, "--jsonl", out / "a.jsonl", "--out-dir", out / "e")
    assert rc == 130
    assert len((out / "a.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in (out / "e").glob("*.png")) == ["000000.png", "000001.png"]


def test_a_camera_gone_for_good_ends_the_run_with_its_frames_saved(onnx_bundle, tmp_path, capsys):
    images = [np.full((64, 128, 3), v, np.uint8) for v in (60, 160)]
    cam = MjpegCamera(images, frames=5, connections_allowed=1).start()
    out = tmp_path / "out"
    try:
        rc = run_cli(
            "--bundle", onnx_bundle, "--source", cam.url, "--mode", "record", "--reconnect-timeout", "1",
            "--jsonl", out / "a.jsonl", "--coco-dir", out / "coco", "--summary-json", out / "summary.json",
        )  # fmt: skip
    finally:
        cam.stop()
    assert rc == 2 and "gave up after 1.0 s" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    n = summary["frames"]
    assert summary["completed"] is False and summary["source_failures"] >= 1 and n >= 1
    assert len((out / "a.jsonl").read_text().splitlines()) == n
    assert len(load_coco_panoptic(out / "coco" / "panoptic.json", out / "coco" / "panoptic").annotations) == n


def test_image_ids_for_files_rules(tmp_path):
    assert image_ids_for_files(["000000000139.jpg", "000000000285.png"]) == {"000000000139.jpg": 139,
                                                                          "000000000285.png": 285}  # fmt: skip
    assert image_ids_for_files(["b.jpg", "a.jpg", "10.jpg"]) == {"10.jpg": 0, "a.jpg": 1, "b.jpg": 2}
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"images": [{"id": "frankfurt_000000_000294", "file_name": "x/f_1.png"},
                                             {"id": 7, "file_name": "f_2.jpg"}]}))  # fmt: skip
    # matched by file name, else by stem; string ids stay strings
    assert image_ids_for_files(["f_1.png", "f_2.png"], images) == {"f_1.png": "frankfurt_000000_000294", "f_2.png": 7}
    found = image_ids_for_files(["f_1.png", "f_3.png"], images, require_all=False)
    assert found == {"f_1.png": "frankfurt_000000_000294"}
    with pytest.raises(ConfigError, match="f_3.png"):
        image_ids_for_files(["f_1.png", "f_3.png"], images)
    with pytest.raises(ConfigError, match="share the stem"):
        image_ids_for_files(["a.jpg", "a.png"])


def test_tracking_stays_available_for_folders_with_track(onnx_bundle, synth_video, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cap = cv2.VideoCapture(str(synth_video))
    for i in range(4):
        cv2.imwrite(str(frames / f"{i:03d}.png"), cap.read()[1])
    out = tmp_path / "a.jsonl"
    assert run_cli("--bundle", onnx_bundle, "--source", frames, "--threshold", "0.01", "--track", "--jsonl", out) == 0
    tracks = [s["track_id"] for line in out.read_text().splitlines() for s in json.loads(line)["segments"]]
    assert any(t is not None for t in tracks)
