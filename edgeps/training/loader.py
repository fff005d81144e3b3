"""The training data stream: a ``torch.utils.data.DataLoader`` whose workers decode and augment.

- :class:`TrainSamples` maps an ``(epoch, index)`` key to one augmented sample. Its random
  stream is ``np.random.default_rng([seed, epoch, index])``, so a batch is the same whatever
  the number of workers, and the same again after ``--resume``.
- :class:`EpochSampler` yields those keys without end: each epoch is a
  ``torch.utils.data.DistributedSampler`` permutation (seeded by seed and epoch) of this
  rank's shard, so ranks never share an image within an epoch. It can start mid-epoch, which
  is how a resumed run continues exactly where it stopped.
- :func:`train_loader` puts them in a DataLoader: persistent workers, pinned memory on CUDA,
  prefetch; each worker runs OpenCV and torch single-threaded. Workers are spawned, not
  forked: a fork of a process whose OpenCV / OpenMP thread pools already ran can deadlock in
  the child (it did here, in the first resize of a worker), so the source is pickled to each.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from torch.utils.data._utils import signal_handling

from edgeps.preprocess import InputSpec
from edgeps.training.batch import collate_crops
from edgeps.training.config import DataConfig
from edgeps.training.distributed import DistInfo
from edgeps.training.samples import make_train_crop

log = logging.getLogger("edgeps.train")

MAX_AUTO_WORKERS = 16


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(local_world_size: int = 1, *, in_memory: bool = False) -> int:
    """Workers per training process when ``data.workers`` is -1: the cores left to each process
    after its own compute thread, at most ``MAX_AUTO_WORKERS``; 0 (load in the training
    process) when a process has a single core, or when the source is already decoded in memory
    (a fixed synthetic set): then only augmentation is left to share out, and a worker took
    compute time from the training step instead (0.91x on the 2-core machine here)."""
    if in_memory:
        return 0
    per_process = available_cores() // max(local_world_size, 1)
    return max(0, min(MAX_AUTO_WORKERS, per_process - 1))


def compute_threads(workers: int, local_world_size: int = 1) -> int:
    """torch threads of a training process that has ``workers`` loader processes: the cores of
    the process not taken by its workers, at least 1 (the workers and the training step then
    never fight over one core; with 2 cores and 1 worker sharing both, the step slowed more
    than loading in the step cost)."""
    per_process = available_cores() // max(local_world_size, 1)
    return max(1, per_process - workers)


class TrainSamples(torch.utils.data.Dataset):
    """``(epoch, index) -> dict`` of one augmented crop (a :class:`TrainCrop`) plus ``index``
    and ``epoch``; the crop's inputs and targets are made on the training device
    (:func:`edgeps.training.batch.train_batch`). ``source`` is any sequence of samples with
    ``image`` and ``panoptic`` (a dataset decoded on access, or a list of pre-rendered synthetic scenes)."""

    def __init__(self, source: Sequence[Any], cfg: DataConfig, spec: InputSpec, seed: int) -> None:
        self.source, self.cfg, self.spec, self.seed = source, cfg, spec, int(seed)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        sample = self.source[index]
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        crop = make_train_crop(sample.image, sample.panoptic, self.cfg, self.spec, rng)
        return {"crop": crop, "index": int(index), "epoch": int(epoch)}


def collate_batch(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack crops into torch tensors (:func:`collate_crops`, plus ``index`` and ``epoch``).
    Tensors cross from a worker through shared memory (pickled numpy batches would cost the
    training process a copy; docs/measurements.md)."""
    batch = collate_crops([it["crop"] for it in items])
    batch["index"] = torch.tensor([it["index"] for it in items], dtype=torch.int64)
    batch["epoch"] = torch.tensor([it["epoch"] for it in items], dtype=torch.int64)
    return batch


@dataclass(frozen=True)
class StreamPosition:
    """Where a rank's endless stream stands: ``epoch`` and how many of its samples were used."""

    epoch: int
    offset: int


