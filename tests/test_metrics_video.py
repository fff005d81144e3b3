"""STQ and VPQ (edgeps.metrics.video): hand-computed tiny sequences, frame-by-frame accumulation
against a plain implementation on the stacked sequence, and the error messages.

Maps are (2, 4): ``frame(left, right)`` puts one id in columns 0-1 and another in columns 2-3
(4 pixels each per frame). Classes: 0 = road (stuff), 1 = car (thing), 2 = a third class;
``class * 1000 + instance``, void -1. Hand-computed VPQ uses windows of consecutive frames
(``step=1``, spans 0..3 = 1 to 4 frames) unless said otherwise; every expected value below is
derived in the comments, never read off the code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from edgeps.errors import CategoryError, ConfigError, InputShapeError
from edgeps.metrics import STQAccumulator, VPQAccumulator
from edgeps.metrics.pq import PQStat, pq_image

ROAD, CROWD, VOID = 0, 1000, -1
SPANS4 = (0, 1, 2, 3)


def frame(left: int, right: int) -> np.ndarray:
    f = np.empty((2, 4), np.int64)
    f[:, :2] = left
    f[:, 2:] = right
    return f


def scores(
    gts: list[np.ndarray],
    preds: list[np.ndarray],
    *,
    num_classes: int = 2,
    things: tuple[int, ...] = (1,),
    spans: tuple[int, ...] = SPANS4,
    step: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:
    stq = STQAccumulator(num_classes, things)
    vpq = VPQAccumulator(num_classes, things, spans=spans, step=step)
    for g, p in zip(gts, preds, strict=True):
        stq.update(g, p)
        vpq.update(g, p)
    return stq.result(), vpq.result()


def check(stq: dict, vpq: dict, *, aq: float, sq: float, vpq_k: dict[int, float]) -> None:
    assert stq["aq"] == pytest.approx(aq, abs=1e-12)
    assert stq["sq"] == pytest.approx(sq, abs=1e-12)
    assert stq["stq"] == pytest.approx(math.sqrt(aq * sq), abs=1e-12)
    assert {k: v["vpq"] for k, v in vpq["per_span"].items()} == pytest.approx(vpq_k, abs=1e-12)
    assert vpq["vpq"] == pytest.approx(sum(vpq_k.values()) / len(vpq_k), abs=1e-12)


def test_perfect_tracking_is_one_whatever_the_predicted_ids():
    # The car is predicted as track 7 in every frame: one gt track, one predicted track, equal
    # masks -> IoU_id 1, AQ 1; every pixel's class right -> SQ 1; every tube matched -> VPQ 1.
    gts = [frame(ROAD, 1001)] * 4
    stq, vpq = scores(gts, [frame(ROAD, 1007)] * 4)
    check(stq, vpq, aq=1.0, sq=1.0, vpq_k={0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0})
    # the default windows (t, t+5, ..., t+k) on 16 frames: spans 0, 5, 10, 15 all have windows
    stq, vpq = scores([frame(ROAD, 1001)] * 16, [frame(ROAD, 1007)] * 16, spans=(0, 5, 10, 15), step=5)
    assert stq["stq"] == 1.0 and vpq["vpq"] == 1.0
    assert {k: v["windows"] for k, v in vpq["per_span"].items()} == {0: 16, 5: 11, 10: 6, 15: 1}
    assert vpq["spans_scored"] == [0, 5, 10, 15]


def test_one_id_switch_halfway():
    # Cars A (left, 1001) and B (right, 1002) in 4 frames; the prediction swaps their ids after
    # frame 1. Each gt track (16 px) meets each predicted track (16 px) on 8 px:
    # IoU_id = 8 / (16 + 16 - 8) = 1/3, so per track (1/16)(8/3 + 8/3) = 1/3 -> AQ = 1/3; SQ = 1.
    # VPQ (car only; road never appears and is left out):
    #   k=0: every frame right -> 1.
    #   k=1: windows (0,1), (2,3) right (TP 2 each); (1,2): A's tube (8 px) meets each predicted
    #        tube on 4 px, IoU 4/12 -> FN 2, FP 2. TP 4, IoU sum 4 -> 4 / (4 + 1 + 1) = 2/3.
    #   k=2: (0,1,2): A (12 px) vs pred 1001 (12 px, 8 on A): IoU 8/16 = 0.5, not > 0.5 -> no match
    #        anywhere; (1,2,3) the same -> 0.
    #   k=3: IoU 8/24 -> 0.            VPQ = (1 + 2/3 + 0 + 0) / 4 = 5/12.
    gts = [frame(1001, 1002)] * 4
    preds = [frame(1001, 1002)] * 2 + [frame(1002, 1001)] * 2
    stq, vpq = scores(gts, preds)
    check(stq, vpq, aq=1 / 3, sq=1.0, vpq_k={0: 1.0, 1: 2 / 3, 2: 0.0, 3: 0.0})
    assert vpq["vpq"] == pytest.approx(5 / 12)


def test_a_track_split_in_two():
    # One car (16 px over 4 frames) predicted as track 1001 in frames 0-1 and 1002 in 2-3.
    # Each predicted track: TPA 8, IoU_id 8 / (8 + 16 - 8) = 1/2 -> AQ = (1/16)(4 + 4) = 1/2; SQ = 1.
    # VPQ: road is right everywhere (PQ 1). Car:
    #   k=0: 1.
    #   k=1: (0,1), (2,3) TP; (1,2): each predicted tube 4 px of the 8 px gt tube, IoU 4/8 = 0.5
    #        -> FN 1, FP 2. TP 2, IoU 2 -> 2 / (2 + 0.5 + 1) = 4/7; VPQ^1 = (1 + 4/7) / 2 = 11/14.
    #   k=2: (0,1,2): 1001 has 8 of the 12 px, IoU 8/12 -> TP 2/3, 1002 FP; (1,2,3) the same with
    #        1002 -> TP 2, IoU 4/3, FP 2 -> (4/3) / 3 = 4/9; VPQ^2 = (1 + 4/9) / 2 = 13/18.
    #   k=3: IoU 8/16 = 0.5 -> FN 1, FP 2 -> 0; VPQ^3 = 1/2.
    # VPQ = (1 + 11/14 + 13/18 + 1/2) / 4 = 379/504.
    gts = [frame(ROAD, 1001)] * 4
    preds = [frame(ROAD, 1001)] * 2 + [frame(ROAD, 1002)] * 2
    stq, vpq = scores(gts, preds)
    check(stq, vpq, aq=0.5, sq=1.0, vpq_k={0: 1.0, 1: 11 / 14, 2: 13 / 18, 3: 0.5})
    assert vpq["vpq"] == pytest.approx(379 / 504)


def test_a_crowd_region_is_left_out_of_aq_for_gt_and_prediction():
    # GT: car crowd (1000) on the left, car A (1001) on the right, 2 frames. Prediction: column 0
    # is a track 1005, columns 1-3 track 1001 (it reaches 2 px into the crowd per frame).
    # STQ: crowd pixels leave AQ for both sides, so 1001 counts its 8 px on A only and 1005 is
    # gone: IoU_id 1 -> AQ 1 (counting the crowd pixels would give 8 * (8/12) / 8 = 2/3).
    # SQ: every pixel is car in both -> 1.
    # VPQ (spans 0, 1): A (4 px/frame) vs 1001 (6 px, 2 on the crowd): crowd is not void, so the
    # union keeps them: IoU 4/6 = 2/3 -> TP. 1005 lies wholly on the crowd of its class -> no FP.
    # Both spans: 2/3.
    pred = frame(1001, 1001)
    pred[:, 0] = 1005
    stq, vpq = scores([frame(CROWD, 1001)] * 2, [pred] * 2, spans=(0, 1))
    check(stq, vpq, aq=1.0, sq=1.0, vpq_k={0: 2 / 3, 1: 2 / 3})
    assert stq["tracks"] == 1  # the crowd region is no track


def test_a_void_region_in_the_prediction():
    # The prediction leaves pixel (0, 1), a road pixel, void in both frames.
    # SQ: road inter 6, union 8 + 6 - 6 = 8 -> 3/4 (void predicted on a labelled pixel is a miss);
    # car 1 -> SQ = 7/8. AQ = 1. STQ = sqrt(7/8).
    # VPQ: road 3 of 4 px per frame, IoU 3/4 -> TP (PQ 3/4); car 1 -> 7/8 for both spans.
    pred = frame(ROAD, 1001)
    pred[0, 1] = VOID
    stq, vpq = scores([frame(ROAD, 1001)] * 2, [pred] * 2, spans=(0, 1))
    check(stq, vpq, aq=1.0, sq=7 / 8, vpq_k={0: 7 / 8, 1: 7 / 8})


def test_predictions_on_gt_void_count_in_aq_but_not_in_vpq():
    # GT column 3 is void; the predicted car covers columns 2-3. STQ: |g| = 4, |p| = 8 (its pixels
    # on gt void count), TPA 4 -> IoU_id 4/8 -> AQ = (1/4)(4 * 1/2) = 1/2. SQ drops gt-void pixels:
    # road 1, car 1 -> 1. VPQ: panopticapi takes pred-on-void out of the union: per frame
    # 4 + 2 - 2 - 2 = 2, IoU 2/2 -> VPQ 1.
    gt = frame(ROAD, 1001)
    gt[:, 3] = VOID
    stq, vpq = scores([gt] * 2, [frame(ROAD, 1001)] * 2, spans=(0, 1))
    check(stq, vpq, aq=0.5, sq=1.0, vpq_k={0: 1.0, 1: 1.0})


def test_a_class_that_never_appears_is_left_out():
    # Class 2 exists (num_classes 3) but is in no map: its union is empty (SQ) and it has no
    # TP/FP/FN (VPQ), so a perfect prediction still scores 1 (counting it would give 2/3).
    stq, vpq = scores([frame(ROAD, 1001)] * 2, [frame(ROAD, 1001)] * 2, num_classes=3, spans=(0, 1))
    check(stq, vpq, aq=1.0, sq=1.0, vpq_k={0: 1.0, 1: 1.0})
    assert sorted(stq["per_class_iou"]) == [0, 1]
    # Predicted once (1 px of road as class 2, stuff, in frame 0), it counts with IoU 0:
    # SQ = (7/8 + 1 + 0) / 3 = 5/8. VPQ k=0: road TP 3/4 and 1 -> 7/8, car 1, class 2 FP -> 0:
    # (7/8 + 1 + 0) / 3 = 5/8; k=1: road IoU 7/8 -> the same 5/8.
    pred0 = frame(ROAD, 1001)
    pred0[0, 0] = 2000
    stq, vpq = scores([frame(ROAD, 1001)] * 2, [pred0, frame(ROAD, 1001)], num_classes=3, spans=(0, 1))
    check(stq, vpq, aq=1.0, sq=5 / 8, vpq_k={0: 5 / 8, 1: 5 / 8})


def test_aq_over_sequences_is_summed_over_tracks_not_averaged_over_sequences():
    # Sequence "a": the split track (AQ 1/2, 1 track). Sequence "b": three cars tracked perfectly
    # (AQ 1, 3 tracks) with the same ids as "a" (sequences never share tracks).
    # AQ = (1/2 + 3) / 4 = 7/8, not (1/2 + 1) / 2. SQ = 1 over both.
    stq = STQAccumulator(2, [1])
    stq.next_sequence("a")
    for p in [frame(ROAD, 1001)] * 2 + [frame(ROAD, 1002)] * 2:
        stq.update(frame(ROAD, 1001), p)
    stq.next_sequence("b")
    three = np.array([[1001, 1002, 1003]])
    for _ in range(2):
        stq.update(three, three)
    r = stq.result()
    assert r["aq"] == pytest.approx(7 / 8)
    assert r["sq"] == 1.0 and r["stq"] == pytest.approx(math.sqrt(7 / 8))
    assert r["tracks"] == 4 and r["frames"] == 6
    per = {s["name"]: s for s in r["per_sequence"]}
    assert per["a"]["aq"] == pytest.approx(0.5) and per["a"]["stq"] == pytest.approx(math.sqrt(0.5))
    assert per["b"]["aq"] == 1.0 and per["b"]["tracks"] == 3 and per["b"]["frames"] == 2


def test_no_window_spans_two_sequences():
    # Two 2-frame sequences with spans (0, 1, 2): span 2 needs 3 frames of one sequence -> no
    # window (left out of VPQ and reported); span 1 has one window per sequence.
    vpq = VPQAccumulator(2, [1], spans=(0, 1, 2), step=1)
    for name in ("a", "b"):
        vpq.next_sequence(name)
        for _ in range(2):
            vpq.update(frame(ROAD, 1001), frame(ROAD, 1001))
    r = vpq.result()
    assert {k: v["windows"] for k, v in r["per_span"].items()} == {0: 4, 1: 2, 2: 0}
    assert r["spans_scored"] == [0, 1] and r["vpq"] == 1.0
    assert [s["name"] for s in r["per_sequence"]] == ["a", "b"]


# ----------------------------------------------------------------------------- stacked reference
def stq_stacked(sequences: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int, things: list[int]) -> dict:
    """STQ of whole sequences at once, written after deeplab2's ``STQuality`` (void -> class n)."""
    total_conf = np.zeros((n + 1, n + 1), np.int64)
    aq_sum, tracks, per_seq = 0.0, 0, []
    for gts, preds in sequences:
        g, p = np.stack(gts).ravel(), np.stack(preds).ravel()
        gc, pc = np.where(g == VOID, n, g // 1000), np.where(p == VOID, n, p // 1000)
        conf = np.zeros((n + 1, n + 1), np.int64)
        np.add.at(conf, (gc, pc), 1)
        total_conf += conf
        crowd = np.isin(gc, things) & (g % 1000 == 0)
        g_mask = np.isin(gc, things) & ~crowd
        p_mask = np.isin(pc, things) & ~crowd
        gt_ids, gt_sizes = np.unique(g[g_mask], return_counts=True)
        pred_size = dict(zip(*np.unique(p[p_mask], return_counts=True), strict=True))
        both = g_mask & p_mask
        seq_sum = 0.0
        for gid, gsize in zip(gt_ids, gt_sizes, strict=True):
            inner = 0.0
            for pid, psize in pred_size.items():
                tpa = np.count_nonzero(both & (g == gid) & (p == pid))
                if tpa:
                    inner += tpa * tpa / (tpa + (psize - tpa) + (gsize - tpa))
            seq_sum += inner / gsize
        aq_sum += seq_sum
        tracks += len(gt_ids)
        per_seq.append((seq_sum / len(gt_ids) if len(gt_ids) else 0.0, miou(conf)))
    return {"aq": aq_sum / tracks, "sq": miou(total_conf), "per_sequence": per_seq}


def miou(conf: np.ndarray) -> float:
    n = conf.shape[0] - 1
    c = conf[:n]
    inter = np.diag(c[:, :n])
    union = c.sum(1) + c[:, :n].sum(0) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]))


