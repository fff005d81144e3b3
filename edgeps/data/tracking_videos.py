"""Synthetic videos for tracking and video-metric runs, rendered once and cached, and a cache of
a model's panoptic maps per video.

A video of seed s, n frames and size HxW lives in ``CACHE/seed{s}_{n}f_{H}x{W}.mp4`` with its
ground truth (COCO panoptic, object ids persistent over the video) in the folder of the same
name plus ``_gt``. Its frames are read back through the stream's own decoder, so a model sees
what it would see streaming the file. A model's maps of one video are kept in
``CACHE/results/<key>.npz``, the key hashing the model's identity, the seed, the frame count and
the post-processing settings; rerunning a tracker or a metric then costs no inference.
``bench/tracking.py`` and ``edgeps eval-video`` share these files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.atomic import atomic_path
from edgeps.errors import ConfigError, FormatError, InputShapeError
from edgeps.hashing import file_sha256
from edgeps.panoptic import compact_ids

DEFAULT_SEEDS = (7, 11, 12, 13, 14, 15)
DEFAULT_FRAMES = 100
DEFAULT_SIZE = (512, 1024)


def video_path(cache: str | Path, seed: int, frames: int, size: tuple[int, int]) -> Path:
    """Where the video of ``seed`` with ``frames`` frames of ``size`` (H, W) is cached."""
    return Path(cache) / f"seed{seed}_{frames}f_{size[0]}x{size[1]}.mp4"


def synth_video(
    cache: str | Path, seed: int, frames: int, size: tuple[int, int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames and ground truth of one synthetic street video, rendered into ``cache`` once.

    Args:
        cache: folder of the cached videos (created when missing).
        seed: the scene's seed (``edgeps.data.street.render_video``).
        frames: number of frames, >= 1.
        size: (H, W) of the frames.

    Returns:
        (images, gts): ``frames`` decoded frames, (H, W, 3) uint8 BGR as the stream reads the mp4,
        and their panoptic maps, (H, W) int64 ``class * 1000 + n`` with ``n`` persistent per object
        over the video, void -1.

    Raises:
        ConfigError: ``frames`` < 1 or a size that is not two positive integers.
        FormatError: the cached ground truth does not have one map per decoded frame.
    """
    from edgeps.data.video import write_synth_video
    from edgeps.io.coco_panoptic import load_coco_panoptic, read_id_png
    from edgeps.stream.sources import open_source

    if frames < 1:
        raise ConfigError(f"frames: expected >= 1, got {frames}")
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"size: expected (H, W) > 0, got {tuple(size)}")
    path = video_path(cache, seed, frames, size)
    gt_dir = path.with_name(path.stem + "_gt")
    if not path.is_file():
        write_synth_video(path, frames, size, seed)
    with open_source(str(path)) as source:  # decoded the way the stream decodes it
        images = []
        while (img := source.read()) is not None:
            images.append(img)
    gt_set = load_coco_panoptic(gt_dir / "panoptic.json", gt_dir / "panoptic")
    anns = sorted(gt_set.annotations, key=lambda a: a["image_id"])
    gts = [read_id_png(gt_set.png_path(a)).astype(np.int64) - 1 for a in anns]
    if len(gts) != len(images):
        raise FormatError(f"{path}: {len(images)} decoded frames but {len(gts)} ground-truth maps in {gt_dir}")
    return images, gts


def files_digest(*paths: str | Path) -> str:
    """sha256 (hex) of the named files, or of every file directly inside a named folder, by name
    and content: the identity of a bundle (two exports of one checkpoint differ) or checkpoint."""
    h = hashlib.sha256()
    for path in map(Path, paths):
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return h.hexdigest()


def cached_panoptic(
    cache: str | Path,
    identity: str,
    seed: int,
    images: list[np.ndarray],
    settings: Mapping[str, Any],
    predict: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """A model's panoptic maps of one video, from ``cache/results`` or computed and stored there.

    Args:
        cache: the video cache folder.
        identity: what identifies the model (:func:`files_digest` of its bundle or checkpoint).
        seed: the video's seed.
        images: the video's frames.
        settings: the post-processing settings the maps depend on (part of the key).
        predict: frame -> (H, W) integer panoptic map.

    Returns:
        (frames, H, W) panoptic maps (the dtype ``predict`` returns). A computed video prints
        ``seed S: N frames inferred`` on stderr.
    """
    key = hashlib.sha256(json.dumps([identity, seed, len(images), dict(settings)]).encode()).hexdigest()[:16]
    path = Path(cache) / "results" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return data["panoptic"]
    pans = np.stack([predict(img) for img in images])
    with atomic_path(path, fsync=False) as tmp:  # a stopped run leaves no truncated cache entry
        np.savez_compressed(tmp, panoptic=pans)
    print(f"seed {seed}: {len(images)} frames inferred", file=sys.stderr, flush=True)
    return pans


def renumber_instances(
    panoptic: np.ndarray, rng: np.random.Generator, thing_ids: Iterable[int], label_divisor: int
) -> np.ndarray:
    """A panoptic map with its thing instances renumbered at random: the ground-truth masks as
    a model without identities would give them (a tracker fed these is scored on its own).

    Args:
        panoptic: (H, W) integer panoptic map, void negative.
        rng: draws one permutation per call (seeded per video, the same numbers every run).
        thing_ids: the thing classes; their non-zero instances are renumbered 1..N in a random
            order over all of them (stuff, crowd and void are kept).
        label_divisor: ``panoptic id = class * label_divisor + instance``.

    Returns:
        The renumbered map, of ``panoptic``'s shape and dtype.

    Raises:
        InputShapeError: ``panoptic`` is not a 2-D integer array.
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2 or not np.issubdtype(pan.dtype, np.integer):
        raise InputShapeError(f"panoptic: expected an (H, W) integer map, got shape {pan.shape} dtype {pan.dtype}")
    ids, inverse = compact_ids(pan)
    ids = ids.astype(np.int64)
    things = np.asarray(sorted({int(t) for t in thing_ids}), np.int64)
    keep = (ids >= 0) & np.isin(ids // label_divisor, things) & (ids % label_divisor > 0)
    values = ids.copy()
    values[keep] = ids[keep] // label_divisor * label_divisor + rng.permutation(int(keep.sum())) + 1
    return values[inverse].reshape(pan.shape).astype(pan.dtype)
