"""Necks: encoder taps (strides 4, 8, 16, 32) -> one semantic and one instance map at stride 4.

Two designs behind one interface (``forward(taps) -> (semantic_map, instance_map)``):

* ``DeepLabNeck``: Panoptic-DeepLab-lite. Per task a light ASPP on the stride-32 tap and a
  decoder that fuses the stride-8 and stride-4 taps (1x1 projections, bilinear upsampling,
  concat, depthwise-separable 3x3 conv). ``shared=True`` builds one branch for both tasks.
* ``FPNNeck``: EfficientPS-lite. A 2-way FPN (top-down and bottom-up paths in parallel,
  summed per level) whose four levels are merged at stride 4 by a small per-task fusion.

Only export-friendly ops: conv, depthwise conv, BN, ReLU/ReLU6/Hardswish, global average
pooling, bilinear resize (align_corners=False) to the exact size of a reference tensor,
concat and add. Resizing to the reference's size (not by a factor) makes odd input sizes work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgeps.model.config import ModelConfig
from edgeps.model.mobilenetv2 import ConvBNAct

ASPP_DILATIONS = (3, 6, 9)  # at stride 32 (Panoptic-DeepLab's output-stride-32 rates)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for a ModelConfig ``activation`` name."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "hardswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of ``x`` to the spatial size of ``ref``."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class DSConv(nn.Sequential):
    """Depthwise-separable conv: depthwise kxk (+BN+act) then pointwise 1x1 (+BN+act)."""

    def __init__(
        self, in_channels: int, out_channels: int, act: str, kernel_size: int = 3, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__(
            ConvBNAct(
                in_channels,
                in_channels,
                kernel_size,
                stride,
                groups=in_channels,
                dilation=dilation,
                activation=make_activation(act),
            ),
            ConvBNAct(in_channels, out_channels, 1, activation=make_activation(act)),
        )


class ImagePooling(nn.Module):
    """ASPP image-level branch: global average pool, 1x1 conv, broadcast back by resizing.

    The 1x1 conv has a bias and no BatchNorm: BN over a 1x1 map fails in training with a
    batch of one (one value per channel)."""

    def __init__(self, in_channels: int, out_channels: int, act: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(self.act(self.conv(self.pool(x))), x)


class ASPP(nn.Module):
    """Light ASPP: 1x1 branch, one dilated depthwise-separable 3x3 branch per dilation, image
    pooling; concatenated and projected by a 1x1 conv."""

    def __init__(self, in_channels: int, channels: int, act: str, dilations: Sequence[int] = ASPP_DILATIONS) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvBNAct(in_channels, channels, 1, activation=make_activation(act))]
        branches += [DSConv(in_channels, channels, act, dilation=d) for d in dilations]
        branches.append(ImagePooling(in_channels, channels, act))
        self.branches = nn.ModuleList(branches)
        self.project = ConvBNAct(channels * len(branches), channels, 1, activation=make_activation(act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class DeepLabDecoder(nn.Module):
    """ASPP on the stride-32 tap, then fuse stride 8 and stride 4 (Panoptic-DeepLab decoder:
    skip projections to channels/2 and channels/4).

    ``stride2_channels`` > 0 adds one more stage: the stride-4 map is upsampled and fused with
    the stride-2 tap (``taps[4]``, projected to channels/4) into ``stride2_channels`` channels
    at stride 2, so the output is at stride 2 instead of 4."""

    def __init__(
        self, tap_channels: Sequence[int], aspp_channels: int, channels: int, act: str, stride2_channels: int = 0
    ) -> None:
        super().__init__()
        p8, p4 = max(1, channels // 2), max(1, channels // 4)
        self.aspp = ASPP(tap_channels[3], aspp_channels, act)
        self.project8 = ConvBNAct(tap_channels[1], p8, 1, activation=make_activation(act))
        self.fuse8 = DSConv(aspp_channels + p8, channels, act)
        self.project4 = ConvBNAct(tap_channels[0], p4, 1, activation=make_activation(act))
        self.fuse4 = DSConv(channels + p4, channels, act)
        self.project2: nn.Module | None = None
        self.fuse2: nn.Module | None = None
        if stride2_channels:
            if len(tap_channels) < 5:
                raise ValueError("a stride-2 decoder stage needs the encoder's stride-2 tap (taps[4])")
            self.project2 = ConvBNAct(tap_channels[4], p4, 1, activation=make_activation(act))
            self.fuse2 = DSConv(channels + p4, stride2_channels, act)
        self.out_channels = stride2_channels or channels

    def forward(self, taps: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.aspp(taps[3])
        skip = self.project8(taps[1])
        x = self.fuse8(torch.cat([resize_to(x, skip), skip], dim=1))
        skip = self.project4(taps[0])
        x = self.fuse4(torch.cat([resize_to(x, skip), skip], dim=1))
        if self.project2 is None or self.fuse2 is None:
            return x
        skip = self.project2(taps[4])
        return self.fuse2(torch.cat([resize_to(x, skip), skip], dim=1))


class DeepLabNeck(nn.Module):
    """Separate semantic and instance DeepLab decoders (dual ASPP), or one shared. With
    ``instance_stride: 2`` the instance decoder ends at stride 2 with instance_channels / 2
    channels (the semantic map stays at stride 4)."""

    def __init__(self, cfg: ModelConfig, tap_channels: Sequence[int]) -> None:
        super().__init__()
        act = cfg.activation
        self.semantic = DeepLabDecoder(tap_channels, cfg.aspp_channels, cfg.semantic_channels, act)
        self.instance = (
            None
            if cfg.shared_decoder
            else DeepLabDecoder(
                tap_channels,
                cfg.aspp_channels,
                cfg.instance_channels,
                act,
                stride2_channels=instance_stride2_channels(cfg),
            )
        )
        self.semantic_channels = cfg.semantic_channels
        self.instance_channels = self.semantic.out_channels if self.instance is None else self.instance.out_channels

    def forward(self, taps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        sem = self.semantic(taps)
        return sem, (sem if self.instance is None else self.instance(taps))


class TwoWayFPN(nn.Module):
    """EfficientPS 2-way FPN: a top-down path (upsample + add) and a bottom-up path (stride-2
    depthwise-separable conv + add) run in parallel from their own 1x1 laterals; each level's
    two results are summed and refined by a depthwise-separable 3x3 conv."""

    def __init__(self, tap_channels: Sequence[int], channels: int, act: str) -> None:
        super().__init__()
        self.lateral_td = nn.ModuleList(
            ConvBNAct(c, channels, 1, activation=make_activation(act)) for c in tap_channels
        )
        self.lateral_bu = nn.ModuleList(
            ConvBNAct(c, channels, 1, activation=make_activation(act)) for c in tap_channels
        )
        self.down = nn.ModuleList(DSConv(channels, channels, act, stride=2) for _ in tap_channels[1:])
        self.out = nn.ModuleList(DSConv(channels, channels, act) for _ in tap_channels)

    def forward(self, taps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        n = len(taps)
        td = [lat(t) for lat, t in zip(self.lateral_td, taps)]
        for i in range(n - 2, -1, -1):
            td[i] = td[i] + resize_to(td[i + 1], td[i])
        bu = [self.lateral_bu[0](taps[0])]
        for i in range(1, n):
            # A k3 s2 p1 conv maps n to ceil(n / 2), like the encoder: sizes match exactly.
            bu.append(self.lateral_bu[i](taps[i]) + self.down[i - 1](bu[i - 1]))
        return [conv(a + b) for conv, a, b in zip(self.out, td, bu)]


class FPNFusion(nn.Module):
    """One task's view of the FPN: 1x1 per level (at the level's resolution, cheap), resize to
    stride 4, sum, depthwise-separable 3x3 conv."""

    def __init__(self, fpn_channels: int, channels: int, levels: int, act: str) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(
            ConvBNAct(fpn_channels, channels, 1, activation=make_activation(act)) for _ in range(levels)
        )
        self.fuse = DSConv(channels, channels, act)
        self.out_channels = channels

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        y = self.lateral[0](levels[0])
        for lat, level in zip(self.lateral[1:], levels[1:]):
            y = y + resize_to(lat(level), y)
        return self.fuse(y)


class FPNNeck(nn.Module):
    """2-way FPN (width ``aspp_channels``) + a semantic and an instance fusion (or one shared)."""

    def __init__(self, cfg: ModelConfig, tap_channels: Sequence[int]) -> None:
        super().__init__()
        act = cfg.activation
        self.fpn = TwoWayFPN(tap_channels, cfg.aspp_channels, act)
        n = len(tap_channels)
        self.semantic = FPNFusion(cfg.aspp_channels, cfg.semantic_channels, n, act)
        self.instance = None if cfg.shared_decoder else FPNFusion(cfg.aspp_channels, cfg.instance_channels, n, act)
        self.semantic_channels = cfg.semantic_channels
        self.instance_channels = cfg.semantic_channels if cfg.shared_decoder else cfg.instance_channels

    def forward(self, taps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        levels = self.fpn(taps)
        sem = self.semantic(levels)
        return sem, (sem if self.instance is None else self.instance(levels))


def instance_stride2_channels(cfg: ModelConfig) -> int:
    """Channels of the instance decoder's stride-2 stage (0: it ends at stride 4)."""
    return max(1, cfg.instance_channels // 2) if cfg.instance_stride == 2 else 0


def build_neck(cfg: ModelConfig, tap_channels: Sequence[int]) -> DeepLabNeck | FPNNeck:
    """The neck ``cfg.neck`` names, sized for the encoder's tap channels."""
    if cfg.neck == "deeplab":
        return DeepLabNeck(cfg, tap_channels)
    return FPNNeck(cfg, tap_channels)


__all__ = [
    "ASPP",
    "ASPP_DILATIONS",
    "DSConv",
    "DeepLabDecoder",
    "DeepLabNeck",
    "FPNFusion",
    "FPNNeck",
    "ImagePooling",
    "TwoWayFPN",
    "build_neck",
    "instance_stride2_channels",
    "make_activation",
    "resize_to",
]
