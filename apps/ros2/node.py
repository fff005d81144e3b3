"""The edgeps ROS 2 node: panoptic segmentation inside a robot's graph.

Subscribes to a ``sensor_msgs/Image`` topic (bgr8, rgb8, mono8) and runs a bundle through the
common runtime with the latest-frame policy: the subscription callback only drops the message
into a :class:`~edgeps.stream.latest.LatestSlot` (QoS depth 1), and one worker thread
processes the newest message, so a slow model never builds a backlog and the answer is
always about the most recent frame. Every output carries the input's header (stamp and
frame_id):

``~/panoptic``    sensor_msgs/Image 32SC1, ``class_id * label_divisor + instance``, void -1
``~/semantic``    sensor_msgs/Image mono8 (mono16 when a class id > 254), void 255 (65535)
``~/overlay``     sensor_msgs/Image bgr8, drawn only while someone subscribes
``~/segments``    std_msgs/String JSON: stamp, frame_id, one entry per segment (id, class,
                  area, bbox, centroid, score, track_id; track ids live only here), and the
                  frame's timings (ms: wait, decode, preprocess, infer, postprocess,
                  in_to_panoptic = subscription callback to panoptic published)
``~/categories``  std_msgs/String JSON, once, transient-local (late joiners get it)

Run it with ``edgeps-ros2 --ros-args --params-file configs/ros2_params.yaml`` or
``edgeps ros2 --params configs/ros2_params.yaml``. See docs/ros2.md.
"""

from __future__ import annotations

import array
import json
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from edgeps.apps.ros2.params import (
    DEFAULTS,
    NODE_NAME,
    NodeParams,
    apply_postprocess,
    params_from_dict,
)
from edgeps.errors import ConfigError, EdgepsError, FormatError
from edgeps.stream.latest import LatestSlot
from edgeps.stream.ros_image import array_to_image_fields, image_msg_to_bgr

STATS_WINDOW = 1000  # latency figures are over the last this many frames


def subscription_qos(kind: str) -> QoSProfile:
    """Depth 1 either way (the latest-frame policy); ``sensor_data`` is best effort, as camera
    drivers publish, ``reliable`` also hears reliable-only publishers."""
    reliability = QoSReliabilityPolicy.BEST_EFFORT if kind == "sensor_data" else QoSReliabilityPolicy.RELIABLE
    return QoSProfile(
        history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=reliability, durability=QoSDurabilityPolicy.VOLATILE
    )


# Outputs are reliable (a best-effort or a reliable subscriber can both connect), depth 1.
OUTPUT_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=QoSReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


