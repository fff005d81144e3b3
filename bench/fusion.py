"""Speed of the semantic + instance fusion (edgeps.fusion) against a plain full-image loop.

Synthetic Cityscapes-sized inputs: a 19-class uint8 semantic map of large regions, and
``--instances`` thing instances (classes 11..18) as full-size bool masks (filled ellipses in
boxes of 16..400 pixels a side) with their boxes and scores in [0.5, 1). Timed, median of
``--repeats`` runs each, all in one process on the same inputs:

- ``edgeps fusion (bool masks + boxes)``: :func:`fuse_semantic_and_instances`;
- ``full-image loop``: the same rules written the way detectron2's
  ``combine_semantic_and_instance_outputs`` does them, every step on whole-image masks
  (numpy on the CPU); its map must equal the fusion's, or the script stops;
- ``RLE decode``: :func:`edgeps.io.rle.rle_decode` of the N masks as COCO RLE, all results
  kept (N fresh full-size arrays: allocation and page faults are most of it) and one at a
  time (memory reused); pycocotools' decode beside it when installed;
- ``edgeps fusion (RLE input)``: the fusion fed the RLEs (each decoded inside its box only).

    .venv/bin/python bench/fusion.py [--instances 100] [--size 1024x2048] [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps.fusion import fuse_semantic_and_instances
from edgeps.io.rle import rle_decode, rle_encode

THINGS = list(range(11, 19))  # Cityscapes train ids of the thing classes
N_CLASSES = 19


def make_inputs(size: tuple[int, int], n: int, seed: int) -> dict[str, Any]:
    """Semantic map, masks (N, H, W) bool, boxes (N, 4), classes and scores."""
    rng = np.random.default_rng(seed)
    h, w = size
    coarse = rng.integers(0, N_CLASSES, (16, 32)).astype(np.uint8)
    semantic = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    masks = np.zeros((n, h, w), dtype=bool)
    boxes = np.zeros((n, 4), dtype=np.float64)
    for i in range(n):
        bw, bh = (int(v) for v in np.exp(rng.uniform(np.log(16), np.log(400), 2)))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        canvas = np.zeros((bh, bw), np.uint8)
        cv2.ellipse(canvas, (bw // 2, bh // 2), (max(bw // 2 - 1, 1), max(bh // 2 - 1, 1)), 0, 0, 360, 1, -1)
        masks[i, y0 : y0 + bh, x0 : x0 + bw] = canvas.astype(bool)
        boxes[i] = (x0, y0, x0 + bw, y0 + bh)
    return {
        "semantic": semantic,
        "masks": masks,
        "boxes": boxes,
        "classes": rng.choice(THINGS, n),
        "scores": rng.uniform(0.5, 1.0, n),
    }


def full_image_loop(
    semantic: np.ndarray,
    masks: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    *,
    thing_ids: list[int],
    overlap_threshold: float = 0.5,
    stuff_area: int = 4096,
    score_threshold: float = 0.5,
    label_divisor: int = 1000,
    void_label: int = -1,
) -> np.ndarray:
    """The fusion rules as detectron2's ``combine_semantic_and_instance_outputs`` loops them:
    every instance and every class on whole-image masks."""
    panoptic = np.full(semantic.shape, void_label, dtype=np.int32)
    taken = np.zeros(semantic.shape, dtype=bool)
    number: dict[int, int] = {}
    for k in np.argsort(-scores, kind="stable"):
        if scores[k] < score_threshold:
            continue
        mask = masks[k]
        area = int(mask.sum())
        if area == 0:
            continue
        intersect = int((mask & taken).sum())
        if intersect / area > overlap_threshold or intersect == area:
            continue
        if intersect > 0:
            mask = mask & ~taken
        c = int(classes[k])
        number[c] = number.get(c, 0) + 1
        panoptic[mask] = c * label_divisor + number[c]
        taken |= mask
    for c in np.unique(semantic).tolist():
        if c in thing_ids:
            continue
        mask = (semantic == c) & ~taken
        if int(mask.sum()) < stuff_area:
            continue
        panoptic[mask] = c * label_divisor
    return panoptic


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (first-touch of pages, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--size", default="1024x2048", help="H x W")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, dest="json_out", help="also write the figures here")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    x = make_inputs((h, w), args.instances, args.seed)
    kw = dict(thing_ids=THINGS, overlap_threshold=0.5, stuff_area=4096, score_threshold=0.5)

    pred = fuse_semantic_and_instances(x["semantic"], x["masks"], x["classes"], x["scores"], boxes=x["boxes"], **kw)
    loop = full_image_loop(x["semantic"], x["masks"], x["classes"], x["scores"], **kw)
    if not np.array_equal(pred.panoptic, loop):
        print("the full-image loop and edgeps.fusion disagree: stopping", file=sys.stderr)
        return 1
    rles = [rle_encode(m) for m in x["masks"]]
    from_rle = fuse_semantic_and_instances(x["semantic"], rles, x["classes"], x["scores"], **kw).panoptic
    if not np.array_equal(from_rle, loop):
        print("the fusion from RLE disagrees with the bool masks: stopping", file=sys.stderr)
        return 1

    rows: dict[str, float] = {}
    rows["edgeps fusion (bool masks + boxes)"] = median_ms(
        lambda: fuse_semantic_and_instances(
            x["semantic"], x["masks"], x["classes"], x["scores"], boxes=x["boxes"], **kw
        ),
        args.repeats,
    )
    rows["full-image loop (detectron2 style, numpy)"] = median_ms(
        lambda: full_image_loop(x["semantic"], x["masks"], x["classes"], x["scores"], **kw), args.repeats
    )
    decoders = {"edgeps.io.rle": rle_decode}
    try:
        import pycocotools.mask as coco_mask
    except ImportError:
        coco_mask = None
    if coco_mask is not None:
        coco_rles = {id(r): {"size": r["size"], "counts": r["counts"].encode()} for r in rles}
        decoders["pycocotools"] = lambda r: coco_mask.decode(coco_rles[id(r)])
    for name, decode in decoders.items():
        # all kept (as a caller holding N masks does: fresh memory, page faults included), and
        # one at a time (each result dropped before the next: the memory is reused)
        rows[f"RLE decode {args.instances} full masks, all kept ({name})"] = median_ms(
            lambda decode=decode: [decode(r) for r in rles], args.repeats
        )
        rows[f"RLE decode {args.instances} full masks, one at a time ({name})"] = median_ms(
            lambda decode=decode: [decode(r).shape for r in rles], args.repeats
        )
    rows["edgeps fusion (RLE input, decoded in boxes)"] = median_ms(
        lambda: fuse_semantic_and_instances(x["semantic"], rles, x["classes"], x["scores"], **kw), args.repeats
    )

    box_area = (x["boxes"][:, 2] - x["boxes"][:, 0]) * (x["boxes"][:, 3] - x["boxes"][:, 1])
    print(
        f"{h}x{w}, {args.instances} instances (mean box {box_area.mean():.0f} px, {len(pred.scores)} kept), "
        f"{N_CLASSES}-class uint8 semantic map; median of {args.repeats}; cv2 threads {cv2.getNumThreads()}"
    )
    for name, ms in rows.items():
        print(f"  {name:<62}{ms:9.2f} ms")
    speedup = rows["full-image loop (detectron2 style, numpy)"] / rows["edgeps fusion (bool masks + boxes)"]
    print(f"  fusion vs full-image loop: {speedup:.1f}x")
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps(
                {
                    "size": [h, w],
                    "instances": args.instances,
                    "kept": len(pred.scores),
                    "repeats": args.repeats,
                    "median_ms": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
