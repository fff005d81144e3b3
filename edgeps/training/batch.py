"""A batch of worker crops -> network inputs and Panoptic-DeepLab targets, on the training device.

The per-pixel work of a training sample that does not need the frame at full size runs here,
batched in torch on the device that trains (a GPU does it in a fraction of a millisecond; a
loader worker spent about a third of its time on it): colour jitter, normalization, and the
targets. The arithmetic is that of the reference implementations, and tests pin both:

- :func:`network_inputs` without jitter equals :func:`edgeps.preprocess.preprocess` of the
  frame (RGB, ``(x - mean) / std`` as ``x * (1 / std) + (-mean / std)`` in float32);
- :func:`panoptic_batch_targets` equals :func:`edgeps.data.targets.panoptic_targets` per image
  (the numpy one stays: it makes the "perfect heads" of benchmarks on machines without torch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.preprocess import InputSpec
from edgeps.training.config import DataConfig, LossConfig
from edgeps.training.samples import IGNORE, NO_JITTER, TrainCrop

CROP_FIELDS = tuple(f.name for f in fields(TrainCrop))


def collate_crops(crops: list[TrainCrop]) -> dict[str, torch.Tensor]:
    """Stack crops into CPU tensors: ``image`` (B, h, w, 3) uint8, ``panoptic`` (B, h, w) int32,
    ``jitter`` (B, 5) float32, ``frame_box`` (B, 4) int32."""
    return {name: torch.from_numpy(np.stack([getattr(c, name) for c in crops])) for name in CROP_FIELDS}


def _frame_mask(frame_box: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, h, w, 1) bool: True on the frame's own pixels (inside ``frame_box``)."""
    rows = torch.arange(h, device=frame_box.device)
    cols = torch.arange(w, device=frame_box.device)
    inside_r = (rows[None] >= frame_box[:, 0:1]) & (rows[None] < frame_box[:, 1:2])
    inside_c = (cols[None] >= frame_box[:, 2:3]) & (cols[None] < frame_box[:, 3:4])
    return (inside_r[:, :, None] & inside_c[:, None, :])[..., None]


