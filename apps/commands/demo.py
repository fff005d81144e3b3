"""``edgeps demo``: the whole pipeline after the network, on data made on the spot.

Synthetic street layouts (ground truth) -> heads an imperfect network would give -> the
post-processing -> COCO-panoptic files -> PQ with the COCO rules -> overlay images. Nothing
is downloaded; everything lands in ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from edgeps.apps.commands.data import parse_size
from edgeps.data.synthetic import SYNTH_CATEGORIES, noisy_heads, random_scene
from edgeps.io.coco_panoptic import panoptic_to_coco, write_coco_panoptic
from edgeps.metrics import evaluate_coco_panoptic
from edgeps.postprocess import panoptic_from_heads
from edgeps.visualize import colorize, overlay

NAME = "demo"
HELP = "post-processing + PQ demonstration on synthetic data (no download)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    parser.add_argument("--n", type=int, default=8, help="number of synthetic frames")
    parser.add_argument("--size", default="512x1024", help="frame size HxW")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    h, w = parse_size(args.size)
    out = Path(args.out)
    gt_entries, pred_entries, timings = [], [], []
    for i in range(args.n):
        gt = random_scene(h, w, n_instances=30, seed=args.seed + i)
        sem, center, offsets = noisy_heads(gt, seed=args.seed + i, extra_peaks=50)
        t0 = time.perf_counter()
        pred = panoptic_from_heads(sem, center, offsets, thing_ids=SYNTH_CATEGORIES.thing_ids, stuff_area=512)
        timings.append((time.perf_counter() - t0) * 1e3)
        name = f"{i:06d}.png"
        gt_entries.append((i, name, *panoptic_to_coco(gt, SYNTH_CATEGORIES)))
        pred_entries.append((i, name, *panoptic_to_coco(pred, SYNTH_CATEGORIES)))
        if i < 3:
            # The "camera image" here is the ground truth's colour map with noise.
            image = colorize(gt, SYNTH_CATEGORIES)
            image = cv2.add(image, np.random.default_rng(i).integers(0, 40, image.shape, dtype=np.uint8))
            out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / f"overlay_{i:06d}.jpg"), overlay(image, pred, SYNTH_CATEGORIES, legend=True))
    write_coco_panoptic(out / "gt.json", out / "gt", gt_entries, SYNTH_CATEGORIES)
    write_coco_panoptic(out / "pred.json", out / "pred", pred_entries, SYNTH_CATEGORIES)
    result = evaluate_coco_panoptic(out / "gt.json", out / "gt", out / "pred.json", out / "pred")
    print(f"{args.n} synthetic frames at {h}x{w}; post-processing median {np.median(timings):.1f} ms/frame")
    print(f"{'':8} {'PQ':>6} {'SQ':>6} {'RQ':>6} {'n':>3}")
    for key in ("All", "Things", "Stuff"):
        r = result[key]
        print(f"{key:8} {100 * r['pq']:6.1f} {100 * r['sq']:6.1f} {100 * r['rq']:6.1f} {r['n']:3d}")
    print(f"files: {out}/gt.json, {out}/pred.json, overlays {out}/overlay_*.jpg")
    print(f"re-score with: edgeps eval-coco --gt-json {out}/gt.json --gt-dir {out}/gt --pred-json {out}/pred.json --pred-dir {out}/pred")
    return 0
