"""``edgeps bench-postprocess``: time the post-processing alone on synthetic heads.

The heads imitate a busy street frame: stuff bands, many overlapping thing instances with
offsets that point at their centers (plus noise), label noise, and extra heatmap peaks so
that ``top_k`` binds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgeps.data.synthetic import SYNTH_CATEGORIES, noisy_heads, random_scene
from edgeps.postprocess import find_instance_centers, panoptic_from_heads

THING_IDS = tuple(SYNTH_CATEGORIES.thing_ids)


N_LOGIT_CLASSES = 19  # Cityscapes-sized logits for the argmax cost


def bench_heads(
    h: int, w: int, n_instances: int = 60, extra_peaks: int = 260, label_noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(semantic, center, offsets, stats) for a busy synthetic frame."""
    pan = random_scene(h, w, n_instances=n_instances, seed=seed)
    sem, center, offsets = noisy_heads(pan, seed=seed, extra_peaks=extra_peaks, label_noise=label_noise)
    peaks, _ = find_instance_centers(center, threshold=0.1, nms_kernel=7, top_k=None)
    stats = {
        "gt_instances": int(np.unique(pan[(pan % 1000) > 0]).size),
        "thing_fraction": float(np.isin(sem, THING_IDS).mean()),
        "peaks_above_threshold": len(peaks),
    }
    return sem, center, offsets, stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="512x1024,1024x2048", help="comma-separated HxW sizes")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per size (median reported)")
    parser.add_argument("--instances", type=int, default=60)
    parser.add_argument("--top-k", type=int, default=200)
    parser.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="fraction of pixels given a random class (salt noise, a slow case)",
    )
    parser.add_argument("--logits", action="store_true", help="also time the (C, H, W) logits path")
    parser.add_argument("--json", help="write the figures to this JSON file")


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run(args: argparse.Namespace) -> int:
    rows = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        sem, center, offsets, stats = bench_heads(h, w, n_instances=args.instances, label_noise=args.label_noise)

        def call(s=sem, c=center, o=offsets):
            return panoptic_from_heads(s, c, o, thing_ids=THING_IDS, top_k=args.top_k)

        pan = call()
        n_inst = int(np.unique(pan[pan % 1000 > 0]).size)
        row = {"size": size, "class_map_ms": _median_ms(call, args.repeats), "instances": n_inst, **stats}
        if args.logits:
            rng = np.random.default_rng(1)
            logits = rng.normal(0, 1, (N_LOGIT_CLASSES, h, w)).astype(np.float32)
            logits[sem, np.arange(h)[:, None], np.arange(w)[None, :]] += 5.0
            row["argmax_only_ms"] = _median_ms(lambda lg=logits: lg.argmax(axis=0), args.repeats)
            row["logits_path_ms"] = _median_ms(
                lambda lg=logits, c=center, o=offsets: panoptic_from_heads(
                    lg, c, o, thing_ids=THING_IDS, top_k=args.top_k
                ),
                max(3, args.repeats // 3),
            )
        rows.append(row)
        line = (
            f"{size:>10}: {row['class_map_ms']:7.2f} ms median of {args.repeats} "
            f"({n_inst} instances of {stats['gt_instances']}, {stats['thing_fraction'] * 100:.0f}% thing pixels, "
            f"{stats['peaks_above_threshold']} heatmap peaks > threshold, top_k {args.top_k})"
        )
        if args.logits:
            line += f" | logits path {row['logits_path_ms']:.1f} ms (argmax alone {row['argmax_only_ms']:.1f} ms)"
        print(line)
    if args.json:
        from edgeps.io.coco_panoptic import write_json

        write_json(args.json, rows)
    return 0
