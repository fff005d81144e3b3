"""Export (torch, ONNX fp32/int8) with the parity gate, and the one runtime interface."""

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
from edgeps.errors import ConfigError, DataNotFoundError, FormatError, InputShapeError
from edgeps.preprocess import InputSpec, frame_geometry, map_to_frame, preprocess

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)


@pytest.fixture(scope="session")
def bundles(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("bundles")
    results = export_bundles(
        tiny_checkpoint,
        ["torch", "onnx"],
        ["fp32", "int8"],
        out,
        calib="synth:train:8",
        calib_images=8,
        parity_data="synth:val:2",
        parity_images=2,
    )
    return {r.name: r.path for r in results}


def test_export_makes_one_bundle_per_format_and_precision(bundles):
    assert sorted(bundles) == ["onnx-fp32", "onnx-int8", "torch-fp32"]  # torch has no int8
    for name, path in bundles.items():
        m = read_manifest(path)
        assert m.format == name.split("-")[0] and m.precision == name.split("-")[1]
        assert m.source_checkpoint_sha256 and len(m.source_checkpoint_sha256) == 64
        assert m.parity["images"] == 2 and m.input.size == SIZE
    int8 = read_manifest(bundles["onnx-int8"])
    assert int8.calibration == {"source": "synth:train:8", "images": 8}
    assert int8.target["reduce_range"] is True and int8.target["target"] == "generic"


def test_onnx_manifests_record_the_opset_and_exporter_of_the_file(bundles):
    """Every ONNX precision records the opset its file declares (quantization may raise it; the
    fallback exporter writes 17) and which exporter made the graph."""
    from edgeps.export.onnx_format import graph_opset

    for name in ("onnx-fp32", "onnx-int8"):
        m = read_manifest(bundles[name])
        assert m.target["opset"] == graph_opset(bundles[name] / "model.onnx") >= 17, name
        assert m.target["exporter"] in ("dynamo", "torchscript"), name


def test_fp32_parity_within_tolerance_and_int8_agreement(bundles):
    fp32 = read_manifest(bundles["onnx-fp32"]).parity
    assert max(fp32["max_abs_diff"].values()) <= 1e-3
    assert fp32["class_agreement"] >= 0.999
    assert abs(fp32["pq_diff_points"]) <= 0.1
    int8 = read_manifest(bundles["onnx-int8"]).parity
    assert int8["class_agreement"] >= 0.98


def test_onnx_graph_ends_in_argmax_with_four_named_outputs(bundles):
    import onnx

    model = onnx.load(str(bundles["onnx-fp32"] / "model.onnx"))
    assert [o.name for o in model.graph.output] == ["semantic", "semantic_prob", "center", "offset"]
    assert any(n.op_type == "ArgMax" for n in model.graph.node)
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)  # folded


@pytest.mark.parametrize("name", ["torch-fp32", "onnx-fp32", "onnx-int8"])
def test_load_and_predict_round_trip(bundles, name):
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import load

    rt = load(bundles[name], threads=2)
    frame = open_dataset("synth:val:1")[0].image
    batch = rt.preprocess(frame)
    assert batch.shape == (1, 3, *SIZE) and batch.dtype == np.float32
    heads = rt.infer(batch)
    assert heads["semantic"].shape == (1, *SIZE) and np.issubdtype(heads["semantic"].dtype, np.integer)
    assert heads["center"].shape == (1, 1, *SIZE) and heads["offset"].shape == (1, 2, *SIZE)
    result = rt.predict(frame)
    assert result.panoptic.shape == frame.shape[:2] and result.panoptic.dtype == np.int32
    assert set(result.timings) == {"preprocess", "infer", "postprocess"}
    ids = {s.id for s in result.segments}
    assert ids == set(np.unique(result.panoptic).tolist()) - {-1}
    assert rt.info["backend"] == ("torch" if name.startswith("torch") else "onnxruntime")
    if name.startswith("onnx"):
        assert rt.info["providers"] == ["CPUExecutionProvider"]
    with pytest.raises(InputShapeError, match="float32 batch of shape"):
        rt.infer(batch[:, :, :10])


def test_fp32_bundles_agree_through_the_interface(bundles):
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import load

    frame = open_dataset("synth:val:1")[0].image
    a = load(bundles["torch-fp32"]).predict(frame).panoptic
    b = load(bundles["onnx-fp32"]).predict(frame).panoptic
    assert (a == b).mean() >= 0.999


