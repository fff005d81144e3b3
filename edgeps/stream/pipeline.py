"""Camera to panoptic map, stages overlapped on threads.

::

    capture --(latest slot | queue)--> preprocess --q--> infer --q--> postprocess + track --q--> consumer

Each stage is a thread joined to the next by a small bounded queue; numpy, OpenCV and the
runtimes release the GIL, so the stages run in parallel on separate cores. In real-time mode a
slow stage backs up through the queues to the capture slot, which drops the stale frames (the
producer never blocks, latency stays bounded by the queue depths); in record mode the
back-pressure reaches the reader and every frame is processed in order.

On a 2-core machine the useful split is one core for the backend (``threads=1``) and one for
decode, preprocess, post-process and the consumers; ``edgeps run`` prints the split it used.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeps.result import PanopticResult
from edgeps.stream.capture import Capture
from edgeps.stream.sources import Frame, FrameSource
from edgeps.stream.tracker import Tracker

log = logging.getLogger("edgeps.stream")

STAGES = ("preprocess", "infer", "postprocess", "track")
_END = object()
_WINDOW = 4096  # per-stage timings kept for percentiles (bounded: a stream may run for days)


@dataclass
class StreamItem:
    """One processed frame: the frame, its result (``timings`` per stage, ms), the time from
    capture to result (ms) and the output rate when it came out (frames/s, smoothed)."""

    frame: Frame
    result: PanopticResult
    latency_ms: float
    fps: float


@dataclass
class _Work:
    frame: Frame
    payload: Any
    timings: dict[str, float] = field(default_factory=dict)


def _percentiles(values: Any) -> dict[str, float]:
    if not len(values):
        return {}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"mean": float(a.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max())}


class StreamPipeline:
    """Run ``runtime`` on every frame of ``source``; iterate to get :class:`StreamItem` s.

    ``runtime``: anything with ``preprocess(frame)``, ``infer(batch)`` and
    ``postprocess(heads, frame_hw)`` (an :class:`edgeps.runtimes.Runtime`). ``realtime``: see
    :mod:`edgeps.stream.capture`; default: real-time for live sources, record for files.
    """

    def __init__(
        self,
        runtime: Any,
        source: FrameSource,
        *,
        realtime: bool | None = None,
        tracker: Tracker | None = None,
        max_frames: int | None = None,
        queue_size: int = 1,
        reconnect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 2.0),
    ):
        self.runtime = runtime
        self.source = source
        self.realtime = source.live if realtime is None else realtime
        self.tracker = tracker
        self.capture = Capture(
            source,
            realtime=self.realtime,
            queue_size=max(2, queue_size),
            reconnect_timeout=reconnect_timeout,
            backoff=backoff,
            max_frames=max_frames,
        )
        self._queues = [queue.Queue(maxsize=max(1, queue_size)) for _ in range(3)]
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._source_error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self.timings: dict[str, deque] = {s: deque(maxlen=_WINDOW) for s in (*STAGES, "latency")}
        self.frames_out = 0
        self._t_start = 0.0
        self._t_first = 0.0
        self._t_last = 0.0
        self._fps = 0.0

    # -- plumbing --------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _stage(self, name: str, take: Callable[[], Any], work: Callable[[Any], Any], out: queue.Queue) -> None:
        try:
            while True:
                item = take()
                if item is _END or item is None:
                    break
                if not self._put(out, work(item)):
                    return
        except BaseException as exc:
            if self._error is None:
                self._error = exc
            self._stop.set()
        finally:
            try:
                out.put(_END, timeout=1.0)  # room is there unless everything is stopping
            except queue.Full:
                pass

    def _take_frame(self) -> Frame | None:
        # A source that ends with an error (a bad file in strict mode, a live source given up)
        # ends the stream like a clean end, so the frames already read are finished and handed
        # out; the error is raised once they are.
        try:
            return self.capture.get()
        except Exception as exc:
            self._source_error = exc
            return None

    def _preprocess(self, frame: Frame) -> _Work:
        t0 = time.perf_counter()
        batch = self.runtime.preprocess(frame.image)
        return _Work(frame, batch, {"preprocess": (time.perf_counter() - t0) * 1e3})

    def _infer(self, w: _Work) -> _Work:
        t0 = time.perf_counter()
        w.payload = self.runtime.infer(w.payload)
        w.timings["infer"] = (time.perf_counter() - t0) * 1e3
        return w

    def _postprocess(self, w: _Work) -> _Work:
        t0 = time.perf_counter()
        result = self.runtime.postprocess(w.payload, w.frame.image.shape[:2])
        t1 = time.perf_counter()
        if self.tracker is not None:
            self.tracker.update(result.panoptic, result.segments, w.frame.image)
        t2 = time.perf_counter()
        w.timings["postprocess"] = (t1 - t0) * 1e3
        w.timings["track"] = (t2 - t1) * 1e3
        result.timings = w.timings
        w.payload = result
        return w

    # -- public ----------------------------------------------------------------------------
    def start(self) -> StreamPipeline:
        q_pre, q_inf, q_out = self._queues
        stages = [
            ("preprocess", self._take_frame, self._preprocess, q_pre),
            ("infer", lambda: self._get(q_pre), self._infer, q_inf),
            ("postprocess", lambda: self._get(q_inf), self._postprocess, q_out),
        ]
        self._t_start = time.perf_counter()
        self.capture.start()
        for name, take, work, out in stages:
            t = threading.Thread(target=self._stage, args=(name, take, work, out), name=f"edgeps-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __iter__(self) -> Iterator[StreamItem]:
        if not self._threads:
            self.start()
        q_out = self._queues[2]
        try:
            while True:
                w = self._get(q_out)
                if w is _END:
                    break
                now = time.perf_counter()
                latency = (time.monotonic() - w.frame.time) * 1e3
                if self.frames_out == 0:
                    self._t_first = now
                else:
                    dt = now - self._t_last
                    self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / max(dt, 1e-6)
                self._t_last = now
                self.frames_out += 1
                for k, v in w.timings.items():
                    self.timings[k].append(v)
                self.timings["latency"].append(latency)
                yield StreamItem(w.frame, w.payload, latency, self._fps)
        finally:
            self.stop()
        if self._error is not None:
            raise self._error
        if self._source_error is not None:
            raise self._source_error

    def stop(self) -> None:
        """Stop every stage and release the source (idempotent; called at the end anyway)."""
        self._stop.set()
        self.capture.stop()
        for t in self._threads:
            t.join(timeout=5.0)
        if self._t_last == 0.0:
            self._t_last = time.perf_counter()

    def queue_depths(self) -> list[int]:
        return [q.qsize() for q in self._queues]

    def summary(self) -> dict[str, Any]:
        """Counters and timings of the run so far: frames, dropped, skipped input files (with
        the reason), FPS, ms per stage."""
        wall = max(self._t_last - self._t_start, 1e-9)
        skipped = self.source.skipped()
        steady = self.frames_out - 1
        out = {
            "frames": self.frames_out,
            "captured": self.capture.stats.captured,
            "dropped": self.capture.dropped,
            "reconnects": self.capture.stats.reconnects,
            "source_failures": self.capture.stats.failures,
            "skipped": len(skipped),
            "skipped_files": [{"file": str(path), "reason": reason} for path, reason in skipped],
            "mode": "realtime" if self.realtime else "record",
            "wall_s": wall,
            "fps": self.frames_out / wall,
            # after the first frame (model warm-up, stage filling): the sustained rate
            "fps_steady": steady / (self._t_last - self._t_first)
            if steady > 0 and self._t_last > self._t_first
            else 0.0,
            "stages_ms": {k: _percentiles(v) for k, v in self.timings.items() if k != "latency"},
            "latency_ms": _percentiles(self.timings["latency"]),
        }
        return out
