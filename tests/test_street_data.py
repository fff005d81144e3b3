"""The procedural street scenes: determinism, any size, valid ids, synth:val's promised
statistics, and the video's persistent ids (in memory and through ``edgeps data synth --video``)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.apps.cli import main
from edgeps.data.datasets import SynthDataset
from edgeps.data.stats import dataset_stats
from edgeps.data.street import (
    DEFAULT_N_THINGS,
    MIN_INSTANCE_FRACTION,
    SYNTH_TRAIN_SEED_MAX,
    SYNTH_VAL_COUNT,
    SYNTH_VAL_SEED_BASE,
    SYNTH_VAL_SIZE,
    render_scene,
    render_video,
    synth_val_seeds,
)
from edgeps.data.synthetic import SYNTH_CATEGORIES
from edgeps.errors import ConfigError
from edgeps.io.coco_panoptic import read_id_png

THINGS = SYNTH_CATEGORIES.thing_ids


def _check_ids(pan: np.ndarray) -> None:
    """Every pixel is a known class with a valid instance; void only for dropped slivers."""
    h, w = pan.shape
    void = pan == VOID_LABEL
    cls, inst = pan // LABEL_DIVISOR, pan % LABEL_DIVISOR
    assert set(np.unique(cls[~void]).tolist()) <= set(SYNTH_CATEGORIES.ids)
    is_thing = np.isin(cls, THINGS) & ~void
    assert np.all(inst[~void & ~is_thing] == 0), "stuff must have instance 0"
    assert np.all(inst[is_thing] >= 1), "things must have instance >= 1"
    min_px = max(2, math.ceil(MIN_INSTANCE_FRACTION * h * w))
    # Void only comes from instances below the minimum area, at most one per placed thing.
    assert void.sum() < DEFAULT_N_THINGS[1] * min_px
    ids, counts = np.unique(pan[is_thing], return_counts=True)
    assert np.all(counts >= min_px)
    for c in THINGS:
        numbers = sorted(int(i) % LABEL_DIVISOR for i in ids if i // LABEL_DIVISOR == c)
        assert numbers == list(range(1, len(numbers) + 1)), f"class {c}: instances not numbered 1..k"


def test_same_seed_same_arrays_different_seed_differs() -> None:
    a, b, c = render_scene(5, (64, 96)), render_scene(5, (64, 96)), render_scene(6, (64, 96))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.panoptic, b.panoptic)
    assert a.occlusion == b.occlusion and a.seed == 5
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.panoptic, c.panoptic)


@pytest.mark.parametrize("size", [(64, 96), (257, 333), (512, 1024), (300, 200)])
def test_any_resolution_gives_valid_ids(size: tuple[int, int]) -> None:
    s = render_scene(11, size)
    assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
    assert s.panoptic.shape == size and s.panoptic.dtype == np.int32
    _check_ids(s.panoptic)
    classes = set(np.unique(s.panoptic[s.panoptic >= 0] // LABEL_DIVISOR).tolist())
    assert {0, 4} <= classes and classes & set(THINGS), f"a street needs road, sky and things: {classes}"


def test_ids_valid_over_many_small_scenes() -> None:
    for seed in range(30):
        _check_ids(render_scene(seed, (96, 160)).panoptic)


def test_no_things_means_stuff_only_and_no_void() -> None:
    s = render_scene(3, (80, 120), n_things=(0, 0))
    assert s.panoptic.min() >= 0 and np.all(s.panoptic % LABEL_DIVISOR == 0)
    assert not s.occlusion


@pytest.mark.parametrize("kw", [{"size": (8, 100)}, {"size": (100,)}, {"size": (64, 64), "n_things": (5, 2)}])
def test_bad_arguments_are_config_errors(kw: dict) -> None:
    with pytest.raises(ConfigError):
        render_scene(0, **kw)


def test_synth_val_definition_is_frozen() -> None:
    assert (SYNTH_VAL_SEED_BASE, SYNTH_VAL_COUNT, SYNTH_VAL_SIZE, SYNTH_TRAIN_SEED_MAX) == (
        1_000_000,
        200,
        (512, 1024),
        1_000_000,
    )
    assert synth_val_seeds() == range(1_000_000, 1_000_200)


def test_synth_val_statistics_on_40_scenes() -> None:
    """synth:val promises busy scenes: >= 30 % thing pixels, occlusion in >= half the images."""
    stats = dataset_stats(SynthDataset("val", n=40))
    assert stats["occlusion_exact"]
    assert stats["thing_fraction"] >= 0.30, stats
    assert stats["occlusion_fraction"] >= 0.5, stats
    assert stats["instances_per_image"] >= 5, stats


def test_stats_command_prints_the_properties(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", "--data", "synth:val:2"]) == 0
    out = capsys.readouterr().out
    assert "thing pixels" in out and "occlusion" in out and "instances per image" in out


def _video_ids(frames: list) -> list[set[int]]:
    return [set(np.unique(f.panoptic[np.isin(f.panoptic // LABEL_DIVISOR, THINGS)]).tolist()) for f in frames]


def test_video_is_deterministic_and_keeps_ids() -> None:
    size = (96, 160)
    frames = list(render_video(21, size, 60))
    again = list(render_video(21, size, 5))
    for a, b in zip(frames, again):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.panoptic, b.panoptic)
    assert [f.frame for f in frames] == list(range(60))
    ids = _video_ids(frames)
    for f in frames:
        pan = f.panoptic
        assert pan.shape == size and f.image.shape == (*size, 3)
        things = np.isin(pan // LABEL_DIVISOR, THINGS)
        assert np.all((pan[things] % LABEL_DIVISOR >= 1) & (pan[things] % LABEL_DIVISOR < LABEL_DIVISOR))
    # Objects enter and leave: the id set changes over the video.
    assert ids[0] != ids[-1]
    assert set().union(*ids[1:]) - ids[0], "no object entered"
    assert ids[0] - ids[-1], "no object left"
    # An id seen in consecutive frames is the same object: its centroid moves a little.
    moves = []
    for f0, f1, common in zip(frames, frames[1:], (a & b for a, b in zip(ids, ids[1:]))):
        for pid in common:
            y0, x0 = np.argwhere(f0.panoptic == pid).mean(axis=0)
            y1, x1 = np.argwhere(f1.panoptic == pid).mean(axis=0)
            moves.append(math.hypot(y1 - y0, x1 - x0))
    assert len(moves) > 100
    assert np.median(moves) < 0.03 * size[1], np.median(moves)


def test_video_occludes_and_pans() -> None:
    frames = list(render_video(4, (96, 160), 40))
    assert sum(f.occlusion for f in frames) >= 20
    sky_cols = [np.flatnonzero((f.panoptic[5] // LABEL_DIVISOR) == 4) for f in frames]
    assert any(not np.array_equal(a, b) for a, b in zip(sky_cols, sky_cols[1:]))  # the skyline scrolls


def test_data_synth_video_writes_mp4_and_persistent_gt(tmp_path) -> None:
    out = tmp_path / "clip.mp4"
    size, n = (96, 128), 12
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(tmp_path / "set"),
                "--n",
                "0",
                "--size",
                "96x128",
                "--seed",
                "9",
                "--video",
                str(out),
                "--frames",
                str(n),
            ]
        )
        == 0
    )
    assert out.is_file() and not (tmp_path / "clip.tmp.mp4").exists()
    cap = cv2.VideoCapture(str(out))
    read = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        read.append(frame)
    cap.release()
    assert len(read) == n and all(f.shape == (*size, 3) for f in read)
    gt = tmp_path / "clip_gt"
    data = json.loads((gt / "panoptic.json").read_text())
    assert [a["file_name"] for a in data["annotations"]] == [f"{i:06d}.png" for i in range(n)]
    expected = list(render_video(9, size, n))
    for ann, s in zip(data["annotations"], expected):
        ids = read_id_png(gt / "panoptic" / ann["file_name"]).astype(np.int64)
        np.testing.assert_array_equal(ids, np.where(s.panoptic < 0, 0, s.panoptic.astype(np.int64) + 1))
        # The segment id is the persistent panoptic id + 1, in every frame.
        for seg in ann["segments_info"]:
            assert seg["category_id"] == (seg["id"] - 1) // LABEL_DIVISOR
    per_frame = [{seg["id"] for seg in a["segments_info"] if seg["category_id"] in THINGS} for a in data["annotations"]]
    assert per_frame[0] & per_frame[-1], "some object should be visible at both ends with the same id"
    # The stored frames look like the rendered ones (mp4v is lossy).
    diff = np.abs(read[0].astype(np.int16) - expected[0].image.astype(np.int16)).mean()
    assert diff < 20, diff


def test_video_needs_an_mp4_path(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--out", str(tmp_path), "--n", "0", "--video", str(tmp_path / "x.avi")]) == 2
    assert "--video" in capsys.readouterr().err