def test_letterbox_geometry_maps_back_exactly():
    spec = InputSpec(size=(64, 128))
    g = frame_geometry((100, 100), spec)  # square frame into a 1:2 input: pillarbox
    assert (g.top, g.left, g.height, g.width) == (0, 32, 64, 64)
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 255  # left half white
    x = preprocess(frame, spec)
    assert np.allclose(x[0, :, :, :32], 0, atol=0.01)  # padding = mean colour (uint8-rounded) -> ~0
    assert x[0, 0, 10, 40] > 1 and x[0, 0, 10, 90] < -1  # white then black content
    model_map = np.full((64, 128), -1, np.int32)
    model_map[:, 32:64] = 7
    model_map[:, 64:96] = 9
    back = map_to_frame(model_map, g)
    assert back.shape == (100, 100)
    assert (back[:, :50] == 7).all() and (back[:, 50:] == 9).all()
    wide = frame_geometry((100, 400), spec)  # wider than 1:2: letterbox top/bottom
    assert (wide.top, wide.left, wide.height, wide.width) == (16, 0, 32, 128)
    assert frame_geometry((100, 400), InputSpec(size=(64, 128), resize="stretch")).height == 64


def test_provider_selection_options_and_fallback(bundles, caplog):
    from edgeps.runtimes import load
    from edgeps.runtimes.onnxruntime_backend import provider_config

    m = read_manifest(bundles["onnx-int8"])
    all_gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    providers, warnings = provider_config("tensorrt:1", m, bundles["onnx-int8"], all_gpu)
    assert not warnings
    assert [p if isinstance(p, str) else p[0] for p in providers] == all_gpu
    trt = providers[0][1]
    assert trt["device_id"] == 1 and trt["trt_int8_enable"] and trt["trt_fp16_enable"]
    assert trt["trt_engine_cache_enable"] and trt["trt_engine_cache_path"].endswith("trt_cache")
    assert providers[1] == ("CUDAExecutionProvider", {"device_id": 1})
    providers, warnings = provider_config("cuda", m, bundles["onnx-int8"], ["CPUExecutionProvider"])
    assert providers == ["CPUExecutionProvider"] and "CUDAExecutionProvider" in warnings[0]
    with pytest.raises(ConfigError, match="device"):
        provider_config("npu", m, bundles["onnx-int8"], all_gpu)
    rt = load(bundles["onnx-fp32"], device="tensorrt")  # no GPU here: real session on CPU
    assert rt.info["providers"] == ["CPUExecutionProvider"]
    assert rt.info["requested_device"] == "tensorrt"
    assert any("falling back to CPU" in r.message for r in caplog.records)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle.name
    shutil.copytree(bundle, dst)
    return dst


@pytest.mark.parametrize(
    "edit, error, match",
    [
        (lambda d: d.pop("format"), FormatError, r"format: missing \(a required key\)"),
        (lambda d: d.update(colour="red"), FormatError, "unknown key 'colour'"),
        (lambda d: d.update(format_version=99), FormatError, "format_version"),
        (lambda d: d.update(precision="int4"), FormatError, "precision"),
        (lambda d: d["input"].update(size=[64]), FormatError, r"input\.size"),
        (lambda d: d["input"].update(mean="0"), FormatError, r"input\.mean"),
        (lambda d: d["outputs"].pop("center"), FormatError, "missing head 'center'"),
        (lambda d: d["categories"].append(dict(d["categories"][0])), FormatError, "duplicate category id"),
        (lambda d: d.update(model_file="nope.onnx"), DataNotFoundError, "nope.onnx"),
    ],
)
def test_manifest_validation_errors_name_the_field(bundles, tmp_path, edit, error, match):
    b = _copy(bundles["onnx-fp32"], tmp_path)
    data = yaml.safe_load((b / MANIFEST_NAME).read_text())
    edit(data)
    (b / MANIFEST_NAME).write_text(yaml.safe_dump(data))
    with pytest.raises(error, match=match):
        read_manifest(b)


def test_corrupt_model_and_missing_manifest(bundles, tmp_path):
    from edgeps.runtimes import load

    b = _copy(bundles["onnx-fp32"], tmp_path)
    data = (b / "model.onnx").read_bytes()
    (b / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError, match="model.onnx.*cannot load"):
        load(b)
    (b / MANIFEST_NAME).unlink()
    with pytest.raises(DataNotFoundError, match="no edgeps.yaml"):
        load(b)


