"""Panoptic visualization: colours, blending, boundaries, legend, validation, real COCO sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeps.errors import ConfigError, InputShapeError
from edgeps.io.cityscapes import CITYSCAPES_CATEGORIES as CATS
from edgeps.visualize import BOUNDARY_BGR, colorize, overlay, segment_colors

COCO_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_panoptic_sample"

SKY, ROAD, CAR = 23, 7, 26


def bgr(cid: int) -> np.ndarray:
    return np.array(CATS[cid].color[::-1], dtype=np.float64)


def blend(image_px: np.ndarray, color_bgr: np.ndarray, alpha: float) -> np.ndarray:
    return image_px.astype(np.float64) * (1 - alpha) + color_bgr * alpha


def scene(h: int = 60, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Sky on top, road below, two touching cars, a void patch bottom-left."""
    pan = np.full((h, w), ROAD * 1000, np.int32)
    pan[: h // 3] = SKY * 1000
    pan[30:45, 10:30] = CAR * 1000 + 1
    pan[30:45, 30:50] = CAR * 1000 + 2
    pan[50:, :10] = -1
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, pan


def test_output_shape_dtype_and_input_untouched() -> None:
    image, pan = scene()
    before = image.copy()
    out = overlay(image, pan, CATS, legend=True)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)
    col = colorize(pan, CATS)
    assert col.shape == (60, 80, 3) and col.dtype == np.uint8


def test_colorize_stuff_and_crowd_use_the_class_colour_in_bgr() -> None:
    pan = np.array([[SKY * 1000, CAR * 1000, -1]], np.int32)
    col = colorize(pan, CATS, void_color=(1, 2, 3))
    np.testing.assert_array_equal(col[0, 0], [180, 130, 70])  # sky RGB (70, 130, 180)
    np.testing.assert_array_equal(col[0, 1], [142, 0, 0])  # car RGB (0, 0, 142), crowd
    np.testing.assert_array_equal(col[0, 2], [1, 2, 3])


def test_stuff_pixel_is_the_alpha_blend_of_its_class_colour() -> None:
    image = np.empty((20, 30, 3), np.uint8)
    image[:] = (10, 200, 50)
    pan = np.full((20, 30), SKY * 1000, np.int32)
    for alpha in (0.0, 0.3, 0.5, 1.0):
        out = overlay(image, pan, CATS, alpha=alpha, draw_boundaries=False)
        expected = blend(image[0, 0], bgr(SKY), alpha)
        assert np.abs(out.astype(np.float64) - expected).max() <= 1.0, alpha


def test_two_instances_of_one_class_get_clearly_different_colours() -> None:
    image, pan = scene()
    col = colorize(pan, CATS).astype(int)
    c1, c2 = col[35, 15], col[35, 40]
    assert np.abs(c1 - c2).max() >= 40
    # Both stay car-like (blue dominant in BGR) rather than random colours.
    for c in (c1, c2):
        assert c[0] > c[1] and c[0] > c[2]


def test_instance_colours_are_deterministic_and_neighbours_distinct() -> None:
    ids = CAR * 1000 + np.arange(1, 41)
    colors = segment_colors(ids, CATS).astype(int)
    np.testing.assert_array_equal(colors, segment_colors(ids[::-1], CATS)[::-1])
    assert len({tuple(c) for c in colors}) == len(ids)
    steps = np.abs(np.diff(colors, axis=0)).max(axis=1)
    assert steps.min() >= 30  # consecutive instance numbers are easy to tell apart
    # The same id gets the same colour whatever else is in the map.
    a = colorize(np.array([[CAR * 1000 + 7]]), CATS)
    b = colorize(np.array([[CAR * 1000 + 7, ROAD * 1000, CAR * 1000 + 3]]), CATS)
    np.testing.assert_array_equal(a[0, 0], b[0, 0])


