"""Draw panoptic maps: a colour map, and an overlay on the BGR image with boundaries and legend.

Colours are looked up once per distinct segment id and then spread to pixels by one LUT
indexing, so drawing stays cheap enough for a live preview on an edge device.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.categories import Categories, _default_color
from edgeps.errors import ConfigError, InputShapeError

BOUNDARY_BGR = (255, 255, 255)
_MAX_DENSE_RANGE = 1 << 20  # id span up to which a dense LUT beats np.unique's sort
_GOLDEN = 0.6180339887498949


def _check_panoptic(panoptic: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    pan = np.asarray(panoptic)
    ok = pan.ndim == 2 and np.issubdtype(pan.dtype, np.integer)
    if ok and shape is not None:
        ok = pan.shape == shape
    if not ok:
        want = f"({shape[0]}, {shape[1]}) to match image" if shape is not None else "(H, W)"
        raise InputShapeError(f"panoptic: expected a {want} integer array, got shape {pan.shape} dtype {pan.dtype}")
    return pan


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputShapeError(
            f"image_bgr: expected an (H, W, 3) uint8 BGR image, got shape {img.shape} dtype {img.dtype}"
        )
    return np.ascontiguousarray(img)  # OpenCV rejects views with negative strides (rgb[..., ::-1])


def _instance_shades(rgb: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """Shift lightness (and slightly hue) by instance number, golden-ratio spaced.

    Consecutive instance numbers land >= 0.38 apart on the lightness cycle, so neighbouring
    instances of one class, which usually have close numbers, stay easy to tell apart.
    """
    hls = cv2.cvtColor(rgb.reshape(1, -1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2HLS)[0]
    t = np.mod(0.5 + instance * _GOLDEN, 1.0)
    hls[:, 1] = 0.22 + 0.58 * t
    hls[:, 0] = np.mod(hls[:, 0] + 24.0 * (np.mod(instance * 0.7548776662, 1.0) - 0.5), 360.0)
    out = cv2.cvtColor(hls.reshape(1, -1, 3), cv2.COLOR_HLS2RGB)[0]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def segment_colors(
    ids: np.ndarray,
    categories: Categories,
    *,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    void_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """(N, 3) BGR colours for N panoptic ids: class colour for instance 0, a shade per instance.

    Classes outside ``categories`` get a fixed colour derived from the class id, so a model
    with a mismatched category set still draws instead of crashing.
    """
    ids = np.asarray(ids, dtype=np.int64).ravel()
    cls = ids // label_divisor
    inst = ids % label_divisor
    table = categories.color_table()
    rgb = np.zeros((len(ids), 3), dtype=np.uint8)
    known = (cls >= 0) & (cls < len(table))
    known[known] = np.isin(cls[known], categories.ids)
    rgb[known] = table[cls[known]]
    for k in np.flatnonzero(~known & (ids != void_label)):
        rgb[k] = _default_color(abs(int(cls[k])))
    shaded = inst > 0
    if np.any(shaded):
        rgb[shaded] = _instance_shades(rgb[shaded], inst[shaded])
    rgb[ids == void_label] = void_color[::-1]  # void_color is BGR; flipped back below
    return np.ascontiguousarray(rgb[:, ::-1])


def _lookup(pan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids, per-pixel index into them), via a dense bincount when the id span allows."""
    lo, hi = int(pan.min()), int(pan.max())
    if hi - lo < _MAX_DENSE_RANGE:
        shifted = (pan - lo).astype(np.intp, copy=False)
        present = np.flatnonzero(np.bincount(shifted.ravel(), minlength=hi - lo + 1))
        dense = np.zeros(hi - lo + 1, dtype=np.intp)
        dense[present] = np.arange(len(present))
        return present + lo, dense[shifted]
    ids, inverse = np.unique(pan, return_inverse=True)
    return ids, inverse.reshape(pan.shape)


