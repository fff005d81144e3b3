"""OpenVINO export: DeployModel (BN folded, ArgMax in the graph) -> model.xml + model.bin.

The graph comes straight from torch (``openvino.convert_model`` on the module, no ONNX in
between: one converter fewer, numerically the same as the ONNX route). It
gets a static input (``[1, 3, H, W]``; batch 1 with dynamic H/W under ``--dynamic-hw``; a
fixed N or a dynamic batch under ``--batch``) and output tensor names from ``OUTPUT_HEADS``,
followed by the center candidates under ``--postprocess graph``; the manifest still indexes
outputs by position.

fp16 compresses the weights to fp16 (half the file; the CPU plugin decompresses them, GPUs
run them natively). bf16 keeps the IR exactly the fp32 one (f32 weights): bf16 is how the CPU
computes, not what the file stores, so the runtime sets ``INFERENCE_PRECISION_HINT`` bf16 from
the manifest's precision where the CPU has native bf16 and runs f32 elsewhere
(:mod:`edgeps.runtimes.openvino_backend`). int8 is NNCF post-training quantization (FakeQuantize, symmetric
"performance" preset) over the calibration set. NNCF's default ranges saturate the u8 x s8
dot products on CPUs without VNNI (AVX2 only), so the default target turns on NNCF's
overflow fix on every layer (7-bit weights; NNCF's own default fixes the first layer only),
like ORT's ``reduce_range``:

    target       overflow_fix   nncf target_device   for
    generic      enable         CPU                  any x86 CPU (safe without VNNI), the default
    cpu-vnni     disable        CPU                  CPUs with AVX512-VNNI / AVX-VNNI / AMX
    gpu          disable        GPU                  Intel GPUs
    npu          disable        NPU                  Intel NPUs

The ArgMax (TopK) and Softmax stay float: NNCF does not quantize them, and the outputs keep
their order and names (checked after quantization). The center and offset predictions stay
float too: NNCF would put a FakeQuantize on them before the final upsampling, clipping the
offsets to the largest vote seen in calibration (about 80 px), so every pixel of an object
nearer the camera than any calibration object votes for a wrong center and the object falls
apart into fragments. The encoder's stem conv and first inverted residual block stay float as
well (``FLOAT_STEM``, as in the ONNX and TFLite exports), which keeps class agreement above
the parity gate at no measurable cost. The figures behind both are in docs/measurements.md.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from edgeps.errors import ConfigError, ExportError
from edgeps.export.job import ExportArtifact, ExportJob, timed_export
from edgeps.model.deploy import DeployModel

log = logging.getLogger("edgeps.export.openvino")

TARGETS: dict[str, dict[str, str]] = {
    "generic": {"overflow_fix": "enable", "target_device": "CPU"},
    "cpu-vnni": {"overflow_fix": "disable", "target_device": "CPU"},
    "gpu": {"overflow_fix": "disable", "target_device": "GPU"},
    "npu": {"overflow_fix": "disable", "target_device": "NPU"},
}


def convert(job: ExportJob) -> Any:
    """The fp32 ``openvino.Model`` of ``job.model`` with named outputs and a batch-1 input, or a
    dynamic batch for a batched export (calibrated at batch 1, fixed to N by ``export``)."""
    import openvino as ov

    deploy = DeployModel(job.model, centers=job.graph_centers).eval()
    heads = job.output_heads()
    h, w = job.spec.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(deploy, example_input=torch.zeros(1, 3, h, w))
    n = 1 if job.batch == 1 else -1
    model.reshape({model.inputs[0]: [n, 3, -1, -1] if job.dynamic_hw else [n, 3, h, w]})
    if len(model.outputs) != len(heads):
        raise ExportError(f"OpenVINO conversion produced {len(model.outputs)} outputs, expected {len(heads)}")
    for output, head in zip(model.outputs, heads):
        output.get_tensor().set_names({head})
    model.inputs[0].get_tensor().set_names({"input"})
    return model


def check_outputs(model: Any, heads: list[str]) -> None:
    """Outputs must still be ``heads`` in order, the class map int32 (the ArgMax kept)."""
    names = [sorted(o.get_names())[0] if o.get_names() else "?" for o in model.outputs]
    if names != heads:
        raise ExportError(f"OpenVINO model outputs {names}, expected {heads}")
    semantic = model.outputs[0].get_element_type().get_type_name()
    if semantic != "i32":
        raise ExportError(f"OpenVINO model: semantic output is {semantic}, expected i32 (the in-graph ArgMax)")


REGRESSION_HEADS = ("center", "offset")
CONVS = ("Convolution", "GroupConvolution")
FLOAT_STEM = ("encoder.features.0.", "encoder.features.1.")  # convs (by friendly name) kept float


def regression_upsamples(model: Any) -> list[str]:
    """Names of the Interpolate ops that upsample the center and offset predictions (walking
    back from those outputs): quantizing their input would clip the regressed values."""
    names = []
    for output in model.outputs:
        if not set(output.get_names()) & set(REGRESSION_HEADS):
            continue
        node = output.get_node()
        for _ in range(16):
            if node.get_type_name() == "Interpolate":
                names.append(node.get_friendly_name())
                break
            inputs = [node.input(i).get_source_output().get_node() for i in range(node.get_input_size())]
            data = [n for n in inputs if n.get_type_name() != "Constant"]
            if not data:
                break
            node = data[0]
    if len(names) != len(REGRESSION_HEADS):
        raise ExportError(f"OpenVINO model: expected an Interpolate before each of {REGRESSION_HEADS}, found {names}")
    return names


def quantize(job: ExportJob, model: Any) -> tuple[Any, dict[str, Any]]:
    """NNCF post-training INT8 with the job's target settings; returns (model, target info)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    from edgeps.calibration.openvino import nncf_dataset

    if job.calibration is None or not job.calibration.batches:
        raise ConfigError("int8 export needs a calibration set (--calib SPEC)")
    if job.target not in TARGETS:
        raise ConfigError(f"--target: openvino takes one of {', '.join(TARGETS)}, got {job.target!r}")
    settings = TARGETS[job.target]
    keep_float = regression_upsamples(model)
    stem = [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() in CONVS and any(k in op.get_friendly_name() for k in FLOAT_STEM)
    ]
    quantized = nncf.quantize(
        model,
        nncf_dataset(job.calibration),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        target_device=nncf.TargetDevice[settings["target_device"]],
        subset_size=len(job.calibration.batches),
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(settings["overflow_fix"])),
        ignored_scope=nncf.IgnoredScope(names=keep_float + stem),
    )
    info = {
        "target": job.target,
        **settings,
        "preset": "performance",
        "method": "nncf post-training (FakeQuantize)",
        "float_ops": keep_float,
        "calibration_images": len(job.calibration.batches),
    }
    return quantized, info


