"""The test side of a ROS 2 graph: a node process started like a user starts it, and a client
node that publishes camera frames (raw or compressed) and collects the node's outputs.

Shared by the ROS 2 test modules (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import array
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from edgeps.stream.ros_image import array_to_image_fields

NODE = "edgeps_panoptic"
IN_TOPIC = "/test_cam/image_raw"
FRAME_HW = (96, 160)  # not the model's 1:2 aspect: the node letterboxes like rt.predict
WAIT_S = 120.0  # a hang guard for a loaded 2-core machine, not a timing assertion
OUTPUTS = ("panoptic", "semantic", "segments")

RELIABLE = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=QoSReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)
BEST_EFFORT = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT)


def set_stamp(msg: Any, stamp_ns: int, frame_id: str) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // 10**9, stamp_ns % 10**9
    msg.header.frame_id = frame_id
    return msg


def image_msg(arr: np.ndarray, encoding: str, stamp_ns: int, pad: int = 0, frame_id: str = "test_camera") -> Image:
    """A sensor_msgs/Image of ``arr``, rows padded with ``pad`` junk bytes (a real step)."""
    f = array_to_image_fields(arr, encoding)
    rows = np.frombuffer(f["data"], np.uint8).reshape(f["height"], f["step"])
    if pad:
        rows = np.concatenate([rows, np.full((f["height"], pad), 7, np.uint8)], axis=1)
    msg = set_stamp(Image(), stamp_ns, frame_id)
    msg.height, msg.width, msg.encoding, msg.is_bigendian = f["height"], f["width"], encoding, 0
    msg.step = f["step"] + pad
    msg.data = array.array("B", rows.tobytes())
    return msg


def compressed_msg(data: bytes, fmt: str, stamp_ns: int, frame_id: str = "test_camera") -> CompressedImage:
    """A sensor_msgs/CompressedImage holding ``data`` (JPEG/PNG bytes, or junk)."""
    msg = set_stamp(CompressedImage(), stamp_ns, frame_id)
    msg.format = fmt
    msg.data = array.array("B", data)
    return msg


def stamp_of(msg: Any) -> int:
    if isinstance(msg, String):
        s = json.loads(msg.data)["stamp"]
        return s["sec"] * 10**9 + s["nanosec"]
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def wait_until(pred: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


class Client:
    """The test's side of the graph: publishes camera frames, collects every output.

    ``cameras`` are output namespaces under the node: ``""`` for ``~/panoptic`` (outputs kept
    under ``got["panoptic"]``), ``"front"`` for ``~/front/panoptic`` (``got["front/panoptic"]``).
    """

    def __init__(
        self,
        qos: QoSProfile = RELIABLE,
        name: str = "edgeps_test_client",
        in_topic: str | None = IN_TOPIC,
        cameras: Iterable[str] = ("",),
    ):
        self.context = rclpy.Context()  # one per graph: tests never share rclpy state
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.pub = self.node.create_publisher(Image, in_topic, qos) if in_topic else None
        self.cond = threading.Condition()
        self.got: dict[str, dict[int, tuple[float, Any]]] = defaultdict(dict)
        self.categories: list[str] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.subs: dict[str, Any] = {}
        for cam in cameras:
            for name_ in OUTPUTS:
                key = f"{cam}/{name_}" if cam else name_
                self.subs[key] = self.node.create_subscription(
                    String if name_ == "segments" else Image, f"/{NODE}/{key}", self._keep(key), RELIABLE
                )
        self.overlay_sub = None
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _keep(self, name: str):
        def cb(msg: Any) -> None:
            with self.cond:
                self.got[name][stamp_of(msg)] = (time.perf_counter(), msg)
                self.cond.notify_all()

        return cb

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile):
        return self.node.create_publisher(msg_type, topic, qos)

    def subscribe_categories(self) -> None:
        def cb(msg: String) -> None:
            with self.cond:
                self.categories.append(msg.data)
                self.cond.notify_all()

        self.node.create_subscription(String, f"/{NODE}/categories", cb, LATCHED)

    def subscribe_overlay(self) -> None:
        self.overlay_sub = self.node.create_subscription(Image, f"/{NODE}/overlay", self._keep("overlay"), RELIABLE)

    def subscribe_diagnostics(self) -> None:
        def cb(msg: DiagnosticArray) -> None:
            with self.cond:
                self.diagnostics.append(msg)
                self.cond.notify_all()

        self.node.create_subscription(DiagnosticArray, "/diagnostics", cb, RELIABLE)

    def wait(self, pred, what: str, timeout: float = WAIT_S) -> None:
        with self.cond:
            assert self.cond.wait_for(pred, timeout), f"timed out waiting for {what}"

    def outputs_matched(self) -> bool:
        """Every output subscription sees the node's publisher (discovery is per side: the
        node may still miss us for a moment; outputs are volatile, so wait before sending)."""
        return all(sub.get_publisher_count() > 0 for sub in self.subs.values())

    def answered(self, stamp: int, outputs: Iterable[str]) -> bool:
        return all(stamp in self.got[o] for o in outputs)

    def send(self, msg: Any, outputs: Iterable[str] = OUTPUTS, pub: Any = None) -> float:
        """Publish one frame and wait for its answer on ``outputs``; returns the send time."""
        outputs = tuple(outputs)
        stamp = stamp_of(msg)
        t = time.perf_counter()
        (pub or self.pub).publish(msg)
        self.wait(lambda: self.answered(stamp, outputs), f"{outputs} for stamp {stamp}")
        return t

    def send_until_answered(
        self, make: Callable[[int], Any], pub: Any, outputs: Iterable[str] = OUTPUTS, attempts: int = 50
    ) -> int:
        """Publish ``make(attempt)`` until one is answered (best effort may lose a frame, and a
        new publisher may not be matched yet); returns the answered stamp."""
        outputs = tuple(outputs)
        for attempt in range(attempts):
            msg = make(attempt)
            stamp = stamp_of(msg)
            pub.publish(msg)
            with self.cond:
                if self.cond.wait_for(lambda s=stamp: self.answered(s, outputs), 3.0):
                    return stamp
        raise AssertionError(f"no answer on {outputs} after {attempts} frames")

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()
        self.context.try_shutdown()


class NodeProcess:
    """``edgeps ros2 --params FILE`` in its own process; stderr/stdout go to a log file."""

    def __init__(self, params: dict[str, Any], tmp: Path):
        self.params_file = tmp / "params.yaml"
        self.params_file.write_text(yaml.safe_dump({NODE: {"ros__parameters": params}}))
        self.log_path = tmp / "node.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgeps.apps.cli", "ros2", "--params", str(self.params_file)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> dict[str, Any]:
        """SIGINT (what Ctrl-C or ros2 launch sends), then the stats line the node prints."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        m = re.search(r"edgeps-ros2 stats: (\{.*\})", self.log())
        assert m, f"no stats line; node log:\n{self.log()[-3000:]}"
        return json.loads(m.group(1))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
