"""Model size and cost: parameter count and GFLOPs (2 FLOPs per multiply-add).

FLOPs are counted with forward hooks on Conv2d and Linear, the layers that dominate the cost;
BN, activations, resizes, adds and bias additions are not counted (the usual convention,
and BN folds into the convs at export). A conv costs
``2 * N * C_out * H_out * W_out * (C_in / groups) * k_h * k_w``, so depthwise convs
(``groups == C_in``) are counted at their true, small cost.
"""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_flops(m: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = m.kernel_size
    return 2 * out.numel() * (m.in_channels // m.groups) * kh * kw


def _linear_flops(m: nn.Linear, out: torch.Tensor) -> int:
    return 2 * out.numel() * m.in_features


def count_flops(model: nn.Module, size: tuple[int, int] | int = (256, 512), in_channels: int = 3) -> float:
    """GFLOPs of one forward pass on a single (1, in_channels, H, W) image.

    Runs the model once under ``no_grad`` in eval mode on its own device and dtype, and
    restores its train/eval state afterwards."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    total = 0

    def hook(m: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += _conv_flops(m, out) if isinstance(m, nn.Conv2d) else _linear_flops(m, out)  # type: ignore[arg-type]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    modes = {m: m.training for m in model.modules()}
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, h, w, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training
    return total / 1e9


__all__ = ["count_flops", "count_parameters"]