def versions() -> dict[str, str]:
    import openvino as ov

    out = {"openvino": ov.get_version(), "torch": str(torch.__version__)}
    try:
        import nncf

        out["nncf"] = str(nncf.__version__)
    except ImportError:
        pass
    return out


@timed_export
def export(job: ExportJob) -> ExportArtifact:
    import openvino as ov

    path: Path = job.out_dir / job.model_file
    model = convert(job)
    target: dict[str, Any] = {"converter": "openvino.convert_model(torch)", "dynamic_hw": job.dynamic_hw}
    if job.precision == "int8":
        model, quant = quantize(job, model)
        target.update(quant)
    elif job.precision == "fp16":
        target["note"] = "fp16 weights (compress_to_fp16); CPU decompresses to fp32, GPU/NPU run fp16"
    elif job.precision == "bf16":
        target.update(
            inference_precision="bf16",
            note="f32 weights; CPUs with native bf16 (AVX512-BF16 / AMX) compute in bf16, others in f32",
        )
    if job.batch != 1:
        h, w = job.spec.size
        n = -1 if job.batch == "dynamic" else int(job.batch)
        model.reshape({model.inputs[0]: [n, 3, -1, -1] if job.dynamic_hw else [n, 3, h, w]})
        target["batch"] = job.batch
    check_outputs(model, job.output_heads())
    ov.save_model(model, str(path), compress_to_fp16=job.precision == "fp16")
    target["versions"] = versions()
    return ExportArtifact(job.model_file, target)
