"""The model variants of issue 26 export on every backend at a small size and pass the parity
gate, fp32 and int8: the FPN neck (configs/synth-fpn.yaml, configs/experiments/fpn-80.yaml) and
the stride-2 instance decoder (``model.instance_stride: 2``)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import TINY_SIZE, train_tiny_checkpoint

from edgeps.bundle import read_manifest
from edgeps.export.parity import INT8_MIN_AGREEMENT

FP32_MIN = 0.99  # fp32 graphs of the same weights: nearly every pixel's class agrees (ties may flip)


@pytest.mark.parametrize("variant", [{"neck": "fpn"}, {"instance_stride": 2}], ids=["fpn-neck", "instance-stride-2"])
def test_model_variant_exports_on_all_three_backends_within_the_parity_gate(tmp_path, variant) -> None:
    from edgeps.export.pipeline import export_bundles
    from edgeps.runtimes import load

    ckpt = train_tiny_checkpoint(tmp_path / "train", **variant)
    results = export_bundles(
        ckpt,
        ["onnx", "openvino", "tflite"],
        ["fp32", "int8"],
        tmp_path / "bundles",
        calib="synth:train:8",
        calib_images=8,
        parity_data="synth:val:2",
        parity_images=2,
    )
    names = sorted(r.name for r in results)
    assert names == sorted(f"{f}-{p}" for f in ("onnx", "openvino", "tflite") for p in ("fp32", "int8"))
    for r in results:
        m = read_manifest(r.path)
        assert m.parity and m.parity["images"] == 2 and m.input.size == TINY_SIZE
        assert m.parity["class_agreement"] >= (FP32_MIN if m.precision == "fp32" else INT8_MIN_AGREEMENT), r.name
        rt = load(r.path)
        frame = np.full((*TINY_SIZE, 3), 64, np.uint8)
        assert rt.predict(frame).panoptic.shape == TINY_SIZE
