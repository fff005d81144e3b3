"""The full metric report: mask AP through pycocotools (the conversions that feed it, on hand
cases), pixel accuracy on hand cases, and the report of ``edgeps eval-coco`` / ``edgeps eval``.

Expected AP values are reasoned from COCOeval's definition (101 recall points, the precision
envelope, the mean over categories with ground truth), never read off the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgeps.apps.cli import main
from edgeps.categories import Categories
from edgeps.evaluation import evaluate_predictor
from edgeps.io.coco_panoptic import read_id_png, read_json, write_id_png, write_json
from edgeps.io.rle import rle_decode
from edgeps.metrics import PanopticAccumulator, detection_ground_truth
from edgeps.postprocess import PanopticPrediction
from edgeps.result import PanopticResult

REPO = Path(__file__).resolve().parents[1]
EPS = 1e-12
# Every key of the report, spelled out here rather than taken from the code under test.
KEYS = {"All", "Things", "Stuff", "per_class", "miou", "per_class_iou", "pixel_accuracy", "mask_ap", "images"}
AP_FIELDS = {"status", "reason", "ap", "ap50", "ap75", "gt_instances", "pred_instances"}

SMALL = Categories.from_list(
    [
        {"id": 0, "name": "road", "isthing": 0},
        {"id": 1, "name": "car", "isthing": 1},
        {"id": 2, "name": "person", "isthing": 1},
    ]
)

# road (stuff), cars 1001 and 1002, person 2001, and a car crowd region (car, instance 0).
GT = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [1001, 1001, 0, 1002, 1002, 0, 2001],
        [1001, 1001, 0, 1002, 1002, 0, 2001],
        [1000, 1000, 0, 0, 0, 0, 2001],
    ],
    np.int32,
)


def ap_of(pred: np.ndarray, scores: dict[int, float] | None, gt: np.ndarray = GT) -> dict:
    acc = PanopticAccumulator(SMALL, mask_ap=True)
    acc.update(pred, gt, pred_scores=scores)
    return acc.result()["mask_ap"]


def assert_ap(ap: dict, value: float) -> None:
    assert ap["status"] == "ok" and ap["reason"] is None, ap
    for key in ("ap", "ap50", "ap75"):  # masks are exact or absent: every IoU threshold agrees
        assert ap[key] == pytest.approx(value, abs=1e-9), key


# -- the ground truth as panoptic2detection builds it -----------------------------------------


def test_ground_truth_is_things_only_with_crowd_kept() -> None:
    segments = [
        {"id": 0, "category_id": 0},
        {"id": 1000, "category_id": 1, "iscrowd": 1},
        {"id": 1001, "category_id": 1, "iscrowd": 0},
        {"id": 1002, "category_id": 1},
        {"id": 2001, "category_id": 2, "area": 99},
    ]
    anns = detection_ground_truth(GT, segments, thing_ids=SMALL.thing_ids, image_id=7)
    assert [(a["category_id"], a["iscrowd"]) for a in anns] == [(1, 1), (1, 0), (1, 0), (2, 0)]
    assert all(a["image_id"] == 7 and "id" not in a for a in anns)
    for a, sid in zip(anns, (1000, 1001, 1002, 2001)):
        assert np.array_equal(rle_decode(a["segmentation"]), GT == sid)
        assert isinstance(a["segmentation"]["counts"], str)  # compressed, as pycocotools writes it
    # A listed area is kept (panopticapi copies segments_info); otherwise the mask's.
    assert [a["area"] for a in anns] == [2.0, 4.0, 4.0, 99.0]
    assert anns[2]["bbox"] == [3.0, 1.0, 2.0, 2.0]  # x, y, w, h


def test_ground_truth_of_the_coco_sample_keeps_its_crowd_regions(coco_sample: Path) -> None:
    data = read_json(coco_sample / "panoptic_examples.json")
    cats = Categories.from_list(data["categories"])
    for ann in data["annotations"]:
        ids = read_id_png(coco_sample / "panoptic_examples" / ann["file_name"])
        out = detection_ground_truth(ids, ann["segments_info"], thing_ids=cats.thing_ids, image_id=1)
        things = [s for s in ann["segments_info"] if cats[s["category_id"]].isthing]
        assert [a["iscrowd"] for a in out] == [s["iscrowd"] for s in things]
        assert [a["area"] for a in out] == [s["area"] for s in things]
        assert [a["category_id"] for a in out] == [s["category_id"] for s in things]
    crowd = sum(s["iscrowd"] for a in data["annotations"] for s in a["segments_info"])
    assert crowd == 3  # the sample does have crowd regions to keep


# -- AP through COCOeval on hand cases --------------------------------------------------------


def test_identity_gives_ap_one() -> None:
    ap = ap_of(GT, {1001: 0.9, 1002: 0.8, 2001: 0.7})
    assert_ap(ap, 1.0)
    assert ap["gt_instances"] == 3 and ap["pred_instances"] == 3  # crowd is not an instance to find


def test_a_dropped_instance() -> None:
    # Car 1002 predicted as road: car recall stops at 1/2 with precision 1, so 51 of COCO's 101
    # recall points (0.00 .. 0.50) have precision 1 and the rest 0; person is perfect.
    pred = np.where(GT == 1002, 0, GT)
    ap = ap_of(pred, {1001: 0.9, 2001: 0.7})
    assert_ap(ap, (51 / 101 + 1.0) / 2)


@pytest.mark.parametrize("wrong_score, car_ap", [(0.5, 1.0), (0.95, 2 / 3)])
def test_a_wrong_class(wrong_score: float, car_ap: float) -> None:
    # The person predicted as a third car. Person has no detection: AP 0. Car: the two right
    # detections rank first (AP 1), or the wrong one ranks first: precision 0, 1/2, 2/3 at
    # recall 0, 1/2, 1, whose envelope is 2/3 at every recall point.
    pred = np.where(GT == 2001, 1003, GT)
    ap = ap_of(pred, {1001: 0.9, 1002: 0.8, 1003: wrong_score})
    assert_ap(ap, (car_ap + 0.0) / 2)


def test_a_detection_on_the_crowd_region_is_ignored() -> None:
    # The crowd region predicted as a car instance scoring highest. Kept as iscrowd in the GT,
    # the detection is ignored: AP 1.
    pred = np.where(GT == 1000, 1003, GT)
    scores = {1001: 0.9, 1002: 0.8, 1003: 0.99, 2001: 0.7}
    assert_ap(ap_of(pred, scores), 1.0)
    # With the crowd region gone from the GT, the same detection is a false positive ranked
    # first: car precision 0, 1/2, 2/3 at recall 0, 1/2, 1, whose envelope is 2/3 everywhere.
    assert_ap(ap_of(pred, scores, gt=np.where(GT == 1000, 0, GT)), (2 / 3 + 1.0) / 2)


def test_predictions_without_scores_give_na_with_the_reason() -> None:
    ap = ap_of(GT, None)
    assert set(ap) == AP_FIELDS
    assert ap["status"] == "n/a" and ap["ap"] is None and ap["ap50"] is None and ap["ap75"] is None
    assert "no segment scores" in ap["reason"]
    partial = ap_of(GT, {1001: 0.9, 2001: 0.7})
    assert partial["status"] == "n/a" and "1002" in partial["reason"]
    # Not asked for: n/a too, and the report still has every key.
    acc = PanopticAccumulator(SMALL)
    acc.update(GT, GT)
    res = acc.result()
    assert set(res) == KEYS and res["mask_ap"]["status"] == "n/a" and "mask_ap=True" in res["mask_ap"]["reason"]


def test_no_thing_instance_in_the_ground_truth_gives_na() -> None:
    gt = np.zeros((2, 3), np.int32)
    ap = ap_of(gt, {}, gt=gt)
    assert ap["status"] == "n/a" and "no non-crowd instance" in ap["reason"]


def test_missing_pycocotools_gives_na_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval", "pycocotools.mask"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    ap = ap_of(GT, {1001: 0.9, 1002: 0.8, 2001: 0.7})
    assert ap["status"] == "n/a" and "pip install pycocotools" in ap["reason"]


def test_the_core_imports_and_reports_without_pycocotools() -> None:
    code = """