def colorize(
    panoptic: np.ndarray,
    categories: Categories,
    *,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    void_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """The colour map of a panoptic map alone: (H, W, 3) uint8 BGR, void in ``void_color`` (BGR)."""
    pan = _check_panoptic(panoptic)
    if pan.size == 0:
        return np.zeros((*pan.shape, 3), dtype=np.uint8)
    return _colorize(pan, categories, label_divisor, void_label, void_color)[0]


def _colorize(
    pan: np.ndarray,
    categories: Categories,
    label_divisor: int,
    void_label: int,
    void_color: tuple[int, int, int] = (0, 0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """(colour map, distinct ids) of a checked, non-empty panoptic map."""
    ids, index = _lookup(pan)
    colors = segment_colors(ids, categories, label_divisor=label_divisor, void_label=void_label, void_color=void_color)
    # Gather one packed 4-byte word per pixel: several times faster than gathering (N, 3) rows.
    packed = np.zeros((len(colors), 4), dtype=np.uint8)
    packed[:, :3] = colors
    bgra = packed.view(np.uint32).ravel()[index].view(np.uint8).reshape(*pan.shape, 4)
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR), ids


def boundaries(panoptic: np.ndarray) -> np.ndarray:
    """(H, W) bool, True on the 1-pixel line where the panoptic id changes (right/lower side)."""
    pan = _check_panoptic(panoptic)
    edge = np.zeros(pan.shape, dtype=bool)
    edge[:, 1:] = pan[:, 1:] != pan[:, :-1]
    edge[1:, :] |= pan[1:, :] != pan[:-1, :]
    return edge


def _draw_legend(out: np.ndarray, ids: np.ndarray, categories: Categories, label_divisor: int, void_label: int) -> None:
    """A box in the top-left corner with a swatch and name per class present, in category order."""
    present = np.unique(ids[ids != void_label] // label_divisor).tolist()
    if not present:
        return
    order = {cid: i for i, cid in enumerate(categories.ids)}
    present.sort(key=lambda c: (order.get(c, len(order)), c))
    h, w = out.shape[:2]
    scale = float(np.clip(h / 900.0, 0.35, 1.0))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, text_h), base = cv2.getTextSize("Ag", font, scale, 1)
    row = text_h + base + 4
    pad = 4
    fits = max(1, (h - 2 * pad) // row)
    names = [categories[c].name if c in categories else f"class {c}" for c in present]
    if len(present) > fits:
        names = names[: fits - 1] + [f"+{len(present) - fits + 1} more"]
        present = present[: fits - 1] + [None]
    swatch = row - 4
    text_w = max(cv2.getTextSize(n, font, scale, 1)[0][0] for n in names)
    box_w = min(w, pad * 3 + swatch + text_w)
    box_h = min(h, pad * 2 + row * len(names))
    region = out[:box_h, :box_w]
    region[:] = (region.astype(np.uint16) * 3 // 10).astype(np.uint8)  # darken for contrast
    colors = segment_colors(
        np.array([c * label_divisor for c in present if c is not None], dtype=np.int64),
        categories,
        label_divisor=label_divisor,
        void_label=void_label,
    )
    for i, name in enumerate(names):
        y = pad + i * row
        if i < len(colors):
            color = tuple(int(v) for v in colors[i])
            cv2.rectangle(out, (pad, y + 2), (pad + swatch, y + 2 + swatch - 1), color, -1)
        cv2.putText(out, name, (pad * 2 + swatch, y + text_h + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def overlay(
    image_bgr: np.ndarray,
    panoptic: np.ndarray,
    categories: Categories,
    *,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    alpha: float = 0.5,
    draw_boundaries: bool = True,
    legend: bool = False,
) -> np.ndarray:
    """Blend the panoptic colour map onto a BGR image; void keeps the image's own pixels.

    Returns a new (H, W, 3) uint8 BGR image; the input is not modified.
    """
    img = _check_image(image_bgr)
    pan = _check_panoptic(panoptic, img.shape[:2])
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha: expected a value in [0, 1], got {alpha!r}")
    if pan.size == 0:
        return img.copy()
    color, ids = _colorize(pan, categories, label_divisor, void_label)
    out = cv2.addWeighted(img, 1.0 - alpha, color, alpha, 0.0)
    void = pan == void_label
    if void.any():
        out = cv2.copyTo(img, void.view(np.uint8), out)
    if draw_boundaries:
        out[boundaries(pan)] = BOUNDARY_BGR
    if legend:
        _draw_legend(out, ids, categories, label_divisor, void_label)
    return out
