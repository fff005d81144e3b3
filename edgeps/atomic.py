"""Atomic file and folder writes: a killed process never leaves a half-written file under the
final name.

Everything edgeps writes for later reading (checkpoints, bundles, manifests, videos, JSON,
PNGs) goes through :func:`atomic_path` (or the byte/text shortcuts): the writer fills a
temporary name in the same folder (same file system, so the rename is atomic), and only a
writer that finished is renamed over the final name with :func:`os.replace`. If the writer
raises, the temporary is removed and an existing file under the final name is left as it was;
if the process is killed, at most a hidden ``.NAME.tmp<pid>-...`` file is left behind, which
no reader mistakes for the real one.

A folder (a bundle) is built under a :func:`temp_name` and moved into place with
:func:`replace_dir`, which replaces an older folder of that name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PendingFile",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "replace_dir",
    "temp_name",
]


def temp_name(path: str | Path) -> Path:
    """A hidden temporary name beside ``path`` that keeps its suffix (OpenCV picks the image
    or video encoder by the suffix) and is unique per process and call."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class PendingFile:
    """A file written over a long time (a video, JSON lines) under a temporary name.

    ``tmp`` is the path to write; :meth:`commit` moves the finished file to ``path``;
    :meth:`discard` deletes it. The parent folder is created. :func:`atomic_path` is the
    ``with`` form for writes that happen in one block.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_name(self.path)

    def commit(self, *, fsync: bool = True) -> Path:
        """Replace ``path`` with the written temporary file; returns ``path``."""
        if not self.tmp.exists():
            raise FileNotFoundError(f"{self.path}: the writer did not create its temporary file {self.tmp.name}")
        if fsync:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        if fsync:
            _fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Delete the temporary file (if any); ``path`` is untouched."""
        with contextlib.suppress(OSError):
            self.tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``.

    The writer inside the ``with`` block writes the temporary path (any API: ``torch.save``,
    ``cv2.imwrite``, a ``VideoWriter``, ``open``). On an exception the temporary is removed
    and ``path`` is untouched. The parent folder is created.
    """
    pending = PendingFile(path)
    try:
        yield pending.tmp
        pending.commit(fsync=fsync)
    except BaseException:
        pending.discard()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Rename the finished folder ``src`` to ``dst``, replacing an older ``dst``.

    ``os.replace`` cannot replace a non-empty folder, so the old one is first moved aside
    (both renames are atomic; between them no folder is under ``dst``, never a partial one),
    then deleted.
    """
    src, dst = Path(src), Path(dst)
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(dst.parent)
