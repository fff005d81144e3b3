"""The one preprocessing function: a camera frame -> the model's input tensor.

Every backend (torch, ONNX Runtime, OpenVINO, TFLite) and the training data path call this,
so a model sees the same pixels in training, in export calibration and on the robot.

Frames are HxWx3 uint8 in BGR order (OpenCV's). Gray (HxW or HxWx1) and BGRA (HxWx4) frames
are converted; non-contiguous views are accepted. Anything else is an
:class:`~edgeps.errors.InputShapeError` naming the shape and dtype: other dtypes (float
frames are not guessed as 0..1 or 0..255), 2 or 5+ channels, an empty frame, or a side longer
than ``MAX_FRAME_SIDE`` (16384 px: beyond any camera, and a frame that large is almost surely
a mix-up of axes or a corrupt header that would only exhaust memory). The model input is RGB, normalized with
``mean``/``std`` given on the 0..255 scale, at the model's input size: a frame of another
aspect ratio is letterboxed by default (scaled to fit, centered, padded with the mean colour,
which normalizes to 0), or stretched when the manifest says ``resize: stretch``.
:class:`Geometry` records where the frame landed, so results map back exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from edgeps.errors import InputShapeError

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255
IMAGENET_STD = (58.395, 57.12, 57.375)
MAX_FRAME_SIDE = 16384  # pixels per side; larger frames are rejected by as_bgr


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: size (H, W), RGB mean/std on the 0..255 scale, layout."""

    size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout: str = "NCHW"  # or "NHWC"
    resize: str = "letterbox"  # or "stretch"

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise InputShapeError(f"input size: expected (H, W) > 0, got {self.size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise InputShapeError(f"mean/std: expected 3 values each, std > 0; got {self.mean}, {self.std}")
        if self.layout not in ("NCHW", "NHWC"):
            raise InputShapeError(f"layout: expected NCHW or NHWC, got {self.layout!r}")
        if self.resize not in ("letterbox", "stretch"):
            raise InputShapeError(f"resize: expected letterbox or stretch, got {self.resize!r}")


@dataclass(frozen=True)
class Geometry:
    """Where a frame of ``frame`` (H, W) sits in the model input: the region
    [top:top+height, left:left+width] holds the whole frame, scaled."""

    frame: tuple[int, int]
    top: int
    left: int
    height: int
    width: int


def frame_geometry(frame_hw: tuple[int, int], spec: InputSpec) -> Geometry:
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    h, w = spec.size
    if spec.resize == "stretch" or (fh, fw) == (h, w):
        return Geometry((fh, fw), 0, 0, h, w)
    scale = min(h / fh, w / fw)
    ch, cw = min(h, max(1, round(fh * scale))), min(w, max(1, round(fw * scale)))
    return Geometry((fh, fw), (h - ch) // 2, (w - cw) // 2, ch, cw)


def map_to_frame(model_map: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A per-pixel map at model resolution (e.g. panoptic ids) -> the frame's size: crop the
    padding, resize with nearest neighbour (ids are never blended)."""
    g = geometry
    region = model_map[g.top : g.top + g.height, g.left : g.left + g.width]
    if region.shape[:2] == g.frame:
        return np.ascontiguousarray(region)
    return cv2.resize(region, (g.frame[1], g.frame[0]), interpolation=cv2.INTER_NEAREST_EXACT)


@functools.lru_cache(maxsize=16)
def frame_index(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): the row and column of the cropped model map that each frame row and column
    shows in :func:`map_to_frame` (``map_to_frame(m, g) == crop(m)[rows][:, cols]``), read off
    OpenCV's own resize of an index ramp, so the two never disagree."""
    g = geometry

    def axis(n_src: int, n_out: int) -> np.ndarray:
        ramp = np.arange(n_src, dtype=np.int32).reshape(-1, 1)
        out = (
            ramp.ravel()
            if n_src == n_out
            else cv2.resize(ramp, (1, n_out), interpolation=cv2.INTER_NEAREST_EXACT).ravel()
        )
        out.flags.writeable = False  # cached: shared by every caller
        return out

    return axis(g.height, g.frame[0]), axis(g.width, g.frame[1])


def as_bgr(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Validate a frame and convert gray/BGRA to HxWx3 uint8 BGR; other inputs are errors."""
    if not isinstance(frame, np.ndarray):
        raise InputShapeError(f"{name}: expected a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputShapeError(f"{name}: expected dtype uint8 (BGR 0..255), got {frame.dtype} with shape {frame.shape}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise InputShapeError(f"{name}: expected HxWx3 BGR (or gray HxW, BGRA HxWx4), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputShapeError(f"{name}: empty frame of shape {frame.shape}")
    if max(frame.shape[:2]) > MAX_FRAME_SIDE:
        raise InputShapeError(f"{name}: shape {frame.shape} exceeds the maximum of {MAX_FRAME_SIDE} pixels per side")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)


def pad_color_bgr(spec: InputSpec) -> tuple[float, float, float]:
    """The letterbox padding colour of a BGR uint8 frame: the mean, in BGR order (it normalizes
    to 0). Training pads its crops with the same colour."""
    return (float(spec.mean[2]), float(spec.mean[1]), float(spec.mean[0]))


def preprocess(frame: np.ndarray, spec: InputSpec) -> np.ndarray:
    """frame (HxWx3 uint8 BGR, or gray/BGRA) -> (1, 3, H', W') float32 (or NHWC) model input."""
    bgr = as_bgr(frame)
    g = frame_geometry(bgr.shape[:2], spec)
    if bgr.shape[:2] != (g.height, g.width):
        bgr = cv2.resize(bgr, (g.width, g.height), interpolation=cv2.INTER_LINEAR)
    h, w = spec.size
    if (g.height, g.width) != (h, w):
        bgr = cv2.copyMakeBorder(
            bgr,
            g.top,
            h - g.height - g.top,
            g.left,
            w - g.width - g.left,
            cv2.BORDER_CONSTANT,
            value=pad_color_bgr(spec),
        )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    scale = np.float32(1.0) / np.asarray(spec.std, np.float32)
    shift = -np.asarray(spec.mean, np.float32) * scale
    x = rgb.astype(np.float32)
    x *= scale
    x += shift
    if spec.layout == "NHWC":
        return x[None]
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]
