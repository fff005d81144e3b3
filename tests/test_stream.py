"""Streaming: sources, the two capture modes, reconnects, the threaded pipeline, tracking."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest
from mjpeg_server import MjpegCamera

from edgeps.errors import DataNotFoundError, InputShapeError, SourceError
from edgeps.panoptic import segments_of
from edgeps.stream.capture import Capture
from edgeps.stream.latest import LatestSlot
from edgeps.stream.sources import CaptureSource, ImageFolderSource, open_source
from edgeps.stream.tracker import Tracker


def test_latest_slot_keeps_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.get(timeout=0.01) is None
    for i in range(5):
        slot.put(i)  # never blocks
    assert slot.get(timeout=0.01) == (5, 4)
    assert slot.dropped == 4
    assert slot.get(timeout=0.01) is None  # nothing new
    slot.put(9)
    slot.close()
    assert slot.get() == (6, 9)  # the last item survives close
    assert slot.get() is None


def test_video_read_in_record_mode_gives_every_frame_in_order(synth_video):
    src = open_source(str(synth_video))
    assert isinstance(src, CaptureSource) and src.kind == "video" and not src.live
    assert src.size == (128, 256) and src.fps == pytest.approx(15.0)
    cap = Capture(src, realtime=False, queue_size=2).start()
    frames = []
    while (f := cap.get()) is not None:
        frames.append(f)
        time.sleep(0.005)  # a consumer slower than the reader: back-pressure, no drops
    cap.stop()
    assert [f.index for f in frames] == list(range(24))
    assert cap.stats.captured == 24 and cap.dropped == 0
    assert all(f.image.shape == (128, 256, 3) and f.image.dtype == np.uint8 for f in frames)
    # the decoded frames are the rendered ones (mp4v is lossy: compare loosely)
    first = next(iter(__import__("edgeps.data.street", fromlist=["render_video"]).render_video(3, (128, 256), 1)))
    assert np.abs(frames[0].image.astype(int) - first.image).mean() < 12


def test_realtime_mode_drops_frames_for_a_slow_consumer_and_never_blocks_the_producer(synth_video):
    cap = Capture(open_source(str(synth_video)), realtime=True).start()
    taken = []
    while (f := cap.get()) is not None:
        taken.append(f.index)
        time.sleep(0.05)  # a consumer far slower than decoding
    cap.stop()
    assert cap.stats.captured == 24  # the reader went through the whole file meanwhile
    assert cap.dropped > 0 and len(taken) + cap.dropped == 24
    assert taken == sorted(taken) and taken[-1] == 23  # newest frames, in order, ending at the last


def test_image_folder_and_glob_sources(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((8, 12, 3), i * 50, np.uint8))
    cv2.imwrite(str(tmp_path / "gray.jpg"), np.zeros((8, 12), np.uint8))
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFolderSource) and len(src.paths) == 4
    values = []
    while (im := src.read()) is not None:
        assert im.shape == (8, 12, 3)
        values.append(int(im[0, 0, 0]))
    assert values == [0, 50, 100, 0]  # name order; the gray jpg is converted to BGR
    assert len(open_source(str(tmp_path / "*.png")).paths) == 3
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "*.tiff"))


def test_sources_that_cannot_open_raise_at_once(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(SourceError, match="notes.mp4.*not a video file"):
        open_source(str(bad))
    with pytest.raises(SourceError, match="cannot open camera"):
        open_source("9")
    with pytest.raises(SourceError, match="rtsp://127.0.0.1:9/x: cannot open stream"):
        open_source("rtsp://127.0.0.1:9/x")


def test_live_source_that_drops_out_is_reopened_then_given_up():
    images = [np.full((48, 64, 3), v, np.uint8) for v in (40, 120, 200)]
    cam = MjpegCamera(images, frames=6).start()
    try:
        src = open_source(cam.url)
        assert src.live and src.kind == "stream"
        # Every connection delivers 6 frames then drops: 15 frames need two reconnects.
        cap = Capture(src, realtime=False, max_frames=15, backoff=(0.05, 0.2)).start()
        got = []
        while (f := cap.get(timeout=20)) is not None:
            got.append(f)
        cap.stop()
        assert len(got) == 15 and cap.stats.reconnects >= 2 and cam.connections >= 3
        assert [f.index for f in got] == list(range(15))

        # The camera goes off the network: reconnects fail until the timeout, then a clear error.
        src = open_source(cam.url)
        cam.stop()
        cap = Capture(src, realtime=True, reconnect_timeout=1.0, backoff=(0.05, 0.2)).start()
        with pytest.raises(SourceError, match="gave up after 1.0 s"):
            while cap.get(timeout=20) is not None:
                pass
        cap.stop()
        assert cap.stats.failures >= 1
    finally:
        cam.stop()


def test_live_source_comes_back_after_an_outage():
    images = [np.full((48, 64, 3), 90, np.uint8)]
    cam = MjpegCamera(images, frames=4).start()
    src = open_source(cam.url)
    cam.stop()
    # bring the camera back on the same port 0.5 s later
    threading.Timer(0.5, cam.start).start()
    cap = Capture(src, realtime=False, max_frames=8, reconnect_timeout=10.0, backoff=(0.1, 0.3)).start()
    got = []
    try:
        while (f := cap.get(timeout=20)) is not None:
            got.append(f)
    finally:
        cap.stop()
        cam.stop()
    assert len(got) == 8 and cap.stats.reconnects >= 1


# ----------------------------------------------------------------------------- tracking
def _renumber(pan: np.ndarray, rng: np.random.Generator, thing_ids: set[int]) -> np.ndarray:
    """The same map with per-frame instance numbers shuffled (what a detector would give)."""
    out = pan.copy()
    for cls in thing_ids:
        ids = [i for i in np.unique(pan).tolist() if i // 1000 == cls and i % 1000]
        for new, old in zip(rng.permutation(len(ids)) + 1, ids):
            out[pan == old] = cls * 1000 + int(new)
    return out


def _synthetic_video_switches(use_frames: bool) -> tuple[int, float]:
    """(id switches, lowest tracked fraction) over four 100-frame videos at 128x256."""
    from edgeps.data.street import render_video
    from edgeps.data.synthetic import SYNTH_CATEGORIES
    from edgeps.metrics.tracking import TrackingAccumulator

    things = set(SYNTH_CATEGORIES.thing_ids)
    size = (128, 256)
    rng = np.random.default_rng(0)
    switches, tracked = 0, 1.0
    for seed in range(1, 5):
        tracker = Tracker(things)
        acc = TrackingAccumulator(things, min_area=int(0.005 * size[0] * size[1]))
        for s in render_video(seed, size, 100):
            pred = _renumber(s.panoptic, rng, things)
            segs = tracker.update(pred, segments_of(pred), s.image if use_frames else None)
            assert all((seg.track_id is not None) == (seg.category_id in things) for seg in segs)
            acc.update(s.panoptic, pred, segs)
        r = acc.summary()
        assert r["frames"] == 100 and r["objects"] >= 10
        switches, tracked = switches + r["id_switches"], min(tracked, r["tracked_fraction"])
    return switches, tracked


def test_tracker_follows_objects_of_the_synthetic_video():
    """Per-frame renumbered ground truth (what a detector gives) through the tracker over four
    synthetic videos, scored against their persistent ids. The synthetic street is hard on a
    frame-to-frame tracker (objects hidden for many frames by passing cars, thin walking
    people, wire-frame bicycles) and this small size (128x256) harder still. With the frames'
    colours the issue's target (<= 2 switches / 100 frames, 8 over these 400) holds."""
    with_frames, tracked = _synthetic_video_switches(True)
    masks_only, _ = _synthetic_video_switches(False)
    assert tracked == 1.0
    # measured (per 400 frames): 5 with the frames' colours, 13 from the masks alone; 49 from
    # the masks alone before the box, colour, occlusion and piece cues
    assert with_frames <= 8
    assert masks_only <= 16
    assert with_frames < masks_only