class EpochSampler(Sampler):
    """Endless ``(epoch, index)`` keys of this rank's shard, epoch after epoch.

    ``n`` images, ``world_size`` / ``rank`` as DDP's; every epoch's order is a
    ``DistributedSampler`` (shuffle, ``seed``) with ``set_epoch(epoch)``; the stream starts at
    ``start`` (an epoch and the number of its samples already used)."""

    def __init__(self, n: int, info: DistInfo, seed: int, start: StreamPosition = StreamPosition(0, 0)) -> None:
        self.n, self.info, self.seed, self.start = int(n), info, int(seed), start
        self._sampler = DistributedSampler(
            range(self.n), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=self.seed
        )

    @property
    def samples_per_epoch(self) -> int:
        """Samples each rank draws per epoch (the shard, padded to equal length as DDP pads)."""
        return self._sampler.num_samples

    def position(self, consumed: int) -> StreamPosition:
        """The position after ``consumed`` samples of this stream (from epoch 0)."""
        return StreamPosition(consumed // self.samples_per_epoch, consumed % self.samples_per_epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.start.epoch, self.start.offset
        while True:
            self._sampler.set_epoch(epoch)
            for k, index in enumerate(self._sampler):
                if k >= skip:
                    yield epoch, index
            epoch, skip = epoch + 1, 0


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    # A spawned worker ends with a normal interpreter shutdown, where a C++ thread pool's
    # destructor can abort ("terminate called without an active exception", seen here in about
    # one worker in three). The training process's SIGCHLD handler then raises an error at an
    # arbitrary point of its own code. Ending with os._exit once the worker loop has returned
    # (its results are already delivered) skips that teardown.
    atexit.register(os._exit, 0)


def train_loader(
    samples: TrainSamples,
    sampler: EpochSampler,
    batch_size: int,
    *,
    workers: int,
    device_type: str = "cpu",
    prefetch: int = 4,
) -> DataLoader:
    """The DataLoader of training batches (dicts of tensors, see :func:`collate_batch`).

    ``workers`` 0 loads in this process; otherwise persistent worker processes, each holding
    ``prefetch`` batches ahead; memory pinned (by the loader's own thread) when training on
    CUDA. Iterate it through :class:`BatchStream`."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = {
            "persistent_workers": True,
            "prefetch_factor": prefetch,
            "worker_init_fn": _worker_init,
            "multiprocessing_context": "spawn",
        }
    return DataLoader(
        samples,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_batch,
        pin_memory=device_type == "cuda",
        drop_last=False,
        **extra,
    )


class BatchStream:
    """The batches of a :func:`train_loader` (dicts of tensors), whose worker processes and
    signal handler end with :meth:`close` (or the ``with`` block).

    torch's DataLoader installs a SIGCHLD handler for its workers and leaves it for the life of
    the process; in a process that trains and then goes on (a notebook, a test run), a later
    subprocess ending ran that handler inside ``subprocess.communicate`` and the interpreter
    crashed (seen here). Closing shuts the workers down and puts the previous handler back."""

    def __init__(self, loader: DataLoader) -> None:
        self._main_thread = threading.current_thread() is threading.main_thread()
        self._previous = signal.getsignal(signal.SIGCHLD) if self._main_thread else None
        self._it: Iterator[dict[str, torch.Tensor]] | None = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            raise StopIteration
        return next(self._it)

    def close(self) -> None:
        if self._it is None:
            return
        self._it = None  # the iterator's finalizer stops and joins the workers
        if self._main_thread and signal.getsignal(signal.SIGCHLD) is not self._previous:
            signal.signal(signal.SIGCHLD, self._previous)
            signal_handling._SIGCHLD_handler_set = False  # a later loader installs it again

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "BatchStream",
    "EpochSampler",
    "StreamPosition",
    "TrainSamples",
    "available_cores",
    "collate_batch",
    "compute_threads",
    "default_workers",
    "train_loader",
]
