"""Image files decode to the same pixels whichever decoder reads them (pyspng or OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeps.io import images
from edgeps.io.coco_panoptic import read_id_png, write_id_png


def _both(monkeypatch, fn, path):
    fast = fn(path)
    monkeypatch.setattr(images, "pyspng", None)
    slow = fn(path)
    monkeypatch.undo()
    return fast, slow


def test_pyspng_is_installed_with_the_training_extra() -> None:
    assert images.pyspng is not None, "pyspng is in the train/export extras: the fast PNG path must be the one tested"


@pytest.mark.parametrize("kind", ["bgr", "bgra", "gray", "gray16", "jpeg"])
def test_frames_read_the_same_with_either_decoder(tmp_path, monkeypatch, kind) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    arrays = {
        "bgr": img,
        "bgra": np.dstack([img, rng.integers(0, 256, size=(37, 53), dtype=np.uint8)]),
        "gray": img[..., 0],
        "gray16": (img[..., 0].astype(np.uint16) * 257),
        "jpeg": img,
    }
    path = tmp_path / ("a.jpg" if kind == "jpeg" else "a.png")
    assert cv2.imwrite(str(path), arrays[kind])
    fast, slow = _both(monkeypatch, images.read_bgr, path)
    assert fast.shape == (37, 53, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)
    if kind == "bgr":
        np.testing.assert_array_equal(fast, img)
    fast, slow = _both(monkeypatch, images.read_rgb, path)
    np.testing.assert_array_equal(fast, slow)


def test_id_pngs_read_the_same_with_either_decoder(tmp_path, monkeypatch) -> None:
    ids = np.random.default_rng(1).integers(0, 2**24, size=(20, 30)).astype(np.uint32)
    write_id_png(tmp_path / "p.png", ids)
    fast, slow = _both(monkeypatch, read_id_png, tmp_path / "p.png")
    np.testing.assert_array_equal(fast, ids)
    np.testing.assert_array_equal(slow, ids)


def test_unreadable_files_are_none_with_either_decoder(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert _both(monkeypatch, images.read_bgr, bad) == (None, None)
    assert _both(monkeypatch, images.read_rgb, bad) == (None, None)
