"""``edgeps bench-postprocess``: time the post-processing alone on synthetic heads.

The heads imitate a busy street frame: stuff bands, many overlapping thing instances with
offsets that point at their centers (plus noise), label noise, and extra heatmap peaks so
that ``top_k`` binds. Beside each time it prints the floor: one ``np.copyto`` pass over the
same heads, timed in the same loop (calls alternate), and the ratio of the two; and what is left
on the host when the graph extracts the centers (``export --postprocess graph``: the host gets
the top-K candidates and does not scan the heatmap) and when it groups the pixels too
(``--postprocess grouping``: the host maps the instance output to its centers and votes the
classes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from edgeps.data.synthetic import SYNTH_CATEGORIES, noisy_heads, random_scene
from edgeps.postprocess import (
    find_instance_centers,
    group_pixels,
    panoptic_from_heads,
    panoptic_prediction_from_heads,
)

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


def graph_candidates(center: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """What a ``--postprocess graph`` export outputs for this heatmap (threshold 0.1, kernel 7):
    the top_k largest values of the peak map (0 off the peaks) and their flat indices."""
    peaks, scores = find_instance_centers(center, threshold=0.1, nms_kernel=7, top_k=None)
    k = min(top_k, center.size)
    index = np.zeros(k, np.int64)
    score = np.zeros(k, np.float32)
    best = np.argsort(-scores, kind="stable")[:k]
    index[: best.size] = peaks[best, 0] * center.shape[1] + peaks[best, 1]
    score[: best.size] = scores[best]
    return index, score


def graph_instance(sem: np.ndarray, offsets: np.ndarray, index: np.ndarray, score: np.ndarray) -> np.ndarray:
    """What a ``--postprocess grouping`` export outputs as ``instance`` for these heads (the host's
    grouping, numbered by candidate position: 1 + position, 0 off the thing pixels)."""
    keep = np.flatnonzero(score > 0)  # every candidate here is a peak or 0 (no K-th ties drawn)
    order = keep[np.argsort(index[keep], kind="stable")]
    centers = np.stack([index[order] // sem.shape[1], index[order] % sem.shape[1]], axis=1)
    labels = group_pixels(np.isin(sem, THING_IDS), offsets, centers).astype(np.int64)
    return np.where(labels > 0, order[np.maximum(labels - 1, 0)] + 1, 0).astype(np.int32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="512x1024,1024x2048", help="comma-separated HxW sizes")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per size (median reported)")
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


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    return _medians_ms([fn], repeats)[0]


def _medians_ms(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each function over ``repeats`` rounds, the functions alternating within a
    round (so a shared machine's load falls on all of them alike); one warm-up call each."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return [float(np.median(t)) for t in times]


def copy_pass(*heads: np.ndarray) -> Callable[[], None]:
    """A function doing one ``np.copyto`` pass over the heads into buffers made here: the floor."""
    buffers = [np.empty_like(h) for h in heads]

    def copy() -> None:
        for dst, src in zip(buffers, heads):
            np.copyto(dst, src)

    return copy


def run(args: argparse.Namespace) -> int:
    rows = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        sem, center, offsets, stats = bench_heads(h, w, n_instances=args.instances, label_noise=args.label_noise)

        def call(s=sem, c=center, o=offsets):
            return panoptic_from_heads(s, c, o, thing_ids=THING_IDS, top_k=args.top_k)

        candidates = graph_candidates(center, args.top_k)

        def call_graph_centers(s=sem, c=center, o=offsets, cand=candidates):
            return panoptic_prediction_from_heads(
                s, c, o, thing_ids=THING_IDS, top_k=args.top_k, compute_scores=False, center_candidates=cand
            ).panoptic

        instance = graph_instance(sem, offsets, *candidates)

        def call_graph_grouping(s=sem, c=center, o=offsets, cand=candidates, inst=instance):
            return panoptic_prediction_from_heads(
                s,
                c,
                o,
                thing_ids=THING_IDS,
                top_k=args.top_k,
                compute_scores=False,
                center_candidates=cand,
                instance=inst,
            ).panoptic

        pan = call()
        if not np.array_equal(call_graph_centers(), pan):
            raise RuntimeError("graph centers and host centers gave different maps")
        if not np.array_equal(call_graph_grouping(), pan):
            raise RuntimeError("graph grouping and host grouping gave different maps")
        n_inst = int(np.unique(pan[pan % 1000 > 0]).size)
        post_ms, graph_ms, grouping_ms, copy_ms = _medians_ms(
            [call, call_graph_centers, call_graph_grouping, copy_pass(sem, center, offsets)], args.repeats
        )
        row = {
            "size": size,
            "class_map_ms": post_ms,
            "graph_centers_ms": graph_ms,
            "copy_ms": copy_ms,
            "floor_ratio": post_ms / copy_ms,
            "graph_centers_floor_ratio": graph_ms / copy_ms,
            "graph_grouping_ms": grouping_ms,
            "graph_grouping_floor_ratio": grouping_ms / copy_ms,
            "instances": n_inst,
            **stats,
        }
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
            f"{size:>10}: {row['class_map_ms']:7.2f} ms median of {args.repeats}, "
            f"copy pass {copy_ms:.2f} ms, ratio {row['floor_ratio']:.1f}; centers in the graph: {graph_ms:.2f} ms, "
            f"ratio {row['graph_centers_floor_ratio']:.1f}; grouping in the graph: {grouping_ms:.2f} ms, "
            f"ratio {row['graph_grouping_floor_ratio']:.1f} "
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
