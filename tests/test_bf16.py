"""The bf16 bundle precision: OpenVINO only, f32 weights, bf16 compute on a CPU with native bf16
(AVX512-BF16 / AMX), f32 with a warning elsewhere; its own parity bars.

The CPU cannot be chosen here, so the capability query (:func:`edgeps.runtimes.cpu.runs_natively`,
or the flags under it) is monkeypatched to stand for a CPU with or without native bf16: the one
place a fake is fine."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from edgeps.bundle import manifest_from_dict, read_manifest
from edgeps.errors import ExportError, FormatError
from edgeps.formats import FORMATS, PRECISION_TABLE, PRECISIONS, check_export_request, precisions_help
from edgeps.runtimes import cpu


def test_bf16_is_a_row_of_the_one_table_and_only_openvino_offers_it() -> None:
    assert "bf16" in PRECISIONS and PRECISION_TABLE["bf16"].native_cpu_flags == ("avx512_bf16", "amx_bf16")
    assert [f.name for f in FORMATS.values() if "bf16" in f.precisions] == ["openvino"]
    assert check_export_request(["onnx", "openvino"], ["fp32", "bf16"], "generic") == (
        [("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")],
        ["onnx-bf16"],
    )
    with pytest.raises(ValueError, match="no requested format offers bf16"):
        check_export_request(["onnx", "tflite"], ["bf16"], "generic")
    assert "bf16 (openvino)" in precisions_help()


def test_manifest_accepts_bf16_for_openvino_only(onnx_bundle) -> None:
    raw = read_manifest(onnx_bundle).to_dict()
    with pytest.raises(FormatError, match="precision: a onnx bundle is fp32, fp16, int8, got 'bf16'"):
        manifest_from_dict({**raw, "precision": "bf16"})
    assert manifest_from_dict({**raw, "format": "openvino", "model_file": "model.xml", "precision": "bf16"})


def test_capability_query_reads_the_flags(monkeypatch) -> None:
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert cpu.runs_natively("bf16") and cpu.runs_natively("fp32") and cpu.runs_natively("int8")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "amx_tile"}))
    assert cpu.runs_natively("bf16")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not cpu.runs_natively("bf16") and cpu.runs_natively("fp16")
    # no /proc/cpuinfo (macOS, Windows): OpenVINO's capability list answers
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(cpu, "_openvino_capabilities", lambda: frozenset({"FP32", "BF16"}))
    assert cpu.runs_natively("bf16")
    monkeypatch.setattr(cpu, "_openvino_capabilities", lambda: frozenset())
    assert not cpu.runs_natively("bf16")
    with pytest.raises(KeyError):
        cpu.runs_natively("fp64")


def test_the_real_query_matches_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if not text:
        pytest.skip("no /proc/cpuinfo here")
    assert cpu.runs_natively("bf16") == any(f" {f}" in text for f in ("avx512_bf16", "amx_bf16"))
    assert len(cpu.flags_key()) == 12


def test_bf16_parity_bars_are_their_own_and_looser_than_fp16() -> None:
    from edgeps.export.parity import (
        BF16_MAX_PQ_POINTS,
        BF16_MEAN_TOLERANCE,
        BF16_MIN_AGREEMENT,
        FP16_MEAN_TOLERANCE,
        check_parity,
    )

    assert all(BF16_MEAN_TOLERANCE[h] >= FP16_MEAN_TOLERANCE[h] for h in FP16_MEAN_TOLERANCE)

    def report(agreement=0.995, pq=0.2, **mean):
        heads = ("semantic_prob", "center", "offset")
        return {
            "precision": "bf16",
            "class_agreement": agreement,
            "pq_diff_points": pq,
            "max_abs_diff": dict.fromkeys(heads, 0.3),
            "mean_abs_diff": {**dict.fromkeys(heads, 1e-3), **mean},
        }

    # above fp16's offset bar, within bf16's: passes
    check_parity(report(offset=1.5 * FP16_MEAN_TOLERANCE["offset"]), "openvino-bf16")
    for bad in (
        report(offset=1.5 * BF16_MEAN_TOLERANCE["offset"]),
        report(center=math.nan),
        report(agreement=BF16_MIN_AGREEMENT - 0.001),
        report(pq=-1.5 * BF16_MAX_PQ_POINTS),
    ):
        with pytest.raises(ExportError, match="openvino-bf16: bf16"):
            check_parity(bad, "openvino-bf16")


@pytest.fixture(scope="module")
def ov_pair(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("bf16")
    results = export_bundles(
        tiny_checkpoint, ["openvino"], ["fp32", "bf16"], out, parity_data="synth:val:2", parity_images=2
    )
    return {r.name: r.path for r in results}


def test_export_records_bf16_and_keeps_f32_weights(ov_pair) -> None:
    m = read_manifest(ov_pair["openvino-bf16"])
    assert m.format == "openvino" and m.precision == "bf16"
    assert m.target["inference_precision"] == "bf16"
    assert m.parity["precision"] == "bf16"
    assert m.parity["inference_precision"] == ("bf16" if cpu.runs_natively("bf16") else "f32")
    # the IR is the fp32 one: same weights file byte for byte
    weights = [(ov_pair[f"openvino-{p}"] / "model.bin").read_bytes() for p in ("bf16", "fp32")]
    assert weights[0] == weights[1]


def test_bf16_bundle_runs_bf16_where_the_cpu_has_it(ov_pair, monkeypatch, caplog) -> None:
    from edgeps.runtimes import load

    monkeypatch.setattr(cpu, "runs_natively", lambda p: True)
    with caplog.at_level(logging.WARNING, logger="edgeps.runtimes.openvino"):
        rt = load(ov_pair["openvino-bf16"], threads=1)
    assert rt.info["inference_precision"] == "bf16" and not caplog.records
    # an explicit option wins over the manifest
    assert load(ov_pair["openvino-bf16"], threads=1, inference_precision="f32").info["inference_precision"] == "f32"
    # fp32 bundles stay f32 on any CPU
    assert load(ov_pair["openvino-fp32"], threads=1).info["inference_precision"] == "f32"


def test_bf16_bundle_on_a_cpu_without_bf16_warns_and_runs_f32(ov_pair, monkeypatch, caplog) -> None:
    from edgeps.data.datasets import open_dataset
    from edgeps.runtimes import load

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f", "avx512_vnni"}))
    with caplog.at_level(logging.WARNING, logger="edgeps.runtimes.openvino"):
        rt = load(ov_pair["openvino-bf16"], threads=1)
    assert rt.info["inference_precision"] == "f32"
    assert rt.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    assert any("no native bf16" in r.message and "runs in f32" in r.message for r in caplog.records)
    # and then computes exactly what the fp32 bundle computes
    ref = load(ov_pair["openvino-fp32"], threads=1)
    batch = rt.preprocess(open_dataset("synth:val:1")[0].image)
    got, want = rt.infer(batch), ref.infer(batch)
    for head in want:
        np.testing.assert_array_equal(got[head], want[head])


def test_bf16_runs_close_to_fp32_on_this_cpu(ov_pair) -> None:
    """On a CPU with native bf16 the outputs move (bf16 compute) but stay within the bars."""
    if not cpu.runs_natively("bf16"):
        pytest.skip("this CPU has no native bf16 (the fallback test covers it)")
    from edgeps.export.parity import BF16_MEAN_TOLERANCE, BF16_MIN_AGREEMENT

    report = read_manifest(ov_pair["openvino-bf16"]).parity
    assert report["inference_precision"] == "bf16"
    assert report["class_agreement"] >= BF16_MIN_AGREEMENT
    assert all(report["mean_abs_diff"][h] <= BF16_MEAN_TOLERANCE[h] for h in BF16_MEAN_TOLERANCE)