import sys
import numpy as np
import edgeps.metrics, edgeps.evaluation, edgeps.apps.commands.eval, edgeps.apps.commands.eval_coco
assert "pycocotools" not in sys.modules, "imported at import time"
sys.modules["pycocotools"] = None
from edgeps.categories import Categories
from edgeps.evaluation import evaluate_predictor
from edgeps.metrics import PanopticAccumulator
acc = PanopticAccumulator(Categories.from_list([{"id": 1, "name": "car", "isthing": 1}]), mask_ap=True)
acc.update(np.array([[1001, 1002]]), np.array([[1001, 1002]]), pred_scores={1001: 0.5, 1002: 0.6})
r = acc.result()
print(r["All"]["pq"], r["pixel_accuracy"], r["mask_ap"]["status"], r["mask_ap"]["reason"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    pq, pixel_accuracy, status, reason = out.stdout.strip().split(maxsplit=3)
    assert (pq, pixel_accuracy, status) == ("1.0", "1.0", "n/a")
    assert reason == "pycocotools is not installed: pip install pycocotools"


# -- pixel accuracy on hand cases -------------------------------------------------------------


def test_pixel_accuracy_hand_cases() -> None:
    gt = np.array([[0, 0], [-1, 1001]])
    pred = np.array([[0, -1], [1001, 1001]])
    acc = PanopticAccumulator(SMALL)
    acc.update(pred, gt)
    # 3 labelled GT pixels: road right, road predicted void (wrong), car right; GT void ignored.
    assert acc.result()["pixel_accuracy"] == pytest.approx(2 / 3, abs=EPS)
    # Instance numbers do not matter; the sum runs over pixels, not a mean of images.
    acc.update(np.array([[2005, 0], [1007, 1007]]), np.array([[2001, 0], [1001, 1002]]))
    assert acc.result()["pixel_accuracy"] == pytest.approx((2 + 4) / (3 + 4), abs=EPS)

    big = PanopticAccumulator(SMALL)
    big_gt = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1001, 1001, 1002, 1002], [1001, 1001, 1002, -1]])
    big_pred = np.array([[0, 0, 0, 0], [0, 0, 0, 1001], [1001, 1001, 1002, 1002], [1001, 1001, 2001, 1002]])
    big.update(big_pred, big_gt)
    # 15 labelled pixels; wrong: a road pixel as car, a car pixel as person.
    assert big.result()["pixel_accuracy"] == pytest.approx(13 / 15, abs=EPS)


