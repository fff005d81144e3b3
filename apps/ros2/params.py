"""Parameters of the ROS 2 node: defaults, validation, the params-file reader (no rclpy here).

Kept apart from the node so ``edgeps ros2 --params`` can reject a bad file before ROS starts,
and so the rules are the same whichever way the values arrive (params file, ``-p name:=value``,
or a launch file): every value goes through :func:`params_from_dict`, which raises
:class:`~edgeps.errors.ConfigError` naming the parameter.

ROS parameters have one type each, so "use the bundle's value" is a sentinel: ``threshold``
< 0, ``nms_kernel`` 0, ``top_k`` -1 (0 means no limit), ``stuff_area`` -1, ``threads`` 0.

Cameras: ``image_topic`` (one camera, outputs at ``~/panoptic``, ...) or ``image_topics`` (one
or more, outputs at ``~/<camera>/panoptic``, ...), never both. :func:`camera_specs` turns the
parameters into one :class:`CameraSpec` per camera (name, topic, transport, output namespace).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeps.errors import ConfigError
from edgeps.io.yaml_file import read_yaml
from edgeps.postprocess import PostprocessSettings
from edgeps.validate import check_choice, check_value

NODE_NAME = "edgeps_panoptic"
QOS_CHOICES = ("reliable", "sensor_data")
TRANSPORT_CHOICES = ("auto", "raw", "compressed")
COMPRESSED_SUFFIX = "/compressed"
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
    max_batch: int = 0
    image_topic: str = "/camera/image_raw"
    image_topics: tuple[str, ...] = ()
    camera_names: tuple[str, ...] = ()
    input_transport: str = "auto"
    qos: str = "sensor_data"
    no_frame_error_s: float = 5.0
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


# name -> default, in declaration order; ``bundle`` has no usable default. List parameters
# default to () (the node declares them as string arrays).
DEFAULTS: dict[str, Any] = {f.name: ("" if f.name == "bundle" else f.default) for f in dataclasses.fields(NodeParams)}
_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "tuple[str, ...]": tuple}
# What a camera name may be: one token of a ROS name (it becomes ``~/<camera>/panoptic``).
_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_topic(topic: str, where: str) -> str:
    if not topic or any(c.isspace() for c in topic) or topic.endswith("/"):
        raise ConfigError(f"{where}: expected a topic name, got {topic!r}")
    return topic


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    """A list of strings (rclpy hands string arrays over as lists) -> a tuple."""
    items = check_value(value, (list, tuple), where)
    return tuple(check_value(v, str, f"{where}[{i}]") for i, v in enumerate(items))


def params_from_dict(raw: dict[str, Any]) -> NodeParams:
    """Validate parameter values (missing ones take their defaults); raises ConfigError naming
    the first bad parameter. Checks the bundle folder exists, not that it loads.

    ``raw`` holds only the parameters that were given: ``image_topic`` and ``image_topics``
    given together are refused (which one would win is not obvious from a launch file).
    """
    unknown = sorted(set(raw) - set(DEFAULTS) - ROS_BUILTIN_PARAMETERS)
    if unknown:
        raise ConfigError(f"parameter '{unknown[0]}': unknown (known: {', '.join(DEFAULTS)})")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(NodeParams):
        value = raw.get(f.name, DEFAULTS[f.name])
        kind = _KINDS[f.type if isinstance(f.type, str) else f.type.__name__]
        where = f"parameter '{f.name}'"
        values[f.name] = _string_list(value, where) if kind is tuple else check_value(value, kind, where)
    p = NodeParams(**values)
    if "image_topic" in raw and p.image_topics:
        raise ConfigError(
            "parameter 'image_topics': set either image_topic (one camera, outputs at ~/panoptic) or image_topics "
            "(outputs at ~/<camera>/panoptic), not both"
        )
    if not p.bundle:
        raise ConfigError("parameter 'bundle': required (a bundle folder with edgeps.yaml, from `edgeps export`)")
    if not Path(p.bundle).is_dir():
        raise ConfigError(f"parameter 'bundle': folder not found: {p.bundle}")
    if p.threads < 0:
        raise ConfigError(f"parameter 'threads': expected >= 0 (0: the backend's default), got {p.threads}")
    if p.max_batch < 0:
        raise ConfigError(
            f"parameter 'max_batch': expected >= 0 (0: as many frames per model call as the bundle takes, 1: no "
            f"batching), got {p.max_batch}"
        )
    check_choice(p.qos, QOS_CHOICES, "parameter 'qos'")
    check_choice(p.input_transport, TRANSPORT_CHOICES, "parameter 'input_transport'")
    check_choice(p.semantic_encoding, SEMANTIC_ENCODINGS, "parameter 'semantic_encoding'")
    if p.no_frame_error_s <= 0:
        raise ConfigError(
            f"parameter 'no_frame_error_s': seconds without a frame before /diagnostics says ERROR, > 0, got "
            f"{p.no_frame_error_s}"
        )
    camera_specs(p)  # topics, names and transports
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


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the node: ``name`` (in logs and /diagnostics), the input ``topic``, its
    ``transport`` (``raw``: sensor_msgs/Image, ``compressed``: sensor_msgs/CompressedImage) and
    the output ``namespace`` under the node (``""``: ``~/panoptic``; ``front``: ``~/front/panoptic``)."""

    name: str
    topic: str
    transport: str
    namespace: str

    def output(self, name: str) -> str:
        """The private topic name of output ``name`` for this camera (``~/front/panoptic``)."""
        return f"~/{self.namespace}/{name}" if self.namespace else f"~/{name}"


