"""Segment statistics (area, bbox, centroid) against a per-segment brute force."""

from __future__ import annotations

import numpy as np
import pytest

from edgeps.data.synthetic import random_scene
from edgeps.errors import InputShapeError
from edgeps.panoptic import compact_ids, segments_of
from edgeps.preprocess import InputSpec, frame_geometry, frame_index, map_to_frame


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


@pytest.mark.parametrize("frame", [(512, 1024), (100, 100), (37, 211), (256, 512)])
def test_segments_of_an_upscaled_map_equal_those_of_the_frame_map(frame):
    # Runtime.postprocess counts segments at model resolution; they must be the frame map's own
    spec = InputSpec(size=(64, 128))
    g = frame_geometry(frame, spec)
    model_map = np.full((64, 128), -1, np.int32)
    model_map[g.top : g.top + g.height, g.left : g.left + g.width] = random_scene(
        g.height, g.width, n_instances=12, seed=5
    )
    model_map[g.top, g.left] = 9_001  # a one-pixel segment, which a downscale may drop
    full = map_to_frame(model_map, g)
    rows, cols = frame_index(g)
    crop = model_map[g.top : g.top + g.height, g.left : g.left + g.width]
    np.testing.assert_array_equal(crop[rows][:, cols], full)
    fast = segments_of(crop, rows=rows, cols=cols)
    slow = segments_of(full)
    assert [(s.id, s.area, s.bbox) for s in fast] == [(s.id, s.area, s.bbox) for s in slow]
    assert np.allclose([s.centroid for s in fast], [s.centroid for s in slow])


def test_segments_of_rejects_indices_that_are_not_a_resize():
    pan = np.zeros((4, 4), np.int32)
    with pytest.raises(InputShapeError, match="rows: expected non-decreasing"):
        segments_of(pan, rows=np.array([0, 2, 1, 3]))
    with pytest.raises(InputShapeError, match=r"cols: expected 1-D integer indices in \[0, 4\)"):
        segments_of(pan, cols=np.array([0, 4]))
