"""Consumers at the end of the stream: what ``edgeps run`` (and the demo) do with results.

Each consumer gets every :class:`~edgeps.stream.pipeline.StreamItem` in order and is closed at
the end. Files are written under a temporary name and renamed on close, so a killed run never
leaves a truncated video or JSON that looks complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from edgeps.categories import Categories
from edgeps.errors import ConfigError, FormatError
from edgeps.io.coco_panoptic import panoptic_to_coco, write_id_png, write_json
from edgeps.stream.pipeline import StreamItem
from edgeps.visualize import overlay


class Consumer:
    def consume(self, item: StreamItem) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def live_status(item: StreamItem) -> str:
    return f"{item.fps:5.1f} FPS  {item.latency_ms:5.0f} ms  frame {item.frame.index}"


def annotate(
    item: StreamItem,
    categories: Categories,
    label_divisor: int,
    void_label: int,
    status: Callable[[StreamItem], str] = live_status,
) -> np.ndarray:
    """The frame with its panoptic overlay, legend, track ids and a status line: by default the
    live FPS / latency; ``status`` replaces it where the pass that draws is not the one timed
    (the demo scores while it draws, which slows that pass)."""
    img = overlay(
        item.frame.image,
        item.result.panoptic,
        categories,
        label_divisor=label_divisor,
        void_label=void_label,
        legend=True,
    )
    for seg in item.result.segments:
        if seg.track_id is not None:
            x, y = int(seg.centroid[0]), int(seg.centroid[1])
            cv2.putText(
                img, f"#{seg.track_id}", (x - 10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
            )
    text = status(item)
    h = img.shape[0]
    cv2.rectangle(img, (0, h - 22), (8 + 9 * len(text), h), (0, 0, 0), -1)
    cv2.putText(img, text, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


class AnnotatedVideo(Consumer):
    """Annotated frames to an mp4 (``mp4v``) or avi (``MJPG``) file."""

    def __init__(
        self,
        path: str | Path,
        categories: Categories,
        label_divisor: int,
        void_label: int,
        fps: float = 15.0,
        status: Callable[[StreamItem], str] = live_status,
    ):
        self.path = Path(path)
        self.status = status
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.categories, self.label_divisor, self.void_label, self.fps = categories, label_divisor, void_label, fps
        self._tmp = _tmp(self.path)
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def consume(self, item: StreamItem) -> None:
        img = annotate(item, self.categories, self.label_divisor, self.void_label, self.status)
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (img.shape[1], img.shape[0]))
            if not self._writer.isOpened():
                raise FormatError(f"{self.path}: OpenCV cannot write this video (use .mp4 or .avi)")
        self._writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)


def has_gui() -> bool:
    """True when this OpenCV can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    gui = info.split("GUI:", 1)[1].split("\n", 1)[0].strip().upper() if "GUI:" in info else "NONE"
    return gui not in ("", "NONE", "NO")


class Window(Consumer):
    """A live window; ``q`` or Esc stops the stream (raises StopIteration in consume)."""

    def __init__(self, categories: Categories, label_divisor: int, void_label: int, title: str = "edgeps"):
        if not has_gui():
            raise ConfigError(
                "--show: this OpenCV has no GUI support (opencv-python-headless); "
                "install 'opencv-python' for a window, or use --save OUT.mp4"
            )
        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError("--show: no display (DISPLAY is not set); use --save OUT.mp4")
        self.categories, self.label_divisor, self.void_label, self.title = categories, label_divisor, void_label, title

    def consume(self, item: StreamItem) -> None:
        cv2.imshow(self.title, annotate(item, self.categories, self.label_divisor, self.void_label))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise StopIteration

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class JsonLines(Consumer):
    """One JSON object per frame: frame index, source stamp, latency and the segments (id,
    category_id (the model's class), class (its name), dataset_id (the class's id in its
    dataset), instance, area, bbox [x, y, w, h], centroid [x, y], score, track_id)."""

    def __init__(self, path: str | Path, categories: Categories):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.names = {c.id: c.name for c in categories}
        self.dataset_ids = {c.id: c.source_id for c in categories}
        self._tmp = _tmp(self.path)
        self._fh: IO[str] | None = self._tmp.open("w", encoding="utf-8")

    def consume(self, item: StreamItem) -> None:
        assert self._fh is not None
        segs = []
        for s in item.result.segments:
            d = s.to_dict()
            d["class"] = self.names.get(s.category_id, str(s.category_id))
            d["dataset_id"] = self.dataset_ids.get(s.category_id, s.category_id)  # the dataset's id of the class
            if d["score"] is not None:
                d["score"] = round(float(d["score"]), 4)
            segs.append(d)
        rec = {
            "frame": item.frame.index,
            "stamp_ns": item.frame.stamp_ns,
            "latency_ms": round(item.latency_ms, 2),
            "timings_ms": {k: round(v, 2) for k, v in item.result.timings.items()},
            "segments": segs,
        }
        self._fh.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            os.replace(self._tmp, self.path)


class CocoDump(Consumer):
    """Per-frame panoptic PNGs (COCO encoding: id = panoptic id + 1, R + 256 G + 256^2 B) and,
    on close, the COCO-panoptic JSON that indexes them (scorable with ``edgeps eval-coco``).

    Category ids in both are the dataset's (``Category.source_id``: a Cityscapes label id, a
    COCO category id), so the dump scores against the dataset's own ground truth."""

    def __init__(self, out_dir: str | Path, categories: Categories, label_divisor: int, void_label: int):
        self.out = Path(out_dir)
        self.categories, self.label_divisor, self.void_label = categories, label_divisor, void_label
        self._dataset_categories = categories.with_dataset_ids()
        self._entries: list[tuple[int, str, list[dict]]] = []
        self._images: list[dict] = []

    def consume(self, item: StreamItem) -> None:
        # Files other tools read carry the dataset's category ids (the model's train ids mapped back).
        segs = item.result.segments
        seg_ids = self.categories.to_dataset_panoptic(
            np.array([s.id for s in segs], np.int64), self.label_divisor, self.void_label
        )
        scores = {int(d): s.score for d, s in zip(seg_ids, segs) if s.score is not None}
        pan = self.categories.to_dataset_panoptic(item.result.panoptic, self.label_divisor, self.void_label)
        ids, infos = panoptic_to_coco(pan, self._dataset_categories, self.label_divisor, self.void_label, scores)
        name = f"{item.frame.index:06d}.png"
        write_id_png(self.out / "panoptic" / name, ids)
        track = {int(d) + 1: s.track_id for d, s in zip(seg_ids, segs) if s.track_id is not None}
        for info in infos:
            if info["id"] in track:
                info["track_id"] = track[info["id"]]
        self._entries.append((item.frame.index, name, infos))
        h, w = ids.shape
        self._images.append(
            {"id": item.frame.index, "file_name": name, "frame": item.frame.index, "height": h, "width": w}
        )

    def close(self) -> None:
        # PNGs are already written; the JSON goes last, so it only indexes complete files.
        annotations = [{"image_id": i, "file_name": n, "segments_info": s} for i, n, s in self._entries]
        categories = self._dataset_categories.to_list()
        write_json(
            self.out / "panoptic.json", {"annotations": annotations, "images": self._images, "categories": categories}
        )


__all__ = ["AnnotatedVideo", "CocoDump", "Consumer", "JsonLines", "Window", "annotate", "has_gui"]
