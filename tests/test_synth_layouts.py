"""``edgeps data synth --format cityscapes|coco``: the real datasets' layouts on disk, their
category ids, synth:val's seeds, a round trip through cityscapesscripts' own createPanopticImgs,
the COCO panoptic format rules, safe writes, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.apps.cli import main
from edgeps.data import synth_layouts
from edgeps.data.street import SYNTH_VAL_SEED_BASE, render_scene
from edgeps.data.synth_layouts import CITYSCAPES_CITY as CITY
from edgeps.data.synth_layouts import dataset_categories, remap_panoptic, write_synth_layout
from edgeps.data.synthetic import SYNTH_CATEGORIES
from edgeps.io.coco_panoptic import coco_to_panoptic, read_id_png
from edgeps.panoptic import rgb_to_id

SIZE = (64, 128)
N_VAL, N_TRAIN, TRAIN_SEED = 3, 2, 5
# Written out again here (not imported), so a wrong table in the code fails these tests.
CITYSCAPES_IDS = {
    "road": 7,
    "sidewalk": 8,
    "building": 11,
    "vegetation": 21,
    "sky": 23,
    "car": 26,
    "person": 24,
    "bicycle": 33,
}
COCO_IDS = {
    "road": 149,
    "sidewalk": 191,
    "building": 197,
    "vegetation": 184,
    "sky": 187,
    "car": 3,
    "person": 1,
    "bicycle": 2,
}
CITYSCAPES_THINGS = [24, 25, 26, 27, 28, 31, 32, 33]
COCO_THINGS = [1, 2, 3]
CAR = next(c.id for c in SYNTH_CATEGORIES if c.name == "car")


def _expected_classes(panoptic: np.ndarray, table: dict[str, int]) -> np.ndarray:
    """The synthetic map's class per pixel in the dataset's ids (void -1)."""
    out = np.full(panoptic.shape, -1, np.int64)
    for cat in SYNTH_CATEGORIES:
        out[(panoptic >= 0) & (panoptic // LABEL_DIVISOR == cat.id)] = table[cat.name]
    return out


def _classes(pan: np.ndarray) -> np.ndarray:
    return np.where(pan == VOID_LABEL, -1, pan // LABEL_DIVISOR)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two id maps split the pixels into the same regions (ids may differ)?"""
    pairs = np.unique(np.stack([a.ravel().astype(np.int64), b.ravel().astype(np.int64)]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _synth(*argv: str) -> int:
    return main(["data", "synth", "--size", f"{SIZE[0]}x{SIZE[1]}", *argv])


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both splits of both layouts, each pair in one folder, written through the CLI."""
    roots = {}
    for fmt in ("cityscapes", "coco"):
        root = tmp_path_factory.mktemp(fmt)
        assert _synth("--format", fmt, "--out", str(root), "--n", str(N_TRAIN), "--seed", str(TRAIN_SEED)) == 0
        assert _synth("--format", fmt, "--out", str(root), "--n", str(N_VAL), "--split", "val") == 0
        roots[fmt] = root
    return roots


def _cs_stem(seq: int, split: str = "train") -> str:
    return f"{CITY[split]}_{seq:06d}_000019"


def _cs_seeds(split: str) -> list[tuple[int, str]]:
    """(seed, stem) of each image of a Cityscapes split written by the fixture."""
    if split == "val":
        return [(SYNTH_VAL_SEED_BASE + i, _cs_stem(i, "val")) for i in range(N_VAL)]
    return [(TRAIN_SEED + i, _cs_stem(TRAIN_SEED + i)) for i in range(N_TRAIN)]


# ----------------------------------------------------------------------------- Cityscapes
def test_cityscapes_layout_on_disk_both_splits(layouts: dict[str, Path]) -> None:
    expected = set()
    for split in ("train", "val"):
        expected |= {f"gtFine/cityscapes_panoptic_{split}.json"}
        for _, stem in _cs_seeds(split):
            expected |= {
                f"leftImg8bit/{split}/{CITY[split]}/{stem}_leftImg8bit.png",
                f"gtFine/{split}/{CITY[split]}/{stem}_gtFine_instanceIds.png",
                f"gtFine/{split}/{CITY[split]}/{stem}_gtFine_labelIds.png",
                f"gtFine/cityscapes_panoptic_{split}/{stem}_gtFine_panoptic.png",
            }
    assert _files(layouts["cityscapes"]) == expected  # also: no temporary file left behind
    assert _cs_seeds("val")[0][1] == "synthvalcity_000000_000019"
    assert (
        _cs_seeds("train")[0][1] == f"synthcity_{TRAIN_SEED:06d}_000019"
    )  # splits never share a stem, as in Cityscapes


@pytest.mark.parametrize("split", ["train", "val"])
def test_cityscapes_images_ids_and_encoding(layouts: dict[str, Path], split: str) -> None:
    root = layouts["cityscapes"]
    saw_car = False
    for seed, stem in _cs_seeds(split):
        scene = render_scene(seed, SIZE)  # val: synth:val's own seeds
        image_path = root / "leftImg8bit" / split / CITY[split] / f"{stem}_leftImg8bit.png"
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(image, scene.image)
        gt = root / "gtFine" / split / CITY[split]
        inst = cv2.imread(str(gt / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        labels = cv2.imread(str(gt / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
        assert inst.dtype == np.uint16 and inst.shape == SIZE
        assert labels.dtype == np.uint8 and labels.shape == SIZE
        classes = _expected_classes(scene.panoptic, CITYSCAPES_IDS)
        np.testing.assert_array_equal(labels, np.where(classes < 0, 0, classes))  # unlabeled 0
        # Cityscapes encoding: stuff = label id, instance k (from 0) = label id * 1000 + k.
        stuff = ~np.isin(classes, CITYSCAPES_THINGS)
        np.testing.assert_array_equal(inst[stuff], labels[stuff])
        things = np.isin(classes, CITYSCAPES_THINGS)
        np.testing.assert_array_equal(inst[things] // 1000, classes[things])
        np.testing.assert_array_equal(inst[things] % 1000, scene.panoptic[things] % LABEL_DIVISOR - 1)
        car = (scene.panoptic >= 0) & (scene.panoptic // LABEL_DIVISOR == CAR)
        if car.any():
            saw_car = True
            assert set(np.unique(labels[car]).tolist()) == {26}
    assert saw_car, "no car in these scenes: pick other seeds"


@pytest.mark.parametrize("split", ["train", "val"])
def test_cityscapes_matches_createPanopticImgs(layouts: dict[str, Path], split: str, tmp_path: Path) -> None:
    """cityscapesscripts' own converter, run on the instanceIds files edgeps wrote, gives the
    same JSON (byte for byte) and PNGs that decode to the same panoptic content as edgeps'."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    gt = layouts["cityscapes"] / "gtFine"
    convert2panoptic(cityscapesPath=str(gt), outputFolder=str(tmp_path), useTrainId=False, setNames=[split])
    ref_json = tmp_path / f"cityscapes_panoptic_{split}.json"
    ours_json = gt / f"cityscapes_panoptic_{split}.json"
    ref, ours = json.loads(ref_json.read_text()), json.loads(ours_json.read_text())
    assert ours == ref
    assert ours_json.read_bytes() == ref_json.read_bytes()
    label_ids = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert [c["id"] for c in ours["categories"]] == label_ids
    assert [img["id"] for img in ours["images"]] == [stem for _, stem in _cs_seeds(split)]
    for (seed, stem), ann_ours, ann_ref in zip(_cs_seeds(split), ours["annotations"], ref["annotations"], strict=True):
        assert ann_ours["file_name"] == ann_ref["file_name"] == f"{stem}_gtFine_panoptic.png"
        ids_ours = read_id_png(gt / f"cityscapes_panoptic_{split}" / ann_ours["file_name"])
        ids_ref = read_id_png(tmp_path / f"cityscapes_panoptic_{split}" / ann_ref["file_name"])
        pan_ours = coco_to_panoptic(ids_ours, ann_ours["segments_info"], thing_ids=CITYSCAPES_THINGS)
        pan_ref = coco_to_panoptic(ids_ref, ann_ref["segments_info"], thing_ids=CITYSCAPES_THINGS)
        np.testing.assert_array_equal(_classes(pan_ours), _classes(pan_ref))
        assert _same_partition(pan_ours, pan_ref)
        # ... and both are the rendered scene, in Cityscapes label ids.
        scene = render_scene(seed, SIZE)
        np.testing.assert_array_equal(_classes(pan_ours), _expected_classes(scene.panoptic, CITYSCAPES_IDS))
        assert _same_partition(pan_ours, scene.panoptic)
        np.testing.assert_array_equal(ids_ours, ids_ref)


def test_cityscapes_categories_are_cityscapesscripts(layouts: dict[str, Path]) -> None:
    from cityscapesscripts.helpers.labels import labels

    expected = [
        {
            "id": lb.id,
            "name": lb.name,
            "color": list(lb.color),
            "supercategory": lb.category,
            "isthing": int(lb.hasInstances),
        }
        for lb in labels
        if not lb.ignoreInEval
    ]
    assert dataset_categories("cityscapes") == expected


# ----------------------------------------------------------------------------- COCO
def _coco_images(split: str) -> list[int]:
    if split == "val":
        return [SYNTH_VAL_SEED_BASE + i for i in range(N_VAL)]
    return [TRAIN_SEED + i for i in range(N_TRAIN)]


def test_coco_layout_on_disk_both_splits(layouts: dict[str, Path]) -> None:
    expected = set()
    for split in ("train", "val"):
        expected.add(f"annotations/panoptic_{split}2017.json")
        for image_id in _coco_images(split):
            expected |= {f"{split}2017/{image_id:012d}.jpg", f"annotations/panoptic_{split}2017/{image_id:012d}.png"}
    assert _files(layouts["coco"]) == expected
    assert "val2017/000001000000.jpg" in expected and "train2017/000000000005.jpg" in expected


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_follows_the_panoptic_format(layouts: dict[str, Path], split: str) -> None:
    """panopticapi's rules (every PNG id has a segment and the other way round, area and bbox
    right, known categories, crowd only on things) and the decoded map is the scene's."""
    root = layouts["coco"]
    data = json.loads((root / "annotations" / f"panoptic_{split}2017.json").read_text())
    cats = {c["id"]: c for c in data["categories"]}
    assert sorted(cats) == [1, 2, 3, 149, 184, 187, 191, 197]
    images = {img["id"]: img for img in data["images"]}
    assert sorted(images) == _coco_images(split)
    for image_id, img in images.items():
        assert img == {"id": image_id, "file_name": f"{image_id:012d}.jpg", "height": SIZE[0], "width": SIZE[1]}
    assert [a["image_id"] for a in data["annotations"]] == _coco_images(split)
    for ann in data["annotations"]:
        assert ann["file_name"] == f"{ann['image_id']:012d}.png"
        ids = read_id_png(root / "annotations" / f"panoptic_{split}2017" / ann["file_name"]).astype(np.int64)
        segs = {s["id"]: s for s in ann["segments_info"]}
        assert len(segs) == len(ann["segments_info"]), "segment ids must be unique"
        assert set(np.unique(ids).tolist()) - {0} == set(segs), "PNG ids and segments_info differ"
        for sid, seg in segs.items():
            mask = ids == sid
            ys, xs = np.nonzero(mask)
            assert seg["area"] == int(mask.sum())
            x, y = int(xs.min()), int(ys.min())
            assert seg["bbox"] == [x, y, int(xs.max()) - x + 1, int(ys.max()) - y + 1]
            assert seg["category_id"] in cats
            assert seg["iscrowd"] in (0, 1) and (not seg["iscrowd"] or cats[seg["category_id"]]["isthing"])
        scene = render_scene(ann["image_id"], SIZE)  # image id = seed; val: synth:val's seeds
        pan = coco_to_panoptic(ids, ann["segments_info"], thing_ids=COCO_THINGS)
        np.testing.assert_array_equal(_classes(pan), _expected_classes(scene.panoptic, COCO_IDS))
        assert _same_partition(pan, scene.panoptic)
        car = (scene.panoptic >= 0) & (scene.panoptic // LABEL_DIVISOR == CAR)
        assert not car.any() or set(np.unique(_classes(pan)[car]).tolist()) == {3}
        image = cv2.imread(str(root / f"{split}2017" / images[ann["image_id"]]["file_name"]), cv2.IMREAD_COLOR)
        assert image.shape == (*SIZE, 3)
        # JPEG is lossy: the file holds the scene's image as OpenCV encodes it (default quality).
        np.testing.assert_array_equal(image, cv2.imdecode(cv2.imencode(".jpg", scene.image)[1], cv2.IMREAD_COLOR))


def test_coco_categories_are_cocos(coco_sample: Path) -> None:
    """The 8 categories are COCO panoptic's own entries (id, name, isthing, colour, supercategory)."""
    real = {c["id"]: c for c in json.loads((coco_sample / "panoptic_coco_categories.json").read_text())}
    ours = dataset_categories("coco")
    assert [c["id"] for c in ours] == [1, 2, 3, 149, 184, 187, 191, 197]
    for c in ours:
        assert c == real[c["id"]]
    names = {c["id"]: c["name"] for c in ours}
    assert {k: names[v] for k, v in COCO_IDS.items()} == {
        "road": "road",
        "sidewalk": "pavement-merged",
        "building": "building-other-merged",
        "vegetation": "tree-merged",
        "sky": "sky-other-merged",
        "car": "car",
        "person": "person",
        "bicycle": "bicycle",
    }


# ----------------------------------------------------------------------------- mapping
@pytest.mark.parametrize(
    ("fmt", "table", "things"), [("cityscapes", CITYSCAPES_IDS, CITYSCAPES_THINGS), ("coco", COCO_IDS, COCO_THINGS)]
)
def test_remap_table_and_thingness(fmt: str, table: dict[str, int], things: list[int]) -> None:
    assert synth_layouts.SYNTH_TO_DATASET[fmt] == table
    for cat in SYNTH_CATEGORIES:
        assert (table[cat.name] in things) == cat.isthing, cat.name
    assert {c["id"] for c in dataset_categories(fmt)} >= set(table.values())
    pan = render_scene(11, SIZE).panoptic
    out = remap_panoptic(pan, fmt)
    np.testing.assert_array_equal(_classes(out), _expected_classes(pan, table))
    void = pan == VOID_LABEL
    assert void.any() and np.all(out[void] == VOID_LABEL)
    np.testing.assert_array_equal(out[~void] % LABEL_DIVISOR, pan[~void] % LABEL_DIVISOR)


# ----------------------------------------------------------------------------- safe writes
def test_stopped_run_leaves_no_json_and_keeps_the_other_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synth_layout(tmp_path, "cityscapes", 1, split="val", size=SIZE)
    write_synth_layout(tmp_path, "cityscapes", 1, split="train", size=SIZE)
    val_json = tmp_path / "gtFine" / "cityscapes_panoptic_val.json"
    train_json = tmp_path / "gtFine" / "cityscapes_panoptic_train.json"
    before = val_json.read_bytes()
    calls = []

    def failing(seed: int, size: tuple[int, int]):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped half-way
        return render_scene(seed, size)

    monkeypatch.setattr(synth_layouts, "render_scene", failing)
    with pytest.raises(KeyboardInterrupt):
        write_synth_layout(tmp_path, "cityscapes", 3, split="train", size=SIZE, seed=10)
    assert not train_json.exists(), "a stopped run must not leave a JSON (an old one would index changed files)"
    assert val_json.read_bytes() == before
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "temporary files left behind"


# ----------------------------------------------------------------------------- the CLI
def test_cli_prints_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _synth("--format", "cityscapes", "--out", str(tmp_path), "--n", "2", "--split", "val") == 0
    out = capsys.readouterr().out
    assert "2 scenes at 64x128" in out and f"{SYNTH_VAL_SEED_BASE}..{SYNTH_VAL_SEED_BASE + 1}" in out
    assert str(tmp_path / "gtFine" / "cityscapes_panoptic_val.json") in out


def test_flat_is_unchanged_and_takes_split_val(tmp_path: Path) -> None:
    assert _synth("--out", str(tmp_path / "a"), "--n", "1") == 0
    assert _files(tmp_path / "a") == {"images/000000.png", "panoptic/000000.png", "panoptic.json"}
    assert json.loads((tmp_path / "a" / "panoptic.json").read_text())["images"][0]["seed"] == 0
    assert _synth("--out", str(tmp_path / "b"), "--n", "1", "--split", "val") == 0
    assert json.loads((tmp_path / "b" / "panoptic.json").read_text())["images"][0]["seed"] == SYNTH_VAL_SEED_BASE
    image = cv2.imread(str(tmp_path / "b" / "images" / "000000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image, render_scene(SYNTH_VAL_SEED_BASE, SIZE).image)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--format", "png", "--n", "1"], "--format"),
        (["--format", "coco", "--split", "test", "--n", "1"], "--split"),
        (["--format", "coco", "--split", "val", "--seed", "0", "--n", "1"], "--seed"),
        (["--format", "cityscapes", "--split", "val", "--n", "201"], "--n"),
        (["--format", "coco", "--seed", "999999", "--n", "2"], "--seed"),
        (["--format", "coco", "--seed", "-1", "--n", "1"], "--seed"),
        (["--format", "coco", "--n", "0"], "--n"),
        (["--format", "coco", "--n", "1", "--jpg"], "--jpg"),
        (["--format", "cityscapes", "--n", "1", "--video", "{tmp}/v.mp4"], "--video"),
        (["--split", "val", "--seed", "3", "--n", "1"], "--seed"),
    ],
    ids=[
        "format",
        "split",
        "val-seed",
        "val-count",
        "train-seed-max",
        "negative-seed",
        "zero-n",
        "jpg",
        "video",
        "flat-val-seed",
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    out = tmp_path / "out"
    code = _synth("--out", str(out), *[a.format(tmp=tmp_path) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edgeps data: error: ") and flag in err[0], err[0]
    assert not out.exists(), "nothing is written when a flag is refused"


def test_layout_image_matches_rgb_id_encoding(layouts: dict[str, Path]) -> None:
    """The Cityscapes panoptic PNG colours are [id % 256, id // 256, id // 65536] of the instanceIds value."""
    root = layouts["cityscapes"]
    _, stem = _cs_seeds("val")[0]
    gt = root / "gtFine"
    inst = cv2.imread(str(gt / "val" / CITY["val"] / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    rgb = cv2.imread(str(gt / "cityscapes_panoptic_val" / f"{stem}_gtFine_panoptic.png"), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(rgb_to_id(rgb), inst.astype(np.uint32))
