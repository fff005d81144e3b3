"""``edgeps eval-video``: video panoptic quality of a model followed by the project's tracker.

Each video's frames go through the model (a bundle or a checkpoint; or, with ``--gt-masks``, the
ground-truth masks renumbered every frame, to score the tracker alone), then through
:class:`edgeps.stream.tracker.Tracker`, whose track ids become the predicted instance ids; the
result is scored against ground truth with persistent object ids: STQ, AQ and SQ
(:class:`edgeps.metrics.video.STQAccumulator`), VPQ
(:class:`edgeps.metrics.video.VPQAccumulator`), id switches and the tracked fraction
(:class:`edgeps.metrics.tracking.TrackingAccumulator`, as ``bench/tracking.py`` and the demo
count them). Printed in points (0..100) per video and overall; ``--json`` keeps fractions.
``--track NAME=VALUE`` changes a tracker setting (:class:`edgeps.stream.tracker.TrackerSettings`);
``--oracle-association`` replaces the tracker by association by ground truth
(:class:`edgeps.metrics.tracking.OracleAssociation`: each segment takes the id of the ground-truth
track it overlaps most), the bound any tracker could reach with the same masks.

Videos: synthetic street videos by seed (rendered and cached as ``bench/tracking.py`` renders
them, the model's maps cached too), or the user's frames with per-frame ground truth in
COCO-panoptic (ids persistent across frames) or KITTI-STEP (R = class, G * 256 + B = instance)
PNGs. See docs/video-evaluation.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Instance part of the maps handed to the video metrics: track ids up to 65535 per video, and
# class * 65536 keeps the id range small enough for the bincount path of compact_ids.
METRIC_DIVISOR = 1 << 16
GT_FORMATS = ("coco", "kitti-step")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's options to ``parser`` (the model, the videos, ``--json``)."""
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--bundle", type=Path, help="an exported bundle folder")
    model.add_argument("--checkpoint", type=Path, help="a training checkpoint (.pt)")
    model.add_argument(
        "--gt-masks",
        action="store_true",
        help="no model: the ground-truth masks with instances renumbered every frame (the tracker alone; "
        "bench/tracking.py --oracle)",
    )
    parser.add_argument(
        "--oracle-association",
        action="store_true",
        help="no tracker: each segment takes the id of the ground-truth track it overlaps most (the best any "
        "tracker could do with these masks)",
    )
    parser.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a tracker setting (a field of edgeps.stream.tracker.TrackerSettings, e.g. max_age=20); repeatable",
    )
    parser.add_argument("--backend", help="runtime backend for --bundle (default: the bundle's own)")
    parser.add_argument("--threads", type=int, help="inference threads")
    synth = parser.add_argument_group("synthetic videos (the default source)")
    synth.add_argument("--seeds", default="7,11,12,13,14,15", help="comma-separated video seeds (default 7,11-15)")
    synth.add_argument("--num-frames", type=int, default=100, help="frames per video (default 100)")
    synth.add_argument("--size", default="512x1024", help="HxW of the videos (default 512x1024)")
    synth.add_argument(
        "--cache",
        type=Path,
        default=Path("out/tracking-videos"),
        help="rendered videos and the model's maps (default out/tracking-videos, shared with bench/tracking.py)",
    )
    user = parser.add_argument_group("your own videos (instead of --seeds)")
    user.add_argument(
        "--frames",
        type=Path,
        metavar="DIR",
        help="a folder of one video's frames (images, in name order), or of one sub-folder per video",
    )
    user.add_argument(
        "--gt",
        type=Path,
        metavar="DIR",
        help="per-frame ground truth, paired with the frames by file stem (one sub-folder per video if --frames "
        "has them); for coco: a folder holding one JSON and its PNG folder (or the JSON file)",
    )
    user.add_argument("--gt-format", choices=GT_FORMATS, help="coco (panoptic PNG + JSON) or kitti-step (PNG)")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="write the result (fractions) here")


