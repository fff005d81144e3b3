"""Consumers at the end of the stream: what ``edgeps run`` (and the demo) do with results.

Each consumer gets every :class:`~edgeps.stream.pipeline.StreamItem` in order and is closed at
the end. Files are written under a temporary name and renamed on close, so a killed run never
leaves a truncated video or JSON that looks complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edgeps.atomic import PendingFile, atomic_path, atomic_write_text
from edgeps.categories import Categories
from edgeps.errors import ConfigError, FormatError
from edgeps.io.cityscapes import panoptic_to_instance_ids, write_instance_ids_png
from edgeps.io.coco_panoptic import panoptic_to_coco, write_id_png, write_json
from edgeps.stream.pipeline import StreamItem
from edgeps.stream.sources import Frame
from edgeps.visualize import overlay


class Consumer:
    def consume(self, item: StreamItem) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


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


def letterbox(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (H, W, 3) scaled to fit ``size`` (H, W) with its aspect kept, centred on black."""
    h, w = size
    scale = min(h / img.shape[0], w / img.shape[1])
    nh, nw = max(1, round(img.shape[0] * scale)), max(1, round(img.shape[1] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


class AnnotatedVideo(Consumer):
    """Annotated frames to an mp4 (``mp4v``) or avi (``MJPG``) file, at the first frame's size
    (later frames of another size are letterboxed into it)."""

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
        self.categories, self.label_divisor, self.void_label, self.fps = categories, label_divisor, void_label, fps
        self._file = PendingFile(self.path)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)
        self.frames = 0

    def consume(self, item: StreamItem) -> None:
        img = annotate(item, self.categories, self.label_divisor, self.void_label, self.status)
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self._writer = cv2.VideoWriter(str(self._file.tmp), fourcc, self.fps, (img.shape[1], img.shape[0]))
            if not self._writer.isOpened():
                raise FormatError(f"{self.path}: OpenCV cannot write this video (use .mp4 or .avi)")
            self._size = img.shape[:2]
        if img.shape[:2] != self._size:  # images of a folder differ in size: fit them into the first's
            img = letterbox(img, self._size)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> None:
        """Finish the video with the frames written so far (none written: no file)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._file.commit()


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


def segments_record(item: StreamItem, categories: Categories) -> dict[str, Any]:
    """The JSON record of one frame: frame index, source file (folders), source stamp, latency,
    stage timings (ms) and the segments (id, category_id (the model's class), class (its
    name), dataset_id (the class's id in its dataset), instance, area, bbox [x, y, w, h],
    centroid [x, y], score, track_id)."""
    segs = []
    for s in item.result.segments:
        d = s.to_dict()
        known = s.category_id in categories
        d["class"] = categories[s.category_id].name if known else str(s.category_id)
        d["dataset_id"] = categories[s.category_id].source_id if known else s.category_id
        if d["score"] is not None:
            d["score"] = round(float(d["score"]), 4)
        segs.append(d)
    rec: dict[str, Any] = {"frame": item.frame.index}
    if item.frame.path is not None:
        rec["file"] = item.frame.path.name
    rec.update(
        {
            "stamp_ns": item.frame.stamp_ns,
            "latency_ms": round(item.latency_ms, 2),
            "timings_ms": {k: round(v, 2) for k, v in item.result.timings.items()},
            "segments": segs,
        }
    )
    return rec


class JsonLines(Consumer):
    """One JSON object per frame (:func:`segments_record`), one per line, flushed per frame;
    on close the file is moved to its final name, complete up to the last frame done."""

    def __init__(self, path: str | Path, categories: Categories):
        self.path = Path(path)
        self.categories = categories
        self._file = PendingFile(self.path)
        self._fh: IO[str] | None = self._file.tmp.open("w", encoding="utf-8")

    def consume(self, item: StreamItem) -> None:
        assert self._fh is not None
        self._fh.write(json.dumps(segments_record(item, self.categories)) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._file.commit()


def output_stem(frame: Frame) -> str:
    """The name outputs of a frame are saved under: the input file's stem (folders, globs), else
    the frame index as six digits."""
    return frame.path.stem if frame.path is not None else f"{frame.index:06d}"


class CocoDump(Consumer):
    """Per-frame panoptic PNGs (COCO encoding: id = panoptic id + 1, R + 256 G + 256^2 B) in
    ``DIR/panoptic/`` and, on close, ``DIR/panoptic.json`` indexing the PNGs written (scorable
    with ``edgeps eval-coco`` and panopticapi's ``pq_compute``).

    Category ids are the dataset's (``Category.source_id``: a Cityscapes label id, a COCO
    category id), so the dump scores against the dataset's own ground truth. For files from a
    folder, ``images[].file_name`` is the input's name and the PNG is ``<stem>.png``; image ids
    come from ``image_ids`` (see :func:`edgeps.io.coco_panoptic.image_ids_for_files`); a file
    it lacks is a :class:`ConfigError` naming it (``where`` names the mapping's origin). Frames
    of a video or camera are ``<index:06d>.png`` with the frame index as image id.
    """

    def __init__(
        self,
        out_dir: str | Path,
        categories: Categories,
        label_divisor: int,
        void_label: int,
        image_ids: Mapping[str, Any] | None = None,
        where: str = "image ids",
    ):
        self.out = Path(out_dir)
        self.where = where
        self.categories, self.label_divisor, self.void_label = categories, label_divisor, void_label
        self.image_ids = dict(image_ids or {})
        self._dataset_categories = categories.with_dataset_ids()
        self._annotations: list[dict] = []
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
        name = f"{output_stem(item.frame)}.png"
        write_id_png(self.out / "panoptic" / name, ids)
        track = {int(d) + 1: s.track_id for d, s in zip(seg_ids, segs) if s.track_id is not None}
        for info in infos:
            if info["id"] in track:
                info["track_id"] = track[info["id"]]
        h, w = ids.shape
        if item.frame.path is not None:
            source = item.frame.path.name
            if source not in self.image_ids:
                raise ConfigError(f"{self.where}: no image with the file name of {source}")
            image_id = self.image_ids[source]
            self._images.append({"id": image_id, "file_name": source, "height": h, "width": w})
        else:
            image_id = item.frame.index
            self._images.append({"id": image_id, "file_name": name, "frame": item.frame.index, "height": h, "width": w})
        self._annotations.append({"image_id": image_id, "file_name": name, "segments_info": infos})

    def close(self) -> None:
        """Write the JSON for the PNGs written so far (PNGs first: it indexes only complete files)."""
        categories = self._dataset_categories.to_list()
        write_json(
            self.out / "panoptic.json",
            {"annotations": self._annotations, "images": self._images, "categories": categories},
        )


OUT_FORMATS = ("coco", "cityscapes")


class PerImageOutputs(Consumer):
    """Outputs named after each input, in one folder: ``<stem>.png`` (the panoptic map),
    ``<stem>.json`` (:func:`segments_record`) and, with ``overlay``, ``<stem>_overlay.png``.

    ``out_format`` picks the PNG encoding, both in the dataset's category ids:
    ``coco``: RGB, segment id = panoptic id + 1 = R + 256 G + 256^2 B (void 0), the ids the
    JSON's segments carry + 1; ``cityscapes``: ``<stem>_instanceIds.png``, 16-bit, label id
    for stuff and label id * 1000 + instance - 1 for things (void 0), as cityscapesscripts reads.
    Each file is written atomically.
    """

    def __init__(
        self,
        out_dir: str | Path,
        categories: Categories,
        label_divisor: int,
        void_label: int,
        out_format: str = "coco",
        overlay: bool = False,
    ):
        if out_format not in OUT_FORMATS:
            raise ConfigError(f"--out-format: expected one of {', '.join(OUT_FORMATS)}, got {out_format!r}")
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.categories, self.label_divisor, self.void_label = categories, label_divisor, void_label
        self.out_format, self.overlay = out_format, overlay
        self._dataset_categories = categories.with_dataset_ids()
        self.written = 0

    def consume(self, item: StreamItem) -> None:
        stem = output_stem(item.frame)
        pan = self.categories.to_dataset_panoptic(item.result.panoptic, self.label_divisor, self.void_label)
        if self.out_format == "coco":
            ids, _ = panoptic_to_coco(pan, self._dataset_categories, self.label_divisor, self.void_label)
            write_id_png(self.out / f"{stem}.png", ids)
        else:
            instance_ids = panoptic_to_instance_ids(pan, self._dataset_categories, self.label_divisor, self.void_label)
            write_instance_ids_png(self.out / f"{stem}_instanceIds.png", instance_ids)
        atomic_write_text(self.out / f"{stem}.json", json.dumps(segments_record(item, self.categories)))
        if self.overlay:
            img = overlay(
                item.frame.image,
                item.result.panoptic,
                self.categories,
                label_divisor=self.label_divisor,
                void_label=self.void_label,
                legend=True,
            )
            path = self.out / f"{stem}_overlay.png"
            with atomic_path(path, fsync=False) as tmp:
                if not cv2.imwrite(str(tmp), img):
                    raise FormatError(f"{path}: OpenCV could not write the PNG")
        self.written += 1


__all__ = [
    "OUT_FORMATS",
    "AnnotatedVideo",
    "CocoDump",
    "Consumer",
    "JsonLines",
    "PerImageOutputs",
    "Window",
    "annotate",
    "has_gui",
    "output_stem",
    "segments_record",
]
