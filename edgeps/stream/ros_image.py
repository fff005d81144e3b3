"""``sensor_msgs/Image`` <-> numpy, without cv_bridge (not on PyPI) and without rclpy.

The ROS 2 node (``edgeps.apps.ros2``) and the rosbag source (``edgeps.stream.rosbag_source``)
both decode camera images here, from the message's plain fields, so a live topic and a
recorded bag give the pipeline the same BGR frame. Rows may be padded (``step`` larger than
``width * channels * bytes``) and 16/32-bit data may be big-endian (``is_bigendian``); both
are honoured. A malformed message raises :class:`~edgeps.errors.FormatError` naming the field.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edgeps.errors import FormatError, InputShapeError

# encoding -> (numpy dtype, channels). The names are the REP-118 / sensor_msgs ones.
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "bgr8": (np.dtype(np.uint8), 3),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgra8": (np.dtype(np.uint8), 4),
    "rgba8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "16UC1": (np.dtype(np.uint16), 1),
    "32SC1": (np.dtype(np.int32), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
# The camera encodings the segmentation pipeline accepts as input (others are rejected).
BGR_ENCODINGS = ("bgr8", "rgb8", "mono8")


def _spec(encoding: str) -> tuple[np.dtype, int]:
    if encoding not in ENCODINGS:
        raise FormatError(f"encoding: unsupported image encoding {encoding!r} (supported: {', '.join(ENCODINGS)})")
    return ENCODINGS[encoding]


def _as_bytes(data: Any) -> np.ndarray:
    """Message data (bytes, bytearray, memoryview, array.array('B'), uint8 ndarray, list) -> flat
    uint8 array, without a copy where the buffer allows it."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        raise FormatError(f"data: expected a byte buffer, got {type(data).__name__}") from None


def image_msg_to_array(
    encoding: str, height: int, width: int, step: int, is_bigendian: int | bool, data: Any
) -> np.ndarray:
    """The pixels of an image message as an (H, W) or (H, W, C) native-endian array of the
    encoding's dtype (a view into ``data`` when no byte swap is needed)."""
    dtype, channels = _spec(encoding)
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise FormatError(f"height/width: expected a non-empty image, got {height}x{width}")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise FormatError(
            f"step: {step} bytes per row is less than width*channels*bytes = {width}*{channels}*{dtype.itemsize} = "
            f"{row_bytes} for {encoding}"
        )
    buf = _as_bytes(data)
    if buf.size != step * height:
        raise FormatError(f"data: length {buf.size} != step*height = {step}*{height} = {step * height}")
    rows = buf.reshape(height, step)[:, :row_bytes]
    if step != row_bytes:
        rows = np.ascontiguousarray(rows)  # drop the row padding
    wire = dtype.newbyteorder(">" if is_bigendian else "<") if dtype.itemsize > 1 else dtype
    arr = rows.view(wire)
    arr = arr.reshape(height, width, channels) if channels > 1 else arr.reshape(height, width)
    if arr.dtype != dtype:
        arr = arr.astype(dtype)  # to native byte order
    return arr


def image_msg_to_bgr(
    encoding: str, height: int, width: int, step: int, is_bigendian: int | bool, data: Any
) -> np.ndarray:
    """A camera image message -> HxWx3 uint8 BGR, the frame every edgeps runtime takes.

    Only ``bgr8``, ``rgb8`` and ``mono8`` are camera encodings the pipeline accepts; any other
    (depth, Bayer, YUV, 16-bit) raises FormatError naming the encoding, so a node can log it and
    carry on with the next message.
    """
    if encoding not in BGR_ENCODINGS:
        raise FormatError(
            f"encoding: {encoding!r} is not a colour/mono camera encoding the pipeline accepts (accepted: "
            f"{', '.join(BGR_ENCODINGS)})"
        )
    arr = image_msg_to_array(encoding, height, width, step, is_bigendian, data)
    if encoding == "bgr8":
        return arr if arr.flags.writeable and arr.flags.c_contiguous else np.array(arr)  # own, writable
    if encoding == "rgb8":
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2BGR)


def array_to_image_fields(arr: np.ndarray, encoding: str) -> dict[str, Any]:
    """An array -> the fields of an image message (``height``, ``width``, ``encoding``,
    ``is_bigendian``, ``step``, ``data`` as little-endian bytes, rows unpadded).

    The array's shape and dtype must match the encoding (e.g. (H, W) int32 for ``32SC1``,
    (H, W, 3) uint8 for ``bgr8``); it is never silently cast, since a wrong cast would corrupt
    ids downstream.
    """
    dtype, channels = _spec(encoding)
    a = np.asarray(arr)
    want = "(H, W)" if channels == 1 else f"(H, W, {channels})"
    ok_shape = a.ndim == 2 if channels == 1 else (a.ndim == 3 and a.shape[2] == channels)
    if not ok_shape or a.dtype.newbyteorder("=") != dtype or a.shape[0] == 0 or a.shape[1] == 0:
        raise InputShapeError(
            f"arr: encoding {encoding} needs a non-empty {want} {dtype} array, got shape {a.shape} dtype {a.dtype}"
        )
    little = a.astype(dtype.newbyteorder("<"), copy=False) if dtype.itemsize > 1 else a
    h, w = a.shape[:2]
    return {
        "height": int(h),
        "width": int(w),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(w * channels * dtype.itemsize),
        "data": np.ascontiguousarray(little).tobytes(),
    }
