"""PQ metrics: hand-derived perturbations of the COCO sample, the COCO reference as an oracle,
the in-memory accumulator, and the error messages.

Expected values are derived here from the GT JSON and the perturbation (segment counts and
areas), never from the code under test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from coco_reference import reference_pq

from edgeps.categories import Categories
from edgeps.errors import CategoryError, FormatError, InputShapeError
from edgeps.io.coco_panoptic import (
    coco_to_panoptic,
    panoptic_to_coco,
    read_id_png,
    read_json,
    write_coco_panoptic,
    write_id_png,
)
from edgeps.metrics import PanopticAccumulator, evaluate_coco_panoptic, pq_image

IMG_A, IMG_B = 142238, 439180  # the two sample images
PERSON, BICYCLE, TRUCK, HORSE, BALL, GRASS, SKY = 1, 2, 8, 19, 37, 193, 187
EPS = 1e-12


@dataclass
class Image:
    image_id: int
    file_name: str
    ids: np.ndarray
    segments: list[dict]

    def seg(self, sid: int) -> dict:
        return next(s for s in self.segments if s["id"] == sid)

    def free_id(self) -> int:
        used = set(np.unique(self.ids).tolist()) | {s["id"] for s in self.segments}
        return next(i for i in range(1000, 2**24) if i not in used)


@dataclass
class Sample:
    gt_json: Path
    gt_dir: Path
    data: dict
    categories: Categories

    def images(self) -> dict[int, Image]:
        """A fresh, mutable copy of the ground truth, to perturb into a prediction."""
        return {
            a["image_id"]: Image(
                a["image_id"],
                a["file_name"],
                read_id_png(self.gt_dir / a["file_name"]).copy(),
                copy.deepcopy(a["segments_info"]),
            )
            for a in self.data["annotations"]
        }

    def n_segments(self, cat: int) -> int:
        """Non-crowd GT segments of a category (each is one TP in the identity prediction)."""
        return sum(
            1
            for a in self.data["annotations"]
            for s in a["segments_info"]
            if s["category_id"] == cat and not s["iscrowd"]
        )

    def present(self, isthing: bool | None = None) -> int:
        """Categories with a non-crowd GT segment: the n of the identity prediction."""
        return sum(1 for c in self.categories if self.n_segments(c.id) and (isthing is None or c.isthing == isthing))


@pytest.fixture
def sample(coco_sample: Path) -> Sample:
    gt_json = coco_sample / "panoptic_examples.json"
    data = read_json(gt_json)
    return Sample(gt_json, coco_sample / "panoptic_examples", data, Categories.from_list(data["categories"]))


def write_pred(root: Path, images: dict[int, Image], categories: Categories, name: str = "pred") -> tuple[Path, Path]:
    entries = [(im.image_id, im.file_name, im.ids, im.segments) for im in images.values()]
    write_coco_panoptic(root / f"{name}.json", root / name, entries, categories)
    return root / f"{name}.json", root / name


def evaluate(sample: Sample, tmp_path: Path, images: dict[int, Image]) -> dict:
    pred_json, pred_dir = write_pred(tmp_path, images, sample.categories)
    return evaluate_coco_panoptic(sample.gt_json, sample.gt_dir, pred_json, pred_dir)


def assert_class(res: dict, cat: int, pq: float, sq: float, rq: float, tp: int, fp: int, fn: int) -> None:
    c = res["per_class"][cat]
    assert (c["tp"], c["fp"], c["fn"]) == (tp, fp, fn)
    assert c["pq"] == pytest.approx(pq, abs=EPS)
    assert c["sq"] == pytest.approx(sq, abs=EPS)
    assert c["rq"] == pytest.approx(rq, abs=EPS)


# -- identity and hand-derived perturbations ------------------------------------------------


def test_identity_is_perfect(sample: Sample, tmp_path: Path) -> None:
    res = evaluate(sample, tmp_path, sample.images())
    for group, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        assert res[group] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": sample.present(isthing)}
    # The predicted copies of the crowd regions must not count as false positives.
    assert_class(res, PERSON, 1.0, 1.0, 1.0, tp=sample.n_segments(PERSON), fp=0, fn=0)
    assert res["per_class"][PERSON]["name"] == "person" and res["per_class"][PERSON]["isthing"] is True
    assert res["per_class"][BICYCLE] == {
        "pq": 0.0,
        "sq": 0.0,
        "rq": 0.0,
        "tp": 0,
        "fp": 0,
        "fn": 0,
        "name": "bicycle",
        "isthing": True,
    }


def test_dropped_segment_is_a_false_negative(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    a = images[IMG_A]
    a.ids[a.ids == 3937500] = 0  # a person becomes unlabelled
    a.segments.remove(a.seg(3937500))
    res = evaluate(sample, tmp_path, images)

    n_person = sample.n_segments(PERSON)
    pq_person = (n_person - 1) / (n_person - 1 + 0.5)  # every remaining person has IoU 1
    assert_class(res, PERSON, pq_person, 1.0, pq_person, tp=n_person - 1, fp=0, fn=1)
    n, n_things = sample.present(), sample.present(True)
    assert res["All"]["pq"] == pytest.approx((n - 1 + pq_person) / n, abs=EPS)
    assert res["All"]["sq"] == 1.0
    assert res["Things"]["rq"] == pytest.approx((n_things - 1 + pq_person) / n_things, abs=EPS)
    assert res["Stuff"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": sample.present(False)}


def test_merged_segments_match_the_larger(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    b = images[IMG_B]
    big, small = b.seg(16758454), b.seg(16762012)  # two horses
    area_big, area_small = big["area"], small["area"]
    assert area_big > area_small
    b.ids[b.ids == small["id"]] = big["id"]
    b.segments.remove(small)
    res = evaluate(sample, tmp_path, images)

    # The merged prediction covers both: IoU with the big one is A / (A + B) > 0.5, the small
    # one is missed; no false positive.
    n_horse = sample.n_segments(HORSE)
    iou_sum = (n_horse - 2) + area_big / (area_big + area_small)
    tp, fn = n_horse - 1, 1
    denom = tp + 0.5 * fn
    assert_class(res, HORSE, iou_sum / denom, iou_sum / tp, tp / denom, tp=tp, fp=0, fn=fn)


def test_split_segment_adds_a_false_positive(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    b = images[IMG_B]
    truck = b.seg(6094848)
    pixels = np.flatnonzero(b.ids.ravel() == truck["id"])
    area = len(pixels)
    keep = int(0.7 * area)
    new_id = b.free_id()
    b.ids.ravel()[pixels[keep:]] = new_id  # the last 30% (raster order) becomes a new truck
    b.segments.append({"id": new_id, "category_id": TRUCK, "iscrowd": 0})
    res = evaluate(sample, tmp_path, images)

    n_truck = sample.n_segments(TRUCK)
    iou_sum = (n_truck - 1) + keep / area
    denom = n_truck + 0.5
    assert_class(res, TRUCK, iou_sum / denom, iou_sum / n_truck, n_truck / denom, tp=n_truck, fp=1, fn=0)


def test_eroded_segment_lowers_sq(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    a = images[IMG_A]
    mask = (a.ids == 10025880).astype(np.uint8)  # grass
    eroded = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    a.ids[mask.astype(bool) & ~eroded] = 0  # the rim becomes unlabelled; JSON area is now stale
    area, kept = int(mask.sum()), int(eroded.sum())
    assert a.seg(10025880)["area"] == area and 0.5 < kept / area < 1
    res = evaluate(sample, tmp_path, images)

    n_grass = sample.n_segments(GRASS)
    sq = ((n_grass - 1) + kept / area) / n_grass
    assert_class(res, GRASS, sq, sq, 1.0, tp=n_grass, fp=0, fn=0)
    n_stuff = sample.present(False)
    assert res["Stuff"]["sq"] == pytest.approx((n_stuff - 1 + sq) / n_stuff, abs=EPS)
    assert res["Things"]["pq"] == 1.0


def test_relabelled_segment_is_fn_and_fp(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    images[IMG_A].seg(16757838)["category_id"] = BICYCLE  # the only sports ball
    assert sample.n_segments(BICYCLE) == 0 and sample.n_segments(BALL) == 1
    res = evaluate(sample, tmp_path, images)

    assert_class(res, BALL, 0.0, 0.0, 0.0, tp=0, fp=0, fn=1)
    assert_class(res, BICYCLE, 0.0, 0.0, 0.0, tp=0, fp=1, fn=0)
    n, n_things = sample.present() + 1, sample.present(True) + 1  # bicycle now counts
    assert res["All"] == pytest.approx({"pq": (n - 2) / n, "sq": (n - 2) / n, "rq": (n - 2) / n, "n": n}, abs=EPS)
    assert res["Things"]["pq"] == pytest.approx((n_things - 2) / n_things, abs=EPS)
    assert res["Things"]["n"] == n_things


def test_void_painted_into_prediction(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    a = images[IMG_A]
    pixels = np.flatnonzero(a.ids.ravel() == 4260062)  # a person
    area = len(pixels)
    painted = area // 4
    a.ids.ravel()[pixels[:painted]] = 0
    res = evaluate(sample, tmp_path, images)

    n_person = sample.n_segments(PERSON)
    sq = ((n_person - 1) + (area - painted) / area) / n_person
    assert_class(res, PERSON, sq, sq, 1.0, tp=n_person, fp=0, fn=0)


def test_prediction_over_gt_void_is_not_penalized(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    a, b = images[IMG_A], images[IMG_B]
    gt_void_a = read_id_png(sample.gt_dir / a.file_name) == 0
    a.ids[gt_void_a] = 11829830  # sky spreads over every void pixel: IoU stays S / S
    gt_void_b = read_id_png(sample.gt_dir / b.file_name) == 0
    new_id = b.free_id()
    b.ids[gt_void_b] = new_id  # a bicycle entirely on void is ignored, not a FP
    b.segments.append({"id": new_id, "category_id": BICYCLE, "iscrowd": 0})
    res = evaluate(sample, tmp_path, images)
    assert res["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": sample.present()}
    assert res["per_class"][BICYCLE]["fp"] == 0


def test_prediction_half_on_void_is_a_false_positive(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    b = images[IMG_B]
    gt_void = read_id_png(sample.gt_dir / b.file_name) == 0
    n_void = int(gt_void.sum())
    grass = np.flatnonzero(b.ids.ravel() == 10025880)
    grass_area = len(grass)
    new_id = b.free_id()
    b.ids[gt_void] = new_id
    b.ids.ravel()[grass[:n_void]] = new_id  # exactly half void: not "more than half"
    b.segments.append({"id": new_id, "category_id": BICYCLE, "iscrowd": 0})
    res = evaluate(sample, tmp_path, images)

    assert_class(res, BICYCLE, 0.0, 0.0, 0.0, tp=0, fp=1, fn=0)
    n_grass = sample.n_segments(GRASS)
    pq_grass = ((n_grass - 1) + (grass_area - n_void) / grass_area) / n_grass
    assert_class(res, GRASS, pq_grass, pq_grass, 1.0, tp=n_grass, fp=0, fn=0)
    n = sample.present() + 1
    assert res["All"]["pq"] == pytest.approx((n - 2 + pq_grass) / n, abs=EPS)  # bicycle 0, grass pq_grass


def test_crowd_forgives_only_its_own_category(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    b = images[IMG_B]
    horse_crowd = b.seg(16175517)
    assert horse_crowd["iscrowd"] == 1 and b.seg(5120499)["iscrowd"] == 1  # image B also has a person crowd
    horse_crowd["category_id"] = PERSON  # predicted on the horse crowd: not covered by a person crowd
    res = evaluate(sample, tmp_path, images)

    n_person = sample.n_segments(PERSON)
    denom = n_person + 0.5
    assert_class(res, PERSON, n_person / denom, 1.0, n_person / denom, tp=n_person, fp=1, fn=0)
    assert_class(res, HORSE, 1.0, 1.0, 1.0, tp=sample.n_segments(HORSE), fp=0, fn=0)


# -- reference rules the sample cannot show --------------------------------------------------


def counts(stat, cat: int) -> tuple[int, int, int, float]:
    s = stat[cat]
    return s.tp, s.fp, s.fn, s.iou


def test_iou_of_exactly_half_does_not_match() -> None:
    # inter 2, union 2 + 4 - 2 = 4: IoU 0.5 is not > 0.5, so one FN and one FP.
    stat = pq_image(
        np.array([[1, 1, 1, 1]]),
        [{"id": 1, "category_id": 3}],
        np.array([[5, 5, 0, 0]]),
        [{"id": 5, "category_id": 3}],
    )
    assert counts(stat, 3) == (0, 1, 1, 0.0)


def test_only_the_last_crowd_region_of_a_category_forgives() -> None:
    gt = np.array([[1, 1, 2, 2], [3, 3, 3, 3]])
    gt_segments = [
        {"id": 1, "category_id": 4, "iscrowd": 1},
        {"id": 2, "category_id": 4, "iscrowd": 1},
        {"id": 3, "category_id": 9},
    ]
    pred = np.array([[5, 5, 0, 0], [7, 7, 7, 7]])
    pred_segments = [{"id": 5, "category_id": 4}, {"id": 7, "category_id": 9}]
    stat = pq_image(gt, gt_segments, pred, pred_segments)
    assert counts(stat, 4) == (0, 1, 0, 0.0)  # 5 lies on crowd 1, which the reference forgets
    assert counts(stat, 9) == (1, 0, 0, 1.0)


def test_gt_area_comes_from_the_json_when_listed() -> None:
    # As in the reference, a listed GT area (here 6, e.g. a cropped image) replaces the count.
    gt, pred = np.array([[1, 1, 1, 1]]), np.array([[5, 5, 5, 5]])
    stat = pq_image(
        gt,
        [{"id": 1, "category_id": 3, "area": 6}],
        pred,
        [{"id": 5, "category_id": 3, "area": 99}],
    )
    assert counts(stat, 3) == (1, 0, 0, 4 / 6)  # union 4 + 6 - 4; a predicted area is ignored


# -- the COCO reference implementation as an oracle -----------------------------------------


def random_prediction(sample: Sample, rng: np.random.Generator) -> dict[int, Image]:
    """GT with random merges, splits, erosions, dilations, relabels, void paint and extra segments."""
    images = sample.images()
    cat_ids = sample.categories.ids
    for im in images.values():
        h, w = im.ids.shape
        for _ in range(int(rng.integers(4, 9))):
            live = [s for s in im.segments if (im.ids == s["id"]).any()]
            op = rng.choice(["merge", "split", "erode", "dilate", "relabel", "void", "extra"])
            s = live[int(rng.integers(len(live)))]
            mask = im.ids == s["id"]
            if op == "merge":
                same = [t for t in live if t["category_id"] == s["category_id"] and t is not s]
                other = same or [t for t in live if t is not s]
                im.ids[im.ids == other[int(rng.integers(len(other)))]["id"]] = s["id"]
            elif op == "split":
                pixels = np.flatnonzero(mask.ravel())
                cut = int(len(pixels) * rng.uniform(0.2, 0.8))
                new_id = im.free_id()
                im.ids.ravel()[pixels[cut:]] = new_id
                im.segments.append({"id": new_id, "category_id": s["category_id"], "iscrowd": 0})
            elif op in ("erode", "dilate"):
                k = np.ones((int(rng.choice([3, 5, 9])),) * 2, np.uint8)
                m8 = mask.astype(np.uint8)
                if op == "erode":
                    im.ids[mask & ~cv2.erode(m8, k).astype(bool)] = 0
                else:
                    im.ids[cv2.dilate(m8, k).astype(bool)] = s["id"]
            elif op == "relabel":
                s["category_id"] = int(rng.choice(cat_ids))
            else:
                y0, x0 = int(rng.integers(h)), int(rng.integers(w))
                y1, x1 = y0 + int(rng.integers(10, h // 2)), x0 + int(rng.integers(10, w // 2))
                if op == "void":
                    im.ids[y0:y1, x0:x1] = 0
                else:
                    new_id = im.free_id()
                    im.ids[y0:y1, x0:x1] = new_id
                    im.segments.append({"id": new_id, "category_id": int(rng.choice(cat_ids)), "iscrowd": 0})
        present = set(np.unique(im.ids).tolist())
        im.segments = [s for s in im.segments if s["id"] in present]
    return images


@pytest.mark.parametrize("seed", range(6))
def test_matches_coco_reference_on_random_perturbations(sample: Sample, tmp_path: Path, seed: int) -> None:
    images = random_prediction(sample, np.random.default_rng(seed))
    pred_json, pred_dir = write_pred(tmp_path, images, sample.categories)
    ours = evaluate_coco_panoptic(sample.gt_json, sample.gt_dir, pred_json, pred_dir)
    ref = reference_pq(sample.gt_json, sample.gt_dir, pred_json, pred_dir)
    assert ours["All"]["pq"] < 0.99  # the perturbation did something
    for group in ("All", "Things", "Stuff"):
        assert ours[group]["n"] == ref[group]["n"]
        for key in ("pq", "sq", "rq"):
            assert abs(ours[group][key] - ref[group][key]) < 1e-9, (group, key)
    for cid, r in ref["per_class"].items():
        for key in ("pq", "sq", "rq"):
            assert abs(ours["per_class"][cid][key] - r[key]) < 1e-9, (cid, key)


# -- the in-memory accumulator -------------------------------------------------------------

SMALL = Categories.from_list(
    [
        {"id": 0, "name": "road", "isthing": 0},
        {"id": 1, "name": "car", "isthing": 1},
        {"id": 2, "name": "person", "isthing": 1},
    ]
)


def test_accumulator_hand_case() -> None:
    gt = np.array(
        [
            [0, 0, 0, 0],
            [0, 0, 0, 0],
            [1001, 1001, 1002, 1002],
            [1001, 1001, 1002, -1],
        ]
    )
    pred = np.array(
        [
            [0, 0, 0, 0],
            [0, 0, 0, 1001],
            [1001, 1001, 1002, 1002],
            [1001, 1001, 2001, 1002],
        ]
    )
    acc = PanopticAccumulator(SMALL)
    acc.update(pred, gt)
    res = acc.result()
    # road: 7 of 8 pixels -> IoU 7/8. car 1: pred 5 px (one on road), gt 4, inter 4 -> 4/5.
    # car 2: pred 3 px (one on GT void, left out of the union), gt 3, inter 2 -> 2/(3+3-2-1).
    # person: one pixel on car 2, unmatched -> FP.
    road, car = 7 / 8, (4 / 5 + 2 / 3) / 2
    assert_class(res, 0, road, road, 1.0, tp=1, fp=0, fn=0)
    assert_class(res, 1, car, car, 1.0, tp=2, fp=0, fn=0)
    assert_class(res, 2, 0.0, 0.0, 0.0, tp=0, fp=1, fn=0)
    assert res["All"] == pytest.approx({"pq": (road + car) / 3, "sq": (road + car) / 3, "rq": 2 / 3, "n": 3}, abs=EPS)
    assert res["Things"] == pytest.approx({"pq": car / 2, "sq": car / 2, "rq": 1 / 2, "n": 2}, abs=EPS)
    assert res["Stuff"]["pq"] == pytest.approx(road, abs=EPS)
    # Semantic IoU on the 15 non-void GT pixels: road 7/8; car inter 6 (4 + 2), gt 7, pred 7
    # (5 + 2) -> 6/8; person 0/1.
    assert res["per_class_iou"] == pytest.approx({0: 7 / 8, 1: 6 / 8, 2: 0.0}, abs=EPS)
    assert res["miou"] == pytest.approx((7 / 8 + 6 / 8 + 0.0) / 3, abs=EPS)


def test_accumulator_crowd_and_running_sum() -> None:
    acc = PanopticAccumulator(SMALL)
    gt = np.array([[0, 0, 0, 0], [1000, 1000, 1001, 1001]])  # car instance 0: a crowd region
    pred = np.array([[0, 0, 0, 0], [1002, 1002, 1001, 1001]])
    acc.update(pred, gt)
    assert acc.result()["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 2}

    gt5 = np.where(gt == 1000, 1005, gt)  # the same region as an explicit crowd id
    acc.update(pred, gt5, gt_crowd_ids=[1005])
    res = acc.result()
    assert res["per_class"][1]["tp"] == 2 and res["per_class"][1]["fp"] == 0
    acc.update(pred, gt5)  # not declared crowd: a normal car that the prediction matches
    assert acc.result()["per_class"][1]["tp"] == 4
    # Semantic IoU over the three images: every pixel right.
    assert acc.result()["miou"] == 1.0 and set(acc.result()["per_class_iou"]) == {0, 1}


def test_accumulator_agrees_with_file_evaluation(sample: Sample, tmp_path: Path) -> None:
    cats = sample.categories
    acc = PanopticAccumulator(cats)
    gt_entries, pred_entries = [], []
    pred_images = random_prediction(sample, np.random.default_rng(100))
    for image_id, gt_im in sample.images().items():
        gt_pan = coco_to_panoptic(gt_im.ids, gt_im.segments, thing_ids=cats.thing_ids)
        pred_im = pred_images[image_id]
        pred_pan = coco_to_panoptic(pred_im.ids, pred_im.segments, thing_ids=cats.thing_ids)
        acc.update(pred_pan, gt_pan)
        gt_entries.append((image_id, gt_im.file_name, *panoptic_to_coco(gt_pan, cats)))
        pred_entries.append((image_id, gt_im.file_name, *panoptic_to_coco(pred_pan, cats)))
    write_coco_panoptic(tmp_path / "gt.json", tmp_path / "gt", gt_entries, cats)
    write_coco_panoptic(tmp_path / "pred.json", tmp_path / "pred", pred_entries, cats)

    mem = acc.result()
    files = evaluate_coco_panoptic(tmp_path / "gt.json", tmp_path / "gt", tmp_path / "pred.json", tmp_path / "pred")
    # The sample has one crowd region per category and image, so the converted GT is equivalent.
    original_gt = evaluate_coco_panoptic(sample.gt_json, sample.gt_dir, tmp_path / "pred.json", tmp_path / "pred")
    assert mem["All"]["pq"] < 0.99
    for other in (files, original_gt):
        for group in ("All", "Things", "Stuff"):
            assert mem[group] == pytest.approx(other[group], abs=EPS)
        assert mem["per_class"].keys() == other["per_class"].keys()
        for cid, c in other["per_class"].items():
            assert mem["per_class"][cid] == pytest.approx(c, abs=EPS), cid
    assert 0.0 < mem["miou"] < 1.0


def test_accumulator_rejects_bad_input() -> None:
    acc = PanopticAccumulator(SMALL)
    good = np.zeros((2, 3), np.int32)
    with pytest.raises(CategoryError, match=r"pred: class 7 \(panoptic id 7001\)"):
        acc.update(np.full((2, 3), 7001), good)
    with pytest.raises(InputShapeError, match=r"pred: shape \(2, 4\) differs from gt shape \(2, 3\)"):
        acc.update(np.zeros((2, 4), np.int32), good)
    with pytest.raises(InputShapeError, match=r"gt: .*shape \(2, 3, 1\)"):
        acc.update(good, good[..., None])
    with pytest.raises(InputShapeError, match="pred: .*float"):
        acc.update(good.astype(np.float32), good)


# -- errors name the file and the id -------------------------------------------------------


def expect_error(
    sample: Sample,
    tmp_path: Path,
    exc: type[Exception],
    edit: Callable[[dict[int, Image]], None],
    *needles: str,
) -> None:
    images = sample.images()
    edit(images)
    with pytest.raises(exc) as info:
        evaluate(sample, tmp_path, images)
    for needle in needles:
        assert needle in str(info.value)


def test_png_id_missing_from_json(sample: Sample, tmp_path: Path) -> None:
    def edit(images: dict[int, Image]) -> None:
        a = images[IMG_A]
        a.segments.remove(a.seg(3937500))

    expect_error(
        sample,
        tmp_path,
        FormatError,
        edit,
        str(tmp_path / "pred" / "000000142238.png"),
        "3937500",
        "not in segments_info",
    )


def test_json_segment_missing_from_png(sample: Sample, tmp_path: Path) -> None:
    def edit(images: dict[int, Image]) -> None:
        images[IMG_B].segments.append({"id": 4242, "category_id": PERSON, "iscrowd": 0})

    expect_error(
        sample,
        tmp_path,
        FormatError,
        edit,
        str(tmp_path / "pred" / "000000439180.png"),
        "4242",
        "absent from the id map",
    )


def test_unknown_category(sample: Sample, tmp_path: Path) -> None:
    def edit(images: dict[int, Image]) -> None:
        images[IMG_A].seg(16757838)["category_id"] = 9999

    expect_error(sample, tmp_path, CategoryError, edit, "000000142238.png", "16757838", "9999")


def test_missing_prediction(sample: Sample, tmp_path: Path) -> None:
    expect_error(
        sample,
        tmp_path,
        FormatError,
        lambda images: images.pop(IMG_B),
        str(tmp_path / "pred.json"),
        "439180",
    )


def test_png_size_mismatch(sample: Sample, tmp_path: Path) -> None:
    images = sample.images()
    pred_json, pred_dir = write_pred(tmp_path, images, sample.categories)
    a = images[IMG_A]
    write_id_png(pred_dir / a.file_name, a.ids[:-7])  # 427 -> 420 rows
    with pytest.raises(InputShapeError) as info:
        evaluate_coco_panoptic(sample.gt_json, sample.gt_dir, pred_json, pred_dir)
    assert "000000142238.png" in str(info.value) and "(420, 640)" in str(info.value)


def test_gt_checks(sample: Sample, tmp_path: Path) -> None:
    """The ground truth gets the same id checks as the prediction."""
    images = sample.images()
    pred_json, pred_dir = write_pred(tmp_path, images, sample.categories)
    a = images[IMG_A]
    a.segments.remove(a.seg(2035955))
    gt_json, gt_dir = write_pred(tmp_path, images, sample.categories, name="gt")
    with pytest.raises(FormatError) as info:
        evaluate_coco_panoptic(gt_json, gt_dir, pred_json, pred_dir)
    assert str(gt_dir / a.file_name) in str(info.value) and "2035955" in str(info.value)

    images = sample.images()
    images[IMG_B].segments.append({"id": 77, "category_id": PERSON, "iscrowd": 0})
    gt_json, gt_dir = write_pred(tmp_path, images, sample.categories, name="gt2")
    with pytest.raises(FormatError, match="77 is listed in segments_info but absent") as info:
        evaluate_coco_panoptic(gt_json, gt_dir, pred_json, pred_dir)
    assert str(gt_dir / "000000439180.png") in str(info.value)


def test_coco_to_panoptic_table_and_compact_lookups_agree(monkeypatch) -> None:
    """Ids below DIRECT_LOOKUP_MAX_ID (Cityscapes') go through a table, others through the
    distinct ids; both give the same map: unlisted ids are void, a repeated id keeps its first
    entry, crowd and stuff get instance 0, things are numbered in segments_info order."""
    from edgeps.io import coco_panoptic
    from edgeps.io.coco_panoptic import coco_to_panoptic

    rng = np.random.default_rng(0)
    ids = rng.choice(np.array([0, 7, 26001, 26002, 24000, 99999, 33001], np.uint32), size=(40, 50))
    segments = [
        {"id": 26001, "category_id": 26},
        {"id": 26002, "category_id": 26},
        {"id": 24000, "category_id": 24, "iscrowd": 1},
        {"id": 7, "category_id": 7},
        {"id": 33001, "category_id": 33},
        {"id": 26001, "category_id": 33},
    ]
    kw = {"category_map": {7: 0, 24: 11, 26: 13, 33: 18}, "thing_ids": [11, 13, 18]}
    table = coco_to_panoptic(ids, segments, **kw)
    monkeypatch.setattr(coco_panoptic, "DIRECT_LOOKUP_MAX_ID", 0)
    compact = coco_to_panoptic(ids, segments, **kw)
    np.testing.assert_array_equal(table, compact)
    assert set(np.unique(table).tolist()) == {-1, 0, 11000, 13001, 13002, 18001}
