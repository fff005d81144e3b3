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
class _Lost:
    track_id: int
    category_id: int
    pixels: np.ndarray  # flat indices (in the subsampled grid) of its last mask
    age: int = 0


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) by decreasing IoU, each row and column used once, IoU > threshold."""
    rows, cols = np.nonzero(iou > threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
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

    ``iou_threshold``: minimum mask IoU to continue a track; ``max_age``: frames a lost track
    is remembered (to bridge a short occlusion or a missed detection); ``stride``: IoU is
    computed on every ``stride``-th pixel in each axis (2 is 4x cheaper and equally decisive
    for objects larger than a few pixels).
    """

    def __init__(
        self,
        thing_ids: Iterable[int],
        *,
        label_divisor: int = LABEL_DIVISOR,
        iou_threshold: float = 0.3,
        max_age: int = 10,
        stride: int = 2,
    ):
        self.thing_ids = frozenset(int(t) for t in thing_ids)
        self.label_divisor = label_divisor
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.stride = max(1, int(stride))
        self.next_id = 1
        self._shape: tuple[int, int] | None = None
        self._prev_index: np.ndarray | None = None  # flat: index into _prev_tracks, -1 elsewhere
        self._prev_tracks: list[tuple[int, int]] = []  # (track_id, category_id)
        self._lost: list[_Lost] = []

    def reset(self) -> None:
        self._shape, self._prev_index, self._prev_tracks, self._lost = None, None, [], []

    def update(self, panoptic: np.ndarray, segments: list[Segment]) -> list[Segment]:
        """Set ``track_id`` on the thing segments of this frame (stuff keeps None); returns
        ``segments``."""
        pan = np.asarray(panoptic)
        if pan.ndim != 2:
            raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
        if self._shape is not None and pan.shape != self._shape:
            self.reset()  # a new stream size: nothing to match against
        self._shape = pan.shape
        things = [s for s in segments if s.category_id in self.thing_ids]
        grid = pan[:: self.stride, :: self.stride].ravel()
        # Per-pixel index of this frame's thing segments (-1 elsewhere), via a sorted id table.
        ids = np.array([s.id for s in things], dtype=np.int64)
        cur_index = np.full(grid.shape, -1, np.int64)
        if ids.size:
            order = np.argsort(ids)
            pos = np.searchsorted(ids[order], grid)
            pos = np.minimum(pos, ids.size - 1)
            hit = ids[order][pos] == grid
            cur_index[hit] = order[pos[hit]]
        n_cur = len(things)
        cur_area = np.bincount(cur_index[cur_index >= 0], minlength=n_cur)
        cur_cls = np.array([s.category_id for s in things], dtype=np.int64)
        assigned: dict[int, int] = {}

        # 1) the previous frame's tracks
        if self._prev_index is not None and self._prev_tracks and n_cur:
            n_prev = len(self._prev_tracks)
            both = (self._prev_index >= 0) & (cur_index >= 0)
            inter = np.bincount(self._prev_index[both] * n_cur + cur_index[both], minlength=n_prev * n_cur).reshape(n_prev, n_cur)
            prev_area = np.bincount(self._prev_index[self._prev_index >= 0], minlength=n_prev)
            iou = inter / np.maximum(prev_area[:, None] + cur_area[None, :] - inter, 1)
            prev_cls = np.array([c for _, c in self._prev_tracks], dtype=np.int64)
            iou[prev_cls[:, None] != cur_cls[None, :]] = 0.0
            matched_prev = set()
            for r, c in greedy_match(iou, self.iou_threshold):
                assigned[c] = self._prev_tracks[r][0]
                matched_prev.add(r)
            lost_now = [r for r in range(n_prev) if r not in matched_prev]
        else:
            lost_now = list(range(len(self._prev_tracks)))
        newly_lost = [
            _Lost(self._prev_tracks[r][0], self._prev_tracks[r][1], np.flatnonzero(self._prev_index == r))
            for r in lost_now
            if self._prev_index is not None
        ]

        # 2) recently lost tracks, for what is still unmatched
        free = [c for c in range(n_cur) if c not in assigned]
        if self._lost and free:
            iou = np.zeros((len(self._lost), n_cur))
            for k, lost in enumerate(self._lost):
                inter = np.bincount(cur_index[lost.pixels][cur_index[lost.pixels] >= 0], minlength=n_cur)
                iou[k] = inter / np.maximum(lost.pixels.size + cur_area - inter, 1)
                iou[k, cur_cls != lost.category_id] = 0.0
            iou[:, [c for c in range(n_cur) if c in assigned]] = 0.0
            revived = set()
            for r, c in greedy_match(iou, self.iou_threshold):
                assigned[c] = self._lost[r].track_id
                revived.add(r)
            self._lost = [lost for k, lost in enumerate(self._lost) if k not in revived]

        # 3) new tracks
        for c in range(n_cur):
            if c not in assigned:
                assigned[c] = self.next_id
                self.next_id += 1
        for c, seg in enumerate(things):
            seg.track_id = assigned[c]

        for lost in self._lost:
            lost.age += 1
        self._lost = [lost for lost in self._lost if lost.age <= self.max_age] + newly_lost
        self._prev_index = cur_index
        self._prev_tracks = [(assigned[c], int(cur_cls[c])) for c in range(n_cur)]
        return segments
