"""The node as robots deploy it, on a real graph: two cameras in one node (one raw, one
compressed), started with a params file that omits ``qos``, watched on /diagnostics.

The node (``edgeps ros2 --params``, its own process) serves ``/front/image_raw``
(sensor_msgs/Image) and ``/rear/image_raw/compressed`` (sensor_msgs/CompressedImage, chosen by
``input_transport: auto`` from the name) with one model; outputs go to ``~/front/...`` and
``~/rear/...``. Expected answers are ``rt.predict`` of the same bundle on the same (decoded)
frames, and track ids those of a fresh :class:`~edgeps.stream.tracker.Tracker` per camera.

The tests share the node and run in file order: the two-camera test first, while both trackers
are fresh; the /diagnostics test last, since it lets the input stop.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import cv2
import numpy as np
import pytest
from rosgraph import (
    BEST_EFFORT,
    FRAME_HW,
    NODE,
    OUTPUTS,
    RELIABLE,
    Client,
    NodeProcess,
    compressed_msg,
    image_msg,
    stamp_of,
    wait_until,
)
from sensor_msgs.msg import CompressedImage, Image

from edgeps.data.street import render_video
from edgeps.stream.ros_image import image_msg_to_array

FRONT = "/front/image_raw"
REAR = "/rear/image_raw/compressed"
CAMERAS = ("front", "rear")
NO_FRAME_ERROR_S = 3.0


def outs(cam: str) -> tuple[str, ...]:
    return tuple(f"{cam}/{o}" for o in OUTPUTS)


def as_array(msg: Image) -> np.ndarray:
    return image_msg_to_array(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def png(bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", bgr)
    assert ok
    return buf.tobytes()


def jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [s.image for s in render_video(5, FRAME_HW, 16)]


@pytest.fixture(scope="module")
def reference(ros2_bundle, frames):
    """The same bundle in this process, same threads and center threshold as the node: the
    expected answers. The tiny model's center heatmap is weak (its bundle threshold finds no
    instance at all), so both use 0.7 x the median of the frames' heatmap peaks: real thing
    segments, so the per-camera track ids are tested on something."""
    from edgeps.runtimes import load

    rt = load(ros2_bundle, threads=1)
    peaks = [float(rt.infer(rt.preprocess(f))["center"].max()) for f in frames]
    rt.set_postprocess(threshold=round(0.7 * float(np.median(peaks)), 4))
    return rt


@pytest.fixture(scope="module")
def cams(ros_domain, ros2_bundle, reference, tmp_path_factory):
    params = {
        "bundle": str(ros2_bundle),
        "threshold": reference.manifest.postprocess.threshold,
        "image_topics": [FRONT, REAR],
        "threads": 1,
        "publish_overlay": False,
        "semantic_encoding": "mono16",
        "no_frame_error_s": NO_FRAME_ERROR_S,
    }
    assert "qos" not in params and "input_transport" not in params  # the defaults are under test
    node = NodeProcess(params, tmp_path_factory.mktemp("cams"))
    client = Client(in_topic=None, name="edgeps_test_cameras", cameras=CAMERAS)
    client.subscribe_diagnostics()
    state: dict[str, Any] = {
        "node": node,
        "client": client,
        "front": client.publisher(Image, FRONT, RELIABLE),
        "front_best_effort": client.publisher(Image, FRONT, BEST_EFFORT),
        "rear": client.publisher(CompressedImage, REAR, RELIABLE),
        "rejected": 0,
    }
    try:
        wait_until(
            lambda: (
                (
                    state["front"].get_subscription_count() > 0
                    and state["rear"].get_subscription_count() > 0
                    and client.outputs_matched()
                )
                or node.proc.poll() is not None
            ),
            "the node to subscribe to both cameras and publish their outputs",
        )
        assert node.proc.poll() is None, f"node exited early:\n{node.log()}"
        # Discovery is per side: the first frames may be lost until the node's side has matched
        # too. Send a blank frame per camera until one is answered; the two-camera test mirrors
        # every answered one in its reference trackers.
        blank = np.zeros((*FRAME_HW, 3), np.uint8)
        make = {
            "front": lambda a: image_msg(blank, "bgr8", 1_000 * 10**9 + a, frame_id="front_camera"),
            "rear": lambda a: compressed_msg(png(blank), "png", 2_000 * 10**9 + a, "rear_camera"),
        }
        for cam in CAMERAS:
            client.send_until_answered(make[cam], state[cam], outs(cam))
        time.sleep(1.0)  # a late answer to an earlier attempt still counts
        state["warmup"] = {
            cam: sum(1 for stamp in client.got[f"{cam}/segments"] if stamp < 3_000 * 10**9) for cam in CAMERAS
        }
        state["blank"] = blank
        yield state
    finally:
        node.kill()
        client.close()


def check_outputs(client: Client, cam: str, stamp: int, frame_id: str, expected, hw=FRAME_HW) -> dict:
    """Panoptic and semantic equal ``expected`` (an rt.predict result), each with the input's
    stamp and frame_id; returns the segments JSON."""
    pan_msg = client.got[f"{cam}/panoptic"][stamp][1]
    sem_msg = client.got[f"{cam}/semantic"][stamp][1]
    for msg in (pan_msg, sem_msg):
        assert (msg.header.frame_id, stamp_of(msg), msg.height, msg.width) == (frame_id, stamp, *hw)
    assert (pan_msg.encoding, sem_msg.encoding) == ("32SC1", "mono16")
    pan = as_array(pan_msg)
    np.testing.assert_array_equal(pan, expected.panoptic)
    np.testing.assert_array_equal(as_array(sem_msg), np.where(pan == -1, 65535, pan // 1000))
    seg = json.loads(client.got[f"{cam}/segments"][stamp][1].data)
    assert (seg["frame_id"], seg["height"], seg["width"]) == (frame_id, *hw)
    assert {s["id"] for s in seg["segments"]} == {s.id for s in expected.segments}
    return seg


def test_two_cameras_in_one_node_keep_their_headers_outputs_and_trackers(cams, reference, frames):
    """Frames sent to both cameras at once; each answer carries its own input's header, equals
    rt.predict, and its track ids are those of a tracker that saw only that camera's frames."""
    from edgeps.stream.tracker import Tracker

    client = cams["client"]
    post = reference.manifest.postprocess
    trackers = {}
    for cam in CAMERAS:
        trackers[cam] = Tracker(reference.manifest.categories.thing_ids, label_divisor=post.label_divisor)
        for _ in range(cams["warmup"][cam]):  # what the node's tracker of this camera saw so far
            r = reference.predict(cams["blank"])
            trackers[cam].update(r.panoptic, r.segments, cams["blank"])
    tracked = dict.fromkeys(CAMERAS, 0)
    order = {"front": list(range(8)), "rear": list(range(15, 7, -1))}  # different scenes per camera
    for i in range(8):
        sent = {}
        for cam in CAMERAS:
            bgr = frames[order[cam][i]]
            stamp = (10_000 if cam == "front" else 20_000) * 10**9 + i
            frame_id = f"{cam}_camera"
            if cam == "front":
                cams["front"].publish(image_msg(bgr, "bgr8", stamp, frame_id=frame_id))
            else:
                cams["rear"].publish(compressed_msg(png(bgr), "bgr8; png compressed bgr8", stamp, frame_id))
            sent[cam] = (stamp, frame_id, bgr)
        client.wait(lambda s=sent: all(client.answered(s[c][0], outs(c)) for c in CAMERAS), f"frame {i} of both")
        for cam, (stamp, frame_id, bgr) in sent.items():
            expected = reference.predict(bgr)
            trackers[cam].update(expected.panoptic, expected.segments, bgr)
            seg = check_outputs(client, cam, stamp, frame_id, expected)
            got_tracks = {s["id"]: s["track_id"] for s in seg["segments"]}
            assert got_tracks == {s.id: s.track_id for s in expected.segments}, f"{cam} frame {i}"
            tracked[cam] += sum(t is not None for t in got_tracks.values())
    assert all(tracked.values()), f"no tracked segment on some camera, the check above says nothing: {tracked}"
    assert "qos sensor_data" in cams["node"].log()


