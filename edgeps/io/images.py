"""Reading image files: frames as BGR uint8, and the RGB-coded id PNGs of panoptic datasets.

PNG files (every Cityscapes image and every panoptic PNG) decode with ``pyspng`` (libspng)
when it is installed (the ``train`` extra brings it; measured in docs/measurements.md): it
decodes a 1024x2048 PNG in about 0.7x of OpenCV's libpng time, and a training loader worker
spends most of its time there. Other files, PNGs that pyspng does not return as 8-bit gray,
RGB or RGBA, and machines without pyspng go through OpenCV. Both give the same pixels
(tests pin this).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

try:  # optional: the edge install reads no datasets
    import pyspng
except ImportError:  # pragma: no cover - depends on the install
    pyspng = None

_TO_BGR = {1: cv2.COLOR_GRAY2BGR, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGR}
_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: None, 4: cv2.COLOR_RGBA2RGB}


def _spng(path: Path) -> np.ndarray | None:
    """An 8-bit PNG decoded by pyspng as (H, W, C) with C in 1, 3, 4; None when pyspng is
    missing, the file is no PNG, or its pixels are of another kind (16-bit, gray + alpha)."""
    if pyspng is None or path.suffix.lower() != ".png":
        return None
    try:
        a = pyspng.load(path.read_bytes())
    except (RuntimeError, ValueError, OSError):
        return None  # OpenCV says whether it is readable
    if a.dtype != np.uint8:
        return None
    a = a[..., None] if a.ndim == 2 else a
    return a if a.ndim == 3 and a.shape[2] in (1, 3, 4) else None


def read_bgr(path: str | Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 BGR (what ``cv2.imread(path, IMREAD_COLOR)`` returns),
    None when it is not a readable image."""
    path = Path(path)
    a = _spng(path)
    if a is None:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(a, _TO_BGR[a.shape[2]])


def read_rgb(path: str | Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 RGB, None when it is not a readable image."""
    path = Path(path)
    a = _spng(path)
    if a is None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    code = _TO_RGB[a.shape[2]]
    return np.ascontiguousarray(a) if code is None else cv2.cvtColor(a, code)


__all__ = ["read_bgr", "read_rgb"]
