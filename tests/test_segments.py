"""Segment statistics (area, bbox, centroid) against a per-segment brute force."""

from __future__ import annotations

import numpy as np

from edgeps.data.synthetic import random_scene
from edgeps.panoptic import compact_ids, segments_of


def test_segments_match_brute_force():
    pan = random_scene(96, 160, n_instances=12, seed=3)
    segs = segments_of(pan)
    assert {s.id for s in segs} == set(np.unique(pan).tolist()) - {-1}
    for seg in segs:
        ys, xs = np.nonzero(pan == seg.id)
        assert seg.area == ys.size
        assert seg.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert np.allclose(seg.centroid, (xs.mean(), ys.mean()))
        assert seg.category_id == seg.id // 1000 and seg.instance == seg.id % 1000


def test_compact_ids_small_and_wide_ranges():
    a = np.array([[5, -1, 5], [7007, 5, -1]], np.int32)
    ids, inv = compact_ids(a)
    assert ids.tolist() == [-1, 5, 7007]
    np.testing.assert_array_equal(ids[inv].reshape(a.shape), a)
    b = np.array([[0, 2_000_000_000]], np.int64)  # wide range: falls back to sorting
    ids, inv = compact_ids(b)
    np.testing.assert_array_equal(ids[inv].reshape(b.shape), b)