def test_pixel_accuracy_from_coco_files(coco_sample: Path, tmp_path: Path) -> None:
    # The prediction drops the largest stuff segment of the first image to void.
    data = read_json(coco_sample / "panoptic_examples.json")
    cats = Categories.from_list(data["categories"])
    first = data["annotations"][0]
    seg = max((s for s in first["segments_info"] if not cats[s["category_id"]].isthing), key=lambda s: s["area"])
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    labelled = 0
    for ann in data["annotations"]:
        ids = read_id_png(coco_sample / "panoptic_examples" / ann["file_name"])
        labelled += int((ids != 0).sum())
        if ann is first:
            ids = np.where(ids == seg["id"], 0, ids)
            ann["segments_info"] = [s for s in ann["segments_info"] if s["id"] != seg["id"]]
        write_id_png(pred_dir / ann["file_name"], ids)
    write_json(tmp_path / "pred.json", data)
    removed = int((read_id_png(coco_sample / "panoptic_examples" / first["file_name"]) == seg["id"]).sum())
    out = tmp_path / "report.json"
    args = ["--gt-json", coco_sample / "panoptic_examples.json", "--gt-dir", coco_sample / "panoptic_examples"]
    args += ["--pred-json", tmp_path / "pred.json", "--pred-dir", pred_dir, "--json", out]
    assert main(["eval-coco", *map(str, args)]) == 0
    report = json.loads(out.read_text())
    assert report["pixel_accuracy"] == pytest.approx(1 - removed / labelled, abs=EPS)
    assert report["per_class_iou"][str(seg["category_id"])] < 1.0


# -- the commands ------------------------------------------------------------------------------


