"""Build the tiny ONNX fp32 bundle the ROS 2 tests run (needs torch: run it in the main ``.venv``).

The ROS 2 environment has no torch, so ``scripts/test.sh`` runs this once in ``.venv`` and
passes the bundle folder to the ROS tests in ``EDGEPS_ROS2_BUNDLE``. The model is the same
tiny one the main suite trains (``tests/conftest.py``): 40 steps at 64x128, enough for real
segments, a few seconds on two cores.

Usage: ``.venv/bin/python tests/ros2/make_bundle.py OUT_DIR`` -> prints ``OUT_DIR/onnx-fp32``.
"""

from __future__ import annotations

import sys
from pathlib import Path

TINY_SIZE = (64, 128)


def make_bundle(out: Path) -> Path:
    """Train the tiny model into ``out/tiny`` and export ``out/onnx-fp32`` (reused when present)."""
    from edgeps.bundle import MANIFEST_NAME
    from edgeps.export.pipeline import export_bundles
    from edgeps.training.config import config_from_dict
    from edgeps.training.trainer import train

    bundle = out / "onnx-fp32"
    if (bundle / MANIFEST_NAME).is_file():
        return bundle
    cfg = config_from_dict(
        {
            "model": {
                "width_mult": 0.5,
                "pretrained": False,
                "semantic_channels": 32,
                "instance_channels": 32,
                "aspp_channels": 32,
                "head_channels": 16,
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
    train(cfg, out / "tiny", show_progress=False)
    results = export_bundles(
        out / "tiny" / "checkpoints" / "last.pt", ["onnx"], ["fp32"], out, parity_data="synth:val:2", parity_images=2
    )
    return results[0].path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_bundle.py OUT_DIR")
    print(make_bundle(Path(sys.argv[1])))
