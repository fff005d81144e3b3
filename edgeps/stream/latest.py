"""A one-slot holder for the newest item: real-time consumers never see stale frames.

A producer ``put``s without ever blocking; an item nobody took before the next ``put`` is
counted as dropped. Sequence numbers let a consumer tell a new item from one it already saw,
so latency never grows however slow the consumer is.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Newest-item-wins holder with sequence numbers and a dropped counter (thread safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._seq = 0  # sequence number of the item in the slot (0: never filled)
        self._taken = 0  # sequence number of the last item handed out
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> int:
        """Store ``item`` (replacing an untaken one, which counts as dropped); never blocks."""
        with self._cond:
            if self._seq > self._taken:
                self.dropped += 1
            self._seq += 1
            self._item = item
            self._cond.notify_all()
            return self._seq

    def get(self, timeout: float | None = None) -> tuple[int, T] | None:
        """The newest item not yet taken, waiting for one; ``None`` once closed and drained
        (or on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > self._taken or self._closed, timeout):
                return None
            if self._seq <= self._taken:
                return None
            self._taken = self._seq
            item, self._item = self._item, None
            return self._seq, item  # type: ignore[return-value]

    def close(self) -> None:
        """No more items: wakes consumers; the last untaken item can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def produced(self) -> int:
        return self._seq
