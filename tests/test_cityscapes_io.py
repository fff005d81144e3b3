"""Cityscapes panoptic I/O: categories, instanceIds conversion both ways, PNG and set loading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeps.categories import Categories
from edgeps.errors import DataNotFoundError, FormatError, InputShapeError
from edgeps.io.cityscapes import (
    CITYSCAPES_CATEGORIES,
    instance_ids_to_panoptic,
    load_cityscapes_panoptic,
    panoptic_to_instance_ids,
    read_instance_ids_png,
    write_instance_ids_png,
)
from edgeps.io.coco_panoptic import coco_to_panoptic, read_id_png, write_id_png, write_json

# Cityscapes instanceIds: stuff (7 road, 23 sky, 11 building), crowd things (24 person,
# 26 car), instances (26000, 26001, 24002, 33000), and labels outside the 19 classes
# (0 unlabeled, 1 ego vehicle, 5 dynamic) which must become void.
INSTANCE_IDS = np.array(
    [
        [7, 7, 23, 0],
        [26000, 26000, 26001, 24],
        [26, 5, 24002, 1],
        [33000, 11, 11, 7],
    ],
    dtype=np.int32,
)
PANOPTIC = np.array(
    [
        [7000, 7000, 23000, -1],
        [26001, 26001, 26002, 24000],
        [26000, -1, 24003, -1],
        [33001, 11000, 11000, 7000],
    ],
    dtype=np.int32,
)


def test_categories_are_the_19_evaluation_classes() -> None:
    cats = CITYSCAPES_CATEGORIES
    assert cats.ids == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert cats.thing_ids == [24, 25, 26, 27, 28, 31, 32, 33]
    assert cats[7].name == "road" and cats[7].color == (128, 64, 128)
    assert cats[26].name == "car" and cats[26].color == (0, 0, 142)
    assert cats[33].name == "bicycle" and cats[33].color == (119, 11, 32)
    assert cats.id_to_train_id()[26] == 13  # car is train id 13 in Cityscapes


def test_instance_ids_to_panoptic_hand_made() -> None:
    pan = instance_ids_to_panoptic(INSTANCE_IDS)
    assert pan.dtype == np.int32
    np.testing.assert_array_equal(pan, PANOPTIC)


def test_instance_ids_accepts_uint16_as_read_from_png() -> None:
    np.testing.assert_array_equal(instance_ids_to_panoptic(INSTANCE_IDS.astype(np.uint16)), PANOPTIC)


def test_round_trip_turns_unknown_labels_into_unlabeled() -> None:
    back = panoptic_to_instance_ids(instance_ids_to_panoptic(INSTANCE_IDS))
    expected = np.where(np.isin(INSTANCE_IDS, [0, 1, 5]), 0, INSTANCE_IDS)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, expected)


def test_panoptic_round_trip_is_exact() -> None:
    np.testing.assert_array_equal(instance_ids_to_panoptic(panoptic_to_instance_ids(PANOPTIC)), PANOPTIC)


def test_custom_label_divisor_and_void_label() -> None:
    pan = instance_ids_to_panoptic(INSTANCE_IDS, label_divisor=256, void_label=0)
    assert pan[1, 0] == 26 * 256 + 1
    assert pan[2, 2] == 24 * 256 + 3
    assert pan[0, 3] == 0 and pan[2, 1] == 0
    back = panoptic_to_instance_ids(pan, label_divisor=256, void_label=0)
    np.testing.assert_array_equal(back, panoptic_to_instance_ids(PANOPTIC))


def test_categories_subset_voids_other_labels() -> None:
    cats = Categories.from_list(
        [{"id": 26, "name": "car", "isthing": 1, "color": [0, 0, 142]}, {"id": 23, "name": "sky", "isthing": 0}]
    )
    pan = instance_ids_to_panoptic(INSTANCE_IDS, cats)
    assert sorted(np.unique(pan).tolist()) == [-1, 23000, 26000, 26001, 26002]


def test_stuff_category_drops_instance_numbers() -> None:
    # A class declared as stuff gets instance 0 even if the file numbers it.
    cats = Categories.from_list([{"id": 26, "name": "car", "isthing": 0}])
    pan = instance_ids_to_panoptic(np.array([[26000, 26001, 26]]), cats)
    np.testing.assert_array_equal(pan, [[26000, 26000, 26000]])


def test_instance_number_overflow_raises() -> None:
    with pytest.raises(FormatError, match="label_divisor 10"):
        instance_ids_to_panoptic(np.array([[26009]]), label_divisor=10)


def test_bad_inputs_raise_naming_the_argument() -> None:
    with pytest.raises(InputShapeError, match=r"instance_ids: .*shape \(2, 2, 3\)"):
        instance_ids_to_panoptic(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(InputShapeError, match="instance_ids: .*float32"):
        instance_ids_to_panoptic(np.zeros((2, 2), np.float32))
    with pytest.raises(InputShapeError, match=r"panoptic: classes \[5\]"):
        panoptic_to_instance_ids(np.array([[7000, 5001]], np.int32))


def test_instance_ids_png_round_trip(tmp_path) -> None:
    path = tmp_path / "a" / "x_gtFine_instanceIds.png"
    write_instance_ids_png(path, INSTANCE_IDS)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    back = read_instance_ids_png(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, INSTANCE_IDS)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x_gtFine_instanceIds.png"]


def test_instance_ids_png_errors(tmp_path) -> None:
    missing = tmp_path / "nope_instanceIds.png"
    with pytest.raises(DataNotFoundError, match=str(missing)):
        read_instance_ids_png(missing)
    label_ids = tmp_path / "x_gtFine_labelIds.png"
    cv2.imwrite(str(label_ids), np.full((2, 2), 7, np.uint8))
    with pytest.raises(FormatError, match="16-bit"):
        read_instance_ids_png(label_ids)
    with pytest.raises(InputShapeError, match="65535"):
        write_instance_ids_png(tmp_path / "big.png", np.array([[70000]]))


def _write_fake_tree(root, split: str = "val") -> np.ndarray:
    """One image in the layout createPanopticImgs writes; returns the segment-id map."""
    # createPanopticImgs uses the instanceIds values as segment ids (0 = void).
    ids = np.where(np.isin(INSTANCE_IDS, [0, 1, 5]), 0, INSTANCE_IDS).astype(np.uint32)
    name = "frankfurt_000000_000294"
    write_id_png(root / "gtFine" / f"cityscapes_panoptic_{split}" / f"{name}_gtFine_panoptic.png", ids)
    infos = [
        {"id": sid, "category_id": sid // 1000 if sid >= 1000 else sid, "iscrowd": int(sid in (24, 26))}
        for sid in (7, 11, 23, 24, 26, 24002, 26000, 26001, 33000)
    ]
    data = {
        "images": [{"id": name, "file_name": f"{name}_leftImg8bit.png", "width": 4, "height": 4}],
        "annotations": [{"image_id": name, "file_name": f"{name}_gtFine_panoptic.png", "segments_info": infos}],
        "categories": CITYSCAPES_CATEGORIES.to_list(),
    }
    write_json(root / "gtFine" / f"cityscapes_panoptic_{split}.json", data)
    return ids


def test_load_fake_cityscapes_panoptic(tmp_path) -> None:
    ids = _write_fake_tree(tmp_path)
    ds = load_cityscapes_panoptic(tmp_path, "val")
    assert ds.json_path == tmp_path / "gtFine" / "cityscapes_panoptic_val.json"
    assert ds.categories == CITYSCAPES_CATEGORIES
    assert len(ds.annotations) == 1
    ann = ds.annotations[0]
    read = read_id_png(ds.png_path(ann))
    np.testing.assert_array_equal(read, ids)
    pan = coco_to_panoptic(read, ann["segments_info"], thing_ids=ds.categories.thing_ids)
    # The COCO route numbers instances 1, 2, ... per class in segments_info order, so the lone
    # person (Cityscapes index 2) becomes instance 1; the instanceIds route keeps index + 1.
    np.testing.assert_array_equal(pan, np.where(PANOPTIC == 24003, 24001, PANOPTIC))


def test_missing_json_names_the_path(tmp_path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_cityscapes_panoptic(tmp_path, "train")
    assert str(tmp_path / "gtFine" / "cityscapes_panoptic_train.json") in str(err.value)
    assert "createPanopticImgs" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_missing_png_folder_names_the_path(tmp_path) -> None:
    _write_fake_tree(tmp_path, "val")
    png_dir = tmp_path / "gtFine" / "cityscapes_panoptic_val"
    for p in png_dir.iterdir():
        p.unlink()
    png_dir.rmdir()
    with pytest.raises(DataNotFoundError, match=str(png_dir)):
        load_cityscapes_panoptic(tmp_path, "val")
