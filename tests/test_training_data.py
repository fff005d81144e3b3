"""The training data path: one geometry with deployment, the DataLoader stream (workers,
epochs, shards, resume), fine-tuning with --init, the real COCO sample, and the whole path
(data synth in the real layouts -> train with workers -> int8 export calibrated on the folder
-> eval on the val split) with the datasets' own category ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.apps.cli import main
from edgeps.data.datasets import open_dataset
from edgeps.errors import ConfigError
from edgeps.preprocess import InputSpec
from edgeps.training.batch import collate_crops, train_batch
from edgeps.training.config import DataConfig, config_from_dict
from edgeps.training.distributed import DistInfo
from edgeps.training.loader import (
    BatchStream,
    EpochSampler,
    StreamPosition,
    TrainSamples,
    train_loader,
)
from edgeps.training.samples import IGNORE, make_train_crop

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)
TINY_MODEL = {
    "width_mult": 0.5,
    "pretrained": False,
    "semantic_channels": 32,
    "instance_channels": 32,
    "aspp_channels": 32,
    "head_channels": 16,
}


def tiny_config(**data) -> dict:
    return {
        "model": dict(TINY_MODEL),
        "data": {"input_size": list(SIZE), "crop": list(SIZE), "center_sigma": 3.0, "val_images": 2, **data},
        "schedule": {
            "max_steps": 6,
            "batch_size": 2,
            "lr": 0.005,
            "warmup_steps": 2,
            "eval_every": 0,
            "checkpoint_every": 0,
            "threads": 2,
        },
        "postprocess": {"stuff_area": 32},
    }


def make_train_sample(frame, pan, thing_ids, cfg, spec, rng, *, augment=True) -> SimpleNamespace:
    """One frame through the whole training path: the worker's crop, then the device's inputs
    and targets (on the CPU here), as numpy arrays of the one sample."""
    crop = make_train_crop(frame, pan, cfg, spec, rng, augment=augment)
    batch = train_batch(collate_crops([crop]), thing_ids, cfg, spec, torch.device("cpu"))
    return SimpleNamespace(**{k: v[0].numpy() for k, v in batch.items()})


# ----------------------------------------------------------------------------- geometry
def test_training_input_without_augmentation_is_the_deployed_input(onnx_bundle) -> None:
    """A frame of another aspect ratio through the training path (augmentation off) and through
    a real runtime's preprocess gives the same model input, padding included."""
    from edgeps.runtimes import load

    rt = load(onnx_bundle)
    rng = np.random.default_rng(0)
    for shape in ((100, 120), (40, 300), SIZE):
        frame = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        pan = np.zeros(shape, np.int32)
        cfg = DataConfig(input_size=rt.manifest.input.size)
        sample = make_train_sample(frame, pan, [5], cfg, rt.manifest.input, np.random.default_rng(1), augment=False)
        np.testing.assert_array_equal(sample.image, rt.preprocess(frame)[0])


def test_padding_is_mean_coloured_and_ignored_by_every_loss() -> None:
    frame = np.full((32, 128, 3), 200, np.uint8)  # wide: letterboxed into 64x128 with 16 rows above and below
    pan = np.full((32, 128), 5 * LABEL_DIVISOR + 1, np.int32)  # one car
    spec = InputSpec(size=SIZE)
    cfg = DataConfig(input_size=SIZE, crop=SIZE)
    s = make_train_sample(frame, pan, [5], cfg, spec, np.random.default_rng(0), augment=False)
    pad = np.zeros(SIZE, bool)
    pad[:16], pad[48:] = True, True
    assert np.abs(s.image[:, pad]).max() < 0.01  # the mean colour normalizes to 0
    assert (s.semantic[pad] == IGNORE).all() and (s.semantic[~pad] == 5).all()
    assert (s.center_weight[pad] == 0).all() and (s.center_weight[~pad] == 1).all()
    assert (s.offset_weight[pad] == 0).all() and (s.offset_weight[~pad] == 1).all()
    # augmented crops pad the same way: wherever the frame is not, every loss weight is 0
    cfg = DataConfig(input_size=SIZE, crop=(96, 96), scale_range=(0.5, 0.5), color_jitter=0.3)
    for seed in range(5):
        s = make_train_sample(frame, pan, [5], cfg, spec, np.random.default_rng(seed))
        outside = s.semantic == IGNORE
        assert outside.any() and (~outside).any()
        assert (s.center_weight[outside] == 0).all() and (s.offset_weight[outside] == 0).all()
        assert np.abs(s.image[:, outside]).max() < 0.01


