"""The one formats table (edgeps/formats.py) and what is derived from it: every row has its
export and runtime modules, the int8 targets the modules take, manifest validation, the parity
bars of each precision, and an export run that goes on past a failed format."""

from __future__ import annotations

import importlib
import math

import pytest

from edgeps.bundle import manifest_from_dict, read_manifest
from edgeps.errors import ConfigError, ExportError, FormatError
from edgeps.formats import BACKENDS, FORMATS, PRECISIONS, check_export_request


def test_every_format_row_has_its_modules_and_backend() -> None:
    for f in FORMATS.values():
        assert f.model_file == f.bundle_files[0] and set(f.precisions) <= set(PRECISIONS)
        assert f.backend in BACKENDS and f.name in BACKENDS[f.backend].formats
        assert (f.targets == ()) == ("int8" not in f.precisions)
    for b in BACKENDS.values():
        assert all(fmt in FORMATS for fmt in b.formats)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_export_module_exports_and_takes_the_tables_targets(fmt) -> None:
    module = importlib.import_module(f"edgeps.export.{FORMATS[fmt].export_module}")
    assert callable(module.export)
    if hasattr(module, "TARGETS"):
        assert tuple(module.TARGETS) == FORMATS[fmt].targets
    runtime = importlib.import_module(f"edgeps.runtimes.{BACKENDS[FORMATS[fmt].backend].runtime_module}")
    assert runtime.BACKEND is not None


def test_request_check_expands_and_names_every_problem() -> None:
    assert check_export_request(["torch", "onnx"], ["fp32", "int8"], "generic") == (
        [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")],
        ["torch-int8"],
    )
    with pytest.raises(ValueError) as err:
        check_export_request(["caffe", "openvino"], ["int8", "fp64"], "tensorrt")
    msg = str(err.value)
    assert (
        "unknown format 'caffe'" in msg and "unknown precision 'fp64'" in msg and "openvino int8 takes --target" in msg
    )
    with pytest.raises(ValueError, match="no format or no precision"):
        check_export_request([], ["fp32"], "generic")


def test_manifest_precision_must_be_one_its_format_offers(onnx_bundle) -> None:
    raw = read_manifest(onnx_bundle).to_dict()
    raw.update(format="torch", precision="int8", model_file="model.pt")
    with pytest.raises(FormatError, match="precision: a torch bundle is fp32, got 'int8'"):
        manifest_from_dict(raw)


def _report(
    precision: str, agreement: float = 1.0, pq_diff: float = 0.0, mean: dict | None = None, **worst: float
) -> dict:
    heads = ("semantic_prob", "center", "offset")
    return {
        "precision": precision,
        "class_agreement": agreement,
        "pq_diff_points": pq_diff,
        "max_abs_diff": {**dict.fromkeys(heads, 1e-4), **worst},
        "mean_abs_diff": {**dict.fromkeys(heads, 1e-5), **(mean or {})},
    }


def test_fp16_is_gated_on_mean_head_error_class_agreement_and_pq() -> None:
    from edgeps.export.parity import (
        FP16_MAX_PQ_POINTS,
        FP16_MEAN_TOLERANCE,
        FP16_MIN_AGREEMENT,
        check_parity,
    )

    # what the built-in model's fp16 exports measure: single pixels far off, the maps alike
    check_parity(_report("fp16", 0.998, 0.03, {"offset": 0.12}, semantic_prob=0.17, offset=6.9), "onnx-fp16")
    for bad in (
        _report("fp16", mean={"offset": 1.5 * FP16_MEAN_TOLERANCE["offset"]}),
        _report("fp16", mean={"center": math.nan}),
        _report("fp16", semantic_prob=math.inf),
        _report("fp16", FP16_MIN_AGREEMENT - 0.001),
        _report("fp16", pq_diff=-1.5 * FP16_MAX_PQ_POINTS),
        {**_report("fp16"), "mean_abs_diff": {}},
    ):
        with pytest.raises(ExportError, match="onnx-fp16: fp16"):
            check_parity(bad, "onnx-fp16")
    with pytest.raises(ExportError, match="fp32 export differs"):
        check_parity(_report("fp32", center=math.nan), "onnx-fp32")


def test_a_failed_format_does_not_stop_the_others(tiny_checkpoint, tmp_path, capsys) -> None:
    """tflite refuses --dynamic-hw; onnx is still exported, and the run reports the failure at
    the end (ExportFailed from the API, exit 1 from the CLI, both naming it)."""
    from edgeps.apps.cli import main
    from edgeps.export.pipeline import ExportFailed, export_bundles

    with pytest.raises(ExportFailed) as err:
        export_bundles(
            tiny_checkpoint,
            ["tflite", "onnx"],
            ["fp32"],
            tmp_path / "api",
            dynamic_hw=True,
            parity_data="synth:val:1",
            parity_images=1,
        )
    assert [r.name for r in err.value.results] == ["onnx-fp32"] and list(err.value.failures) == ["tflite-fp32"]
    assert "static input shapes" in err.value.failures["tflite-fp32"]
    assert read_manifest(tmp_path / "api" / "onnx-fp32").parity["images"] == 1
    assert not (tmp_path / "api" / "tflite-fp32").exists()

    code = main(
        [
            "export",
            "--checkpoint",
            str(tiny_checkpoint),
            "--formats",
            "tflite,onnx",
            "--precision",
            "fp32",
            "--dynamic-hw",
            "--parity-data",
            "synth:val:1",
            "--parity-images",
            "1",
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    out = capsys.readouterr()
    assert code == 1
    assert "onnx-fp32" in out.out and "tflite-fp32" in out.out and "FAILED" in out.out
    assert "1 of 2 failed" in out.err and "tflite-fp32: " in out.err
    assert (tmp_path / "cli" / "onnx-fp32" / "edgeps.yaml").is_file()


def test_config_errors_of_a_request_come_before_any_export(tiny_checkpoint, tmp_path) -> None:
    from edgeps.export.pipeline import export_bundles

    with pytest.raises(ConfigError, match="export request"):
        export_bundles(tiny_checkpoint, ["onnx", "tflite"], ["fp32", "int8"], tmp_path, target="npu")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