def test_tracker_keeps_a_car_sliding_behind_an_occluder_to_a_sliver():
    """Car 5001 of synthetic video 12 drives away behind a nearer object: over frames 44-49 it
    shrinks to a strip a few rows high that moves up while the remembered whole car is held
    behind the occluder. The strip overlaps the held car too little; it overlaps what was
    visible of the car the frame before (before that cue it became a new track at frame 49)."""
    from edgeps.data.street import render_video
    from edgeps.data.synthetic import SYNTH_CATEGORIES

    things = set(SYNTH_CATEGORIES.thing_ids)
    tracker, rng, ids = Tracker(things), np.random.default_rng(0), []
    for s in render_video(12, (512, 1024), 51):
        pred = _renumber(s.panoptic, rng, things)
        segs = tracker.update(pred, segments_of(pred), s.image)
        car = set(np.unique(pred[s.panoptic == 5001]).tolist())
        ids += [seg.track_id for seg in segs if seg.id in car]
    assert len(ids) >= 51 and len(set(ids)) == 1


def _ring(pan: np.ndarray, pid: int, cy: int, cx: int, r: int = 14) -> None:
    yy, xx = np.ogrid[: pan.shape[0], : pan.shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    pan[(d >= r - 2) & (d <= r)] = pid


def test_tracker_keeps_a_fast_wire_frame_object():
    """A thin ring moving by more than its line width each frame has no mask overlap from one
    frame to the next: its box carries it (a bicycle near the camera)."""
    tracker = Tracker([7], stride=1)
    ids = []
    for f in range(8):
        pan = np.zeros((80, 200), np.int32)
        _ring(pan, 7001, 40, 30 + 12 * f)
        ids.append(tracker.update(pan, segments_of(pan))[-1].track_id)
    assert len(set(ids)) == 1


def test_tracker_remembers_an_object_through_an_occlusion():
    """A car hidden to a sliver for three frames by a group of people keeps its id when it
    comes out (the sliver alone would not lead back to the whole car)."""
    tracker = Tracker([5, 6], stride=1)
    ids = []
    for f in range(8):
        pan = np.zeros((60, 160), np.int32)
        pan[20:40, 40 + 2 * f : 70 + 2 * f] = 5001  # the car behind, moving right
        if 2 <= f <= 4:
            pan[15:45, 38 + 2 * f : 68 + 2 * f] = 6001  # people passing in front, leaving a sliver
            pan[20:40, 68 + 2 * f : 70 + 2 * f] = 5001
        segs = tracker.update(pan, segments_of(pan))
        ids.append(next(s.track_id for s in segs if s.id == 5001))
    assert len(set(ids)) == 1


def test_tracker_colour_keeps_crossing_objects_apart():
    """Two people of one class, side by side, swap places between two frames (a jump, e.g.
    dropped frames): the masks alone say nobody moved; the frame's colours say who is who."""
    tracker, masks_only = Tracker([6], stride=1), Tracker([6], stride=1)
    img = np.zeros((40, 100, 3), np.uint8)
    got, swapped = [], []
    for f in range(4):
        pan = np.zeros((40, 100), np.int32)
        left, right = (6001, 6002) if f < 2 else (6002, 6001)
        pan[0:40, 30:42], pan[0:40, 42:54] = left, right
        img[:] = 0
        img[pan == 6001] = (200, 30, 30)  # blue shirt
        img[pan == 6002] = (30, 30, 200)  # red shirt
        segs = tracker.update(pan, segments_of(pan), img)
        got.append({s.id: s.track_id for s in segs})
        blind = masks_only.update(pan, segments_of(pan))
        swapped.append({s.id: s.track_id for s in blind})
    assert all(g == got[0] for g in got)
    assert swapped[2] != swapped[0]  # without the frames the ids follow the places


def test_tracker_recognises_a_hidden_object_by_colour_where_it_comes_out():
    """A red car hidden for three frames comes out below and beside where it was predicted (it
    was approaching behind a person): too far for the distance pass, near enough and the same
    colours for the lost track to take it. A blue car coming out there instead is new."""

    def run(colour: tuple[int, int, int], **kw: float) -> list[int]:
        tracker, ids = Tracker([5], stride=1, **kw), []
        for f, box in enumerate([(20, 40), (20, 40), None, None, None, (40, 80)]):
            pan, img = np.zeros((100, 200), np.int32), np.full((100, 200, 3), 90, np.uint8)
            if box:
                pan[box[0] : box[0] + 20, box[1] : box[1] + 20] = 5001
                img[pan == 5001] = (40, 40, 220) if f < 2 else colour
            ids += [s.track_id for s in tracker.update(pan, segments_of(pan), img) if s.category_id == 5]
        return ids

    assert run((40, 40, 220)) == [1, 1, 1]  # 45 px away: 2.2x its size of 20 px
    assert run((40, 40, 220), reid_colour=1.0) == [1, 1, 2]  # the colour pass off
    assert run((220, 40, 40)) == [1, 1, 2]  # another car


def test_tracker_gives_the_pieces_of_a_split_object_one_id():
    """A car seen whole, then split by the model into two segments whose border jumps from
    frame to frame (the pieces' own IoU with their last masks collapses), keeps one track id
    on both pieces, and the tracking score sees the union: matched every frame, no switch."""
    from edgeps.metrics.tracking import TrackingAccumulator

    tracker = Tracker([5], stride=1)
    acc = TrackingAccumulator([5])
    for f in range(8):
        x0 = 20 + 3 * f
        gt = np.zeros((40, 120), np.int32)
        gt[10:30, x0 : x0 + 40] = 5001
        pan = np.zeros_like(gt)
        cut = x0 + (30 if f % 2 else 10)  # the split jumps between a quarter and three
        pan[10:30, x0:cut], pan[10:30, cut : x0 + 40] = 5001, 5002 if f else 5001
        segs = tracker.update(pan, segments_of(pan))
        if f:
            assert segs[1].track_id == segs[2].track_id  # segs[0] is the background
        acc.update(gt, pan, segs)
    assert acc.summary()["id_switches"] == 0 and acc.summary()["tracked_fraction"] == 1.0


def test_tracking_score_matches_a_track_by_the_union_of_its_segments():
    """One id on two different cars must not save switches: the union of the two matches
    neither car, so both are lost; distinct ids match both."""
    from edgeps.metrics.tracking import TrackingAccumulator

    gt = np.zeros((20, 60), np.int32)
    gt[5:15, 5:25], gt[5:15, 35:55] = 5001, 5002
    one_id = segments_of(gt)
    for s in one_id:
        s.track_id = 7 if s.category_id == 5 else None
    acc = TrackingAccumulator([5])
    acc.update(gt, gt, one_id)
    assert acc.summary()["tracked_fraction"] == 0.0
    two_ids = segments_of(gt)
    for s in two_ids:
        s.track_id = s.id if s.category_id == 5 else None
    acc = TrackingAccumulator([5])
    acc.update(gt, gt, two_ids)
    assert acc.summary()["tracked_fraction"] == 1.0


def test_tracker_rejects_a_frame_of_another_size():
    tracker = Tracker([6])
    pan = np.zeros((40, 100), np.int32)
    with pytest.raises(InputShapeError, match=r"image: expected uint8 \(H, W, 3\).*\(40, 100\)"):
        tracker.update(pan, segments_of(pan), np.zeros((20, 50, 3), np.uint8))


def test_tracker_scripted_sequence_moves_appears_disappears():
    def frame(objs: dict[int, tuple[int, int]]) -> np.ndarray:
        pan = np.full((60, 100), 1000, np.int32)  # stuff class 1
        for pid, (y, x) in objs.items():
            pan[y : y + 12, x : x + 12] = pid
        return pan

    tracker = Tracker([11, 12], max_age=3)
    seqs = [
        {11001: (5, 5), 11002: (30, 60)},
        {11002: (6, 8), 11001: (30, 63)},  # numbering swapped between frames: tracks follow the masks
        {11001: (7, 11), 11002: (30, 66), 12001: (40, 10)},  # a new object of another class
        {11001: (8, 14)},  # the car at (30, 66) is missed for one frame
        {11001: (9, 17), 11002: (30, 69)},  # ... and comes back with its old id
    ]
    got = []
    for objs in seqs:
        pan = frame(objs)
        got.append(
            {(s.bbox[1] // 20, s.category_id): s.track_id for s in tracker.update(pan, segments_of(pan)) if s.track_id}
        )
    top, bottom = got[0][(0, 11)], got[0][(1, 11)]
    assert top != bottom
    assert all(g[(0, 11)] == top for g in got)
    assert [g.get((1, 11)) for g in got] == [bottom, bottom, bottom, None, bottom]
    assert got[2][(2, 12)] not in (top, bottom)
    # a different class never continues a track, however much it overlaps
    pan = frame({12001: (9, 17)})
    (seg,) = [s for s in tracker.update(pan, segments_of(pan)) if s.track_id]
    assert seg.track_id not in (top, bottom)


def _box(pan: np.ndarray, img: np.ndarray, pid: int, y: int, x: int, h: int, w: int, colour: tuple) -> None:
    """Draw a (h, w) box of id ``pid`` and ``colour`` at (y, x), clipped to the frame (drawn over what is there)."""
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, pan.shape[0]), min(x + w, pan.shape[1])
    if y0 < y1 and x0 < x1:
        pan[y0:y1, x0:x1] = pid
        img[y0:y1, x0:x1] = colour


def test_tracker_keeps_an_object_hidden_behind_another_for_many_frames():
    """A van drives in front of a parked red car, stops there for 15 frames and drives on (the
    car is out of sight for over twice ``max_age``): the van, still in view over the car's remembered mask, keeps the
    car's track alive (``hidden_age``) and the car gets its id back. Without that rule it comes
    back as a new track."""

    def run(**kw: int) -> tuple[list[int], int]:
        tracker, ids, hidden = Tracker([5], stride=1, **kw), [], 0
        for f in range(60):
            van_x = -140 + 10 * min(f, 20) + 10 * max(f - 35, 0)  # in, parked over the car, out
            pan, img = np.zeros((80, 320), np.int32), np.full((80, 320, 3), 90, np.uint8)
            _box(pan, img, 5001, 30, 100, 20, 30, (40, 40, 220))  # the car, behind
            _box(pan, img, 5002, 10, van_x, 60, 130, (60, 160, 60))  # the van, nearer
            segs = tracker.update(pan, segments_of(pan), img)
            car = [s.track_id for s in segs if s.id == 5001]
            hidden += not car
            ids += car
        return ids, hidden

    ids, hidden = run()
    assert hidden > 2 * Tracker([5]).settings.max_age
    assert len(ids) > 20 and len(set(ids)) == 1
    ids, _ = run(hidden_age=10)  # the rule off: forgotten behind the van
    assert len(set(ids)) == 2


def test_tracker_two_look_alikes_crossing_keep_their_ids():
    """Two people in the same blue shirt walk towards each other at one height and cross: the
    nearer hides the farther for a few frames. Colours cannot tell them apart; their motion
    does, and each keeps its id on its own side after the crossing."""
    tracker = Tracker([6], stride=1)
    got = []
    for f in range(40):
        pan, img = np.zeros((60, 260), np.int32), np.full((60, 260, 3), 90, np.uint8)
        _box(pan, img, 6002, 12, 200 - 4 * f, 40, 14, (200, 60, 30))  # farther, walking left
        _box(pan, img, 6001, 10, 40 + 4 * f, 44, 14, (200, 60, 30))  # nearer, walking right
        segs = tracker.update(pan, segments_of(pan), img)
        got.append({s.id: s.track_id for s in segs if s.category_id == 6})
    right, left = got[0][6001], got[0][6002]
    assert right != left
    assert all(g.get(6001) == right for g in got)
    assert all(g.get(6002, left) == left for g in got)
    assert sum(6002 not in g for g in got) >= 1  # the farther one was wholly hidden


def test_tracker_young_track_that_matches_a_lost_one_takes_its_id():
    """A car unseen for three frames comes back away from where it was predicted, showing first
    only its dark underside (too unlike its colours: a new track), then its lower half for two
    frames (which continues the new track), then whole. Once it shows its colours, the young track matches
    the lost car by colour and position and takes its id (``adopt_frames``); with the rule off
    the car keeps the new id."""

    def run(**kw: int) -> list[int]:
        tracker, ids = Tracker([5], stride=1, **kw), []
        for f in range(11):
            pan, img = np.zeros((100, 200), np.int32), np.full((100, 200, 3), 90, np.uint8)
            y, x = (20, 40) if f < 4 else (45, 60)
            rows = {4: 0, 5: 0, 6: 0, 7: 3, 8: 10, 9: 10}.get(f, 20)  # unseen, its underside, its lower half
            if rows:  # a red body over a dark underside, its lower ``rows`` rows in view
                _box(pan, img, 5001, y + 20 - rows, x, rows, 30, (40, 40, 220))
                _box(pan, img, 5001, y + 17, x, 3, 30, (20, 20, 20))
            ids += [s.track_id for s in tracker.update(pan, segments_of(pan), img) if s.category_id == 5]
        return ids

    assert run() == [1, 1, 1, 1, 2, 1, 1, 1]
    assert run(adopt_frames=0) == [1, 1, 1, 1, 2, 2, 2, 2]


def test_tracker_settings_live_in_one_place():
    """Every rule's threshold is a field of TrackerSettings; a keyword overrides it, an unknown
    name is an error."""
    from edgeps.stream.tracker import TrackerSettings

    assert Tracker([5]).settings == TrackerSettings()
    assert Tracker([5], max_age=3).settings.max_age == 3
    assert Tracker([5], settings=TrackerSettings(max_age=4), hidden_age=5).settings == TrackerSettings(
        max_age=4, hidden_age=5
    )
    with pytest.raises(TypeError):
        Tracker([5], no_such_rule=1)


# ----------------------------------------------------------------------------- pipeline + CLI
def test_pipeline_record_mode_processes_every_frame_with_tracks(onnx_bundle, synth_video):
    from edgeps.runtimes import load
    from edgeps.stream.pipeline import StreamPipeline

    rt = load(onnx_bundle, threads=1)
    pipe = StreamPipeline(rt, open_source(str(synth_video)), tracker=Tracker(rt.thing_ids))
    items = list(pipe)
    s = pipe.summary()
    assert [it.frame.index for it in items] == list(range(24))
    assert s["frames"] == s["captured"] == 24 and s["dropped"] == 0 and s["mode"] == "record"
    for it in items:
        assert it.result.panoptic.shape == (128, 256)
        assert set(it.result.timings) == {"preprocess", "infer", "postprocess", "track"}
        assert it.latency_ms > 0
    # the pipeline gives the same maps as predict() frame by frame
    ref = rt.predict(cv2.VideoCapture(str(synth_video)).read()[1])
    assert np.array_equal(items[0].result.panoptic, ref.panoptic)
    assert set(s["stages_ms"]) == {"preprocess", "infer", "postprocess", "track"}
    assert pipe.queue_depths() == [0, 0, 0]  # drained: nothing left behind in any stage's queue


def test_pipeline_realtime_mode_drops_for_a_slow_consumer(onnx_bundle, synth_video):
    from edgeps.runtimes import load
    from edgeps.stream.pipeline import StreamPipeline

    pipe = StreamPipeline(load(onnx_bundle, threads=1), open_source(str(synth_video)), realtime=True)
    n = 0
    for _ in pipe:
        n += 1
        time.sleep(0.1)
    s = pipe.summary()
    assert s["captured"] == 24 and s["dropped"] > 0 and n < 24
    # every captured frame was either processed, dropped at the slot, or in flight when the file ended
    assert n + s["dropped"] <= 24


def test_run_command_writes_video_jsonl_and_coco(onnx_bundle, synth_video, tmp_path, capsys):
    from edgeps.apps.cli import main
    from edgeps.io.coco_panoptic import load_coco_panoptic

    out = tmp_path / "run"
    rc = main(
        [
            "run",
            "--bundle",
            str(onnx_bundle),
            "--source",
            str(synth_video),
            "--max-frames",
            "6",
            "--threshold",
            "0.01",
            "--save",
            str(out / "a.mp4"),
            "--jsonl",
            str(out / "a.jsonl"),
            "--coco-dir",
            str(out / "coco"),
            "--summary-json",
            str(out / "summary.json"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "6 frames (6 captured, 0 dropped" in text and "end-to-end" in text
    cap = cv2.VideoCapture(str(out / "a.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6 and cap.read()[1].shape == (128, 256, 3)
    lines = [json.loads(x) for x in (out / "a.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(6))
    segs = [seg for r in lines for seg in r["segments"]]
    assert segs, "the tiny model found no segment in 6 frames"
    seg = segs[0]
    assert {"id", "category_id", "class", "area", "bbox", "centroid", "score", "track_id"} <= set(seg)
    coco = load_coco_panoptic(out / "coco" / "panoptic.json", out / "coco" / "panoptic")
    assert len(coco.annotations) == 6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["threads"] >= 1
    assert not list(out.glob(".*tmp*"))  # temporary files were renamed into place


def test_run_show_without_gui_is_a_clear_error(onnx_bundle, synth_video, capsys):
    from edgeps.apps.cli import main
    from edgeps.apps.consumers import has_gui

    if has_gui():
        pytest.skip("this OpenCV build has GUI support (a software condition: CI installs the headless build)")
    rc = main(["run", "--bundle", str(onnx_bundle), "--source", str(synth_video), "--show", "--max-frames", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--show" in err and "GUI" in err and len(err.strip().splitlines()) == 1


def test_run_with_a_missing_source_exits_2_with_one_line(onnx_bundle, tmp_path, capsys):
    from edgeps.apps.cli import main

    rc = main(["run", "--bundle", str(onnx_bundle), "--source", str(tmp_path / "none.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and "none.mp4" in err and len(err.strip().splitlines()) == 1


def test_annotated_frame_status_line_defaults_to_live_figures_and_can_be_replaced():
    """The demo draws its picture in a pass slowed by scoring: it replaces the live FPS line
    with the timed pass's figure; everything above the status bar stays the same."""
    from edgeps.apps.consumers import annotate, live_status
    from edgeps.categories import Categories
    from edgeps.result import PanopticResult
    from edgeps.stream.pipeline import StreamItem
    from edgeps.stream.sources import Frame

    cats = Categories.from_list(
        [
            {"id": 0, "name": "road", "isthing": 0, "color": [128, 64, 128]},
            {"id": 1, "name": "car", "isthing": 1, "color": [0, 0, 142]},
        ]
    )
    pan = np.zeros((96, 192), np.int32)
    pan[20:60, 40:100] = 1001
    item = StreamItem(
        Frame(3, np.full((96, 192, 3), 90, np.uint8), 0.0), PanopticResult(pan, segments_of(pan, 1000, -1)), 40.0, 12.5
    )
    assert live_status(item) == " 12.5 FPS     40 ms  frame 3"
    live = annotate(item, cats, 1000, -1)
    timed = annotate(item, cats, 1000, -1, lambda it: f"37.6 FPS (timed stream)  frame {it.frame.index}")
    assert live.shape == timed.shape == (96, 192, 3)
    assert np.array_equal(live[:-22], timed[:-22]) and not np.array_equal(live[-22:], timed[-22:])
