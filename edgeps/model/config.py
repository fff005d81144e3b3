"""The model section of a config: which encoder width, neck and head sizes to build.

Kept free of torch so a config can be validated on a runtime-only install. Every field is
checked with its type; an error names the field (``model.neck``) so a typo never silently
falls back to a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from edgeps.errors import ConfigError
from edgeps.validate import check_mapping

NECKS = ("deeplab", "fpn")
INSTANCE_STRIDES = (4, 2)
ACTIVATIONS = ("relu", "relu6", "hardswish")
ENCODER_BLOCKS = 18  # MobileNetV2's features.0 .. features.17
_CHANNEL_FIELDS = ("semantic_channels", "instance_channels", "aspp_channels", "head_channels")
_BOOL_FIELDS = ("shared_decoder", "upsample_to_input", "pretrained")


@dataclass(frozen=True)
class ModelConfig:
    """Panoptic-DeepLab-lite / EfficientPS-lite model settings.

    ``neck``: "deeplab" (ASPP + decoder per task) or "fpn" (EfficientPS-style 2-way FPN).
    ``aspp_channels`` is the ASPP width (deeplab) or the FPN level width (fpn).
    ``activation`` applies to the neck and heads; the encoder keeps ReLU6, which its
    ImageNet weights were trained with. ``freeze_at``: the first N encoder blocks
    (``features.0`` .. ``features.N-1``) keep their ImageNet weights and BatchNorm statistics
    during training (detectron2's ``FREEZE_AT``): low-level filters need no retraining, and the
    backward pass through the high-resolution blocks is the costliest part of a CPU step (4 =
    the stem and every stride-4 block: a step of batch 8 at 256x256, 0.76-0.92 -> 0.71-0.76 s
    on 2 cores; the demo's 10 minutes did not get more steps, so the default stays 0). Applies
    only when the ImageNet weights loaded; a random encoder trains whole.
    ``instance_stride``: 4, or 2 for a DeepLab instance decoder with one more stage fed by the
    encoder's stride-2 tap (center and offset heads at stride 2, on instance_channels / 2
    channels); needs ``neck: deeplab`` and separate decoders.
    """

    num_classes: int
    width_mult: float = 1.0
    neck: Literal["deeplab", "fpn"] = "deeplab"
    shared_decoder: bool = False
    semantic_channels: int = 128
    instance_channels: int = 64
    aspp_channels: int = 128
    head_channels: int = 32
    upsample_to_input: bool = True
    pretrained: bool = True
    activation: Literal["relu", "relu6", "hardswish"] = "relu"
    freeze_at: int = 0
    instance_stride: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _check(f.name, getattr(self, f.name), "model")
            object.__setattr__(self, f.name, value)
        _check_combination(self.to_dict(), "model")

    @classmethod
    def from_dict(cls, d: Any, where: str = "model") -> ModelConfig:
        """Build from a YAML mapping; unknown keys and wrong types raise ConfigError."""
        check_mapping(d, {f.name: object for f in fields(cls)}, where)  # a mapping of known keys
        if "num_classes" not in d:
            raise ConfigError(f"{where}.num_classes: required (number of semantic classes)")
        values = {key: _check(key, value, where) for key, value in d.items()}
        _check_combination(values, where)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that ``from_dict`` reads back (for checkpoints and YAML)."""
        return asdict(self)


def _check_combination(values: dict[str, Any], where: str) -> None:
    """Errors for fields that are valid alone but not together (absent fields: defaults)."""
    if values.get("instance_stride", 4) != 2:
        return
    neck = values.get("neck", "deeplab")
    if neck != "deeplab":
        raise ConfigError(f"{where}.instance_stride: 2 needs neck: deeplab, got neck: {neck}")
    if values.get("shared_decoder", False):
        raise ConfigError(f"{where}.instance_stride: 2 needs a separate instance decoder (shared_decoder: false)")


def _check(name: str, value: Any, where: str) -> Any:
    """The validated (and, for width_mult, float-coerced) value of one field."""
    field = f"{where}.{name}"
    if name == "num_classes" or name in _CHANNEL_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        if value < 1:
            raise ConfigError(f"{field}: expected >= 1, got {value}")
        return value
    if name == "width_mult":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        if not 0 < value <= 4:
            raise ConfigError(f"{field}: expected a number in (0, 4], got {value}")
        return float(value)
    if name == "freeze_at":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        if not 0 <= value <= ENCODER_BLOCKS:
            raise ConfigError(
                f"{field}: expected 0..{ENCODER_BLOCKS} (encoder blocks kept at their ImageNet weights), got {value}"
            )
        return value
    if name == "instance_stride":
        if isinstance(value, bool) or value not in INSTANCE_STRIDES:
            raise ConfigError(f"{field}: expected one of {', '.join(map(str, INSTANCE_STRIDES))}, got {value!r}")
        return value
    if name in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ConfigError(f"{field}: expected true/false, got {value!r}")
        return value
    choices = {"neck": NECKS, "activation": ACTIVATIONS}[name]
    if value not in choices:
        raise ConfigError(f"{field}: expected one of {', '.join(choices)}, got {value!r}")
    return value


__all__ = ["ACTIVATIONS", "INSTANCE_STRIDES", "NECKS", "ModelConfig"]
