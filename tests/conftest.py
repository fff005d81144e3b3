"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "coco_panoptic_sample"


@pytest.fixture(scope="session")
def coco_sample() -> Path:
    """The two-image COCO panoptic sample (panoptic_examples.json + panoptic_examples/*.png)."""
    if not (COCO_SAMPLE / "panoptic_examples.json").is_file() or not (COCO_SAMPLE / "panoptic_examples").is_dir():
        pytest.skip(
            f"COCO panoptic sample data not found at {COCO_SAMPLE} (expected ../shared/data/coco_panoptic_sample "
            "next to the repo)"
        )
    return COCO_SAMPLE


# In CI (CI=true) a skipped test is a failure, unless it needs hardware that cannot exist on
# the CI machines (a GPU, a camera device) and its reason says so with this prefix.
HARDWARE_SKIP_PREFIX = "needs hardware:"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    bad = []
    for rep in reporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        if HARDWARE_SKIP_PREFIX not in reason:
            bad.append(f"{rep.nodeid}: {reason}")
    if bad:
        reporter.write_line("CI=true: skipped tests count as failures:", red=True)
        for line in bad:
            reporter.write_line("  " + line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The tiny model that export/runtime tests share (input TINY_SIZE, H x W): tests/tiny_model.py.
from tiny_model import train_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small model trained for a few dozen steps (confident enough for int8 parity)."""
    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def onnx_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    """An ONNX fp32 bundle of the tiny model (64x128 input), shared by the streaming tests."""
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("onnx_bundle")
    (result,) = export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], out, parity_data="synth:val:2", parity_images=2)
    return result.path


@pytest.fixture(scope="session")
def synth_video(tmp_path_factory) -> Path:
    """A 24-frame 128x256 synthetic street video (mp4v, written with OpenCV) with its
    per-frame ground truth in ``synth_gt/`` (persistent object ids)."""
    from edgeps.data.video import write_synth_video

    path = tmp_path_factory.mktemp("video") / "synth.mp4"
    write_synth_video(path, 24, (128, 256), seed=3)
    return path