def vpq_stacked(sequences: list, n: int, things: list[int], spans: tuple[int, ...], step: int) -> dict[int, float]:
    """VPQ^k of every window built by concatenating its frames and scored with pq_image."""

    def segments(m: np.ndarray, gt: bool) -> list[dict]:
        out = []
        for sid in np.unique(m).tolist():
            if sid == VOID:
                continue
            seg = {"id": sid, "category_id": sid // 1000}
            if gt:
                seg["iscrowd"] = int(sid // 1000 in things and sid % 1000 == 0)
            out.append(seg)
        return out

    result = {}
    for k in spans:
        stat = PQStat()
        for gts, preds in sequences:
            for t in range(len(gts) - k):
                g = np.concatenate(gts[t : t + k + 1 : step])
                p = np.concatenate(preds[t : t + k + 1 : step])
                stat.add(pq_image(g, segments(g, True), p, segments(p, False), void_id=VOID))
        pqs = [m["pq"] for c in range(n) if (m := stat.class_metrics(c)) is not None]
        if pqs:
            result[k] = float(np.mean(pqs))
    return result


def random_sequence(rng: np.random.Generator, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Road/sidewalk stuff, three moving thing boxes (classes 2, 3), a crowd box, a void border;
    the prediction: the same with pixel noise (other ids, void), a swap of two ids midway, a
    box split in two in some frames and a class confusion."""
    h, w = 12, 16
    gts, preds = [], []
    swap_at = int(rng.integers(3, frames - 3))
    for f in range(frames):
        g = np.zeros((h, w), np.int64)
        g[h // 2 :] = 1000
        for inst, (cls, y, x, v) in enumerate([(2, 1, 1, 1), (2, 6, 3, -1), (3, 3, 8, 1)], start=1):
            x0 = (x + v * f) % (w - 4)
            g[y : y + 4, x0 : x0 + 4] = cls * 1000 + inst
        if f % 3:
            g[0:2, 12:16] = 2000  # crowd of class 2
        g[:, 0] = VOID
        p = g.copy()
        p[p == VOID] = 0  # predicted road on the void border
        if f >= swap_at:
            a, b = p == 2001, p == 2002
            p[a], p[b] = 2002, 2001
        if f % 4 == 1:
            piece = (p == 3003) & (np.arange(w)[None, :] % 2 == 0)
            p[piece] = 3009
        if f % 5 == 2:
            p[p == 2001] = 3001  # wrong class
        noise = rng.random((h, w)) < 0.08
        p[noise] = rng.choice(np.array([VOID, 0, 1000, 2001, 2002, 3003, 2007]), size=int(noise.sum()))
        gts.append(g)
        preds.append(p)
    return gts, preds


@pytest.mark.parametrize("spans, step", [((0, 5, 10, 15), 5), ((0, 1, 2, 3), 1)])
def test_frame_by_frame_equals_the_stacked_sequence(spans, step):
    rng = np.random.default_rng(0)
    n, things = 4, [2, 3]
    sequences = [random_sequence(rng, t) for t in (20, 17, 9)]
    stq = STQAccumulator(n, things)
    vpq = VPQAccumulator(n, things, spans=spans, step=step)
    for i, (gts, preds) in enumerate(sequences):
        stq.next_sequence(f"s{i}")
        vpq.next_sequence(f"s{i}")
        for g, p in zip(gts, preds, strict=True):
            stq.update(g, p)
            vpq.update(g, p)
    want = stq_stacked(sequences, n, things)
    got = stq.result()
    assert got["aq"] == pytest.approx(want["aq"], abs=1e-12)
    assert got["sq"] == pytest.approx(want["sq"], abs=1e-12)
    assert 0.05 < got["aq"] < 0.95 and 0.05 < got["sq"] < 0.95  # the noise matters
    for s, (aq, sq) in zip(got["per_sequence"], want["per_sequence"], strict=True):
        assert (s["aq"], s["sq"]) == pytest.approx((aq, sq), abs=1e-12)
    want_vpq = vpq_stacked(sequences, n, things, spans, step)
    got_vpq = vpq.result()
    assert {k: v["vpq"] for k, v in got_vpq["per_span"].items() if v["classes"]} == pytest.approx(want_vpq, abs=1e-12)
    assert got_vpq["vpq"] == pytest.approx(np.mean(list(want_vpq.values())), abs=1e-12)
    assert len(want_vpq) == len(spans) and 0.05 < got_vpq["vpq"] < 0.95


def test_memory_does_not_grow_with_the_video():
    vpq = VPQAccumulator(2, [1])
    for _ in range(40):
        vpq.update(frame(ROAD, 1001), frame(ROAD, 1001))
    assert len(vpq._current.buffer) == 16  # the last max(spans) + 1 frames


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [STQAccumulator, VPQAccumulator])
def test_bad_input_names_the_argument(cls):
    acc = cls(2, [1])
    with pytest.raises(InputShapeError, match=r"gt: expected an \(H, W\) integer panoptic map.*float64"):
        acc.update(np.zeros((2, 4)), frame(ROAD, 1001))
    with pytest.raises(InputShapeError, match=r"pred: expected an \(H, W\).*shape \(2, 4, 1\)"):
        acc.update(frame(ROAD, 1001), np.zeros((2, 4, 1), np.int64))
    with pytest.raises(InputShapeError, match=r"pred: shape \(2, 3\) differs from gt shape \(2, 4\)"):
        acc.update(frame(ROAD, 1001), np.zeros((2, 3), np.int64))
    with pytest.raises(InputShapeError, match=r"pred: panoptic ids \[5001\].*\[0, 2\)"):
        acc.update(frame(ROAD, 1001), frame(ROAD, 5001))
    with pytest.raises(InputShapeError, match=r"gt: panoptic ids \[-7\]"):
        acc.update(frame(-7, 1001), frame(ROAD, 1001))
    with pytest.raises(CategoryError, match=r"thing_ids: classes \[4\]"):
        cls(2, [1, 4])
    with pytest.raises(ConfigError, match="num_classes"):
        cls(0, [])


def test_bad_windows_are_refused():
    with pytest.raises(ConfigError, match=r"spans: expected non-negative multiples of step 5"):
        VPQAccumulator(2, [1], spans=(0, 3))
    with pytest.raises(ConfigError, match="step"):
        VPQAccumulator(2, [1], step=0)


def test_association_by_ground_truth_gives_each_segment_its_object_id():
    """Each thing segment takes the id of the ground-truth track it overlaps most: pieces of one
    object share its id, a segment over two objects takes the larger one's, one over no object
    (stuff or void only) a fresh id of its own; ids persist over the sequence."""
    from edgeps.metrics.tracking import OracleAssociation
    from edgeps.panoptic import segments_of

    gt = np.array([[1001, 1001, 1001, 1002], [1001, 1001, 1002, 1002], [0, 0, 0, -1]], np.int64)
    pred = np.array([[1005, 1005, 1006, 1007], [1005, 1006, 1006, 1007], [1008, 0, 0, 1009]], np.int64)
    # 1005, 1006: pieces of 1001 (1006 also covers 1 pixel of 1002, 2 of 1001); 1007 on 1002;
    # 1008 on road only, 1009 on void only
    oracle = OracleAssociation([1])
    ids = {s.id: s.track_id for s in oracle.update(gt, pred, segments_of(pred))}
    assert ids[0] is None  # stuff keeps None
    assert ids[1005] == ids[1006] == 1 and ids[1007] == 2  # 1001 met first: 1, then 1002: 2
    assert ids[1008] == 3 and ids[1009] == 4  # no object under them: fresh ids
    # the next frame: other segment numbers on the same objects keep the objects' ids
    pred2 = np.where(pred == 1005, 1001, np.where(pred == 1006, 1001, np.where(pred == 1007, 1003, 0)))
    ids2 = {s.id: s.track_id for s in oracle.update(gt, pred2, segments_of(pred2))}
    assert ids2[1001] == 1 and ids2[1003] == 2
    # a merged segment over both objects takes the larger one's (1001: 5 pixels, 1002: 3)
    merged = np.where(gt > 1000, 1009, 0)
    assert [s.track_id for s in oracle.update(gt, merged, segments_of(merged)) if s.id == 1009] == [1]
    with pytest.raises(InputShapeError, match="expected the same"):
        oracle.update(gt[:2], pred, segments_of(pred))


def test_association_by_ground_truth_makes_aq_one_on_the_ground_truth_masks():
    """Renumbered ground-truth masks with ids from association by ground truth score AQ 1: the
    bound eval-video reports, here on a sequence with a switch a tracker could make."""
    from edgeps.metrics.tracking import OracleAssociation
    from edgeps.panoptic import segments_of

    stq = STQAccumulator(2, [1])
    oracle = OracleAssociation([1])
    for t in range(4):
        gt = frame(1001, 1002)
        pred = frame(1002, 1001) if t % 2 else gt  # the numbers swap every frame
        segs = oracle.update(gt, pred, segments_of(pred))
        ids = np.array([s.id for s in segs])
        tracked = np.array([1000 + s.track_id if s.track_id else s.id for s in segs])
        stq.update(gt, tracked[np.searchsorted(ids, pred)])
    assert stq.result()["aq"] == pytest.approx(1.0)
