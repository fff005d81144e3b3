"""The base install (numpy, OpenCV, PyYAML) imports and post-processes with no torch at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_AND_RUN = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        BLOCKED = ("torch", "torchvision", "onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime", "rclpy")
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch should not be importable here")

    import numpy as np
    import edgeps, edgeps.postprocess, edgeps.metrics, edgeps.visualize, edgeps.categories
    import edgeps.io.coco_panoptic, edgeps.io.cityscapes, edgeps.apps.cli

    sem = np.zeros((64, 64), np.int64); sem[10:30, 10:30] = 1
    heat = np.zeros((64, 64), np.float32); heat[20, 20] = 0.9
    off = np.zeros((2, 64, 64), np.float32)
    pan = edgeps.postprocess.panoptic_from_heads(sem, heat, off, thing_ids=[1], stuff_area=10)
    assert set(np.unique(pan).tolist()) == {0, 1001}, np.unique(pan)
    heavy = [m for m in sys.modules if m.split(".")[0] in Block.BLOCKED]
    assert not heavy, heavy
    print("OK", edgeps.__version__)
    """
)


def test_core_imports_and_postprocesses_without_torch():
    proc = subprocess.run([sys.executable, "-c", BLOCK_AND_RUN], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")


def test_cli_version():
    proc = subprocess.run(
        [sys.executable, "-m", "edgeps.apps.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("edgeps ")
