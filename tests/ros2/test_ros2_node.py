"""The edgeps ROS 2 node on a real graph, one camera (``image_topic``, outputs at ``~/panoptic``,
``qos: reliable`` chosen): a test client publishes frames of a synthetic video, the node (its own
process, started with ``edgeps ros2 --params``) answers on every topic. Several cameras, the
default QoS, compressed input and /diagnostics: test_ros2_cameras.py.

Outputs are checked against ``rt.predict`` of the same bundle on the same frames (same thread
count, so the maps are identical), not against hand-made expectations.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from typing import Any

import numpy as np
import pytest
from rosgraph import FRAME_HW, IN_TOPIC, OUTPUTS, Client, NodeProcess, image_msg, stamp_of
from rosgraph import wait_until as _wait_until

from edgeps.data.street import render_video
from edgeps.stream.ros_image import image_msg_to_array


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [s.image for s in render_video(3, FRAME_HW, 24)]


@pytest.fixture(scope="module")
def reference(ros2_bundle):
    """The same bundle in this process, same threads as the node: the expected answers."""
    from edgeps.runtimes import load

    return load(ros2_bundle, threads=1)


@pytest.fixture(scope="module")
def graph(ros_domain, ros2_bundle, tmp_path_factory):
    node = NodeProcess(
        {"bundle": str(ros2_bundle), "image_topic": IN_TOPIC, "qos": "reliable", "threads": 1},
        tmp_path_factory.mktemp("node"),
    )
    client = Client()
    state: dict[str, Any] = {"node": node, "client": client, "sent_good": 0, "sent_bad": 0}
    try:
        _wait_until(
            lambda: client.pub.get_subscription_count() > 0 or node.proc.poll() is not None, "the node to subscribe"
        )
        assert node.proc.poll() is None, f"node exited early:\n{node.log()}"
        yield state
    finally:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGINT)
            node.proc.wait(timeout=60)
        client.close()


def test_categories_are_latched_for_late_subscribers(graph, reference):
    client = graph["client"]
    client.subscribe_categories()  # created after the node published them: transient local
    client.wait(lambda: client.categories, "~/categories")
    info = json.loads(client.categories[0])
    assert info["categories"] == reference.manifest.categories.to_list()
    assert (info["label_divisor"], info["panoptic_void"]) == (1000, -1)
    assert (info["semantic_encoding"], info["semantic_void"]) == ("mono8", 255)
    assert info["backend"] == "onnxruntime"


@pytest.mark.parametrize(
    "k, encoding, pad", [(0, "bgr8", 0), (1, "rgb8", 0), (2, "mono8", 0), (3, "bgr8", 16), (4, "rgb8", 5)]
)
def test_every_output_matches_predict_with_the_input_header(graph, reference, frames, k, encoding, pad):
    import cv2

    bgr = frames[k]
    src = {"bgr8": bgr, "rgb8": bgr[..., ::-1].copy(), "mono8": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)}[encoding]
    seen = bgr if encoding != "mono8" else cv2.cvtColor(src, cv2.COLOR_GRAY2BGR)
    stamp = 1_000 * 10**9 + k * 33_000_000 + 7
    client = graph["client"]
    client.send(image_msg(src, encoding, stamp, pad))
    graph["sent_good"] += 1
    h, w = FRAME_HW
    expected = reference.predict(seen)

    pan_msg = client.got["panoptic"][stamp][1]
    assert (pan_msg.encoding, pan_msg.height, pan_msg.width, pan_msg.step, pan_msg.is_bigendian) == (
        "32SC1",
        h,
        w,
        w * 4,
        0,
    )
    assert pan_msg.header.frame_id == "test_camera" and stamp_of(pan_msg) == stamp
    pan = image_msg_to_array(
        pan_msg.encoding, pan_msg.height, pan_msg.width, pan_msg.step, pan_msg.is_bigendian, pan_msg.data
    )
    np.testing.assert_array_equal(pan, expected.panoptic)

    sem_msg = client.got["semantic"][stamp][1]
    assert (sem_msg.encoding, sem_msg.height, sem_msg.width, sem_msg.step) == ("mono8", h, w, w)
    assert sem_msg.header.frame_id == "test_camera" and stamp_of(sem_msg) == stamp
    sem = image_msg_to_array(
        sem_msg.encoding, sem_msg.height, sem_msg.width, sem_msg.step, sem_msg.is_bigendian, sem_msg.data
    )
    np.testing.assert_array_equal(sem, np.where(pan == -1, 255, pan // 1000))

    seg = json.loads(client.got["segments"][stamp][1].data)
    assert seg["frame_id"] == "test_camera" and (seg["height"], seg["width"]) == (h, w)
    by_id = {s["id"]: s for s in seg["segments"]}
    assert set(by_id) == set(np.unique(pan).tolist()) - {-1}
    cats = reference.manifest.categories
    for s in expected.segments:
        got = by_id[s.id]
        assert (got["class_id"], got["class"], got["area"], got["bbox"]) == (
            s.category_id,
            cats[s.category_id].name,
            s.area,
            list(s.bbox),
        )
        assert got["centroid"] == [round(s.centroid[0], 2), round(s.centroid[1], 2)]
        if cats[s.category_id].isthing:
            assert isinstance(got["track_id"], int) and got["track_id"] >= 1 and got["isthing"]
        else:
            assert got["track_id"] is None and not got["isthing"]
    assert "overlay" not in client.got  # nobody subscribed yet


def test_overlay_is_published_while_subscribed(graph, reference, frames):
    from edgeps.visualize import overlay

    client = graph["client"]
    client.subscribe_overlay()
    _wait_until(lambda: client.overlay_sub.get_publisher_count() > 0, "the overlay publisher to match")
    time.sleep(0.5)  # let the node's side of the match settle too (discovery is per side)
    stamp = 2_000 * 10**9
    bgr = frames[5]
    for attempt in range(20):  # the node may not see our subscriber yet: then no overlay, send again
        s = stamp + attempt
        client.send(image_msg(bgr, "bgr8", s))
        graph["sent_good"] += 1
        if s in client.got["overlay"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no overlay after 20 frames with a subscriber")
    msg = client.got["overlay"][s][1]
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("bgr8", *FRAME_HW, FRAME_HW[1] * 3)
    assert msg.header.frame_id == "test_camera" and stamp_of(msg) == s
    vis = image_msg_to_array(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    np.testing.assert_array_equal(vis, overlay(bgr, reference.predict(bgr).panoptic, reference.manifest.categories))
    client.node.destroy_subscription(client.overlay_sub)


def test_bad_frames_are_logged_and_the_node_keeps_answering(graph, frames):
    client, node = graph["client"], graph["node"]
    bad = image_msg(np.zeros(FRAME_HW, np.uint16), "16UC1", 3_000 * 10**9)
    client.pub.publish(bad)
    _wait_until(lambda: "16UC1" in node.log(), "the error log for 16UC1")
    short = image_msg(frames[6], "bgr8", 3_001 * 10**9)
    short.step = FRAME_HW[1] * 3 + 4  # claims padding the data does not have
    client.pub.publish(short)
    _wait_until(lambda: "data: length" in node.log(), "the error log for the short frame")
    graph["sent_bad"] += 2
    good = 3_002 * 10**9
    client.send(image_msg(frames[7], "bgr8", good))
    graph["sent_good"] += 1
    log = node.log()
    assert "ERROR" in log and "encoding: '16UC1' is not a colour/mono camera encoding" in log
    assert f"step*height = {FRAME_HW[1] * 3 + 4}*{FRAME_HW[0]}" in log
    for o in OUTPUTS:
        assert 3_000 * 10**9 not in client.got[o] and 3_001 * 10**9 not in client.got[o]
        assert good in client.got[o]
    assert node.proc.poll() is None


@pytest.mark.parametrize("size", [FRAME_HW, (480, 640)])
def test_latency_the_node_adds_over_predict(graph, reference, frames, size):
    """Figures per frame size, printed (pytest -rA shows them); no timing is asserted.

    ``node_overhead`` = median over frames of (subscription callback -> panoptic published)
    minus the same frame's ``rt.predict`` time inside the node: decoding the message, the
    hand-over through the latest slot to the worker, and building + publishing the 32SC1 map.
    """
    import cv2

    client = graph["client"]
    n = 12
    h, w = size
    imgs = [cv2.resize(frames[8 + i], (w, h), interpolation=cv2.INTER_LINEAR) for i in range(n)]
    rows, round_trip = [], []
    for i, img in enumerate(imgs):
        stamp = 4_000 * 10**9 + h * 1000 + i
        t = client.send(image_msg(img, "bgr8", stamp))
        graph["sent_good"] += 1
        round_trip.append((client.got["panoptic"][stamp][0] - t) * 1e3)
        rows.append(json.loads(client.got["segments"][stamp][1].data)["timings_ms"])
    predict = [sum(reference.predict(img).timings.values()) for img in imgs]

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3)

    node_predict = [r["preprocess"] + r["infer"] + r["postprocess"] for r in rows]
    report = {
        "frame": f"{h}x{w}",
        "model_input": "x".join(map(str, reference.info["input_size"])),
        "frames": n,
        "predict_in_process_ms": round(statistics.median(predict), 3),
        "node_predict_ms": round(statistics.median(node_predict), 3),
        "node_in_to_panoptic_ms": med("in_to_panoptic"),
        "node_overhead_ms": round(statistics.median(r["in_to_panoptic"] - p for r, p in zip(rows, node_predict)), 3),
        "node_decode_ms": med("decode"),
        "node_wait_ms": med("wait"),
        "client_publish_to_panoptic_received_ms": round(statistics.median(round_trip), 3),
    }
    print("ROS 2 node latency (medians):", json.dumps(report))
    out = os.environ.get("EDGEPS_ROS2_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(report) + "\n")
    assert all(r["in_to_panoptic"] >= p for r, p in zip(rows, node_predict))


def test_node_stats_count_every_frame_on_shutdown(graph, frames):
    """The counts match what this module sent, whichever tests ran before (this one sends a
    good and a bad frame of its own, so the counts are never all zero)."""
    client, node = graph["client"], graph["node"]
    client.send(image_msg(frames[9], "bgr8", 6_000 * 10**9))
    graph["sent_good"] += 1
    # an error not logged before (repeats of one error are throttled: at most one line per 5 s)
    client.pub.publish(image_msg(np.zeros(FRAME_HW, np.float32), "32FC1", 6_001 * 10**9))
    graph["sent_bad"] += 1
    _wait_until(lambda: "'32FC1'" in node.log(), "the error log for 32FC1")
    stats = node.stop()
    assert stats["processed"] == graph["sent_good"] and stats["rejected"] == graph["sent_bad"]
    assert stats["received"] == graph["sent_good"] + graph["sent_bad"] and stats["dropped_by_latest_slot"] == 0
    # drawn only while someone subscribed: at least every overlay the client got, at most one per good frame
    assert len(client.got["overlay"]) <= stats["overlays"] <= graph["sent_good"]
    assert node.proc.returncode == 0
