"""Bundles with a batch dimension (export --batch N|dynamic): export, manifest, parity gate,
the runtime's batch contract and several frames in one model call."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from edgeps.bundle import MANIFEST_NAME, read_manifest
from edgeps.errors import ConfigError, FormatError, InputShapeError
from edgeps.export.pipeline import export_bundles
from edgeps.runtimes import load


@pytest.fixture(scope="module")
def batched(tiny_checkpoint, tmp_path_factory):
    """onnx-fp32 and openvino-int8 with a dynamic batch, onnx-int8 and openvino-fp32 fixed at 3."""
    out = tmp_path_factory.mktemp("batched")
    kw = {"parity_data": "synth:val:2", "parity_images": 2, "calib": "synth:train:4", "calib_images": 4}
    bundles = {}
    for fmt, precision, batch in (
        ("onnx", "fp32", "dynamic"),
        ("openvino", "int8", "dynamic"),
        ("onnx", "int8", "3"),
        ("openvino", "fp32", "3"),
    ):
        (result,) = export_bundles(tiny_checkpoint, [fmt], [precision], out / batch, batch=batch, **kw)
        bundles[f"{result.name}-{batch}"] = result.path
    return bundles


def _frames(n: int) -> list[np.ndarray]:
    from edgeps.data.datasets import open_dataset

    data = open_dataset("synth:val:4")
    return [data[i].image for i in range(n)]


def test_manifest_and_parity_record_the_batch(batched):
    for name, path in batched.items():
        manifest = read_manifest(path)
        expected = "dynamic" if name.endswith("dynamic") else 3
        assert manifest.batch == expected, name
        raw = yaml.safe_load((path / MANIFEST_NAME).read_text())
        assert raw["input"]["batch"] == expected
        report = manifest.parity["batch"]
        assert report["frames"] == 2 and report["class_agreement"] >= 0.999, (name, report)


@pytest.mark.parametrize("name", ["onnx-fp32-dynamic", "onnx-int8-3", "openvino-fp32-3", "openvino-int8-dynamic"])
def test_frames_inferred_together_equal_each_alone(batched, name):
    rt = load(batched[name])
    frames = _frames(4)
    together = rt.predict_many(frames)  # 4 frames: one call (dynamic) or a full 3 and a padded 1 (fixed)
    assert len(together) == 4
    for frame, result in zip(frames, together):
        alone = rt.predict(frame)
        agree = float((alone.panoptic == result.panoptic).mean())
        assert agree >= 0.999, (name, agree)
        assert set(result.timings) == {"preprocess", "infer", "postprocess"}
    heads = rt.infer_frames([rt.preprocess(f) for f in frames[:2]])
    assert [h["semantic"].shape[0] for h in heads] == [1, 1]
    assert rt.max_batch == (None if name.endswith("dynamic") else 3)


def test_infer_rejects_a_batch_over_the_fixed_size(batched):
    rt = load(batched["onnx-int8-3"])
    one = rt.preprocess(_frames(1)[0])
    assert rt.infer(np.concatenate([one, one], axis=0))["semantic"].shape[0] == 2  # padded to 3, cut to 2
    with pytest.raises(InputShapeError, match=r"B <= 3"):
        rt.infer(np.concatenate([one] * 4, axis=0))


def test_batch_one_bundle_keeps_its_contract(onnx_bundle):
    rt = load(onnx_bundle)
    assert rt.max_batch == 1
    assert "batch" not in yaml.safe_load((onnx_bundle / MANIFEST_NAME).read_text())["input"]
    one = rt.preprocess(_frames(1)[0])
    with pytest.raises(InputShapeError, match=r"expected a float32 batch of shape \(1, 3"):
        rt.infer(np.concatenate([one, one], axis=0))
    frames = _frames(2)
    for frame, result in zip(frames, rt.predict_many(frames)):  # one call per frame
        np.testing.assert_array_equal(result.panoptic, rt.predict(frame).panoptic)


def test_batch_request_errors(tiny_checkpoint, tmp_path, batched):
    for bad in ("0", "-2", "many", 1.5):
        with pytest.raises(ConfigError, match="--batch: expected a positive integer or 'dynamic'"):
            export_bundles(tiny_checkpoint, ["onnx"], ["fp32"], tmp_path / "x", batch=bad)
    bundle = tmp_path / "bad"
    import shutil

    shutil.copytree(batched["openvino-fp32-3"], bundle)
    raw = yaml.safe_load((bundle / MANIFEST_NAME).read_text())
    raw["input"]["batch"] = 0
    (bundle / MANIFEST_NAME).write_text(yaml.safe_dump(raw))
    with pytest.raises(FormatError, match=r"input\.batch: expected a positive integer or 'dynamic', got 0"):
        read_manifest(bundle)


@pytest.mark.parametrize(("name", "sizes"), [("onnx-fp32-dynamic", {1: 1, 3: 1}), ("openvino-fp32-3", {1: 1, 3: 1})])
def test_shared_model_batches_the_frames_that_wait(batched, name, sizes):
    """Four threads: the first call is held inside the model while three more queue; they go
    in the next call together, and every thread gets its own frame's heads."""
    _shared_model_run(load(batched[name]), sizes)


def test_shared_model_takes_turns_on_a_batch_one_bundle(onnx_bundle, batched):
    _shared_model_run(load(onnx_bundle), {1: 4})
    _shared_model_run(load(batched["onnx-fp32-dynamic"]), {1: 4}, max_batch=1)  # batching turned off
    _shared_model_run(load(batched["onnx-fp32-dynamic"]), {1: 2, 2: 1}, max_batch=2)


def _shared_model_run(rt, sizes: dict[int, int], max_batch: int | None = None) -> None:
    import threading
    import time

    from edgeps.stream.shared_model import SharedModel

    shared = SharedModel(rt, max_batch)
    frames = [rt.preprocess(f) for f in _frames(4)]
    alone = [rt.infer(b) for b in frames]
    got: dict[int, tuple[dict, dict]] = {}

    def call(i: int) -> None:
        timings: dict[str, float] = {}
        got[i] = (shared.infer(frames[i], timings), timings)

    rt._lock.acquire()  # hold the first model call inside the runtime
    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    while not shared._busy:
        time.sleep(0.005)
    threads += [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for t in threads[1:]:
        t.start()
    while len(shared._queue) < 3:
        time.sleep(0.005)
    rt._lock.release()
    for t in threads:
        t.join(timeout=60)
    assert dict(shared.batch_sizes) == sizes
    assert shared.mean_batch() == pytest.approx(4 / sum(sizes.values()))
    for i in range(4):
        heads, timings = got[i]
        assert float((heads["semantic"] == alone[i]["semantic"]).mean()) >= 0.999
        assert heads["semantic"].shape[0] == 1
        assert timings["batch"] in sizes and timings["infer"] > 0 and timings["model_wait"] >= 0
    assert got[0][1]["batch"] == 1


def test_shared_model_hands_the_error_to_every_waiting_frame(onnx_bundle):
    from edgeps.stream.shared_model import SharedModel

    shared = SharedModel(load(onnx_bundle))
    with pytest.raises(InputShapeError, match="expected a float32 batch"):
        shared.infer(np.zeros((1, 3, 8, 8), np.float32))
    assert not shared._busy and not shared._queue  # the model is free again
