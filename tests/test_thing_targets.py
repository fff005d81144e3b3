"""Training-target options for thing quality (issue 26), on hand-made instances: a thin ring,
two touching objects, a tiny object. Defaults are pinned elsewhere
(test_training_data.test_device_targets_equal_the_numpy_reference)."""

from __future__ import annotations

import numpy as np
import torch

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.training.batch import panoptic_batch_targets

CAR, PERSON, ROAD = 13, 11, 0
THINGS = [PERSON, CAR]


def _scene() -> np.ndarray:
    """(1, 64, 96): road; a thin ring (car 1); two touching people (2, 3); a 2x2 car (4); void."""
    pan = np.full((64, 96), ROAD * LABEL_DIVISOR, np.int32)
    yy, xx = np.mgrid[:64, :96]
    r = np.hypot(yy - 20, xx - 20)
    pan[(r >= 12) & (r < 14)] = CAR * LABEL_DIVISOR + 1  # thin ring, its center of mass off the ring
    pan[30:60, 40:50] = PERSON * LABEL_DIVISOR + 2
    pan[30:60, 50:60] = PERSON * LABEL_DIVISOR + 3  # touches person 2
    pan[10:12, 80:82] = CAR * LABEL_DIVISOR + 4  # 4 pixels
    pan[60:, 80:] = VOID_LABEL
    return pan[None]


def _targets(**kw) -> dict[str, np.ndarray]:
    t = panoptic_batch_targets(torch.from_numpy(_scene()), THINGS, sigma=8.0, **kw)
    return {k: v.numpy() for k, v in t.items()}


def test_offsets_of_a_thin_ring_point_to_its_empty_middle() -> None:
    pan, t = _scene()[0], _targets()
    ring = pan == CAR * LABEL_DIVISOR + 1
    ys, xs = np.nonzero(ring)
    np.testing.assert_allclose(ys + t["offset"][0, 0][ring], ys.mean(), atol=1e-4)
    np.testing.assert_allclose(xs + t["offset"][0, 1][ring], xs.mean(), atol=1e-4)
    assert not ring[round(ys.mean()), round(xs.mean())]  # the vote target is off the object
    assert t["center"][0, 0, round(ys.mean()), round(xs.mean())] == 1.0


def test_per_instance_offset_weights_give_every_instance_the_same_total() -> None:
    pan = _scene()[0]
    plain, per = _targets()["offset_weight"][0], _targets(offset_per_instance=True)["offset_weight"][0]
    ids = [CAR * LABEL_DIVISOR + 1, PERSON * LABEL_DIVISOR + 2, PERSON * LABEL_DIVISOR + 3, CAR * LABEL_DIVISOR + 4]
    totals = [per[pan == i].sum() for i in ids]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)
    np.testing.assert_allclose(per.sum(), plain.sum(), rtol=1e-5)  # the loss keeps its scale
    tiny = pan == CAR * LABEL_DIVISOR + 4
    assert per[tiny].min() > 10 * per[pan == PERSON * LABEL_DIVISOR + 2].max()  # the 4-pixel car counts
    assert (per[(pan == VOID_LABEL) | (pan == ROAD * LABEL_DIVISOR)] == 0).all()


def test_size_scaled_sigma_separates_touching_objects_and_keeps_tiny_ones() -> None:
    fixed, scaled = _targets()["center"][0, 0], _targets(sigma_scale=0.25)["center"][0, 0]
    # the two people's centers (44.5, 44.5) and (44.5, 54.5) -> rounded (44, 44) and (44, 54)
    for c in (fixed, scaled):
        assert c[44, 44] == 1.0 and c[44, 54] == 1.0
    # between them: one merged blob at sigma 8, a clear valley at sigma 0.25 * sqrt(300) = 4.3
    assert fixed[44, 49] > 0.8 and scaled[44, 49] < 0.6
    # the 2x2 car: sigma clamps to 1 -> 1 at its center, exp(-1/2) one pixel away
    assert scaled[10, 80] == 1.0 or scaled[11, 81] == 1.0
    peak = np.unravel_index(np.argmax(scaled[5:16, 76:86]), (11, 10))
    y, x = peak[0] + 5, peak[1] + 76
    np.testing.assert_allclose(scaled[y, x + 2], np.exp(-2.0), rtol=1e-5)
    # a large object keeps the configured sigma (sqrt(area) * 0.25 above 8 would be clamped)
    assert scaled.max() == 1.0


def test_center_thing_weight_weighs_instance_pixels_only() -> None:
    pan, t = _scene()[0], _targets(center_thing_weight=3.0)
    w = t["center_weight"][0]
    inst = (pan != VOID_LABEL) & (pan % LABEL_DIVISOR > 0)
    assert (w[inst] == 3.0).all()
    assert (w[pan == ROAD * LABEL_DIVISOR] == 1.0).all() and (w[pan == VOID_LABEL] == 0.0).all()
