"""``edgeps demo``: the whole product on built-in data, from a fresh clone, no download.

1. train the default model (``configs/synth.yaml``) for a fixed budget, or reuse the one an
   earlier demo trained (same config),
2. export every backend installed here in FP32 and INT8, each through the parity gate,
3. render a synthetic street video with persistent object ids,
4. stream it through each bundle (threaded pipeline + tracker): PQ per backend against the
   video's ground truth, id switches, the annotated video; and benchmark each bundle right
   there (``edgeps bench``'s worker process: FPS, latency percentiles, RSS) between two timed
   passes of the stream, so the stream / inference-alone ratio compares figures taken a few
   seconds apart (these shared machines change speed by 1.5x over minutes),
5. the benchmark report (``edgeps bench``'s table, JSON and chart) and the ratios,
6. the README's pictures under ``OUT`` (``demo_frame.png``, ``bench.png``); ``--update-docs``
   also copies them over ``docs/demo_frame.png`` and ``docs/bench_chart.png`` (for maintainers).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
log = logging.getLogger("edgeps.demo")
BENCH_DATA = "synth:val:8"  # edgeps bench's default frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    parser.add_argument("--train-minutes", type=float, default=10.0, help="training budget in minutes (default 10)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "synth.yaml", help="training config")
    parser.add_argument("--retrain", action="store_true", help="train again even if OUT/train holds a model")
    parser.add_argument(
        "--formats", default="onnx,openvino,tflite", help="export formats (those not installed are skipped)"
    )
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument(
        "--target",
        default="auto",
        help="int8 target: auto (cpu-vnni when this CPU has VNNI, else generic), generic, cpu-vnni",
    )
    parser.add_argument("--frames", type=int, default=100, help="frames of the synthetic video")
    parser.add_argument("--video-size", default="512x1024", help="HxW of the synthetic video")
    parser.add_argument(
        "--threads", type=int, default=1, help="inference threads (1 on 2 cores: the other core runs the rest)"
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="also refresh the repository's docs/demo_frame.png and docs/bench_chart.png (maintainers)",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="accepted for old scripts; the demo writes under --out only"
    )


def _step(n: int, text: str) -> None:
    print(f"\n== {n}. {text}", flush=True)


def trained_checkpoint(out: Path, config: Path, minutes: float, retrain: bool) -> Path:
    """OUT/train/checkpoints/best.pt, trained now unless an earlier run left one for this config."""
    from edgeps.training.config import load_config
    from edgeps.training.trainer import train

    run_dir = out / "train"
    best = run_dir / "checkpoints" / "best.pt"
    stamp = run_dir / "demo_config.yaml"
    if best.is_file() and stamp.is_file() and stamp.read_text() == config.read_text() and not retrain:
        print(f"reusing {best} (trained by an earlier demo; --retrain to train again)")
        return best
    cfg = load_config(config)
    cfg.schedule.max_minutes = minutes
    if run_dir.exists():
        shutil.rmtree(run_dir)
    metrics = train(cfg, run_dir, show_progress=True)
    stamp.write_text(config.read_text())
    ev = metrics.get("final_eval", {}).get("All", {})
    print(
        f"trained {metrics['steps']} steps in {metrics['train_seconds'] / 60:.1f} min; held-out PQ "
        f"{100 * ev.get('pq', 0):.1f}"
    )
    return best


def export_all(checkpoint: Path, out: Path, formats: list[str], precisions: list[str], target: str) -> list[Path]:
    """Every installed format x precision; a format whose tools are missing or whose export
    fails is reported and skipped, the rest go on."""
    import importlib.util

    from edgeps.bundle import read_manifest
    from edgeps.errors import EdgepsError
    from edgeps.export.pipeline import export_bundles
    from edgeps.formats import BACKENDS, FORMATS
    from edgeps.hashing import file_sha256
    from edgeps.io.coco_panoptic import write_json

    sha = file_sha256(checkpoint)
    stamp = {"checkpoint_sha256": sha, "target": target}
    bundles = []
    for fmt in formats:
        missing = [p for p in FORMATS[fmt].export_packages if importlib.util.find_spec(p) is None]
        if not any(importlib.util.find_spec(p) for p in BACKENDS[FORMATS[fmt].backend].packages):
            missing.append(" or ".join(BACKENDS[FORMATS[fmt].backend].packages))
        if missing:
            print(f"skipping {fmt}: {', '.join(missing)} not installed (pip install -e '.[all]')")
            continue

        def marker(p: str, fmt: str = fmt) -> Path:  # an export that failed for this checkpoint and target
            return out / f"{fmt}-{p}.failed.json"

        todo = []
        for p in (p for p in precisions if p in FORMATS[fmt].precisions):
            b = out / f"{fmt}-{p}"
            try:
                m = read_manifest(b)
                if m.source_checkpoint_sha256 == sha and (p != "int8" or m.target.get("target", target) == target):
                    print(f"reusing {b}")
                    bundles.append(b)
                    continue
            except EdgepsError:
                pass
            failed = _failed_before(marker(p), stamp)
            if failed:  # the same checkpoint and target fail the same way: a minute saved per run
                print(
                    f"{fmt}-{p}: not exported (failed for this checkpoint before: {failed}; --retrain, or delete "
                    f"{marker(p)} to try again)"
                )
                continue
            todo.append(p)
        t0 = time.perf_counter()
        for p in todo:  # one at a time: an int8 that fails its parity gate keeps the fp32
            try:
                (r,) = export_bundles(checkpoint, [fmt], [p], out, target=target)
            except EdgepsError as exc:
                print(f"{fmt}-{p}: not exported: {exc}")
                write_json(marker(p), {**stamp, "error": str(exc)})
                continue
            marker(p).unlink(missing_ok=True)
            print(
                f"exported {r.path} ({r.size_bytes / 1e6:.1f} MB, parity class agreement "
                f"{100 * r.parity['class_agreement']:.2f} %)"
            )
            bundles.append(r.path)
        if todo:
            print(f"{fmt}: {time.perf_counter() - t0:.0f} s")
    return bundles


def _failed_before(marker: Path, stamp: dict[str, str]) -> str | None:
    """The error an earlier demo's export of this checkpoint and target ended with, if any."""
    try:
        seen = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(seen, dict) or any(seen.get(k) != v for k, v in stamp.items()):
        return None
    return str(seen.get("error", "unknown error"))


