"""Build a calibration set of preprocessed batches from a spec string."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeps.errors import ConfigError, DataNotFoundError, FormatError
from edgeps.io.images import read_bgr
from edgeps.preprocess import InputSpec, preprocess

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


@dataclass
class CalibrationSet:
    """Preprocessed (1, 3, H, W) float32 batches plus where they came from."""

    batches: list[np.ndarray]
    source: str
    names: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"source": self.source, "images": len(self.batches)}


def _frames_from_images(paths: list[Path]) -> list[tuple[str, np.ndarray]]:
    out = []
    for p in paths:
        img = read_bgr(p)
        if img is None:
            raise FormatError(f"calibration image {p}: not a readable image")
        out.append((p.name, img))
    return out


def _frames_from_video(path: Path, n: int) -> list[tuple[str, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FormatError(f"calibration video {path}: OpenCV cannot open it as a video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    if total <= 0:
        raise FormatError(f"calibration video {path}: reports no frames")
    for idx in np.linspace(0, total - 1, num=min(n, total)).round().astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, frame = cap.read()
        if ok:
            frames.append((f"{path.name}#{idx}", frame))
    cap.release()
    if not frames:
        raise FormatError(f"calibration video {path}: no frame could be decoded")
    return frames


def load_calibration_set(spec: str, input_spec: InputSpec, n: int = 64) -> CalibrationSet:
    """``spec``: a data spec (``synth:train:N``, ``DIR[:SPLIT[:N]]`` of a Cityscapes or
    COCO-panoptic root; no split = val), an image folder or glob, or a video file. ``n``: at
    most this many frames (the first ones of a dataset, spread over a video)."""
    if n < 1:
        raise ConfigError(f"calibration: need at least one image, asked for {n}")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"calibration: empty source {spec!r} (a data spec, image folder, glob or video)")
    from edgeps.data.datasets import is_dataset_spec, open_dataset

    path = Path(spec).expanduser()
    frames: list[tuple[str, np.ndarray]]
    if is_dataset_spec(spec):
        ds = open_dataset(spec)
        frames = [(ds[i].name, ds[i].image) for i in range(min(n, len(ds)))]
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        frames = _frames_from_video(path, n)
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataNotFoundError(f"calibration folder {path}: no images ({', '.join(IMAGE_SUFFIXES)})")
        frames = _frames_from_images(files[:n])
    elif any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataNotFoundError(f"calibration glob {spec!r}: matches no images")
        frames = _frames_from_images(files[:n])
    elif not path.exists():
        raise DataNotFoundError(f"calibration source not found: {spec!r} (a data spec, image folder, glob or video)")
    else:
        raise FormatError(
            f"calibration source {spec!r}: not an image folder, a video ({', '.join(VIDEO_SUFFIXES)}) or a dataset"
        )
    if not frames:
        raise DataNotFoundError(f"calibration source {spec!r}: holds no images")
    return CalibrationSet([preprocess(f, input_spec) for _, f in frames], spec, [name for name, _ in frames])
