"""Progress display for long loops: tqdm when installed, a plain periodic line otherwise.

The base install does not depend on tqdm; long jobs still report progress.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        yield from tqdm(items, total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)
        return
    start, last = time.monotonic(), 0.0
    for i, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last > 5.0 or (total is not None and i == total):
            last = now
            of = f"/{total}" if total is not None else ""
            print(f"{desc}: {i}{of} ({now - start:.0f} s)", file=sys.stderr, flush=True)
