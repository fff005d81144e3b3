"""Panoptic-DeepLab targets on hand-made instances."""

from __future__ import annotations

import numpy as np
import pytest

from edgeps.data.targets import panoptic_targets


def test_center_at_centroid_and_offsets_point_at_it():
    pan = np.full((40, 60), 0, np.int32)  # stuff class 0
    pan[10:20, 10:30] = 5001  # a 10x20 car: centroid (14.5, 19.5)
    pan[25:35, 40:44] = 6001  # a person: centroid (29.5, 41.5)
    pan[0:2, :] = -1  # void
    t = panoptic_targets(pan, thing_ids=[5, 6], sigma=2.0)
    np.testing.assert_allclose(t.centers, [[14.5, 19.5], [29.5, 41.5]])
    # every instance pixel plus its offset lands on its instance's center of mass
    ys, xs = np.nonzero(pan == 5001)
    np.testing.assert_allclose(ys + t.offsets[0, ys, xs], 14.5, atol=1e-5)
    np.testing.assert_allclose(xs + t.offsets[1, ys, xs], 19.5, atol=1e-5)
    ys, xs = np.nonzero(pan == 6001)
    np.testing.assert_allclose(xs + t.offsets[1, ys, xs], 41.5, atol=1e-5)
    # heatmap peaks (value 1) at the rounded centers, Gaussian falloff with sigma
    assert t.center[14, 20] == pytest.approx(1.0) or t.center[15, 20] == pytest.approx(1.0)
    y, x = np.unravel_index(np.argmax(t.center[:, :35]), (40, 35))
    assert abs(y - 14.5) <= 0.5 and abs(x - 19.5) <= 0.5
    assert t.center[y, x + 2] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    # off instances: zero offsets and weights; void is ignored in the semantic target
    assert (t.offsets[:, pan == 0] == 0).all() and (t.offset_weight[pan == 0] == 0).all()
    assert (t.semantic[0:2] == 255).all() and (t.semantic[pan == 5001] == 5).all()


def test_crowd_regions_get_no_center():
    pan = np.zeros((20, 20), np.int32)
    pan[5:15, 5:15] = 5000  # thing class 5, instance 0: crowd
    t = panoptic_targets(pan, thing_ids=[5])
    assert t.center.max() == 0 and len(t.centers) == 0
    assert (t.semantic[5:15, 5:15] == 5).all()
