"""Panoptic-DeepLab losses: semantic cross-entropy with hard-pixel mining, center MSE, offset L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeps.training.config import LossConfig
from edgeps.training.samples import IGNORE


def semantic_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, top_k: float) -> torch.Tensor:
    """Weighted per-pixel cross-entropy averaged over the hardest ``top_k`` fraction of pixels."""
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none") * weight
    per_pixel = per_pixel.flatten()
    valid = (target.flatten() != IGNORE).sum()
    if top_k >= 1.0:
        return per_pixel.sum() / valid.clamp(min=1)
    k = int(max(1, top_k * per_pixel.numel()))
    return per_pixel.topk(k).values.mean()


def panoptic_losses(
    outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: LossConfig
) -> dict[str, torch.Tensor]:
    sem = semantic_loss(outputs["semantic"], batch["semantic"], batch["semantic_weight"], cfg.semantic_top_k)
    # center MSE over labelled pixels only: void, letterbox padding and crowd regions weigh 0
    cw = batch["center_weight"].unsqueeze(1)
    center = (F.mse_loss(outputs["center"], batch["center"], reduction="none") * cw).sum() / cw.sum().clamp(min=1)
    w = batch["offset_weight"].unsqueeze(1)
    offset = (F.l1_loss(outputs["offset"], batch["offset"], reduction="none") * w).sum() / (w.sum() * 2).clamp(min=1)
    total = cfg.semantic * sem + cfg.center * center + cfg.offset * offset
    return {"loss": total, "semantic": sem.detach(), "center": center.detach(), "offset": offset.detach()}
