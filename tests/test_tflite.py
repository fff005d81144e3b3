"""TFLite (LiteRT): export fp32/fp16/int8 with the parity gate, the tflite runtime, int8 I/O
scaling, NHWC input, and a tflite-runtime (old package, numpy<2) environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeps.bundle import MANIFEST_NAME, read_manifest
from edgeps.errors import ConfigError, FormatError

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)
HEADS = ("semantic", "semantic_prob", "center", "offset")


@pytest.fixture(scope="session")
def tflite_bundles(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("tflite")
    results = export_bundles(
        tiny_checkpoint,
        ["tflite"],
        ["fp32", "fp16", "int8"],
        out,
        calib="synth:train:8",
        calib_images=8,
        parity_data="synth:val:2",
        parity_images=2,
    )
    return {r.name: r.path for r in results}


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


def test_export_passes_the_parity_gate(tflite_bundles):
    assert sorted(tflite_bundles) == ["tflite-fp16", "tflite-fp32", "tflite-int8"]
    fp32 = read_manifest(tflite_bundles["tflite-fp32"])
    assert fp32.format == "tflite" and fp32.model_file == "model.tflite" and fp32.input.size == SIZE
    assert max(fp32.parity["max_abs_diff"].values()) <= 1e-3 and fp32.parity["class_agreement"] >= 0.999
    assert read_manifest(tflite_bundles["tflite-fp16"]).parity["class_agreement"] >= 0.99
    int8 = read_manifest(tflite_bundles["tflite-int8"])
    assert int8.parity["class_agreement"] >= 0.98
    assert int8.calibration == {"source": "synth:train:8", "images": 8}
    assert int8.target["recipe"] == "static_wi8_ai8" and int8.target["layout"] == "NCHW"
    sizes = {n: (p / "model.tflite").stat().st_size for n, p in tflite_bundles.items()}
    assert sizes["tflite-int8"] < sizes["tflite-fp16"] < sizes["tflite-fp32"]


@pytest.mark.parametrize("name", ["tflite-fp32", "tflite-int8"])
def test_manifest_output_indices_follow_the_signature(tflite_bundles, name):
    """Heads are found by the signature (output_i = i-th head), whatever the flatbuffer order."""
    interp = _interpreter(tflite_bundles[name] / "model.tflite")
    signature = interp.get_signature_runner().get_output_details()
    details = interp.get_output_details()
    outputs = read_manifest(tflite_bundles[name]).outputs
    for i, head in enumerate(HEADS):
        assert details[outputs[head]["index"]]["index"] == signature[f"output_{i}"]["index"]
    assert details[outputs["semantic"]["index"]]["dtype"] == np.int32


@pytest.mark.parametrize("name", ["tflite-fp32", "tflite-fp16", "tflite-int8"])
def test_load_and_predict_round_trip(tflite_bundles, name):
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import available_backends, load

    assert "tflite" in available_backends()
    rt = load(tflite_bundles[name], threads=2)
    assert rt.info["backend"] == "tflite" and rt.info["threads"] == 2 and rt.info["delegate"] == "XNNPACK"
    assert rt.info["interpreter"] == "ai_edge_litert" and rt.info["versions"]["ai_edge_litert"] != "unknown"
    assert rt.info["io_dtype"] == ("int8" if name.endswith("int8") else "float32")
    frame = open_dataset("synth:val:1")[0].image
    batch = rt.preprocess(frame)
    assert batch.shape == (1, 3, *SIZE) and batch.dtype == np.float32
    heads = rt.infer(batch)
    assert heads["semantic"].shape == (1, *SIZE) and heads["semantic"].dtype == np.int32
    assert heads["semantic_prob"].shape == (1, *SIZE)
    assert heads["center"].shape == (1, 1, *SIZE) and heads["offset"].shape == (1, 2, *SIZE)
    assert all(heads[h].dtype == np.float32 for h in ("semantic_prob", "center", "offset"))
    assert 0.0 <= heads["semantic_prob"].min() and heads["semantic_prob"].max() <= 1.0 + 1e-3
    result = rt.predict(frame)
    assert result.panoptic.shape == frame.shape[:2] and result.panoptic.dtype == np.int32
    assert {s.id for s in result.segments} == set(np.unique(result.panoptic).tolist()) - {-1}


def test_int8_io_uses_each_tensors_scale_and_zero_point(tflite_bundles):
    """The int8 input is quantized with the input tensor's scale/zero point; the heads leave the
    graph as float32 (the float prediction tail), the class map as int32."""
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import load

    rt = load(tflite_bundles["tflite-int8"], threads=1)
    batch = rt.preprocess(open_dataset("synth:val:1")[0].image)
    interp = _interpreter(tflite_bundles["tflite-int8"] / "model.tflite")
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    assert inp["dtype"] == np.int8
    scale, zero = inp["quantization"]
    assert scale > 0
    q = np.clip(np.round(batch / scale) + zero, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    details = interp.get_output_details()
    got = rt.infer(batch)
    outputs = read_manifest(tflite_bundles["tflite-int8"]).outputs
    for head in HEADS:
        raw = interp.get_tensor(details[outputs[head]["index"]]["index"])
        assert raw.dtype == (np.int32 if head == "semantic" else np.float32), head
        np.testing.assert_array_equal(got[head], raw)
    assert read_manifest(tflite_bundles["tflite-int8"]).target["float_ops"] >= 2  # the center/offset convs at least


def test_quantize_and_dequantize_follow_the_tensor_details():
    from edgeps.runtimes.tflite_backend import dequantize_output, quantize_input

    x = np.array([[-1.0, 0.0, 0.26, 10.0]], np.float32)
    q = quantize_input(x, {"dtype": np.int8, "quantization": (0.1, -3)})
    assert q.dtype == np.int8 and q.tolist() == [[-13, -3, 0, 97]]
    assert quantize_input(x, {"dtype": np.float32, "quantization": (0.0, 0)}) is x
    back = dequantize_output(np.array([-128, -3, 127], np.int8), {"quantization": (0.5, -3)})
    assert back.dtype == np.float32 and back.tolist() == [-62.5, 0.0, 65.0]
    cls = np.array([1, 2], np.int32)
    assert dequantize_output(cls, {"quantization": (0.0, 0)}) is cls


def test_nhwc_input_export_and_runtime(tiny_checkpoint, tflite_bundles, tmp_path):
    """An NHWC InputSpec exports an NHWC-input model; the runtime preprocesses to NHWC."""
    from edgeps.data.datasets import open_dataset
    from edgeps.export import tflite_format
    from edgeps.export.job import ExportJob
    from edgeps.preprocess import InputSpec
    from edgeps.runtimes import load
    from edgeps.training.inference import model_from_checkpoint

    model, _, cfg = model_from_checkpoint(tiny_checkpoint)
    bundle = tmp_path / "tflite-nhwc"
    shutil.copytree(tflite_bundles["tflite-fp32"], bundle)
    job = ExportJob(model, dict(cfg.model), InputSpec(size=SIZE, layout="NHWC"), "fp32", bundle, "model.tflite")
    art = tflite_format.export(job)
    assert art.target["layout"] == "NHWC" and sorted(art.output_index) == sorted(HEADS)
    assert list(_interpreter(bundle / "model.tflite").get_input_details()[0]["shape"]) == [1, *SIZE, 3]
    with pytest.raises(FormatError, match=r"model input is \[1, 64, 128, 3\]"):
        load(bundle)  # the copied manifest still says NCHW
    data = yaml.safe_load((bundle / MANIFEST_NAME).read_text())
    data["input"]["layout"] = "NHWC"
    data["outputs"] = {
        h: {"name": h, "index": art.output_index[h], "layout": data["outputs"][h]["layout"]} for h in HEADS
    }
    (bundle / MANIFEST_NAME).write_text(yaml.safe_dump(data))
    nhwc, nchw = load(bundle, threads=2), load(tflite_bundles["tflite-fp32"], threads=2)
    frame = open_dataset("synth:val:1")[0].image
    batch = nhwc.preprocess(frame)
    assert batch.shape == (1, *SIZE, 3)
    a, b = nhwc.infer(batch), nchw.infer(nchw.preprocess(frame))
    for head in HEADS:
        np.testing.assert_allclose(a[head], b[head], atol=1e-4)
    assert np.array_equal(nhwc.predict(frame).panoptic, nchw.predict(frame).panoptic)


def test_errors_name_the_file_or_setting(tflite_bundles, tiny_checkpoint, tmp_path):
    from edgeps.export.pipeline import export_bundles
    from edgeps.runtimes import load

    bundle = tmp_path / "broken"
    shutil.copytree(tflite_bundles["tflite-fp32"], bundle)
    data = (bundle / "model.tflite").read_bytes()
    (bundle / "model.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError, match="model.tflite.*cannot load"):
        load(bundle)
    with pytest.raises(ConfigError, match="cpu"):
        load(tflite_bundles["tflite-fp32"], device="cuda")
    with pytest.raises(ConfigError, match="unknown options"):
        load(tflite_bundles["tflite-fp32"], delegate="gpu")
    from edgeps.export.pipeline import ExportFailed

    with pytest.raises(
        ExportFailed, match="static input shapes"
    ):  # a per-format failure: reported after the others ran
        export_bundles(tiny_checkpoint, ["tflite"], ["fp32"], tmp_path / "dyn", dynamic_hw=True)


TFLITE_RUNTIME = textwrap.dedent(
    """
    import sys
    import edgeps.runtimes
    from edgeps.data.datasets import open_dataset
    rt = edgeps.runtimes.load(sys.argv[1], threads=1)
    frame = open_dataset("synth:val:1")[0].image
    res = rt.predict(frame)
    assert res.panoptic.shape == frame.shape[:2]
    assert "torch" not in sys.modules and "ai_edge_litert" not in sys.modules
    print("OK", rt.info["backend"], rt.info["interpreter"], rt.info["versions"], len(res.segments))
    """
)


def test_tflite_runtime_environment_predicts(tflite_bundles):
    """The old ``tflite_runtime`` package (2.14, numpy<2), no torch: what many devices have."""
    py = Path(os.environ.get("EDGEPS_TFLITE_PYTHON", REPO / ".venv-tflite" / "bin" / "python"))
    if not py.exists():
        pytest.fail(
            f"tflite-runtime environment missing at {py}: scripts/test.sh builds it (tflite-runtime==2.14.0, numpy<2)"
        )
    probe = "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('ai_edge_litert') is None)"
    check = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    assert check.stdout.split() == ["True", "True"], (
        "the tflite-runtime environment must have neither torch nor ai_edge_litert"
    )
    for name in ("tflite-fp32", "tflite-int8"):
        proc = subprocess.run(
            [str(py), "-c", TFLITE_RUNTIME, str(tflite_bundles[name])], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.startswith("OK tflite tflite_runtime {'tflite_runtime': '2.14"), proc.stdout


def test_int8_keeps_the_encoder_stem_float(tflite_bundles):
    """The stem conv and the first inverted residual block compute in float (the 8-bit stem
    cost the most class agreement); the encoder's later blocks are int8."""
    from edgeps.export.tflite_quant import FLOAT_STEM

    assert read_manifest(tflite_bundles["tflite-int8"]).target["float_stem_ops"] >= 3
    tensors = _interpreter(tflite_bundles["tflite-int8"] / "model.tflite").get_tensor_details()
    # (a "_quantized" tensor is the int8 copy of the stem's output the next block reads)
    stem = [t for t in tensors if FLOAT_STEM.search(t["name"]) and not t["name"].endswith("_quantized")]
    later = [t for t in tensors if "MobileNetV2Encoder_encoder/" in t["name"] and "InvertedResidual_2/" in t["name"]]
    assert stem and all(t["dtype"] == np.float32 for t in stem)
    assert any(t["dtype"] == np.int8 for t in later)
