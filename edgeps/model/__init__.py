"""The trainable network: MobileNetV2 encoder, Panoptic-DeepLab-lite or EfficientPS-lite neck,
semantic / center / offset heads.

``ModelConfig`` needs no torch; the torch parts are imported on first use, so a config can be
validated on a runtime-only install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeps.model.config import ModelConfig

if TYPE_CHECKING:
    from edgeps.model.complexity import count_flops, count_parameters
    from edgeps.model.mobilenetv2 import MobileNetV2Encoder
    from edgeps.model.panoptic import PanopticModel, build_model
    from edgeps.model.pretrained import load_imagenet_weights

_LAZY = {
    "PanopticModel": "panoptic",
    "build_model": "panoptic",
    "MobileNetV2Encoder": "mobilenetv2",
    "load_imagenet_weights": "pretrained",
    "count_flops": "complexity",
    "count_parameters": "complexity",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"edgeps.model.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgeps.model' has no attribute {name!r}")


__all__ = [
    "MobileNetV2Encoder",
    "ModelConfig",
    "PanopticModel",
    "build_model",
    "count_flops",
    "count_parameters",
    "load_imagenet_weights",
]
