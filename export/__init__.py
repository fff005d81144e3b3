"""Export a trained checkpoint to deployable bundles (installed as ``edgeps.export``).

``FORMATS`` is the one table of formats: it drives the CLI's choices, the docs and the
benchmarks. Each format is one small module with ``export(job) -> ExportArtifact``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FormatInfo:
    name: str
    module: str  # under edgeps.export
    suffix: str  # model file name
    precisions: tuple[str, ...]
    backend: str  # runtime backend that runs it
    needs: str  # pip extra with its converter


FORMATS: dict[str, FormatInfo] = {
    "torch": FormatInfo("torch", "torch_format", "model.pt", ("fp32",), "torch", "train"),
    "onnx": FormatInfo("onnx", "onnx_format", "model.onnx", ("fp32", "fp16", "int8"), "onnxruntime", "export"),
    "openvino": FormatInfo("openvino", "openvino_format", "model.xml", ("fp32", "fp16", "int8"), "openvino", "export"),
    "tflite": FormatInfo("tflite", "tflite_format", "model.tflite", ("fp32", "fp16", "int8"), "tflite", "export"),
}

__all__ = ["FORMATS", "FormatInfo"]
