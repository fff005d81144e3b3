"""The full model: MobileNetV2 encoder -> neck (deeplab | fpn) -> semantic, center, offset heads."""

from __future__ import annotations

import logging

import torch
from torch import nn

from edgeps.model import pretrained as _pretrained
from edgeps.model.config import ModelConfig
from edgeps.model.heads import center_head, offset_head, semantic_head
from edgeps.model.mobilenetv2 import MobileNetV2Encoder, init_weights
from edgeps.model.necks import build_neck, resize_to

log = logging.getLogger(__name__)


class PanopticModel(nn.Module):
    """Panoptic-DeepLab-lite (or EfficientPS-lite with ``neck="fpn"``) for one ModelConfig.

    ``forward(x)`` takes (N, 3, H, W) float32 normalized images and returns a dict:
    ``semantic`` (N, C, H, W) logits, ``center`` (N, 1, H, W) raw heatmap (no sigmoid; trained
    with MSE), ``offset`` (N, 2, H, W) as (dy, dx) in pixels of the input. The heads predict at
    stride 4 (ceil(H / 4)), the center and offset heads at stride 2 with ``instance_stride: 2``;
    with ``upsample_to_input`` a bilinear resize brings them to (H, W).
    Offsets are predicted in input pixels directly, so resizing needs no rescaling, and with
    ``upsample_to_input=False`` they are still in input pixels. Any H, W works (odd sizes too).

    The constructor never loads weights: use ``build_model`` for the ImageNet encoder.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = MobileNetV2Encoder(cfg.width_mult, stride2_tap=cfg.instance_stride == 2)
        self.neck = build_neck(cfg, self.encoder.out_channels)
        sem_ch, ins_ch = self.neck.semantic_channels, self.neck.instance_channels
        self.semantic_head = semantic_head(sem_ch, cfg.semantic_channels, cfg.num_classes, cfg.activation)
        self.center_head = center_head(ins_ch, cfg.head_channels, cfg.activation)
        self.offset_head = offset_head(ins_ch, cfg.head_channels, cfg.activation)
        init_weights(self.neck)
        for head in (self.semantic_head, self.center_head, self.offset_head):
            init_weights(head.tower)  # predictors keep their small-std init
        self.pretrained_status = "random: not loaded (PanopticModel alone never loads weights)"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps = self.encoder(x)
        sem, ins = self.neck(taps)
        out = {
            "semantic": self.semantic_head(sem),
            "center": self.center_head(ins),
            "offset": self.offset_head(ins),
        }
        if self.cfg.upsample_to_input:
            out = {k: resize_to(v, x) for k, v in out.items()}
        return out


def build_model(cfg: ModelConfig) -> PanopticModel:
    """A PanopticModel with ImageNet encoder weights when ``cfg.pretrained`` (random init, with
    one warning, when they cannot be used); ``model.pretrained_status`` says which."""
    model = PanopticModel(cfg)
    if cfg.pretrained:
        model.pretrained_status = _pretrained.load_imagenet_weights(model.encoder)
    else:
        model.pretrained_status = "random: pretrained=false"
    log.info("encoder weights: %s", model.pretrained_status)
    if cfg.freeze_at and model.pretrained_status == "imagenet":
        model.encoder.freeze(cfg.freeze_at)
        log.info("encoder features.0-%d frozen (model.freeze_at %d)", cfg.freeze_at - 1, cfg.freeze_at)
    return model


__all__ = ["PanopticModel", "build_model"]
