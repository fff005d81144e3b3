"""TFLite (LiteRT) export: DeployModel (BN folded, ArgMax in the graph) -> model.tflite.

Under ``--postprocess graph`` the DeployModel also extracts the center candidates (MAX_POOL_2D,
EQUAL, GREATER, SELECT, TOPK_V2), two more outputs after the four heads; in int8 they stay
float with the rest of the instance heads' tail.

litert_torch converts the module straight from torch (no ONNX, no TensorFlow), with a static
input of ``[1, 3, H, W]`` (``[1, H, W, 3]`` when the InputSpec's layout is NHWC, through
``litert_torch.to_channel_last_io``). Measured on XNNPACK (2 threads, 256x512): NHWC input
is no faster than NCHW (the one 3-channel transpose is noise), so NCHW stays the default.
One conversion takes 30-80 s; fp16 and int8 start from the same float flatbuffer, which is
cached by model content so that one export run converts once.

fp16 (float16 weights) and int8 (ai_edge_quantizer static int8, float prediction tail for the
instance heads) are in :mod:`edgeps.export.tflite_quant`.

The flatbuffer's output list need not follow the module's output order (quantization
re-creates tensors), so the positions of the heads are read from the signature
(``output_0`` .. ``output_3`` = OUTPUT_HEADS, then the center candidates) and handed to the manifest.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import torch

from edgeps.errors import ConfigError, ExportError
from edgeps.export.job import ExportArtifact, ExportJob, timed_export
from edgeps.export.tflite_quant import quiet, to_fp16, to_int8
from edgeps.model.deploy import OUTPUT_HEADS, DeployModel

log = logging.getLogger("edgeps.export.tflite")

_float_cache: dict[str, bytes] = {}  # at most one entry: model content key -> float flatbuffer


def _content_key(job: ExportJob) -> str:
    """The model's weights, input size, layout and graph centers: equal keys convert to the same
    flatbuffer."""
    graph = sorted((job.graph_centers or {}).items())
    digest = hashlib.sha256(repr((tuple(job.spec.size), job.spec.layout, graph)).encode())
    for name, tensor in job.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def convert_float(job: ExportJob) -> bytes:
    """The float32 flatbuffer of ``DeployModel(job.model)`` at the job's static input size."""
    logging.getLogger("torchao").setLevel(logging.ERROR)  # its CUDA kernels fail to load on CPU: noise
    import litert_torch

    if job.dynamic_hw:
        raise ConfigError("tflite: static input shapes only; export tflite without --dynamic-hw")
    key = _content_key(job)
    if key in _float_cache:
        return _float_cache[key]
    deploy = DeployModel(job.model, centers=job.graph_centers).eval()
    h, w = job.spec.size
    if job.spec.layout == "NHWC":
        module, x = litert_torch.to_channel_last_io(deploy, args=[0]).eval(), torch.zeros(1, h, w, 3)
    else:
        module, x = deploy, torch.zeros(1, 3, h, w)
    with quiet():
        content = bytes(litert_torch.convert(module, (x,)).model_content())
    _float_cache.clear()
    _float_cache[key] = content
    return content


def signature_io(content: bytes, heads: list[str] | None = None) -> tuple[str, dict[str, int]]:
    """(input name in the signature, head -> position in the interpreter's output list).

    ``heads``: the outputs in signature order (default: the four heads). Also checks that the
    signature has exactly those outputs and that the class map is still int32.
    """
    heads = list(OUTPUT_HEADS) if heads is None else heads
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    runner = interp.get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    expected = [f"output_{i}" for i in range(len(heads))]
    if len(inputs) != 1 or sorted(outputs) != sorted(expected):
        raise ExportError(
            f"TFLite signature has inputs {list(inputs)} and outputs {list(outputs)}, expected one input and {expected}"
        )
    order = [d["index"] for d in interp.get_output_details()]
    positions = {head: order.index(outputs[name]["index"]) for head, name in zip(heads, expected)}
    semantic = interp.get_output_details()[positions["semantic"]]["dtype"]
    if semantic != np.int32:
        raise ExportError(
            f"TFLite model: semantic output is {np.dtype(semantic).name}, expected int32 (the in-graph ArgMax)"
        )
    return next(iter(inputs)), positions


@timed_export
def export(job: ExportJob) -> ExportArtifact:
    path = job.out_dir / job.model_file
    content = convert_float(job)
    target: dict[str, Any] = {"layout": job.spec.layout, "delegate": "XNNPACK (CPU)"}
    if job.precision == "fp16":
        content = to_fp16(content)
        target["note"] = "float16 weights (half the file); CPU computes in float32"
    elif job.precision == "int8":
        if job.calibration is None or not job.calibration.batches:
            raise ConfigError("int8 export needs a calibration set (--calib SPEC)")
        content, info = to_int8(content, job.calibration, signature_io(content, job.output_heads())[0])
        target.update(info)  # --target has no TFLite variants: one int8 recipe
    elif job.precision != "fp32":
        raise ConfigError(f"tflite: precision {job.precision!r} is not one of fp32, fp16, int8")
    _, positions = signature_io(content, job.output_heads())
    path.write_bytes(content)
    return ExportArtifact(job.model_file, target, output_index=positions)
