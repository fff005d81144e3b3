"""ONNX export: DeployModel (BN folded, ArgMax in the graph) -> model.onnx, then fp16 or int8.

int8 is ORT static quantization (QDQ, per-channel weights, percentile-99.99 activation ranges;
the prediction convs and what follows them stay float, and so do the encoder's first two blocks:
see ``FLOAT_STEM``). On CPUs without VNNI (AVX2 only,
common on edge x86 boards) the u8 x s8 dot products saturate with the default ranges, which
wrecks accuracy; ``reduce_range`` (7-bit weights) fixes it. The per-target default:

    target       reduce_range   for
    generic      true           any x86 CPU (safe without VNNI), the default
    cpu-vnni     false          CPUs with AVX512-VNNI / AVX-VNNI
    tensorrt     false          TensorRT on Jetson (it reads the QDQ scales itself)
"""

from __future__ import annotations

import logging
import warnings

import onnx
import torch

from edgeps.errors import ConfigError, ExportError
from edgeps.export.job import ExportArtifact, ExportJob, timed_export
from edgeps.model.deploy import DeployModel

log = logging.getLogger("edgeps.export.onnx")

TARGETS = {"generic": {"reduce_range": True}, "cpu-vnni": {"reduce_range": False}, "tensorrt": {"reduce_range": False}}
OPSET = 18
# Conv weights (by name) whose convs, and everything after them, stay float in int8 exports.
KEEP_FLOAT = (".predictor.",)
# Convs (by weight name) that stay float on their own: the stem conv and the first inverted
# residual block, at half the input resolution; quantized, they cost the most class agreement
# (the variants tried are in docs/measurements.md).
FLOAT_STEM = (".encoder.features.0.", ".encoder.features.1.")


def _export_fp32(job: ExportJob, path) -> str:
    """The fp32 graph at ``path``; returns the exporter that made it (``dynamo``, or
    ``torchscript`` at opset 17 when the dynamo exporter failed)."""
    # no Softmax op: ORT runs one over the class axis through a transpose (DeployModel's exp_sum)
    deploy = DeployModel(job.model, prob_op="exp_sum", centers=job.graph_centers).eval()
    heads = job.output_heads()
    # A batched export is traced with a dynamic batch (an example of 2: torch.export specializes
    # a dimension of size 1) and calibrated at batch 1; a fixed N is set on the file at the end.
    batched = job.batch != 1
    x = torch.zeros(2 if batched else 1, 3, *job.spec.size)
    dynamic_axes = {**({0: "batch"} if batched else {}), **({2: "height", 3: "width"} if job.dynamic_hw else {})}
    dynamic = {"input": dynamic_axes} if dynamic_axes else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kwargs = {}
            dims = {}
            if batched:
                dims[0] = torch.export.Dim("batch", min=1, max=1024)
            if job.dynamic_hw:
                dims[2] = torch.export.Dim("height", min=32, max=4096)
                dims[3] = torch.export.Dim("width", min=32, max=4096)
            if dims:
                kwargs["dynamic_shapes"] = {"x": dims}
            prog = torch.onnx.export(
                deploy,
                (x,),
                input_names=["input"],
                output_names=heads,
                opset_version=OPSET,
                dynamo=True,
                **kwargs,
            )
            prog.save(str(path))
            exporter = "dynamo"
    except Exception as exc:  # the dynamo exporter is young: fall back to the TorchScript one
        log.warning("dynamo ONNX export failed (%s); using the legacy exporter", str(exc).splitlines()[0][:200])
        torch.onnx.export(
            deploy,
            (x,),
            str(path),
            input_names=["input"],
            output_names=heads,
            opset_version=17,
            dynamic_axes=dynamic,
            dynamo=False,
        )
        exporter = "torchscript"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    names = [o.name for o in model.graph.output]
    if names != heads:
        raise ExportError(f"ONNX export produced outputs {names}, expected {heads}")
    return exporter


def _set_batch(path, batch: int | str) -> None:
    """Give the file's input and outputs the bundle's batch: a fixed N, or the symbol ``batch``."""
    model = onnx.load(str(path))
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if isinstance(batch, int):
            dim.dim_value = batch
        else:
            dim.dim_param = "batch"
    onnx.save(model, str(path))


