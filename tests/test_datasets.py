"""Map-style datasets and data specs: synthetic, COCO panoptic (edgeps layout and the real
COCO sample), Cityscapes on a tiny fake tree, and ``open_dataset``'s parsing and errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.apps.cli import main
from edgeps.categories import Categories
from edgeps.data.datasets import (
    SYNTH_DEV_COUNT,
    SYNTH_DEV_SEED_BASE,
    CityscapesPanopticDataset,
    CocoPanopticDataset,
    SynthDataset,
    open_dataset,
)
from edgeps.data.street import SYNTH_TRAIN_SEED_MAX, SYNTH_VAL_SEED_BASE, SYNTH_VAL_SIZE, render_scene, synth_val_seeds
from edgeps.data.synthetic import SYNTH_CATEGORIES
from edgeps.errors import ConfigError, DataNotFoundError, FormatError
from edgeps.io.cityscapes import CITYSCAPES_CATEGORIES
from edgeps.io.coco_panoptic import read_id_png, write_id_png, write_json

SMALL = (64, 128)


# ----------------------------------------------------------------------------- synthetic
def test_synth_val_is_the_frozen_seeds() -> None:
    ds = SynthDataset("val", size=SMALL)
    assert len(ds) == 200
    assert ds.categories.ids == list(range(8)) and ds.categories.names == SYNTH_CATEGORIES.names
    s, ref = ds[3], render_scene(SYNTH_VAL_SEED_BASE + 3, SMALL)
    np.testing.assert_array_equal(s.image, ref.image)
    np.testing.assert_array_equal(s.panoptic, ref.panoptic)
    assert s.name == f"synth_{SYNTH_VAL_SEED_BASE + 3:07d}" and s.occlusion == ref.occlusion
    np.testing.assert_array_equal(ds[-1].panoptic, render_scene(SYNTH_VAL_SEED_BASE + 199, SMALL).panoptic)
    with pytest.raises(IndexError):
        ds[200]


def test_synth_train_seeds_start_at_the_offset() -> None:
    ds = SynthDataset("train", n=4, size=SMALL, seed_offset=100)
    assert len(ds) == 4 and list(ds.seeds) == [100, 101, 102, 103]
    np.testing.assert_array_equal(ds[1].panoptic, render_scene(101, SMALL).panoptic)
    assert len(SynthDataset("train", size=SMALL, seed_offset=998_990)) == 10
    assert [s.name for s in SynthDataset("train", n=2, size=SMALL)] == ["synth_0000000", "synth_0000001"]


@pytest.mark.parametrize(
    "args, kw",
    [
        (("val",), {"n": 201}),
        (("val",), {"seed_offset": 5}),
        (("train",), {"n": 11, "seed_offset": 998_990}),  # would reach synth:dev's seeds
        (("train",), {"seed_offset": 999_000}),
        (("train",), {"seed_offset": -1}),
        (("dev",), {"n": SYNTH_DEV_COUNT + 1}),
        (("dev",), {"seed_offset": 5}),
        (("test",), {}),
    ],
)
def test_synth_dataset_errors(args: tuple, kw: dict) -> None:
    with pytest.raises(ConfigError):
        SynthDataset(*args, **kw)


# ----------------------------------------------------------------------------- specs
def test_open_dataset_parses_synth_specs() -> None:
    val = open_dataset("synth:val")
    assert isinstance(val, SynthDataset) and val.split == "val" and len(val) == 200 and val.size == (512, 1024)
    assert len(open_dataset("synth:val:5")) == 5
    train = open_dataset(" synth:train:10 ", size=SMALL)
    assert train.split == "train" and len(train) == 10 and train[0].image.shape == (*SMALL, 3)
    assert len(open_dataset("synth:train")) == SYNTH_DEV_SEED_BASE == 999_000


def test_synth_dev_opens_like_val_on_its_own_seeds() -> None:
    dev = open_dataset("synth:dev")
    assert isinstance(dev, SynthDataset) and dev.split == "dev" and len(dev) == SYNTH_DEV_COUNT == 200
    assert dev.size == SYNTH_VAL_SIZE and list(dev.seeds) == list(range(999_000, 999_200))
    small = open_dataset("synth:dev:3", size=SMALL)
    assert len(small) == 3 and small.categories.names == SYNTH_CATEGORIES.names
    s, ref = small[2], render_scene(SYNTH_DEV_SEED_BASE + 2, SMALL)
    np.testing.assert_array_equal(s.image, ref.image)
    np.testing.assert_array_equal(s.panoptic, ref.panoptic)
    assert s.name == "synth_0999002" and s.occlusion == ref.occlusion


def test_synth_dev_seeds_are_disjoint_from_val_and_training() -> None:
    """Every seed synth:train can draw (any offset, the whole split) is below synth:dev's, and
    synth:dev ends before synth:val starts."""
    dev = set(open_dataset("synth:dev").seeds)
    train = open_dataset("synth:train").seeds
    assert train.start == 0 and train.stop <= min(dev)
    assert dev.isdisjoint(synth_val_seeds()) and max(dev) < SYNTH_TRAIN_SEED_MAX <= min(synth_val_seeds())
    assert dev.isdisjoint(open_dataset("synth:train:400").seeds)


@pytest.mark.parametrize(
    "spec",
    ["synth:", "synth:test", "synth:train:0", "synth:train:x", "synth:val:300", "synth:val:1:2", "synth:dev:201", ""],
)
def test_bad_synth_specs_are_config_errors_naming_the_spec(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_dataset(spec)
    assert repr(spec) in str(err.value)


def test_synth_without_a_split_takes_the_default_split() -> None:
    assert open_dataset("synth").split == "val"
    assert open_dataset("synth", default_split="train", size=SMALL).split == "train"


@pytest.fixture(scope="module")
def two_split_roots(tmp_path_factory):
    """A COCO (official layout) and a Cityscapes root, each with train (3) and val (2) splits."""
    from edgeps.data.synth_layouts import write_synth_layout

    roots = {}
    for fmt in ("coco", "cityscapes"):
        root = tmp_path_factory.mktemp(fmt)
        write_synth_layout(root, fmt, 3, split="train", size=(32, 64))
        write_synth_layout(root, fmt, 2, split="val", size=(32, 64))
        roots[fmt] = root
    return roots


@pytest.mark.parametrize("fmt", ["coco", "cityscapes"])
def test_official_layouts_open_by_split(two_split_roots, fmt: str) -> None:
    root = two_split_roots[fmt]
    assert len(open_dataset(f"{root}:train")) == 3 and len(open_dataset(f"{root}:val")) == 2
    assert len(open_dataset(str(root))) == 2  # evaluation's default: val
    assert len(open_dataset(str(root), default_split="train")) == 3  # training's default: train
    assert len(open_dataset(f"{root}:train:2")) == 2
    car = {"coco": 3, "cityscapes": 26}[fmt]
    ds = open_dataset(f"{root}:val")
    assert car in ds.categories.dataset_ids and ds.categories[ds.categories.dataset_ids.index(car)].name == "car"
    # the val split holds the synth:val scenes (seeds SYNTH_VAL_SEED_BASE + i), train the others
    if fmt == "cityscapes":  # lossless PNG images
        np.testing.assert_array_equal(ds[1].image, render_scene(SYNTH_VAL_SEED_BASE + 1, (32, 64)).image)
    if fmt == "coco":  # the image folder follows the split (val2017 for val, whatever exists)
        assert open_dataset(f"{root}:val").image_dir.name == "val2017"
        assert open_dataset(f"{root}:train2017").image_dir.name == "train2017"


@pytest.mark.parametrize("fmt", ["coco", "cityscapes"])
def test_unknown_split_names_the_root_and_the_splits_found(two_split_roots, fmt: str) -> None:
    root = two_split_roots[fmt]
    with pytest.raises(DataNotFoundError) as err:
        open_dataset(f"{root}:test")
    msg = str(err.value)
    assert repr(f"{root}:test") in msg and "split 'test'" in msg and "train" in msg and "val" in msg
    with pytest.raises(ConfigError, match="asked for 9 images"):
        open_dataset(f"{root}:val:9")


def test_coco_png_missing_for_an_entry_is_found_on_open(tmp_path) -> None:
    from edgeps.data.synth_layouts import write_synth_layout

    write_synth_layout(tmp_path, "coco", 2, split="val", size=(32, 64))
    png = sorted((tmp_path / "annotations" / "panoptic_val2017").glob("*.png"))[1]
    png.unlink()
    with pytest.raises(DataNotFoundError) as err:
        open_dataset(f"{tmp_path}:val")
    assert "1 of 2 annotations have no panoptic PNG" in str(err.value) and png.name in str(err.value)


def test_empty_image_folder_is_named(tmp_path) -> None:
    from edgeps.data.synth_layouts import write_synth_layout

    write_synth_layout(tmp_path, "coco", 1, split="val", size=(32, 64))
    for p in (tmp_path / "val2017").iterdir():
        p.unlink()
    with pytest.raises(DataNotFoundError, match="image folder .*val2017 is empty"):
        open_dataset(f"{tmp_path}:val")


@pytest.mark.parametrize("spec", ["{root}:", "{root}:va l", "{root}:val:0", "{root}:val:x:1"])
def test_malformed_folder_specs_name_the_spec(two_split_roots, spec: str) -> None:
    text = spec.format(root=two_split_roots["coco"])
    with pytest.raises((ConfigError, DataNotFoundError)) as err:
        open_dataset(text)
    assert repr(text) in str(err.value)


def test_missing_or_wrong_paths_name_the_spec(tmp_path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="nope"):
        open_dataset(missing)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match="a.txt"):
        open_dataset(str(tmp_path / "a.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as err:
        open_dataset(str(tmp_path / "empty"))
    assert repr(str(tmp_path / "empty")) in str(err.value) and isinstance(err.value, FileNotFoundError)


# ----------------------------------------------------------------------------- COCO
def test_data_synth_folder_reads_back_identically(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--n", "3", "--size", "64x96", "--seed", "40"]) == 0
    assert "3 scenes" in capsys.readouterr().out
    data = json.loads((out / "panoptic.json").read_text())
    assert {"images", "annotations", "categories"} <= set(data)
    assert [i["file_name"] for i in data["images"]] == ["000000.png", "000001.png", "000002.png"]
    ds = open_dataset(str(out))
    assert isinstance(ds, CocoPanopticDataset) and len(ds) == 3
    assert ds.categories == SYNTH_CATEGORIES.with_train_ids()
    for i in range(3):
        ref, s = render_scene(40 + i, (64, 96)), ds[i]
        np.testing.assert_array_equal(s.panoptic, ref.panoptic)
        np.testing.assert_array_equal(s.image, ref.image)  # PNG is lossless
        assert s.occlusion == ref.occlusion and s.name == f"{i:06d}"


def test_data_synth_jpg_images(tmp_path) -> None:
    assert main(["data", "synth", "--out", str(tmp_path), "--n", "1", "--size", "64x96", "--jpg"]) == 0
    ds = CocoPanopticDataset(tmp_path)
    assert ds.image_path(0).suffix == ".jpg" and ds[0].image.shape == (64, 96, 3)


def test_coco_sample(coco_sample) -> None:
    data = json.loads((coco_sample / "panoptic_examples.json").read_text())
    ds = open_dataset(str(coco_sample))
    assert isinstance(ds, CocoPanopticDataset) and len(ds) == len(data["annotations"]) == 2
    cats = Categories.from_list(data["categories"])
    assert ds.categories == cats.with_train_ids()
    lut = cats.id_to_train_id()
    infos = {img["id"]: img for img in data["images"]}
    for i, ann in enumerate(data["annotations"]):
        s = ds[i]
        info = infos[ann["image_id"]]
        assert s.image.shape == (info["height"], info["width"], 3) and s.image.dtype == np.uint8
        np.testing.assert_array_equal(s.image, cv2.imread(str(coco_sample / "input_images" / info["file_name"])))
        assert s.panoptic.shape == s.image.shape[:2] and s.panoptic.dtype == np.int32
        assert s.name == ann["file_name"][:-4] and s.occlusion is None
        ids = read_id_png(coco_sample / "panoptic_examples" / ann["file_name"])
        for seg in ann["segments_info"]:
            values = np.unique(s.panoptic[ids == seg["id"]])
            assert len(values) == 1, "a segment maps to one panoptic id"
            train = int(lut[seg["category_id"]])
            assert values[0] // LABEL_DIVISOR == train
            inst = values[0] % LABEL_DIVISOR
            assert (inst >= 1) == (cats[seg["category_id"]].isthing and not seg.get("iscrowd", 0))
        np.testing.assert_array_equal(s.panoptic == VOID_LABEL, ids == 0)


def test_coco_sample_with_a_category_subset(coco_sample) -> None:
    data = json.loads((coco_sample / "panoptic_examples.json").read_text())
    all_cats = Categories.from_list(data["categories"])
    present = sorted({seg["category_id"] for a in data["annotations"] for seg in a["segments_info"]})
    keep = [all_cats[c] for c in present[:3]]
    ds = CocoPanopticDataset(coco_sample, categories=Categories(tuple(keep)))
    assert ds.categories.names == [c.name for c in keep] and ds.categories.ids == [0, 1, 2]
    for i in range(len(ds)):
        ann = data["annotations"][i]
        pan = ds[i].panoptic
        assert set(np.unique(pan[pan >= 0] // LABEL_DIVISOR).tolist()) <= {0, 1, 2}
        ids = read_id_png(coco_sample / "panoptic_examples" / ann["file_name"])
        dropped = [seg["id"] for seg in ann["segments_info"] if seg["category_id"] not in present[:3]]
        assert np.all(pan[np.isin(ids, dropped)] == VOID_LABEL)


def test_coco_missing_image_names_the_file(tmp_path) -> None:
    main(["data", "synth", "--out", str(tmp_path), "--n", "1", "--size", "32x48"])
    (tmp_path / "images" / "000000.png").unlink()
    (tmp_path / "images" / "other.png").write_bytes(b"")  # the folder is not empty: the file is missing
    with pytest.raises(DataNotFoundError, match="000000.png") as err:  # found on opening, not on reading
        CocoPanopticDataset(tmp_path)
    assert "1 of 1 annotations have no image" in str(err.value) and "panoptic.json" in str(err.value)


def test_coco_size_mismatch_is_a_format_error(tmp_path) -> None:
    main(["data", "synth", "--out", str(tmp_path), "--n", "1", "--size", "32x48"])
    cv2.imwrite(str(tmp_path / "images" / "000000.png"), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(FormatError, match="differs"):
        CocoPanopticDataset(tmp_path)[0]


def test_coco_folder_without_images_is_an_error(tmp_path) -> None:
    write_json(tmp_path / "panoptic.json", {"annotations": [], "categories": SYNTH_CATEGORIES.to_list()})
    (tmp_path / "panoptic").mkdir()
    with pytest.raises(DataNotFoundError, match="image folder"):
        CocoPanopticDataset(tmp_path)


# ----------------------------------------------------------------------------- Cityscapes
def _fake_cityscapes(root, split: str = "val") -> np.ndarray:
    """One 4x6 image in the createPanopticImgs layout; returns the expected train-id panoptic."""
    name = "frankfurt_000000_000294"
    # segment ids as createPanopticImgs writes them: label id for stuff/crowd, label*1000+k.
    ids = np.array(
        [
            [23, 23, 23, 23, 23, 23],
            [11, 11, 26000, 26000, 24000, 0],
            [7, 26001, 26001, 7, 24000, 24],
            [7, 7, 7, 7, 33000, 33000],
        ],
        dtype=np.uint32,
    )
    write_id_png(root / "gtFine" / f"cityscapes_panoptic_{split}" / f"{name}_gtFine_panoptic.png", ids)
    infos = [
        {"id": sid, "category_id": sid // 1000 if sid >= 1000 else sid, "iscrowd": int(sid == 24)}
        for sid in (7, 11, 23, 24, 24000, 26000, 26001, 33000)
    ]
    write_json(
        root / "gtFine" / f"cityscapes_panoptic_{split}.json",
        {
            "images": [{"id": name, "file_name": f"{name}_leftImg8bit.png", "width": 6, "height": 4}],
            "annotations": [{"image_id": name, "file_name": f"{name}_gtFine_panoptic.png", "segments_info": infos}],
            "categories": CITYSCAPES_CATEGORIES.to_list(),
        },
    )
    img_dir = root / "leftImg8bit" / split / "frankfurt"
    img_dir.mkdir(parents=True)
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    cv2.imwrite(str(img_dir / f"{name}_leftImg8bit.png"), image)
    t = {
        c.id: i for i, c in enumerate(CITYSCAPES_CATEGORIES)
    }  # road 0, building 2, sky 10, person 11, car 13, bicycle 18
    road, bld, sky, person, car, bike = (t[k] * 1000 for k in (7, 11, 23, 24, 26, 33))
    return np.array(
        [
            [sky] * 6,
            [bld, bld, car + 1, car + 1, person + 1, -1],
            [road, car + 2, car + 2, road, person + 1, person],
            [road, road, road, road, bike + 1, bike + 1],
        ],
        dtype=np.int32,
    )


def test_cityscapes_fake_tree(tmp_path) -> None:
    expected = _fake_cityscapes(tmp_path)
    ds = CityscapesPanopticDataset(tmp_path, "val")
    assert len(ds) == 1 and ds.categories == CITYSCAPES_CATEGORIES.with_train_ids()
    s = ds[0]
    assert s.name == "frankfurt_000000_000294_gtFine_panoptic"
    assert s.image.shape == (4, 6, 3)
    np.testing.assert_array_equal(s.image, np.arange(72, dtype=np.uint8).reshape(4, 6, 3))
    np.testing.assert_array_equal(s.panoptic, expected)
    # A folder with gtFine/ is Cityscapes for open_dataset; split goes through.
    spec_ds = open_dataset(str(tmp_path))
    assert isinstance(spec_ds, CityscapesPanopticDataset) and spec_ds.split == "val"
    np.testing.assert_array_equal(spec_ds[0].panoptic, expected)


def test_cityscapes_missing_split_names_spec_and_hint(tmp_path) -> None:
    _fake_cityscapes(tmp_path, "val")
    with pytest.raises(DataNotFoundError) as err:
        open_dataset(f"{tmp_path}:train")
    assert repr(f"{tmp_path}:train") in str(err.value) and "createPanopticImgs" in str(err.value)
    assert "split 'train'" in str(err.value) and "splits found: val" in str(err.value)
    with pytest.raises(DataNotFoundError, match="splits found: val"):
        open_dataset(str(tmp_path), default_split="train")  # no split in the spec: training opens train


def test_cityscapes_missing_image(tmp_path) -> None:
    _fake_cityscapes(tmp_path)
    for p in (tmp_path / "leftImg8bit").rglob("*.png"):
        p.unlink()
    with pytest.raises(DataNotFoundError, match="leftImg8bit"):
        CityscapesPanopticDataset(tmp_path)


# ----------------------------------------------------------------------------- dev set in training
def test_default_configs_pick_best_on_synth_dev_and_eval_reports_on_synth_val() -> None:
    import argparse
    from pathlib import Path

    from edgeps.apps.commands import eval as eval_command
    from edgeps.training.config import TrainConfig, load_config

    root = Path(__file__).resolve().parents[1]
    assert TrainConfig().data.val == "synth:dev"
    default, fpn = load_config(root / "configs/synth.yaml"), load_config(root / "configs/synth-fpn.yaml")
    assert default.data.val == "synth:dev"
    # synth-fpn.yaml is synth.yaml with the other neck (amp, freeze_at, threshold, data alike)
    a, b = default.to_dict(), fpn.to_dict()
    assert (a["model"].pop("neck"), b["model"].pop("neck")) == ("deeplab", "fpn")
    assert a == b
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    assert parser.parse_args(["--checkpoint", "x.pt"]).data == "synth:val"


def test_tiny_training_picks_best_on_synth_dev(tmp_path) -> None:
    from edgeps.training.checkpoint import load_checkpoint
    from edgeps.training.config import config_from_dict
    from edgeps.training.trainer import train

    cfg = config_from_dict(
        {
            "model": {
                "width_mult": 0.35,
                "pretrained": False,
                "semantic_channels": 16,
                "instance_channels": 16,
                "aspp_channels": 16,
                "head_channels": 8,
            },
            "data": {
                "train_images": 4,
                "val": "synth:dev:2",
                "val_images": 2,
                "input_size": [64, 128],
                "crop": [64, 128],
                "scale_range": [1.0, 1.0],
                "center_sigma": 3.0,
                "workers": 0,
            },
            "schedule": {"max_steps": 4, "batch_size": 2, "eval_every": 2, "checkpoint_every": 0, "threads": 2},
            "postprocess": {"stuff_area": 32},
        }
    )
    metrics = train(cfg, tmp_path, show_progress=False)
    best = tmp_path / "checkpoints" / "best.pt"
    assert best.is_file() and metrics["final_eval"]["images"] == 2
    ck = load_checkpoint(best)
    assert ck["config"]["data"]["val"] == "synth:dev:2" and ck["history"]["eval_step"]
