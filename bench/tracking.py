"""Tracking quality of a bundle over several synthetic videos: id switches per 100 frames.

The demo scores one video (seed 7); one video is too few to tell a tracker or post-processing
change from noise. This renders (and caches) several videos with persistent object ids, runs
the bundle's model once per frame, keeps the heads in memory, and then scores every requested
setting of post-processing and tracker from those heads, so a sweep costs post-processing and
tracking time only.

    .venv/bin/python bench/tracking.py --bundle out/demo/bundles/openvino-fp32 \\
        --seeds 7,11,12,13,14,15 --post nms_kernel=7,11 --track iou_threshold=0.1,0.2

Each ``--post`` / ``--track`` entry is ``name=v1,v2,...``; the grid of all combinations is
scored. ``--oracle`` scores the tracker on the ground-truth masks renumbered per frame instead
of the model (the tracker's own share of the switches).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps.data.tracking_videos import cached_panoptic, files_digest, renumber_instances, synth_video
from edgeps.metrics import PanopticAccumulator
from edgeps.metrics.tracking import TrackingAccumulator
from edgeps.panoptic import segments_of
from edgeps.result import PanopticResult
from edgeps.runtimes import load
from edgeps.stream.tracker import Tracker


def _grid(entries: list[str]) -> list[dict[str, Any]]:
    names, values = [], []
    for e in entries:
        name, _, vals = e.partition("=")
        names.append(name)
        values.append([json.loads(v) for v in vals.split(",")])
    return [dict(zip(names, combo)) for combo in itertools.product(*values)] if names else [{}]


def video(cache: Path, seed: int, frames: int, size: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Decoded frames (BGR, as the stream sees them) and ground-truth id maps of one video."""
    return synth_video(cache, seed, frames, size)


def _renumber(pan: np.ndarray, rng: np.random.Generator, thing_ids: frozenset[int], ld: int) -> np.ndarray:
    return renumber_instances(pan, rng, thing_ids, ld)


def _results(rt: Any, cache: Path, seed: int, images: list[np.ndarray], post: dict) -> list[Any]:
    """Panoptic maps and segments of one video, cached on disk per bundle (its files), seed and settings
    (a tracker sweep then costs tracking time only)."""
    m = rt.manifest
    pans = cached_panoptic(cache, files_digest(rt.bundle_dir), seed, images, post, lambda img: rt.predict(img).panoptic)
    ld, void = m.postprocess.label_divisor, m.postprocess.void_label
    return [PanopticResult(p, segments_of(p, ld, void)) for p in pans]


def _picture(path: Path, shown: list, obj: np.ndarray) -> None:
    """The frames before and at a switch: each track in its own colour, its id at its centroid,
    the ground-truth object outlined in white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tiles = []
    for img, pan, segs in shown:
        out = img.copy()
        for seg in segs:
            if seg.track_id is None:
                continue
            colour = np.random.default_rng(seg.track_id).integers(64, 256, 3)
            mask = pan == seg.id
            out[mask] = (0.5 * out[mask] + 0.5 * colour).astype(np.uint8)
            ys, xs = np.nonzero(mask)
            cv2.putText(
                out, str(seg.track_id), (int(xs.mean()), int(ys.mean())), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2
            )
        contours, _ = cv2.findContours(obj.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 2)
        tiles.append(out)
    cv2.imwrite(str(path), np.concatenate(tiles, axis=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--seeds", default="7,11,12,13,14,15")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="512x1024")
    ap.add_argument("--cache", type=Path, default=Path("out/tracking-videos"))
    ap.add_argument("--post", action="append", default=[], help="post-processing setting grid, name=v1,v2")
    ap.add_argument("--track", action="append", default=[], help="Tracker setting grid, name=v1,v2")
    ap.add_argument(
        "--oracle", action="store_true", help="ground-truth masks renumbered per frame instead of the model"
    )
    ap.add_argument("--per-video", action="store_true", help="print switches per video and by kind")
    ap.add_argument("--verbose", action="store_true", help="print every switch")
    ap.add_argument("--dump", type=Path, help="write a picture of each switch (frames before and at it) here")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    seeds = [int(s) for s in args.seeds.split(",")]
    rt = load(args.bundle, threads=2)
    m = rt.manifest
    ld, void = m.postprocess.label_divisor, m.postprocess.void_label
    thing_ids = m.categories.thing_ids
    videos = {s: video(args.cache, s, args.frames, size) for s in seeds}
    base = {} if args.oracle else m.postprocess.to_dict()
    for post in _grid(args.post) if not args.oracle else [{}]:
        if post:
            rt.set_postprocess(**post)
        results = (
            {}
            if args.oracle
            else {s: _results(rt, args.cache, s, images, {**base, **post}) for s, (images, _) in videos.items()}
        )
        pq = PanopticAccumulator(m.categories, ld, void)  # the same maps for every tracker setting
        for n_track, track in enumerate(_grid(args.track)):
            total, frames, tracked, per = 0, 0, [], []
            kinds: dict[str, int] = {}
            for s, (images, gts) in videos.items():
                tracker = Tracker(thing_ids, label_divisor=ld, **track)
                acc = TrackingAccumulator(thing_ids, ld, void, min_area=int(0.005 * gts[0].size))
                rng = np.random.default_rng(s)
                shown: list[tuple[np.ndarray, np.ndarray, list]] = []
                born: dict[int, int] = {}
                for i, (img, gt) in enumerate(zip(images, gts)):
                    if args.oracle:
                        pan = _renumber(gt, rng, thing_ids, ld)
                        segs = segments_of(pan, ld, void)
                    else:
                        pan, segs = results[s][i].panoptic, results[s][i].segments
                        if n_track == 0:  # the same maps for every tracker setting
                            pq.update(pan, gt)
                    tracker.update(pan, segs, img)
                    n_events = len(acc.events)
                    acc.update(gt, pan, segs)
                    shown = [*shown[-1:], (img, pan, segs)]
                    alive = {seg.track_id for seg in segs if seg.track_id is not None}
                    for t in alive:
                        born.setdefault(t, i)
                    for ev in acc.events[n_events:]:
                        kind = ("new" if born[ev[3]] == i else "young" if i - born[ev[3]] <= 5 else "old") + (
                            "/old-alive" if ev[2] in alive else "/old-gone"
                        )
                        kinds[kind] = kinds.get(kind, 0) + 1
                        if args.verbose:
                            print(
                                f"  seed {s} frame {ev[0]}: object {ev[1]} track {ev[2]} -> {ev[3]} ({kind})",
                                flush=True,
                            )
                        if args.dump:
                            _picture(args.dump / f"seed{s}_f{ev[0]:03d}_obj{ev[1]}.png", shown, gt == ev[1])
                summ = acc.summary()
                total += summ["id_switches"]
                frames += summ["frames"]
                tracked.append(summ["tracked_fraction"])
                per.append(summ["id_switches"])
            line = f"post {post or '-'} track {track or '-'}: "
            line += f"switches {total} / {frames} frames = {100 * total / frames:.2f} per 100"
            line += f", tracked {100 * np.mean(tracked):.1f} %"
            if not args.oracle:
                r = pq.result()
                line += f", PQ {100 * r['All']['pq']:.1f} things {100 * r['Things']['pq']:.1f}"
            if args.per_video:
                line += f", per video {per}, kinds {dict(sorted(kinds.items()))}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
