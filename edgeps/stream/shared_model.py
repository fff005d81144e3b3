"""One runtime serving several producer threads (cameras): turns in arrival order, and, when the
bundle has a batch dimension, the frames that wait while the model is busy go in one call."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import numpy as np


class _Pending:
    __slots__ = ("batch", "heads", "error", "done", "queued", "started", "ended", "frames")

    def __init__(self, batch: np.ndarray):
        self.batch = batch
        self.heads: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.queued = time.perf_counter()
        self.started = self.ended = self.queued
        self.frames = 1


class SharedModel:
    """``infer`` for many threads on one :class:`edgeps.runtimes.base.Runtime`.

    Callers queue in arrival order. When the model is free, the caller at the head of the queue
    runs one model call for up to ``rt.max_batch`` queued frames (all of them for a dynamic
    batch; one for a batch-1 bundle, which makes this a first-come first-served lock) and hands
    every frame its heads. Nothing waits to fill a batch: a batch is whatever arrived during the
    previous call, so one camera alone sees no added latency.

    Thread safety: ``infer`` may be called from any number of threads; the runtime's model
    call runs one at a time.
    """

    def __init__(self, rt: Any, max_batch: int | None = None):
        """``max_batch``: at most this many frames per call (None: as many as the bundle takes;
        1: one at a time, even on a batched bundle)."""
        self.rt = rt
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        limits = [n for n in (rt.max_batch, max_batch) if n is not None]
        self._limit = min(limits) if limits else None  # None: any number
        self.batch_sizes: Counter[int] = Counter()  # frames per model call -> calls
        self._stats_lock = threading.Lock()

    def infer(self, batch: np.ndarray, timings: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Heads of one preprocessed frame ((1, ...) from ``rt.preprocess``), as ``rt.infer``
        gives them. Blocks until its frame was inferred; raises what the model call raised.

        ``timings``, when given, receives ``model_wait`` (ms queued before its model call),
        ``infer`` (ms of that call, shared by its frames) and ``batch`` (frames in it)."""
        req = _Pending(batch)
        with self._cond:
            self._queue.append(req)
            while not req.done:
                if self._busy:
                    self._cond.wait()
                    continue
                take = self._queue[: self._limit] if self._limit else list(self._queue)
                del self._queue[: len(take)]
                self._busy = True
                self._cond.release()
                try:
                    self._run(take)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if timings is not None:
            timings["model_wait"] = (req.started - req.queued) * 1e3
            timings["infer"] = (req.ended - req.started) * 1e3
            timings["batch"] = req.frames
        if req.error is not None:
            raise req.error
        assert req.heads is not None
        return req.heads

    def _run(self, take: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            heads = self.rt.infer_frames([r.batch for r in take])
        except BaseException as exc:  # every waiting frame gets the error, not only the leader
            heads, error = [None] * len(take), exc
        else:
            error = None
        ended = time.perf_counter()
        for r, h in zip(take, heads):
            r.heads, r.error, r.started, r.ended, r.frames, r.done = h, error, started, ended, len(take), True
        if error is not None:
            return
        with self._stats_lock:
            self.batch_sizes[len(take)] += 1

    def mean_batch(self) -> float:
        """Frames per model call so far (0.0 before the first)."""
        with self._stats_lock:
            sizes = dict(self.batch_sizes)
        calls = sum(sizes.values())
        return sum(n * c for n, c in sizes.items()) / calls if calls else 0.0