def test_eval_bundles_prints_one_table(bundles, capsys):
    from edgeps.apps.cli import main

    rc = main(["eval", "--bundle", str(bundles["onnx-fp32"]), str(bundles["onnx-int8"]), "--data", "synth:val:2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "onnx-fp32" in out and "onnx-int8" in out and "PQth" in out


RUNTIME_ONLY = textwrap.dedent(
    """
    import sys
    import numpy as np
    import edgeps.runtimes
    from edgeps.data.datasets import open_dataset
    rt = edgeps.runtimes.load(sys.argv[1], threads=1)
    frame = open_dataset("synth:val:1")[0].image
    res = rt.predict(frame)
    assert res.panoptic.shape == frame.shape[:2]
    assert "torch" not in sys.modules, "torch was imported"
    print("OK", rt.info["backend"], sys.version_info[:2], len(res.segments))
    """
)


def test_runtime_only_environment_predicts_without_torch(bundles):
    py = Path(os.environ.get("EDGEPS_RUNTIME_PYTHON", REPO / ".venv-runtime" / "bin" / "python"))
    if not py.exists():
        pytest.fail(f"runtime-only environment missing at {py}: scripts/test.sh builds it (.[ort], no torch)")
    check = subprocess.run(
        [str(py), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "True", "the runtime-only environment must not have torch installed"
    proc = subprocess.run(
        [str(py), "-c", RUNTIME_ONLY, str(bundles["onnx-int8"])], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK onnxruntime")


def test_export_rejects_unknown_format_and_empty_calibration(tiny_checkpoint, tmp_path):
    from edgeps.export.pipeline import export_bundles

    with pytest.raises(ConfigError, match="unknown format 'caffe'"):
        export_bundles(tiny_checkpoint, ["caffe"], ["fp32"], tmp_path)
    # every bad part of a request in one error, before anything is exported
    with pytest.raises(
        ConfigError, match="unknown format 'caffe'.*unknown precision 'int4'.*tflite int8 takes --target"
    ):
        export_bundles(tiny_checkpoint, ["caffe", "onnx", "tflite"], ["int4", "int8"], tmp_path, target="tensorrt")
    with pytest.raises(ConfigError, match="no requested format offers int8"):
        export_bundles(tiny_checkpoint, ["torch"], ["int8"], tmp_path)
    assert not any(tmp_path.glob("*-*")), "nothing was exported"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="no images"):
        export_bundles(tiny_checkpoint, ["onnx"], ["int8"], tmp_path / "out", calib=str(empty))


def test_ort_calibration_runs_in_passes_of_a_few_images():
    from edgeps.calibration.onnxruntime import OrtCalibrationReader, calibration_stride
    from edgeps.calibration.sets import CalibrationSet

    assert [calibration_stride(n) for n in (32, 8, 6, 7, 9, 1)] == [4, 4, 3, 1, 3, 1]  # divides the count, <= 4
    batches = [np.full((1, 3, 2, 2), i, np.float32) for i in range(6)]
    reader = OrtCalibrationReader(CalibrationSet(batches, "test"), "input")
    assert len(reader) == 6

    def drain() -> list[int]:
        out = []
        while (item := reader.get_next()) is not None:
            out.append(int(item["input"][0, 0, 0, 0]))
        return out

    assert drain() == [0, 1, 2, 3, 4, 5]
    reader.set_range(start_index=3, end_index=6)  # what ORT's CalibStridedMinMax calls per pass
    assert drain() == [3, 4, 5]
    reader.rewind()
    assert drain() == [3, 4, 5]
    reader.set_range(start_index=4, end_index=99)
    assert drain() == [4, 5]


def test_int8_keeps_the_encoder_stem_float(bundles):
    """The stem conv and the first inverted residual block keep float weights (8-bit there
    cost the most class agreement); the encoder's later convs are quantized."""
    import onnx

    model = onnx.load(str(bundles["onnx-int8"] / "model.onnx"))
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    stem = [n for n in convs if any(k in n.input[1] for k in (".encoder.features.0.", ".encoder.features.1."))]
    later = [n for n in convs if ".encoder.features.2." in n.input[1]]
    assert len(stem) == 3 and later  # stem conv, block 1's depthwise and pointwise
    assert all(n.input[1] in floats for n in stem)
    assert all(producer.get(n.input[1]) == "DequantizeLinear" for n in later)
    assert read_manifest(bundles["onnx-int8"]).target["float_convs"] == [".encoder.features.0.", ".encoder.features.1."]


# --- center extraction in the graph (export --postprocess graph) -------------------------------


def test_graph_center_candidates_agree_with_the_host_on_random_heatmaps(tmp_path):
    """The graph's MaxPool/TopK candidates, run by ONNX Runtime and finished on the host, give
    exactly find_instance_centers' centers and scores: plateaus, ties at the K-th score, top_k
    binding or not, every threshold side."""
    import onnxruntime as ort
    import torch

    from edgeps.model.deploy import center_candidates
    from edgeps.postprocess import centers_from_candidates, find_instance_centers

    class Centers(torch.nn.Module):
        def __init__(self, threshold: float, nms_kernel: int, top_k: int):
            super().__init__()
            self.settings = (threshold, nms_kernel, top_k)

        def forward(self, heat):
            return center_candidates(heat, *self.settings)

    h, w = 24, 40
    rng = np.random.default_rng(0)
    for threshold, nms_kernel, top_k in ((0.1, 7, 20), (0.0, 3, 500), (0.5, 1, 7), (0.30000000000000004, 5, 3)):
        path = tmp_path / f"centers_{nms_kernel}.onnx"
        torch.onnx.export(
            Centers(threshold, nms_kernel, top_k),
            (torch.zeros(1, 1, h, w),),
            str(path),
            input_names=["heat"],
            output_names=["center_index", "center_score"],
            opset_version=17,
            dynamo=False,
        )
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for trial in range(6):
            heat = rng.random((h, w)).astype(np.float32)
            if trial % 2:  # plateaus and ties
                heat = (np.round(heat * 4) / 4).astype(np.float32)
            index, score = session.run(None, {"heat": heat[None, None]})
            got = centers_from_candidates(index[0], score[0], (h, w), top_k)
            expected = find_instance_centers(heat, threshold, nms_kernel, top_k)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])


@pytest.fixture(scope="session")
def graph_bundles(tiny_checkpoint, tmp_path_factory):
    """Centers in the graph: onnx-fp32, openvino-int8 and tflite-int8 (the int8 quantizers must
    leave the extraction float)."""
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("graph_bundle")
    kw = {"parity_data": "synth:val:2", "parity_images": 2, "postprocess": "graph", "calib": "synth:train:4"}
    (onnx,) = export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], out, **kw)
    (openvino,) = export_bundles(tiny_checkpoint, ["openvino"], ["int8"], out, calib_images=4, **kw)
    (tflite,) = export_bundles(tiny_checkpoint, ["tflite"], ["int8"], out, calib_images=4, **kw)
    return {"onnx-fp32": onnx, "openvino-int8": openvino, "tflite-int8": tflite}


