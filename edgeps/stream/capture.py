"""Reading a source on its own thread, in one of two modes.

* real-time: a :class:`LatestSlot` keeps only the newest frame, so however slow the rest of
  the pipeline is, it always works on the freshest picture and latency never grows; frames
  nobody took are counted as dropped. The producer never blocks.
* record: every frame, in order, through a bounded queue; when the consumer is slow the
  reader waits (back-pressure) instead of dropping.

A live source (camera, network stream) that dies after it has worked is reopened with
exponential backoff, and given up with a :class:`SourceError` after ``reconnect_timeout``
seconds without a frame; a file simply ends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from edgeps.errors import SourceError
from edgeps.stream.latest import LatestSlot
from edgeps.stream.sources import Frame, FrameSource

log = logging.getLogger("edgeps.stream")

_END = object()


@dataclass
class CaptureStats:
    captured: int = 0  # frames read from the source
    dropped: int = 0  # real-time mode: frames replaced before anyone took them
    reconnects: int = 0  # successful reopenings of a live source
    failures: int = 0  # times the source died


class Capture:
    """A source read on a daemon thread; :meth:`get` hands frames to the pipeline."""

    def __init__(
        self,
        source: FrameSource,
        *,
        realtime: bool,
        queue_size: int = 4,
        reconnect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 2.0),
        max_frames: int | None = None,
    ):
        self.source = source
        self.realtime = realtime
        self.reconnect_timeout = reconnect_timeout
        self.backoff = backoff
        self.max_frames = max_frames
        self.stats = CaptureStats()
        self.error: BaseException | None = None
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeps-capture", daemon=True)

    # -- consumer side --------------------------------------------------------------------
    def start(self) -> Capture:
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame (real-time: the newest), or None at the end of the stream. Raises the
        source's error if the stream ended because a live source could not be reopened."""
        if self.realtime:
            got = self._slot.get(timeout)
            item = None if got is None else got[1]
        else:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _END:
                self._queue.put(_END)  # later calls see the end too
                item = None
        if item is None and self.error is not None:
            raise self.error
        return item

    def stop(self) -> None:
        """Stop reading and release the source (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, self.reconnect_timeout + 1))
        self.source.close()

    @property
    def dropped(self) -> int:
        return self._slot.dropped if self.realtime else 0

    # -- producer side --------------------------------------------------------------------
    def _emit(self, frame: Frame) -> bool:
        if self.realtime:
            self._slot.put(frame)
            return True
        while not self._stop.is_set():  # back-pressure: wait for room, but stay stoppable
            try:
                self._queue.put(frame, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _finish(self) -> None:
        self.stats.dropped = self.dropped
        if self.realtime:
            self._slot.close()
        else:
            while True:
                try:
                    self._queue.put(_END, timeout=0.1)
                    return
                except queue.Full:
                    if self._stop.is_set():
                        try:
                            self._queue.get_nowait()  # nobody reads any more: make room for the end
                        except queue.Empty:
                            pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self.stats.captured >= self.max_frames:
                    return
                try:
                    image = self.source.read()
                except SourceError as exc:
                    if not self.source.live:
                        raise
                    self.stats.failures += 1
                    log.warning("%s; reopening", exc)
                    if not self._reconnect(exc):
                        return
                    continue
                if image is None:
                    return
                frame = Frame(
                    self.stats.captured, image, time.monotonic(), self.source.stamp_ns(), self.source.frame_path()
                )
                self.stats.captured += 1
                if not self._emit(frame):
                    return
                self.stats.dropped = self.dropped
        except BaseException as exc:  # handed to the consumer by get()
            self.error = exc
        finally:
            self._finish()

    def _reconnect(self, cause: SourceError) -> bool:
        """Reopen with exponential backoff until ``reconnect_timeout``; False when given up."""
        delay, deadline = self.backoff[0], time.monotonic() + self.reconnect_timeout
        last: Exception = cause
        while not self._stop.is_set():
            if time.monotonic() >= deadline:
                self.error = SourceError(
                    f"{self.source.spec}: gave up after {self.reconnect_timeout:.1f} s of failed reconnects (last "
                    f"error: {last})"
                )
                return False
            self._stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            try:
                self.source.reopen()
            except SourceError as exc:
                last = exc
                delay = min(delay * 2, self.backoff[1])
                continue
            self.stats.reconnects += 1
            log.info("%s: reopened (reconnect %d)", self.source.spec, self.stats.reconnects)
            return True
        return False