def graph_opset(path) -> int:
    """The default-domain (ai.onnx) opset the ONNX file at ``path`` declares."""
    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _to_fp16(src, dst) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(
        onnx.load(str(src)),
        keep_io_types=True,
        op_block_list=["ArgMax", "Softmax", "ReduceMax", "Exp", "ReduceSum", "Reciprocal", "MaxPool", "TopK"],
    )
    onnx.save(model, str(dst))


def _float_tail(model: onnx.ModelProto, keep_float: tuple[str, ...]) -> list[str]:
    """Names of the nodes that stay float: the convs whose weight name contains one of
    ``keep_float`` and every node downstream of them (resizes, softmax, argmax).

    The prediction convs are cheap (few channels) but their outputs (offsets of +-100 px, the
    heatmap peaks) lose most from 8-bit activations.
    """
    tail = set(_float_convs(model, keep_float))
    produced = {o for n in model.graph.node if n.name in tail for o in n.output}
    changed = True
    while changed:
        changed = False
        for n in model.graph.node:
            if n.name not in tail and any(i in produced for i in n.input):
                tail.add(n.name)
                produced.update(n.output)
                changed = True
    return sorted(tail)


def _float_convs(model: onnx.ModelProto, names: tuple[str, ...]) -> list[str]:
    """Names of the convs whose weight name contains one of ``names`` (not what follows them)."""
    return [n.name for n in model.graph.node if n.op_type == "Conv" and any(k in i for i in n.input for k in names)]


def _to_int8(job: ExportJob, src, dst) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgeps.calibration.onnxruntime import OrtCalibrationReader, calibration_stride

    if job.calibration is None or not job.calibration.batches:
        raise ConfigError("int8 export needs a calibration set (--calib SPEC)")
    if job.target not in TARGETS:
        raise ConfigError(f"--target: expected one of {', '.join(TARGETS)}, got {job.target!r}")
    settings = TARGETS[job.target]
    graph = onnx.load(str(src))
    stem = _float_convs(graph, FLOAT_STEM)
    if not stem:
        log.warning(
            "onnx int8: no encoder stem conv found by name (%s); it is quantized (class agreement may drop)",
            ", ".join(FLOAT_STEM),
        )
    quantize_static(
        str(src),
        str(dst),
        OrtCalibrationReader(job.calibration, "input"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=settings["reduce_range"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={
            "CalibPercentile": 99.99,
            "CalibStridedMinMax": calibration_stride(len(job.calibration.batches)),
        },
        op_types_to_quantize=["Conv", "Add", "Concat", "Resize", "Mul", "GlobalAveragePool", "ReduceMean"],
        nodes_to_exclude=_float_tail(graph, KEEP_FLOAT) + stem,
    )
    return {
        "target": job.target,
        "reduce_range": settings["reduce_range"],
        "quant_format": "QDQ",
        "per_channel": True,
        "activations": "uint8",
        "weights": "int8",
        "float_nodes": list(KEEP_FLOAT),
        "float_convs": list(FLOAT_STEM),
        "calibration": "percentile 99.99",
    }


@timed_export
def export(job: ExportJob) -> ExportArtifact:
    path = job.out_dir / job.model_file
    if job.precision == "fp32":
        exporter = _export_fp32(job, path)
        target: dict = {"dynamic_hw": job.dynamic_hw}
    else:
        fp32 = job.out_dir / "model_fp32.tmp.onnx"
        exporter = _export_fp32(job, fp32)
        try:
            if job.precision == "fp16":
                _to_fp16(fp32, path)
                target = {"note": "fp16 for GPU providers (CUDA/TensorRT); slow on CPU"}
            else:
                target = _to_int8(job, fp32, path)
        finally:
            fp32.unlink(missing_ok=True)
    if job.batch != 1:
        _set_batch(path, job.batch)
        target["batch"] = job.batch
    # what the file really is: the fallback exporter writes opset 17, quantization may raise it
    target.update(opset=graph_opset(path), exporter=exporter)
    return ExportArtifact(job.model_file, target)
