"""Prediction heads: a depthwise-separable 3x3 tower, then a 1x1 predictor conv with bias.

The predictors start small (normal init with a small std, zero bias) so the first steps are
stable: logits start near uniform, the center heatmap near 0 (its MSE target is mostly 0) and
the offsets near 0. The center head has no activation: the heatmap is trained with MSE on the
raw output, and post-processing thresholds that raw value (no sigmoid anywhere).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeps.model.necks import DSConv

SEMANTIC_INIT_STD = 0.01
INSTANCE_INIT_STD = 0.001


class Head(nn.Module):
    """``tower`` (DSConv in -> hidden) then ``predictor`` (1x1 conv hidden -> out, with bias)."""

    def __init__(
        self, in_channels: int, hidden: int, out_channels: int, act: str, init_std: float, init_bias: float = 0.0
    ) -> None:
        super().__init__()
        self.tower = DSConv(in_channels, hidden, act)
        self.predictor = nn.Conv2d(hidden, out_channels, 1, bias=True)
        nn.init.normal_(self.predictor.weight, std=init_std)
        nn.init.constant_(self.predictor.bias, init_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.tower(x))


def semantic_head(in_channels: int, hidden: int, num_classes: int, act: str) -> Head:
    """Per-class logits (no softmax)."""
    return Head(in_channels, hidden, num_classes, act, SEMANTIC_INIT_STD)


def center_head(in_channels: int, hidden: int, act: str) -> Head:
    """Instance-center heatmap, 1 channel, raw (no sigmoid); bias 0 so it starts near 0."""
    return Head(in_channels, hidden, 1, act, INSTANCE_INIT_STD, init_bias=0.0)


def offset_head(in_channels: int, hidden: int, act: str) -> Head:
    """Offsets (dy, dx) to the instance center, in pixels of the model input."""
    return Head(in_channels, hidden, 2, act, INSTANCE_INIT_STD)


__all__ = ["INSTANCE_INIT_STD", "SEMANTIC_INIT_STD", "Head", "center_head", "offset_head", "semantic_head"]