def test_crowd_gets_no_center_and_optionally_no_semantic() -> None:
    pan = np.full(SIZE, 0, np.int32)  # road
    pan[10:30, 10:40] = 5 * LABEL_DIVISOR  # a crowd of cars (thing class, instance 0)
    pan[40:60, 60:90] = 5 * LABEL_DIVISOR + 1  # one car
    frame = np.zeros((*SIZE, 3), np.uint8)
    crowd = pan == 5 * LABEL_DIVISOR
    for ignore in (False, True):
        cfg = DataConfig(input_size=SIZE, crop=SIZE, ignore_crowd_in_semantic=ignore)
        s = make_train_sample(frame, pan, [5], cfg, InputSpec(size=SIZE), np.random.default_rng(0), augment=False)
        assert (s.center_weight[crowd] == 0).all() and (s.offset_weight[crowd] == 0).all()
        assert (s.semantic[crowd] == (IGNORE if ignore else 5)).all()
        assert s.center[0][crowd].max() < s.center.max()  # the peak is the single car's


def test_device_targets_equal_the_numpy_reference() -> None:
    """The batched torch targets (made on the training device) equal panoptic_targets per image:
    void, crowd, stuff, several instances of several classes, a center near the border."""
    from edgeps.data.targets import panoptic_targets
    from edgeps.training.batch import panoptic_batch_targets

    ds = open_dataset("synth:train:3", size=SIZE)
    pans = [ds[i].panoptic for i in range(3)]
    extra = np.full(SIZE, 1 * LABEL_DIVISOR, np.int32)  # stuff, a crowd, a small car at the corner, void
    extra[:10, :20] = 5 * LABEL_DIVISOR
    extra[60:, 125:] = 5 * LABEL_DIVISOR + 7
    extra[20:30, 40:60] = VOID_LABEL
    pans.append(extra)
    things = sorted(set(ds.categories.thing_ids) | {5})
    t = panoptic_batch_targets(
        torch.from_numpy(np.stack(pans)),
        things,
        sigma=3.0,
        small_instance_area=150,
        small_instance_weight=3.0,
        ignore_crowd_in_semantic=True,
    )
    for i, pan in enumerate(pans):
        ref = panoptic_targets(pan, things, sigma=3.0)
        crowd = (pan != VOID_LABEL) & np.isin(pan // LABEL_DIVISOR, things) & (pan % LABEL_DIVISOR == 0)
        np.testing.assert_allclose(t["center"][i, 0].numpy(), ref.center, atol=1e-6)
        np.testing.assert_array_equal(t["offset"][i].numpy(), ref.offsets)
        np.testing.assert_array_equal(t["offset_weight"][i].numpy(), ref.offset_weight)
        np.testing.assert_array_equal(t["semantic"][i].numpy(), np.where(crowd, IGNORE, ref.semantic))
        np.testing.assert_array_equal(t["center_weight"][i].numpy(), ((pan != VOID_LABEL) & ~crowd).astype(np.float32))
        ids, area = np.unique(pan[ref.offset_weight > 0], return_counts=True)
        small = np.isin(pan, ids[area < 150]) & (ref.offset_weight > 0)
        np.testing.assert_array_equal(t["semantic_weight"][i].numpy(), np.where(small, 3.0, 1.0))
    assert t["center"][3, 0, 62:, 126:].max() == 1.0  # the corner car's peak, clipped Gaussian


def test_device_colour_jitter_matches_the_uint8_formula_inside_the_frame_only() -> None:
    from edgeps.training.batch import network_inputs

    rng = np.random.default_rng(0)
    spec = InputSpec(size=SIZE)
    image = rng.integers(0, 256, size=(2, *SIZE, 3), dtype=np.uint8)
    jitter = np.array([[1.2, 0.9, 1.1, 1.3, 20.0], [1.0, 1.0, 1.0, 1.0, 0.0]], np.float32)
    box = np.array([[8, 56, 0, 100], [0, 64, 0, 128]], np.int32)
    x = network_inputs(torch.from_numpy(image), torch.from_numpy(jitter), torch.from_numpy(box), spec).numpy()
    t, b, left, r = box[0]
    region = image[0, t:b, left:r].astype(np.float64) * jitter[0, :3]  # the uint8 formula, float64
    m = region.mean()
    expect = np.clip((region - m) * jitter[0, 3] + m + jitter[0, 4], 0, 255).astype(np.uint8)
    want = image[0].copy()
    want[t:b, left:r] = expect
    std, mean = np.asarray(spec.std, np.float32), np.asarray(spec.mean, np.float32)
    got = np.rint(x[0].transpose(1, 2, 0) * std + mean)[..., ::-1]  # back to BGR 0..255
    assert np.abs(got - want).max() <= 1  # float32 on the device vs float64: one level at most
    assert (got[:t] == image[0, :t]).all() and (got[:, r:] == image[0, :, r:]).all()  # outside the frame: untouched
    # a row without jitter is exactly preprocess's normalization
    from edgeps.preprocess import preprocess

    np.testing.assert_array_equal(x[1], preprocess(image[1], spec)[0])


# ----------------------------------------------------------------------------- the stream
def _small_source(n: int = 6):
    return [open_dataset(f"synth:train:{n}", size=SIZE)[i] for i in range(n)]


def _batches(source, workers: int, k: int, start: StreamPosition | None = None, seed: int = 3):
    cfg = DataConfig(input_size=SIZE, crop=(48, 48), scale_range=(0.75, 1.5), color_jitter=0.25)
    samples = TrainSamples(source, cfg, InputSpec(size=SIZE), seed)
    loader = train_loader(
        samples, EpochSampler(len(source), DistInfo(), seed, start or StreamPosition(0, 0)), 4, workers=workers
    )
    previous = signal.getsignal(signal.SIGCHLD)
    with BatchStream(loader) as batches:
        out = [next(batches) for _ in range(k)]
    assert signal.getsignal(signal.SIGCHLD) is previous  # torch's worker handler does not outlive the stream
    return out


_TWO_WORKERS = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_training_data import _batches, _small_source

if __name__ == "__main__":  # spawned workers import this script again
    batches = _batches(_small_source(), 2, 4)
    np.savez({out!r}, **{{f"{{i}}_{{k}}": v.numpy() for i, b in enumerate(batches) for k, v in b.items()}})
"""


def test_batches_do_not_depend_on_the_worker_count(tmp_path) -> None:
    """2 spawned workers (in a process of their own, as `edgeps train` runs them) give the same
    batches as loading in the training process."""
    script = tmp_path / "two_workers.py"
    script.write_text(_TWO_WORKERS.format(tests=str(Path(__file__).parent), out=str(tmp_path / "b.npz")))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = np.load(tmp_path / "b.npz")
    source = _small_source()
    a = _batches(source, 0, 4)
    b = [{k: torch.from_numpy(saved[f"{i}_{k}"]) for k in x} for i, x in enumerate(a)]  # saved from tensors
    assert [x["epoch"].tolist() for x in a] == [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [2, 2, 2, 2]]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=key)
    # each epoch draws every image once, in a new order; augmentation differs between epochs
    idx = torch.cat([x["index"] for x in a]).tolist()
    assert sorted(idx[:6]) == sorted(idx[6:12]) == list(range(6)) and idx[:6] != idx[6:12]


def test_resumed_stream_continues_where_it_stopped() -> None:
    source = _small_source()
    whole = _batches(source, 0, 4)
    sampler = EpochSampler(len(source), DistInfo(), 3)
    resumed = _batches(source, 0, 2, start=sampler.position(2 * 4))  # after 2 steps of batch 4
    for x, y in zip(whole[2:], resumed):
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=key)


def test_ranks_draw_disjoint_shards_every_epoch() -> None:
    for epoch in range(3):
        drawn = []
        for rank in range(2):
            sampler = EpochSampler(10, DistInfo(rank=rank, world_size=2), seed=0, start=StreamPosition(epoch, 0))
            keys = [k for _, k in zip(range(sampler.samples_per_epoch), sampler)]
            assert {e for e, _ in keys} == {epoch}
            drawn.append({i for _, i in keys})
        assert drawn[0].isdisjoint(drawn[1]) and drawn[0] | drawn[1] == set(range(10))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_workers_shards_the_data_without_overlap(tmp_path) -> None:
    """torchrun, 2 CPU processes on gloo, 1 loader worker each: 8 images, batch 2, 2 steps =
    each rank draws its 4 images of the first epoch; no image is drawn by both."""
    cfg = tiny_config(train="synth:train:8", val="synth:train:2")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "edgeps.apps.cli",
        "train",
        "--config",
        str(tmp_path / "cfg.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        "--workers",
        "1",
        "--no-progress",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["workers"] == 1
    assert m["shards"] == {"per_rank": [4, 4], "overlap": 0}


# ----------------------------------------------------------------------------- fine-tuning
def test_init_from_another_class_count_reinitialises_only_the_semantic_head(tiny_checkpoint, tmp_path) -> None:
    from edgeps.model import ModelConfig, build_model
    from edgeps.training.checkpoint import load_checkpoint
    from edgeps.training.trainer import init_from_checkpoint

    ck = load_checkpoint(tiny_checkpoint)
    cfg = {k: v for k, v in ck["config"]["model"].items() if k != "num_classes"}
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict({**cfg, "num_classes": 19}))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    done = init_from_checkpoint(model, tiny_checkpoint, 19)
    assert done["classes"] == [8, 19] and done["reinitialised"]
    assert all(k.startswith("semantic_head.") for k in done["reinitialised"])
    after = model.state_dict()
    for k, v in after.items():
        if k.startswith("semantic_head."):
            torch.testing.assert_close(v, fresh[k], rtol=0, atol=0)  # left at its fresh init
        else:
            torch.testing.assert_close(v, ck["model"][k], rtol=0, atol=0)  # encoder, decoders, center/offset heads
    # the same class count keeps every tensor, the semantic head included
    same = build_model(ModelConfig.from_dict({**cfg, "num_classes": 8}))
    assert init_from_checkpoint(same, tiny_checkpoint, 8)["reinitialised"] == []
    torch.testing.assert_close(
        same.state_dict()["semantic_head.predictor.weight"], ck["model"]["semantic_head.predictor.weight"]
    )
    # another architecture is refused, naming tensors
    other = build_model(ModelConfig.from_dict({**cfg, "num_classes": 8, "semantic_channels": 48}))
    with pytest.raises(ConfigError, match="differs from the config's beyond the class count"):
        init_from_checkpoint(other, tiny_checkpoint, 8)


# ----------------------------------------------------------------------------- real COCO sample
def test_training_on_the_coco_sample_uses_133_categories_and_learns(coco_sample, tmp_path) -> None:
    from edgeps.training.trainer import train

    ds = open_dataset(str(coco_sample))
    assert len(ds.categories) == 133 and len(ds.categories.thing_ids) == 80
    # the sample holds crowd segments: they get no center / offset and, as configs/coco.yaml asks, no semantic label
    data = json.loads((coco_sample / "panoptic_examples.json").read_text())
    crowd_images = [i for i, a in enumerate(data["annotations"]) if any(s.get("iscrowd") for s in a["segments_info"])]
    assert crowd_images, "the sample has a crowd segment"
    s = ds[crowd_images[0]]
    crowd = (
        (s.panoptic != VOID_LABEL)
        & np.isin(s.panoptic // LABEL_DIVISOR, ds.categories.thing_ids)
        & (s.panoptic % LABEL_DIVISOR == 0)
    )
    assert crowd.any()
    cfg_data = DataConfig(input_size=s.panoptic.shape, crop=s.panoptic.shape, ignore_crowd_in_semantic=True)
    t = make_train_sample(
        s.image,
        s.panoptic,
        ds.categories.thing_ids,
        cfg_data,
        InputSpec(size=s.panoptic.shape),
        np.random.default_rng(0),
        augment=False,
    )
    assert (
        (t.semantic[crowd] == IGNORE).all()
        and (t.center_weight[crowd] == 0).all()
        and (t.offset_weight[crowd] == 0).all()
    )

    raw = tiny_config(
        train=str(coco_sample),
        val=str(coco_sample),
        ignore_crowd_in_semantic=True,
        input_size=[96, 96],
        crop=[96, 96],
        scale_range=[1.0, 1.0],
        flip=False,
        color_jitter=0.0,
        workers=0,
    )
    raw["schedule"].update(max_steps=40, lr=0.003, warmup_steps=3)
    raw["loss"] = {"semantic_top_k": 1.0}
    metrics = train(config_from_dict(raw), tmp_path, show_progress=False)
    from edgeps.training.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert len(ck["categories"]) == 133 and ck["model"]["semantic_head.predictor.weight"].shape[0] == 133
    person = next(c for c in ck["categories"] if c["name"] == "person")
    assert person["dataset_id"] == 1 and person["id"] == 0
    loss = metrics["history"]["loss"]
    assert np.mean(loss[-5:]) < 0.7 * np.mean(loss[:5]), loss


# ----------------------------------------------------------------------------- the whole path
LAYOUT_CAR = {"cityscapes": 26, "coco": 3}


@pytest.fixture(scope="session", params=["cityscapes", "coco"])
def layout_run(request, tmp_path_factory):
    """A folder written by `edgeps data synth --format FMT` (train 8 + val 4 at 64x128), a model
    trained on its train split with 2 loader workers, an onnx int8 bundle calibrated from it."""
    fmt = request.param
    tmp = tmp_path_factory.mktemp(f"layout_{fmt}")
    root = tmp / "data"
    assert main(["data", "synth", "--format", fmt, "--out", str(root), "--n", "8", "--size", "64x128"]) == 0
    assert (
        main(["data", "synth", "--format", fmt, "--out", str(root), "--n", "4", "--size", "64x128", "--split", "val"])
        == 0
    )
    raw = tiny_config(train="unused", val="unused", scale_range=[1.0, 1.0])
    raw["schedule"].update(max_steps=10, batch_size=4, lr=0.01)
    raw["loss"] = {
        "semantic_top_k": 1.0
    }  # plain mean: 10 steps learn the large stuff classes, so the dump has segments
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(raw))
    run = tmp / "run"
    cmd = [
        sys.executable,
        "-m",
        "edgeps.apps.cli",
        "train",
        "--config",
        str(tmp / "cfg.yaml"),
        "--data",
        str(root),
        "--val-data",
        f"{root}:val",
        "--workers",
        "2",
        "--out",
        str(run),
        "--no-progress",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # workers spawned by the training process
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundles = tmp / "bundles"
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(run / "checkpoints" / "last.pt"),
                "--formats",
                "onnx",
                "--precision",
                "int8",
                "--calib-images",
                "4",
                "--parity-images",
                "4",
                "--out",
                str(bundles),
            ]
        )
        == 0
    )
    return fmt, root, run, bundles / "onnx-int8"


def test_layout_run_trains_exports_and_evaluates_with_dataset_ids(layout_run, tmp_path, capsys) -> None:
    from edgeps.bundle import read_manifest
    from edgeps.training.checkpoint import load_checkpoint

    fmt, root, run, bundle = layout_run
    car = LAYOUT_CAR[fmt]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 10 and metrics["workers"] == 2 and metrics["train_images"] == 8
    ck = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ck["config"]["data"]["train"] == str(root)
    assert {c["name"]: c["dataset_id"] for c in ck["categories"]}["car"] == car
    manifest = read_manifest(bundle)
    assert manifest.categories.dataset_ids[manifest.categories.names.index("car")] == car
    # calibrated on the checkpoint's own training split (no --calib), parity on its val split
    assert manifest.calibration["source"] == f"{root}:train" and manifest.calibration["images"] == 4
    assert manifest.parity["data"] == f"{root}:val"
    capsys.readouterr()
    out_json = tmp_path / "eval.json"
    assert main(["eval", "--bundle", str(bundle), "--data", f"{root}:val", "--json", str(out_json)]) == 0
    assert "4 images" in capsys.readouterr().out
    # a COCO dump of the bundle's predictions names the car by the dataset's id
    assert (
        main(
            [
                "run",
                "--bundle",
                str(bundle),
                "--source",
                str(root / ("val2017" if fmt == "coco" else "leftImg8bit/val/synthvalcity")),
                "--coco-dir",
                str(tmp_path / "dump"),
            ]
        )
        == 0
    )
    dump = json.loads((tmp_path / "dump" / "panoptic.json").read_text())
    assert {c["name"]: c["id"] for c in dump["categories"]}["car"] == car
    used = {s["category_id"] for a in dump["annotations"] for s in a["segments_info"]}
    assert len(dump["annotations"]) == 4 and used <= set(manifest.categories.dataset_ids)


def test_dataset_ids_replace_train_ids_in_a_panoptic_map() -> None:
    from edgeps.categories import Categories
    from edgeps.errors import CategoryError
    from edgeps.io.cityscapes import CITYSCAPES_CATEGORIES

    cats = Categories.from_list(CITYSCAPES_CATEGORIES.with_train_ids().to_list())  # as a manifest reads them back
    car = cats.names.index("car")
    pan = np.array([[0, car * 1000 + 2], [-1, cats.names.index("sky") * 1000]], np.int32)
    np.testing.assert_array_equal(cats.to_dataset_panoptic(pan, 1000), [[7000, 26002], [-1, 23000]])
    assert cats.with_dataset_ids()[26].name == "car"
    old = Categories.from_list([{"id": 0, "name": "a", "isthing": 0}, {"id": 1, "name": "b", "isthing": 1}])
    np.testing.assert_array_equal(
        old.to_dataset_panoptic(np.array([1003]), 1000), [1003]
    )  # no dataset_id: id = train id
    with pytest.raises(CategoryError, match="not in the category set"):
        cats.to_dataset_panoptic(np.array([99000]), 1000)


def test_export_without_the_models_data_names_both_flags(tiny_checkpoint, tmp_path) -> None:
    from edgeps.export.pipeline import export_bundles
    from edgeps.training.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(tiny_checkpoint)
    ck["config"]["data"]["train"] = str(tmp_path / "gone")
    ck.pop("format")
    save_checkpoint(tmp_path / "moved.pt", ck)
    with pytest.raises(ConfigError) as err:
        export_bundles(tmp_path / "moved.pt", ["onnx"], ["int8"], tmp_path / "out")
    assert "--calib" in str(err.value) and "--parity-data" in str(err.value) and "gone" in str(err.value)


def test_worker_and_thread_defaults_share_the_cores_out() -> None:
    from edgeps.training.loader import available_cores, compute_threads, default_workers

    cores = available_cores()
    assert default_workers(1, in_memory=True) == 0  # a decoded set in memory: loading stays in the step
    assert default_workers(1) == max(0, min(16, cores - 1))
    assert default_workers(cores) == 0  # one core per process: no room for a worker
    assert compute_threads(0) == cores and compute_threads(cores + 4) == 1
    assert compute_threads(default_workers(1)) + default_workers(1) == max(cores, 1 + default_workers(1))
