"""OpenVINO export (fp32, fp16 weights, NNCF int8) with the parity gate, and the OpenVINO runtime."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeps.bundle import read_manifest
from edgeps.errors import ConfigError, FormatError

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'edgeps[export]')")
pytest.importorskip("nncf", reason="nncf is not installed (pip install 'edgeps[export]')")

SIZE = (64, 128)  # tiny_checkpoint's input size (tiny_model.TINY_SIZE)
PRECISIONS = ("fp32", "fp16", "int8")


@pytest.fixture(scope="session")
def ov_bundles(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("ov_bundles")
    results = export_bundles(
        tiny_checkpoint,
        ["openvino"],
        list(PRECISIONS),
        out,
        calib="synth:train:8",
        calib_images=8,
        parity_data="synth:val:2",
        parity_images=2,
    )
    return {r.name: r.path for r in results}


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    from edgeps.data.datasets import open_dataset

    return open_dataset("synth:val:1")[0].image


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle.name
    shutil.copytree(bundle, dst)
    return dst


def test_export_makes_xml_and_bin_bundles_with_target_info(ov_bundles):
    assert sorted(ov_bundles) == sorted(f"openvino-{p}" for p in PRECISIONS)
    for name, path in ov_bundles.items():
        m = read_manifest(path)
        assert m.format == "openvino" and m.precision == name.split("-")[1] and m.model_file == "model.xml"
        assert (path / "model.bin").stat().st_size > 10_000
        assert m.input.size == SIZE and m.parity["images"] == 2
        assert set(m.target["versions"]) >= {"openvino", "nncf"}
    int8 = read_manifest(ov_bundles["openvino-int8"])
    assert int8.calibration == {"source": "synth:train:8", "images": 8}
    assert int8.target["target"] == "generic" and int8.target["overflow_fix"] == "enable"
    fp16_bin = (ov_bundles["openvino-fp16"] / "model.bin").stat().st_size
    fp32_bin = (ov_bundles["openvino-fp32"] / "model.bin").stat().st_size
    assert fp16_bin < 0.6 * fp32_bin  # weights stored as fp16


def test_parity_fp32_within_tolerance_and_int8_agreement(ov_bundles):
    fp32 = read_manifest(ov_bundles["openvino-fp32"]).parity
    assert max(fp32["max_abs_diff"].values()) <= 1e-3
    assert fp32["class_agreement"] >= 0.999
    int8 = read_manifest(ov_bundles["openvino-int8"]).parity
    assert int8["class_agreement"] >= 0.98
    fp16 = read_manifest(ov_bundles["openvino-fp16"]).parity
    assert fp16["class_agreement"] >= 0.99


@pytest.mark.parametrize("precision", PRECISIONS)
def test_graph_is_static_keeps_argmax_and_output_order(ov_bundles, precision):
    model = ov.Core().read_model(str(ov_bundles[f"openvino-{precision}"] / "model.xml"))
    assert list(model.inputs[0].get_partial_shape().to_shape()) == [1, 3, *SIZE]
    assert [next(iter(o.get_names())) for o in model.outputs] == ["semantic", "semantic_prob", "center", "offset"]
    assert model.outputs[0].get_element_type() == ov.Type.i32
    ops = {op.get_type_name() for op in model.get_ops()}
    assert "TopK" in ops  # the in-graph ArgMax (max over softmax)
    assert ("FakeQuantize" in ops) == (precision == "int8")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_load_and_predict_round_trip(ov_bundles, frame, precision):
    from edgeps.runtimes import load

    rt = load(ov_bundles[f"openvino-{precision}"], threads=2)
    batch = rt.preprocess(frame)
    heads = rt.infer(batch)
    assert heads["semantic"].shape == (1, *SIZE) and heads["semantic"].dtype == np.int32
    assert heads["semantic_prob"].shape == (1, *SIZE) and heads["semantic_prob"].dtype == np.float32
    assert heads["center"].shape == (1, 1, *SIZE) and heads["offset"].shape == (1, 2, *SIZE)
    again = rt.infer(batch)  # outputs are copies, not views of the request's buffers
    assert again["offset"] is not heads["offset"] and np.array_equal(again["offset"], heads["offset"])
    result = rt.predict(frame)
    assert result.panoptic.shape == frame.shape[:2] and result.panoptic.dtype == np.int32
    assert {s.id for s in result.segments} == set(np.unique(result.panoptic).tolist()) - {-1}
    info = rt.info
    assert info["backend"] == "openvino" and info["device"] == "CPU" and info["precision"] == precision
    assert info["hint"] == "LATENCY" and info["threads"] == 2 and info["inference_precision"] == "f32"
    assert "openvino" in info["versions"]


def test_fp32_matches_the_torch_bundle_through_the_interface(ov_bundles, tiny_checkpoint, tmp_path, frame):
    from edgeps.export.pipeline import export_bundles
    from edgeps.runtimes import load

    torch_bundle = export_bundles(
        tiny_checkpoint, ["torch"], ["fp32"], tmp_path, parity_data="synth:val:1", parity_images=1
    )[0].path
    a = load(torch_bundle).predict(frame).panoptic
    b = load(ov_bundles["openvino-fp32"]).predict(frame).panoptic
    assert (a == b).mean() >= 0.999


def test_missing_device_falls_back_to_cpu_with_a_warning(ov_bundles, caplog):
    from edgeps.runtimes import load

    with caplog.at_level(logging.WARNING, logger="edgeps.runtimes.openvino"):
        rt = load(ov_bundles["openvino-fp32"], device="GPU", threads=1)
    assert rt.info["device"] == "CPU" and rt.info["requested_device"] == "GPU"
    assert any("'GPU' is not available" in r.message and "falling back to CPU" in r.message for r in caplog.records)
    assert load(ov_bundles["openvino-fp32"], device="cpu").info["device"] == "CPU"


def test_device_resolution_and_compile_config():
    from edgeps.runtimes.openvino_backend import compile_config, resolve_device

    assert resolve_device("gpu", ["CPU", "GPU.0", "GPU.1"]) == ("GPU", None)
    assert resolve_device("GPU.1", ["CPU", "GPU.0", "GPU.1"]) == ("GPU.1", None)
    assert resolve_device("auto", ["CPU"]) == ("AUTO", None)
    device, warning = resolve_device("npu", ["CPU"])
    assert device == "CPU" and "NPU" in warning
    assert compile_config("CPU", 2, {}) == {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": 2,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    assert compile_config("GPU", 2, {"hint": "throughput"}) == {"PERFORMANCE_HINT": "THROUGHPUT"}
    with pytest.raises(ConfigError, match="hint"):
        compile_config("CPU", 2, {"hint": "fast"})
    with pytest.raises(ConfigError, match="unknown options"):
        compile_config("CPU", 2, {"num_streams": 4})


def test_throughput_hint_and_unknown_options(ov_bundles):
    from edgeps.runtimes import load

    rt = load(ov_bundles["openvino-int8"], threads=1, hint="throughput")
    assert rt.info["hint"] == "THROUGHPUT"
    with pytest.raises(ConfigError, match="unknown options"):
        load(ov_bundles["openvino-int8"], providers=["CPU"])


def test_dynamic_model_is_reshaped_to_the_manifest_input(ov_bundles, tmp_path, frame):
    from edgeps.runtimes import load

    b = _copy(ov_bundles["openvino-fp32"], tmp_path)
    model = ov.Core().read_model(str(b / "model.xml"))
    model.reshape({model.inputs[0]: [1, 3, -1, -1]})
    (b / "model.xml").unlink()
    (b / "model.bin").unlink()
    ov.save_model(model, str(b / "model.xml"), compress_to_fp16=False)
    rt = load(b, threads=1)
    assert list(rt.compiled.inputs[0].get_shape()) == [1, 3, *SIZE]
    assert rt.infer(rt.preprocess(frame))["center"].shape == (1, 1, *SIZE)


def test_corrupt_model_xml_raises_format_error(ov_bundles, tmp_path):
    from edgeps.runtimes import load

    b = _copy(ov_bundles["openvino-fp32"], tmp_path)
    data = (b / "model.xml").read_bytes()
    (b / "model.xml").write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError, match=r"model\.xml.*cannot read"):
        load(b)


def test_int8_rejects_a_target_openvino_does_not_know(tiny_checkpoint, tmp_path):
    from edgeps.export.pipeline import export_bundles

    with pytest.raises(ConfigError, match="openvino int8 takes --target generic"):
        export_bundles(
            tiny_checkpoint,
            ["openvino"],
            ["int8"],
            tmp_path,
            calib="synth:train:2",
            calib_images=2,
            parity_data="synth:val:1",
            parity_images=1,
            target="tensorrt",
        )


def test_int8_keeps_the_center_and_offset_predictions_float(ov_bundles):
    """No FakeQuantize between the center / offset predictors and their outputs: one there
    clips the offsets to the largest vote seen in calibration, and near objects fall apart."""
    model = ov.Core().read_model(str(ov_bundles["openvino-int8"] / "model.xml"))
    target = read_manifest(ov_bundles["openvino-int8"]).target
    assert len(target["float_ops"]) == 2
    for output in model.outputs[2:]:
        node = output.get_node().input(0).get_source_output().get_node()
        assert node.get_type_name() == "Interpolate" and node.get_friendly_name() in target["float_ops"]
        before = node.input(0).get_source_output().get_node()
        assert before.get_type_name() != "FakeQuantize", f"{output.get_names()} is quantized before its upsampling"


def test_int8_keeps_the_encoder_stem_float(ov_bundles):
    """The stem conv and the first inverted residual block keep f32 weights and take
    unquantized inputs (the 8-bit stem cost the most class agreement); later encoder convs
    have i8 weights and a FakeQuantize on their input."""
    model = ov.Core().read_model(str(ov_bundles["openvino-int8"] / "model.xml"))

    def int8(op) -> bool:
        data = op.input(0).get_source_output().get_node().get_type_name() == "FakeQuantize"
        node = op.input(1).get_source_output().get_node()
        while node.get_input_size():  # Multiply(scale) <- Convert <- Constant i8
            node = node.input(0).get_source_output().get_node()
        return data and node.get_output_element_type(0).get_type_name() == "i8"

    convs = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    stem = [
        op for op in convs if any(k in op.get_friendly_name() for k in ("encoder.features.0.", "encoder.features.1."))
    ]
    later = [op for op in convs if "encoder.features.2." in op.get_friendly_name()]
    assert len(stem) == 3 and later
    assert not any(int8(op) for op in stem)
    assert all(int8(op) for op in later)
