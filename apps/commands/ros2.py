"""``edgeps ros2``: run the ROS 2 panoptic node from a ROS 2 params file.

The file is read with ``yaml.safe_load`` and validated before ROS starts, so a typo fails in
a second with the parameter's name; the values then reach the node as parameter overrides.
Anything after ``--ros-args`` goes to ROS unchanged (remappings, namespace, log level), e.g.
``edgeps ros2 --params FILE --ros-args -r __ns:=/front``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from edgeps.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params FILE``, ``--set NAME=VALUE`` (repeatable) and ``--ros-args ...`` (the rest)."""
    parser.add_argument(
        "--params",
        type=Path,
        help="ROS 2 params file (edgeps_panoptic: ros__parameters: ...), e.g. configs/ros2_params.yaml",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one parameter (YAML value), repeatable",
    )
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=None,
        metavar="ARG",
        help="the rest of the command line goes to ROS unchanged (e.g. --ros-args -r __ns:=/front --log-level debug)",
    )


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set: expected NAME=VALUE, got {pair!r}")
        out[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def run(args: argparse.Namespace) -> int:
    """Read and check the parameters (file, then ``--set``), then run the node until Ctrl-C;
    the node's exit status (2 for a parameter the node itself rejects)."""
    from edgeps.apps.ros2.params import params_from_dict, read_params_file

    raw = read_params_file(args.params) if args.params else {}
    overrides = _overrides(args.set)
    # one way of naming the cameras: --set image_topics replaces the file's image_topic and back
    for given, other in (("image_topics", "image_topic"), ("image_topic", "image_topics")):
        if given in overrides and other not in overrides:
            raw.pop(other, None)
    raw.update(overrides)
    params_from_dict(raw)  # fail here, before ROS starts, naming the parameter
    ros_args = [] if args.ros_args is None else ["--ros-args", *args.ros_args]
    try:
        from edgeps.apps.ros2.node import main
    except ImportError as exc:
        raise ConfigError(
            f"the ROS 2 node needs rclpy, sensor_msgs and std_msgs: pip install 'edgeps[ros2]' ({exc})"
        ) from None
    return main(["edgeps-ros2", *ros_args], overrides=raw)
