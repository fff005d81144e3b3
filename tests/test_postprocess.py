"""The fast post-processing must return exactly what the plain loop oracle returns."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_oracle import oracle_panoptic

from edgeps.errors import InputShapeError
from edgeps.postprocess import (
    find_instance_centers,
    group_pixels,
    panoptic_from_heads,
    panoptic_prediction_from_heads,
)

THINGS = [1, 3, 4]


def random_heads(rng, h, w, n_classes=6, quantize=False, offset_scale=5.0):
    sem = rng.integers(0, n_classes, (h, w))
    heat = rng.random((h, w)).astype(np.float32)
    off = rng.normal(0, offset_scale, (2, h, w)).astype(np.float32)
    if quantize:  # plateaus in the heatmap and integer votes: many exact ties
        heat = np.round(heat * 4) / 4
        off = np.round(off)
    return sem, heat, off


@pytest.mark.parametrize("seed", range(40))
def test_identical_to_oracle_on_random_heads(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 33, 2))  # odd and even sizes
    sem, heat, off = random_heads(rng, h, w, quantize=seed % 2 == 0)
    kw = dict(
        thing_ids=THINGS,
        stuff_area=int(rng.integers(0, 40)),
        nms_kernel=int(rng.choice([1, 3, 5, 7])),
        top_k=int(rng.integers(1, 25)) if seed % 5 else None,
        threshold=float(rng.choice([0.0, 0.1, 0.5])),
    )
    np.testing.assert_array_equal(panoptic_from_heads(sem, heat, off, **kw), oracle_panoptic(sem, heat, off, **kw))


def test_equidistant_vote_goes_to_first_center_in_row_major_order():
    h, w = 5, 9
    sem = np.ones((h, w), np.int64)
    heat = np.zeros((h, w), np.float32)
    heat[2, 2] = heat[2, 6] = 0.9
    off = np.zeros((2, h, w), np.float32)
    # every pixel votes for (2, 4): exactly between the two centers
    off[0] = 2 - np.arange(h)[:, None]
    off[1] = 4 - np.arange(w)[None, :]
    pan = panoptic_from_heads(sem, heat, off, thing_ids=[1], nms_kernel=3, stuff_area=0)
    assert set(np.unique(pan)) == {1001}
    np.testing.assert_array_equal(pan, oracle_panoptic(sem, heat, off, [1], nms_kernel=3, stuff_area=0))


def test_tied_majority_goes_to_smallest_class():
    sem = np.array([[3, 3, 1, 1]])
    heat = np.array([[0, 0.9, 0, 0]], np.float32)
    off = np.zeros((2, 1, 4), np.float32)
    pan = panoptic_from_heads(sem, heat, off, thing_ids=[1, 3], nms_kernel=3)
    assert (pan == 1001).all()


def test_instances_numbered_per_class_in_row_major_center_order():
    sem = np.array([[1, 1, 2, 2, 1, 1]])
    heat = np.array([[0.5, 0, 0.9, 0, 0.7, 0]], np.float32)
    off = np.zeros((2, 1, 6), np.float32)
    off[1] = [0, -1, 0, -1, 0, -1]
    pan = panoptic_from_heads(sem, heat, off, thing_ids=[1, 2], nms_kernel=1, stuff_area=0)
    np.testing.assert_array_equal(pan, [[1001, 1001, 2001, 2001, 1002, 1002]])


def test_top_k_keeps_strictly_above_kth_score():
    heat = np.zeros((1, 9), np.float32)
    heat[0, ::2] = [0.9, 0.5, 0.5, 0.3, 0.2]
    centers, scores = find_instance_centers(heat, threshold=0.1, nms_kernel=1, top_k=2)
    # the 2nd score (0.5) ties with the 3rd: only scores > 0.5 survive
    np.testing.assert_array_equal(centers, [[0, 0]])
    np.testing.assert_allclose(scores, [0.9])
    centers, _ = find_instance_centers(heat, threshold=0.1, nms_kernel=1, top_k=None)
    assert len(centers) == 5


def test_empty_heatmap_leaves_thing_pixels_void_and_pastes_stuff():
    sem = np.array([[0, 0, 1], [0, 2, 1]])
    pan = panoptic_from_heads(
        sem, np.zeros((2, 3), np.float32), np.zeros((2, 2, 3), np.float32), thing_ids=[1], stuff_area=1
    )
    np.testing.assert_array_equal(pan, [[0, 0, -1], [0, 2000, -1]])


def test_no_thing_pixels_and_everything_void():
    rng = np.random.default_rng(3)
    sem = rng.integers(0, 3, (7, 11))
    heat = rng.random((7, 11)).astype(np.float32)
    off = rng.normal(0, 2, (2, 7, 11)).astype(np.float32)
    pan = panoptic_from_heads(sem, heat, off, thing_ids=[5], stuff_area=10**6)
    assert (pan == -1).all()
    pan = panoptic_from_heads(sem, heat, off, thing_ids=[5], stuff_area=0, void_label=-7)
    np.testing.assert_array_equal(pan, sem * 1000)


def test_logits_path_equals_class_map_path():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 1, (6, 20, 30)).astype(np.float32)
    _, heat, off = random_heads(rng, 20, 30)
    a = panoptic_from_heads(logits, heat, off, thing_ids=THINGS, stuff_area=5)
    b = panoptic_from_heads(logits.argmax(0), heat, off, thing_ids=THINGS, stuff_area=5)
    np.testing.assert_array_equal(a, b)


def test_wide_paths_many_classes_and_more_than_255_centers():
    # class ids >= 256 and K >= 255 leave the uint8/OpenCV fast paths: still exact
    rng = np.random.default_rng(11)
    h, w = 40, 40
    sem = rng.choice([0, 300, 301, 7], size=(h, w))
    heat = rng.random((h, w)).astype(np.float32)
    off = rng.normal(0, 3, (2, h, w)).astype(np.float32)
    kw = dict(thing_ids=[300, 301], stuff_area=3, nms_kernel=1, top_k=None, threshold=0.0)
    centers, _ = find_instance_centers(heat, 0.0, 1, None)
    assert len(centers) >= 255
    np.testing.assert_array_equal(panoptic_from_heads(sem, heat, off, **kw), oracle_panoptic(sem, heat, off, **kw))


def test_votes_far_off_the_image_and_dense_centers_use_the_exact_search():
    rng = np.random.default_rng(2)
    h, w = 30, 30
    sem = np.where(rng.random((h, w)) < 0.8, 1, 0)
    heat = rng.random((h, w)).astype(np.float32)
    off = rng.normal(0, 400, (2, h, w)).astype(np.float32)  # votes land far outside
    kw = dict(thing_ids=[1], stuff_area=0, nms_kernel=3, top_k=50)
    np.testing.assert_array_equal(panoptic_from_heads(sem, heat, off, **kw), oracle_panoptic(sem, heat, off, **kw))


def test_group_pixels_matches_brute_force_on_a_large_frame():
    # big enough that the candidate-cell search (not the small brute-force path) runs
    rng = np.random.default_rng(4)
    h, w = 200, 300
    centers = np.unique(rng.integers(0, [h, w], (150, 2)), axis=0)
    centers = centers[np.lexsort((centers[:, 1], centers[:, 0]))]
    off = rng.normal(0, 60, (2, h, w)).astype(np.float32)
    mask = rng.random((h, w)) < 0.7
    got = group_pixels(mask, off, centers)
    ys, xs = np.nonzero(mask)
    vy = ys + off[0][mask].astype(np.float64)
    vx = xs + off[1][mask].astype(np.float64)
    dy = vy[:, None] - centers[:, 0]
    dx = vx[:, None] - centers[:, 1]
    expected = (dy * dy + dx * dx).argmin(axis=1) + 1
    np.testing.assert_array_equal(got[mask], expected)
    assert (got[~mask] == 0).all()


def test_scores_are_mean_probability_times_center_score():
    sem = np.array([[1, 1, 0, 0]])
    heat = np.array([[0.8, 0, 0, 0]], np.float32)
    off = np.zeros((2, 1, 4), np.float32)
    off[1] = [0, -1, 0, 0]
    prob = np.array([[0.9, 0.7, 0.6, 0.4]], np.float32)
    pred = panoptic_prediction_from_heads(sem, heat, off, thing_ids=[1], stuff_area=1, nms_kernel=1, semantic_prob=prob)
    np.testing.assert_array_equal(pred.panoptic, [[1001, 1001, 0, 0]])
    assert pred.scores[1001] == pytest.approx(0.8 * 0.8)
    assert pred.scores[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(pred.centers, [[0, 0]])


def test_thing_area_turns_small_instances_void_and_keeps_the_rest() -> None:
    # A 1x8 row: class 1 (thing) everywhere; a big instance at x 0..5 (6 px) and a 2-px
    # fragment at x 6..7 voting for its own center; stuff class 0 nowhere.
    sem = np.ones((1, 8), np.int64)
    heat = np.zeros((1, 8), np.float32)
    heat[0, 2], heat[0, 7] = 0.9, 0.6
    off = np.zeros((2, 1, 8), np.float32)
    off[1, 0, :6] = 2 - np.arange(6)  # every pixel of 0..5 votes for x = 2
    off[1, 0, 6] = 1  # 6 votes for x = 7
    prob = np.full((1, 8), 0.5, np.float32)
    kw = dict(thing_ids=[1], stuff_area=0, nms_kernel=1, threshold=0.1, semantic_prob=prob)
    pred = panoptic_prediction_from_heads(sem, heat, off, **kw)
    np.testing.assert_array_equal(pred.panoptic, [[1001] * 6 + [1002] * 2])
    assert set(pred.scores) == {1001, 1002}
    for area in (3, 6):
        pred = panoptic_prediction_from_heads(sem, heat, off, thing_area=area, **kw)
        np.testing.assert_array_equal(pred.panoptic, [[1001] * 6 + [-1] * 2])
        assert set(pred.scores) == {1001}  # the dropped instance has no score
    pred = panoptic_prediction_from_heads(sem, heat, off, thing_area=7, **kw)
    np.testing.assert_array_equal(pred.panoptic, [[-1] * 8])
    assert pred.scores == {}
    with pytest.raises(InputShapeError, match="thing_area: must be >= 0, got -1"):
        panoptic_prediction_from_heads(sem, heat, off, thing_area=-1, **kw)


def test_thing_area_setting_reads_back_and_is_checked() -> None:
    from edgeps.errors import ConfigError
    from edgeps.postprocess import PostprocessSettings

    s = PostprocessSettings.from_dict({"thing_area": 48})
    assert s.thing_area == 48 and PostprocessSettings.from_dict(s.to_dict()) == s
    assert PostprocessSettings.from_dict({}).thing_area == 0  # manifests written before it keep every instance
    with pytest.raises(ConfigError, match="postprocess.thing_area: must be >= 0"):
        PostprocessSettings.from_dict({"thing_area": -4})


@pytest.mark.parametrize(
    "args, match",
    [
        (
            (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32), np.zeros((2, 4, 4), np.float32)),
            "semantic.*dtype float32",
        ),
        (
            (np.zeros((4, 4), np.int32), np.zeros((4, 5), np.float32), np.zeros((2, 4, 4), np.float32)),
            r"center_heatmap.*\(4, 5\)",
        ),
        (
            (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.float32), np.zeros((3, 4, 4), np.float32)),
            r"offsets.*\(3, 4, 4\)",
        ),
        (
            (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32), np.zeros((2, 4, 4), np.float32)),
            "center_heatmap.*int32",
        ),
        (
            (np.zeros((4, 4), np.int32), np.full((4, 4), np.nan, np.float32), np.zeros((2, 4, 4), np.float32)),
            "center_heatmap.*NaN",
        ),
        (
            (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.float32), np.full((2, 4, 4), np.inf, np.float32)),
            "offsets.*NaN or Inf",
        ),
        ((np.zeros((4,), np.int32), np.zeros((4,), np.float32), np.zeros((2, 4), np.float32)), r"semantic.*\(4,\)"),
        ((np.full((4, 4), -2), np.zeros((4, 4), np.float32), np.zeros((2, 4, 4), np.float32)), "semantic.*>= 0"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        panoptic_from_heads(*args, thing_ids=[1])


def test_bad_settings_raise():
    z = (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.float32), np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InputShapeError, match="nms_kernel"):
        panoptic_from_heads(*z, thing_ids=[1], nms_kernel=4)
    with pytest.raises(InputShapeError, match="top_k"):
        panoptic_from_heads(*z, thing_ids=[1], top_k=0)


def test_finite_check_is_exact_when_the_sum_overflows() -> None:
    """The one-pass finite check falls back to the element-wise one when finite values overflow
    their sum, and still finds a single NaN or Inf."""
    from edgeps.postprocess import _all_finite

    big = np.full((64, 64), 3e38, np.float32)  # finite, but the float32 sum is Inf
    assert _all_finite(big)
    for bad in (np.nan, np.inf, -np.inf):
        arr = np.zeros((2, 64, 64), np.float32)
        arr[1, 63, 5] = bad
        assert not _all_finite(arr)
        big2 = big.copy()
        big2[3, 3] = bad
        assert not _all_finite(big2)


@pytest.mark.parametrize("seed", range(6))
def test_merge_fast_path_equals_wide_path(seed: int) -> None:
    """The one-byte fused index (uint8 maps) and the bincount path (wide maps) give the same ids."""
    from edgeps.postprocess import merge_semantic_and_instance

    rng = np.random.default_rng(seed)
    h, w, n_classes, k = 37, 53, 7, int(rng.integers(0, 30))
    sem = rng.integers(0, n_classes, (h, w))
    thing_lut = np.zeros(n_classes, bool)
    thing_lut[[1, 3, 4]] = True
    inst = np.where(thing_lut[sem], rng.integers(0, k + 1, (h, w)), 0)
    kw = dict(stuff_area=int(rng.integers(0, 300)), label_divisor=1000, void_label=-1)
    fast = merge_semantic_and_instance(sem.astype(np.uint8), inst.astype(np.uint8), thing_lut, k, **kw)
    wide = merge_semantic_and_instance(sem.astype(np.int64), inst.astype(np.uint16), thing_lut, k, **kw)
    np.testing.assert_array_equal(fast[0], wide[0])
    np.testing.assert_array_equal(fast[1], wide[1])


@pytest.mark.parametrize("relative_map", [True, False])
def test_entry_equals_group_then_merge_on_a_busy_frame(monkeypatch, relative_map: bool) -> None:
    """The entry's fused one-byte path equals the public steps one after another, with OpenCV's
    relative remap and with the absolute maps used where OpenCV lacks it."""
    import edgeps.postprocess as pp

    if not relative_map:
        monkeypatch.setattr(pp, "_RELATIVE_MAP", None)
    from edgeps.apps.commands.bench_postprocess import THING_IDS, bench_heads

    sem, heat, off, _ = bench_heads(96, 160, n_instances=25, extra_peaks=40, seed=3)
    off = off + np.random.default_rng(0).normal(0, 4, off.shape).astype(np.float32)  # some Voronoi-edge votes
    centers, _ = pp.find_instance_centers(heat, 0.1, 7, 200)
    n_classes = int(max(sem.max(), max(THING_IDS))) + 1
    thing_lut = np.zeros(n_classes, bool)
    thing_lut[list(THING_IDS)] = True
    instance = pp.group_pixels(thing_lut[sem], off, centers)
    expected, _ = pp.merge_semantic_and_instance(sem.astype(np.int64), instance, thing_lut, len(centers), stuff_area=50)
    got = pp.panoptic_from_heads(sem, heat, off, thing_ids=THING_IDS, stuff_area=50)
    assert len(np.unique(got[got % 1000 > 0])) > 10
    np.testing.assert_array_equal(got, expected)


def _centers_from_thresholded_map(heat: np.ndarray, threshold: float, nms_kernel: int) -> np.ndarray:
    """The reference order of operations: zero values <= threshold, then the window max."""
    import cv2

    _, th = cv2.threshold(heat, threshold, 0, cv2.THRESH_TOZERO)
    pooled = cv2.dilate(th, np.ones((nms_kernel, nms_kernel), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return np.flatnonzero((th == pooled) & (th > 0))


@pytest.mark.parametrize("seed", range(8))
def test_peaks_of_the_raw_heatmap_equal_peaks_of_the_thresholded_one(seed: int) -> None:
    """NMS on the raw heatmap finds the thresholded map's peaks, with few or many pixels above,
    with values one float32 step either side of the threshold and plateaus."""
    rng = np.random.default_rng(seed)
    h, w = 40, 60
    threshold = float(rng.choice([0.0, 0.1, 0.3, 0.30000000000000004, 0.7, -0.2]))
    t32 = np.float32(threshold)
    heat = rng.random((h, w)).astype(np.float32) * (0.2 if seed % 2 else 1.0)  # sparse or dense above
    heat -= 0.1 * (seed % 3 == 0)
    edge = rng.random((h, w)) < 0.2
    heat[edge] = rng.choice([np.nextafter(t32, np.float32(-1)), t32, np.nextafter(t32, np.float32(1))], edge.sum())
    heat[rng.random((h, w)) < 0.05] = np.float32(0.75)  # plateaus
    for k in (1, 3, 7):
        centers, scores = find_instance_centers(heat, threshold, k, None)
        expected = _centers_from_thresholded_map(heat, threshold, k)
        np.testing.assert_array_equal(centers[:, 0] * w + centers[:, 1], expected)
        np.testing.assert_array_equal(scores, heat.ravel()[expected])


def test_bench_postprocess_reports_the_floor_and_the_graph_centers_path(tmp_path, capsys) -> None:
    """``edgeps bench-postprocess`` times the host path, the path left with centers from the graph
    (which must give the same map: the command checks) and the copy pass, in one loop."""
    import argparse
    import json

    from edgeps.apps.commands import bench_postprocess

    parser = argparse.ArgumentParser()
    bench_postprocess.add_arguments(parser)
    out = tmp_path / "pp.json"
    args = parser.parse_args(["--sizes", "64x128", "--repeats", "2", "--instances", "6", "--json", str(out)])
    assert bench_postprocess.run(args) == 0
    (row,) = json.loads(out.read_text())
    assert row["copy_ms"] > 0 and row["floor_ratio"] == pytest.approx(row["class_map_ms"] / row["copy_ms"])
    assert row["graph_centers_ms"] > 0 and "copy pass" in capsys.readouterr().out
    assert row["graph_grouping_floor_ratio"] == pytest.approx(row["graph_grouping_ms"] / row["copy_ms"])


@pytest.mark.parametrize("seed", range(10))
def test_centers_from_graph_candidates_equal_the_heatmap_scan(seed: int) -> None:
    """The top-K candidates a ``--postprocess graph`` export outputs, finished on the host, give
    the same centers and scores as scanning the heatmap (ties at the K-th score included)."""
    from edgeps.apps.commands.bench_postprocess import graph_candidates
    from edgeps.postprocess import centers_from_candidates

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(5, 40, 2))
    heat = rng.random((h, w)).astype(np.float32)
    if seed % 2:
        heat = (np.round(heat * 4) / 4).astype(np.float32)
    top_k = int(rng.integers(1, 40))
    index, score = graph_candidates(heat, top_k)
    rng.shuffle(perm := np.arange(index.size))  # the graph's order among ties is its own
    got = centers_from_candidates(index[perm], score[perm], (h, w), top_k)
    expected = find_instance_centers(heat, 0.1, 7, top_k)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
