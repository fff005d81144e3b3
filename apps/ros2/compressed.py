"""``sensor_msgs/CompressedImage`` (JPEG or PNG) -> the BGR frame every runtime takes (no rclpy).

image_transport's ``compressed`` plugin writes ``format`` as ``"<encoding>; jpeg compressed
bgr8"`` (or ``png``), older drivers plain ``"jpeg"``; the bytes themselves say which codec they
hold, so the decoder goes by the file signature and uses ``format`` only in messages. Colour
frames come out BGR whatever the publisher's original encoding was (the plugin compresses BGR),
mono frames as three equal channels. A frame that cannot be decoded raises
:class:`~edgeps.errors.FormatError` naming the field, with a message that does not change from
one frame to the next, so the node can throttle repeats of it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edgeps.errors import FormatError

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def codec_of(data: bytes | np.ndarray) -> str:
    """``"jpeg"`` or ``"png"`` from the first bytes, else FormatError naming ``data``."""
    head = bytes(np.asarray(data[:8], np.uint8)) if isinstance(data, np.ndarray) else bytes(data[:8])
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head.startswith(PNG_MAGIC):
        return "png"
    raise FormatError(f"data: neither JPEG nor PNG (first bytes {head[:4].hex() or 'none'})")


def compressed_to_bgr(fmt: str, data: Any) -> np.ndarray:
    """A CompressedImage's ``format`` and ``data`` -> HxWx3 uint8 BGR.

    Raises FormatError for an empty buffer, bytes that are neither JPEG nor PNG, a JPEG without
    its end-of-image marker (a truncated frame, which libjpeg would otherwise fill with grey),
    or data OpenCV cannot decode.
    """
    try:
        buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    except (TypeError, ValueError):
        raise FormatError(f"data: expected a byte buffer, got {type(data).__name__}") from None
    what = f"format {fmt!r}" if fmt else "no format"
    if buf.size == 0:
        raise FormatError(f"data: empty compressed image ({what})")
    codec = codec_of(buf)
    if codec == "jpeg" and not bytes(buf[-64:]).rstrip(b"\x00").endswith(JPEG_END):
        raise FormatError(f"data: truncated JPEG, no end-of-image marker ({what})")
    frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if frame is None or frame.size == 0:
        raise FormatError(f"data: OpenCV cannot decode this {codec.upper()} ({what})")
    return frame
