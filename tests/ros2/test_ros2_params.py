"""Invalid node parameters are rejected at start, naming the parameter (both entry points);
the example params file is valid; post-processing overrides reach the runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeps.apps.ros2.params import NODE_NAME, apply_postprocess, params_from_dict, read_params_file
from edgeps.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _edgeps_ros2(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgeps.apps.cli", "ros2", *args], capture_output=True, text=True, timeout=120, **kw
    )


def test_example_params_file_is_valid_apart_from_its_bundle_path(ros2_bundle):
    raw = read_params_file(REPO / "configs" / "ros2_params.yaml")
    assert raw["bundle"] == "bundles/onnx-int8" and raw["qos"] == "sensor_data"
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