def test_default_qos_answers_reliable_and_best_effort_publishers(cams, frames):
    """The params file has no ``qos``: the best-effort default hears both kinds of publisher
    (a reliable subscription would never match the best-effort one)."""
    client = cams["client"]
    for k, key in enumerate(("front_best_effort", "front")):
        stamp = client.send_until_answered(
            lambda a, k=k, key=key: image_msg(frames[k], "bgr8", (30_000 + k) * 10**9 + a, frame_id=key),
            cams[key],
            outs("front"),
        )
        assert client.got["front/panoptic"][stamp][1].header.frame_id == key


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_compressed_frames_are_decoded_like_opencv_and_predicted(cams, reference, frames, codec):
    client = cams["client"]
    bgr = cv2.resize(frames[3], (200, 120), interpolation=cv2.INTER_AREA)  # not the raw camera's size
    data = jpeg(bgr) if codec == "jpeg" else png(bgr)
    stamp = (40_000 if codec == "jpeg" else 41_000) * 10**9
    client.send(
        compressed_msg(data, f"rgb8; {codec} compressed bgr8", stamp, "rear_camera"), outs("rear"), cams["rear"]
    )
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # JPEG is lossy: predict what was sent
    if codec == "png":
        np.testing.assert_array_equal(decoded, bgr)
    check_outputs(client, "rear", stamp, "rear_camera", reference.predict(decoded), hw=(120, 200))


