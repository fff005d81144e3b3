"""Several cameras on one ROS 2 node against one node per camera: processed FPS per camera and
total throughput, on this machine, in one run.

    .venv-ros2/bin/python bench/ros2_cameras.py --bundle BUNDLE --cameras 1,2,4 --hz 30 --size 512x1024

For each camera count N it starts, one after the other: one ``edgeps ros2`` node with
``image_topics`` = N synthetic cameras, and (for N > 1) N ``edgeps ros2`` nodes with one
``image_topic`` each (namespaces ``/bench_cam<i>``). This process plays the cameras: every
1/hz seconds it publishes one frame on each camera topic (the same instant for all cameras:
frames that arrive together), from a loop of synthetic street frames of ``--size``, best effort
like camera drivers; with ``--transport compressed`` as JPEG CompressedImage. It counts the
``segments`` answers of each camera in a ``--seconds`` window after ``--warmup`` seconds, and
reads each node's stats line at the end (frames received, dropped by the latest-frame slot).

Fast DDS (the PyPI rclpy's middleware) sends a sample larger than its shared-memory segment
(512 KB by default) over UDP in fragments, and best effort loses most 512x1024 frames that way
(measured here: 1-2 of 240 raw 512x1024 frames arrive at 30 Hz, 240 of 240 with the profile).
So by default (``--dds-profile large_shm``) the run gives every process a Fast DDS profile
with a 32 MB shared-memory segment (:data:`LARGE_SHM_PROFILE`, also in docs/ros2.md), unless
``FASTDDS_DEFAULT_PROFILES_FILE`` is already set; ``--dds-profile none`` keeps Fast DDS's
defaults.

The publisher shares the machine with the nodes (as a camera driver would), so read the
figures against each other within one run. Not a test: it takes a few minutes. Writes JSON
with ``--json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from edgeps.apps.arguments import parse_size
from edgeps.data.street import render_video
from edgeps.errors import ConfigError
from edgeps.stream.ros_image import array_to_image_fields
from edgeps.validate import check_choice, check_value

NODE = "edgeps_panoptic"
CAMERA_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT)
OUTPUT_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
START_TIMEOUT_S = 180.0
# Whole camera frames through shared memory on one host (see the module docstring).
LARGE_SHM_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<profiles xmlns="http://www.eprosima.com">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>shm_large</transport_id>
      <type>SHM</type>
      <segment_size>33554432</segment_size>
      <maxMessageSize>16777216</maxMessageSize>
    </transport_descriptor>
    <transport_descriptor>
      <transport_id>udp</transport_id>
      <type>UDPv4</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="edgeps_large_images" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>shm_large</transport_id>
        <transport_id>udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def camera_messages(frames: list[np.ndarray], transport: str) -> list[Any]:
    """One prebuilt message per frame (only the header changes when published)."""
    out = []
    for bgr in frames:
        if transport == "compressed":
            msg = CompressedImage()
            msg.format = "bgr8; jpeg compressed bgr8"
            msg.data = array.array("B", cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        else:
            f = array_to_image_fields(bgr, "bgr8")
            msg = Image()
            msg.height, msg.width, msg.encoding = f["height"], f["width"], "bgr8"
            msg.is_bigendian, msg.step = 0, f["step"]
            msg.data = array.array("B", f["data"])
        out.append(msg)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (``VmRSS``; 0 where /proc has none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class NodeRun:
    """One ``edgeps ros2 --params`` process (its log in ``folder``)."""

    def __init__(self, params: dict[str, Any], folder: Path, tag: str, namespace: str | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        params_file = folder / f"{tag}.yaml"
        params_file.write_text(yaml.safe_dump({NODE: {"ros__parameters": params}}))
        self.log_path = folder / f"{tag}.log"
        self._log = self.log_path.open("w")
        cmd = [sys.executable, "-m", "edgeps.apps.cli", "ros2", "--params", str(params_file)]
        if namespace:
            cmd += ["--ros-args", "-r", f"__ns:={namespace}"]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        log = self.log_path.read_text(errors="replace")
        m = re.search(r"edgeps-ros2 stats: (\{.*\})", log)
        if not m:
            raise RuntimeError(f"{self.log_path}: no stats line; log tail:\n{log[-2000:]}")
        return json.loads(m.group(1))


def run_setup(
    mode: str, n: int, args: argparse.Namespace, messages: list[Any], folder: Path, domain: int
) -> dict[str, Any]:
    """Play ``n`` cameras into one node (``mode`` = "one_node", or "one_node_batched" with
    ``--batch-bundle``) or into n nodes ("n_nodes")."""
    topics = [f"/bench_cam{i}/image_raw" + ("/compressed" if args.transport == "compressed" else "") for i in range(n)]
    bundle = args.batch_bundle if mode == "one_node_batched" else args.bundle
    base = {"bundle": str(bundle), "threads": args.threads, "publish_overlay": False}
    if mode == "one_node":
        base["max_batch"] = 1  # the unbatched setup, even when --bundle has a batch dimension
    if mode.startswith("one_node"):
        nodes = [NodeRun({**base, "image_topics": topics}, folder, f"{mode}-{n}")]
        outputs = [f"/{NODE}/bench_cam{i}/segments" for i in range(n)]
    else:
        nodes = [
            NodeRun({**base, "image_topic": t}, folder, f"{mode}-{n}-{i}", namespace=f"/bench_cam{i}")
            for i, t in enumerate(topics)
        ]
        outputs = [f"/bench_cam{i}/{NODE}/segments" for i in range(n)]

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    client = rclpy.create_node(f"edgeps_bench_cameras_{mode}_{n}", context=context)
    msg_type = CompressedImage if args.transport == "compressed" else Image
    pubs = [client.create_publisher(msg_type, t, CAMERA_QOS) for t in topics]
    lock = threading.Lock()
    window = {"open": False}
    answers: list[list[float]] = [[] for _ in range(n)]  # in_to_panoptic ms of answers inside the window
    sent = [0] * n

    def keep(i: int):
        def cb(msg: String) -> None:
            if window["open"]:
                t = json.loads(msg.data).get("timings_ms", {})
                with lock:
                    answers[i].append(float(t.get("in_to_panoptic", float("nan"))))

        return cb

    subs = [client.create_subscription(String, o, keep(i), OUTPUT_QOS) for i, o in enumerate(outputs)]
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    stop = threading.Event()
    result: dict[str, Any] = {"mode": mode, "cameras": n}
    try:
        end = time.monotonic() + START_TIMEOUT_S
        while not all(p.get_subscription_count() > 0 for p in pubs) or not all(
            s.get_publisher_count() > 0 for s in subs
        ):
            dead = [r.log_path for r in nodes if r.proc.poll() is not None]
            if dead or time.monotonic() > end:
                raise RuntimeError(f"nodes did not come up ({dead or 'timeout'}); see {folder}")
            time.sleep(0.1)
        time.sleep(1.0)

        def play() -> None:
            period = 1.0 / args.hz
            k = 0
            next_t = time.monotonic()
            while not stop.is_set():
                stamp = time.time_ns()
                for i, pub in enumerate(pubs):
                    msg = messages[(k + 7 * i) % len(messages)]  # each camera its own place in the loop
                    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp // 10**9, stamp % 10**9
                    msg.header.frame_id = f"bench_cam{i}"
                    pub.publish(msg)
                    if window["open"]:
                        sent[i] += 1
                k += 1
                next_t += period
                delay = next_t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_t = time.monotonic()  # the publisher itself cannot keep up: no burst to catch up

        player = threading.Thread(target=play, daemon=True)
        player.start()
        time.sleep(args.warmup)
        load_before = os.getloadavg()[0]
        cpu_before = sum(cpu_seconds(r.proc.pid) for r in nodes)
        window["open"] = True
        t0 = time.monotonic()
        time.sleep(args.seconds)
        window["open"] = False
        span = time.monotonic() - t0
        node_cpu = sum(cpu_seconds(r.proc.pid) for r in nodes) - cpu_before
        node_rss = sum(rss_mb(r.proc.pid) for r in nodes)
        stop.set()
        player.join(timeout=10)
        with lock:
            per = [len(a) / span for a in answers]
            lat = [statistics.median(a) if a else None for a in answers]
        result.update(
            {
                "seconds": round(span, 2),
                "published_fps_per_camera": [round(s / span, 2) for s in sent],
                "processed_fps_per_camera": [round(x, 2) for x in per],
                "processed_fps_total": round(sum(per), 2),
                "fairness_min_over_max": round(min(per) / max(per), 3) if max(per) > 0 else None,
                "in_to_panoptic_p50_ms_per_camera": [None if x is None else round(x, 1) for x in lat],
                "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "node_cpu_seconds": round(node_cpu, 2),
                "node_rss_mb_total": round(node_rss, 1),
                "frames_per_node_cpu_second": round(sum(per) * span / node_cpu, 3) if node_cpu > 0 else None,
            }
        )
    finally:
        stop.set()
        stats = [r.stop() for r in nodes]
        executor.shutdown()
        spinner.join(timeout=10)
        client.destroy_node()
        context.try_shutdown()
    if mode.startswith("one_node"):
        cams = list(stats[0]["cameras"].values())
        result["frames_per_model_call"] = stats[0].get("frames_per_model_call")
    else:
        cams = [next(iter(s["cameras"].values())) for s in stats]
    result["node_stats_per_camera"] = [
        {k: c[k] for k in ("received", "dropped_by_latest_slot", "processed", "rejected")} for c in cams
    ]
    stages = ("decode_ms", "preprocess_ms", "model_wait_ms", "infer_ms", "postprocess_ms", "in_to_panoptic_ms")
    result["node_median_ms"] = {  # the nodes' own medians (mean over the nodes of N single-camera nodes)
        k: round(statistics.fmean(s[k] for s in stats), 1) for k in stages if all(k in s for s in stats)
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--cameras", default="1,2,4", help="camera counts, comma list")
    ap.add_argument("--hz", type=float, default=30.0, help="frames per second per camera")
    ap.add_argument("--size", default="512x1024", help="camera frame HxW")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per setup")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of frames before the window")
    ap.add_argument("--threads", type=int, default=0, help="node parameter threads (0: the backend's default)")
    ap.add_argument("--transport", default="raw", help="raw (sensor_msgs/Image bgr8) or compressed (JPEG)")
    ap.add_argument("--dds-profile", default="large_shm", help="large_shm (default) or none: see the module doc")
    ap.add_argument(
        "--batch-bundle",
        type=Path,
        help="the same model exported with a batch dimension (edgeps export --batch dynamic): adds a one-node "
        "setup with it for every camera count > 1 (it may be --bundle itself: the other setups run it with "
        "max_batch 1)",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    check_choice(args.transport, ("raw", "compressed"), "--transport")
    check_choice(args.dds_profile, ("large_shm", "none"), "--dds-profile")
    check_value(args.hz, float, "--hz")
    if args.hz <= 0 or args.seconds <= 0 or args.warmup < 0 or args.threads < 0:
        raise ConfigError("--hz and --seconds: > 0; --warmup and --threads: >= 0")
    counts = [int(c) for c in args.cameras.split(",") if c.strip()]
    if not counts or min(counts) < 1:
        raise ConfigError(f"--cameras: positive counts, got {args.cameras!r}")
    size = parse_size(args.size)
    domain = random.SystemRandom().randint(100, 200)
    os.environ["ROS_DOMAIN_ID"] = str(domain)  # the nodes inherit it: this run's graph only
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    frames = [s.image for s in render_video(11, size, 30)]
    messages = camera_messages(frames, args.transport)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeps-ros2-bench-") as tmp:
        dds = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or "Fast DDS defaults"
        if args.dds_profile == "large_shm" and not os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
            path = Path(tmp) / "fastdds_large_shm.xml"
            path.write_text(LARGE_SHM_PROFILE)
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)  # this process and the nodes
            dds = "large_shm (32 MB shared-memory segment)"
        for n in counts:
            modes = ["one_node", "n_nodes"] + (["one_node_batched"] if args.batch_bundle else [])
            for mode in modes if n > 1 else ["one_node"]:
                print(f"{mode} x {n} camera(s) ...", file=sys.stderr, flush=True)
                results.append(run_setup(mode, n, args, messages, Path(tmp), domain))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "bundle": str(args.bundle),
        "batch_bundle": str(args.batch_bundle) if args.batch_bundle else None,
        "size": list(size),
        "hz": args.hz,
        "transport": args.transport,
        "threads": args.threads,
        "dds_profile": dds,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    single = {r["cameras"]: r for r in results if r["mode"] == "n_nodes"}
    machine = f"{report['cpu_model']}, {report['cpu_count']} cores"
    print(f"\n{machine}; {size[0]}x{size[1]} {args.transport} at {args.hz:g} Hz per camera; DDS: {dds}")
    print(
        "| cameras | setup | processed FPS per camera | total FPS | vs N nodes | min/max | frames per node CPU s "
        "| infer p50 ms | in->panoptic p50 ms | RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        base = single.get(r["cameras"])
        ratio = (
            f"{r['processed_fps_total'] / base['processed_fps_total']:.2f}x"
            if base and r["mode"].startswith("one_node") and base["processed_fps_total"] > 0
            else ""
        )
        setup = {"one_node": "1 node", "one_node_batched": "1 node, batched"}.get(r["mode"], f"{r['cameras']} nodes")
        if r.get("frames_per_model_call"):
            setup += f" ({r['frames_per_model_call']:.2f} frames/call)"
        per = ", ".join(f"{x:.1f}" for x in r["processed_fps_per_camera"])
        lat = ", ".join("-" if x is None else f"{x:.0f}" for x in r["in_to_panoptic_p50_ms_per_camera"])
        print(
            f"| {r['cameras']} | {setup} | {per} | {r['processed_fps_total']:.1f} | {ratio} | "
            f"{r['fairness_min_over_max']} | {r['frames_per_node_cpu_second']} | "
            f"{r['node_median_ms'].get('infer_ms', '-')} | {lat} | {r['node_rss_mb_total']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
