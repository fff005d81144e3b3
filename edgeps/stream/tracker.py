"""Stable instance ids across frames: per-class mask-IoU matching of consecutive frames.

The panoptic map of each frame numbers instances afresh (car 1, car 2 in center order), so
a consumer that follows "that car" needs an identity that outlives the frame. The tracker
matches each thing segment to the previous frame's segments of the same class by mask IoU
(one joint ``bincount`` over the pixels, no loop over pixels), then to recently lost tracks,
and gives unmatched segments new ids. Track ids are unbounded integers and live only in
:attr:`Segment.track_id`; the panoptic map is never rewritten.
"""

from __future__ import annotations

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
    pixels: np.ndarray  # flat indices (in the subsampled grid) of its last mask
    centroid: np.ndarray  # (y, x) in grid pixels
    velocity: np.ndarray  # (dy, dx) per frame, smoothed
    age: int = 0  # frames since it was last seen
    fresh: bool = True  # no velocity measured yet


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


class Tracker:
    """Give thing segments track ids that persist while the object moves.

    Each track remembers its last mask and a smoothed velocity; the mask is moved by the
    predicted displacement before the IoU with this frame's segments is taken (objects near
    the camera move by more than their own size in a few frames). Segments still unmatched
    are paired by centroid distance relative to their size. ``iou_threshold``: minimum IoU to
    continue a track; ``max_age``: frames a lost track is remembered (a short occlusion or a
    missed detection); ``stride``: IoU on every ``stride``-th pixel per axis (4x cheaper at 2).
    """

    def __init__(
        self,
        thing_ids: Iterable[int],
        *,
        label_divisor: int = LABEL_DIVISOR,
        iou_threshold: float = 0.3,
        max_distance: float = 0.6,
        max_age: int = 10,
        stride: int = 2,
    ):
        self.thing_ids = frozenset(int(t) for t in thing_ids)
        self.label_divisor = label_divisor
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        self.max_age = max_age
        self.stride = max(1, int(stride))
        self.next_id = 1
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

    def reset(self) -> None:
        self._shape, self._tracks, self._common = None, [], np.zeros(2)

    def update(self, panoptic: np.ndarray, segments: list[Segment]) -> list[Segment]:
        """Set ``track_id`` on the thing segments of this frame (stuff keeps None); returns
        ``segments``."""
        pan = np.asarray(panoptic)
        if pan.ndim != 2:
            raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
        if self._shape is not None and pan.shape != self._shape:
            self.reset()  # a new stream size: nothing to match against
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
        cur_cy = np.bincount(cur_index[on], weights=on // gw, minlength=n_cur) / np.maximum(cur_area, 1)
        cur_cx = np.bincount(cur_index[on], weights=on % gw, minlength=n_cur) / np.maximum(cur_area, 1)

        tracks = self._tracks
        assigned: dict[int, int] = {}  # segment -> index in tracks
        if tracks and n_cur:
            # 1) IoU of each track's mask, moved by its predicted displacement, with this frame
            inter = np.zeros((len(tracks), n_cur))
            for k, t in enumerate(tracks):
                # the mask moved by the predicted displacement, and where it was (a prediction
                # thrown off by an occlusion must not cost a track that barely moved)
                moved = cur_index[self._moved(t.pixels, self._velocity(t) * (t.age + 1), gh, gw)]
                still = cur_index[t.pixels]
                inter[k] = np.maximum(np.bincount(moved[moved >= 0], minlength=n_cur), np.bincount(still[still >= 0], minlength=n_cur))
            t_area = np.array([t.pixels.size for t in tracks])[:, None]
            same = np.array([t.category_id for t in tracks])[:, None] == cur_cls[None, :]
            iou = np.where(same, inter / np.maximum(t_area + cur_area[None, :] - inter, 1), 0.0)
            for k, c in greedy_match(iou, self.iou_threshold):
                assigned[c] = k
            # then overlap over the smaller mask, for a visible area changed by occlusion
            iomin = np.where(same, inter / np.maximum(np.minimum(t_area, cur_area[None, :]), 1), 0.0)
            iomin[list(assigned.values())] = 0.0
            iomin[:, list(assigned)] = 0.0
            for k, c in greedy_match(iomin, 0.6):
                assigned[c] = k
            # 2) what is left: predicted centroid distance, relative to the object's size
            free_t = [k for k in range(len(tracks)) if k not in assigned.values()]
            free_c = [c for c in range(n_cur) if c not in assigned]
            if free_t and free_c:
                pred = np.array([tracks[k].centroid + self._velocity(tracks[k]) * (tracks[k].age + 1) for k in free_t])
                size = np.sqrt(np.maximum(np.array([tracks[k].pixels.size for k in free_t])[:, None], cur_area[free_c][None, :]))
                dist = np.hypot(pred[:, :1] - cur_cy[free_c][None, :], pred[:, 1:] - cur_cx[free_c][None, :]) / np.maximum(size, 1)
                ratio = np.array([tracks[k].pixels.size for k in free_t])[:, None] / np.maximum(cur_area[free_c][None, :], 1)
                ok = same[np.ix_(free_t, free_c)] & (ratio > 0.25) & (ratio < 4.0)
                closeness = np.where(ok, self.max_distance - dist, -1.0)
                for i, j in greedy_match(closeness, 0.0):
                    assigned[free_c[j]] = free_t[i]

        matched = set(assigned.values())
        steps = [
            (np.array([cur_cy[c], cur_cx[c]]) - tracks[k].centroid) / (tracks[k].age + 1) for c, k in assigned.items()
        ]
        if steps:  # the scene's common motion (a panning camera): the prior for new tracks
            self._common = np.median(np.array(steps), axis=0)
        kept = []
        for k, t in enumerate(tracks):
            if k not in matched:
                t.age += 1
                if t.age <= self.max_age:
                    kept.append(t)
        for c, seg in enumerate(things):
            centroid = np.array([cur_cy[c], cur_cx[c]])
            if c in assigned:
                t = tracks[assigned[c]]
                ratio = cur_area[c] / max(t.pixels.size, 1)
                if 0.6 < ratio < 1.7:  # the centroid moved with the object, not with its occlusion
                    step = (centroid - t.centroid) / (t.age + 1)
                    t.velocity = step if t.fresh else 0.5 * t.velocity + 0.5 * step
                    t.fresh = False
                t.centroid, t.pixels = centroid, cur_pixels[c]
                t.age = 0
            else:
                t = _Track(self.next_id, int(cur_cls[c]), cur_pixels[c], centroid, np.zeros(2))
                self.next_id += 1
            seg.track_id = t.track_id
            kept.append(t)
        self._tracks = kept
        return segments
