"""sensor_msgs/Image <-> numpy: encodings, row padding, byte order, errors naming the field."""

from __future__ import annotations

import array

import numpy as np
import pytest

from edgeps.errors import FormatError, InputShapeError
from edgeps.stream.ros_image import array_to_image_fields, image_msg_to_array, image_msg_to_bgr


def _bgr(h: int = 5, w: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _padded(arr: np.ndarray, pad: int) -> tuple[int, bytes]:
    """Rows of ``arr`` (as bytes) each followed by ``pad`` junk bytes: (step, data)."""
    h = arr.shape[0]
    rows = np.ascontiguousarray(arr).reshape(h, -1).view(np.uint8)
    junk = np.full((h, pad), 0xAB, np.uint8)
    return rows.shape[1] + pad, np.concatenate([rows, junk], axis=1).tobytes()


def test_bgr8_rgb8_mono8_decode_to_the_same_bgr_frame():
    bgr = _bgr()
    h, w = bgr.shape[:2]
    out = image_msg_to_bgr("bgr8", h, w, w * 3, 0, bgr.tobytes())
    assert out.dtype == np.uint8 and out.shape == (h, w, 3) and out.flags.writeable
    np.testing.assert_array_equal(out, bgr)
    rgb = bgr[..., ::-1].copy()
    np.testing.assert_array_equal(image_msg_to_bgr("rgb8", h, w, w * 3, 0, array.array("B", rgb.tobytes())), bgr)
    gray = bgr[..., 1].copy()
    mono = image_msg_to_bgr("mono8", h, w, w, 0, memoryview(gray.tobytes()))
    assert mono.shape == (h, w, 3)
    for c in range(3):
        np.testing.assert_array_equal(mono[..., c], gray)


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8"])
def test_row_padding_is_dropped(encoding):
    bgr = _bgr(4, 6)
    src = {"bgr8": bgr, "rgb8": bgr[..., ::-1], "mono8": bgr[..., 0]}[encoding]
    step, data = _padded(src, pad=10)
    out = image_msg_to_bgr(encoding, 4, 6, step, 0, data)
    want = bgr if encoding != "mono8" else np.repeat(bgr[..., :1], 3, axis=2)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("encoding, dtype", [("mono16", np.uint16), ("16UC1", np.uint16), ("32SC1", np.int32)])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_16_and_32_bit_honour_is_bigendian_and_step(encoding, dtype, bigendian):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    arr = rng.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True)
    wire = arr.astype(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    step, data = _padded(wire, pad=2 * np.dtype(dtype).itemsize)
    out = image_msg_to_array(encoding, 3, 5, step, bigendian, data)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.shape == (3, 5)
    np.testing.assert_array_equal(out, arr)


def test_array_to_image_fields_round_trips_panoptic_ids():
    pan = np.array([[-1, 0, 1001], [2003, 19000, 2**31 - 1]], np.int32)
    f = array_to_image_fields(pan, "32SC1")
    assert (f["height"], f["width"], f["encoding"], f["is_bigendian"], f["step"]) == (2, 3, "32SC1", 0, 12)
    assert f["data"] == pan.astype("<i4").tobytes()  # little-endian on the wire, whatever the host
    np.testing.assert_array_equal(image_msg_to_array(**f), pan)
    bgr = _bgr()
    g = array_to_image_fields(bgr, "bgr8")
    assert g["step"] == bgr.shape[1] * 3
    np.testing.assert_array_equal(image_msg_to_bgr(**g), bgr)
    big = np.arange(6, dtype=">u2").reshape(2, 3)  # a non-native array is written little-endian
    h = array_to_image_fields(big, "mono16")
    np.testing.assert_array_equal(image_msg_to_array(**h), np.arange(6).reshape(2, 3))


def test_errors_name_the_field():
    with pytest.raises(FormatError, match="encoding: 'bayer_rggb8'"):
        image_msg_to_bgr("bayer_rggb8", 2, 3, 3, 0, bytes(6))
    with pytest.raises(FormatError, match="encoding: '16UC1' is not a colour/mono camera encoding"):
        image_msg_to_bgr("16UC1", 2, 3, 6, 0, bytes(12))
    with pytest.raises(FormatError, match="step: 8 bytes per row is less than"):
        image_msg_to_bgr("bgr8", 2, 3, 8, 0, bytes(16))
    with pytest.raises(FormatError, match=r"data: length 17 != step\*height = 9\*2 = 18"):
        image_msg_to_bgr("bgr8", 2, 3, 9, 0, bytes(17))
    with pytest.raises(FormatError, match="height/width"):
        image_msg_to_bgr("bgr8", 0, 3, 9, 0, b"")
    with pytest.raises(InputShapeError, match="encoding 32SC1 needs a non-empty \\(H, W\\) int32 array"):
        array_to_image_fields(np.zeros((2, 2), np.int64), "32SC1")
    with pytest.raises(InputShapeError, match="encoding bgr8 needs"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "bgr8")
    with pytest.raises(FormatError, match="encoding: unsupported"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "yuv422")