def camera_name(topic: str) -> str:
    """A camera name from its topic: the namespace holding the image topic, so
    ``/front/image_raw`` and ``/robot/front/image_raw/compressed`` are ``front`` (a one-level
    topic is its own name: ``/front_cam`` -> ``front_cam``); characters a ROS name cannot hold
    become ``_``."""
    parts = [x for x in topic.split("/") if x]
    if parts and parts[-1] == "compressed":
        parts.pop()
    if len(parts) > 1:
        parts.pop()
    name = re.sub(r"[^A-Za-z0-9_]", "_", parts[-1] if parts else "camera")
    return name if _NAME_TOKEN.fullmatch(name) else f"camera_{name}"


def transport_of(topic: str, setting: str) -> str:
    """``raw`` or ``compressed`` for ``topic`` under ``input_transport`` = ``setting`` (``auto``:
    compressed exactly when the topic ends in ``/compressed``, image_transport's convention)."""
    if setting == "auto":
        return "compressed" if topic.endswith(COMPRESSED_SUFFIX) else "raw"
    if setting == "raw" and topic.endswith(COMPRESSED_SUFFIX):
        raise ConfigError(
            f"parameter 'input_transport': raw (sensor_msgs/Image) but topic {topic} ends in /compressed "
            "(sensor_msgs/CompressedImage); use compressed or auto"
        )
    return setting


def camera_specs(p: NodeParams) -> list[CameraSpec]:
    """The node's cameras, in parameter order; raises ConfigError naming the parameter for a bad
    or repeated topic, a bad or repeated camera name, or ``camera_names`` of another length."""
    if not p.image_topics:
        if p.camera_names:
            raise ConfigError("parameter 'camera_names': only with image_topics (image_topic has one camera)")
        topic = _check_topic(p.image_topic, "parameter 'image_topic'")
        return [CameraSpec(camera_name(topic), topic, transport_of(topic, p.input_transport), "")]
    topics = [_check_topic(t, f"parameter 'image_topics'[{i}]") for i, t in enumerate(p.image_topics)]
    if len(set(topics)) != len(topics):
        dup = next(t for t in topics if topics.count(t) > 1)
        raise ConfigError(f"parameter 'image_topics': {dup} is listed twice")
    if p.camera_names:
        if len(p.camera_names) != len(topics):
            raise ConfigError(
                f"parameter 'camera_names': {len(p.camera_names)} names for {len(topics)} image_topics (one per topic)"
            )
        for i, n in enumerate(p.camera_names):
            if not _NAME_TOKEN.fullmatch(n):
                raise ConfigError(
                    f"parameter 'camera_names'[{i}]: {n!r} is not a ROS name token (letters, digits, _; not starting "
                    "with a digit)"
                )
        names = list(p.camera_names)
        where = "parameter 'camera_names'"
    else:
        names = [camera_name(t) for t in topics]
        where = "parameter 'image_topics'"
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(
            f"{where}: two cameras are named {dup!r}"
            + (" (names come from the topics' namespaces; set camera_names)" if not p.camera_names else "")
        )
    return [CameraSpec(n, t, transport_of(t, p.input_transport), n) for n, t in zip(names, topics)]


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
