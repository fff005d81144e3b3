"""Procedural street scenes with exact panoptic ground truth, deterministic by seed.

A scene is a pinhole camera over a flat ground plane: sky above a horizon, a skyline band of
building blocks and trees standing on it, a road wedge with lane markings and sidewalks
narrowing to a vanishing point. Cars, people and bicycles (some with riders) stand on the
ground at depth ``Z``, so their size follows their row (bigger lower in the image); they are
drawn far to near, so nearer ones occlude farther ones, and the border cuts them. Global
lighting, gamma, colour cast, noise and occasional blur vary the look. All lengths derive
from the image size, so any resolution works; drawing is OpenCV/numpy (no pixel loops).

Ground truth uses the SYNTH_CATEGORIES ids (0 road, 1 sidewalk, 2 building, 3 vegetation,
4 sky, 5 car, 6 person, 7 bicycle): stuff ``class * 1000``, thing ``class * 1000 + k``. In a
still scene, k = 1, 2, ... per class in drawing (far-to-near) order. An instance with fewer
visible pixels than ``MIN_INSTANCE_FRACTION`` of the image (a sliver behind a nearer object,
a corner cut by the border) is void (-1): its pixels look like a thing, so calling them road
would teach a network the wrong class, and a sliver cannot be matched fairly. No other pixel
is void. An instance cut in pieces by a nearer one keeps one id. ``SceneSample.occlusion``
says whether two kept instances' drawn shapes overlap by at least a quarter of that minimum
area (the nearer one hides part of the farther one). In a video each object keeps
``class * 1000 + n`` (n its persistent number, < 1000) in every frame where it is visible.

synth:val -- a frozen definition. The held-out set is ``SYNTH_VAL_COUNT`` (200) scenes
``render_scene(SYNTH_VAL_SEED_BASE + i, SYNTH_VAL_SIZE)`` for i = 0..199, with
``SYNTH_VAL_SEED_BASE = 1_000_000`` and ``SYNTH_VAL_SIZE = (512, 1024)``. Training uses seeds
below ``SYNTH_TRAIN_SEED_MAX`` (1_000_000), so the two never share a scene; the data specs keep
seeds 999_000.. for synth:dev, the set choices are made on (``edgeps.data.datasets``), and
``synth:train`` below them. Scores on synth:val are only comparable while these constants and
the renderer's output stay the same: changing either (or anything that changes the pixels of
``render_scene``) is a breaking change and must bump ``GENERATOR_VERSION``.

Frozen output. ``tests/test_pinned_sets.py`` pins the sha256 of synth:val (images and maps) and
of the tracking benchmark's videos (``render_video`` of seeds 7, 11-19 at 512x1024). A change
to the generator that would alter them (realism, new object kinds, other layouts) goes behind a
training-only option: a keyword of ``render_scene`` / ``render_video``, off by default, that
only the training data path turns on, so synth:val, synth:dev and the videos render as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import ConfigError

__all__ = [
    "DEFAULT_N_THINGS",
    "GENERATOR_VERSION",
    "MIN_INSTANCE_FRACTION",
    "SYNTH_TRAIN_SEED_MAX",
    "SYNTH_VAL_COUNT",
    "SYNTH_VAL_SEED_BASE",
    "SYNTH_VAL_SIZE",
    "SceneSample",
    "render_scene",
    "render_video",
    "synth_val_seeds",
]

GENERATOR_VERSION = 1
SYNTH_VAL_SEED_BASE = 1_000_000
SYNTH_VAL_COUNT = 200
SYNTH_VAL_SIZE = (512, 1024)
SYNTH_TRAIN_SEED_MAX = 1_000_000
MIN_INSTANCE_FRACTION = 0.0005
DEFAULT_N_THINGS = (20, 36)

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, BICYCLE = range(8)
MAX_OBJECT_NUMBER = LABEL_DIVISOR - 1


def synth_val_seeds() -> range:
    """The seeds of synth:val, in order."""
    return range(SYNTH_VAL_SEED_BASE, SYNTH_VAL_SEED_BASE + SYNTH_VAL_COUNT)


@dataclass
class SceneSample:
    """A rendered frame: ``image`` (H, W, 3) uint8 BGR, ``panoptic`` (H, W) int32, its seed,
    ``occlusion`` (two visible instances whose drawn shapes overlap) and the video frame."""

    image: np.ndarray
    panoptic: np.ndarray
    seed: int
    occlusion: bool
    frame: int | None = None


# --------------------------------------------------------------------------- layout
@dataclass
class _Layout:
    h: int
    w: int  # canvas width (wider than the view in a panning video)
    horizon: float
    vp_x: float
    cam_h: float  # camera height, metres
    focal: float  # pixels
    road: tuple[float, float]  # lateral edges X (metres)
    walk: tuple[float, float]  # outer sidewalk edges X (metres)
    verge: tuple[bool, bool]  # vegetation beyond the sidewalk, left / right

    def row_of(self, z: float) -> float:
        return self.horizon + self.focal * self.cam_h / z

    def depth_of(self, row: float) -> float:
        return self.focal * self.cam_h / max(row - self.horizon, 1e-3)

    def x_of(self, lateral: float, z: float) -> float:
        return self.vp_x + self.focal * lateral / z


def _sample_layout(rng: np.random.Generator, h: int, w: int, canvas_w: int) -> _Layout:
    road_w = rng.uniform(6.0, 12.0)
    left = -rng.uniform(0.2, 0.8) * road_w
    return _Layout(
        h=h,
        w=canvas_w,
        horizon=h * rng.uniform(0.36, 0.5),
        vp_x=canvas_w / 2 + rng.uniform(-0.2, 0.2) * w,
        cam_h=rng.uniform(1.3, 1.8),
        focal=w * rng.uniform(0.55, 0.85),
        road=(left, left + road_w),
        walk=(left - rng.uniform(1.5, 4.0), left + road_w + rng.uniform(1.5, 4.0)),
        verge=(bool(rng.random() < 0.5), bool(rng.random() < 0.5)),
    )


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in about [0, 1] with features ``cell`` pixels wide (a resized random grid)."""
    gh, gw = int(h / max(cell, 1.0)) + 2, int(w / max(cell, 1.0)) + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _jitter(rng: np.random.Generator, bgr: tuple[float, float, float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(bgr, np.float32) + rng.uniform(-amount, amount, 3), 0, 255).astype(np.float32)


def _pick(
    rng: np.random.Generator, palette: tuple[tuple[float, float, float], ...], amount: float
) -> tuple[float, ...]:
    """A palette colour with jitter, as plain floats (what OpenCV's drawing accepts)."""
    return tuple(float(v) for v in _jitter(rng, palette[rng.integers(len(palette))], amount))


_BUILDING_BGR = (
    (150, 180, 200),
    (60, 80, 150),
    (128, 128, 128),
    (190, 212, 222),
    (70, 98, 128),
    (150, 140, 120),
    (205, 205, 200),
)
_GREEN_BGR = ((40, 110, 60), (30, 90, 45), (50, 125, 80), (35, 105, 90))


# ------------------------------------------------------------------------ background
def _render_background(rng: np.random.Generator, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Stuff image (H, W, 3) float32 BGR and its class map (H, W) uint8."""
    h, w, yh = lay.h, lay.w, lay.horizon
    hi = min(int(math.ceil(yh + 1e-3)), h)  # first ground row
    img = np.empty((h, w, 3), np.float32)
    lab = np.full((h, w), SKY, np.uint8)

    # Sky: vertical gradient to a hazy horizon, soft clouds.
    if rng.random() < 0.25:
        g = rng.uniform(170, 215)
        top, hor = _jitter(rng, (g + 8, g, g - 5), 8), _jitter(rng, (g + 20, g + 20, g + 15), 8)
    else:
        top, hor = _jitter(rng, (205, 140, 80), 25), _jitter(rng, (230, 215, 195), 15)
    t = np.clip(np.arange(h, dtype=np.float32) / max(yh, 1.0), 0, 1)[:, None, None]
    img[:] = top * (1 - t) + hor * t
    if hi > 0:
        cloud = np.clip((_smooth_noise(rng, hi, w, 0.2 * h) - rng.uniform(0.45, 0.75)) * 3.0, 0, 1)
        img[:hi] += cloud[..., None] * (np.float32(235) - img[:hi]) * np.float32(rng.uniform(0.4, 0.9))

    # Vegetation texture (skyline trees and verges): two greens mixed by blotchy noise.
    veg_dark, veg_light = (_jitter(rng, _GREEN_BGR[rng.integers(len(_GREEN_BGR))], 12) for _ in range(2))
    veg_light = veg_light * np.float32(1.5)
    blotch = 0.65 * _smooth_noise(rng, h, w, 0.03 * h) + 0.35 * _smooth_noise(rng, h, w, 0.008 * h + 1)
    blotch = np.clip(blotch, 0, 1)[..., None]

    # Ground: road wedge, kerbs, sidewalks, optional verges, in perspective about the VP.
    if hi < h:
        dy = np.maximum(np.arange(hi, h, dtype=np.float32) - np.float32(yh), 0.5)[:, None]
        lat = (np.arange(w, dtype=np.float32)[None, :] - np.float32(lay.vp_x)) * np.float32(lay.cam_h) / dy
        depth = np.float32(lay.focal * lay.cam_h) / dy
        (xl, xr), (wl, wr) = lay.road, lay.walk
        road = (lat > xl) & (lat < xr)
        glab = np.where(road, ROAD, SIDEWALK).astype(np.uint8)
        if lay.verge[0]:
            glab[lat < wl] = VEGETATION
        if lay.verge[1]:
            glab[lat > wr] = VEGETATION
        lab[hi:] = glab
        gshape = glab.shape

        v = rng.uniform(70, 115)
        asphalt = np.float32(v) + rng.standard_normal(gshape, dtype=np.float32) * np.float32(rng.uniform(4, 9))
        asphalt += (_smooth_noise(rng, h - hi, w, 0.06 * h) - 0.5) * np.float32(20)
        gimg = np.repeat(asphalt[..., None], 3, axis=2)
        gimg += np.array([3, 0, -2], np.float32)
        # Lane markings: constant width in metres, dashes periodic in depth.
        paint = np.zeros(gshape, bool)
        half = 0.07
        lanes = int(rng.integers(2, 4))
        dash = ((depth / rng.uniform(6, 12) + rng.random()) % 1.0) < rng.uniform(0.3, 0.5)
        for j in range(1, lanes):
            paint |= (np.abs(lat - (xl + (xr - xl) * j / lanes)) < half) & dash
        if rng.random() < 0.7:
            paint |= (np.abs(lat - (xl + 0.3)) < half) | (np.abs(lat - (xr - 0.3)) < half)
        gimg[paint] = _jitter(rng, (215, 225, 230) if rng.random() < 0.75 else (40, 190, 225), 15)

        walk = glab == SIDEWALK
        base = _jitter(rng, (165, 170, 175) if rng.random() < 0.6 else (150, 172, 190), 18)
        tile = rng.uniform(0.5, 1.0)
        seams = (((lat / tile) % 1.0) < 0.07) | (((depth / tile) % 1.0) < 0.07)
        shade = 1 - 0.15 * seams + (_smooth_noise(rng, h - hi, w, 0.02 * h) - 0.5) * 0.12
        kerb = ((lat <= xl) & (lat > xl - 0.25)) | ((lat >= xr) & (lat < xr + 0.25))
        shade = np.where(kerb, 1.18, shade)
        gimg[walk] = base * shade[walk][:, None]
        img[hi:] = gimg

    # Skyline: building blocks (window grids), then tree clumps in front of them.
    x = -rng.uniform(0, 0.2) * h
    trees = []
    while x < w:
        bw = rng.uniform(0.12, 0.5) * h
        x0, x1 = max(int(x), 0), min(int(x + bw), w)
        top = int(yh - rng.uniform(0.06, 0.45) * h)
        if rng.random() < 0.3:
            trees.append((x - 0.1 * bw, x + 1.2 * bw, yh - rng.uniform(0.05, 0.25) * h))
        elif x1 > x0 and hi > max(top, 0):
            _draw_building(rng, img, lab, x0, x1, top, hi, h)
        x += bw
    for tx0, tx1, ttop in trees:
        x0, x1 = max(int(tx0), 0), min(int(tx1), w)
        if x1 <= x0 or hi <= 0:
            continue
        prof = ttop + (_smooth_noise(rng, 1, x1 - x0, 0.05 * h)[0] - 0.5) * 0.12 * h
        rows = np.arange(0, hi, dtype=np.float32)[:, None]
        lab[:hi, x0:x1][rows >= prof[None, :]] = VEGETATION

    veg = lab == VEGETATION
    img[veg] = veg_dark + (veg_light - veg_dark) * blotch[veg]
    return img, lab


def _draw_building(
    rng: np.random.Generator, img: np.ndarray, lab: np.ndarray, x0: int, x1: int, top: int, bottom: int, h: int
) -> None:
    """A facade with a window grid (some windows lit) in rows top..bottom, columns x0..x1."""
    t0 = max(top, 0)
    lab[t0:bottom, x0:x1] = BUILDING
    wall = _jitter(rng, _BUILDING_BGR[rng.integers(len(_BUILDING_BGR))], 15)
    glass = _jitter(rng, (75, 62, 52) if rng.random() < 0.6 else (160, 125, 95), 15)
    lit = _jitter(rng, (120, 200, 235), 15)
    pw = rng.uniform(0.025, 0.05) * h
    ph = pw * rng.uniform(0.9, 1.5)
    fx, fy = rng.uniform(0.4, 0.7), rng.uniform(0.4, 0.65)
    rows = np.arange(t0, bottom, dtype=np.float32)[:, None] - top
    cols = np.arange(x0, x1, dtype=np.float32)[None, :] - x0
    rr, cc = rows % ph, cols % pw
    win = (rr > ph * (1 - fy) / 2) & (rr < ph * (1 + fy) / 2) & (cc > pw * (1 - fx) / 2) & (cc < pw * (1 + fx) / 2)
    win &= (rows > ph) & (cols > pw * 0.4) & (cols < x1 - x0 - pw * 0.4)
    table = rng.random((int(rows.max(initial=0) / ph) + 2, int(cols.max(initial=0) / pw) + 2)) < 0.12
    on = table[(rows / ph).astype(np.intp), (cols / pw).astype(np.intp)]
    block = np.empty((bottom - t0, x1 - x0, 3), np.float32)
    block[:] = wall * (1 + (rng.random((1, x1 - x0, 1), dtype=np.float32) - 0.5) * 0.06)
    block[win] = glass
    block[win & on] = lit
    block[rows[:, 0] < ph * 0.35] *= 0.75  # cornice
    img[t0:bottom, x0:x1] = block


# -------------------------------------------------------------------------- things
_CAR_BGR = (
    (235, 235, 235),
    (190, 190, 185),
    (35, 35, 38),
    (110, 110, 110),
    (40, 40, 190),
    (170, 80, 30),
    (110, 50, 20),
    (40, 200, 230),
    (60, 110, 40),
    (30, 120, 220),
)
_SHIRT_BGR = (
    (40, 40, 200),
    (200, 120, 40),
    (40, 160, 40),
    (230, 230, 230),
    (40, 200, 230),
    (150, 50, 150),
    (30, 30, 30),
    (60, 140, 230),
)
_TROUSER_BGR = ((120, 70, 40), (35, 35, 35), (100, 100, 100), (140, 170, 190), (80, 50, 30))
_SKIN_BGR = ((150, 180, 225), (110, 140, 190), (70, 95, 140), (50, 65, 95))
_FRAME_BGR = ((30, 30, 210), (40, 170, 40), (210, 120, 30), (30, 140, 240), (200, 200, 200), (180, 40, 160))


@dataclass(eq=False)
class _Thing:
    """An object on the ground: lateral ``x`` and depth ``z`` in metres, size in metres."""

    cls: int
    x: float
    z: float
    height: float
    length: float
    colors: tuple[tuple[float, ...], ...]
    view: int = 0  # car: 0 side, 1 rear
    flip: bool = False
    phase: float = 0.0
    vx: float = 0.0  # metres per frame
    vz: float = 0.0
    number: int = 0
    rider_of: _Thing | None = None
    dx: float = 0.0  # offset from the bicycle a rider sits on


def _new_thing(rng: np.random.Generator, cls: int, x: float, z: float, rear: float = 0.45) -> _Thing:
    """A thing with random size, aspect and colours; ``rear`` is a car's chance of a rear view."""
    s = rng.uniform(0.9, 1.1)
    flip = bool(rng.random() < 0.5)
    if cls == CAR:
        view = int(rng.random() < rear)
        van = rng.random() < 0.15
        height = (rng.uniform(1.9, 2.3) if van else rng.uniform(1.35, 1.7)) * s
        length = rng.uniform(1.65, 2.0) if view else rng.uniform(2.4, 4.8) * (1.15 if van else 1.0)
        colors = (_pick(rng, _CAR_BGR, 15), _pick(rng, ((70, 55, 45),), 15))
        return _Thing(CAR, x, z, height, length * s, colors, view=view, flip=flip)
    if cls == PERSON:
        colors = tuple(
            _pick(rng, pal, 18)
            for pal in (_SKIN_BGR, _SHIRT_BGR, _TROUSER_BGR, ((20, 20, 20), (30, 45, 70), (60, 120, 170)))
        )
        return _Thing(PERSON, x, z, rng.uniform(1.55, 1.95), 0.5, colors, flip=flip, phase=rng.uniform(0, 2 * math.pi))
    colors = (_pick(rng, _FRAME_BGR, 20),)
    return _Thing(BICYCLE, x, z, 1.05 * s, rng.uniform(1.6, 1.8) * s, colors, flip=flip)


def _rider(rng: np.random.Generator, bike: _Thing) -> _Thing:
    rider = _new_thing(rng, PERSON, bike.x, bike.z - 0.02)
    rider.rider_of = bike
    rider.dx = (0.14 if bike.flip else -0.14) * bike.length
    rider.x = bike.x + rider.dx
    rider.phase = math.pi / 2
    return rider


def _pts(pts: list[tuple[float, float]], pw: int, ph: int, flip: bool) -> np.ndarray:
    a = np.asarray(pts, np.float32)
    xs = 1 - a[:, 0] if flip else a[:, 0]
    return np.stack([xs * (pw - 1), a[:, 1] * (ph - 1)], axis=1).round().astype(np.int32)


def _fill(col: np.ndarray, mask: np.ndarray | None, pts: np.ndarray, color: tuple[float, ...]) -> None:
    cv2.fillPoly(col, [pts], color)
    if mask is not None:
        cv2.fillPoly(mask, [pts], 1)


def _draw_car(t: _Thing, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    ph, pw = max(int(math.ceil(t.height * ppm)), 2), max(int(math.ceil(t.length * ppm)), 2)
    col = np.zeros((ph, pw, 3), np.uint8)
    mask = np.zeros((ph, pw), np.uint8)
    body, glass = t.colors
    dark = tuple(0.45 * v for v in body)

    def p(pts: list[tuple[float, float]]) -> np.ndarray:
        return _pts(pts, pw, ph, t.flip)

    if t.view == 1:  # rear view
        _fill(
            col,
            mask,
            p(
                [
                    (0.0, 0.9),
                    (0.0, 0.5),
                    (0.04, 0.41),
                    (0.13, 0.4),
                    (0.2, 0.06),
                    (0.8, 0.06),
                    (0.87, 0.4),
                    (0.96, 0.41),
                    (1.0, 0.5),
                    (1.0, 0.9),
                ]
            ),
            body,
        )
        _fill(col, None, p([(0.17, 0.39), (0.23, 0.1), (0.77, 0.1), (0.83, 0.39)]), glass)
        for a, b in ((0.03, 0.2), (0.8, 0.97)):
            _fill(col, None, p([(a, 0.47), (b, 0.47), (b, 0.58), (a, 0.58)]), (30, 30, 200))
            _fill(col, mask, p([(a + 0.03, 0.86), (b - 0.03, 0.86), (b - 0.03, 1.0), (a + 0.03, 1.0)]), (22, 22, 22))
        _fill(col, None, p([(0.0, 0.78), (1.0, 0.78), (1.0, 0.9), (0.0, 0.9)]), dark)
        _fill(col, None, p([(0.38, 0.62), (0.62, 0.62), (0.62, 0.72), (0.38, 0.72)]), (235, 235, 235))
    else:  # side view
        _fill(
            col,
            mask,
            p(
                [
                    (0.02, 0.86),
                    (0.0, 0.58),
                    (0.05, 0.42),
                    (0.24, 0.37),
                    (0.33, 0.06),
                    (0.7, 0.03),
                    (0.86, 0.36),
                    (0.98, 0.42),
                    (1.0, 0.7),
                    (0.97, 0.86),
                ]
            ),
            body,
        )
        _fill(col, None, p([(0.29, 0.36), (0.355, 0.1), (0.68, 0.085), (0.81, 0.36)]), glass)
        a, b = _pts([(0.52, 0.09), (0.53, 0.36)], pw, ph, t.flip)
        cv2.line(col, tuple(map(int, a)), tuple(map(int, b)), body, max(1, round(0.025 * pw)))
        _fill(col, None, p([(0.0, 0.5), (0.04, 0.5), (0.04, 0.57), (0.0, 0.57)]), (170, 235, 245))
        _fill(col, None, p([(0.97, 0.45), (1.0, 0.45), (1.0, 0.55), (0.97, 0.55)]), (30, 30, 200))
        _fill(col, None, p([(0.02, 0.78), (0.97, 0.78), (0.97, 0.86), (0.02, 0.86)]), dark)
        r = 0.21 * ph
        for fx in (0.19, 0.8):
            c = (int(round((1 - fx if t.flip else fx) * (pw - 1))), int(round(ph - 1 - r)))
            cv2.circle(col, c, int(round(1.12 * r)), (25, 25, 25), -1)
            cv2.circle(col, c, int(round(r)), (22, 22, 22), -1)
            cv2.circle(mask, c, int(round(r)), 1, -1)
            cv2.circle(col, c, max(int(round(0.5 * r)), 1), (150, 150, 155), -1)
    shade = np.linspace(1.15, 0.8, ph, dtype=np.float32)[:, None, None]
    col = np.clip(col * shade, 0, 255).astype(np.uint8)
    return col, mask.astype(bool)


def _draw_person(t: _Thing, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    hp = t.height * ppm
    ph, pw = max(int(math.ceil(hp)), 3), max(int(math.ceil(0.42 * hp)), 2)
    col = np.zeros((ph, pw, 3), np.uint8)
    mask = np.zeros((ph, pw), np.uint8)
    skin, shirt, trousers, hair = t.colors
    cx = (pw - 1) / 2
    stride, swing = 0.11 * hp * math.sin(t.phase), 0.06 * hp * math.sin(t.phase)

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x)), int(round(y))

    def line(a: tuple[int, int], b: tuple[int, int], color: tuple[float, ...], th: float) -> None:
        cv2.line(col, a, b, color, max(1, round(th)))
        cv2.line(mask, a, b, 1, max(1, round(th)))

    def disc(c: tuple[int, int], r: float, color: tuple[float, ...]) -> None:
        cv2.circle(col, c, max(1, round(r)), color, -1)
        cv2.circle(mask, c, max(1, round(r)), 1, -1)

    for sgn in (-1, 1):
        foot = pt(cx + sgn * stride, 0.965 * hp)
        line(pt(cx + sgn * 0.04 * hp, 0.52 * hp), foot, trousers, 0.075 * hp)
        disc(foot, 0.03 * hp, (25, 25, 25))
    torso = np.array(
        [
            pt(cx - 0.1 * hp, 0.16 * hp),
            pt(cx + 0.1 * hp, 0.16 * hp),
            pt(cx + 0.085 * hp, 0.56 * hp),
            pt(cx - 0.085 * hp, 0.56 * hp),
        ],
        np.int32,
    )
    _fill(col, mask, torso, shirt)
    for sgn in (-1, 1):
        hand = pt(cx + sgn * 0.12 * hp + sgn * swing, 0.5 * hp)
        line(pt(cx + sgn * 0.095 * hp, 0.19 * hp), hand, shirt, 0.05 * hp)
        disc(hand, 0.025 * hp, skin)
    line(pt(cx, 0.12 * hp), pt(cx, 0.17 * hp), skin, 0.04 * hp)
    disc(pt(cx, 0.075 * hp), 0.065 * hp, skin)
    cv2.ellipse(col, pt(cx, 0.07 * hp), (max(1, round(0.068 * hp)), max(1, round(0.055 * hp))), 0, 180, 360, hair, -1)
    return col, mask.astype(bool)


def _draw_bicycle(t: _Thing, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    length = t.length * ppm
    r = 0.2 * length
    ph, pw = max(int(math.ceil(2.75 * r * t.height / 1.05)), 3), max(int(math.ceil(length)), 3)
    col = np.zeros((ph, pw, 3), np.uint8)
    mask = np.zeros((ph, pw), np.uint8)
    (frame,) = t.colors
    g = ph - 1
    tyre, tube = max(2, round(0.16 * r)), max(2, round(0.1 * r))

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(pw - 1 - x if t.flip else x)), int(round(y))

    rear, front = pt(r, g - r), pt(pw - 1 - r, g - r)
    crank, seat = pt(0.45 * pw, g - 0.85 * r), pt(0.36 * pw, g - 2.45 * r)
    top, head, bar = pt(pw - 1.3 * r, g - 2.2 * r), pt(pw - 1.2 * r, g - 1.85 * r), pt(pw - 1.4 * r, g - 2.6 * r)
    for c in (rear, front):
        cv2.circle(col, c, max(1, round(r - tyre / 2)), (28, 28, 28), tyre)
        cv2.circle(mask, c, max(1, round(r - tyre / 2)), 1, tyre)
        cv2.circle(col, c, max(1, round(0.12 * r)), (160, 160, 160), -1)
        cv2.circle(mask, c, max(1, round(0.12 * r)), 1, -1)
    for a, b in ((rear, crank), (rear, seat), (crank, seat), (seat, top), (crank, head), (head, front), (top, head)):
        cv2.line(col, a, b, frame, tube)
        cv2.line(mask, a, b, 1, tube)
    cv2.line(col, top, bar, (40, 40, 40), tube)
    cv2.line(mask, top, bar, 1, tube)
    cv2.ellipse(col, seat, (max(1, round(0.3 * r)), max(1, round(0.08 * r))), 0, 0, 360, (20, 20, 20), -1)
    cv2.ellipse(mask, seat, (max(1, round(0.3 * r)), max(1, round(0.08 * r))), 0, 0, 360, 1, -1)
    return col, mask.astype(bool)


_DRAW = {CAR: _draw_car, PERSON: _draw_person, BICYCLE: _draw_bicycle}


# ------------------------------------------------------------------------ composing
@dataclass
class _Photo:
    gain: np.ndarray  # per-channel gain (lighting x colour cast)
    lut: np.ndarray  # gamma
    blur: float
    noise: float
    vignette: float


def _sample_photo(rng: np.random.Generator, h: int) -> _Photo:
    gamma = rng.uniform(0.75, 1.3)
    lut = np.clip(255 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    gain = (rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3)).astype(np.float32)
    blur = rng.uniform(0.5, 1.5) * h / 512 if rng.random() < 0.25 else 0.0
    return _Photo(gain, lut, blur, rng.uniform(1.0, 6.0), rng.uniform(0.2, 0.45) if rng.random() < 0.3 else 0.0)


def _apply_photo(img: np.ndarray, p: _Photo, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    img *= p.gain
    if p.vignette:
        ry = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
        rx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
        img *= (1 - p.vignette * (ry * ry + rx * rx))[..., None]
    out = cv2.LUT(np.clip(img, 0, 255).astype(np.uint8), p.lut)
    if p.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), p.blur)
    noisy = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(p.noise)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _compose(
    bg: np.ndarray, lay: _Layout, things: list[_Thing], offset: int, w: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Draw ``things`` (already in painter's order) onto the view ``bg`` (modified in place).

    Returns the image, the object map (index + 1 of the topmost thing, 0 = stuff) and the
    overlaps (lower index, upper index, pixels) between drawn shapes.
    """
    h = lay.h
    obj = np.zeros((h, w), np.int32)
    patches = []
    shadow = np.ones((h, w), np.float32)
    for t in things:
        ppm = lay.focal / t.z
        if t.height * ppm < 2:
            patches.append(None)
            continue
        col, mask = _DRAW[t.cls](t, ppm)
        ph, pw = mask.shape
        xb, yb = lay.x_of(t.x, t.z) - offset, lay.row_of(t.z)
        x0, y0 = int(round(xb - (pw - 1) / 2)), int(round(yb)) - ph + 1
        patches.append((col, mask, x0, y0))
        if t.rider_of is None and yb - ph < h and y0 + ph > 0:
            axes = (max(1, int(0.55 * pw)), max(1, int(0.05 * ph)))
            cv2.ellipse(shadow, (int(round(xb)), int(round(yb))), axes, 0, 0, 360, 0.6, -1)
    sigma = max(lay.h / 300, 0.5)
    bg *= cv2.GaussianBlur(shadow, (0, 0), sigma)[..., None]
    overlaps = []
    for j, item in enumerate(patches, start=1):
        if item is None:
            continue
        col, mask, x0, y0 = item
        ph, pw = mask.shape
        ya, yb_, xa, xb_ = max(y0, 0), min(y0 + ph, h), max(x0, 0), min(x0 + pw, w)
        if ya >= yb_ or xa >= xb_:
            continue
        m = mask[ya - y0 : yb_ - y0, xa - x0 : xb_ - x0]
        region = obj[ya:yb_, xa:xb_]
        hit = m & (region > 0)
        if hit.any():
            ids, counts = np.unique(region[hit], return_counts=True)
            overlaps += [(int(i), j, int(c)) for i, c in zip(ids, counts)]
        np.copyto(region, j, where=m)
        np.copyto(bg[ya:yb_, xa:xb_], col[ya - y0 : yb_ - y0, xa - x0 : xb_ - x0], where=m[..., None])
    return bg, obj, overlaps


def _panoptic(
    stuff: np.ndarray, obj: np.ndarray, things: list[_Thing], overlaps: list[tuple[int, int, int]], numbers: list[int]
) -> tuple[np.ndarray, bool]:
    """Panoptic map from the stuff classes and the object map; drop instances below the
    minimum visible area to void; occlusion = an overlap between two kept instances."""
    min_px = max(2, math.ceil(MIN_INSTANCE_FRACTION * stuff.size))
    counts = np.bincount(obj.ravel(), minlength=len(things) + 1)
    lut = np.full(len(things) + 1, VOID_LABEL, np.int32)
    for j, (t, n) in enumerate(zip(things, numbers), start=1):
        if counts[j] >= min_px:
            lut[j] = t.cls * LABEL_DIVISOR + n
    pan = np.where(obj > 0, lut[obj], stuff.astype(np.int32) * LABEL_DIVISOR).astype(np.int32)
    kept = lut >= 0
    occlusion = any(kept[a] and kept[b] and c >= max(1, min_px // 4) for a, b, c in overlaps)
    return pan, occlusion


def _paint_order(things: list[_Thing]) -> list[_Thing]:
    """Far to near; a rider right after (over) its bicycle."""
    return sorted(things, key=lambda t: (-(t.rider_of.z if t.rider_of else t.z), t.rider_of is not None))


def _check(size: tuple[int, int], n_things: tuple[int, int] | None) -> tuple[int, int, tuple[int, int]]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size: expected (H, W), got {size!r}") from None
    if h < 16 or w < 16:
        raise ConfigError(f"size: each side must be >= 16 pixels, got {size!r}")
    lo, hi = DEFAULT_N_THINGS if n_things is None else n_things
    if not 0 <= lo <= hi:
        raise ConfigError(f"n_things: expected (min, max) with 0 <= min <= max, got {n_things!r}")
    return h, w, (int(lo), int(hi))


def _place(rng: np.random.Generator, lay: _Layout, view_x0: float, w: int, row_range: tuple[float, float]) -> _Thing:
    """A thing at a random visible spot; its class follows the ground it stands on."""
    lo, hi = row_range
    row = lay.horizon + (hi - lay.horizon) * (lo + (1 - lo) * rng.random() ** 1.6)
    z = lay.depth_of(row)
    x = (view_x0 + rng.uniform(-0.08, 1.08) * w - lay.vp_x) * z / lay.focal
    on_road = lay.road[0] < x < lay.road[1]
    p = (0.55, 0.2, 0.25) if on_road else (0.12, 0.55, 0.33)
    cls = int(rng.choice((CAR, PERSON, BICYCLE), p=p))
    return _new_thing(rng, cls, x, z, rear=0.6 if on_road else 0.3)


def _populate(rng: np.random.Generator, lay: _Layout, n: int, view_x0: float, w: int) -> list[_Thing]:
    things: list[_Thing] = []
    while len(things) < n:
        t = _place(rng, lay, view_x0, w, (0.05, 1.05 * lay.h))
        things.append(t)
        if t.cls == BICYCLE and len(things) < n and rng.random() < 0.5:
            things.append(_rider(rng, t))
    return things


# ---------------------------------------------------------------------------- public
def render_scene(
    seed: int, size: tuple[int, int] = (512, 1024), *, n_things: tuple[int, int] | None = None
) -> SceneSample:
    """One street scene and its panoptic ground truth; the same seed gives the same arrays.

    ``n_things`` is the (min, max) number of things placed (default ``DEFAULT_N_THINGS``);
    fewer end up visible (hidden, too small or outside the frame).
    """
    h, w, (lo, hi) = _check(size, n_things)
    rng = np.random.default_rng(int(seed))
    lay = _sample_layout(rng, h, w, w)
    bg, stuff = _render_background(rng, lay)
    photo = _sample_photo(rng, h)
    things = _paint_order(_populate(rng, lay, int(rng.integers(lo, hi + 1)), 0.0, w))
    img, obj, overlaps = _compose(bg, lay, things, 0, w)
    numbers, per_class = [], dict.fromkeys((CAR, PERSON, BICYCLE), 0)
    min_px = max(2, math.ceil(MIN_INSTANCE_FRACTION * h * w))
    counts = np.bincount(obj.ravel(), minlength=len(things) + 1)
    for j, t in enumerate(things, start=1):
        if counts[j] >= min_px:
            per_class[t.cls] += 1
        numbers.append(per_class[t.cls])
    pan, occlusion = _panoptic(stuff, obj, things, overlaps, numbers)
    return SceneSample(_apply_photo(img, photo, rng), pan, int(seed), occlusion)


def render_video(
    seed: int, size: tuple[int, int] = (512, 1024), frames: int = 60, *, n_things: tuple[int, int] | None = None
) -> Iterator[SceneSample]:
    """A moving street scene, frame by frame (deterministic by seed).

    The camera pans (the background scrolls), objects move with their own velocities, enter
    from the sides, the distance or below the frame, leave, and occlude each other. Each
    object keeps one panoptic id ``class * 1000 + n`` for the whole video; numbers are never
    reused, and a class stops spawning once it has used ``MAX_OBJECT_NUMBER`` (999).
    ``n_things`` is the (min, max) of the population kept around the view (drawn once).
    """
    h, w, (lo, hi) = _check(size, n_things)
    if frames < 0:
        raise ConfigError(f"frames: expected >= 0, got {frames}")
    rng = np.random.default_rng(int(seed))
    amp = int(round(rng.uniform(0.12, 0.25) * w))
    lay = _sample_layout(rng, h, w, w + 2 * amp)
    bg, stuff = _render_background(rng, lay)
    photo = _sample_photo(rng, h)
    period, phase = rng.uniform(120, 260), rng.uniform(0, 2 * math.pi)
    target = int(rng.integers(lo, hi + 1))
    counters = dict.fromkeys((CAR, PERSON, BICYCLE), 0)
    z_bottom = lay.depth_of(h)

    def pan(f: int) -> int:
        return int(round(amp + amp * math.sin(2 * math.pi * f / period + phase)))

    def number(things: list[_Thing]) -> list[_Thing]:
        kept = []
        for t in things:
            if t.rider_of is not None and all(k is not t.rider_of for k in kept):
                continue
            if counters[t.cls] >= MAX_OBJECT_NUMBER:
                continue
            counters[t.cls] += 1
            t.number = counters[t.cls]
            kept.append(t)
        return kept

    active = number(_populate(rng, lay, target, pan(0), w))
    for t in active:
        _set_velocity(rng, t, lay)
    for f in range(frames):
        cx = pan(f)
        order = _paint_order(active)
        img, obj, overlaps = _compose(bg[:, cx : cx + w].copy(), lay, order, cx, w)
        pan_map, occlusion = _panoptic(stuff[:, cx : cx + w], obj, order, overlaps, [t.number for t in order])
        yield SceneSample(_apply_photo(img, photo, rng), pan_map, int(seed), occlusion, frame=f)

        for t in active:
            if t.rider_of is None:
                t.x += t.vx
                t.z += t.vz
            t.phase += 0.35 if (t.vx or t.vz) else 0.0
        for t in active:
            if t.rider_of is not None:
                t.x, t.z, t.vx, t.vz = t.rider_of.x + t.dx, t.rider_of.z - 0.02, t.rider_of.vx, t.rider_of.vz
        nxt = pan(f + 1)
        gone = {
            id(t)
            for t in active
            if t.z < 0.55 * z_bottom or t.z > 70 or not -0.6 * w < lay.x_of(t.x, t.z) - nxt < 1.6 * w
        }
        active = [t for t in active if id(t) not in gone and (t.rider_of is None or id(t.rider_of) not in gone)]
        if len(active) < target and rng.random() < 0.35:
            active += number(_spawn(rng, lay, nxt, w, z_bottom))


def _set_velocity(rng: np.random.Generator, t: _Thing, lay: _Layout) -> None:
    on_road = lay.road[0] < t.x < lay.road[1]
    if t.rider_of is not None:
        return
    if t.cls == CAR:
        t.vz = rng.choice((-1, 1)) * rng.uniform(0.1, 0.5) if on_road else 0.0
        if not on_road and rng.random() < 0.2:
            t.vx = rng.choice((-1, 1)) * rng.uniform(0.15, 0.3)  # leaving a parking spot / crossing
    elif t.cls == PERSON:
        speed = rng.uniform(0.03, 0.09)
        if rng.random() < 0.5:
            t.vx = rng.choice((-1, 1)) * speed
        elif rng.random() < 0.8:
            t.vz = rng.choice((-1, 1)) * speed
    else:
        speed = rng.uniform(0.1, 0.3)
        if rng.random() < 0.6:
            t.vz = rng.choice((-1, 1)) * speed
        else:
            t.vx = rng.choice((-1, 1)) * speed


def _spawn(rng: np.random.Generator, lay: _Layout, cx: int, w: int, z_bottom: float) -> list[_Thing]:
    """New objects entering the view: from a side, from the distance, or from below."""
    mode = rng.choice(3, p=(0.5, 0.3, 0.2))
    t = _place(rng, lay, cx, w, (0.05, 1.0 * lay.h))
    if mode == 1:
        t.z = rng.uniform(25, 45)
    elif mode == 2:
        t.z = z_bottom * rng.uniform(0.75, 1.0)
    out = [t]
    if t.cls == BICYCLE and rng.random() < 0.5:
        out.append(_rider(rng, t))
    _set_velocity(rng, t, lay)
    if mode == 0:
        left = rng.random() < 0.5
        edge = cx - 0.1 * w if left else cx + 1.1 * w
        t.x = (edge - lay.vp_x) * t.z / lay.focal
        speed = max(abs(t.vx), abs(t.vz), 0.05)
        t.vx, t.vz = (speed if left else -speed), 0.0
    elif mode == 1:
        t.vz = -abs(t.vz) if t.vz else 0.0
    else:
        t.vz = abs(t.vz) if t.vz else 0.15
    for r in out[1:]:
        r.x, r.z = t.x + r.dx, t.z - 0.02
    return out
