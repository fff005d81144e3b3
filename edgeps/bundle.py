"""The bundle manifest ``edgeps.yaml``: everything a runtime needs besides the model file.

One reader (:func:`read_manifest`) validates the schema and version and names the field at
fault; one writer (:func:`write_manifest`) writes atomically. The core owns this module so a
runtime-only install (no torch, no export tools) can load bundles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeps import __version__
from edgeps.atomic import atomic_write_text
from edgeps.categories import Categories
from edgeps.errors import DataNotFoundError, FormatError
from edgeps.formats import FORMATS, PRECISIONS
from edgeps.io.yaml_file import read_yaml
from edgeps.postprocess import PostprocessSettings
from edgeps.preprocess import InputSpec
from edgeps.validate import check_batch_value, check_choice, check_mapping

MANIFEST_NAME = "edgeps.yaml"
FORMAT_VERSION = 2  # 2: the optional grouping output (``instance``); version-1 bundles still load
READABLE_FORMAT_VERSIONS = (1, 2)
# The heads of every exported graph, in output order (manifests index outputs by position), and
# their layouts: semantic is the class map (argmax in the graph), the others are float maps.
HEADS = ("semantic", "semantic_prob", "center", "offset")
# With the center extraction in the graph (``graph_centers`` in the manifest), two more outputs
# after those: the top-K candidates of the peak map (see edgeps.model.deploy.center_candidates).
CENTER_HEADS = ("center_index", "center_score")
# With the grouping in the graph too (``graph_centers.grouping``), one more output after those:
# each thing pixel's center, 1 + its position among the candidates, 0 elsewhere
# (see edgeps.model.deploy.group_candidates).
GROUPING_HEADS = ("instance",)
HEAD_LAYOUTS = {
    "semantic": "NHW",
    "semantic_prob": "NHW",
    "center": "NCHW",
    "offset": "NCHW",
    "center_index": "NK",
    "center_score": "NK",
    "instance": "NHW",
}
FLOAT_HEADS = HEADS[1:]
# Where post-processing runs (export --postprocess): all on the host, the center extraction in the
# graph, or the center extraction and the pixel grouping in the graph.
POSTPROCESS_PLACES = ("host", "graph", "grouping")


@dataclass
class Manifest:
    """A validated ``edgeps.yaml``."""

    model_name: str
    format: str
    precision: str
    model_file: str
    categories: Categories
    input: InputSpec
    outputs: dict[str, dict[str, Any]]  # head -> {"name": str, "index": int, "layout": str}
    postprocess: PostprocessSettings
    label_divisor: int = 1000
    channel_order: str = "RGB"
    model_config: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    source_checkpoint_sha256: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    # threshold / nms_kernel / top_k the graph extracts centers with; None: the host does
    graph_centers: dict[str, Any] | None = None
    # frames per model call: 1, a fixed N (the runtime pads a short batch), or "dynamic" (any)
    batch: int | str = 1
    edgeps_version: str = __version__
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "edgeps_version": self.edgeps_version,
            "model_name": self.model_name,
            "format": self.format,
            "precision": self.precision,
            "model_file": self.model_file,
            "categories": self.categories.to_list(),
            "label_divisor": self.label_divisor,
            "input": {
                "size": list(self.input.size),
                "resize": self.input.resize,
                "channel_order": self.channel_order,
                "layout": self.input.layout,
                "mean": list(self.input.mean),
                "std": list(self.input.std),
                **({"batch": self.batch} if self.batch != 1 else {}),
            },
            "outputs": self.outputs,
            "postprocess": self.postprocess.to_dict(),
            "model_config": self.model_config,
            "calibration": self.calibration,
            "parity": self.parity,
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "target": self.target,
            **({"graph_centers": self.graph_centers} if self.graph_centers is not None else {}),
        }


_TOP_KEYS = {
    "format_version": int,
    "edgeps_version": str,
    "model_name": str,
    "format": str,
    "precision": str,
    "model_file": str,
    "categories": list,
    "label_divisor": int,
    "input": dict,
    "outputs": dict,
    "postprocess": dict,
    "model_config": dict,
    "calibration": (dict, type(None)),
    "parity": (dict, type(None)),
    "source_checkpoint_sha256": (str, type(None)),
    "target": dict,
    "graph_centers": (dict, type(None)),
}
_REQUIRED = (
    "format_version",
    "model_name",
    "format",
    "precision",
    "model_file",
    "categories",
    "input",
    "outputs",
    "postprocess",
)
_INPUT_KEYS = {
    "size": list,
    "resize": str,
    "channel_order": str,
    "layout": str,
    "mean": list,
    "std": list,
    "batch": (int, str),
}


def manifest_from_dict(raw: Any, where: str = MANIFEST_NAME) -> Manifest:
    if not isinstance(raw, dict):
        raise FormatError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    check_mapping(raw, _TOP_KEYS, where, required=_REQUIRED, error=FormatError)
    if raw["format_version"] not in READABLE_FORMAT_VERSIONS:
        raise FormatError(
            f"{where}.format_version: this edgeps reads versions "
            f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}, the bundle has "
            f"{raw['format_version']}"
        )
    check_choice(raw["format"], FORMATS, f"{where}.format", error=FormatError)
    check_choice(raw["precision"], PRECISIONS, f"{where}.precision", error=FormatError)
    if raw["precision"] not in FORMATS[raw["format"]].precisions:
        offered = ", ".join(FORMATS[raw["format"]].precisions)
        raise FormatError(f"{where}.precision: a {raw['format']} bundle is {offered}, got {raw['precision']!r}")
    try:
        categories = Categories.from_list(raw["categories"], where=f"{where}.categories")
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    inp = check_mapping(
        raw["input"], _INPUT_KEYS, f"{where}.input", required=("size", "mean", "std"), error=FormatError
    )
    size = inp["size"]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise FormatError(f"{where}.input.size: expected [H, W] positive integers, got {size!r}")
    for key in ("mean", "std"):
        vals = inp[key]
        if len(vals) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            raise FormatError(f"{where}.input.{key}: expected three numbers, got {vals!r}")
    check_choice(inp.get("channel_order", "RGB"), ("RGB", "BGR"), f"{where}.input.channel_order", error=FormatError)
    batch = check_batch_value(inp.get("batch", 1), f"{where}.input.batch", error=FormatError)
    try:
        spec = InputSpec(
            size=(size[0], size[1]),
            mean=tuple(float(v) for v in inp["mean"]),
            std=tuple(float(v) for v in inp["std"]),
            layout=inp.get("layout", "NCHW"),
            resize=inp.get("resize", "letterbox"),
        )
    except ValueError as exc:
        raise FormatError(f"{where}.input: {exc}") from None
    outputs = raw["outputs"]
    for head in ("semantic", "center", "offset"):
        if head not in outputs:
            raise FormatError(f"{where}.outputs: missing head '{head}'")
    graph_centers = raw.get("graph_centers")
    known = HEADS
    if isinstance(graph_centers, dict):
        known = HEADS + CENTER_HEADS + (GROUPING_HEADS if graph_centers.get("grouping") else ())
    for head, desc in outputs.items():
        if head not in known:
            raise FormatError(f"{where}.outputs: unknown head '{head}' (known: {', '.join(known)})")
        index = desc.get("index") if isinstance(desc, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise FormatError(
                f"{where}.outputs.{head}: expected a mapping with an integer 'index' >= 0 (and 'name', 'layout'), "
                f"got {desc!r}"[:300]
            )
    indices = [desc["index"] for desc in outputs.values()]
    if len(set(indices)) != len(indices):
        raise FormatError(f"{where}.outputs: two heads share one output index ({indices})")
    try:
        post = PostprocessSettings.from_dict(raw["postprocess"], where=f"{where}.postprocess")
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    if graph_centers is not None:
        _check_graph_centers(graph_centers, outputs, f"{where}.graph_centers")
    if raw.get("label_divisor", 1000) != post.label_divisor:
        raise FormatError(
            f"{where}.label_divisor: {raw['label_divisor']} differs from postprocess.label_divisor {post.label_divisor}"
        )
    return Manifest(
        model_name=raw["model_name"],
        format=raw["format"],
        precision=raw["precision"],
        model_file=raw["model_file"],
        categories=categories,
        input=spec,
        outputs=outputs,
        postprocess=post,
        label_divisor=raw.get("label_divisor", 1000),
        channel_order=inp.get("channel_order", "RGB"),
        model_config=raw.get("model_config") or {},
        calibration=raw.get("calibration"),
        parity=raw.get("parity"),
        source_checkpoint_sha256=raw.get("source_checkpoint_sha256"),
        target=raw.get("target") or {},
        graph_centers=graph_centers,
        batch=batch,
        edgeps_version=raw.get("edgeps_version", "unknown"),
        format_version=raw["format_version"],
    )


def _check_graph_centers(raw: Any, outputs: dict, where: str) -> None:
    """``graph_centers``: the settings the graph extracts centers with, and its two outputs."""
    check_mapping(
        raw,
        {"threshold": (int, float), "nms_kernel": int, "top_k": int, "grouping": bool, "thing_ids": list},
        where,
        required=("threshold", "nms_kernel", "top_k"),
        error=FormatError,
    )
    missing = [h for h in CENTER_HEADS if h not in outputs]
    if missing:
        raise FormatError(f"{where}: the graph extracts centers, but outputs lack {', '.join(missing)}")
    if raw.get("grouping"):
        if "instance" not in outputs:
            raise FormatError(f"{where}.grouping: the graph groups the pixels, but outputs lack instance")
        ids = raw.get("thing_ids")
        if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
            raise FormatError(f"{where}.thing_ids: expected the list of thing class ids the graph groups, got {ids!r}")


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``bundle_dir/edgeps.yaml``; check that the model file exists."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise DataNotFoundError(f"bundle folder not found: {bundle_dir}")
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise DataNotFoundError(f"{bundle_dir}: no {MANIFEST_NAME} manifest (is this an edgeps bundle?)")
    manifest = manifest_from_dict(read_yaml(path), where=str(path))
    if not (bundle_dir / manifest.model_file).is_file():
        raise DataNotFoundError(f"{path}: model_file '{manifest.model_file}' is missing from {bundle_dir}")
    return manifest


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(bundle_dir / MANIFEST_NAME, yaml.safe_dump(manifest.to_dict(), sort_keys=False))
