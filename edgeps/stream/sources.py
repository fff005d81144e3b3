"""Frame sources: one ``open_source(spec)`` for cameras, files, network streams and folders.

A spec is what a user types after ``--source``:

=========================  =====================================================
``0``, ``1``               camera index (OpenCV ``VideoCapture``; live)
``rtsp://...``, ``http://`` network stream (FFmpeg; live)
``... ! appsink``          GStreamer pipeline (where OpenCV has GStreamer; live)
``DIR`` or ``*.png`` glob  image folder, sorted by name
``video.mp4``              video file (ends cleanly at its last frame)
``BAG.db3:/topic``         rosbag2 ``sensor_msgs/Image`` topic (``rosbags`` package)
=========================  =====================================================

Every source yields HxWx3 uint8 BGR frames. A source that cannot be opened raises
:class:`~edgeps.errors.SourceError` at once, naming the spec and why; live sources can be
reopened (:meth:`FrameSource.reopen`) after they die, which :mod:`edgeps.stream.capture` does
with backoff.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeps.errors import DataNotFoundError, EdgepsError, SourceError
from edgeps.preprocess import as_bgr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OPEN_TIMEOUT_MS = 5000  # network streams: give up opening / reading after this long
_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)
log = logging.getLogger("edgeps.stream")
_ROSBAG = re.compile(r"^(?P<bag>.+?(\.db3|\.mcap)?):(?P<topic>/[^:]*)$")


@dataclass
class Frame:
    """One captured frame: ``index`` counts frames read from the source (reopens included),
    ``time`` is ``time.monotonic()`` at capture, ``stamp_ns`` the source's own time stamp when
    it has one (rosbag, ROS message), else None; ``path`` the file the frame came from for an
    image folder or glob, else None."""

    index: int
    image: np.ndarray
    time: float
    stamp_ns: int | None = None
    path: Path | None = None


class FrameSource:
    """The source contract: ``read()`` gives the next BGR frame, ``None`` at a clean end, and
    raises :class:`SourceError` when a source that worked breaks."""

    kind = "source"
    live = False  # a live source is reopened when it dies; a file just ends

    def __init__(self, spec: str):
        self.spec = spec
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None  # (H, W) when known

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def stamp_ns(self) -> int | None:
        """Time stamp of the frame last read, when the source has its own clock."""
        return None

    def frame_path(self) -> Path | None:
        """The file the frame last read came from (image folders and globs), else None."""
        return None

    def skipped(self) -> list[tuple[Path, str]]:
        """(file, reason) of each input skipped as unreadable so far (image folders and globs)."""
        return []

    def reopen(self) -> None:
        """Open again after a failure (live sources); raises SourceError while it cannot."""
        raise SourceError(f"{self.spec}: a {self.kind} cannot be reopened")

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class CaptureSource(FrameSource):
    """OpenCV ``VideoCapture``: camera, video file, network stream or GStreamer pipeline."""

    def __init__(self, spec: str, kind: str, target: int | str, api: int = cv2.CAP_ANY):
        super().__init__(spec)
        self.kind = kind
        self.live = kind != "video"
        self._target = target
        self._api = api
        self._cap: cv2.VideoCapture | None = None
        self._open()

    def _open(self) -> None:
        params: list[int] = []
        if self.kind == "stream":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
        cap = cv2.VideoCapture(self._target, self._api, params) if params else cv2.VideoCapture(self._target, self._api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.spec}: cannot open {self.kind} ({_why(self.kind)})")
        if self.live:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog (where supported)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and np.isfinite(fps) else None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (h, w) if h > 0 and w > 0 else None
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.spec}: {self.kind} is closed")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.live:
                raise SourceError(f"{self.spec}: {self.kind} stopped delivering frames")
            return None
        return as_bgr(frame, f"{self.spec} frame")

    def reopen(self) -> None:
        if not self.live:
            return super().reopen()
        self.close()
        self._open()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource(FrameSource):
    """Images of a folder (or a glob), in name order.

    An unreadable or corrupt file is logged as a warning, recorded in :meth:`skipped` and
    passed over, so one bad file does not lose the rest; with ``strict=True`` it raises
    :class:`SourceError` instead (the frames before it have been handed out already).
    16-bit images are scaled to 8 bits; grey and BGRA become BGR.
    """

    kind = "images"

    def __init__(self, spec: str, paths: list[Path], *, strict: bool = False):
        super().__init__(spec)
        if not paths:
            raise SourceError(f"{spec}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
        self.paths = paths
        self.strict = strict
        self._next = 0
        self._current: Path | None = None
        self._skipped: list[tuple[Path, str]] = []

    def _load(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            reason = "not a readable image" if path.is_file() else "no longer exists"
            raise SourceError(f"{path}: {reason}")
        if image.dtype != np.uint8:
            if not np.issubdtype(image.dtype, np.integer):
                raise SourceError(f"{path}: unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(np.iinfo(image.dtype).max)))
        try:
            return as_bgr(image, str(path))
        except EdgepsError as exc:
            raise SourceError(str(exc)) from exc

    def read(self) -> np.ndarray | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                image = self._load(path)
            except SourceError as exc:
                if self.strict:
                    raise
                reason = str(exc).removeprefix(f"{path}: ")
                self._skipped.append((path, reason))
                log.warning("%s: skipped (%s)", path, reason)
                continue
            self._current = path
            return image
        self._current = None
        return None

    def frame_path(self) -> Path | None:
        return self._current

    def skipped(self) -> list[tuple[Path, str]]:
        return list(self._skipped)


class ArraySource(FrameSource):
    """Frames already in memory (a benchmark's, a test's), read in order ``repeat`` times; not
    live, no decoding: the stream's cost without the capture's."""

    kind = "frames"

    def __init__(self, frames: list[np.ndarray], *, repeat: int = 1, spec: str = "frames"):
        super().__init__(spec)
        if not frames:
            raise SourceError(f"{spec}: no frames")
        if repeat < 1:
            raise SourceError(f"{spec}: repeat must be >= 1, got {repeat}")
        self._frames = [as_bgr(f, f"{spec}[{i}]") for i, f in enumerate(frames)]
        self._total = len(self._frames) * repeat
        self._next = 0
        self.size = self._frames[0].shape[:2]

    def read(self) -> np.ndarray | None:
        if self._next >= self._total:
            return None
        frame = self._frames[self._next % len(self._frames)]
        self._next += 1
        return frame


def _why(kind: str) -> str:
    return {
        "camera": "no such camera device, or it is busy",
        "stream": f"refused, unreachable or not a video stream within {OPEN_TIMEOUT_MS / 1000:.0f} s",
        "gstreamer": "the pipeline failed to start"
        + ("" if has_gstreamer() else "; this OpenCV build has no GStreamer support"),
        "video": "not a video file OpenCV can decode",
    }[kind]


def has_gstreamer() -> bool:
    info = cv2.getBuildInformation()
    m = re.search(r"GStreamer:\s*(\S+)", info)
    return bool(m and m.group(1).upper().startswith("YES"))


def open_source(spec: str | int | os.PathLike, *, strict: bool = False) -> FrameSource:
    """Open a frame source from its spec (see the module docstring); raises at once when it
    cannot be opened, naming the spec and the reason.

    ``strict`` applies to image folders and globs: stop at the first unreadable file instead
    of skipping it with a warning.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CaptureSource(str(spec), "camera", int(spec))
    text = os.fspath(spec).strip()
    if not text:
        raise SourceError("source: empty spec (expected a camera index, file, folder, glob or URL)")
    if _URL.match(text):
        return CaptureSource(text, "stream", text, cv2.CAP_FFMPEG)
    if "!" in text:
        if not has_gstreamer():
            raise SourceError(f"{text}: a GStreamer pipeline, but this OpenCV build has no GStreamer support")
        return CaptureSource(text, "gstreamer", text, cv2.CAP_GSTREAMER)
    bag = _ROSBAG.match(text)
    if bag and Path(bag.group("bag")).exists():
        from edgeps.stream.rosbag_source import RosbagSource

        return RosbagSource(text, Path(bag.group("bag")), bag.group("topic"))
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(
            text, sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), strict=strict
        )
    if any(c in text for c in "*?["):
        return ImageFolderSource(
            text, sorted(Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES), strict=strict
        )
    if not path.exists():
        raise DataNotFoundError(f"source not found: {text} (expected a camera index, file, folder, glob or URL)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(text, [path], strict=True)
    return CaptureSource(text, "video", text, cv2.CAP_FFMPEG)
