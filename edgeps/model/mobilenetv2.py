"""MobileNetV2 encoder with torchvision's module names, so its ImageNet weights load strictly.

Layout of ``features`` (torchvision ``mobilenet_v2``, width 1.0): index 0 is the stem conv
(stride 2), 1-17 the inverted-residual blocks, 18 the 320->1280 1x1 conv of the classifier.
The encoder keeps ``features.0`` to ``features.17`` and drops ``features.18``: it only widens
the last map for the ImageNet classifier, and the ASPP/FPN work better and cheaper on the 320
channels of block 17. Taps: index 3 (stride 4, 24 ch), 6 (stride 8, 32 ch), 13 (stride 16,
96 ch), 17 (stride 32, 320 ch).
"""

from __future__ import annotations

import torch
from torch import nn

# (expand ratio t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
TAP_INDICES = (3, 6, 13, 17)  # last block of stride 4, 8, 16 and 32
STRIDE2_INDEX = 1  # last block of stride 2 (the optional fifth tap)
TAP_STRIDES = (4, 8, 16, 32)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (torchvision's ``_make_divisible``),
    never going more than 10% below the requested value."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> activation; children ``0``/``1``/``2`` like torchvision's
    ``Conv2dNormActivation``, so state-dict keys match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation)
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear); residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6(inplace=True)))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6(inplace=True)),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """``features.0`` .. ``features.17`` of torchvision's MobileNetV2 (same parameter names).

    ``forward`` returns the four taps at strides 4, 8, 16, 32; ``out_channels`` gives their
    channel counts (24, 32, 96, 320 at width 1.0). With ``stride2_tap`` a fifth tap follows
    them: the stride-2 output of ``features.1`` (16 channels at width 1.0), for a decoder that
    predicts at stride 2. Any input size works: a stride-2 conv maps a side of n pixels to
    ceil(n / 2).
    """

    def __init__(self, width_mult: float = 1.0, stride2_tap: bool = False) -> None:
        super().__init__()
        self.width_mult = float(width_mult)
        channels = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2, activation=nn.ReLU6(inplace=True))]
        out_channels: list[int] = [channels]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
                out_channels.append(out)
        self.features = nn.Sequential(*layers)
        self.tap_indices = TAP_INDICES + ((STRIDE2_INDEX,) if stride2_tap else ())
        self.out_channels: tuple[int, ...] = tuple(out_channels[i] for i in self.tap_indices)
        self.strides = TAP_STRIDES + ((2,) if stride2_tap else ())
        self.frozen = 0
        init_weights(self)

    def freeze(self, blocks: int) -> None:
        """Keep ``features[:blocks]`` as they are: no gradients, BatchNorm in eval mode (also
        after a later ``train()``, which the training loop calls after every evaluation)."""
        self.frozen = int(blocks)
        for layer in self.features[: self.frozen]:
            layer.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> MobileNetV2Encoder:
        super().train(mode)
        for layer in self.features[: getattr(self, "frozen", 0)]:
            layer.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        taps = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.tap_indices:
                taps[i] = x
        return tuple(taps[i] for i in self.tap_indices)


def init_weights(module: nn.Module) -> None:
    """torchvision's MobileNetV2 init: Kaiming (fan-out) convs, unit BN, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


__all__ = [
    "TAP_INDICES",
    "TAP_STRIDES",
    "ConvBNAct",
    "InvertedResidual",
    "MobileNetV2Encoder",
    "init_weights",
    "make_divisible",
]
