"""One runtime shared by several threads: concurrent ``predict`` calls give exactly the results
of sequential calls (real ONNX Runtime bundle); the backend session runs one call at a time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

THREADS = 4
ROUNDS = 3


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Different scenes at different sizes (letterboxed, stretched-to-fit, model size)."""
    from edgeps.data.datasets import open_dataset

    out = []
    for i, size in enumerate([(64, 128), (96, 128), (48, 160), (64, 128), (120, 90), (64, 128)]):
        out.append(open_dataset(f"synth:val:{i + 1}", size=size)[i].image)
    return out


def _signature(result) -> tuple:
    return result.panoptic.tobytes(), tuple((s.id, s.area, s.score) for s in result.segments)


def test_concurrent_predict_matches_sequential(onnx_bundle, frames):
    from edgeps.runtimes import load

    rt = load(onnx_bundle, threads=1)
    expected = [_signature(rt.predict(f)) for f in frames]

    # instrument the backend call to observe how many threads are inside it at once
    inside, peak, guard = [0], [0], threading.Lock()
    infer = rt._infer

    def counting_infer(batch):
        with guard:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        try:
            return infer(batch)
        finally:
            with guard:
                inside[0] -= 1

    rt._infer = counting_infer
    start = threading.Barrier(THREADS)

    def worker(k: int) -> list[tuple[int, tuple]]:
        start.wait()  # all threads hammer the runtime at the same moment
        order = list(range(len(frames)))[k % len(frames) :] + list(range(len(frames)))[: k % len(frames)]
        return [(i, _signature(rt.predict(frames[i]))) for _ in range(ROUNDS) for i in order]

    with ThreadPoolExecutor(THREADS) as pool:
        outputs = [r for rs in pool.map(worker, range(THREADS)) for r in rs]

    assert len(outputs) == THREADS * ROUNDS * len(frames)
    for i, sig in outputs:
        assert sig == expected[i], f"frame {i}: a concurrent result differs from the sequential one"
    assert peak[0] == 1  # the per-runtime lock: one backend call at a time


def test_concurrent_infer_heads_are_bitwise_equal(onnx_bundle, frames):
    from edgeps.runtimes import load

    rt = load(onnx_bundle, threads=1)
    batches = [rt.preprocess(f) for f in frames]
    expected = [rt.infer(b) for b in batches]
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(pool.map(rt.infer, batches * ROUNDS * THREADS))
    for k, heads in enumerate(got):
        ref = expected[k % len(batches)]
        assert sorted(heads) == sorted(ref)
        for name in ref:
            np.testing.assert_array_equal(heads[name], ref[name], err_msg=name)
