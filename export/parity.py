"""The parity gate: an exported bundle against the torch fp32 model on held-out images.

Per-head max and mean abs diff, class-map agreement, and PQ of both on the same images. The
bars:

    precision   float heads                                   class-map agreement   PQ
    fp32        max |diff| <= FP_TOLERANCE on each            -                     -
    fp16        mean |diff| <= FP16_MEAN_TOLERANCE, finite    >= FP16_MIN_AGREEMENT  within FP16_MAX_PQ_POINTS
    bf16        mean |diff| <= BF16_MEAN_TOLERANCE, finite    >= BF16_MIN_AGREEMENT  within BF16_MAX_PQ_POINTS
    int8        -                                             >= INT8_MIN_AGREEMENT  -

A bundle whose graph extracts the centers (``graph_centers`` in its manifest) is also held to
GRAPH_MIN_AGREEMENT: its panoptic maps, from the graph's centers, against the host path's
(the same heads with the centers found in the heatmap), on every parity image. A bundle with
a batch dimension (``input.batch`` other than 1) is held to BATCH_MIN_AGREEMENT: two parity
images inferred as one batch against each alone (a batch changes only the kernels' rounding;
a graph that mixes frames disagrees everywhere).

fp16 is held to means, not maxima: rounding the weights to fp16 moves single pixels far (a
probability, an offset at an instance edge) while the maps agree almost everywhere and PQ does
not move. bf16 is held the same way with looser bars: it keeps 8 mantissa bits against fp16's
10 and rounds every activation, not only the weights, so its head errors are several times
fp16's. A bf16 bundle gated on a CPU without native bf16 runs f32 (and so passes trivially);
the report's ``inference_precision`` says what ran. The bars sit several
times above what the built-in model's exports measure (docs/measurements.md) and far below what
a broken export gives (an overflowed head is inf or NaN, a wrong one disagrees everywhere).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgeps.bundle import FLOAT_HEADS, HEADS
from edgeps.errors import ExportError
from edgeps.evaluation import evaluate_predictor
from edgeps.model.deploy import DeployModel

FP_TOLERANCE = 1e-3
FP16_MEAN_TOLERANCE = {"semantic_prob": 0.01, "center": 0.005, "offset": 0.5}  # offsets in pixels
FP16_MIN_AGREEMENT = 0.99
FP16_MAX_PQ_POINTS = 1.0
BF16_MEAN_TOLERANCE = {"semantic_prob": 0.02, "center": 0.01, "offset": 1.0}  # offsets in pixels
BF16_MIN_AGREEMENT = 0.98
BF16_MAX_PQ_POINTS = 1.5
INT8_MIN_AGREEMENT = 0.98
GRAPH_MIN_AGREEMENT = 0.999  # graph vs host center extraction: pixels of the panoptic map that agree
BATCH_MIN_AGREEMENT = 0.999  # a frame's class map in a batch of two vs alone
# precision -> (mean |diff| bars per float head, min class agreement, max |PQ diff| in points)
_MEAN_GATED = {
    "fp16": (FP16_MEAN_TOLERANCE, FP16_MIN_AGREEMENT, FP16_MAX_PQ_POINTS),
    "bf16": (BF16_MEAN_TOLERANCE, BF16_MIN_AGREEMENT, BF16_MAX_PQ_POINTS),
}


class _Subset:
    def __init__(self, dataset: Any, n: int):
        self.dataset, self.n, self.categories = dataset, min(n, len(dataset)), dataset.categories

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.dataset[i]


def parity_report(
    runtime: Any, reference: Any, model: torch.nn.Module, dataset: Any, n: int, precision: str
) -> dict[str, Any]:
    """Compare ``runtime`` (a loaded bundle) with ``reference`` (the torch fp32 runtime-like
    predictor built from ``model``) on the first ``n`` images of ``dataset``."""
    deploy = DeployModel(model).eval()
    max_diff = dict.fromkeys(FLOAT_HEADS, 0.0)
    sum_diff, count = dict.fromkeys(FLOAT_HEADS, 0.0), dict.fromkeys(FLOAT_HEADS, 0)
    agree, total = 0, 0
    post_agree, post_total = 0, 0
    graph = runtime.manifest.graph_centers is not None
    subset = _Subset(dataset, n)
    for i in range(len(subset)):
        batch = runtime.preprocess(subset[i].image)
        got = runtime.infer(batch)
        x = torch.from_numpy(batch)
        if runtime.manifest.input.layout == "NHWC":  # the torch model takes NCHW
            x = x.permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            ref = [t.numpy() for t in deploy(x)]
        ref = dict(zip(HEADS, ref))
        for head in FLOAT_HEADS:
            diff = np.abs(got[head].astype(np.float32) - ref[head])
            d = float(diff.max())
            max_diff[head] = max(max_diff[head], d) if np.isfinite(d) else float("inf")  # a NaN head fails the gate
            sum_diff[head] += float(diff.astype(np.float64).sum())
            count[head] += diff.size
        agree += int((got["semantic"] == ref["semantic"]).sum())
        total += ref["semantic"].size
        if graph:
            from edgeps.postprocess import panoptic_from_outputs

            kw = {"thing_ids": runtime.thing_ids, "settings": runtime.manifest.postprocess, "compute_scores": False}
            in_graph = panoptic_from_outputs(got, **kw).panoptic
            on_host = panoptic_from_outputs({h: got[h] for h in HEADS if h in got}, **kw).panoptic
            post_agree += int((in_graph == on_host).sum())
            post_total += on_host.size
    pq_bundle = evaluate_predictor(runtime, subset, show_progress=False)["All"]["pq"]
    pq_torch = evaluate_predictor(reference, subset, show_progress=False)["All"]["pq"]
    batched = _batch_report(runtime, subset) if runtime.max_batch != 1 and len(subset) >= 2 else None
    return {
        "images": len(subset),
        "max_abs_diff": max_diff,
        "mean_abs_diff": {
            h: (sum_diff[h] / count[h] if np.isfinite(sum_diff[h]) else float("inf")) if count[h] else 0.0
            for h in FLOAT_HEADS
        },
        "class_agreement": agree / max(total, 1),
        "pq_torch_fp32": pq_torch,
        "pq_bundle": pq_bundle,
        "pq_diff_points": 100 * (pq_bundle - pq_torch),
        "precision": precision,
        # what the runtime computed in (OpenVINO: bf16 only where the CPU has it natively)
        "inference_precision": runtime.info.get("inference_precision", precision),
        **({"postprocess_agreement": post_agree / max(post_total, 1)} if graph else {}),
        **({"batch": batched} if batched is not None else {}),
    }


def _batch_report(runtime: Any, subset: Any) -> dict[str, Any]:
    """A batched bundle's heads for two frames in one call against each frame alone: class-map
    agreement and the largest float difference (a batch changes only the kernels' rounding)."""
    alone = [runtime.preprocess(subset[i].image) for i in range(2)]
    together = runtime.infer_frames(alone)
    agree, total, diff = 0, 0, 0.0
    for batch, heads in zip(alone, together):
        single = runtime.infer(batch)
        agree += int((single["semantic"] == heads["semantic"]).sum())
        total += single["semantic"].size
        for head in FLOAT_HEADS:
            d = float(np.abs(single[head].astype(np.float32) - heads[head].astype(np.float32)).max())
            diff = max(diff, d) if np.isfinite(d) else float("inf")
    return {"frames": 2, "class_agreement": agree / max(total, 1), "max_abs_diff": diff}


def check_parity(report: dict[str, Any], name: str) -> None:
    """Raise ExportError when a bundle misses its parity bar."""
    if report["precision"] == "fp32":
        bad = {h: d for h, d in report["max_abs_diff"].items() if not d <= FP_TOLERANCE}  # NaN fails too
        if bad:
            raise ExportError(f"{name}: fp32 export differs from torch by more than {FP_TOLERANCE} on {bad}")
    if report["precision"] in _MEAN_GATED:
        p = report["precision"]
        tolerance, min_agreement, max_pq = _MEAN_GATED[p]
        broken = {h: d for h, d in report["max_abs_diff"].items() if not np.isfinite(d)}
        mean = report.get("mean_abs_diff", {})
        bad = {h: d for h, d in mean.items() if not d <= tolerance[h]}  # NaN fails too
        if broken or bad or set(mean) != set(tolerance):
            raise ExportError(
                f"{name}: {p} heads differ from torch fp32: mean |diff| {mean} (bars {tolerance}), "
                f"non-finite max on {sorted(broken) or 'none'}"
            )
        if report["class_agreement"] < min_agreement:
            raise ExportError(
                f"{name}: {p} class maps agree with torch on {100 * report['class_agreement']:.2f} % of pixels "
                f"(< {100 * min_agreement:.0f} %)"
            )
        if not abs(report["pq_diff_points"]) <= max_pq:
            raise ExportError(
                f"{name}: {p} PQ differs from torch fp32 by {report['pq_diff_points']:.2f} points (more than {max_pq})"
            )
    if "postprocess_agreement" in report and not report["postprocess_agreement"] >= GRAPH_MIN_AGREEMENT:
        raise ExportError(
            f"{name}: panoptic maps from the graph's centers agree with the host path on "
            f"{100 * report['postprocess_agreement']:.3f} % of pixels (< {100 * GRAPH_MIN_AGREEMENT:.1f} %)"
        )
    batched = report.get("batch")
    if batched is not None and not batched["class_agreement"] >= BATCH_MIN_AGREEMENT:
        raise ExportError(
            f"{name}: two frames inferred as one batch agree with each frame alone on "
            f"{100 * batched['class_agreement']:.3f} % of class-map pixels (< {100 * BATCH_MIN_AGREEMENT:.1f} %)"
        )
    if report["precision"] == "int8" and report["class_agreement"] < INT8_MIN_AGREEMENT:
        raise ExportError(
            f"{name}: int8 class maps agree with torch on {100 * report['class_agreement']:.2f} % of pixels "
            f"(< {100 * INT8_MIN_AGREEMENT:.0f} %): try another --target or more calibration images"
        )
