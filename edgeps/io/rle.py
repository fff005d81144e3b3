"""COCO run-length encoding (RLE) of binary masks, in numpy (no pycocotools needed).

A COCO RLE is ``{"size": [h, w], "counts": ...}``. The mask is read in column-major (Fortran)
order, top to bottom within a column, columns left to right; ``counts`` are the lengths of
alternating runs of 0 and 1, starting with a run of 0 (of length 0 when the first pixel is 1).
``counts`` is either a list of ints (the "uncompressed" form COCO uses for crowd regions) or a
string (the compressed form of ``pycocotools.mask.encode``): every run length from the fourth
on is stored as the difference to the run two places back, and each number is written as
6-bit groups (5 value bits + a continuation bit) offset by 48 into printable ASCII, the last
group sign-extended from its 0x10 bit.

The encoder writes exactly the strings pycocotools writes, and the decoder reads them back; a
malformed RLE is a :class:`~edgeps.errors.FormatError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeps.errors import FormatError, InputShapeError

_MAX_GROUPS = 12  # 6-bit groups of one number: 60 value bits, far beyond any image's run length


# ---------------------------------------------------------------------------------------------
# the compressed string form
# ---------------------------------------------------------------------------------------------
def counts_to_string(counts: Sequence[int] | np.ndarray) -> str:
    """Run lengths -> the compressed COCO ``counts`` string (the bytes pycocotools writes).

    Args:
        counts: (M,) non-negative run lengths, starting with a run of 0.
    Returns:
        An ASCII string (characters 48..111).
    """
    c = np.asarray(counts, dtype=np.int64).ravel()
    if c.size == 0:
        return ""
    delta = c.copy()
    delta[3:] -= c[1:-2]  # from the fourth run on: the difference to the run two places back
    rem = delta
    active = np.ones(c.size, dtype=bool)
    chars, kept = [], []
    while active.any():
        group = rem & 0x1F
        rem = rem >> 5  # arithmetic shift: negative differences stay negative
        more = np.where(group & 0x10, rem != -1, rem != 0) & active
        chars.append(group | (more.astype(np.int64) << 5))
        kept.append(active)
        active = more
    table = np.stack(chars, axis=1) + 48
    return table[np.stack(kept, axis=1)].astype(np.uint8).tobytes().decode("ascii")


def string_to_counts(text: str, where: str = "rle.counts") -> np.ndarray:
    """The compressed COCO ``counts`` string -> (M,) int64 run lengths.

    Raises:
        FormatError naming ``where`` when the string has characters outside 48..111, ends in
        the middle of a number, or decodes to a negative run length.
    """
    if not isinstance(text, str):
        raise FormatError(f"{where}: expected a string, got {type(text).__name__}")
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        raise FormatError(f"{where}: not an RLE string (non-ASCII characters)") from None
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    c = raw.astype(np.int64) - 48
    if c.min() < 0 or c.max() > 63:
        bad = chr(int(raw[(c < 0) | (c > 63)][0]))
        raise FormatError(f"{where}: character {bad!r} is not part of a COCO RLE string (expected '0'..'o')")
    end = (c & 0x20) == 0
    if not end[-1]:
        raise FormatError(f"{where}: the string ends in the middle of a number (truncated?)")
    starts = np.flatnonzero(np.concatenate([[True], end[:-1]]))
    group_of = np.cumsum(np.concatenate([[0], end[:-1].astype(np.int64)]))
    pos = np.arange(c.size) - starts[group_of]
    if pos.max() >= _MAX_GROUPS:
        raise FormatError(f"{where}: a number has more than {_MAX_GROUPS} groups (not a COCO RLE string)")
    value = np.add.reduceat((c & 0x1F) << (5 * pos), starts)
    ends = np.flatnonzero(end)
    negative = (c[ends] & 0x10) != 0
    value[negative] -= np.int64(1) << (5 * (pos[ends[negative]] + 1))
    counts = value.copy()
    counts[1::2] = np.cumsum(value[1::2])  # undo the differences, one chain per parity
    counts[2::2] = np.cumsum(value[2::2])
    if counts.min() < 0:
        raise FormatError(f"{where}: decodes to a negative run length {int(counts.min())}")
    return counts


# ---------------------------------------------------------------------------------------------
# RLE dicts
# ---------------------------------------------------------------------------------------------
def rle_size(rle: Any, where: str = "rle") -> tuple[int, int]:
    """``(h, w)`` of an RLE dict, checked (two non-negative integers)."""
    if not isinstance(rle, Mapping):
        raise FormatError(f"{where}: expected an RLE dict with 'size' and 'counts', got {type(rle).__name__}")
    if "size" not in rle or "counts" not in rle:
        missing = [k for k in ("size", "counts") if k not in rle]
        raise FormatError(f"{where}: missing field {missing[0]!r} (an RLE dict has 'size' [h, w] and 'counts')")
    size = rle["size"]
    if (
        not isinstance(size, Sequence)
        or isinstance(size, str)
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise FormatError(f"{where}.size: expected [h, w] as two non-negative integers, got {size!r}")
    return int(size[0]), int(size[1])


def rle_counts(rle: Any, where: str = "rle") -> np.ndarray:
    """Run lengths of an RLE dict (string or list ``counts``), checked against its size.

    Returns:
        (M,) int64 non-negative run lengths summing to ``h * w``.
    Raises:
        FormatError naming the field when the dict, its size or its counts are malformed.
    """
    h, w = rle_size(rle, where)
    raw = rle["counts"]
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, str):
        counts = string_to_counts(raw, f"{where}.counts")
    elif isinstance(raw, (Sequence, np.ndarray)):
        arr = np.asarray(raw)
        if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)):
            raise FormatError(f"{where}.counts: expected a string or a list of integers, got {np.asarray(raw).dtype}")
        counts = arr.astype(np.int64).ravel()
        if counts.size and counts.min() < 0:
            raise FormatError(f"{where}.counts: run lengths must be >= 0, got {int(counts.min())}")
    else:
        raise FormatError(f"{where}.counts: expected a string or a list of integers, got {type(raw).__name__}")
    total = int(counts.sum())
    if total != h * w:
        raise FormatError(f"{where}: run lengths add up to {total} pixels, but size {[h, w]} has {h * w}")
    return counts


def rle_encode(mask: np.ndarray, compress: bool = True) -> dict[str, Any]:
    """Binary mask -> COCO RLE dict.

    Args:
        mask: (H, W) array; non-zero pixels are the object (bool, integer or float).
        compress: True for the compressed string ``counts`` (pycocotools' ``encode``), False
            for the list form.
    Returns:
        ``{"size": [H, W], "counts": str | list[int]}``.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputShapeError(f"mask: expected (H, W), got shape {m.shape}")
    h, w = m.shape
    flat = (m != 0).ravel(order="F")
    if flat.size == 0:
        counts = np.zeros(1, dtype=np.int64)  # pycocotools writes one empty run of 0
    else:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate([[0], change, [flat.size]])
        counts = np.diff(edges)
        if flat[0]:
            counts = np.concatenate([[0], counts])
    return _make_rle(h, w, counts, compress)


def _make_rle(h: int, w: int, counts: np.ndarray, compress: bool) -> dict[str, Any]:
    return {"size": [h, w], "counts": counts_to_string(counts) if compress else [int(v) for v in counts]}


def rle_decode(rle: Mapping, window: tuple[int, int, int, int] | None = None, where: str = "rle") -> np.ndarray:
    """COCO RLE dict -> binary mask.

    Args:
        rle: ``{"size": [h, w], "counts": str | list[int]}``.
        window: ``(y0, y1, x0, x1)`` to decode only ``mask[y0:y1, x0:x1]`` (clipped to the
            mask), at a cost proportional to the window's columns.
        where: how errors name the RLE.
    Returns:
        (h, w) bool mask, or the window's (y1 - y0, x1 - x0) part of it (a column-major view).
    """
    h, w = rle_size(rle, where)
    return decode_counts(rle_counts(rle, where), (h, w), window)


def decode_counts(
    counts: np.ndarray, size: tuple[int, int], window: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Run lengths (checked, as :func:`rle_counts` returns them) -> bool mask of ``size``
    (h, w), or its ``window`` (y0, y1, x0, x1) as in :func:`rle_decode`."""
    h, w = size
    y0, y1, x0, x1 = (0, h, 0, w) if window is None else window
    y0, y1 = max(0, min(int(y0), h)), max(0, min(int(y1), h))
    x0, x1 = max(0, min(int(x0), w)), max(0, min(int(x1), w))
    y1, x1 = max(y0, y1), max(x0, x1)
    lo, hi = x0 * h, x1 * h
    ends = np.cumsum(counts)
    begins = ends - counts
    lengths = np.clip(ends, lo, hi) - np.clip(begins, lo, hi)
    values = (np.arange(counts.size) & 1).astype(bool)
    flat = np.repeat(values, lengths)
    return flat.reshape(x1 - x0, h)[:, y0:y1].T


def rle_area(rle: Mapping, where: str = "rle") -> int:
    """Number of object pixels of an RLE dict."""
    return int(rle_counts(rle, where)[1::2].sum())


def rle_bbox(rle: Mapping, where: str = "rle") -> tuple[int, int, int, int] | None:
    """Tight box of the object pixels as ``(y0, y1, x0, x1)`` (end exclusive), read off the run
    lengths without decoding the mask; None for an empty mask."""
    return bbox_of_counts(rle_counts(rle, where), rle_size(rle, where)[0])


def bbox_of_counts(counts: np.ndarray, h: int) -> tuple[int, int, int, int] | None:
    """:func:`rle_bbox` from checked run lengths of a mask with ``h`` rows."""
    ends = np.cumsum(counts)
    begins = ends - counts
    ones = (np.arange(counts.size) & 1).astype(bool) & (counts > 0)
    if not ones.any():
        return None
    b, e = begins[ones], ends[ones] - 1  # first and last pixel of each run of 1
    col_b, col_e = b // h, e // h
    x0, x1 = int(col_b.min()), int(col_e.max()) + 1
    if (col_b != col_e).any():  # a run across a column border covers the bottom and the top row
        return 0, h, x0, x1
    return int((b % h).min()), int((e % h).max()) + 1, x0, x1


def encode_label_map(
    labels: np.ndarray, ids: Sequence[int] | np.ndarray, compress: bool = True
) -> list[dict[str, Any]]:
    """RLE of ``labels == i`` for each ``i`` in ``ids``, all from one pass over the map.

    Args:
        labels: (H, W) integer map (e.g. panoptic ids).
        ids: the labels to encode; a label absent from the map gives an all-zero mask.
        compress: as in :func:`rle_encode`.
    Returns:
        One RLE dict per entry of ``ids``, in that order, equal to ``rle_encode(labels == i)``.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputShapeError(f"labels: expected (H, W), got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputShapeError(f"labels: expected an integer map, got dtype {lab.dtype}")
    h, w = lab.shape
    wanted = np.asarray(ids, dtype=np.int64).ravel()
    n = lab.size
    if n == 0 or wanted.size == 0:
        return [_make_rle(h, w, np.array([n], np.int64), compress) for _ in wanted]
    flat = lab.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    run_label = flat[starts].astype(np.int64)
    order = np.argsort(run_label, kind="stable")  # runs grouped by label, each group in pixel order
    sorted_label = run_label[order]
    out = []
    for label in wanted.tolist():
        lo, hi = np.searchsorted(sorted_label, [label, label + 1])
        idx = order[lo:hi]
        s, e = starts[idx], ends[idx]
        counts = np.empty(2 * idx.size + 1, dtype=np.int64)
        counts[0:-1:2] = s - np.concatenate([[0], e[:-1]])  # the gap before each run
        counts[1::2] = e - s
        counts[-1] = n - (e[-1] if idx.size else 0)
        if counts[-1] == 0 and counts.size > 1:  # the mask ends with a run of 1
            counts = counts[:-1]
        out.append(_make_rle(h, w, counts, compress))
    return out
