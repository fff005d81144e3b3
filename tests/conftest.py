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


# Input size of the tiny model that export/runtime tests share (H, W).
TINY_SIZE = (64, 128)


def train_tiny_checkpoint(out: Path, **model: object) -> Path:
    """Train the tiny model (``model`` overrides its model section) into ``out``; returns last.pt."""
    from edgeps.training.config import config_from_dict
    from edgeps.training.trainer import train

    cfg = config_from_dict(
        {
            "model": {
                "width_mult": 0.5,
                "pretrained": False,
                "semantic_channels": 32,
                "instance_channels": 32,
                "aspp_channels": 32,
                "head_channels": 16,
                **model,
            },
            "data": {
                "train_images": 8,
                "val": "synth:val:2",
                "val_images": 2,
                "input_size": list(TINY_SIZE),
                "crop": list(TINY_SIZE),
                "scale_range": [1.0, 1.0],
                "center_sigma": 3.0,
            },
            "schedule": {
                "max_steps": 40,
                "batch_size": 4,
                "lr": 0.005,
                "eval_every": 0,
                "checkpoint_every": 0,
                "threads": 2,
            },
            "postprocess": {"stuff_area": 32},
        }
    )
    train(cfg, out, show_progress=False)
    return out / "checkpoints" / "last.pt"


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
