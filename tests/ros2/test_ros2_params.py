"""Invalid node parameters are rejected at start, naming the parameter (both entry points);
the example params file is valid; the QoS default is the same in code, params file and docs;
cameras, transports and output namespaces come from the topics; post-processing overrides
reach the runtime. Also the compressed-image decoder and the /diagnostics level rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeps.apps.ros2.params import (
    DEFAULTS,
    NODE_NAME,
    CameraSpec,
    apply_postprocess,
    camera_name,
    camera_specs,
    params_from_dict,
    read_params_file,
)
from edgeps.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _edgeps_ros2(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgeps.apps.cli", "ros2", *args], capture_output=True, text=True, timeout=120, **kw
    )


def test_example_params_file_is_valid_apart_from_its_bundle_path(ros2_bundle):
    raw = read_params_file(REPO / "configs" / "ros2_params.yaml")
    assert raw["bundle"] == "bundles/onnx-int8" and raw["qos"] == "sensor_data"
    assert set(raw) <= set(DEFAULTS) and {k: raw[k] for k in raw if k != "bundle"} == {
        k: DEFAULTS[k] for k in raw if k != "bundle"
    }, "the example file shows the code defaults"
    p = params_from_dict({**raw, "bundle": str(ros2_bundle)})
    assert (p.image_topic, p.publish_overlay, p.threads, p.postprocess_overrides()) == (
        "/camera/image_raw",
        True,
        0,
        {},
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"qos": "fast"}, "parameter 'qos': expected one of reliable, sensor_data, got 'fast'"),
        ({"threads": -2}, "parameter 'threads': expected >= 0"),
        ({"threads": "two"}, "parameter 'threads': expected integer, got str 'two'"),
        ({"threshold": 1.5}, "parameter 'threshold': a center-heatmap threshold in [0, 1]"),
        ({"nms_kernel": 4}, "parameter 'nms_kernel': a positive odd integer"),
        ({"publish_overlay": "yes"}, "parameter 'publish_overlay': expected bool"),
        ({"semantic_encoding": "mono32"}, "parameter 'semantic_encoding': expected one of auto, mono8, mono16"),
        ({"thresold": 0.2}, "parameter 'thresold': unknown"),
        ({"bundle": "/no/such/bundle"}, "parameter 'bundle': folder not found: /no/such/bundle"),
        ({"input_transport": "zstd"}, "parameter 'input_transport': expected one of auto, raw, compressed"),
        ({"image_topics": "/front/image_raw"}, "parameter 'image_topics': expected list, got str"),
        ({"image_topics": ["/a/image", 3]}, "parameter 'image_topics'[1]: expected string, got int 3"),
        ({"image_topics": ["/a/image", "/a/image"]}, "parameter 'image_topics': /a/image is listed twice"),
        ({"image_topics": ["/a/image"], "image_topic": "/b/image"}, "parameter 'image_topics': set either image_topic"),
        (
            {"image_topics": ["/x/front/image", "/y/front/image"]},
            "parameter 'image_topics': two cameras are named 'front'",
        ),
        (
            {"image_topics": ["/a/image", "/b/image"], "camera_names": ["a"]},
            "parameter 'camera_names': 1 names for 2 image_topics",
        ),
        (
            {"image_topics": ["/a/image"], "camera_names": ["front cam"]},
            "parameter 'camera_names'[0]: 'front cam' is not",
        ),
        ({"camera_names": ["front"]}, "parameter 'camera_names': only with image_topics"),
        (
            {"image_topic": "/a/image/compressed", "input_transport": "raw"},
            "parameter 'input_transport': raw (sensor_msgs/Image) but topic /a/image/compressed",
        ),
        ({"no_frame_error_s": 0}, "parameter 'no_frame_error_s': seconds without a frame"),
    ],
)
def test_edgeps_ros2_params_rejects_bad_values_before_ros_starts(ros2_bundle, tmp_path, bad, message):
    params = {"bundle": str(ros2_bundle), **bad}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": params}}))
    run = _edgeps_ros2(["--params", str(path)])
    assert run.returncode == 2, run.stderr
    assert f"edgeps ros2: error: {message}" in run.stderr
    with pytest.raises(ConfigError, match="parameter '"):
        params_from_dict(params)


def test_params_file_shape_errors(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("other_node:\n  ros__parameters: {qos: reliable}\n")
    run = _edgeps_ros2(["--params", str(path)])
    assert run.returncode == 2 and "no 'edgeps_panoptic' (or '/**') entry with ros__parameters" in run.stderr
    run = _edgeps_ros2(["--set", "bundle"])
    assert run.returncode == 2 and "--set: expected NAME=VALUE" in run.stderr
    run = _edgeps_ros2([])
    assert run.returncode == 2 and "parameter 'bundle': required" in run.stderr


def test_edgeps_ros2_entry_point_rejects_bad_ros_args(ros_domain, ros2_bundle):
    """The console script path: values from --ros-args reach the same validation in the node."""
    exe = Path(sys.executable).with_name("edgeps-ros2")
    assert exe.is_file(), "edgeps-ros2 console script missing (pip install -e '.[ros2]')"
    run = subprocess.run(
        [str(exe), "--ros-args", "-p", f"bundle:={ros2_bundle}", "-p", "qos:=fast"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        run.returncode == 2
        and "edgeps-ros2: error: parameter 'qos': expected one of reliable, sensor_data" in run.stderr
    )
    run = subprocess.run(
        [str(exe), "--ros-args", "-p", f"bundle:={ros2_bundle}", "-p", "top_k:=-5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "parameter 'top_k'" in run.stderr


def test_postprocess_overrides_replace_the_bundle_settings(ros2_bundle):
    from edgeps.runtimes import load

    rt = load(ros2_bundle, threads=1)
    base = rt.manifest.postprocess
    p = params_from_dict({"bundle": str(ros2_bundle), "threshold": 0.3, "top_k": 0, "stuff_area": 5})
    new = apply_postprocess(base, p)
    assert (new.threshold, new.top_k, new.stuff_area, new.nms_kernel) == (0.3, None, 5, base.nms_kernel)
    assert apply_postprocess(base, params_from_dict({"bundle": str(ros2_bundle)})) is base


def test_qos_default_is_best_effort_in_code_params_file_and_docs():
    """A best-effort subscription hears every camera driver; the three places say the same."""
    assert DEFAULTS["qos"] == "sensor_data"
    assert read_params_file(REPO / "configs" / "ros2_params.yaml")["qos"] == "sensor_data"
    assert "| `qos` | `sensor_data` |" in (REPO / "docs" / "ros2.md").read_text()


@pytest.mark.parametrize(
    "topic, name",
    [
        ("/camera/image_raw", "camera"),
        ("/front/image_raw", "front"),
        ("/robot/rear/image_rect_color/compressed", "rear"),
        ("/front_cam", "front_cam"),
        ("/cam-left/image", "cam_left"),
        ("/2nd/image", "camera_2nd"),
    ],
)
def test_camera_name_is_the_namespace_of_the_image_topic(topic, name):
    assert camera_name(topic) == name


def test_camera_specs_outputs_and_transports(ros2_bundle):
    b = str(ros2_bundle)
    one = camera_specs(params_from_dict({"bundle": b}))
    assert one == [CameraSpec("camera", "/camera/image_raw", "raw", "")] and one[0].output("panoptic") == "~/panoptic"
    auto = camera_specs(params_from_dict({"bundle": b, "image_topic": "/cam/image_raw/compressed"}))
    assert auto[0].transport == "compressed" and auto[0].output("segments") == "~/segments"
    multi = camera_specs(
        params_from_dict({"bundle": b, "image_topics": ["/front/image_raw", "/rear/image_raw/compressed"]})
    )
    assert [(c.name, c.transport, c.output("panoptic")) for c in multi] == [
        ("front", "raw", "~/front/panoptic"),
        ("rear", "compressed", "~/rear/panoptic"),
    ]
    named = camera_specs(
        params_from_dict(
            {
                "bundle": b,
                "image_topics": ["/x/cam/image", "/y/cam/image"],
                "camera_names": ["left", "right"],
                "input_transport": "compressed",
            }
        )
    )
    assert [(c.name, c.topic, c.transport) for c in named] == [
        ("left", "/x/cam/image", "compressed"),
        ("right", "/y/cam/image", "compressed"),
    ]


def test_compressed_decoder_jpeg_png_and_corrupt_frames():
    import cv2
    import numpy as np

    from edgeps.apps.ros2.compressed import compressed_to_bgr
    from edgeps.errors import FormatError

    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 255, (40, 64, 3), dtype=np.uint8), (5, 5), 0)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    np.testing.assert_array_equal(compressed_to_bgr("png", png), bgr)
    gray = cv2.imencode(".png", bgr[..., 0])[1].tobytes()
    np.testing.assert_array_equal(compressed_to_bgr("mono8; png compressed mono8", gray), cv2.merge([bgr[..., 0]] * 3))
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    out = compressed_to_bgr("bgr8; jpeg compressed bgr8", bytearray(jpg) + b"\x00\x00")  # zero padding is fine
    np.testing.assert_array_equal(out, cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR))
    for data, message in [
        (b"", "data: empty compressed image (format 'jpeg')"),
        (jpg[: len(jpg) // 2], "data: truncated JPEG, no end-of-image marker (format 'jpeg')"),
        (b"GIF89a....", "data: neither JPEG nor PNG (first bytes 47494638)"),
        (png[:40], "data: OpenCV cannot decode this PNG (format 'jpeg')"),
    ]:
        with pytest.raises(FormatError) as err:
            compressed_to_bgr("jpeg", data)
        assert str(err.value) == message


def test_diagnostics_levels():
    from diagnostic_msgs.msg import DiagnosticStatus

    from edgeps.apps.ros2.node import health

    assert health(0.1, 30.0, 29.5, 0, 5.0) == (DiagnosticStatus.OK, "29.5 fps")
    level, message = health(0.1, 30.0, 12.0, 0, 5.0)
    assert level == DiagnosticStatus.WARN and message == "processing 12.0 fps, below the input rate 30.0 fps"
    level, message = health(0.1, 30.0, 30.0, 2, 5.0)
    assert level == DiagnosticStatus.WARN and message.startswith("2 frames could not be decoded")
    assert health(6.0, 0.0, 0.0, 0, 5.0) == (DiagnosticStatus.ERROR, "no frames for 6.0 s")


def test_ros_args_after_params_reach_ros_and_set_replaces_the_file_camera_topics(ros_domain, ros2_bundle, tmp_path):
    """``edgeps ros2 --params FILE --set image_topic=... --ros-args -r __ns:=/front``: the
    namespace reaches ROS (the node's logger name), ``--set image_topic`` replaces the file's
    ``image_topics`` instead of clashing with it."""
    import signal
    import time

    path = tmp_path / "p.yaml"
    params = {"bundle": str(ros2_bundle), "image_topics": ["/a/image", "/b/image"]}
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": params}}))
    log = tmp_path / "node.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgeps.apps.cli", "ros2", "--params", str(path), "--set", "image_topic=/c/image"]
            + ["--ros-args", "-r", "__ns:=/front"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            end = time.monotonic() + 120
            while "camera c:" not in log.read_text() and proc.poll() is None and time.monotonic() < end:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    text = log.read_text()
    assert "[front.edgeps_panoptic]: camera c: /c/image (raw) -> ~/panoptic" in text, text
    assert "/a/image" not in text and proc.returncode == 0
