"""ROS 2 tests: a real rclpy graph on loopback. They run in ``.venv-ros2`` (scripts/test.sh).

The main ``.venv`` has no rclpy: there, this folder is left out of collection (not skipped),
unless ``EDGEPS_ROS2_REQUIRED`` is set, as scripts/test.sh does for the ROS run, so a broken
ROS install fails loudly instead of vanishing. The bundle comes from ``EDGEPS_ROS2_BUNDLE``
(scripts/test.sh builds it in ``.venv``, which has torch); without it, the fixture builds one
with the torch interpreter in ``EDGEPS_TORCH_PYTHON`` (default ``.venv/bin/python``).
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

if importlib.util.find_spec("rclpy") is None and not os.environ.get("EDGEPS_ROS2_REQUIRED"):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def ros_domain() -> int:
    """A random domain on loopback only, so parallel runs and other graphs never cross."""
    domain = random.SystemRandom().randint(100, 200)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_LOCALHOST_ONLY"] = "1"  # Humble..Jazzy
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Jazzy and later
    return domain


@pytest.fixture(scope="session")
def ros2_bundle(tmp_path_factory) -> Path:
    """The tiny ONNX fp32 bundle (see tests/ros2/make_bundle.py)."""
    given = os.environ.get("EDGEPS_ROS2_BUNDLE")
    if given:
        path = Path(given)
        assert (path / "edgeps.yaml").is_file(), f"EDGEPS_ROS2_BUNDLE={given} is not a bundle folder"
        return path
    torch_python = Path(os.environ.get("EDGEPS_TORCH_PYTHON", REPO / ".venv" / "bin" / "python"))
    if not torch_python.is_file():
        pytest.skip(
            f"no bundle: set EDGEPS_ROS2_BUNDLE, or EDGEPS_TORCH_PYTHON to a python with torch ({torch_python} missing)"
        )
    out = tmp_path_factory.mktemp("ros2_bundle")
    run = subprocess.run(
        [str(torch_python), str(HERE / "make_bundle.py"), str(out)], capture_output=True, text=True, timeout=1800
    )
    assert run.returncode == 0, f"make_bundle.py failed:\n{run.stderr[-3000:]}"
    return Path(run.stdout.strip().splitlines()[-1])