def stream_bundle(
    bundle: Path, video: Path, gt_dir: Path, threads: int, save: Path | None, measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The video through one bundle in record mode: PQ against the video's ground truth, id
    switches, stream FPS, and the annotated video when ``save`` is given. ``measure`` (the
    bundle's model-only bench) runs between two timed passes of the stream; the stream FPS is
    their mean, so a drift of the machine's speed over the bracket cancels to first order."""
    from edgeps.apps.consumers import AnnotatedVideo, annotate
    from edgeps.io.coco_panoptic import load_coco_panoptic, read_id_png
    from edgeps.metrics import PanopticAccumulator
    from edgeps.metrics.tracking import TrackingAccumulator
    from edgeps.runtimes import load
    from edgeps.stream.pipeline import StreamPipeline
    from edgeps.stream.sources import open_source
    from edgeps.stream.tracker import Tracker

    rt = load(bundle, threads=threads)
    m = rt.manifest
    pp = m.postprocess

    def tracker() -> Tracker:
        return Tracker(m.categories.thing_ids, label_divisor=pp.label_divisor)

    # 1) timing: the stream with tracking, consumers as light as a robot's (the scoring below
    #    reads ground-truth PNGs and would otherwise be what is measured)
    def timed_pass() -> dict[str, Any]:
        timing = StreamPipeline(rt, open_source(str(video)), realtime=False, tracker=tracker())
        for _ in timing:
            pass
        return timing.summary()

    timed = timed_pass()
    bench_row = measure()
    passes = [timed["fps_steady"], timed_pass()["fps_steady"]]
    # 2) scoring: PQ, tracking, the annotated video
    gt_set = load_coco_panoptic(gt_dir / "panoptic.json", gt_dir / "panoptic")
    gts = {a["image_id"]: a for a in gt_set.annotations}
    pq = PanopticAccumulator(m.categories, pp.label_divisor, pp.void_label)
    tracking = None
    # the scoring below slows this pass: its picture shows the timed passes' figures instead
    fps = float(np.mean(passes))

    def status(item: Any) -> str:
        return f"{fps:5.1f} FPS (timed stream)  frame {item.frame.index}"

    writer = AnnotatedVideo(save, m.categories, pp.label_divisor, pp.void_label, status=status) if save else None
    pipe = StreamPipeline(rt, open_source(str(video)), realtime=False, tracker=tracker())
    frame_png = None
    picture_frame = min(30, len(gts) - 1)  # the README picture: frame 30, or the last of a shorter video
    for item in pipe:
        ann = gts[item.frame.index]
        # edgeps writes COCO segment id = panoptic id + 1, so the persistent object ids survive
        gt = read_id_png(gt_set.png_path(ann)).astype(np.int64) - 1
        if tracking is None:
            tracking = TrackingAccumulator(
                m.categories.thing_ids, pp.label_divisor, pp.void_label, min_area=int(0.005 * gt.size)
            )
        pq.update(item.result.panoptic, gt)
        tracking.update(gt, item.result.panoptic, item.result.segments)
        if writer:
            writer.consume(item)
            if item.frame.index == picture_frame:
                frame_png = annotate(item, m.categories, pp.label_divisor, pp.void_label, status)
    if writer:
        writer.close()
    r = pq.result()
    return {
        "bundle": bundle.name,
        "backend": rt.info["backend"],
        "precision": m.precision,
        "threads": threads,
        "pq": r["All"]["pq"],
        "pq_things": r["Things"]["pq"],
        "pq_stuff": r["Stuff"]["pq"],
        "miou": r["miou"],
        "stream_fps": float(np.mean(passes)),
        "stream_fps_passes": passes,
        "stream": timed,
        "tracking": tracking.summary() if tracking else {},
        "_frame": frame_png,
        "_bench": bench_row,
    }


def run(args: argparse.Namespace) -> int:
    from edgeps.apps.arguments import parse_size
    from edgeps.apps.bench.measure import load_frames, measure_in_worker, save_frames
    from edgeps.apps.bench.report import publish, run_config
    from edgeps.data.video import write_synth_video
    from edgeps.io.coco_panoptic import write_json

    t_start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("edgeps").setLevel(logging.WARNING)

    _step(1, f"model: train configs/synth.yaml for {args.train_minutes:g} min (or reuse)")
    ckpt = trained_checkpoint(out, args.config, args.train_minutes, args.retrain)
    t_after_train = time.perf_counter()

    _step(2, "export every installed backend in " + " and ".join(p.upper() for p in args.precisions.split(",")))
    target = args.target
    if target == "auto":
        from edgeps.apps.bench.device import has_vnni

        target = "cpu-vnni" if has_vnni() else "generic"  # the bundles are for this machine
        print(f"int8 target: {target} (this CPU {'has' if target == 'cpu-vnni' else 'lacks'} VNNI)")
    formats = [f for f in args.formats.split(",") if f]
    bundles = export_all(ckpt, out / "bundles", formats, [p for p in args.precisions.split(",") if p], target)
    if not bundles:
        print("no bundle could be exported: install the export tools (pip install -e '.[all]')")
        return 1

    _step(3, f"synthetic street video: {args.frames} frames at {args.video_size}, persistent object ids")
    video = out / "video" / "synth.mp4"
    size = parse_size(args.video_size)
    gt_dir = video.with_name("synth_gt")
    meta = out / "video" / "meta.json"
    want = {"frames": args.frames, "size": list(size), "seed": 7}
    if not (video.is_file() and meta.is_file() and json.loads(meta.read_text()) == want):
        write_synth_video(video, args.frames, size, seed=7)
        write_json(meta, want)
    print(f"{video} (+ ground truth {gt_dir})")

    _step(
        4,
        f"stream the video through each bundle (record mode, {args.threads} inference thread(s) + pipeline threads), "
        "its model-only bench between two timed passes",
    )
    bench_opts = dict(threads=args.threads, warmup=3, iters=20, data=BENCH_DATA)
    frames = load_frames(BENCH_DATA)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeps-demo-") as tmp:
        frames_file = save_frames(frames, Path(tmp) / "frames.npy")
        for k, b in enumerate(bundles):
            save = out / "stream" / f"{b.name}.mp4" if k == 0 else None
            row = stream_bundle(
                b,
                video,
                gt_dir,
                args.threads,
                save,
                lambda b=b: measure_in_worker(b, frames_file=frames_file, **bench_opts),
            )
            rows.append(row)
            t = row["tracking"]
            print(
                f"{b.name:<16} PQ {100 * row['pq']:5.1f} (things {100 * row['pq_things']:5.1f}, stuff "
                f"{100 * row['pq_stuff']:5.1f}) "
                f"mIoU {100 * row['miou']:5.1f}  stream {row['stream_fps']:5.1f} FPS  id switches "
                f"{t.get('id_switches', 0)} "
                f"in {t.get('frames', 0)} frames, tracked {100 * t.get('tracked_fraction', 0):.0f} %",
                flush=True,
            )
    frame_png = rows[0].pop("_frame")
    results = [r.pop("_bench") for r in rows]
    for r in rows:
        r.pop("_frame", None)

    _step(5, "benchmark (edgeps bench's worker: each bundle in its own process, measured in step 4)")
    bench_json = out / "bench.json"
    publish(results, run_config(**bench_opts, frames=len(frames)), bench_json, bench_json.with_suffix(".png"))
    print(
        f"\n{'bundle':<16}{'PQ':>6}{'things':>8}{'stuff':>7}{'stream FPS':>12}{'infer FPS':>11}"
        f"{'ratio':>7}{'switches/100f':>15}"
    )
    for r, b in zip(rows, results):
        r["infer_fps"] = b["infer_fps"]
        r["stream_over_infer"] = r["stream_fps"] / r["infer_fps"] if r["infer_fps"] else None
        print(
            f"{r['bundle']:<16}{100 * r['pq']:6.1f}{100 * r['pq_things']:8.1f}{100 * r['pq_stuff']:7.1f}"
            f"{r['stream_fps']:12.1f}"
            f"{(r['infer_fps'] or 0):11.1f}{(r['stream_over_infer'] or 0):7.2f}"
            f"{r['tracking'].get('switches_per_100_frames', 0):15.1f}"
        )
    write_json(out / "pq.json", rows)

    if args.no_docs:
        print("note: --no-docs is no longer needed: the demo writes under --out only (--update-docs refreshes docs/)")
    pictures = []
    if frame_png is not None:
        small = cv2.resize(frame_png, (frame_png.shape[1] // 2, frame_png.shape[0] // 2), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / "demo_frame.png"), small)
        pictures.append((out / "demo_frame.png", DOCS / "demo_frame.png"))
    if bench_json.with_suffix(".png").is_file():
        pictures.append((bench_json.with_suffix(".png"), DOCS / "bench_chart.png"))
    if args.update_docs:
        DOCS.mkdir(exist_ok=True)
        for src, dst in pictures:
            shutil.copyfile(src, dst)
    total = time.perf_counter() - t_start
    print(
        f"\ndone in {total / 60:.1f} min ({(time.perf_counter() - t_after_train) / 60:.1f} min after training). Files:"
    )
    print(f"  annotated video   {out / 'stream' / (bundles[0].name + '.mp4')}")
    print(f"  PQ per backend    {out / 'pq.json'}")
    print(f"  benchmark         {bench_json} and {bench_json.with_suffix('.png')}")
    print(f"  bundles           {out / 'bundles'}")
    print(f"  frame picture     {out / 'demo_frame.png'}")
    if args.update_docs:
        print(f"  README pictures   {DOCS / 'demo_frame.png'}, {DOCS / 'bench_chart.png'} (--update-docs)")
    return 0
