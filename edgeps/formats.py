"""The one table of bundle formats and runtime backends (strings only: the core may not import
``edgeps.export`` or ``edgeps.runtimes``, and a runtime-only install reads it to validate
manifests).

Everything else is derived from it: manifest validation (:mod:`edgeps.bundle`), the default
backend of a bundle (:func:`edgeps.runtimes.load`), the export pipeline's checks
(:mod:`edgeps.export.pipeline`), the demo's list of formats it can build, and every help text
that names formats, precisions, targets or backends. Adding a format is one export module
(``export(job) -> ExportArtifact``), one runtime module (``BACKEND``), an int8 calibration
adapter under ``calibration/`` when it quantizes, and one row in each table below.

A precision that only some CPUs run natively (bf16) names the ``/proc/cpuinfo`` flags that
mark them in :data:`PRECISION_TABLE`; :func:`edgeps.runtimes.cpu.runs_natively` answers for the
running machine (what a benchmark sweep asks before it picks such a precision).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """One bundle precision."""

    name: str
    native_cpu_flags: tuple[str, ...]  # /proc/cpuinfo flags, any one of which runs it natively on a CPU;
    # () = every CPU. Where none is present the runtime computes in f32 and warns (see runtimes.cpu)
    cpu_fallback: str  # what a CPU without those flags computes in
    note: str  # one line for help texts


PRECISION_TABLE: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", (), "fp32", "float32 weights and compute"),
        Precision("fp16", (), "fp32", "float16 weights; CPUs compute in float32, GPUs/NPUs in float16"),
        Precision(
            "bf16",
            ("avx512_bf16", "amx_bf16"),
            "fp32",
            "float32 weights, bfloat16 compute on CPUs with AVX512-BF16 / AMX (OpenVINO's inference precision)",
        ),
        Precision("int8", (), "int8", "int8 weights and activations (post-training quantization)"),
    )
}
PRECISIONS = tuple(PRECISION_TABLE)
_DEFAULT_PRECISIONS = ("fp32", "fp16", "int8")  # what every exporting format offers


@dataclass(frozen=True)
class Format:
    """One bundle format."""

    name: str
    export_module: str  # module under edgeps.export with export(job) -> ExportArtifact
    export_packages: tuple[str, ...]  # import names its converter needs (all of them)
    export_extra: str  # pip extra that installs them
    model_file: str  # the model file's name in a bundle
    bundle_files: tuple[str, ...]  # every file the model is made of (model_file first)
    precisions: tuple[str, ...]
    targets: tuple[str, ...]  # int8 targets (--target); the first is the default. tflite's two give the
    # same model: XNNPACK's int8 kernels need no 7-bit weights on CPUs without VNNI
    backend: str  # the runtime backend a bundle of this format opens with by default
    int8_float_layers: str  # what stays float in an int8 export


@dataclass(frozen=True)
class Backend:
    """One runtime backend."""

    name: str
    runtime_module: str  # module under edgeps.runtimes with BACKEND
    formats: tuple[str, ...]  # bundle formats it runs
    packages: tuple[str, ...]  # import names, any one of which will do
    extra: str  # pip extra that installs one


_STEM = "the encoder's stem conv and first block"
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("torch", "torch_format", ("torch",), "train", "model.pt", ("model.pt",), ("fp32",), (), "torch", "-"),
        Format(
            "onnx",
            "onnx_format",
            ("onnx", "onnxruntime"),
            "export",
            "model.onnx",
            ("model.onnx",),
            _DEFAULT_PRECISIONS,
            ("generic", "cpu-vnni", "tensorrt"),
            "onnxruntime",
            f"the prediction convs and all after them; {_STEM}",
        ),
        Format(
            "openvino",
            "openvino_format",
            ("openvino", "nncf"),
            "export",
            "model.xml",
            ("model.xml", "model.bin"),
            ("fp32", "fp16", "bf16", "int8"),
            ("generic", "cpu-vnni", "gpu", "npu"),
            "openvino",
            f"softmax/argmax, the center and offset predictions; {_STEM}",
        ),
        Format(
            "tflite",
            "tflite_format",
            ("litert_torch", "ai_edge_quantizer"),
            "export",
            "model.tflite",
            ("model.tflite",),
            _DEFAULT_PRECISIONS,
            ("generic", "cpu-vnni"),
            "tflite",
            f"the instance heads' prediction tail; {_STEM}",
        ),
    )
}

# Formats whose export can put the center extraction in the graph (export --postprocess graph).
GRAPH_POSTPROCESS_FORMATS = ("onnx", "openvino", "tflite")
# Formats whose export can put the pixel grouping in the graph too (export --postprocess grouping,
# for GPU targets); the others keep the grouping on the host.
GRAPH_GROUPING_FORMATS = ("onnx", "openvino")
# Formats whose export can give the model a batch dimension (export --batch N|dynamic); the
# others (TFLite: a fixed-shape interpreter calibrated at batch 1) export batch 1.
BATCH_FORMATS = ("onnx", "openvino")

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("onnxruntime", "onnxruntime_backend", ("onnx",), ("onnxruntime",), "ort"),
        Backend("openvino", "openvino_backend", ("openvino",), ("openvino",), "openvino"),
        Backend("torch", "torch_backend", ("torch",), ("torch",), "train"),
        Backend("tflite", "tflite_backend", ("tflite",), ("ai_edge_litert", "tflite_runtime"), "tflite"),
    )
}


def check_export_request(
    formats: list[str], precisions: list[str], target: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """The (format, precision) jobs of an export request (formats x precisions), and the
    combinations left out because a format does not offer that precision (``torch-int8``).

    Raises ``ValueError`` naming every bad part at once, before anything is exported: an
    unknown format or precision, a precision that no requested format offers, an int8
    ``target`` that a requested int8 format does not take, an empty request. The caller turns
    it into its own error type."""
    problems = [f"unknown format '{f}' (known: {', '.join(FORMATS)})" for f in formats if f not in FORMATS]
    problems += [f"unknown precision '{p}' (known: {', '.join(PRECISIONS)})" for p in precisions if p not in PRECISIONS]
    known = [FORMATS[f] for f in formats if f in FORMATS]
    for p in precisions:
        if p in PRECISIONS and known and not any(p in f.precisions for f in known):
            offered = ", ".join(f"{f.name}: {'/'.join(f.precisions)}" for f in known)
            problems.append(f"no requested format offers {p} ({offered})")
    if "int8" in precisions:
        for f in known:
            if "int8" in f.precisions and target not in f.targets:
                problems.append(f"{f.name} int8 takes --target {', '.join(f.targets)}, not '{target}'")
    if not formats or not precisions:
        problems.append("no format or no precision asked for")
    if problems:
        raise ValueError("; ".join(problems))
    jobs = [(f.name, p) for f in known for p in precisions if p in f.precisions]
    left_out = [f"{f.name}-{p}" for f in known for p in precisions if p not in f.precisions]
    return jobs, left_out


def formats_help() -> str:
    """One line per format for --help texts: name, precisions, int8 targets, backend."""
    return "; ".join(
        f"{f.name} ({'/'.join(f.precisions)}{', int8 targets ' + '/'.join(f.targets) if f.targets else ''})"
        for f in FORMATS.values()
    )


def precisions_help() -> str:
    """One line per precision for --help texts: name, the formats that offer it, what it is."""
    return "; ".join(
        f"{p.name} ({'/'.join(f.name for f in FORMATS.values() if p.name in f.precisions)}): {p.note}"
        for p in PRECISION_TABLE.values()
    )


__all__ = [
    "BACKENDS",
    "FORMATS",
    "GRAPH_GROUPING_FORMATS",
    "GRAPH_POSTPROCESS_FORMATS",
    "PRECISIONS",
    "PRECISION_TABLE",
    "Backend",
    "Format",
    "Precision",
    "check_export_request",
    "formats_help",
    "precisions_help",
]
