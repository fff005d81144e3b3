"""``edgeps run``: a bundle on a live camera, stream, video, image folder or rosbag.

The frames go through :class:`edgeps.stream.pipeline.StreamPipeline` (capture, preprocess,
infer, post-process + tracking on their own threads) to the consumers asked for; a summary
(frames, dropped, FPS, latency per stage) ends the run.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgeps.apps.consumers import OUT_FORMATS

    parser.add_argument("--bundle", required=True, type=Path, help="bundle folder (model file + edgeps.yaml)")
    parser.add_argument(
        "--source",
        required=True,
        help="camera index, video file, rtsp:// or http:// URL, GStreamer pipeline, image folder or glob, "
        "BAG.db3:/topic",
    )
    parser.add_argument("--backend", help="backend (default: the bundle format's own)")
    parser.add_argument(
        "--device", default="cpu", help="cpu; onnxruntime: cuda, tensorrt; openvino: CPU, GPU, NPU, AUTO"
    )
    parser.add_argument(
        "--threads", type=int, help="inference threads (default: cores - 1, leaving one core to the other stages)"
    )
    parser.add_argument("--threshold", type=float, help="center heatmap threshold (default: the bundle's)")
    parser.add_argument("--stuff-area", type=int, help="minimum stuff area in model pixels (default: the bundle's)")
    parser.add_argument(
        "--thing-area",
        type=int,
        help="minimum thing instance area in model pixels; smaller instances become void (default: the bundle's)",
    )
    parser.add_argument(
        "--mode",
        choices=["auto", "realtime", "record"],
        default="auto",
        help="realtime: newest frame only, drops stale ones; record: every frame in order (default: realtime for "
        "cameras and streams, record for files)",
    )
    parser.add_argument(
        "--show", action="store_true", help="show a window (needs an OpenCV with GUI support and a display)"
    )
    parser.add_argument("--save", type=Path, metavar="OUT.mp4", help="write the annotated video")
    parser.add_argument(
        "--jsonl", type=Path, metavar="OUT.jsonl", help="write the segments of every frame as JSON lines"
    )
    parser.add_argument(
        "--coco-dir",
        type=Path,
        metavar="DIR",
        help="write DIR/panoptic/*.png + DIR/panoptic.json (COCO panoptic, the dataset's category ids; files from a "
        "folder keep their names)",
    )
    parser.add_argument(
        "--images-json",
        type=Path,
        metavar="JSON",
        help="COCO JSON whose 'images' give the image ids for --coco-dir, matched by file name (default: the numeric "
        "file stem when every stem is numeric, else the index in sorted order)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="per-image outputs named after each input: <stem>.png (panoptic) + <stem>.json (segments)",
    )
    parser.add_argument(
        "--out-format",
        choices=OUT_FORMATS,
        default="coco",
        help="--out-dir PNG encoding: coco (RGB segment ids) or cityscapes (16-bit <stem>_instanceIds.png)",
    )
    parser.add_argument("--overlay", action="store_true", help="--out-dir: also write <stem>_overlay.png")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="image folders: stop at the first unreadable file (default: warn, skip it and count it in the summary)",
    )
    parser.add_argument("--max-frames", type=int, help="stop after N frames")
    track = parser.add_mutually_exclusive_group()
    track.add_argument(
        "--track", action="store_true", help="track ids across frames for image folders too (default: videos only)"
    )
    track.add_argument("--no-track", action="store_true", help="no track ids (stable instance ids across frames)")
    parser.add_argument(
        "--reconnect-timeout", type=float, default=10.0, help="seconds to keep reopening a dead live source"
    )
    parser.add_argument("--summary-json", type=Path, metavar="OUT", help="write the run summary as JSON")


def default_threads() -> int:
    return max(1, (os.cpu_count() or 1) - 1)


def run(args: argparse.Namespace) -> int:
    """Run the stream to the consumers asked for; 0 when every frame was done, 130 on Ctrl-C,
    and the error re-raised (exit 2) when the source, a stage or a consumer failed. Whatever
    stops the run, every output is closed valid for the frames done, and the summary printed."""
    from edgeps.apps.consumers import AnnotatedVideo, CocoDump, JsonLines, PerImageOutputs, Window
    from edgeps.errors import ConfigError
    from edgeps.io.coco_panoptic import image_ids_for_files, write_json
    from edgeps.progress import progress
    from edgeps.runtimes import load
    from edgeps.stream.pipeline import StreamPipeline
    from edgeps.stream.sources import ImageFolderSource, open_source
    from edgeps.stream.tracker import Tracker

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames: expected >= 1, got {args.max_frames}")
    if args.images_json and not args.coco_dir:
        raise ConfigError("--images-json: only used with --coco-dir")
    threads = args.threads or default_threads()
    rt = load(args.bundle, backend=args.backend, device=args.device, threads=threads)
    rt.set_postprocess(threshold=args.threshold, stuff_area=args.stuff_area, thing_area=args.thing_area)
    m = rt.manifest
    pp = m.postprocess
    consumers = []
    source = open_source(args.source, strict=args.strict)
    folder = isinstance(source, ImageFolderSource)
    if args.images_json and not folder:
        raise ConfigError(f"--images-json: needs an image folder or glob source, not a {source.kind}")
    pipe = None
    error: BaseException | None = None
    interrupted = False
    try:
        if args.show:
            consumers.append(Window(m.categories, pp.label_divisor, pp.void_label))
        if args.save:
            consumers.append(
                AnnotatedVideo(args.save, m.categories, pp.label_divisor, pp.void_label, fps=source.fps or 15.0)
            )
        if args.jsonl:
            consumers.append(JsonLines(args.jsonl, m.categories))
        if args.coco_dir:
            ids = None
            if folder:  # a file the images JSON lacks is an error once it proves readable
                ids = image_ids_for_files([p.name for p in source.paths], args.images_json, require_all=False)
            where = str(args.images_json or "image ids")
            consumers.append(CocoDump(args.coco_dir, m.categories, pp.label_divisor, pp.void_label, ids, where))
        if args.out_dir:
            if folder:
                image_ids_for_files([p.name for p in source.paths])  # refuses inputs whose outputs would collide
            outputs = PerImageOutputs(
                args.out_dir, m.categories, pp.label_divisor, pp.void_label, args.out_format, args.overlay
            )
            consumers.append(outputs)
        track = args.track or not (args.no_track or folder)
        tracker = Tracker(m.categories.thing_ids, label_divisor=pp.label_divisor) if track else None
        realtime = {"auto": None, "realtime": True, "record": False}[args.mode]
        pipe = StreamPipeline(
            rt,
            source,
            realtime=realtime,
            tracker=tracker,
            max_frames=args.max_frames,
            reconnect_timeout=args.reconnect_timeout,
        )
        cores = os.cpu_count() or 1
        print(
            f"edgeps run: {args.bundle} ({rt.info['backend']}, {m.precision}, {m.input.size[0]}x{m.input.size[1]}) on "
            f"{source.kind} {args.source} in {'real-time' if pipe.realtime else 'record'} mode; "
            f"{cores} cores: inference {threads} thread(s), capture/pre/post/consumers on their own threads; "
            f"tracking {'on' if tracker else 'off'}"
        )
        total = len(source.paths) if folder else None
        if args.max_frames and not source.live:
            total = min(total or args.max_frames, args.max_frames)
        try:
            for item in progress(pipe, total=total, desc="frames", enabled=not args.show):
                for c in consumers:
                    c.consume(item)
        except StopIteration:  # the window asked to stop
            pass
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: finishing the files written so far")
        except Exception as exc:  # a source that failed for good, a stage or a consumer
            error = exc
    finally:
        if pipe is not None:
            pipe.stop()
        for c in consumers:
            try:
                c.close()
            except Exception as exc:  # the others are still closed
                logging.getLogger("edgeps.run").error("%s: could not finish: %s", type(c).__name__, exc)
                error = error or exc
        source.close()
    summary = pipe.summary()
    summary.update(
        {
            "bundle": str(args.bundle),
            "backend": rt.info["backend"],
            "precision": m.precision,
            "input_size": list(m.input.size),
            "threads": threads,
            "source": str(args.source),
            "tracking": pipe.tracker is not None,
            "completed": error is None and not interrupted,
            "error": None if error is None else f"{type(error).__name__}: {error}",
        }
    )
    print(format_summary(summary))
    if args.summary_json:
        write_json(args.summary_json, summary)
    for path in (args.save, args.jsonl, args.coco_dir, args.out_dir):
        if path:
            print(f"wrote {path} ({summary['frames']} frames)")
    if error is not None:
        raise error
    return 130 if interrupted else 0


def format_summary(s: dict) -> str:
    skipped = f", {s['skipped']} unreadable file(s) skipped" if s.get("skipped") else ""
    lines = [
        f"{s['frames']} frames ({s['captured']} captured, {s['dropped']} dropped, {s['reconnects']} reconnects"
        f"{skipped}) in {s['wall_s']:.1f} s: {s['fps']:.1f} FPS ({s['fps_steady']:.1f} FPS after the first frame)",
        f"{'stage':<12}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}",
    ]
    for name, p in {**s["stages_ms"], "end-to-end": s["latency_ms"]}.items():
        if p:
            lines.append(f"{name:<12}{p['p50']:9.1f}{p['p90']:9.1f}{p['max']:9.1f}")
    return "\n".join(lines)


__all__ = ["default_threads", "format_summary"]