# ----------------------------------------------------------------------------- model
@dataclass
class _Model:
    name: str
    predict: Callable[[np.ndarray], np.ndarray] | None  # None: the ground-truth masks renumbered
    categories: Any  # edgeps.categories.Categories
    label_divisor: int
    void_label: int
    identity: Callable[[], str]  # for the cache of the model's maps
    settings: dict[str, Any]


def _model(args: argparse.Namespace) -> _Model:
    from edgeps.data.tracking_videos import files_digest
    from edgeps.errors import ConfigError, DataNotFoundError

    if args.gt_masks:
        from edgeps import LABEL_DIVISOR, VOID_LABEL

        if args.frames is None:
            from edgeps.data.synthetic import SYNTH_CATEGORIES

            categories = SYNTH_CATEGORIES
        elif args.gt_format == "coco":
            from edgeps.io.coco_panoptic import load_coco_panoptic

            json_path, png_dir = _coco_files(_user_pairs(args)[0][2])
            categories = load_coco_panoptic(json_path, png_dir).categories
        else:
            raise ConfigError(
                "--gt-masks takes its category set from the ground truth: synthetic videos or --gt-format coco "
                "(KITTI-STEP PNGs carry no thing/stuff split)"
            )
        return _Model("ground-truth masks", None, categories, LABEL_DIVISOR, VOID_LABEL, lambda: "", {})
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise DataNotFoundError(f"--checkpoint: file not found: {args.checkpoint}")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        from edgeps.training.inference import predictor_from_checkpoint

        pred = predictor_from_checkpoint(args.checkpoint)
        s = pred.settings
        return _Model(
            str(args.checkpoint),
            pred,
            pred.categories,
            s.label_divisor,
            s.void_label,
            lambda: files_digest(args.checkpoint),
            s.to_dict(),
        )
    from edgeps.runtimes import load

    rt = load(args.bundle, backend=args.backend, threads=args.threads)
    pp = rt.manifest.postprocess
    return _Model(
        str(args.bundle),
        lambda img: rt.predict(img).panoptic,
        rt.manifest.categories,
        pp.label_divisor,
        pp.void_label,
        lambda: files_digest(args.bundle),
        pp.to_dict(),
    )


# ----------------------------------------------------------------------------- ground truth
class _Instances:
    """Dense, persistent instance numbers per class over one video: the n-th distinct object of
    a class (by its key in the source format) is instance n."""

    def __init__(self, label_divisor: int, where: str):
        self.label_divisor = label_divisor
        self.where = where
        self._number: dict[tuple[int, int], int] = {}
        self._count: dict[int, int] = {}

    def __call__(self, cls: int, key: int) -> int:
        n = self._number.get((cls, key))
        if n is None:
            n = self._count.get(cls, 0) + 1
            if n >= self.label_divisor:
                from edgeps.errors import FormatError

                raise FormatError(f"{self.where}: class {cls} has more than {self.label_divisor - 1} objects")
            self._count[cls] = n
            self._number[(cls, key)] = n
        return cls * self.label_divisor + n


def _lookup(ids: np.ndarray, value_of: Callable[[int], int]) -> np.ndarray:
    """Map each distinct value of ``ids`` through ``value_of`` (a loop over the distinct ids only)."""
    from edgeps.panoptic import compact_ids

    distinct, inverse = compact_ids(ids)
    values = np.array([value_of(int(i)) for i in distinct.tolist()], np.int64)
    return values[inverse].reshape(ids.shape)


def _image_files(folder: Path) -> dict[str, Path]:
    from edgeps.stream.sources import IMAGE_SUFFIXES

    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _pair(frames: dict[str, Path], gt_stems: set[str], where: Path) -> list[str]:
    from edgeps.errors import DataNotFoundError

    missing = [s for s in frames if s not in gt_stems]
    if missing:
        raise DataNotFoundError(
            f"--gt {where}: no ground truth for {len(missing)} of {len(frames)} frames (paired by file stem), "
            f"e.g. {missing[:3]}"
        )
    return list(frames)


