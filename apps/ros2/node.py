"""The edgeps ROS 2 node: panoptic segmentation inside a robot's graph, for one or more cameras.

Each camera is an input topic: ``sensor_msgs/Image`` (bgr8, rgb8, mono8) or, with
``input_transport`` ``compressed`` (or ``auto`` and a topic ending in ``/compressed``),
``sensor_msgs/CompressedImage`` (JPEG or PNG, decoded with OpenCV). The subscription is best
effort by default (``qos: sensor_data``), which hears reliable and best-effort publishers alike.

Latest-frame policy, per camera: the subscription callback only drops the message into the
camera's :class:`~edgeps.stream.latest.LatestSlot` (QoS depth 1), and the camera's worker
thread processes the newest message, so a slow model never builds a backlog and the answer is
always about that camera's most recent frame. One runtime (one model instance) serves every
camera (:class:`~edgeps.stream.shared_model.SharedModel`): the cameras' frames take turns in
the order their workers ask (no camera starves) and, when the bundle has a batch dimension
(``edgeps export --batch N|dynamic``), the frames that waited during one model call go into
the next one together; decoding, pre- and post-processing and publishing of the other cameras
run beside it. Each camera has its own tracker. A frame that cannot be decoded is logged
(repeats of one error at most every ``LOG_THROTTLE_S`` seconds, with a count) and dropped; the
node keeps running.

Outputs of a camera, under ``~/`` for ``image_topic`` or ``~/<camera>/`` for ``image_topics``,
each with the input's header (stamp and frame_id):

``panoptic``    sensor_msgs/Image 32SC1, ``class_id * label_divisor + instance``, void -1
``semantic``    sensor_msgs/Image mono8 (mono16 when a class id > 254), void 255 (65535)
``overlay``     sensor_msgs/Image bgr8, drawn only while someone subscribes
``segments``    std_msgs/String JSON: stamp, frame_id, one entry per segment (id, class,
                area, bbox, centroid, score, track_id; track ids live only here), and the
                frame's timings (ms: wait, decode, preprocess, model_wait, infer, postprocess,
                in_to_panoptic = subscription callback to panoptic published)

and for the node: ``~/categories`` (std_msgs/String JSON, once, transient-local) and
``/diagnostics`` (diagnostic_msgs/DiagnosticArray every second, one status per camera: input
and processed FPS, dropped frames, p50/p99 latency per stage, backend and precision; OK, WARN
when processing falls below the input rate or frames fail to decode, ERROR when no frame came
for ``no_frame_error_s`` seconds).

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
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from edgeps.apps.ros2.compressed import compressed_to_bgr
from edgeps.apps.ros2.params import (
    DEFAULTS,
    NODE_NAME,
    CameraSpec,
    NodeParams,
    apply_postprocess,
    camera_specs,
    params_from_dict,
)
from edgeps.errors import ConfigError, EdgepsError, FormatError
from edgeps.preprocess import as_bgr
from edgeps.stream.latest import LatestSlot
from edgeps.stream.ros_image import array_to_image_fields, image_msg_to_bgr
from edgeps.stream.shared_model import SharedModel

STATS_WINDOW = 1000  # latency figures are over the last this many frames (per camera)
RATE_WINDOW_S = 5.0  # /diagnostics input and processed FPS are over the last this many seconds
DIAGNOSTICS_PERIOD_S = 1.0
WARN_RATIO = 0.9  # WARN when frames handled per second < this x frames received per second
LOG_THROTTLE_S = 5.0  # one camera's identical errors are logged at most this often
# Stages with p50/p99 in /diagnostics (ms; "model_wait" is the wait for the shared model).
STAGES = ("wait", "decode", "preprocess", "model_wait", "infer", "postprocess", "in_to_panoptic")


def subscription_qos(kind: str) -> QoSProfile:
    """Depth 1 either way (the latest-frame policy). ``sensor_data`` (the default) is best
    effort, as camera drivers publish, and also hears reliable publishers; ``reliable`` hears
    only reliable ones (a best-effort publisher never matches it)."""
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
# What diagnostic_updater publishes with: reliable, volatile.
DIAGNOSTICS_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


def image_message(header: Any, arr: np.ndarray, encoding: str) -> Image:
    """A sensor_msgs/Image of ``arr`` with ``header`` (the input's stamp and frame_id)."""
    f = array_to_image_fields(arr, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.encoding = f["height"], f["width"], f["encoding"]
    msg.is_bigendian, msg.step = f["is_bigendian"], f["step"]
    msg.data = array.array("B", f["data"])  # array.array skips rclpy's per-byte check
    return msg


def health(
    since_frame_s: float, input_fps: float, handled_fps: float, rejected_recent: int, no_frame_error_s: float
) -> tuple[bytes, str]:
    """A camera's /diagnostics level and message: ERROR after ``no_frame_error_s`` seconds
    without a frame; WARN when frames failed to decode in the rate window, or when frames
    handled per second fall below ``WARN_RATIO`` x frames received per second (the model is
    slower than the camera: the latest-frame slot drops the rest); else OK."""
    if since_frame_s >= no_frame_error_s:
        return DiagnosticStatus.ERROR, f"no frames for {since_frame_s:.1f} s"
    if rejected_recent:
        return DiagnosticStatus.WARN, f"{rejected_recent} frames could not be decoded in the last {RATE_WINDOW_S:g} s"
    if input_fps > 0 and handled_fps < WARN_RATIO * input_fps:
        return DiagnosticStatus.WARN, f"processing {handled_fps:.1f} fps, below the input rate {input_fps:.1f} fps"
    return DiagnosticStatus.OK, f"{handled_fps:.1f} fps"


class Camera:
    """One camera of the node: subscription, latest-frame slot, worker thread, tracker,
    publishers, counters and latency window. The node's runtime is shared."""

    def __init__(self, node: PanopticNode, spec: CameraSpec):
        from edgeps.stream.tracker import Tracker

        self.node = node
        self.spec = spec
        p = node.params
        self.slot: LatestSlot[tuple[float, Any]] = LatestSlot()
        self.tracker = Tracker(node.categories.thing_ids, label_divisor=node.divisor) if p.track else None
        self.processed = 0
        self.rejected = 0
        self.overlays = 0
        self._lock = threading.Lock()  # counters, windows: written by the worker, read by /diagnostics
        self._lat: deque[dict[str, float]] = deque(maxlen=STATS_WINDOW)
        self._arrivals: deque[float] = deque(maxlen=4096)  # monotonic times, for the FPS figures
        self._handled: deque[tuple[float, bool]] = deque(maxlen=4096)  # (time, decoded)
        self._last_arrival: float | None = None
        self._logged: dict[str, tuple[float, int]] = {}  # error text -> (last logged, repeats since)
        self.pub_panoptic = node.create_publisher(Image, spec.output("panoptic"), OUTPUT_QOS)
        self.pub_semantic = node.create_publisher(Image, spec.output("semantic"), OUTPUT_QOS)
        self.pub_overlay = (
            node.create_publisher(Image, spec.output("overlay"), OUTPUT_QOS) if p.publish_overlay else None
        )
        self.pub_segments = node.create_publisher(String, spec.output("segments"), OUTPUT_QOS)
        msg_type = CompressedImage if spec.transport == "compressed" else Image
        self.sub = node.create_subscription(msg_type, spec.topic, self._on_image, subscription_qos(p.qos))
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name=f"edgeps-ros2-{spec.name}", daemon=True)

    # -- the frame path --------------------------------------------------------------------
    def _on_image(self, msg: Any) -> None:
        """Only hand the message over: the newest one wins, the executor never waits."""
        now = time.monotonic()
        with self._lock:
            self._arrivals.append(now)
            self._last_arrival = now
        self.slot.put((time.perf_counter(), msg))

    def _work(self) -> None:
        while not self._stop.is_set():
            got = self.slot.get(timeout=0.2)
            if got is None:
                continue
            t_in, msg = got[1]
            try:
                self._process(t_in, msg)
            except FormatError as exc:
                self._drop(msg, str(exc))
            except Exception as exc:  # keep answering: one bad frame must not kill the node
                self._drop(msg, f"frame failed: {type(exc).__name__}: {exc}")

    def _drop(self, msg: Any, reason: str) -> None:
        """Count a frame that could not be processed; log it, repeats of one reason throttled."""
        now = time.monotonic()
        with self._lock:
            self.rejected += 1
            self._handled.append((now, False))
            if len(self._logged) > 64:  # reasons that vary frame to frame: keep the map small
                self._logged.clear()
            last, repeats = self._logged.get(reason, (-float("inf"), 0))
            if now - last < LOG_THROTTLE_S:
                self._logged[reason] = (last, repeats + 1)
                return
            self._logged[reason] = (now, 0)
        stamp = msg.header.stamp
        more = f" ({repeats} more like it since the last report)" if repeats else ""
        self.node.get_logger().error(
            f"{self.spec.topic}: dropped a frame (stamp {stamp.sec}.{stamp.nanosec:09d}): {reason}{more}"
        )

    def _decode(self, msg: Any) -> np.ndarray:
        if self.spec.transport == "compressed":
            return compressed_to_bgr(msg.format, msg.data)
        return image_msg_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)

    def _process(self, t_in: float, msg: Any) -> None:
        node, rt = self.node, self.node.rt
        t0 = time.perf_counter()
        frame = as_bgr(self._decode(msg), "image")
        t1 = time.perf_counter()
        # rt.predict, split so that only the model call is shared between cameras
        batch = rt.preprocess(frame)
        t2 = time.perf_counter()
        shared: dict[str, float] = {}
        heads = node.model.infer(batch, shared)  # waits its turn; frames waiting together go in one batch
        t4 = time.perf_counter()
        result = rt.postprocess(heads, frame.shape[:2])
        t5 = time.perf_counter()
        pan = result.panoptic
        self.pub_panoptic.publish(image_message(msg.header, pan, "32SC1"))
        t6 = time.perf_counter()
        sem = np.where(pan == node.void, node.semantic_void, pan // node.divisor)
        self.pub_semantic.publish(
            image_message(
                msg.header,
                sem.astype(np.uint8 if node.semantic_encoding == "mono8" else np.uint16),
                node.semantic_encoding,
            )
        )
        if self.tracker is not None:
            self.tracker.update(pan, result.segments, frame)
        info = node.segments_info(msg.header, frame.shape[:2], result.segments)
        stages = {
            "wait": (t0 - t_in) * 1e3,
            "decode": (t1 - t0) * 1e3,
            "preprocess": (t2 - t1) * 1e3,
            "model_wait": shared["model_wait"],
            "infer": shared["infer"],
            "postprocess": (t5 - t4) * 1e3,
            "in_to_panoptic": (t6 - t_in) * 1e3,
        }
        info["timings_ms"] = {k: round(v, 3) for k, v in stages.items()}
        self.pub_segments.publish(String(data=json.dumps(info)))
        if self.pub_overlay is not None and self.pub_overlay.get_subscription_count() > 0:
            from edgeps.visualize import overlay

            vis = overlay(
                frame,
                pan,
                node.categories,
                label_divisor=node.divisor,
                void_label=node.void,
                legend=node.params.overlay_legend,
            )
            self.pub_overlay.publish(image_message(msg.header, vis, "bgr8"))
            self.overlays += 1
        t7 = time.perf_counter()
        with self._lock:
            self.processed += 1
            self._handled.append((time.monotonic(), True))
            self._lat.append({**stages, "predict": (t5 - t1) * 1e3, "in_to_all": (t7 - t_in) * 1e3})

    # -- figures ---------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """Frames received, dropped by the latest-frame slot, processed, rejected, overlays."""
        return {
            "topic": self.spec.topic,
            "transport": self.spec.transport,
            "received": self.slot.produced,
            "dropped_by_latest_slot": self.slot.dropped,
            "processed": self.processed,
            "rejected": self.rejected,
            "overlays": self.overlays,
        }

    def latencies(self) -> list[dict[str, float]]:
        with self._lock:
            return list(self._lat)

    def diagnostic_status(self, now: float, started: float) -> DiagnosticStatus:
        """This camera's /diagnostics entry (``now``, ``started``: time.monotonic())."""
        node = self.node
        with self._lock:
            arrivals = [t for t in self._arrivals if t >= now - RATE_WINDOW_S]
            handled = [(t, ok) for t, ok in self._handled if t >= now - RATE_WINDOW_S]
            last = self._last_arrival
            lat = list(self._lat)
        span = max(1e-3, min(RATE_WINDOW_S, now - started))
        input_fps = len(arrivals) / span
        processed_fps = sum(ok for _, ok in handled) / span
        rejected_recent = sum(not ok for _, ok in handled)
        since = now - (last if last is not None else started)
        level, message = health(since, input_fps, len(handled) / span, rejected_recent, node.params.no_frame_error_s)
        c = self.counters()
        values: dict[str, Any] = {
            "topic": self.spec.topic,
            "transport": self.spec.transport,
            "qos": node.params.qos,
            "input_fps": round(input_fps, 2),
            "processed_fps": round(processed_fps, 2),
            "received": c["received"],
            "processed": c["processed"],
            "dropped_frames": c["dropped_by_latest_slot"] + c["rejected"],
            "dropped_by_latest_slot": c["dropped_by_latest_slot"],
            "rejected": c["rejected"],
            "seconds_since_frame": round(since, 2) if last is not None else "never",
            "backend": node.rt.info["backend"],
            "precision": node.rt.manifest.precision,
            "device": node.rt.info.get("device", node.params.device),
            "cameras_on_model": len(node.cameras),
            "model_batch": "dynamic" if node.rt.max_batch is None else node.rt.max_batch,
            "max_batch_param": node.params.max_batch,
            "mean_frames_per_model_call": round(node.model.mean_batch(), 2),
        }
        for stage in STAGES:
            xs = [x[stage] for x in lat]
            p50, p99 = np.percentile(xs, [50, 99]).tolist() if xs else (None, None)
            values[f"{stage}_p50_ms"] = "n/a" if p50 is None else round(p50, 3)
            values[f"{stage}_p99_ms"] = "n/a" if p99 is None else round(p99, 3)
        status = DiagnosticStatus()
        status.level = level
        status.name = f"{node.get_name()}: {self.spec.name}"
        status.message = message
        status.hardware_id = f"{node.rt.info['backend']}:{values['device']}"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        return status

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker after the frame it is on."""
        self._stop.set()
        self.slot.close()
        self.worker.join(timeout=30)


class PanopticNode(Node):
    """Subscribe to camera images, publish panoptic, semantic, overlay and segments per camera,
    categories once and /diagnostics every second.

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
        # Only the given parameters: params_from_dict tells image_topic given from defaulted.
        raw: dict[str, Any] = {name: p.value for name, p in self.get_parameters_by_prefix("").items()}
        self.params: NodeParams = params_from_dict(raw)
        for name, default in DEFAULTS.items():
            if name not in raw:  # visible to `ros2 param list`; list ones as (empty) string arrays
                self.declare_parameter(name, Parameter.Type.STRING_ARRAY if isinstance(default, tuple) else default)
        self.specs = camera_specs(self.params)
        self._setup_runtime()
        # all cameras' frames; batched when the bundle has a batch dimension (and max_batch allows)
        self.model = SharedModel(self.rt, self.params.max_batch or None)
        self._pub_categories = self.create_publisher(String, "~/categories", LATCHED_QOS)
        self._pub_categories.publish(String(data=json.dumps(self.categories_info())))
        self.cameras = [Camera(self, spec) for spec in self.specs]
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self._started = time.monotonic()
        self._diag_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        for cam in self.cameras:
            cam.start()
        self.get_logger().info(
            f"{self.rt.info['backend']} {self.rt.manifest.precision} bundle {self.params.bundle} "
            f"(input {self.rt.info['input_size'][0]}x{self.rt.info['input_size'][1]}), semantic as "
            f"{self.semantic_encoding}, qos {self.params.qos}, {len(self.cameras)} camera(s) on one model"
        )
        for cam in self.cameras:
            self.get_logger().info(
                f"camera {cam.spec.name}: {cam.spec.topic} ({cam.spec.transport}) -> {cam.spec.output('panoptic')}"
            )

    # -- setup -----------------------------------------------------------------------------
    def _setup_runtime(self) -> None:
        from edgeps.runtimes import load

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
        h, w = self.rt.manifest.input.size
        self.rt.predict(np.zeros((h, w, 3), np.uint8))  # warm-up: the first inference is slow

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
            "cameras": {
                cam.name: {"topic": cam.topic, "transport": cam.transport, "panoptic": cam.output("panoptic")}
                for cam in self.specs
            },
        }

    def segments_info(self, header: Any, frame_hw: tuple[int, int], segments: list) -> dict[str, Any]:
        """The per-frame JSON of ``segments`` (std_msgs/String has no header: it is inside)."""
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
            "stamp": {"sec": int(header.stamp.sec), "nanosec": int(header.stamp.nanosec)},
            "frame_id": header.frame_id,
            "height": int(frame_hw[0]),
            "width": int(frame_hw[1]),
            "segments": out,
        }

    # -- figures and shutdown --------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        """One DiagnosticArray on /diagnostics, a status per camera (the 1 Hz timer calls it)."""
        now = time.monotonic()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [cam.diagnostic_status(now, self._started) for cam in self.cameras]
        self._pub_diagnostics.publish(msg)

    def stats(self) -> dict[str, Any]:
        """Counters summed over the cameras (and per camera under ``cameras``) and median
        latencies (ms) over the last frames: ``in_to_panoptic`` is from the subscription callback
        to the panoptic map published; ``node_overhead`` is that minus ``predict`` (what the
        node adds to ``rt.predict``, waiting for the shared model included);
        ``frames_per_model_call`` is the mean batch the shared model ran (1.0 for a batch-1 bundle)."""
        per = {cam.spec.name: cam.counters() for cam in self.cameras}
        out: dict[str, Any] = {
            key: sum(c[key] for c in per.values())
            for key in ("received", "dropped_by_latest_slot", "processed", "rejected", "overlays")
        }
        lat = [x for cam in self.cameras for x in cam.latencies()]
        if lat:
            for key in lat[0]:
                out[f"{key}_ms"] = round(statistics.median(x[key] for x in lat), 3)
            out["node_overhead_ms"] = round(statistics.median(x["in_to_panoptic"] - x["predict"] for x in lat), 3)
        out["frames_per_model_call"] = round(self.model.mean_batch(), 3)
        out["cameras"] = per
        return out

    def close(self) -> None:
        """Stop the workers (each after the frame it is on), then destroy the node."""
        self.destroy_timer(self._diag_timer)
        for cam in self.cameras:
            cam.stop()
        self.destroy_node()


def spin(node: PanopticNode) -> None:
    """Spin until Ctrl-C or ROS shutdown; then stop the workers and print the figures."""
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
