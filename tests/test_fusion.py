"""Fusion of a semantic map with scored instance masks, COCO RLE, and ``edgeps fuse``.

The fusion is checked against a plain-loop oracle written here: every mask is built pixel by
pixel from the documented resampling formulas, and the paper's procedure (Kirillov et al.
2019, sec. 7; panopticapi's combine script) runs pixel by pixel on the result. The end-to-end
test derives instance results and semantic maps from the real COCO sample's ground truth and
scores the fused output with edgeps' PQ; the expected PQ of each perturbation is derived
here from the GT segment counts.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as coco_mask
import pytest

from edgeps.apps.cli import main
from edgeps.errors import FormatError, InputShapeError
from edgeps.fusion import fuse_semantic_and_instances, instances_from_coco_results, panoptic_to_instances
from edgeps.io.coco_panoptic import read_id_png, read_json
from edgeps.io.rle import (
    counts_to_string,
    encode_label_map,
    rle_area,
    rle_bbox,
    rle_counts,
    rle_decode,
    rle_encode,
    string_to_counts,
)
from edgeps.metrics import evaluate_coco_panoptic

# pycocotools' own decode trips numpy 2's __array__ copy deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

THINGS = [1, 3, 4]
N_CLASSES = 6
EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# the oracle: plain loops, one pixel at a time
# ---------------------------------------------------------------------------------------------
def oracle_rle_decode(rle: dict) -> list[list[bool]]:
    """Column-major runs, alternating 0 and 1, written one pixel at a time."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = oracle_string_to_counts(counts)
    out = [[False] * w for _ in range(h)]
    pos, value = 0, False
    for c in counts:
        for _ in range(c):
            out[pos % h][pos // h] = value
            pos += 1
        value = not value
    assert pos == h * w
    return out


def oracle_string_to_counts(s: str) -> list[int]:
    """pycocotools' rleFrString, transcribed as a loop."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _in_box(p: int, lo: float, hi: float) -> bool:
    return hi > lo and p + 1 > lo and p < hi  # the pixel [p, p + 1) overlaps (lo, hi)


def oracle_mask(mask, box, hw: tuple[int, int]) -> list[list[bool]]:
    """One instance's mask at the output size, by the documented formulas, pixel by pixel."""
    H, W = hw
    if isinstance(mask, dict):
        src = [[float(v) for v in row] for row in oracle_rle_decode(mask)]
        nearest = True
    else:
        nearest = mask.dtype in (np.bool_, np.uint8)
        src = [[float(v) for v in row] for row in mask.tolist()]
    h, w = len(src), len(src[0])
    out = [[False] * W for _ in range(H)]
    for y in range(H):
        for x in range(W):
            if (h, w) == (H, W):
                v = src[y][x]
                on = v != 0 if nearest else v > 0.5
                if box is not None:
                    on = on and _in_box(x, box[0], box[2]) and _in_box(y, box[1], box[3])
            elif box is None:  # resized to the whole image
                if nearest:
                    on = src[(2 * y + 1) * h // (2 * H)][(2 * x + 1) * w // (2 * W)] != 0
                else:
                    cy = max((y + 0.5) * (h / H) - 0.5, 0.0)
                    cx = max((x + 0.5) * (w / W) - 0.5, 0.0)
                    y0, x0 = math.floor(cy), math.floor(cx)
                    fy, fx = cy - y0, cx - x0
                    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                    y0, x0 = min(y0, h - 1), min(x0, w - 1)
                    v = (1 - fx) * ((1 - fy) * src[y0][x0] + fy * src[y1][x0]) + fx * (
                        (1 - fy) * src[y0][x1] + fy * src[y1][x1]
                    )
                    on = v > 0.5
            else:  # pasted into the box
                bx1, by1, bx2, by2 = box
                if not (_in_box(x, bx1, bx2) and _in_box(y, by1, by2)):
                    continue
                sy, sx = h / (by2 - by1), w / (bx2 - bx1)
                if nearest:
                    iy = math.floor((y + 0.5 - by1) * sy)
                    ix = math.floor((x + 0.5 - bx1) * sx)
                    on = 0 <= iy < h and 0 <= ix < w and src[iy][ix] != 0
                else:
                    cy = (y + 0.5 - by1) * sy - 0.5
                    cx = (x + 0.5 - bx1) * sx - 0.5
                    y0, x0 = math.floor(cy), math.floor(cx)
                    fy, fx = cy - y0, cx - x0

                    def at(r: int, c: int) -> float:
                        return src[r][c] if 0 <= r < h and 0 <= c < w else 0.0

                    v = (1 - fx) * ((1 - fy) * at(y0, x0) + fy * at(y0 + 1, x0)) + fx * (
                        (1 - fy) * at(y0, x0 + 1) + fy * at(y0 + 1, x0 + 1)
                    )
                    on = v > 0.5
            out[y][x] = on
    return out


def oracle_fuse(
    semantic,
    masks,
    classes,
    scores,
    *,
    thing_ids,
    overlap_threshold=0.5,
    stuff_area=4096,
    score_threshold=0.5,
    label_divisor=1000,
    void_label=-1,
    boxes=None,
    size=None,
    stuff_ids=None,
    stats=None,
):
    """The paper's procedure, pixel by pixel. Returns (panoptic list of lists, scores dict);
    ``stats`` (a dict) counts the rules that fired."""
    stats = {} if stats is None else stats

    def fired(rule: str) -> None:
        stats[rule] = stats.get(rule, 0) + 1

    sem = semantic.tolist()
    if semantic.ndim == 3:  # argmax, first maximum
        C, h, w = semantic.shape
        sem = [[max(range(C), key=lambda c, y=y, x=x: (sem[c][y][x], -c)) for x in range(w)] for y in range(h)]
    h, w = len(sem), len(sem[0])
    H, W = size or (h, w)
    sem = [[sem[(2 * y + 1) * h // (2 * H)][(2 * x + 1) * w // (2 * W)] for x in range(W)] for y in range(H)]
    things = set(thing_ids)
    n = len(classes)
    order = sorted(range(n), key=lambda i: -float(scores[i]))  # sorted() is stable
    taken = [[0] * W for _ in range(H)]
    pan = [[None] * W for _ in range(H)]
    counter: dict[int, int] = {}
    out_scores = {}
    for k in order:
        if float(scores[k]) < score_threshold:
            fired("below the score threshold")
            continue
        m = oracle_mask(masks[k], None if boxes is None else [float(v) for v in boxes[k]], (H, W))
        area = sum(v for row in m for v in row)
        if area == 0:
            continue
        overlap = sum(1 for y in range(H) for x in range(W) if m[y][x] and taken[y][x])
        if overlap / area > overlap_threshold or overlap == area:
            fired("dropped for overlap")
            continue
        if overlap:
            fired("takes only its free pixels")
        c = int(classes[k])
        counter[c] = counter.get(c, 0) + 1
        pid = c * label_divisor + counter[c]
        out_scores[pid] = float(scores[k])
        for y in range(H):
            for x in range(W):
                if m[y][x] and not taken[y][x]:
                    taken[y][x] = 1
                    pan[y][x] = pid
    leftover: dict[int, int] = {}
    for y in range(H):
        for x in range(W):
            if not taken[y][x]:
                leftover[sem[y][x]] = leftover.get(sem[y][x], 0) + 1
    for y in range(H):
        for x in range(W):
            if taken[y][x]:
                continue
            c = sem[y][x]
            is_stuff = c not in things and (stuff_ids is None or c in stuff_ids)
            pan[y][x] = c * label_divisor if is_stuff and leftover[c] >= stuff_area else void_label
            if is_stuff and leftover[c] < stuff_area:
                fired("stuff pixel voided by area")
            if c in things:
                fired("uncovered thing pixel voided")
    return pan, out_scores


# ---------------------------------------------------------------------------------------------
# randomized inputs
# ---------------------------------------------------------------------------------------------
def random_case(seed: int) -> tuple[dict, dict]:
    """(positional + keyword arguments of one fusion call), covering every input form."""
    rng = np.random.default_rng(seed)
    H, W = (int(v) for v in rng.integers(6, 19, 2))
    n = int(rng.integers(0, 9))
    mode = ["full-bool", "full-uint8-boxes", "small-float", "box-relative", "rle", "rle-small", "full-float"][seed % 7]
    # a class map of blocks, so that stuff areas vary
    blocks = rng.integers(0, N_CLASSES, (3, 4))
    sem = blocks[(np.arange(H) * 3) // H][:, (np.arange(W) * 4) // W]
    if rng.random() < 0.3:
        sem[rng.random((H, W)) < 0.2] = rng.integers(0, N_CLASSES)
    size = None
    semantic = sem.astype(rng.choice([np.uint8, np.int32, np.int64]))
    if seed % 5 == 1:  # probabilities, argmax inside
        semantic = rng.random((N_CLASSES, H, W)).astype(np.float32)
    elif seed % 5 == 2:  # another size, with size given
        size = (H, W)
        semantic = sem[::2, ::2].copy()
    classes = rng.choice(THINGS, n)
    # ties: scores drawn from few values
    scores = rng.choice([0.3, 0.5, 0.6, 0.9, 0.9], n) if seed % 2 else rng.random(n)
    boxes = None
    # rectangles that overlap, filled with holes
    y0 = rng.integers(0, H - 2, n)
    x0 = rng.integers(0, W - 2, n)
    y1 = np.minimum(H, y0 + rng.integers(2, 9, n))
    x1 = np.minimum(W, x0 + rng.integers(2, 9, n))
    full = np.zeros((n, H, W), bool)
    for i in range(n):
        full[i, y0[i] : y1[i], x0[i] : x1[i]] = rng.random((y1[i] - y0[i], x1[i] - x0[i])) < 0.85
    if n >= 2 and seed % 3 == 0:
        full[1] = full[0]  # an exact duplicate
    if mode == "full-bool":
        masks = full
        if seed % 4 == 0:
            boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float64) + rng.uniform(-1.5, 1.5, (n, 4))
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    elif mode == "full-uint8-boxes":
        masks = (full * rng.choice([1, 255, 7])).astype(np.uint8)
        boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float64) + rng.uniform(-1.0, 1.0, (n, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        if n >= 3:
            boxes[-1, 3] = boxes[-1, 1]  # a box of height 0 holds nothing
    elif mode == "small-float":
        h, w = (int(v) for v in rng.integers(3, 11, 2))
        masks = rng.random((n, h, w)).astype(np.float32) ** 2
    elif mode == "full-float":
        masks = full * rng.uniform(0.3, 1.0, (n, H, W))
    elif mode == "box-relative":
        h, w = (int(v) for v in rng.integers(2, 8, 2))
        masks = rng.random((n, h, w))
        if seed % 2:
            masks = masks > 0.4
        bx = rng.uniform(-2, W, n)
        by = rng.uniform(-2, H, n)
        boxes = np.stack([bx, by, bx + rng.uniform(0, 9, n), by + rng.uniform(0, 9, n)], axis=1)
        if n:
            boxes[0, 2] = boxes[0, 0]  # a box of width 0 holds nothing
    elif mode == "rle":
        masks = [coco_mask.encode(np.asfortranarray(m.astype(np.uint8))) for m in full]
        masks = [{"size": r["size"], "counts": r["counts"].decode()} for r in masks]
        if seed % 2:
            boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float64) + 0.5
    else:  # RLE at another size
        h, w = (int(v) for v in rng.integers(3, 11, 2))
        masks = [rle_encode(rng.random((h, w)) < 0.4, compress=bool(i % 2)) for i in range(n)]
    kwargs = dict(
        thing_ids=THINGS,
        overlap_threshold=float(rng.choice([0.0, 0.2, 0.5, 0.5, 0.8, 1.0])),
        stuff_area=int(rng.integers(0, 25)),
        score_threshold=float(rng.choice([0.0, 0.5, 0.6])),
        boxes=boxes,
        size=size,
        stuff_ids=[0, 2] if seed % 6 == 5 else None,
    )
    return dict(semantic=semantic, masks=masks, classes=classes, scores=scores), kwargs


@pytest.mark.parametrize("seed", range(70))
def test_identical_to_the_plain_loop_oracle(seed: int) -> None:
    args, kwargs = random_case(seed)
    pred = fuse_semantic_and_instances(*args.values(), **kwargs)
    pan, scores = oracle_fuse(*args.values(), **kwargs)
    np.testing.assert_array_equal(pred.panoptic, np.array(pan, dtype=np.int32))
    assert pred.panoptic.dtype == np.int32
    assert pred.scores == scores


def test_the_random_cases_exercise_the_rules() -> None:
    """The randomized cases are not vacuous: each rule fires in many of them."""
    cases: dict[str, int] = {}
    for seed in range(70):
        args, kwargs = random_case(seed)
        stats: dict[str, int] = {}
        oracle_fuse(*args.values(), **kwargs, stats=stats)
        for rule in stats:
            cases[rule] = cases.get(rule, 0) + 1
    assert set(cases) == {
        "below the score threshold",
        "dropped for overlap",
        "takes only its free pixels",
        "stuff pixel voided by area",
        "uncovered thing pixel voided",
    }
    assert min(cases.values()) >= 10, cases


@pytest.mark.parametrize("case", ["uint8-few-classes", "uint8-high-ids", "uint8-too-many", "wide-ids"])
def test_every_composition_path_matches_the_oracle(case: str) -> None:
    """The final map is composed through uint8 codes (classes + instances <= 256), through
    codes of the classes present (ids up to 255 but few of them), or in int32 (more instances
    than a uint8 code holds, or class ids above 255): all identical to the oracle."""
    rng = np.random.default_rng(5)
    H = W = 40
    n = 270 if case == "uint8-too-many" else 120
    cells = rng.permutation(400)[:n]  # 2 x 2 squares on a 20 x 20 grid: all disjoint, all kept
    full = np.zeros((n, H, W), bool)
    for i, c in enumerate(cells):
        y, x = 2 * (c // 20), 2 * (c % 20)
        full[i, y : y + 2, x : x + 2] = True
    if case != "uint8-too-many":  # and overlapping ones
        full[n // 2 :] = np.roll(full[n // 2 :], 1, axis=2)
    classes = rng.choice(THINGS, n)
    scores = rng.random(n)
    sem = {
        "uint8-few-classes": rng.integers(0, N_CLASSES, (H, W)).astype(np.uint8),
        "uint8-high-ids": rng.choice([0, 2, 200], (H, W)).astype(np.uint8),
        "uint8-too-many": rng.integers(0, N_CLASSES, (H, W)).astype(np.uint8),
        "wide-ids": rng.integers(0, 400, (H, W)),
    }[case]
    kw = dict(thing_ids=THINGS, overlap_threshold=0.3, stuff_area=5, score_threshold=0.0)
    pred = fuse_semantic_and_instances(sem, full, classes, scores, **kw)
    pan, sc = oracle_fuse(sem, full, classes, scores, **kw)
    np.testing.assert_array_equal(pred.panoptic, np.array(pan, np.int32))
    assert pred.scores == sc
    if case == "uint8-too-many":
        assert len(sc) == n > 256
    else:
        assert 60 < len(sc) < n
    if case == "uint8-high-ids":
        assert 201 + len(sc) > 256


# ---------------------------------------------------------------------------------------------
# hand cases
# ---------------------------------------------------------------------------------------------
def _square(hw: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_overlap_exactly_at_the_threshold_is_kept() -> None:
    sem = np.zeros((4, 8), np.uint8)
    a = _square((4, 8), 0, 2, 0, 2)  # 4 pixels
    b = _square((4, 8), 0, 2, 1, 3)  # 4 pixels, 2 of them under a: 2 / 4 == 0.5
    pred = fuse_semantic_and_instances(sem, np.stack([a, b]), [1, 1], [0.9, 0.8], thing_ids=[1], stuff_area=0)
    assert pred.panoptic[0].tolist() == [1001, 1001, 1002, 0, 0, 0, 0, 0]
    assert pred.scores == {1001: 0.9, 1002: 0.8}
    c = _square((4, 8), 0, 2, 0, 3)  # 6 pixels, 4 under a: 0.667 > 0.5, dropped
    pred = fuse_semantic_and_instances(sem, np.stack([a, c]), [1, 1], [0.9, 0.8], thing_ids=[1], stuff_area=0)
    assert sorted(pred.scores) == [1001] and (pred.panoptic == 1002).sum() == 0
    # just above 0.5 by a hair: 0.5 + 1e-12 keeps b, 0.5 - 1e-12 drops it
    for thr, kept in ((0.5 + 1e-12, True), (0.5 - 1e-12, False)):
        pred = fuse_semantic_and_instances(
            sem, np.stack([a, b]), [1, 1], [0.9, 0.8], thing_ids=[1], stuff_area=0, overlap_threshold=thr
        )
        assert (1002 in pred.scores) is kept


def test_score_threshold_drops_below_and_keeps_equal() -> None:
    sem = np.zeros((4, 8), np.uint8)
    masks = np.stack([_square((4, 8), 0, 2, 0, 2), _square((4, 8), 2, 4, 4, 6)])
    pred = fuse_semantic_and_instances(sem, masks, [1, 1], [0.49, 0.5], thing_ids=[1], stuff_area=0)
    assert pred.scores == {1001: 0.5}
    assert (pred.panoptic == 1001).sum() == 4 and pred.panoptic[0, 0] == 0  # the dropped one is stuff again


def test_equal_scores_keep_input_order_and_numbering_follows_acceptance() -> None:
    sem = np.zeros((4, 8), np.uint8)
    first = _square((4, 8), 0, 2, 0, 4)
    second = _square((4, 8), 0, 2, 0, 4)  # the same pixels, the same score: input order decides
    other = _square((4, 8), 2, 4, 0, 4)
    masks = np.stack([other, first, second])
    pred = fuse_semantic_and_instances(sem, masks, [3, 1, 1], [0.7, 0.8, 0.8], thing_ids=[1, 3], stuff_area=0)
    # accepted: first (1001), then other (3001); second is fully covered and dropped
    assert pred.scores == {1001: 0.8, 3001: 0.7}
    assert (pred.panoptic[:2, :4] == 1001).all() and (pred.panoptic[2:, :4] == 3001).all()
    # the order by score, not by input, numbers the instances of one class
    masks = np.stack([_square((4, 8), 0, 1, 0, 1), _square((4, 8), 3, 4, 7, 8)])
    pred = fuse_semantic_and_instances(sem, masks, [1, 1], [0.6, 0.9], thing_ids=[1], stuff_area=0)
    assert pred.panoptic[3, 7] == 1001 and pred.panoptic[0, 0] == 1002


def test_stuff_leftover_just_under_and_at_stuff_area() -> None:
    sem = np.zeros((4, 5), np.uint8)  # class 0: 10 pixels on the left, class 2: 10 on the right
    sem[:, 2:] = 2
    sem[2:, 2] = 0
    assert (sem == 0).sum() == 10
    inst = _square((4, 5), 0, 1, 0, 1)[None]  # takes 1 pixel of class 0: 9 left
    for area, expect in ((10, -1), (9, 0)):
        pan = fuse_semantic_and_instances(sem, inst, [1], [0.9], thing_ids=[1], stuff_area=area).panoptic
        left = (sem == 0) & ~inst[0]
        assert (pan[left] == expect).all()
        assert (pan[sem == 2] == (2000 if area <= 10 else -1)).all()
        assert pan[0, 0] == 1001


def test_thing_region_without_instance_is_void() -> None:
    sem = np.full((4, 6), 2, np.uint8)
    sem[:, :3] = 1  # thing class 1
    inst = _square((4, 6), 0, 2, 0, 2)[None]
    pan = fuse_semantic_and_instances(sem, inst, [1], [0.9], thing_ids=[1], stuff_area=0).panoptic
    assert (pan[inst[0]] == 1001).all()
    assert (pan[(sem == 1) & ~inst[0]] == -1).all()
    assert (pan[sem == 2] == 2000).all()
    # no instance at all: the whole thing region is void
    pan = fuse_semantic_and_instances(sem, np.zeros((0, 4, 6), bool), [], [], thing_ids=[1], stuff_area=0).panoptic
    assert (pan[sem == 1] == -1).all() and (pan[sem == 2] == 2000).all()


def test_instance_over_stuff_and_ignore_value() -> None:
    sem = np.array([[0, 0, 255, 255]], np.uint8)  # 255: an "ignore" value, not in stuff_ids
    inst = np.array([[[False, True, True, False]]])
    pred = fuse_semantic_and_instances(sem, inst, [4], [1.0], thing_ids=[4], stuff_ids=[0], stuff_area=0)
    assert pred.panoptic.tolist() == [[0, 4001, 4001, -1]]
    pred = fuse_semantic_and_instances(sem, inst, [4], [1.0], thing_ids=[4], stuff_area=0, void_label=7)
    assert pred.panoptic.tolist() == [[0, 4001, 4001, 255000]]


def test_box_relative_mask_is_pasted_into_its_box() -> None:
    sem = np.zeros((6, 6), np.uint8)
    mask = np.ones((1, 28, 28), np.float32)  # a Mask R-CNN mask, all on
    pan = fuse_semantic_and_instances(
        sem, mask, [1], [0.9], thing_ids=[1], stuff_area=0, boxes=np.array([[1.0, 2.0, 4.0, 5.0]])
    ).panoptic
    expect = np.zeros((6, 6), np.int32)
    expect[2:5, 1:4] = 1001
    np.testing.assert_array_equal(pan, expect)
    # a 2 x 2 bool mask whose left column is on, pasted into a 4-pixel-wide box: 2 columns
    mask = np.array([[[True, False], [True, False]]])
    pan = fuse_semantic_and_instances(
        sem, mask, [1], [0.9], thing_ids=[1], stuff_area=0, boxes=np.array([[0.0, 0.0, 4.0, 2.0]])
    ).panoptic
    assert (pan[:2, :2] == 1001).all() and (pan[:2, 2:] == 0).all() and (pan[2:] == 0).all()


def test_full_size_mask_is_cut_to_its_box_and_outputs_follow_size() -> None:
    sem = np.zeros((2, 3), np.uint8)  # resized to 4 x 6 by size
    mask = np.ones((1, 4, 6), bool)
    pred = fuse_semantic_and_instances(
        sem, mask, [1], [0.9], thing_ids=[1], stuff_area=0, boxes=np.array([[0.5, 0.0, 2.0, 1.0]]), size=(4, 6)
    )
    assert pred.panoptic.shape == (4, 6)
    assert pred.panoptic[0].tolist() == [1001, 1001, 0, 0, 0, 0]
    assert (pred.panoptic[1:] == 0).all()


def test_logits_are_reduced_by_argmax() -> None:
    logits = np.zeros((3, 2, 2), np.float32)
    logits[2, 0, :] = 1.0
    logits[1, 1, :] = 1.0
    pan = fuse_semantic_and_instances(logits, np.zeros((0, 2, 2), bool), [], [], thing_ids=[1], stuff_area=0).panoptic
    assert pan.tolist() == [[2000, 2000], [-1, -1]]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(classes=[1, 2]), r"classes\[1\]: instance 1 has class 2, which is not a thing class"),
        (dict(classes=[1, 0]), r"classes\[1\]: instance 1 has class 0"),
        (dict(scores=[0.5]), r"scores: expected 2 entries"),
        (dict(scores=[0.5, float("nan")]), r"scores\[1\]: expected a finite score"),
        (dict(masks=np.stack([np.zeros((4, 4)), np.full((4, 4), np.nan)])), r"masks\[1\]: contains NaN or Inf"),
        (dict(masks=np.full((2, 2, 2), np.inf)), r"masks\[0\]: contains NaN or Inf"),
        (dict(masks=[np.zeros((4, 4), bool)] * 2), r"masks\[0\]: expected an RLE dict \(masks is a list\)"),
        (dict(classes=[1.0, 1.0]), r"classes: expected integer class ids"),
        (dict(masks=np.zeros((2, 4), bool)), r"masks: expected \(N, H, W\)"),
        (dict(masks=np.zeros((3, 4, 4), bool)), r"masks: 3 masks for 2 classes/scores"),
        (dict(masks=np.zeros((2, 4, 4), np.int32)), r"masks: expected dtype bool, uint8 or float, got int32"),
        (dict(masks=[{"size": [4, 4], "counts": [16]}, {"size": [4, 4]}]), r"masks\[1\]: missing field 'counts'"),
        (dict(masks=[{"size": [4, 4], "counts": [16]}, {"size": [4, 4], "counts": [3, 3]}]), r"masks\[1\]: run"),
        (dict(semantic=np.zeros((4, 4), np.float32)), r"semantic: a \(H, W\) class map must be integer"),
        (dict(semantic=np.full((4, 4), -1)), r"semantic: class ids must be >= 0"),
        (dict(semantic=np.zeros(4, np.uint8)), r"semantic: expected \(H, W\) class ids or \(C, H, W\)"),
        (dict(boxes=np.zeros((2, 3))), r"boxes: expected shape \(2, 4\)"),
        (dict(boxes=np.array([[0, 0, 2, 2], [3, 0, 1, 2]])), r"boxes\[1\]: expected x1 <= x2"),
        (dict(size=(4,)), r"size: expected \(H, W\)"),
    ],
)
def test_bad_input_names_the_argument(change: dict, match: str) -> None:
    args = dict(
        semantic=np.zeros((4, 4), np.uint8),
        masks=np.zeros((2, 4, 4), bool),
        classes=[1, 1],
        scores=[0.9, 0.8],
    )
    kwargs = {k: change.pop(k) for k in ("boxes", "size") if k in change}
    args.update(change)
    with pytest.raises((InputShapeError, FormatError), match=match):
        fuse_semantic_and_instances(*args.values(), thing_ids=[1], stuff_area=0, **kwargs)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(overlap_threshold=float("nan")), "overlap_threshold: expected a finite number"),
        (dict(overlap_threshold=-0.1), "overlap_threshold: must be >= 0"),
        (dict(stuff_area=-1), "stuff_area: must be >= 0"),
        (dict(stuff_area=1.5), "stuff_area: expected an integer"),
        (dict(label_divisor=0), "label_divisor: must be >= 1"),
        (dict(thing_ids=[-1]), "thing_ids: class ids must be >= 0"),
    ],
)
def test_bad_settings_name_the_setting(kw: dict, match: str) -> None:
    kw = {"thing_ids": [1], **kw}
    with pytest.raises(InputShapeError, match=match):
        fuse_semantic_and_instances(np.zeros((4, 4), np.uint8), np.zeros((0, 4, 4), bool), [], [], **kw)


def test_too_many_instances_of_one_class() -> None:
    masks = np.eye(12, dtype=bool).reshape(12, 3, 4)
    with pytest.raises(InputShapeError, match="more than 9 instances of class 1"):
        fuse_semantic_and_instances(
            np.zeros((3, 4), np.uint8), masks, [1] * 12, [0.9] * 12, thing_ids=[1], label_divisor=10, stuff_area=0
        )


# ---------------------------------------------------------------------------------------------
# RLE
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(25))
def test_rle_round_trip_and_pycocotools_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 60, 2))
    mask = rng.random((h, w)) < rng.random()
    if seed % 3 == 0:  # long runs, across column borders
        mask[:] = False
        mask[rng.integers(0, h) :, rng.integers(0, w) :] = True
    if seed == 1:
        mask[:] = True
    ref = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    ours = rle_encode(mask)
    assert ours == {"size": [h, w], "counts": ref["counts"].decode("ascii")}
    np.testing.assert_array_equal(rle_decode(ours), mask)
    np.testing.assert_array_equal(coco_mask.decode({"size": [h, w], "counts": ours["counts"].encode()}), mask)
    assert rle_area(ours) == int(coco_mask.area(ref)) == int(mask.sum())
    listed = rle_encode(mask, compress=False)
    np.testing.assert_array_equal(rle_decode(listed), mask)
    assert counts_to_string(listed["counts"]) == ours["counts"]
    assert rle_counts(ours).tolist() == listed["counts"] == oracle_string_to_counts(ours["counts"])
    np.testing.assert_array_equal(np.array(oracle_rle_decode(ours)), mask)
    # the tight box, and a window of the mask
    if mask.any():
        ys, xs = np.nonzero(mask)
        assert rle_bbox(ours) == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
        x, y, bw, bh = coco_mask.toBbox(ref).tolist()
        assert (y, y + bh, x, x + bw) == rle_bbox(ours)
    else:
        assert rle_bbox(ours) is None
    y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
    y1, x1 = int(rng.integers(y0, h + 1)), int(rng.integers(x0, w + 1))
    np.testing.assert_array_equal(rle_decode(ours, (y0, y1, x0, x1)), mask[y0:y1, x0:x1])
    # many labels at once, as one mask each
    labels = rng.integers(0, 4, (h, w))
    for i, rle in zip(range(-1, 5), encode_label_map(labels, range(-1, 5))):
        assert rle == rle_encode(labels == i)


