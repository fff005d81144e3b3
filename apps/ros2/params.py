"""Parameters of the ROS 2 node: defaults, validation, the params-file reader (no rclpy here).

Kept apart from the node so ``edgeps ros2 --params`` can reject a bad file before ROS starts,
and so the rules are the same whichever way the values arrive (params file, ``-p name:=value``,
or a launch file): every value goes through :func:`params_from_dict`, which raises
:class:`~edgeps.errors.ConfigError` naming the parameter.

ROS parameters have one type each, so "use the bundle's value" is a sentinel: ``threshold``
< 0, ``nms_kernel`` 0, ``top_k`` -1 (0 means no limit), ``stuff_area`` -1, ``threads`` 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeps.errors import ConfigError
from edgeps.io.yaml_file import read_yaml
from edgeps.postprocess import PostprocessSettings
from edgeps.validate import check_choice, check_value

NODE_NAME = "edgeps_panoptic"
QOS_CHOICES = ("reliable", "sensor_data")
SEMANTIC_ENCODINGS = ("auto", "mono8", "mono16")
# Parameters rclpy declares on every node by itself; not ours to validate.
ROS_BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


@dataclass(frozen=True)
class NodeParams:
    """The node's validated parameters (see ``configs/ros2_params.yaml`` for what each does)."""

    bundle: str
    backend: str = ""
    device: str = "cpu"
    threads: int = 0
    image_topic: str = "/camera/image_raw"
    qos: str = "reliable"
    publish_overlay: bool = True
    overlay_legend: bool = False
    semantic_encoding: str = "auto"
    track: bool = True
    threshold: float = -1.0
    nms_kernel: int = 0
    top_k: int = -1
    stuff_area: int = -1

    def postprocess_overrides(self) -> dict[str, Any]:
        """The post-processing settings these parameters override (sentinels left out)."""
        out: dict[str, Any] = {}
        if self.threshold >= 0:
            out["threshold"] = float(self.threshold)
        if self.nms_kernel != 0:
            out["nms_kernel"] = self.nms_kernel
        if self.top_k != -1:
            out["top_k"] = None if self.top_k == 0 else self.top_k
        if self.stuff_area != -1:
            out["stuff_area"] = self.stuff_area
        return out


# name -> default, in declaration order; ``bundle`` has no usable default.
DEFAULTS: dict[str, Any] = {f.name: ("" if f.name == "bundle" else f.default) for f in dataclasses.fields(NodeParams)}


def params_from_dict(raw: dict[str, Any]) -> NodeParams:
    """Validate parameter values (missing ones take their defaults); raises ConfigError naming
    the first bad parameter. Checks the bundle folder exists, not that it loads."""
    unknown = sorted(set(raw) - set(DEFAULTS) - ROS_BUILTIN_PARAMETERS)
    if unknown:
        raise ConfigError(f"parameter '{unknown[0]}': unknown (known: {', '.join(DEFAULTS)})")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(NodeParams):
        value = raw.get(f.name, DEFAULTS[f.name])
        kind = {"str": str, "int": int, "float": float, "bool": bool}[
            f.type if isinstance(f.type, str) else f.type.__name__
        ]
        values[f.name] = check_value(value, kind, f"parameter '{f.name}'")
    p = NodeParams(**values)
    if not p.bundle:
        raise ConfigError("parameter 'bundle': required (a bundle folder with edgeps.yaml, from `edgeps export`)")
    if not Path(p.bundle).is_dir():
        raise ConfigError(f"parameter 'bundle': folder not found: {p.bundle}")
    if p.threads < 0:
        raise ConfigError(f"parameter 'threads': expected >= 0 (0: the backend's default), got {p.threads}")
    check_choice(p.qos, QOS_CHOICES, "parameter 'qos'")
    check_choice(p.semantic_encoding, SEMANTIC_ENCODINGS, "parameter 'semantic_encoding'")
    if not p.image_topic or any(c.isspace() for c in p.image_topic):
        raise ConfigError(f"parameter 'image_topic': expected a topic name, got {p.image_topic!r}")
    if not p.device:
        raise ConfigError("parameter 'device': empty (e.g. cpu, cuda, tensorrt, CPU, GPU)")
    if p.threshold > 1.0:
        raise ConfigError(
            f"parameter 'threshold': a center-heatmap threshold in [0, 1] (or < 0 for the bundle's), got {p.threshold}"
        )
    if p.nms_kernel < 0 or (p.nms_kernel and p.nms_kernel % 2 == 0):
        raise ConfigError(f"parameter 'nms_kernel': a positive odd integer (or 0 for the bundle's), got {p.nms_kernel}")
    if p.top_k < -1:
        raise ConfigError(f"parameter 'top_k': >= 1, 0 for no limit, or -1 for the bundle's, got {p.top_k}")
    if p.stuff_area < -1:
        raise ConfigError(f"parameter 'stuff_area': >= 0 (model pixels) or -1 for the bundle's, got {p.stuff_area}")
    return p


def apply_postprocess(settings: PostprocessSettings, params: NodeParams) -> PostprocessSettings:
    """The bundle's post-processing settings with the node's overrides (a new object; the
    runtime has no override hook, so the node swaps ``rt.manifest`` for a copy holding it)."""
    overrides = params.postprocess_overrides()
    if not overrides:
        return settings
    return dataclasses.replace(settings, **overrides)


def read_params_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` in a ROS 2 params file (``yaml.safe_load``);
    ``/**`` (every node) entries apply first, the node's own override them."""
    path = Path(path)
    raw = read_yaml(path, kind="params file", error=ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected '{node_name}: {{ros__parameters: {{...}}}}' at the top level")
    out: dict[str, Any] = {}
    found = False
    for key in ("/**", node_name, f"/{node_name}"):
        entry = raw.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("ros__parameters"), dict):
            raise ConfigError(f"{path}: '{key}' needs a 'ros__parameters' mapping")
        out.update(entry["ros__parameters"])
        found = True
    if not found:
        raise ConfigError(
            f"{path}: no '{node_name}' (or '/**') entry with ros__parameters (found: "
            f"{', '.join(map(str, raw)) or 'nothing'})"
        )
    return out