def test_eval_coco_report_of_the_ground_truth_is_perfect(
    coco_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_json, gt_dir = coco_sample / "panoptic_examples.json", coco_sample / "panoptic_examples"
    pred = read_json(gt_json)
    for ann in pred["annotations"]:
        for seg in ann["segments_info"]:
            seg["score"] = 1.0
    write_json(tmp_path / "pred.json", pred)
    out = tmp_path / "report.json"
    argv = ["eval-coco", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-dir", str(gt_dir)]
    assert main([*argv, "--pred-json", str(tmp_path / "pred.json"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mIoU 100.0  pixel accuracy 100.0" in text
    assert "mask AP 100.0  AP50 100.0  AP75 100.0" in text

    report = json.loads(out.read_text())
    assert set(report) == KEYS and report["images"] == 2
    assert report["All"]["pq"] == 1.0 and report["Things"]["pq"] == 1.0 and report["Stuff"]["pq"] == 1.0
    assert report["pixel_accuracy"] == 1.0 and report["miou"] == 1.0
    mask_ap = report["mask_ap"]
    assert set(mask_ap) == AP_FIELDS and mask_ap["status"] == "ok"
    assert (mask_ap["ap"], mask_ap["ap50"], mask_ap["ap75"]) == (1.0, 1.0, 1.0)
    assert mask_ap["gt_instances"] == 40  # 26 persons, 2 trucks, 11 horses, 1 ball; crowd aside

    # The GT file itself has no scores: AP is n/a with the reason, the rest unchanged.
    assert main([*argv, "--pred-json", str(gt_json), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["mask_ap"]["status"] == "n/a" and report["mask_ap"]["ap"] is None
    assert "has no 'score' in segments_info" in report["mask_ap"]["reason"]
    assert "mask AP n/a (" in text and report["pixel_accuracy"] == 1.0


def test_eval_checkpoint_writes_every_key(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--data", "synth:val:2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mIoU" in text and "pixel accuracy" in text and "mask AP" in text
    report = json.loads(out.read_text())
    assert set(report) == KEYS | {"ms_per_image"} and report["images"] == 2
    for group in ("All", "Things", "Stuff"):
        assert set(report[group]) == {"pq", "sq", "rq", "n"}
    assert set(report["mask_ap"]) == AP_FIELDS
    # The checkpoint's predictions carry segment scores, so AP is computed (the tiny model may
    # find no instance: AP 0 then, still "ok").
    assert report["mask_ap"]["status"] == "ok", report["mask_ap"]["reason"]
    assert 0.0 <= report["mask_ap"]["ap"] <= 1.0 and report["mask_ap"]["gt_instances"] > 0
    assert 0.0 <= report["pixel_accuracy"] <= 1.0 and 0.0 <= report["miou"] <= 1.0
    assert set(report["per_class_iou"]) <= set(report["per_class"])


class _Dataset:
    """Two hand-made images in the SMALL categories (what evaluate_predictor reads)."""

    categories = SMALL

    def __init__(self) -> None:
        second = np.where(GT == 2001, 2002, GT)[:, ::-1].copy()
        self.samples = [
            SimpleNamespace(image=np.full((*g.shape, 3), k, np.uint8), panoptic=g) for k, g in enumerate((GT, second))
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> SimpleNamespace:
        return self.samples[i]


def test_evaluate_predictor_reads_scores_from_each_prediction_type() -> None:
    data = _Dataset()

    def truth(image: np.ndarray) -> np.ndarray:
        return data.samples[int(image[0, 0, 0])].panoptic

    def scores(pan: np.ndarray) -> dict[int, float]:
        return {int(i): 0.5 for i in np.unique(pan) if i >= 0}

    def as_prediction(image: np.ndarray) -> PanopticPrediction:
        return PanopticPrediction(truth(image), scores(truth(image)))

    def as_result(image: np.ndarray) -> PanopticResult:
        pan = truth(image)
        return PanopticResult(pan, [SimpleNamespace(id=i, score=s) for i, s in scores(pan).items()])

    for predictor in (as_prediction, as_result):
        report = evaluate_predictor(predictor, data, show_progress=False, mask_ap=True)
        assert set(report) == KEYS | {"ms_per_image"} and report["images"] == 2
        assert report["All"]["pq"] == 1.0 and report["pixel_accuracy"] == 1.0
        assert_ap(report["mask_ap"], 1.0)
        assert report["mask_ap"]["gt_instances"] == 6
    bare = evaluate_predictor(truth, data, show_progress=False, mask_ap=True)
    assert bare["All"]["pq"] == 1.0 and bare["mask_ap"]["status"] == "n/a"
    assert "no segment scores" in bare["mask_ap"]["reason"]
