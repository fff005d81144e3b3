"""Offline replay of a rosbag2 ``sensor_msgs/Image`` topic through ``open_source``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeps.data.street import render_video
from edgeps.errors import SourceError
from edgeps.stream.ros_image import array_to_image_fields
from edgeps.stream.sources import open_source

pytest.importorskip("rosbags", reason="rosbags is in the dev and ros2 extras")

TOPIC = "/camera/image_raw"
STAMP0 = 1_700_000_000_123_456_789


def write_image_bag(path: Path, frames: list[np.ndarray], encodings: list[str], topic: str = TOPIC) -> list[int]:
    """Write ``frames`` (BGR) as sensor_msgs/Image in a rosbag2 (sqlite3) with rosbags; returns
    the header stamps (ns). Frames are stored in the given encodings (bgr8, rgb8, mono8, ...)."""
    import cv2
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Image, Header, Time = (
        ts.types["sensor_msgs/msg/Image"],
        ts.types["std_msgs/msg/Header"],
        ts.types["builtin_interfaces/msg/Time"],
    )
    String = ts.types["std_msgs/msg/String"]
    stamps = []
    with Writer(path, version=9) as writer:
        conn = writer.add_connection(topic, Image.__msgtype__, typestore=ts)
        other = writer.add_connection("/chatter", String.__msgtype__, typestore=ts)
        for i, (frame, enc) in enumerate(zip(frames, encodings)):
            arr = {
                "bgr8": frame,
                "rgb8": frame[..., ::-1].copy(),
                "mono8": cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
            }.get(enc)
            if arr is None:  # an encoding the pipeline rejects: a 16-bit depth-like image
                arr = np.zeros(frame.shape[:2], np.uint16)
            f = array_to_image_fields(arr, enc)
            stamp = STAMP0 + i * 66_666_667
            stamps.append(stamp)
            msg = Image(
                header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera"),
                height=f["height"],
                width=f["width"],
                encoding=f["encoding"],
                is_bigendian=f["is_bigendian"],
                step=f["step"],
                data=np.frombuffer(f["data"], np.uint8),
            )
            writer.write(conn, stamp + 5_000_000, ts.serialize_cdr(msg, Image.__msgtype__))
            writer.write(other, stamp + 6_000_000, ts.serialize_cdr(String(data=f"frame {i}"), String.__msgtype__))
    return stamps


@pytest.fixture(scope="module")
def video_bag(tmp_path_factory) -> tuple[Path, list[np.ndarray], list[int]]:
    frames = [s.image for s in render_video(7, (48, 80), 5)]
    encodings = ["bgr8", "rgb8", "16UC1", "bgr8", "mono8"]
    bag = tmp_path_factory.mktemp("bags") / "street"
    stamps = write_image_bag(bag, frames, encodings)
    return bag, frames, stamps


@pytest.mark.parametrize("form", ["folder", "db3"])
def test_bag_replays_frames_stamps_and_skips_rejected_encodings(video_bag, form, caplog):
    import cv2

    bag, frames, stamps = video_bag
    assert (bag / "street.db3").is_file() and (bag / "metadata.yaml").is_file()  # how rosbags names it
    path = bag if form == "folder" else bag / "street.db3"
    with open_source(f"{path}:{TOPIC}") as src:
        assert src.kind == "rosbag" and src.live is False and src.count == 5
        got, got_stamps = [], []
        while (frame := src.read()) is not None:
            got.append(frame)
            got_stamps.append(src.stamp_ns())
        assert src.read() is None  # stays at the end
        assert src.skipped_messages == 1 and src.size == (48, 80)
    assert "16UC1" in caplog.text
    assert got_stamps == [stamps[0], stamps[1], stamps[3], stamps[4]]  # header stamps, not record times
    for frame in got:
        assert frame.dtype == np.uint8 and frame.shape == (48, 80, 3)
    np.testing.assert_array_equal(got[0], frames[0])
    np.testing.assert_array_equal(got[1], frames[1])  # rgb8 comes back as BGR
    np.testing.assert_array_equal(got[2], frames[3])
    gray = cv2.cvtColor(frames[4], cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(got[3], np.repeat(gray[..., None], 3, axis=2))


def test_missing_or_wrong_topic_is_a_clear_source_error(video_bag, tmp_path):
    bag = video_bag[0]
    with pytest.raises(
        SourceError, match=r"topic /nope not in the bag \(topics: /camera/image_raw \(sensor_msgs/msg/Image\), /chatter"
    ):
        open_source(f"{bag}:/nope")
    with pytest.raises(
        SourceError, match="topic /chatter has type std_msgs/msg/String, expected sensor_msgs/msg/Image"
    ):
        open_source(f"{bag}/street.db3:/chatter")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="cannot open rosbag"):
        open_source(f"{tmp_path / 'empty'}:{TOPIC}")


def test_run_command_on_a_bag_keeps_the_header_stamps(video_bag, onnx_bundle, tmp_path, capsys):
    """`edgeps run --source BAG:TOPIC` end to end: every accepted image is processed, in order,
    and each JSON line carries the image's header stamp (what a robot joins its logs on)."""
    import json

    from edgeps.apps.cli import main

    bag, _, stamps = video_bag
    out = tmp_path / "bag.jsonl"
    rc = main(
        ["run", "--bundle", str(onnx_bundle), "--source", f"{bag}:{TOPIC}", "--jsonl", str(out), "--threshold", "0.01"]
    )
    assert rc == 0
    assert "4 frames (4 captured, 0 dropped" in capsys.readouterr().out
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["frame"] for r in lines] == [0, 1, 2, 3]
    assert [r["stamp_ns"] for r in lines] == [stamps[0], stamps[1], stamps[3], stamps[4]]
    from edgeps.bundle import read_manifest

    things = set(read_manifest(onnx_bundle).categories.thing_ids)
    segs = [seg for r in lines for seg in r["segments"]]
    assert segs and all((seg["track_id"] is not None) == (seg["category_id"] in things) for seg in segs)
