"""The deployment form of a model: BatchNorm folded into convolutions, ArgMax in the graph.

Every exported graph and the torch runtime use :class:`DeployModel`, so all backends return
the same heads: the class map (int32) and its max probability instead of the logits (an
argmax over logits in numpy costs more than the whole post-processing), the center heatmap
and the offsets.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgeps.bundle import HEAD_LAYOUTS, HEADS

OUTPUT_HEADS = HEADS  # the output order of every exported graph (defined once, in edgeps.bundle)
OUTPUT_LAYOUTS = HEAD_LAYOUTS


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy (eval mode) in which each Conv2d directly followed by a BatchNorm2d inside a
    Sequential absorbs it; the BatchNorm becomes an Identity. Outputs stay equal."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model


class DeployModel(nn.Module):
    """(N, 3, H, W) normalized input -> (semantic int32 (N, H, W), semantic_prob (N, H, W),
    center (N, 1, H, W), offset (N, 2, H, W))."""

    def __init__(self, model: nn.Module, fold_bn: bool = True):
        super().__init__()
        self.model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(x)
        prob, cls = torch.softmax(out["semantic"], dim=1).max(dim=1)
        return cls.to(torch.int32), prob, out["center"], out["offset"]