def test_rle_strings_of_large_counts() -> None:
    counts = np.array([5, 10**9, 3, 2**31, 7, 1, 0, 12345678, 0, 2**40])
    assert string_to_counts(counts_to_string(counts)).tolist() == counts.tolist()
    assert oracle_string_to_counts(counts_to_string(counts)) == counts.tolist()
    # pycocotools reads what we write, at 1024 x 2048
    mask = np.zeros((1024, 2048), np.uint8)
    mask[100:900, 5:2000] = 1
    mask[500:510, :] = 0
    rle = rle_encode(mask)
    np.testing.assert_array_equal(coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}), mask)
    assert rle["counts"] == coco_mask.encode(np.asfortranarray(mask))["counts"].decode()


@pytest.mark.parametrize(
    "rle, match",
    [
        ({"size": [2, 2], "counts": "0!"}, "character '!' is not part of a COCO RLE string"),
        ({"size": [2, 2], "counts": "0P"}, "ends in the middle of a number"),
        ({"size": [2, 2], "counts": [1, 2]}, r"add up to 3 pixels, but size \[2, 2\] has 4"),
        ({"size": [2, 2], "counts": [5, -1]}, "run lengths must be >= 0"),
        ({"size": [2], "counts": [4]}, r"rle.size: expected \[h, w\]"),
        ({"size": [2, 2], "counts": 4}, "rle.counts: expected a string or a list of integers"),
        ([4], "expected an RLE dict"),
    ],
)
def test_malformed_rle_is_a_format_error(rle, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        rle_decode(rle)


def test_core_needs_no_pycocotools() -> None:
    """edgeps.fusion, edgeps.io.rle and the fuse command import and run with pycocotools (and
    torch) blocked: pycocotools is a test dependency only."""
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pycocotools", "torch"):
                    raise ImportError(f"blocked for this test: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import edgeps.apps.commands.fuse
        from edgeps.fusion import fuse_semantic_and_instances
        from edgeps.io.rle import rle_decode, rle_encode

        mask = np.zeros((1, 4, 5), bool); mask[0, 1:3, 1:4] = True
        rle = rle_encode(mask[0])
        assert (rle_decode(rle) == mask[0]).all()
        pan = fuse_semantic_and_instances(np.zeros((4, 5), np.uint8), [rle], [1], [0.9], thing_ids=[1], stuff_area=0)
        assert set(np.unique(pan.panoptic).tolist()) == {0, 1001}
        assert not [m for m in sys.modules if m.split(".")[0] in ("pycocotools", "torch")]
        print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


# ---------------------------------------------------------------------------------------------
# panoptic segments -> COCO instance results
# ---------------------------------------------------------------------------------------------
def test_panoptic_to_instances() -> None:
    pan = np.full((6, 8), 2000, np.int32)
    pan[:3, :3] = 1001
    pan[4:, 5:] = 1002
    pan[3, :] = -1
    pan[5, 0] = 3000  # a thing class with instance 0: a crowd region, not an instance
    sem = np.full((6, 8), 2, np.uint8)
    results = panoptic_to_instances(pan, {1001: 0.9, 1002: 0.4}, thing_ids=[1, 3], image_id=7)
    assert [(r["image_id"], r["category_id"], r["score"]) for r in results] == [(7, 1, 0.9), (7, 1, 0.4)]
    for r, pid in zip(results, (1001, 1002)):
        np.testing.assert_array_equal(
            coco_mask.decode({**r["segmentation"], "counts": r["segmentation"]["counts"]}), pan == pid
        )
        assert r["area"] == int((pan == pid).sum())
        x, y, w, h = coco_mask.toBbox(r["segmentation"]).tolist()
        assert r["bbox"] == [x, y, w, h]
    # back through the fusion: the same instances, the same scores
    masks, classes, scores = instances_from_coco_results(results)
    pred = fuse_semantic_and_instances(sem, masks, classes, scores, thing_ids=[1, 3], stuff_area=0, score_threshold=0)
    assert pred.scores == {1001: 0.9, 1002: 0.4}
    np.testing.assert_array_equal(pred.panoptic == 1001, pan == 1001)
    np.testing.assert_array_equal(pred.panoptic == 1002, pan == 1002)
    # from a prediction: its own scores, and a category map
    again = panoptic_to_instances(pred, thing_ids=[1], image_id="a", category_map={1: 17})
    assert [(r["category_id"], r["score"]) for r in again] == [(17, 0.9), (17, 0.4)]
    with pytest.raises(InputShapeError, match=r"scores: no score for thing segment\(s\) \[1002\]"):
        panoptic_to_instances(pan, {1001: 0.9}, thing_ids=[1], image_id=7)
    with pytest.raises(InputShapeError, match=r"category_map: no category_id for class\(es\) \[1\]"):
        panoptic_to_instances(pred, thing_ids=[1], image_id=7, category_map={3: 4})


def test_panoptic_to_instances_scores_ap_1_with_cocoeval() -> None:
    """The results load into pycocotools and score AP 1.0 against the same segments as GT."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    pan = np.full((40, 50), 2000, np.int32)
    for i in range(6):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        pan[y : y + 10, x : x + 10] = 1001 + i
    results = panoptic_to_instances(pan, {1001 + i: 0.9 - 0.1 * i for i in range(6)}, thing_ids=[1], image_id=1)
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "height": 40, "width": 50}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {
                **{k: r[k] for k in ("segmentation", "area", "bbox", "category_id", "image_id")},
                "id": j + 1,
                "iscrowd": 0,
            }
            for j, r in enumerate(results)
        ],
    }
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(results), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# edgeps fuse, end to end on the COCO sample
# ---------------------------------------------------------------------------------------------
PERSON, HORSE, DOG = 1, 19, 18
IMG_A, IMG_B = 142238, 439180


class Inputs:
    """Instance results, semantic PNGs and JSON files derived from the COCO sample's GT."""

    def __init__(self, coco_sample: Path, root: Path) -> None:
        self.gt_json = coco_sample / "panoptic_examples.json"
        self.gt_dir = coco_sample / "panoptic_examples"
        self.categories_json = coco_sample / "panoptic_coco_categories.json"
        self.gt = read_json(self.gt_json)
        cats = {c["id"]: c for c in read_json(self.categories_json)}
        self.root = root
        self.sem_dir = root / "semantic"
        self.sem_dir.mkdir()
        self.instances: list[dict] = []
        self.semantic_rles: list[dict] = []
        score = 0.99
        for ann in self.gt["annotations"]:
            ids = read_id_png(self.gt_dir / ann["file_name"])
            sem = np.zeros(ids.shape, np.uint8)  # 0 is no COCO category: void
            for seg in ann["segments_info"]:
                region = ids == seg["id"]
                sem[region] = seg["category_id"]
                if cats[seg["category_id"]]["isthing"] and not seg["iscrowd"]:
                    rle = coco_mask.encode(np.asfortranarray(region.astype(np.uint8)))
                    self.instances.append(
                        {
                            "image_id": ann["image_id"],
                            "category_id": seg["category_id"],
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                            "score": score,
                            "gt_id": seg["id"],
                        }
                    )
                    score -= 0.01
            assert cv2.imwrite(str(self.sem_dir / ann["file_name"]), sem)
            for cat in np.unique(sem).tolist():
                if cat:
                    rle = coco_mask.encode(np.asfortranarray((sem == cat).astype(np.uint8)))
                    self.semantic_rles.append(
                        {
                            "image_id": ann["image_id"],
                            "category_id": cat,
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                        }
                    )
        self.images_json = root / "images.json"
        self.images_json.write_text(json.dumps({"images": self.gt["images"]}))

    def n_segments(self, cat: int) -> int:
        return sum(
            1
            for a in self.gt["annotations"]
            for s in a["segments_info"]
            if s["category_id"] == cat and not s["iscrowd"]
        )

    def fuse(self, name: str, instances: list[dict], *extra: str, semantic: str = "png") -> tuple[Path, Path]:
        inst_json = self.root / f"{name}_instances.json"
        inst_json.write_text(json.dumps(instances))
        out_json = self.root / f"{name}.json"
        if semantic == "png":
            sem_args = ["--semseg-dir", str(self.sem_dir)]
        else:
            sem_json = self.root / f"{name}_semantic.json"
            sem_json.write_text(json.dumps(self.semantic_rles))
            sem_args = ["--semseg_json_file", str(sem_json)]
        argv = [
            "fuse",
            "--instseg-json",
            str(inst_json),
            *sem_args,
            "--images-json",
            str(self.images_json),
            "--categories-json",
            str(self.categories_json),
            "--panoptic-json",
            str(out_json),
            "--no-progress",
            *extra,
        ]
        assert main(argv) == 0
        return out_json, out_json.with_suffix("")

    def evaluate(self, out: tuple[Path, Path]) -> dict:
        return evaluate_coco_panoptic(self.gt_json, self.gt_dir, *out)


@pytest.fixture
def inputs(coco_sample: Path, tmp_path: Path) -> Inputs:
    return Inputs(coco_sample, tmp_path)


def test_fuse_gt_derived_inputs_is_perfect(inputs: Inputs) -> None:
    out = inputs.fuse("identity", inputs.instances, "--stuff-area-limit", "0")
    res = inputs.evaluate(out)
    # 8 categories with non-crowd GT segments (4 things, 4 stuff), all perfect
    assert res["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 8}
    assert res["Things"]["n"] == 4 and res["Stuff"]["n"] == 4
    assert res["per_class"][PERSON]["tp"] == inputs.n_segments(PERSON) == 26
    data = read_json(out[0])
    assert [a["image_id"] for a in data["annotations"]] == [IMG_A, IMG_B]
    assert data["categories"] == read_json(inputs.categories_json)
    scores = [s["score"] for a in data["annotations"] for s in a["segments_info"] if "score" in s]
    assert len(scores) == len(inputs.instances)  # every instance kept, with its score
    # the semantic JSON input and the underscore flags give the same output
    out2 = inputs.fuse(
        "identity_json", inputs.instances, "--stuff_area_limit", "0", "--confidence_thr", "0.5", semantic="json"
    )
    assert read_json(out2[0])["annotations"] == data["annotations"]
    for a in data["annotations"]:
        np.testing.assert_array_equal(read_id_png(out2[1] / a["file_name"]), read_id_png(out[1] / a["file_name"]))


def test_fuse_with_workers_matches_one_process(inputs: Inputs) -> None:
    one = inputs.fuse("one", inputs.instances, "--stuff-area-limit", "0")
    two = inputs.fuse("two", inputs.instances, "--stuff-area-limit", "0", "--workers", "2")
    assert read_json(one[0])["annotations"] == read_json(two[0])["annotations"]
    for a in read_json(one[0])["annotations"]:
        np.testing.assert_array_equal(read_id_png(one[1] / a["file_name"]), read_id_png(two[1] / a["file_name"]))


def test_fuse_dropped_or_unconfident_instance_is_one_false_negative(inputs: Inputs) -> None:
    n_person = inputs.n_segments(PERSON)
    tp, fn = n_person - 1, 1
    expect_person = 1.0 * tp / (tp + 0.5 * fn)  # SQ 1 (exact masks) x RQ
    victim = next(i for i, r in enumerate(inputs.instances) if r["category_id"] == PERSON)
    # (a) the instance is missing from the results
    dropped = [r for i, r in enumerate(inputs.instances) if i != victim]
    # (b) it is there, but under the confidence threshold
    unconfident = [dict(r, score=0.2) if i == victim else r for i, r in enumerate(inputs.instances)]
    for name, inst in (("dropped", dropped), ("unconfident", unconfident)):
        res = inputs.evaluate(inputs.fuse(name, inst, "--stuff-area-limit", "0"))
        c = res["per_class"][PERSON]
        assert (c["tp"], c["fp"], c["fn"]) == (tp, 0, fn)
        assert c["pq"] == pytest.approx(expect_person, abs=EPS)
        assert res["All"]["pq"] == pytest.approx((7 + expect_person) / 8, abs=EPS)
        assert res["Things"]["pq"] == pytest.approx((3 + expect_person) / 4, abs=EPS)
        assert res["Stuff"]["pq"] == 1.0


def test_fuse_relabelled_instance_and_overlapping_duplicate(inputs: Inputs) -> None:
    n_horse = inputs.n_segments(HORSE)
    victim = next(i for i, r in enumerate(inputs.instances) if r["category_id"] == HORSE)
    relabelled = [dict(r, category_id=DOG) if i == victim else r for i, r in enumerate(inputs.instances)]
    # a lower-scored copy of another instance: more than half of it is taken, so it is dropped
    dup = dict(inputs.instances[victim + 1], score=0.01)
    res = inputs.evaluate(
        inputs.fuse("relabelled", [*relabelled, dup], "--stuff-area-limit", "0", "--confidence-thr", "0")
    )
    horse = res["per_class"][HORSE]
    assert (horse["tp"], horse["fp"], horse["fn"]) == (n_horse - 1, 0, 1)
    dog = res["per_class"][DOG]
    assert (dog["tp"], dog["fp"], dog["fn"]) == (0, 1, 0)
    pq_horse = (n_horse - 1) / (n_horse - 1 + 0.5)
    # dog now counts (one FP, PQ 0): 9 classes, 5 things
    assert res["All"]["n"] == 9 and res["Things"]["n"] == 5
    assert res["All"]["pq"] == pytest.approx((7 + pq_horse) / 9, abs=EPS)
    assert res["Things"]["pq"] == pytest.approx((3 + pq_horse) / 5, abs=EPS)


@pytest.mark.parametrize("limit", ["8204", "8204.5", "12912", "64000"])
def test_fuse_stuff_area_limit_voids_small_stuff(inputs: Inputs, limit: str) -> None:
    """A stuff segment is kept iff its area is at least the limit (a fractional limit rounds
    up: areas are integers). Each stuff class is one GT segment per image here, and no
    instance covers stuff, so the leftover area is the GT segment's area."""
    isthing = {c["id"]: c["isthing"] for c in read_json(inputs.categories_json)}
    stuff = {
        (a["image_id"], s["category_id"]): s["area"]
        for a in inputs.gt["annotations"]
        for s in a["segments_info"]
        if not isthing[s["category_id"]]
    }
    assert 8204 in stuff.values() and 12912 in stuff.values()  # sky in image A, sky in image B
    out = inputs.fuse(f"limit_{limit}", inputs.instances, "--stuff-area-limit", limit)
    data = read_json(out[0])
    kept = {
        (a["image_id"], s["category_id"]): s["area"]
        for a in data["annotations"]
        for s in a["segments_info"]
        if not isthing[s["category_id"]]
    }
    assert kept == {key: area for key, area in stuff.items() if area >= float(limit)}
    # the dropped stuff pixels are void (0) in the PNGs
    for a in data["annotations"]:
        ids = read_id_png(out[1] / a["file_name"])
        assert int((ids != 0).sum()) == sum(s["area"] for s in a["segments_info"])


def test_fuse_errors_are_one_line(inputs: Inputs, capsys: pytest.CaptureFixture[str]) -> None:
    bad = [dict(inputs.instances[0], category_id=193)]  # grass: a stuff category
    path = inputs.root / "bad.json"
    path.write_text(json.dumps(bad))
    argv = [
        "fuse",
        "--instseg-json",
        str(path),
        "--semseg-dir",
        str(inputs.sem_dir),
        "--images-json",
        str(inputs.images_json),
        "--categories-json",
        str(inputs.categories_json),
        "--panoptic-json",
        str(inputs.root / "out.json"),
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"edgeps fuse: error: {path}[0].category_id: 193 is a stuff category in {inputs.categories_json}; "
        "instances must be things"
    )
    path.write_text(json.dumps([{k: v for k, v in inputs.instances[0].items() if k != "score"}]))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"edgeps fuse: error: {path}[0]: missing field 'score'"
    path.write_text(json.dumps([dict(inputs.instances[0], segmentation=[[0, 0, 5, 0, 5, 5]])]))
    assert main(argv) == 2
    assert "polygons are not supported" in capsys.readouterr().err
    broken = [dict(r) for r in inputs.instances]
    broken[3]["segmentation"] = {"size": broken[3]["segmentation"]["size"], "counts": "0!"}
    path.write_text(json.dumps(broken))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"edgeps fuse: error: {path}[3].segmentation.counts: character '!' is not part of a COCO RLE string "
        "(expected '0'..'o')"
    )
    path.write_text(json.dumps(inputs.instances))
    assert main([*argv[:4], str(inputs.root / "nowhere"), *argv[5:]]) == 2
    assert "--semseg-dir: folder not found" in capsys.readouterr().err