def test_corrupt_compressed_frames_are_dropped_logged_once_and_the_node_keeps_answering(cams, reference, frames):
    client, node = cams["client"], cams["node"]
    good = jpeg(frames[4])
    bad = {
        50_000: good[: len(good) // 2],  # truncated: libjpeg would fill the rest with grey
        50_001: b"\x00\x01 not an image at all",
        50_002: b"",
    }
    for k, data in bad.items():
        cams["rear"].publish(compressed_msg(data, "jpeg", k * 10**9, "rear_camera"))
        time.sleep(0.3)  # one at a time through the latest-frame slot
    wait_until(lambda: "data: empty compressed image" in node.log(), "the error log for the empty frame")
    for _ in range(3):  # the same error again, within the throttle period: not logged again
        cams["rear"].publish(compressed_msg(bad[50_000], "jpeg", 50_003 * 10**9, "rear_camera"))
        time.sleep(0.2)
    stamp = 51_000 * 10**9
    client.send(compressed_msg(good, "jpeg", stamp, "rear_camera"), outs("rear"), cams["rear"])
    check_outputs(
        client, "rear", stamp, "rear_camera", reference.predict(cv2.imdecode(np.frombuffer(good, np.uint8), 1))
    )
    log = node.log()
    assert log.count("truncated JPEG, no end-of-image marker (format 'jpeg')") == 1, log[-3000:]
    assert "data: neither JPEG nor PNG (first bytes 0001206e)" in log
    assert f"{REAR}: dropped a frame (stamp 50000.000000000)" in log
    for k in (50_000, 50_001, 50_002, 50_003):
        assert all(k * 10**9 not in client.got[o] for o in outs("rear"))
    time.sleep(5.2)  # past the throttle period: the next one is logged, with the count of those held back
    cams["rear"].publish(compressed_msg(bad[50_000], "jpeg", 50_004 * 10**9, "rear_camera"))
    wait_until(lambda: node.log().count("truncated JPEG") == 2, "the throttled error to be logged again")
    assert re.search(r"truncated JPEG, no end-of-image marker \(format 'jpeg'\) \([1-3] more like it", node.log())
    assert node.proc.poll() is None


def _statuses(msg) -> dict[str, Any]:
    return {
        s.name: {"level": s.level, "message": s.message, "hw": s.hardware_id, **{kv.key: kv.value for kv in s.values}}
        for s in msg.status
    }


def test_diagnostics_report_rates_latencies_and_levels(cams, frames):
    """While frames flow: OK with input/processed FPS, counters, p50/p99 per stage, backend,
    precision; a frame that fails to decode: WARN on that camera; input stopped: ERROR."""
    from diagnostic_msgs.msg import DiagnosticStatus

    client = cams["client"]
    names = {cam: f"{NODE}: {cam}" for cam in CAMERAS}
    seen = len(client.diagnostics)

    def latest() -> dict[str, Any]:
        return _statuses(client.diagnostics[-1]) if len(client.diagnostics) > seen else {}

    def feed(until, what: str, corrupt: bool = False) -> dict[str, Any]:
        end = time.monotonic() + 60
        i = 0
        while time.monotonic() < end:
            stamp = 60_000 * 10**9 + i
            cams["front"].publish(image_msg(frames[i % 16], "bgr8", stamp, frame_id="front_camera"))
            data = b"junk" if corrupt and i % 5 == 0 else png(frames[i % 16])
            cams["rear"].publish(compressed_msg(data, "png", stamp, "rear_camera"))
            i += 1
            time.sleep(0.1)
            with client.cond:
                now = latest()
            if now and until(now):
                return now
        pytest.fail(f"no /diagnostics with {what}; last: {latest()}")

    ok = feed(lambda d: all(d.get(n, {}).get("level") == DiagnosticStatus.OK for n in names.values()), "both OK")
    for cam, name in names.items():
        st = ok[name]
        assert float(st["input_fps"]) > 0 and float(st["processed_fps"]) > 0, st
        assert int(st["received"]) >= int(st["processed"]) > 0
        assert int(st["dropped_frames"]) == int(st["dropped_by_latest_slot"]) + int(st["rejected"])
        assert (st["backend"], st["precision"], st["cameras_on_model"]) == ("onnxruntime", "fp32", "2")
        assert st["topic"] == (FRONT if cam == "front" else REAR)
        assert st["transport"] == ("raw" if cam == "front" else "compressed") and st["qos"] == "sensor_data"
        for stage in ("decode", "preprocess", "model_wait", "infer", "postprocess", "in_to_panoptic"):
            assert 0 <= float(st[f"{stage}_p50_ms"]) <= float(st[f"{stage}_p99_ms"]), (stage, st)
    warn = feed(lambda d: d[names["rear"]]["level"] == DiagnosticStatus.WARN, "rear WARN", corrupt=True)
    assert "could not be decoded" in warn[names["rear"]]["message"]
    assert warn[names["front"]]["level"] == DiagnosticStatus.OK
    # input stops: ERROR on both after NO_FRAME_ERROR_S
    client.wait(
        lambda: (
            len(client.diagnostics) > seen
            and all(latest()[n]["level"] == DiagnosticStatus.ERROR for n in names.values())
        ),
        "ERROR on both cameras after the input stopped",
        timeout=60,
    )
    for name in names.values():
        st = latest()[name]
        assert st["message"].startswith("no frames for") and float(st["seconds_since_frame"]) >= NO_FRAME_ERROR_S
    stats = cams["node"].stop()
    assert set(stats["cameras"]) == set(CAMERAS)
    assert stats["cameras"]["rear"]["transport"] == "compressed" and stats["cameras"]["rear"]["rejected"] >= 1
    assert stats["cameras"]["front"]["rejected"] == 0
    assert stats["processed"] == sum(c["processed"] for c in stats["cameras"].values())