@pytest.fixture(scope="session")
def graph_bundle(graph_bundles):
    return graph_bundles["onnx-fp32"]


@pytest.mark.parametrize("name", ["onnx-fp32", "openvino-int8", "tflite-int8"])
def test_graph_postprocess_bundle_matches_the_host_path(graph_bundles, bundles, name):
    graph_bundle = graph_bundles[name]
    from edgeps.bundle import HEADS
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import load

    manifest = read_manifest(graph_bundle.path)
    post = manifest.postprocess
    assert manifest.graph_centers == {"threshold": post.threshold, "nms_kernel": post.nms_kernel, "top_k": post.top_k}
    assert [manifest.outputs[h]["index"] for h in ("center_index", "center_score")] == [4, 5]
    assert graph_bundle.parity["postprocess_agreement"] >= 0.999
    rt = load(graph_bundle.path)
    frame = open_dataset("synth:val:1")[0].image
    heads = rt.infer(rt.preprocess(frame))
    k = min(post.top_k, SIZE[0] * SIZE[1])
    assert heads["center_index"].shape == (1, k) and heads["center_score"].shape == (1, k)
    assert rt._graph_centers_apply()
    in_graph = rt.postprocess(heads, frame.shape[:2]).panoptic
    on_host = rt.postprocess({h: heads[h] for h in HEADS}, frame.shape[:2]).panoptic
    np.testing.assert_array_equal(in_graph, on_host)
    rt.set_postprocess(top_k=3)  # settings the graph was not exported with: the host scans the heatmap
    assert not rt._graph_centers_apply()
    # a host bundle records nothing and loads as before
    assert read_manifest(bundles["onnx-fp32"]).graph_centers is None
    assert "graph_centers" not in yaml.safe_load((bundles["onnx-fp32"] / MANIFEST_NAME).read_text())


def test_graph_postprocess_manifest_and_request_errors(graph_bundle, tiny_checkpoint, tmp_path):
    from edgeps.export.pipeline import export_bundles

    b = _copy(graph_bundle.path, tmp_path)
    data = yaml.safe_load((b / MANIFEST_NAME).read_text())
    data["outputs"].pop("center_score")
    (b / MANIFEST_NAME).write_text(yaml.safe_dump(data))
    with pytest.raises(FormatError, match="graph_centers.*lack center_score"):
        read_manifest(b)
    with pytest.raises(ConfigError, match="--postprocess: one of host, graph"):
        export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], tmp_path / "x", postprocess="gpu")
    with pytest.raises(ConfigError, match="static input size"):
        export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], tmp_path / "x", postprocess="graph", dynamic_hw=True)