class _KittiStep:
    """KITTI-STEP panoptic PNGs: R = class (255 void), G * 256 + B = instance (0 = crowd for a thing)."""

    def __init__(self, gt_dir: Path, model: _Model):
        from edgeps.errors import DataNotFoundError

        if not gt_dir.is_dir():
            raise DataNotFoundError(f"--gt: folder not found: {gt_dir}")
        self.files = {p.stem: p for p in sorted(gt_dir.glob("*.png"))}
        self.model = model
        self.instances = _Instances(model.label_divisor, str(gt_dir))

    def stems(self) -> set[str]:
        return set(self.files)

    def read(self, stem: str) -> np.ndarray:
        from edgeps.errors import CategoryError, FormatError
        from edgeps.io.images import read_rgb

        path = self.files[stem]
        rgb = read_rgb(path)
        if rgb is None:
            raise FormatError(f"{path}: not a readable image")
        rgb = rgb.astype(np.int64)
        key = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
        m = self.model
        things = set(m.categories.thing_ids)

        def value(k: int) -> int:
            cls, inst = k // 65536, k % 65536
            if cls == 255:
                return m.void_label
            if cls not in m.categories:
                raise CategoryError(f"{path}: class {cls} is not one of the model's categories {m.categories.ids}")
            if cls not in things or inst == 0:
                return cls * m.label_divisor
            return self.instances(cls, inst)

        return _lookup(key, value)


def _coco_files(gt: Path) -> tuple[Path, Path]:
    """(JSON, PNG folder) of a COCO-panoptic ``--gt``: the JSON file itself, or the one JSON in
    a folder; the PNGs in the folder named like the JSON (COCO's layout), else beside it."""
    from edgeps.errors import ConfigError, DataNotFoundError

    if gt.is_file():
        json_path = gt
    elif gt.is_dir():
        found = sorted(gt.glob("*.json"))
        if len(found) != 1:
            raise ConfigError(f"--gt {gt}: expected one COCO panoptic JSON in the folder, found {len(found)}")
        json_path = found[0]
    else:
        raise DataNotFoundError(f"--gt: not found: {gt}")
    png_dir = json_path.with_suffix("")
    return json_path, png_dir if png_dir.is_dir() else json_path.parent


class _CocoVideo:
    """A COCO-panoptic set whose segment ids are persistent across the frames of the video."""

    def __init__(self, gt: Path, model: _Model):
        from edgeps.errors import CategoryError
        from edgeps.io.coco_panoptic import load_coco_panoptic

        json_path, png_dir = _coco_files(gt)
        self.set = load_coco_panoptic(json_path, png_dir)
        m = self.model = model
        for cat in self.set.categories:
            if cat.id in m.categories and m.categories[cat.id].isthing != cat.isthing:
                raise CategoryError(
                    f"{json_path}: category {cat.id} ('{cat.name}') has isthing {int(cat.isthing)}, the model's "
                    f"has {int(m.categories[cat.id].isthing)}"
                )
        self.anns = {Path(a["file_name"]).stem: a for a in self.set.annotations}
        self.where = str(json_path)
        self.instances = _Instances(model.label_divisor, self.where)

    def stems(self) -> set[str]:
        return set(self.anns)

    def read(self, stem: str) -> np.ndarray:
        from edgeps.errors import CategoryError, FormatError
        from edgeps.io.coco_panoptic import read_id_png

        ann = self.anns[stem]
        ids = read_id_png(self.set.png_path(ann)).astype(np.int64)
        m = self.model
        segs = {int(s["id"]): s for s in ann["segments_info"]}

        def value(sid: int) -> int:
            if sid == 0:
                return m.void_label
            seg = segs.get(sid)
            if seg is None:
                raise FormatError(f"{self.where}: {ann['file_name']}: segment id {sid} is not in segments_info")
            cls = int(seg["category_id"])
            if cls not in m.categories:
                raise CategoryError(
                    f"{self.where}: {ann['file_name']}: category {cls} is not one of the model's {m.categories.ids}"
                )
            if not m.categories[cls].isthing or seg.get("iscrowd", 0):
                return cls * m.label_divisor
            return self.instances(cls, sid)

        return _lookup(ids, value)


# ----------------------------------------------------------------------------- videos
@dataclass
class _Video:
    name: str
    frames: Callable[[], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]  # (image, gt, prediction)


