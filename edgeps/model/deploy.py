"""The deployment form of a model: BatchNorm folded into convolutions, ArgMax in the graph.

Every exported graph and the torch runtime use :class:`DeployModel`, so all backends return
the same heads: the class map (int32) and its max probability instead of the logits (an
argmax over logits in numpy costs more than the whole post-processing), the center heatmap
and the offsets.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgeps.bundle import CENTER_HEADS, GROUPING_HEADS, HEAD_LAYOUTS, HEADS

OUTPUT_HEADS = HEADS  # the output order of every exported graph (defined once, in edgeps.bundle)
OUTPUT_LAYOUTS = HEAD_LAYOUTS
GRAPH_CENTER_HEADS = CENTER_HEADS  # appended after OUTPUT_HEADS when the graph extracts centers
GRAPH_GROUPING_HEADS = GROUPING_HEADS  # appended after those when the graph groups the pixels too
GROUPING_CHUNK = 4  # candidates per distance tensor: 4 x H x W float32 (34 MB at 1024x2048)


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


PROB_OPS = ("softmax", "exp_sum")


class DeployModel(nn.Module):
    """(N, 3, H, W) normalized input -> (semantic int32 (N, H, W), semantic_prob (N, H, W),
    center (N, 1, H, W), offset (N, 2, H, W)).

    ``prob_op``: how the graph computes the top class's probability (see :func:`semantic_heads`);
    both give the same heads to float rounding (~1e-7).

    ``centers``: a dict with ``threshold``, ``nms_kernel``, ``top_k`` (the post-processing
    settings) puts the center extraction in the graph: two more outputs, ``center_index``
    (N, K) int64 flat pixel indices and ``center_score`` (N, K) float32, K = min(top_k, H * W),
    from :func:`center_candidates`. With ``"grouping": True`` and ``"thing_ids"`` in it, the graph
    also groups the pixels (:func:`group_candidates`): one more output, ``instance`` (N, H, W)
    int32."""

    def __init__(self, model: nn.Module, fold_bn: bool = True, prob_op: str = "softmax", centers: dict | None = None):
        super().__init__()
        if prob_op not in PROB_OPS:
            raise ValueError(f"prob_op: one of {', '.join(PROB_OPS)}, got {prob_op!r}")
        if centers is not None and centers.get("top_k") is None:
            raise ValueError("centers in the graph need a top_k (the graph's outputs have a fixed size)")
        self.model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
        self.prob_op = prob_op
        self.centers = centers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        heads = (*semantic_heads(out["semantic"], self.prob_op), out["center"], out["offset"])
        if self.centers is None:
            return heads
        c = self.centers
        index, score = center_candidates(out["center"], c["threshold"], c["nms_kernel"], c["top_k"])
        if not c.get("grouping"):
            return (*heads, index, score)
        instance = group_candidates(heads[0], out["offset"], index, score, c["thing_ids"], c["top_k"])
        return (*heads, index, score, instance)


def center_candidates(
    heatmap: torch.Tensor, threshold: float, nms_kernel: int, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) heatmap -> (flat indices (N, K) int64, scores (N, K) float32), K = min(top_k, H * W).

    The K largest values of the peak map: the heatmap where it equals its ``nms_kernel`` window
    max (padding is -inf) and exceeds max(threshold, 0), else 0. In ONNX: MaxPool, Equal,
    Greater, Where, TopK. The host finishes it (:func:`edgeps.postprocess.centers_from_candidates`):
    drop the zeros and, when all K are peaks, the ties at the K-th score.
    """
    pooled = nn.functional.max_pool2d(heatmap, nms_kernel, stride=1, padding=nms_kernel // 2)
    floor = max(float(np.float32(threshold)), 0.0)  # compared in float32, as the host does
    peak = (heatmap == pooled) & (heatmap > floor)
    flat = torch.where(peak, heatmap, torch.zeros_like(heatmap)).flatten(1)
    k = min(int(top_k), heatmap.shape[-2] * heatmap.shape[-1])
    score, index = torch.topk(flat, k, dim=1)
    return index, score


def group_candidates(
    semantic: torch.Tensor,
    offset: torch.Tensor,
    index: torch.Tensor,
    score: torch.Tensor,
    thing_ids: list[int] | tuple[int, ...],
    top_k: int,
    chunk: int = GROUPING_CHUNK,
) -> torch.Tensor:
    """Each thing pixel to the nearest center its offset votes for, in the graph.

    Args:
        semantic: (N, H, W) class map; offset: (N, 2, H, W) (dy, dx) in pixels.
        index, score: (N, K) the candidates of :func:`center_candidates` (score 0: no peak).
        thing_ids: the thing classes; top_k: the value the candidates were extracted with.
        chunk: candidates per distance tensor (memory: chunk x H x W in the offsets' dtype).
    Returns:
        (N, H, W) int32: 0 off the thing pixels (and everywhere when no candidate is a center),
        else 1 + the position in ``index`` of the nearest center to (y + dy, x + dx), squared
        Euclidean, ties to the lower position. The centers are those
        :func:`edgeps.postprocess.centers_from_candidates` keeps: the peaks, less the ties at the
        K-th score when all K are peaks. The host maps positions to its own row-major order.
    """
    n, _, h, w = offset.shape
    k = index.shape[1]
    valid = score > 0
    if top_k < h * w:  # all K are peaks: the K-th score may tie with peaks left out, so drop it
        kth = score.min(dim=1, keepdim=True).values
        valid = valid & ~(valid.all(dim=1, keepdim=True) & (score <= kth))
    cy = torch.div(index, w, rounding_mode="floor").to(offset.dtype)
    cx = (index - torch.div(index, w, rounding_mode="floor") * w).to(offset.dtype)
    vy = offset[:, 0] + torch.arange(h, dtype=offset.dtype).view(1, h, 1)  # (N, H, W) voted positions
    vx = offset[:, 1] + torch.arange(w, dtype=offset.dtype).view(1, 1, w)
    inf = torch.tensor(float("inf"), dtype=offset.dtype)
    best_d = torch.full_like(vy, float("inf"))
    best_i = torch.zeros(vy.shape, dtype=torch.int64)
    for start in range(0, k, chunk):  # unrolled in the graph: bounded memory, no loop op
        stop = min(start + chunk, k)
        # 0, but computed from the previous chunk's answer: an executor then runs the chunks one
        # after another instead of all their distance tensors first (peak memory of one chunk).
        after = (best_i[:, :1, :1] * 0).to(offset.dtype).unsqueeze(1)
        dy = vy.unsqueeze(1) - (cy[:, start:stop, None, None] + after)
        dx = vx.unsqueeze(1) - (cx[:, start:stop, None, None] + after)
        d = torch.where(valid[:, start:stop, None, None], dy * dy + dx * dx, inf)
        d_min, arg = d.min(dim=1)
        better = d_min < best_d  # strict: an equal distance keeps the lower position
        best_i = torch.where(better, arg + start, best_i)
        best_d = torch.where(better, d_min, best_d)
    thing = torch.zeros(semantic.shape, dtype=torch.bool)
    for t in thing_ids:
        thing = thing | (semantic == int(t))
    found = thing & torch.isfinite(best_d)
    return torch.where(found, best_i + 1, torch.zeros_like(best_i)).to(torch.int32)


def semantic_heads(logits: torch.Tensor, prob_op: str = "softmax") -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) logits -> (class map int32 (N, H, W), its softmax probability (N, H, W)).

    ``softmax``: Softmax over the classes, then its max and argmax (OpenVINO and TFLite fuse
    it). ``exp_sum``: the max softmax as ``1 / sum_c exp(l_c - max_c l)`` and the class as the
    first maximum of the logits, without a Softmax op over the class axis, which ONNX Runtime
    runs through a transpose (a fifth of its fp32 graph; docs/measurements.md)."""
    if prob_op == "softmax":
        prob, cls = torch.softmax(logits, dim=1).max(dim=1)
        return cls.to(torch.int32), prob
    top, cls = logits.max(dim=1)
    prob = torch.reciprocal(torch.exp(logits - top.unsqueeze(1)).sum(dim=1))
    return cls.to(torch.int32), prob
