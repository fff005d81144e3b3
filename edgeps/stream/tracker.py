"""Stable instance ids across frames: per-class mask-IoU matching of consecutive frames.

The panoptic map of each frame numbers instances afresh (car 1, car 2 in center order), so
a consumer that follows "that car" needs an identity that outlives the frame. The tracker
matches each thing segment to the tracks of the same class by mask IoU (one joint
``bincount`` over the pixels, no loop over pixels), then by overlap with a remembered whole
mask (an object coming out from behind another), then by predicted position; when the frame
is given, a colour histogram per segment keeps two neighbours of one class apart and
recognises an object that was hidden for a few frames. With the frames, a lost track is
remembered longer while its predicted mask lies behind the things of the frame (the occluder
that hid it is still in view) or out of the frame, and a track born a frame or two earlier
that matches a lost one by colour and predicted position takes the lost track's id (an object
that came out as a sliver too small to recognise).
A leftover segment lying mostly inside a continued track's mask, in its colours, is a piece of
that object (the model split it, or an occluder cut it in two) and gets the same track id: one
track may own several segments of a frame. Other unmatched segments get new ids. Every threshold
is a field of :class:`TrackerSettings`. Track ids are unbounded integers and live only in
:attr:`Segment.track_id`; the panoptic map is never rewritten.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgeps import LABEL_DIVISOR
from edgeps.errors import InputShapeError
from edgeps.panoptic import Segment


@dataclass
class _Track:
    track_id: int
    category_id: int
    pixels: np.ndarray  # flat indices (in the subsampled grid) of its last whole mask
    seen: np.ndarray  # flat indices of what was visible of it when last seen (= pixels unless occluded)
    centroid: np.ndarray  # (y, x) in grid pixels, of that mask
    velocity: np.ndarray  # (dy, dx) per frame, smoothed
    age: int = 0  # frames since it was last seen
    fresh: bool = True  # no velocity measured yet
    occluded: int = 0  # consecutive frames it was seen much smaller than its remembered mask
    colour: np.ndarray | None = None  # normalised colour histogram (None without frames)
    born: int = 0  # frame it was created in
    last_seen: int = 0  # frame it was last matched in


def greedy_match(score: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) by decreasing score, each row and column used once, score > threshold."""
    rows, cols = np.nonzero(score > threshold)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (y0, x0, y1, x1) box, inclusive corners, with each row of ``boxes``."""
    h = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + 1
    w = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + 1
    inter = np.clip(h, 0, None) * np.clip(w, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


@dataclass(frozen=True)
class TrackerSettings:
    """The thresholds of every rule of :class:`Tracker`, with their defaults (the one place they are set).

    Distances are between centroids, in units of the larger mask's size (the square root of
    its area). Colours are histogram intersections (0..1) of the segments' colour histograms,
    used only when the frames are given. A rule is switched off by a value it can never reach
    (noted per field). The defaults were chosen on synthetic videos with the ground-truth masks
    (seeds 7, 11-19; the figures are in docs/measurements.md).

    Matching a track to this frame's segments of its class, in passes of decreasing certainty:

    - ``iou_threshold``: minimum IoU of the track's mask, moved by its predicted displacement
      (or where it was), with a segment; also the minimum box IoU of the box pass.
    - ``min_colour``: minimum colour intersection for a track and a segment to be one object.
    - ``colour_weight``: the IoU pass ranks pairs by IoU x colour ** ``colour_weight``: an
      occluder that moved over a track's mask overlaps it more than what is left of the object,
      but in other colours (0: by IoU alone).
    - ``contain``: the overlap pass: minimum overlap over the smaller of the two masks (a
      visible area changed by occlusion).
    - ``sliver_colour``: the overlap pass: the colour minimum instead of ``min_colour`` when one
      mask is less than ``occluded_ratio`` of the other (a sliver left by an occluder, or an
      object coming out whole from behind one, has the colours of a part of it, not of the
      whole; ``min_colour``: no exception).
    - ``max_distance``: the position pass: predicted centroid distance below which a track
      takes a segment, when the track's mask is at least ``min_size_ratio`` of the segment's.
    - ``reid_colour``, ``reid_distance``: re-identification: a lost track (not seen for a frame
      or more) takes a leftover segment whose colours it matches more closely than
      ``reid_colour`` within ``reid_distance`` of its predicted position or of where it was
      last seen (``reid_colour`` 1: never). A track that left the frame is taken back only by a
      segment touching the frame's border (here and by ``adopt_frames``), here in colours
      matching it more closely than ``late_colour``.
    - ``late_colour``: the colour minimum, in every pass, for a track lost ``max_age`` frames or
      more (kept by ``hidden_age`` or ``exit_age``): the longer the gap, the more a look-alike
      is to be feared.
    - ``adopt_frames``: a track born up to this many frames earlier that matches a lost track
      by the re-identification rule (the lost track last seen before it was born) takes the lost
      track's id: an object that came out first as a sliver too small to recognise (0: never).
    - ``piece_cover``, ``piece_colour``: a leftover segment with at least ``piece_cover`` of its
      area inside the predicted mask of a track continued this frame, and colours matching the
      track's at least ``piece_colour``, is a piece of that object and joins its track (the
      model split it; a different object that moved in front of it has other colours).

    Memory:

    - ``max_age``: frames a lost track is remembered (a missed detection, a short occlusion).
    - ``hidden_age``, ``hidden_cover``: a lost track whose mask, moved to where it is predicted,
      is covered by this frame's thing segments for at least ``hidden_cover`` of its area is
      behind an occluder still in view, and is remembered up to ``hidden_age`` frames.
    - ``exit_age``: a lost track whose predicted mask has mostly left the frame is remembered up
      to this many frames (an object that walks out and back in, a camera that turns away and
      back). ``hidden_age`` and ``exit_age`` apply only when the frames are given: without
      colours a long-lost track cannot be told from a newcomer.
    - ``occluded_ratio``: visible / remembered area below which a matched segment counts as
      the visible part of an occluded object: the whole mask is kept and carried along.
    - ``steady_ratio``: (low, high) visible / remembered area within which a centroid shift is
      taken as motion (outside it the shift is the occlusion's doing) and updates the velocity.
    - ``colour_memory``: weight of the remembered colour histogram when a new look is blended in.
    - ``colour_levels``: levels per colour channel of the histograms (a power of 2, at most
      256): 8 gives 512 bins, fine enough to tell two cars of similar colours apart.
    """

    iou_threshold: float = 0.1
    min_colour: float = 0.4
    colour_weight: float = 4.0
    contain: float = 0.6
    sliver_colour: float = 0.2
    max_distance: float = 0.6
    min_size_ratio: float = 0.25
    reid_colour: float = 0.5
    reid_distance: float = 4.0
    late_colour: float = 0.7
    adopt_frames: int = 2
    piece_cover: float = 0.3
    piece_colour: float = 0.6
    max_age: int = 10
    hidden_age: int = 30
    hidden_cover: float = 0.5
    exit_age: int = 60
    occluded_ratio: float = 0.5
    steady_ratio: tuple[float, float] = (0.8, 1.25)
    colour_memory: float = 0.7
    colour_levels: int = 8


class Tracker:
    """Give thing segments track ids that persist while the object moves.

    Each track remembers its last whole mask, a smoothed velocity and (when frames are
    given) a colour histogram; the mask is moved by the predicted displacement before the
    IoU with this frame's segments is taken (objects near the camera move by more than their
    own size in a few frames). A segment much smaller than its track's mask is taken as
    occluded: the whole mask is kept and carried along, and held where it still covers the
    visible part; what was visible is kept too, for the IoU with the next frame's sliver.
    Segments still unmatched are paired by box IoU, then by centroid distance relative to their
    size, then a lost track re-identifies one by colour near its predicted position; a young
    track that matches a lost one takes its id; a segment left over that lies mostly inside a
    continued track's mask, in its colours, joins that track as a piece.

    Args:
        thing_ids: the classes that are tracked (others keep ``track_id`` None).
        label_divisor: ``panoptic id = class * label_divisor + instance``.
        stride: work on every ``stride``-th pixel per axis (4x cheaper at 2); None picks it per
            stream size, at least 2 and coarse enough to keep the grid near ``GRID_PIXELS`` (3
            at 512x1024).
        settings: the rules' thresholds (:class:`TrackerSettings`; its defaults when None).
        **overrides: fields of :class:`TrackerSettings` to change from ``settings``, e.g.
            ``max_age=20``.

    Raises:
        TypeError: an override that is not a field of :class:`TrackerSettings`.
    """

    GRID_PIXELS = 1 << 16  # the automatic stride keeps the working grid near this size

    def __init__(
        self,
        thing_ids: Iterable[int],
        *,
        label_divisor: int = LABEL_DIVISOR,
        stride: int | None = None,
        settings: TrackerSettings | None = None,
        **overrides: float | int | tuple[float, float],
    ):
        self.thing_ids = frozenset(int(t) for t in thing_ids)
        self.label_divisor = label_divisor
        self.settings = dataclasses.replace(settings or TrackerSettings(), **overrides)
        self._fixed_stride = None if stride is None else max(1, int(stride))
        self.stride = self._fixed_stride or 2
        self.next_id = 1
        self.frame = -1  # index of the frame being tracked
        self._shape: tuple[int, int] | None = None
        self._tracks: list[_Track] = []
        self._common = np.zeros(2)

    def _velocity(self, t: _Track) -> np.ndarray:
        return self._common if t.fresh else t.velocity

    @staticmethod
    def _moved(pixels: np.ndarray, shift: np.ndarray, gh: int, gw: int) -> np.ndarray:
        """Flat grid indices moved by (dy, dx), dropping what leaves the grid."""
        dy, dx = np.rint(shift).astype(int)
        y, x = pixels // gw + dy, pixels % gw + dx
        inside = (y >= 0) & (y < gh) & (x >= 0) & (x < gw)
        return y[inside] * gw + x[inside]

    @staticmethod
    def _anchored(whole: np.ndarray, part: np.ndarray, shift: np.ndarray, gw: int) -> np.ndarray:
        """The shift nearest ``shift`` that keeps the visible part inside the whole mask's box
        (a remembered mask moved by a stale velocity drifts off the object behind the occluder)."""
        out = np.array(shift, float)
        for axis, coord in enumerate((lambda p: p // gw, lambda p: p % gw)):
            w, p = coord(whole), coord(part)
            lo, hi = p.min() - w.min(), p.max() - w.max()  # shifts that put the part inside
            if lo >= hi:  # the part fits: clamp into [hi, lo]
                out[axis] = min(max(out[axis], hi), lo)
            else:  # the part is wider than the whole: centre it
                out[axis] = 0.5 * (lo + hi)
        return out

    def reset(self) -> None:
        """Forget every track (track ids keep counting up)."""
        self._shape, self._tracks, self._common = None, [], np.zeros(2)

    def _colours(
        self,
        image: np.ndarray | None,
        shape: tuple[int, int],
        cur_index: np.ndarray,
        on: np.ndarray,
        on_yx: tuple[np.ndarray, np.ndarray],
        n_cur: int,
    ) -> np.ndarray | None:
        """(n_cur, 64) colour histograms of this frame's segments, rows summing to 1."""
        if image is None:
            return None
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[:2] != shape or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputShapeError(
                f"image: expected uint8 (H, W, 3) with (H, W) = {shape} (the panoptic map's), got {img.dtype} "
                f"{img.shape}"
            )
        levels = self.settings.colour_levels
        shift = 8 - levels.bit_length() + 1  # 256 // levels values per level (levels a power of 2)
        # only the thing pixels of the grid are read (a gather, not a pass over the frame)
        q = img.reshape(-1, 3)[(on_yx[0] * self.stride) * shape[1] + on_yx[1] * self.stride] >> shift
        nb = levels**3
        q = q.astype(np.int64)
        code = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]
        hist = np.bincount(cur_index[on] * nb + code, minlength=n_cur * nb).reshape(n_cur, nb).astype(np.float64)
        return hist / np.maximum(hist.sum(1, keepdims=True), 1)

    def update(self, panoptic: np.ndarray, segments: list[Segment], image: np.ndarray | None = None) -> list[Segment]:
        """Set ``track_id`` on the thing segments of this frame (stuff keeps None); returns
        ``segments``. ``image``: the frame (uint8 BGR, the map's size) for the colour cue."""
        pan = np.asarray(panoptic)
        if pan.ndim != 2:
            raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
        if self._shape is not None and pan.shape != self._shape:
            self.reset()  # a new stream size: nothing to match against
        if self._shape is None:
            self.stride = self._fixed_stride or max(2, math.ceil(math.sqrt(pan.size / self.GRID_PIXELS)))
        self._shape = pan.shape
        grid_map = pan[:: self.stride, :: self.stride]
        gh, gw = grid_map.shape
        grid = grid_map.ravel()
        things = [s for s in segments if s.category_id in self.thing_ids]
        n_cur = len(things)
        # Per-pixel index of this frame's thing segments (-1 elsewhere), via a sorted id table.
        cur_index = np.full(grid.shape, -1, np.int64)
        if n_cur:
            ids = np.array([s.id for s in things], dtype=np.int64)
            order = np.argsort(ids)
            pos = np.minimum(np.searchsorted(ids[order], grid), n_cur - 1)
            hit = ids[order][pos] == grid
            cur_index[hit] = order[pos[hit]]
        on = np.flatnonzero(cur_index >= 0)
        by_seg = on[np.argsort(cur_index[on], kind="stable")]
        cur_area = np.bincount(cur_index[on], minlength=n_cur)
        cur_pixels = np.split(by_seg, np.cumsum(cur_area)[:-1]) if n_cur else []
        cur_cls = np.array([s.category_id for s in things], dtype=np.int64)
        on_y, on_x = np.divmod(on, gw)
        cur_cy = np.bincount(cur_index[on], weights=on_y, minlength=n_cur) / np.maximum(cur_area, 1)
        cur_cx = np.bincount(cur_index[on], weights=on_x, minlength=n_cur) / np.maximum(cur_area, 1)
        cur_colour = self._colours(image, pan.shape, cur_index, on, (on_y, on_x), n_cur)

        tracks = self._tracks
        cfg = self.settings
        self.frame += 1
        members: dict[int, list[int]] = {}  # track index -> its segments in this frame
        if tracks and n_cur:
            st = self.stride  # boxes in grid pixels, (y0, x0, y1, x1) inclusive
            cur_box = np.array(
                [
                    (s.bbox[1] / st, s.bbox[0] / st, (s.bbox[1] + s.bbox[3] - 1) / st, (s.bbox[0] + s.bbox[2] - 1) / st)
                    for s in things
                ]
            )
            members = self._match(tracks, cur_index, cur_area, cur_cls, cur_cy, cur_cx, cur_colour, cur_box, gh, gw)

        def union(parts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            area = cur_area[parts]
            centroid = np.array([cur_cy[parts] @ area, cur_cx[parts] @ area]) / max(area.sum(), 1)
            colour = None if cur_colour is None else (area @ cur_colour[parts]) / max(area.sum(), 1)
            return np.concatenate([cur_pixels[c] for c in parts]), centroid, colour

        unions = {k: union(parts) for k, parts in members.items()}
        adopted = set()
        if cfg.adopt_frames > 0 and cur_colour is not None:
            adopted = self._adopt(tracks, members, unions, gh, gw)
        steps = [(unions[k][1] - tracks[k].centroid) / (tracks[k].age + 1) for k in members if tracks[k].occluded == 0]
        if steps:  # the scene's common motion (a panning camera): the prior for new tracks
            self._common = np.median(np.array(steps), axis=0)
        kept = []
        for k, t in enumerate(tracks):
            if k not in members and k not in adopted:
                t.age += 1
                if t.age <= cfg.max_age or self._remembered(t, cur_index, gh, gw):
                    kept.append(t)
        for k, parts in members.items():
            t = tracks[k]
            pixels, centroid, colour = unions[k]
            ratio = pixels.size / max(t.pixels.size, 1)
            if ratio < cfg.occluded_ratio and t.occluded < cfg.max_age:
                # mostly hidden: remember the whole mask, carried along by the predicted
                # motion, so the object is recognised when it comes out again
                shift = self._velocity(t) * (t.age + 1)
                shift = self._anchored(t.pixels, pixels, shift, gw)
                t.pixels = self._moved(t.pixels, shift, gh, gw)
                t.centroid = t.centroid + shift
                t.seen = pixels
                t.occluded += 1
            else:
                if cfg.steady_ratio[0] < ratio < cfg.steady_ratio[1]:
                    # the centroid moved with the object, not with its occlusion
                    step = (centroid - t.centroid) / (t.age + 1)
                    t.velocity = step if t.fresh else 0.5 * t.velocity + 0.5 * step
                    t.fresh = False
                t.centroid, t.pixels, t.seen, t.occluded = centroid, pixels, pixels, 0
                if colour is not None:
                    m = cfg.colour_memory
                    t.colour = colour if t.colour is None else m * t.colour + (1 - m) * colour
            t.age, t.last_seen = 0, self.frame
            for c in parts:
                things[c].track_id = t.track_id
            kept.append(t)
        owned = {c for parts in members.values() for c in parts}
        for c, seg in enumerate(things):
            if c not in owned:
                pixels, centroid, colour = union([c])
                t = _Track(self.next_id, int(cur_cls[c]), pixels, pixels, centroid, np.zeros(2), colour=colour)
                t.born = t.last_seen = self.frame
                self.next_id += 1
                seg.track_id = t.track_id
                kept.append(t)
        self._tracks = kept
        return segments

    def _predicted(self, t: _Track) -> np.ndarray:
        """Where a track's centroid is expected in this frame."""
        return t.centroid + self._velocity(t) * (t.age + 1)

    def _remembered(self, t: _Track, cur_index: np.ndarray, gh: int, gw: int) -> bool:
        """Whether a track lost for more than ``max_age`` frames is still remembered: behind an
        occluder still in view (up to ``hidden_age``), or out of the frame (up to ``exit_age``).
        Only with its colours (frames given): without them nothing tells it from a newcomer."""
        cfg = self.settings
        if t.colour is None or t.age > max(cfg.hidden_age, cfg.exit_age):
            return False
        shift = self._velocity(t) * t.age  # its age counts this frame already
        if self._gone(t, shift, gh, gw):
            return t.age <= cfg.exit_age
        return t.age <= cfg.hidden_age and self._behind(t, shift, cur_index, gh, gw) >= cfg.hidden_cover

    def _gone(self, t: _Track, shift: np.ndarray, gh: int, gw: int) -> bool:
        """Whether a track's mask, moved by ``shift``, has mostly left the frame."""
        return self._moved(t.pixels, shift, gh, gw).size < 0.5 * t.pixels.size

    def _behind(self, t: _Track, shift: np.ndarray, cur_index: np.ndarray, gh: int, gw: int) -> float:
        """Fraction of a track's mask, moved by ``shift``, that lies under this frame's thing
        segments: how much of it an occluder covers (0 for a mask that left the frame)."""
        idx = cur_index[self._moved(t.pixels, shift, gh, gw)]
        return float(np.mean(idx >= 0)) if idx.size else 0.0

    def _adopt(
        self,
        tracks: list[_Track],
        members: dict[int, list[int]],
        unions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
        gh: int,
        gw: int,
    ) -> set[int]:
        """Young tracks (born up to ``adopt_frames`` frames ago) that match a lost track by the
        re-identification rule hand it their segments: ``members`` and ``unions`` are re-keyed
        to the lost track. Returns the young tracks so emptied (to be dropped)."""
        cfg = self.settings
        young = [k for k in members if 0 < self.frame - tracks[k].born <= cfg.adopt_frames]
        lost = [k for k, t in enumerate(tracks) if k not in members and t.colour is not None]
        if not young or not lost:
            return set()
        score = np.zeros((len(young), len(lost)))
        gone = [self._gone(tracks[k], self._velocity(tracks[k]) * (tracks[k].age + 1), gh, gw) for k in lost]
        for i, y in enumerate(young):
            pixels, centroid, colour = unions[y]
            y_px, x_px = np.divmod(pixels, gw)
            edge = bool(np.any((y_px == 0) | (x_px == 0) | (y_px == gh - 1) | (x_px == gw - 1)))
            for j, k in enumerate(lost):
                t = tracks[k]
                if t.category_id != tracks[y].category_id or t.last_seen >= tracks[y].born or (gone[j] and not edge):
                    continue
                size = math.sqrt(max(t.pixels.size, pixels.size, 1))
                reach = min(np.hypot(*(self._predicted(t) - centroid)), np.hypot(*(t.centroid - centroid)))
                look = np.minimum(t.colour, colour).sum()
                if reach / size < cfg.reid_distance and look > (cfg.late_colour if t.age >= cfg.max_age else 0.0):
                    score[i, j] = look
        adopted = set()
        for i, j in greedy_match(score, cfg.reid_colour):
            y, k = young[i], lost[j]
            members[k], unions[k] = members.pop(y), unions.pop(y)
            adopted.add(y)
        return adopted

    def _match(
        self,
        tracks: list[_Track],
        cur_index: np.ndarray,
        cur_area: np.ndarray,
        cur_cls: np.ndarray,
        cur_cy: np.ndarray,
        cur_cx: np.ndarray,
        cur_colour: np.ndarray | None,
        cur_box: np.ndarray,
        gh: int,
        gw: int,
    ) -> dict[int, list[int]]:
        """Track index -> its segments in this frame, in passes of decreasing certainty."""
        cfg = self.settings
        n_cur = cur_area.size
        assigned: dict[int, int] = {}
        # 1) IoU of each track's mask, moved by its predicted displacement, with this frame;
        # and of what was visible of it last (an object sliding behind an occluder, whose
        # remembered whole mask overlaps its last sliver too little)
        inter = np.zeros((len(tracks), n_cur))
        inter_seen = np.zeros((len(tracks), n_cur))

        def overlap(pixels: np.ndarray, shift: np.ndarray) -> np.ndarray:
            # the mask moved by the predicted displacement, and where it was (a prediction
            # thrown off by an occlusion must not cost a track that barely moved)
            moved = cur_index[self._moved(pixels, shift, gh, gw)]
            still = cur_index[pixels]
            return np.maximum(
                np.bincount(moved[moved >= 0], minlength=n_cur), np.bincount(still[still >= 0], minlength=n_cur)
            )

        for k, t in enumerate(tracks):
            shift = self._velocity(t) * (t.age + 1)
            inter[k] = overlap(t.pixels, shift)
            inter_seen[k] = inter[k] if t.seen is t.pixels else overlap(t.seen, shift)  # the same mask unless occluded
        t_area = np.array([t.pixels.size for t in tracks])[:, None]
        seen_area = np.array([t.seen.size for t in tracks])[:, None]
        same_class = np.array([t.category_id for t in tracks])[:, None] == cur_cls[None, :]
        if cur_colour is not None:
            t_colour = np.array(
                [t.colour if t.colour is not None else np.full(cur_colour.shape[1], 1.0) for t in tracks]
            )
            colour = np.minimum(t_colour[:, None, :], cur_colour[None, :, :]).sum(-1)
        else:
            colour = np.ones(same_class.shape)
        # a track lost for longer than max_age (remembered behind an occluder or out of the
        # frame) must match by colour more closely in every pass
        late = np.array([t.age >= cfg.max_age for t in tracks])[:, None]
        least = np.where(late, cfg.late_colour, cfg.min_colour)
        same = same_class & (colour >= least)
        iou = np.maximum(
            inter / np.maximum(t_area + cur_area[None, :] - inter, 1),
            inter_seen / np.maximum(seen_area + cur_area[None, :] - inter_seen, 1),
        )
        iou = np.where(same, iou, 0.0)
        # ranked by IoU times colour to a power: a new occluder over a track's mask overlaps it
        # more than the sliver left of the object does, but has other colours
        for k, c in greedy_match(np.where(iou > cfg.iou_threshold, iou * colour**cfg.colour_weight, 0.0), 0.0):
            assigned[c] = k
        # then overlap over the smaller mask, for a visible area changed by occlusion (a
        # sliver left by an occluder lies inside several remembered masks: the best IoU and
        # colour break the tie); a sliver's colours are those of a part of the object
        sliver = cur_area[None, :] < cfg.occluded_ratio * t_area
        grown = t_area < cfg.occluded_ratio * cur_area[None, :]
        same_part = same_class & (colour >= np.where(sliver | grown, np.where(late, least, cfg.sliver_colour), least))
        iomin = np.where(
            same_part, inter / np.maximum(np.minimum(t_area, cur_area[None, :]), 1) + 1e-3 * iou + 1e-3 * colour, 0.0
        )
        iomin[list(assigned.values())] = 0.0
        iomin[:, list(assigned)] = 0.0
        for k, c in greedy_match(iomin, cfg.contain):
            assigned[c] = k
        # then box IoU (wire-frame shapes such as bicycles lose their mask IoU within a few
        # pixels of motion; their box does not)
        free_t = [k for k in range(len(tracks)) if k not in assigned.values()]
        free_c = [c for c in range(n_cur) if c not in assigned]
        if free_t and free_c:
            box_iou = np.zeros((len(free_t), len(free_c)))
            for i, k in enumerate(free_t):
                t = tracks[k]
                y, x = t.pixels // gw, t.pixels % gw
                if y.size == 0:
                    continue
                box = np.array([y.min(), x.min(), y.max(), x.max()], float)
                shift = np.tile(self._velocity(t) * (t.age + 1), 2)
                box_iou[i] = np.maximum(_box_iou(box + shift, cur_box[free_c]), _box_iou(box, cur_box[free_c]))
            score = np.where(same[np.ix_(free_t, free_c)], box_iou * colour[np.ix_(free_t, free_c)], 0.0)
            for i, j in greedy_match(score, cfg.iou_threshold * cfg.min_colour):
                if box_iou[i, j] > cfg.iou_threshold:
                    assigned[free_c[j]] = free_t[i]

        def distance(free_t: list[int], free_c: list[int], last: bool = False) -> np.ndarray:
            # predicted centroid distance (or, when ``last``, the smaller of that and the distance
            # to where it was last seen), relative to the larger of the two masks' size
            size = np.maximum(np.sqrt(np.maximum(t_area[free_t], cur_area[free_c][None, :])), 1)
            d = np.full(size.shape, np.inf)
            for where in (self._predicted, lambda t: t.centroid) if last else (self._predicted,):
                p = np.array([where(tracks[k]) for k in free_t])
                d = np.minimum(
                    d, np.hypot(p[:, :1] - cur_cy[free_c][None, :], p[:, 1:] - cur_cx[free_c][None, :]) / size
                )
            return d

        # 2) what is left: near the predicted position
        free_t = [k for k in range(len(tracks)) if k not in assigned.values()]
        free_c = [c for c in range(n_cur) if c not in assigned]
        if free_t and free_c:
            ratio = t_area[free_t] / np.maximum(cur_area[free_c][None, :], 1)
            ok = same[np.ix_(free_t, free_c)] & (ratio > cfg.min_size_ratio)
            closeness = np.where(
                ok, (cfg.max_distance - distance(free_t, free_c)) * colour[np.ix_(free_t, free_c)], -1.0
            )
            for i, j in greedy_match(closeness, 0.0):
                assigned[free_c[j]] = free_t[i]
        # 2b) a track lost for a frame or more whose colours the segment matches closely,
        # within a wider reach: an object that comes out from behind an occluder elsewhere than
        # predicted (a car approaching behind a person reappears below and beside it)
        free_t = [k for k in range(len(tracks)) if k not in assigned.values() and tracks[k].age >= 1]
        free_c = [c for c in range(n_cur) if c not in assigned]
        if free_t and free_c and cur_colour is not None:
            ok = same_class[np.ix_(free_t, free_c)] & (distance(free_t, free_c, True) < cfg.reid_distance)
            ok &= colour[np.ix_(free_t, free_c)] > np.where(late[free_t], cfg.late_colour, cfg.reid_colour)
            # a track that left the frame comes back through its border
            gone = np.array(
                [self._gone(tracks[k], self._velocity(tracks[k]) * (tracks[k].age + 1), gh, gw) for k in free_t]
            )
            box = cur_box[free_c]
            edge = (box[:, 0] <= 0.5) | (box[:, 1] <= 0.5) | (box[:, 2] >= gh - 1.5) | (box[:, 3] >= gw - 1.5)
            ok &= ~gone[:, None] | (edge[None, :] & (colour[np.ix_(free_t, free_c)] > cfg.late_colour))
            for i, j in greedy_match(np.where(ok, colour[np.ix_(free_t, free_c)], 0.0), cfg.reid_colour):
                assigned[free_c[j]] = free_t[i]
        members: dict[int, list[int]] = {}
        for c, k in assigned.items():
            members.setdefault(k, []).append(c)
        # 3) pieces: a segment left over that lies mostly inside the predicted mask of a track
        # already continued, in its colours, is a piece of that object the model split off (a
        # large near car comes out as 2-4 segments whose borders move from frame to frame)
        cover = np.where(same_class & (colour >= cfg.piece_colour), inter / np.maximum(cur_area[None, :], 1), 0.0)
        for c in range(n_cur):
            if c not in assigned:
                k = int(np.argmax(cover[:, c]))
                if k in members and cover[k, c] >= cfg.piece_cover:
                    members[k].append(c)
        return members