def test_boundaries_are_one_pixel_lines_where_ids_change() -> None:
    image = np.full((20, 40, 3), 100, np.uint8)
    pan = np.full((20, 40), CAR * 1000 + 1, np.int32)
    pan[:, 20:] = CAR * 1000 + 2
    out = overlay(image, pan, CATS, alpha=0.5)
    plain = overlay(image, pan, CATS, alpha=0.5, draw_boundaries=False)
    np.testing.assert_array_equal(out[:, 20], np.tile(BOUNDARY_BGR, (20, 1)))
    assert np.abs(out[5, 20].astype(int) - out[5, 10].astype(int)).max() > 50
    changed = np.any(out != plain, axis=2)
    assert changed.sum() == 20 and changed[:, 20].all()  # exactly one column
    np.testing.assert_array_equal(out[:, :20], plain[:, :20])


def test_void_pixels_unchanged_without_boundaries() -> None:
    image, pan = scene()
    void = pan == -1
    out = overlay(image, pan, CATS, alpha=0.7, draw_boundaries=False)
    np.testing.assert_array_equal(out[void], image[void])
    assert np.any(out[~void] != image[~void])
    # With boundaries on, void pixels off the boundary line still keep the image.
    out_b = overlay(image, pan, CATS, alpha=0.7)
    np.testing.assert_array_equal(out_b[52:, :9], image[52:, :9])


def test_all_void_map_returns_the_image() -> None:
    image, _ = scene()
    pan = np.full(image.shape[:2], -1, np.int32)
    np.testing.assert_array_equal(overlay(image, pan, CATS, legend=True), image)


def test_legend_changes_the_top_left_corner_only() -> None:
    image, pan = scene(128, 256)
    plain = overlay(image, pan, CATS)
    with_legend = overlay(image, pan, CATS, legend=True)
    corner = np.any(with_legend[:40, :40] != plain[:40, :40], axis=2)
    assert corner.mean() > 0.3
    np.testing.assert_array_equal(with_legend[64:, 128:], plain[64:, 128:])


def test_unknown_classes_and_wide_id_spans_still_draw() -> None:
    # Class 900 is not in the set; the span (> 2^20) takes the np.unique path.
    pan = np.array([[ROAD * 1000, 900 * 1000 + 1, 2_000_000]], np.int32)
    col = colorize(pan, CATS)
    np.testing.assert_array_equal(col[0, 0], bgr(ROAD))
    out = overlay(np.zeros((1, 3, 3), np.uint8), pan, CATS, legend=True)
    assert out.shape == (1, 3, 3)


def test_non_contiguous_image_view_is_accepted() -> None:
    image, pan = scene()
    rgb = np.ascontiguousarray(image[..., ::-1])
    out = overlay(rgb[..., ::-1], pan, CATS)
    np.testing.assert_array_equal(out, overlay(image, pan, CATS))


@pytest.mark.parametrize(
    ("image", "pan", "pattern"),
    [
        (np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.int32), r"image_bgr: .*shape \(4, 5\) dtype uint8"),
        (np.zeros((4, 5, 4), np.uint8), np.zeros((4, 5), np.int32), r"image_bgr: .*shape \(4, 5, 4\)"),
        (np.zeros((4, 5, 3), np.float32), np.zeros((4, 5), np.int32), r"image_bgr: .*dtype float32"),
        (np.zeros((4, 5, 3), np.uint8), np.zeros((5, 4), np.int32), r"panoptic: .*\(4, 5\).*shape \(5, 4\)"),
        (np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.float64), r"panoptic: .*dtype float64"),
        (np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5, 1), np.int32), r"panoptic: .*shape \(4, 5, 1\)"),
    ],
)
def test_bad_inputs_raise_naming_argument_shape_and_dtype(image, pan, pattern) -> None:
    with pytest.raises(InputShapeError, match=pattern):
        overlay(image, pan, CATS)


def test_colorize_and_alpha_validation() -> None:
    with pytest.raises(InputShapeError, match=r"panoptic: .*shape \(2, 2, 2\)"):
        colorize(np.zeros((2, 2, 2), np.int32), CATS)
    image, pan = scene()
    with pytest.raises(ConfigError, match="alpha"):
        overlay(image, pan, CATS, alpha=1.5)