def network_inputs(image: torch.Tensor, jitter: torch.Tensor, frame_box: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 BGR crops -> the network input.

    Args:
        image: (B, h, w, 3) uint8 BGR, on the training device.
        jitter: (B, 5) float32 gain (B, G, R), contrast, brightness (0..255 scale); rows equal to
            ``NO_JITTER`` leave their image untouched.
        frame_box: (B, 4) int top, bottom, left, right of the frame's pixels; the jitter acts
            there only (the padding stays the mean colour, which normalizes to 0).
        spec: mean/std (RGB, 0..255 scale).

    Returns:
        (B, 3, h, w) float32, channels-last memory: per pixel ``(x * gain - m) * contrast + m +
        brightness`` clipped to 0..255 and truncated to an integer as a uint8 image is (m: the
        mean of the jittered frame pixels, all channels), then RGB, ``(x - mean) / std``.
    """
    x = image.float()
    b, h, w, _ = x.shape
    jittered = (jitter != torch.tensor(NO_JITTER, device=jitter.device)).any(dim=1)
    if bool(jittered.any()):
        inside = _frame_mask(frame_box, h, w)
        gained = x * jitter[:, None, None, :3]
        m = (gained * inside).sum(dim=(1, 2, 3)) / (inside.sum(dim=(1, 2, 3)) * 3).clamp(min=1)
        m = m[:, None, None, None]
        out = ((gained - m) * jitter[:, 3, None, None, None] + m + jitter[:, 4, None, None, None]).clamp(0, 255).floor()
        x = torch.where(inside & jittered[:, None, None, None], out, x)
    scale = 1.0 / torch.tensor(spec.std, dtype=torch.float32, device=x.device)
    shift = -torch.tensor(spec.mean, dtype=torch.float32, device=x.device) * scale
    rgb = x.flip(-1)
    return (rgb * scale + shift).permute(0, 3, 1, 2)


def _gaussian(sigma: float, device: torch.device) -> tuple[torch.Tensor, int]:
    """The (2r+1, 2r+1) float32 Gaussian patch of the center heatmap (r = ceil(3 sigma)), as
    :func:`edgeps.data.targets.panoptic_targets` computes it."""
    radius = int(np.ceil(3 * sigma))
    g = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    return torch.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma**2)), radius


def panoptic_batch_targets(
    panoptic: torch.Tensor,
    thing_ids: Iterable[int],
    *,
    sigma: float,
    sigma_scale: float = 0.0,
    small_instance_area: int = 0,
    small_instance_weight: float = 1.0,
    ignore_crowd_in_semantic: bool = False,
    offset_per_instance: bool = False,
    center_thing_weight: float = 1.0,
    label_divisor: int = LABEL_DIVISOR,
) -> dict[str, torch.Tensor]:
    """Panoptic-DeepLab targets of a batch of panoptic crops, vectorized over pixels.

    Args:
        panoptic: (B, H, W) int32/int64 ``class * label_divisor + instance``, ``VOID_LABEL``
            on void and padding.
        thing_ids: thing classes; a thing pixel with instance 0 is crowd.
        sigma: center Gaussian sigma, pixels.
        sigma_scale: > 0: per instance sigma = clamp(sigma_scale * sqrt(pixels), 1, sigma)
            (smaller Gaussians for small instances); 0: ``sigma`` for every instance.
        small_instance_area: instances with fewer pixels (in the crop) weigh
            ``small_instance_weight`` in the semantic loss.
        offset_per_instance: the offset weight of an instance's pixels is
            ``(P / N) / pixels`` (P instance pixels, N instances in the batch), so every instance
            weighs the same in total and the weights still sum to P.
        center_thing_weight: center weight of instance pixels (others labelled: 1).

    Returns:
        ``semantic`` (B, H, W) int64, IGNORE on void (and crowd when asked);
        ``semantic_weight`` (B, H, W) float32; ``center`` (B, 1, H, W) float32 heatmap, a
        Gaussian at each instance's rounded center of mass (max where they overlap);
        ``center_weight`` (B, H, W) float32, 0 on void and crowd; ``offset`` (B, 2, H, W)
        float32 (dy, dx) to the center of mass, 0 off instances; ``offset_weight`` (B, H, W)
        float32, 1 on thing instances (or the per-instance weights).
    """
    pan = panoptic.long()
    dev = pan.device
    b, h, w = pan.shape
    things = sorted({int(t) for t in thing_ids})
    n_lut = (things[-1] + 1) if things else 1
    thing_lut = torch.zeros(n_lut, dtype=torch.bool, device=dev)
    if things:
        thing_lut[torch.tensor(things, device=dev)] = True
    void = pan == VOID_LABEL
    cls = torch.where(void, torch.zeros_like(pan), torch.div(pan, label_divisor, rounding_mode="floor"))
    is_thing = ~void & (cls < n_lut) & thing_lut[cls.clamp(max=n_lut - 1)]
    inst = pan - cls * label_divisor
    is_instance = is_thing & (inst > 0)
    crowd = is_thing & (inst == 0)
    semantic = torch.where(void, torch.full_like(pan, IGNORE), cls)
    if ignore_crowd_in_semantic:
        semantic = torch.where(crowd, torch.full_like(pan, IGNORE), semantic)

    center = torch.zeros(b * h * w, dtype=torch.float32, device=dev)
    offset = torch.zeros(2, b * h * w, dtype=torch.float32, device=dev)
    weight = torch.ones(b * h * w, dtype=torch.float32, device=dev)
    offset_weight = is_instance.float()
    pixels = is_instance.reshape(-1).nonzero().squeeze(1)
    if pixels.numel():
        span = n_lut * label_divisor  # every instance id of one image is below this
        plane = pixels.remainder(h * w)
        ys, xs = torch.div(plane, w, rounding_mode="floor"), plane.remainder(w)
        key = torch.div(pixels, h * w, rounding_mode="floor") * span + pan.reshape(-1)[pixels]
        count = torch.bincount(key, minlength=b * span)
        ids = count.nonzero().squeeze(1)  # (N,) the instances of the batch, key order
        rank = torch.zeros(b * span, dtype=torch.long, device=dev)
        rank[ids] = torch.arange(ids.numel(), device=dev)
        inverse = rank[key]
        n = count[ids]
        cy = torch.zeros(ids.numel(), dtype=torch.long, device=dev).index_add_(0, inverse, ys).double() / n
        cx = torch.zeros(ids.numel(), dtype=torch.long, device=dev).index_add_(0, inverse, xs).double() / n
        offset[0, pixels] = (cy[inverse] - ys).float()
        offset[1, pixels] = (cx[inverse] - xs).float()
        if small_instance_area > 0:
            small = n < small_instance_area
            weight[pixels] = torch.where(small[inverse], float(small_instance_weight), 1.0)
        if offset_per_instance:
            per_instance = (pixels.numel() / ids.numel()) / n.double()
            offset_weight.view(-1)[pixels] = per_instance[inverse].float()

        gauss, r = _gaussian(sigma, dev)
        d = torch.arange(-r, r + 1, device=dev)
        py = torch.round(cy).long()[:, None, None] + d[None, :, None]  # (N, 2r+1, 1)
        px = torch.round(cx).long()[:, None, None] + d[None, None, :]  # (N, 1, 2r+1)
        image_of = torch.div(ids, span, rounding_mode="floor")[:, None, None]
        py, px = torch.broadcast_tensors(py, px)
        inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        where = (image_of * (h * w) + py * w + px)[inside]
        if sigma_scale > 0:
            sig = (sigma_scale * n.double().sqrt()).clamp(1.0, sigma).float()[:, None, None]
            dd = d.float()
            patches = torch.exp(-(dd[None, :, None] ** 2 + dd[None, None, :] ** 2) / (2 * sig**2))
        else:
            patches = gauss.expand(ids.numel(), -1, -1)
        center.scatter_reduce_(0, where, patches[inside], reduce="amax")
    return {
        "semantic": semantic,
        "semantic_weight": weight.view(b, h, w),
        "center": center.view(b, 1, h, w),
        "center_weight": (~void & ~crowd).float() * (1.0 + (center_thing_weight - 1.0) * is_instance.float()),
        "offset": offset.view(2, b, h, w).transpose(0, 1),
        "offset_weight": offset_weight,
    }


def train_batch(
    loaded: dict[str, torch.Tensor],
    thing_ids: Iterable[int],
    cfg: DataConfig,
    spec: InputSpec,
    device: torch.device,
    loss: LossConfig | None = None,
) -> dict[str, Any]:
    """A loaded batch (see :func:`collate_crops`) -> ``image`` (B, 3, h, w) network input on
    ``device`` plus the targets of :func:`panoptic_batch_targets` (the losses' batch); ``loss``
    gives the target weighting options (default: none)."""
    loss = loss or LossConfig()
    crop = {k: loaded[k].to(device, non_blocking=True) for k in CROP_FIELDS}
    out = panoptic_batch_targets(
        crop["panoptic"],
        thing_ids,
        sigma=cfg.center_sigma,
        sigma_scale=cfg.center_sigma_scale,
        offset_per_instance=loss.offset_per_instance,
        center_thing_weight=loss.center_thing_weight,
        small_instance_area=cfg.small_instance_area,
        small_instance_weight=cfg.small_instance_weight,
        ignore_crowd_in_semantic=cfg.ignore_crowd_in_semantic,
    )
    out["image"] = network_inputs(crop["image"], crop["jitter"], crop["frame_box"], spec)
    return out


__all__ = ["CROP_FIELDS", "collate_crops", "network_inputs", "panoptic_batch_targets", "train_batch"]
