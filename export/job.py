"""What every format module gets (an ExportJob) and returns (an ExportArtifact), and the
decorator that times and sizes each export."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgeps.calibration.sets import CalibrationSet
from edgeps.model.deploy import GRAPH_CENTER_HEADS, GRAPH_GROUPING_HEADS, OUTPUT_HEADS
from edgeps.preprocess import InputSpec

log = logging.getLogger("edgeps.export")


@dataclass
class ExportJob:
    model: torch.nn.Module  # trained PanopticModel (eval mode, BN not folded)
    model_config: dict[str, Any]
    spec: InputSpec
    precision: str
    out_dir: Path
    model_file: str
    calibration: CalibrationSet | None = None
    target: str = "generic"
    dynamic_hw: bool = False
    # threshold/nms_kernel/top_k: centers in the graph (+ grouping, thing_ids: the grouping too)
    graph_centers: dict[str, Any] | None = None
    batch: int | str = 1  # frames per model call: 1, a fixed N, or "dynamic" (BATCH_FORMATS only)

    def output_heads(self) -> list[str]:
        """The graph's outputs in order: the four heads, then the center candidates when the graph
        extracts centers (``--postprocess graph``), then the instance map when it groups the
        pixels too (``--postprocess grouping``)."""
        if self.graph_centers is None:
            return list(OUTPUT_HEADS)
        grouping = list(GRAPH_GROUPING_HEADS) if self.graph_centers.get("grouping") else []
        return list(OUTPUT_HEADS) + list(GRAPH_CENTER_HEADS) + grouping


@dataclass
class ExportArtifact:
    model_file: str
    target: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    size_bytes: int = 0
    # head -> position among the model's outputs, when the file does not keep OUTPUT_HEADS order
    output_index: dict[str, int] = field(default_factory=dict)


def timed_export(fn: Callable[[ExportJob], ExportArtifact]) -> Callable[[ExportJob], ExportArtifact]:
    """Time an export and size its files (model plus a ``.bin`` weights file if any); log both."""

    @functools.wraps(fn)
    def wrapper(job: ExportJob) -> ExportArtifact:
        t0 = time.perf_counter()
        art = fn(job)
        art.seconds = time.perf_counter() - t0
        model_path = job.out_dir / art.model_file
        weights = model_path.with_suffix(".bin")  # OpenVINO keeps the weights beside the graph
        art.size_bytes = model_path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0)
        log.info("%s: exported in %.1f s, %.2f MB", job.out_dir.name, art.seconds, art.size_bytes / 1e6)
        return art

    return wrapper