def _seeds(text: str) -> list[int]:
    from edgeps.apps.arguments import split_list
    from edgeps.errors import ConfigError

    try:
        seeds = [int(s) for s in split_list(text)]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers such as 7,11,12, got {text!r}") from None
    if not seeds:
        raise ConfigError("--seeds: expected at least one seed")
    return seeds


def _synthetic_videos(args: argparse.Namespace, model: _Model) -> list[_Video]:
    from edgeps.apps.arguments import parse_size
    from edgeps.data.tracking_videos import cached_panoptic, renumber_instances, synth_video
    from edgeps.errors import ConfigError

    seeds = _seeds(args.seeds)
    size = parse_size(args.size)
    if args.num_frames < 1:
        raise ConfigError(f"--num-frames: expected >= 1, got {args.num_frames}")

    def frames(seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        images, gts = synth_video(args.cache, seed, args.num_frames, size)
        if model.predict is None:  # renumbered as bench/tracking.py --oracle does, seeded by the video
            rng = np.random.default_rng(seed)
            pans: Any = (renumber_instances(gt, rng, model.categories.thing_ids, model.label_divisor) for gt in gts)
        else:
            pans = cached_panoptic(args.cache, model.identity(), seed, images, model.settings, model.predict)
        yield from zip(images, gts, pans)

    return [_Video(f"seed{s}", lambda s=s: frames(s)) for s in seeds]


def _user_pairs(args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    """(name, frame folder, ground truth) of each of the user's videos."""
    from edgeps.errors import ConfigError, DataNotFoundError

    if args.gt is None or args.gt_format is None:
        raise ConfigError("--frames needs --gt DIR and --gt-format coco|kitti-step")
    if not args.frames.is_dir():
        raise DataNotFoundError(f"--frames: folder not found: {args.frames}")
    if _image_files(args.frames):
        return [(args.frames.name, args.frames, args.gt)]
    subs = sorted(p for p in args.frames.iterdir() if p.is_dir())
    if not subs:
        raise DataNotFoundError(f"--frames {args.frames}: no images and no sub-folders of images")
    for sub in subs:
        if not _image_files(sub):
            raise DataNotFoundError(f"--frames {sub}: no images")
    return [(p.name, p, args.gt / p.name) for p in subs]


def _user_videos(args: argparse.Namespace, model: _Model) -> list[_Video]:
    from edgeps.data.tracking_videos import renumber_instances
    from edgeps.errors import SourceError
    from edgeps.io.images import read_bgr

    def frames(index: int, frame_dir: Path, gt: Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        reader = _CocoVideo(gt, model) if args.gt_format == "coco" else _KittiStep(gt, model)
        files = _image_files(frame_dir)
        rng = np.random.default_rng(index)
        for stem in _pair(files, reader.stems(), gt):
            image = read_bgr(files[stem])
            if image is None:
                raise SourceError(f"{files[stem]}: not a readable image")
            truth = reader.read(stem)
            if model.predict is None:
                yield image, truth, renumber_instances(truth, rng, model.categories.thing_ids, model.label_divisor)
            else:
                yield image, truth, model.predict(image)

    return [_Video(name, lambda i=i, f=f, g=g: frames(i, f, g)) for i, (name, f, g) in enumerate(_user_pairs(args))]


def tracker_settings(entries: list[str]) -> Any:
    """``["name=value", ...]`` (``--track``) -> :class:`edgeps.stream.tracker.TrackerSettings`, the
    defaults with those fields changed; a value is a JSON number (or a list for a pair).

    Raises:
        ConfigError: an entry without ``=``, a name that is not a setting, or a value that is not
            JSON of the setting's kind.
    """
    import dataclasses
    import json

    from edgeps.errors import ConfigError
    from edgeps.stream.tracker import TrackerSettings

    defaults = TrackerSettings()
    names = {f.name for f in dataclasses.fields(TrackerSettings)}
    changes: dict[str, Any] = {}
    for entry in entries:
        name, eq, text = entry.partition("=")
        name = name.strip()
        if not eq or name not in names:
            raise ConfigError(f"--track {entry!r}: expected NAME=VALUE with NAME one of {sorted(names)}")
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(f"--track {entry!r}: the value is not a number") from None
        kind = type(getattr(defaults, name))
        if kind is tuple and isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
            value = tuple(float(v) for v in value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            pass
        elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        else:
            raise ConfigError(f"--track {entry!r}: expected {kind.__name__} for {name}")
        changes[name] = value
    return dataclasses.replace(defaults, **changes)


# ----------------------------------------------------------------------------- scoring
def _metric_maps(
    gt: np.ndarray, pan: np.ndarray, segments: list[Any], ld: int, void: int, md: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, prediction) in ``class * md + instance``: the prediction's instance is its
    segment's track id (0 for stuff and untracked segments)."""
    from edgeps.errors import InputShapeError

    gt = np.asarray(gt, np.int64)
    if gt.shape != pan.shape:
        raise InputShapeError(f"{where}: ground truth of shape {gt.shape}, the prediction is {pan.shape}")
    gt_m = np.where(gt == void, void, gt // ld * md + gt % ld)
    track = {s.id: s.track_id for s in segments if s.track_id is not None}
    if track and max(track.values()) >= md:
        raise InputShapeError(f"{where}: track id {max(track.values())} does not fit below {md}")

    def value(i: int) -> int:
        return void if i == void else (i // ld) * md + track.get(i, 0)

    return gt_m, _lookup(np.asarray(pan, np.int64), value)


def _score(videos: list[_Video], model: _Model, settings: Any = None, oracle: bool = False) -> dict[str, Any]:
    """Score ``videos``: the model's segments get track ids from a :class:`Tracker` with ``settings``
    (None: the defaults), or from association by ground truth when ``oracle``."""
    from edgeps.metrics.tracking import OracleAssociation, TrackingAccumulator
    from edgeps.metrics.video import STQAccumulator, VPQAccumulator
    from edgeps.panoptic import segments_of
    from edgeps.stream.tracker import Tracker

    cats, ld, void = model.categories, model.label_divisor, model.void_label
    num_classes, things, md = max(cats.ids) + 1, cats.thing_ids, max(METRIC_DIVISOR, ld)
    stq = STQAccumulator(num_classes, things, label_divisor=md, void_label=void)
    vpq = VPQAccumulator(num_classes, things, label_divisor=md, void_label=void)
    tracking: list[dict[str, Any]] = []
    for video in videos:
        stq.next_sequence(video.name)
        vpq.next_sequence(video.name)
        tracker = Tracker(things, label_divisor=ld, settings=settings)
        association = OracleAssociation(things, ld, void)
        acc: TrackingAccumulator | None = None
        for i, (image, gt, pan) in enumerate(video.frames()):
            segments = segments_of(pan, ld, void)
            if oracle:
                association.update(gt, pan, segments)
            else:
                tracker.update(pan, segments, image)
            if acc is None:  # objects under 0.5 % of the frame are not scored (as bench/tracking.py, the demo)
                acc = TrackingAccumulator(things, ld, void, min_area=int(0.005 * gt.size))
            acc.update(gt, pan, segments)
            gt_m, pred_m = _metric_maps(gt, pan, segments, ld, void, md, f"{video.name} frame {i}")
            stq.update(gt_m, pred_m)
            vpq.update(gt_m, pred_m)
        tracking.append(acc.summary() if acc is not None else {})
    s, v = stq.result(), vpq.result()
    rows = []
    for t, sq, vq in zip(tracking, s["per_sequence"], v["per_sequence"], strict=True):
        rows.append(_row(sq["name"], sq["frames"], sq, vq, t))
    switches = sum(t.get("id_switches", 0) for t in tracking)
    overall_tracking = {
        "id_switches": switches,
        "switches_per_100_frames": 100.0 * switches / max(s["frames"], 1),
        "tracked_fraction": float(np.mean([t.get("tracked_fraction", 0.0) for t in tracking])) if tracking else 0.0,
        "mostly_tracked_fraction": (
            float(np.mean([t.get("mostly_tracked_fraction", 0.0) for t in tracking])) if tracking else 0.0
        ),
        "objects": sum(t.get("objects", 0) for t in tracking),
    }
    return {
        "videos": rows,
        "overall": _row("all", s["frames"], s, v, overall_tracking),
        "stq": s,
        "vpq": v,
    }


def _row(name: str, frames: int, s: dict[str, Any], v: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "frames": frames,
        "stq": s["stq"],
        "aq": s["aq"],
        "sq": s["sq"],
        "tracks": s["tracks"],
        "vpq": v["vpq"],
        "vpq_things": v["vpq_things"],
        "vpq_stuff": v["vpq_stuff"],
        "vpq_per_span": {k: p["vpq"] for k, p in v["per_span"].items() if p["classes"]},
        "id_switches": t.get("id_switches", 0),
        "switches_per_100_frames": t.get("switches_per_100_frames", 0.0),
        "tracked_fraction": t.get("tracked_fraction", 0.0),
        "mostly_tracked_fraction": t.get("mostly_tracked_fraction", 0.0),
        "objects": t.get("objects", 0),
    }


def format_table(result: dict[str, Any]) -> str:
    """Per-video and overall rows in points (0..100); a VPQ^k with no window prints ``-``."""
    spans = [int(k) for k in result["vpq"]["per_span"]]
    head = f"{'video':<14}{'frames':>7}{'STQ':>7}{'AQ':>7}{'SQ':>7}{'VPQ':>7}"
    head += "".join(f"{'VPQ' + str(k):>7}" for k in spans)
    head += f"{'switches':>10}{'/100 fr':>9}{'tracked %':>11}"
    lines = [head]
    for row in [*result["videos"], result["overall"]]:
        line = f"{row['name'][:13]:<14}{row['frames']:>7d}"
        line += "".join(f"{100 * row[k]:7.1f}" for k in ("stq", "aq", "sq", "vpq"))
        per = row["vpq_per_span"]
        line += "".join(f"{100 * per[k]:7.1f}" if k in per else f"{'-':>7}" for k in spans)
        line += f"{row['id_switches']:>10d}{row['switches_per_100_frames']:9.2f}{100 * row['tracked_fraction']:11.1f}"
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Score the videos, print the table and write ``--json``; returns the exit status (0).

    Raises:
        ConfigError: contradictory or malformed options (``--gt`` without ``--frames``, bad seeds, an
            unknown ``--track`` setting, ``--track`` with ``--oracle-association``).
        DataNotFoundError: a missing model, frame folder or ground truth for a frame.
        FormatError, CategoryError: ground truth that does not follow its format or the model's classes.
    """
    from edgeps.errors import ConfigError
    from edgeps.io.coco_panoptic import write_json

    if args.frames is None and (args.gt is not None or args.gt_format is not None):
        raise ConfigError("--gt and --gt-format go with --frames DIR")
    if args.frames is not None:
        _user_pairs(args)  # bad folders fail before a model is loaded
    settings = tracker_settings(args.track)
    if args.oracle_association and args.track:
        raise ConfigError("--track sets the tracker, which --oracle-association replaces")
    model = _model(args)
    videos = _user_videos(args, model) if args.frames is not None else _synthetic_videos(args, model)
    result = _score(videos, model, settings, args.oracle_association)
    source = (
        {"frames": str(args.frames), "gt": str(args.gt), "gt_format": args.gt_format}
        if args.frames is not None
        else {
            "seeds": [int(s) for s in args.seeds.split(",") if s.strip()],
            "frames": args.num_frames,
            "size": args.size,
        }
    )
    import dataclasses

    association = "ground truth" if args.oracle_association else "tracker"
    result = {
        "model": model.name,
        "source": source,
        "association": association,
        "tracker_settings": None if args.oracle_association else dataclasses.asdict(settings),
        **result,
    }
    what = "association by ground truth" if args.oracle_association else "tracker"
    print(f"{model.name} + {what}: {len(result['videos'])} videos, {result['overall']['frames']} frames")
    print(format_table(result))
    if args.json_out is not None:
        write_json(args.json_out, result)
    return 0