def image_message(header: Any, arr: np.ndarray, encoding: str) -> Image:
    """A sensor_msgs/Image of ``arr`` with ``header`` (the input's stamp and frame_id)."""
    f = array_to_image_fields(arr, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.encoding = f["height"], f["width"], f["encoding"]
    msg.is_bigendian, msg.step = f["is_bigendian"], f["step"]
    msg.data = array.array("B", f["data"])  # array.array skips rclpy's per-byte check
    return msg


class PanopticNode(Node):
    """Subscribe to camera images, publish panoptic, semantic, overlay, segments, categories.

    Raises ConfigError (naming the parameter) from the constructor when a parameter is invalid,
    so a bad launch fails at start, not at the first frame.
    """

    def __init__(self, overrides: dict[str, Any] | None = None, *, node_name: str = NODE_NAME, **node_kwargs: Any):
        super().__init__(
            node_name,
            parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()],
            automatically_declare_parameters_from_overrides=True,
            **node_kwargs,
        )
        raw: dict[str, Any] = {name: p.value for name, p in self.get_parameters_by_prefix("").items()}
        for name, default in DEFAULTS.items():
            if name not in raw:
                self.declare_parameter(name, default)
                raw[name] = default
        self.params: NodeParams = params_from_dict(raw)
        self._setup_runtime()
        self._setup_topics()
        self._slot: LatestSlot[tuple[float, Image]] = LatestSlot()
        self._stop = threading.Event()
        self.processed = 0
        self.rejected = 0
        self.overlays = 0
        self._lat: deque[dict[str, float]] = deque(maxlen=STATS_WINDOW)
        self._worker = threading.Thread(target=self._work, name="edgeps-ros2-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{self.rt.info['backend']} {self.rt.manifest.precision} bundle {self.params.bundle} "
            f"(input {self.rt.info['input_size'][0]}x{self.rt.info['input_size'][1]}); listening on "
            f"{self.params.image_topic} ({self.params.qos}), semantic as {self.semantic_encoding}"
        )

    # -- setup -----------------------------------------------------------------------------
    def _setup_runtime(self) -> None:
        from edgeps.runtimes import load
        from edgeps.stream.tracker import Tracker

        p = self.params
        self.rt = load(p.bundle, backend=p.backend or None, device=p.device, threads=p.threads or None)
        post = apply_postprocess(self.rt.manifest.postprocess, p)
        self.rt.manifest = replace(self.rt.manifest, postprocess=post)  # the runtime reads settings from its manifest
        self.categories = self.rt.manifest.categories
        self.divisor, self.void = post.label_divisor, post.void_label
        max_id = max(self.categories.ids)
        if p.semantic_encoding == "mono8" and max_id > 254:
            raise ConfigError(
                f"parameter 'semantic_encoding': mono8 cannot hold class id {max_id} (255 is void); use mono16 or auto"
            )
        self.semantic_encoding = (
            p.semantic_encoding if p.semantic_encoding != "auto" else ("mono8" if max_id <= 254 else "mono16")
        )
        self.semantic_void = 255 if self.semantic_encoding == "mono8" else 65535
        self.tracker = Tracker(self.categories.thing_ids, label_divisor=self.divisor) if p.track else None
        h, w = self.rt.manifest.input.size
        self.rt.predict(np.zeros((h, w, 3), np.uint8))  # warm-up: the first inference is slow

    def _setup_topics(self) -> None:
        p = self.params
        self._pub_panoptic = self.create_publisher(Image, "~/panoptic", OUTPUT_QOS)
        self._pub_semantic = self.create_publisher(Image, "~/semantic", OUTPUT_QOS)
        self._pub_overlay = self.create_publisher(Image, "~/overlay", OUTPUT_QOS) if p.publish_overlay else None
        self._pub_segments = self.create_publisher(String, "~/segments", OUTPUT_QOS)
        self._pub_categories = self.create_publisher(String, "~/categories", LATCHED_QOS)
        self._pub_categories.publish(String(data=json.dumps(self.categories_info())))
        self._sub = self.create_subscription(Image, p.image_topic, self._on_image, subscription_qos(p.qos))

    def categories_info(self) -> dict[str, Any]:
        """What a consumer needs to read the maps: categories, id encoding, void values."""
        return {
            "categories": self.categories.to_list(),
            "label_divisor": self.divisor,
            "panoptic_void": self.void,
            "semantic_encoding": self.semantic_encoding,
            "semantic_void": self.semantic_void,
            "model_name": self.rt.manifest.model_name,
            "backend": self.rt.info["backend"],
            "precision": self.rt.manifest.precision,
        }

    # -- the frame path --------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        """Only hand the message over: the newest one wins, the executor never waits."""
        self._slot.put((time.perf_counter(), msg))

    def _work(self) -> None:
        while not self._stop.is_set():
            got = self._slot.get(timeout=0.2)
            if got is None:
                continue
            t_in, msg = got[1]
            try:
                self._process(t_in, msg)
            except FormatError as exc:
                self.rejected += 1
                self.get_logger().error(
                    f"{self.params.image_topic}: dropped a frame (stamp "
                    f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}): {exc}"
                )
            except Exception as exc:  # keep answering: one bad frame must not kill the node
                self.rejected += 1
                self.get_logger().error(f"{self.params.image_topic}: frame failed: {type(exc).__name__}: {exc}")

    def _process(self, t_in: float, msg: Image) -> None:
        t0 = time.perf_counter()
        frame = image_msg_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        t1 = time.perf_counter()
        result = self.rt.predict(frame)
        t2 = time.perf_counter()
        pan = result.panoptic
        self._pub_panoptic.publish(image_message(msg.header, pan, "32SC1"))
        t3 = time.perf_counter()
        sem = np.where(pan == self.void, self.semantic_void, pan // self.divisor)
        self._pub_semantic.publish(
            image_message(
                msg.header,
                sem.astype(np.uint8 if self.semantic_encoding == "mono8" else np.uint16),
                self.semantic_encoding,
            )
        )
        if self.tracker is not None:
            self.tracker.update(pan, result.segments, frame)
        info = self.segments_info(msg, result.segments)
        info["timings_ms"] = {
            **{k: round(v, 3) for k, v in result.timings.items()},
            "wait": round((t0 - t_in) * 1e3, 3),
            "decode": round((t1 - t0) * 1e3, 3),
            "in_to_panoptic": round((t3 - t_in) * 1e3, 3),
        }
        self._pub_segments.publish(String(data=json.dumps(info)))
        if self._pub_overlay is not None and self._pub_overlay.get_subscription_count() > 0:
            from edgeps.visualize import overlay

            vis = overlay(
                frame,
                pan,
                self.categories,
                label_divisor=self.divisor,
                void_label=self.void,
                legend=self.params.overlay_legend,
            )
            self._pub_overlay.publish(image_message(msg.header, vis, "bgr8"))
            self.overlays += 1
        t4 = time.perf_counter()
        self.processed += 1
        self._lat.append(
            {
                "wait": (t0 - t_in) * 1e3,
                "decode": (t1 - t0) * 1e3,
                "predict": (t2 - t1) * 1e3,
                "publish_panoptic": (t3 - t2) * 1e3,
                "in_to_panoptic": (t3 - t_in) * 1e3,
                "in_to_all": (t4 - t_in) * 1e3,
            }
        )

    def segments_info(self, msg: Image, segments: list) -> dict[str, Any]:
        """The per-frame JSON of ``~/segments`` (std_msgs/String has no header: it is inside)."""
        out = []
        for s in segments:
            d = s.to_dict()
            cat = self.categories[s.category_id] if s.category_id in self.categories else None
            out.append(
                {
                    "id": d["id"],
                    "class_id": d["category_id"],
                    "class": cat.name if cat else str(s.category_id),
                    "isthing": bool(cat and cat.isthing),
                    "instance": d["instance"],
                    "area": d["area"],
                    "bbox": d["bbox"],
                    "centroid": d["centroid"],
                    "score": None if d["score"] is None else round(float(d["score"]), 4),
                    "track_id": d["track_id"],
                }
            )
        return {
            "stamp": {"sec": int(msg.header.stamp.sec), "nanosec": int(msg.header.stamp.nanosec)},
            "frame_id": msg.header.frame_id,
            "height": int(msg.height),
            "width": int(msg.width),
            "segments": out,
        }

    # -- figures and shutdown --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters and median latencies (ms) over the last frames: ``in_to_panoptic`` is from
        the subscription callback to the panoptic map published; ``node_overhead`` is that
        minus ``predict`` (what the node adds to ``rt.predict``)."""
        lat = list(self._lat)
        out: dict[str, Any] = {
            "received": self._slot.produced,
            "dropped_by_latest_slot": self._slot.dropped,
            "processed": self.processed,
            "rejected": self.rejected,
            "overlays": self.overlays,
        }
        if lat:
            for key in lat[0]:
                out[f"{key}_ms"] = round(statistics.median(x[key] for x in lat), 3)
            out["node_overhead_ms"] = round(statistics.median(x["in_to_panoptic"] - x["predict"] for x in lat), 3)
        return out

    def close(self) -> None:
        """Stop the worker (after the frame it is on), then destroy the node."""
        self._stop.set()
        self._slot.close()
        self._worker.join(timeout=30)
        self.destroy_node()


def spin(node: PanopticNode) -> None:
    """Spin until Ctrl-C or ROS shutdown; then stop the worker and print the figures."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stats = node.stats()
        node.close()
        executor.shutdown()
        print(f"edgeps-ros2 stats: {json.dumps(stats)}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, overrides: dict[str, Any] | None = None) -> int:
    """``edgeps-ros2 [--ros-args ...]``: parameters come from ``--params-file``/``-p`` (or
    ``overrides``, from ``edgeps ros2 --params``); exit 2 with one line on a bad parameter."""
    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    try:
        try:
            node = PanopticNode(overrides)
        except EdgepsError as exc:
            print(f"edgeps-ros2: error: {exc}", file=sys.stderr)
            return 2
        spin(node)
        return 0
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
