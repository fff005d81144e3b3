"""The parity gate: an exported bundle against the torch fp32 model on held-out images.

Per-head max abs diff, class-map agreement, and PQ of both on the same images. fp32 exports
must match to 1e-3 on every float head; int8 exports need >= 98 % class-map agreement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgeps.errors import ExportError
from edgeps.evaluation import evaluate_predictor
from edgeps.model.deploy import DeployModel

FP_TOLERANCE = 1e-3
INT8_MIN_AGREEMENT = 0.98
FLOAT_HEADS = ("semantic_prob", "center", "offset")


class _Subset:
    def __init__(self, dataset: Any, n: int):
        self.dataset, self.n, self.categories = dataset, min(n, len(dataset)), dataset.categories

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.dataset[i]


def parity_report(runtime: Any, reference: Any, model: torch.nn.Module, dataset: Any, n: int, precision: str) -> dict[str, Any]:
    """Compare ``runtime`` (a loaded bundle) with ``reference`` (the torch fp32 runtime-like
    predictor built from ``model``) on the first ``n`` images of ``dataset``."""
    deploy = DeployModel(model).eval()
    max_diff = dict.fromkeys(FLOAT_HEADS, 0.0)
    agree, total = 0, 0
    subset = _Subset(dataset, n)
    for i in range(len(subset)):
        batch = runtime.preprocess(subset[i].image)
        got = runtime.infer(batch)
        x = torch.from_numpy(batch)
        if runtime.manifest.input.layout == "NHWC":  # the torch model takes NCHW
            x = x.permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            ref = [t.numpy() for t in deploy(x)]
        ref = dict(zip(("semantic", "semantic_prob", "center", "offset"), ref))
        for head in FLOAT_HEADS:
            max_diff[head] = max(max_diff[head], float(np.abs(got[head].astype(np.float32) - ref[head]).max()))
        agree += int((got["semantic"] == ref["semantic"]).sum())
        total += ref["semantic"].size
    pq_bundle = evaluate_predictor(runtime, subset, show_progress=False)["All"]["pq"]
    pq_torch = evaluate_predictor(reference, subset, show_progress=False)["All"]["pq"]
    return {
        "images": len(subset),
        "max_abs_diff": max_diff,
        "class_agreement": agree / max(total, 1),
        "pq_torch_fp32": pq_torch,
        "pq_bundle": pq_bundle,
        "pq_diff_points": 100 * (pq_bundle - pq_torch),
        "precision": precision,
    }


def check_parity(report: dict[str, Any], name: str) -> None:
    """Raise ExportError when a bundle misses its parity bar."""
    if report["precision"] == "fp32":
        bad = {h: d for h, d in report["max_abs_diff"].items() if d > FP_TOLERANCE}
        if bad:
            raise ExportError(f"{name}: fp32 export differs from torch by more than {FP_TOLERANCE} on {bad}")
    if report["precision"] == "int8" and report["class_agreement"] < INT8_MIN_AGREEMENT:
        raise ExportError(
            f"{name}: int8 class maps agree with torch on {100 * report['class_agreement']:.2f} % of pixels "
            f"(< {100 * INT8_MIN_AGREEMENT:.0f} %): try another --target or more calibration images"
        )
