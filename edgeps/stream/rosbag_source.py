"""Replay a recorded ``sensor_msgs/Image`` topic of a rosbag2 file as a frame source.

``edgeps run --source BAG:/camera/image_raw`` feeds a bag through the same pipeline as a live
camera, so a robot's recording can be segmented offline, without ROS installed: the pure
Python ``rosbags`` package reads the bag (sqlite3 ``.db3`` or ``.mcap``; the bag folder with its
``metadata.yaml``, or the storage file alone), and :mod:`edgeps.stream.ros_image` decodes the
images exactly as the ROS 2 node does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.errors import FormatError, SourceError
from edgeps.stream.ros_image import image_msg_to_bgr
from edgeps.stream.sources import FrameSource

log = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"


class RosbagSource(FrameSource):
    """Frames of one ``sensor_msgs/Image`` topic of a rosbag2, in recording order.

    ``stamp_ns()`` is the header stamp of the message last read (the camera's time, not the
    recording time). A message the pipeline cannot take (an encoding other than bgr8, rgb8,
    mono8, or a malformed image) is logged and skipped, counted in ``skipped_messages``.
    """

    kind = "rosbag"
    live = False

    def __init__(self, spec: str, bag_path: str | Path, topic: str):
        super().__init__(spec)
        try:
            from rosbags.rosbag2 import Reader
            from rosbags.typesys import Stores, get_typestore
        except ImportError:
            raise SourceError(
                f"{spec}: reading rosbags needs the 'rosbags' package (pip install rosbags, or 'edgeps[ros2]')"
            ) from None
        self.bag_path = Path(bag_path)
        self.topic = topic
        self.skipped_messages = 0
        self._stamp: int | None = None
        try:
            self._reader = Reader(self.bag_path)
            self._reader.open()
        except Exception as exc:  # rosbags raises its own ReaderError, FileNotFoundError, sqlite errors
            raise SourceError(f"{spec}: cannot open rosbag {self.bag_path}: {exc}") from None
        topics = {c.topic: c.msgtype for c in self._reader.connections}
        if topic not in topics:
            self._reader.close()
            known = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"
            raise SourceError(f"{spec}: topic {topic} not in the bag (topics: {known})")
        if topics[topic] != IMAGE_TYPE:
            self._reader.close()
            raise SourceError(f"{spec}: topic {topic} has type {topics[topic]}, expected {IMAGE_TYPE}")
        self._typestore = get_typestore(Stores.ROS2_HUMBLE)  # sensor_msgs/Image is the same in every ROS 2 release
        connections = [c for c in self._reader.connections if c.topic == topic]
        self.count = sum(c.msgcount for c in connections)
        self._messages: Iterator[tuple[Any, int, bytes]] | None = self._reader.messages(connections=connections)
        if self.count >= 2 and self._reader.duration > 0:
            self.fps = (self.count - 1) / (self._reader.duration / 1e9)

    def read(self) -> np.ndarray | None:
        if self._messages is None:
            return None
        for _conn, _t, raw in self._messages:
            try:
                msg: Any = self._typestore.deserialize_cdr(raw, IMAGE_TYPE)
                frame = image_msg_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
            except FormatError as exc:
                self.skipped_messages += 1
                log.warning("%s: skipping a message of %s: %s", self.spec, self.topic, exc)
                continue
            except Exception as exc:  # a corrupt CDR payload
                raise SourceError(f"{self.spec}: cannot decode a message of {self.topic}: {exc}") from None
            self._stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            self.size = frame.shape[:2]
            return frame
        self._messages = None
        return None

    def stamp_ns(self) -> int | None:
        return self._stamp

    def close(self) -> None:
        self._messages = None
        if getattr(self, "_reader", None) is not None and self._reader.is_open:
            self._reader.close()
