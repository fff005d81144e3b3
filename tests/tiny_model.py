"""The tiny model the tests train (imported by conftest and by tests that need their own variant)."""

from __future__ import annotations

from pathlib import Path

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
