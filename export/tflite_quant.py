"""TFLite fp16 and int8 with ai_edge_quantizer, from the float flatbuffer litert_torch made.

fp16 is weight-only "float casting": conv weights stored as float16, compute stays float32.

int8 is the ``static_wi8_ai8`` recipe (per-channel int8 weights, int8 activations calibrated
with min/max on the calibration set), with two changes (their measurements are in
docs/measurements.md).

The center heatmap is what int8 loses: its int8 output saturates at the calibrated maximum, the
peaks become plateaus and the max-pool NMS finds a center on every plateau pixel (4x the
instances). So the center and offset prediction convs and everything after them stay float
(like KEEP_FLOAT in the ONNX export; they are tiny), and the graph outputs are not
re-quantized. The semantic branch stays int8 (float there costs time for no gain). The input
stays int8: the runtime quantizes it with the tensor's scale and zero point.

The encoder's stem conv and first inverted residual block stay float as well (``FLOAT_STEM``,
as in the ONNX and OpenVINO exports), which keeps class agreement above the parity gate.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

from edgeps.calibration.sets import CalibrationSet

log = logging.getLogger("edgeps.export.tflite")

INT8_RECIPE = "static_wi8_ai8"
# Prediction convs (by their output tensor's module path) that stay float with all after them.
KEEP_FLOAT = re.compile(r"_(center_head|offset_head)/[^/;]*_predictor(;|$)")
# Ops that stay float on their own (not what follows): the encoder's stem conv and first
# inverted residual block (features 0 and 1), as in the ONNX and OpenVINO int8 exports.
FLOAT_STEM = re.compile(r"MobileNetV2Encoder_encoder/[^/;]*\.(ConvBNAct_0|InvertedResidual_1)/")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the converter's and quantizer's progress output unless export logs at DEBUG."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    key = "LITERT_TORCH_SHOW_PROGRESS"
    old, old_disable = os.environ.get(key), logging.root.manager.disable
    os.environ[key] = "n"
    logging.disable(logging.INFO)  # ai_edge_quantizer logs each transformation on the root logger
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(old_disable)
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def to_fp16(content: bytes) -> bytes:
    """Weight-only float16 (conv and fully connected weights); activations stay float32."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    q = quantizer.Quantizer(content)
    q.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        algorithm_key=AlgorithmName.FLOAT_CASTING,
    )
    with quiet():
        return bytes(q.quantize(enable_progress_report=False).quantized_model)


def _ops_named(content: bytes, pattern: re.Pattern[str]) -> tuple[Any, list, list, set[int]]:
    """(flatbuffer utils, ops, tensors, indices of the ops whose output tensor name matches
    ``pattern``): the tensor names are the only link back to the PyTorch modules."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    subgraph = fb.read_model(content).subgraphs[0]
    ops, tensors = subgraph.operators, subgraph.tensors
    hits = {
        i for i, op in enumerate(ops) if len(op.outputs) and pattern.search(fb.get_tensor_name(tensors[op.outputs[0]]))
    }
    return fb, ops, tensors, hits


def float_tail_scopes(content: bytes, keep_float: re.Pattern[str] = KEEP_FLOAT) -> list[str]:
    """Quantizer scopes of the ops that stay float: the convs whose output tensor name matches
    ``keep_float`` and every op downstream of them (resizes, reshapes, transposes)."""
    fb, ops, tensors, tail = _ops_named(content, keep_float)
    produced = {int(t) for i in tail for t in ops[i].outputs}
    changed = True
    while changed:
        changed = False
        for i, op in enumerate(ops):
            if i not in tail and any(int(t) in produced for t in op.inputs):
                tail.add(i)
                produced.update(int(t) for t in op.outputs)
                changed = True
    return [fb.get_op_scope(ops[i], tensors) for i in sorted(tail)]


def stem_scopes(content: bytes, stem: re.Pattern[str] = FLOAT_STEM) -> list[str]:
    """Quantizer scopes of the ops whose output tensor name matches ``stem``."""
    fb, ops, tensors, hits = _ops_named(content, stem)
    return [fb.get_op_scope(ops[i], tensors) for i in sorted(hits)]


def to_int8(content: bytes, calibration: CalibrationSet, input_name: str) -> tuple[bytes, dict[str, Any]]:
    """Static int8 calibrated on ``calibration``, float prediction tail; (model, target info)."""
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    from edgeps.calibration.tflite import representative_data

    q = quantizer.Quantizer(content, getattr(recipe, INT8_RECIPE)())
    tail = float_tail_scopes(content)
    if not tail:
        log.warning(
            "tflite int8: no center/offset prediction conv found by name; the whole graph is int8 (PQ may drop)"
        )
    stem = stem_scopes(content)
    if not stem:
        log.warning("tflite int8: no encoder stem op found by name; it is quantized (class agreement may drop)")
    for scope in tail + stem:
        q.update_quantization_recipe(
            f"^{re.escape(scope)}$", qtyping.TFLOperationName.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
    q.update_quantization_recipe(".*", qtyping.TFLOperationName.OUTPUT, algorithm_key=AlgorithmName.NO_QUANTIZE)
    with quiet():
        ranges = q.calibrate(representative_data(calibration, input_name))
        model = bytes(q.quantize(ranges, enable_progress_report=False).quantized_model)
    info = {
        "quantizer": "ai_edge_quantizer",
        "recipe": INT8_RECIPE,
        "weights": "int8 per-channel",
        "activations": "int8",
        "float_ops": len(tail),
        "float_stem_ops": len(stem),
        "io": "int8 input (scale/zero point of the tensor); float32 heads, int32 class map",
    }
    return model, info
