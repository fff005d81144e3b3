"""How well track ids follow objects: id switches and the fraction of objects tracked.

Ground truth is a sequence of panoptic maps whose thing ids persist over the video (the
synthetic video's ``class * 1000 + n``). A track may own several segments of one frame (the
pieces of an object the model split), so what is scored is each track's mask: the union of its
segments. Each frame, every ground-truth thing is matched to the track mask of its class with
IoU > 0.5 (unique, as in PQ); a switch is counted when an object is matched to a different
track id than the last time it was matched (the MOT definition). Scoring the union keeps the
figure honest: a tracker that gave two cars one id would lose both matches, not save a switch.
Ground-truth objects whose visible area in a frame is below ``min_area`` pixels are not scored
in that frame (the MOT practice of ignoring barely visible objects): a sliver left by an
occluder carries no identity to keep.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import InputShapeError
from edgeps.panoptic import Segment, compact_ids


class TrackingAccumulator:
    """Accumulate id switches over frames; :meth:`summary` gives the figures."""

    def __init__(
        self,
        thing_ids: Iterable[int],
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
        min_area: int = 0,
    ):
        self.min_area = min_area
        self.thing_ids = frozenset(int(t) for t in thing_ids)
        self.label_divisor = label_divisor
        self.void_label = void_label
        self.frames = 0
        self.switches = 0
        self.object_frames = 0  # (ground-truth thing, frame) pairs
        self.matched = 0  # of those, matched to a tracked segment
        self._last_track: dict[int, int] = {}
        self._seen: dict[int, list[int]] = {}  # gt id -> [frames present, frames matched]
        self.events: list[tuple[int, int, int, int]] = []  # each switch: (frame, gt id, old track, new track)

    def update(self, gt: np.ndarray, pred: np.ndarray, segments: list[Segment]) -> int:
        """Add one frame; returns the switches it had."""
        if gt.shape != pred.shape:
            raise InputShapeError(f"gt {gt.shape} and pred {pred.shape}: expected the same (H, W)")
        self.frames += 1
        ld = self.label_divisor
        pr_ids, pr_inv = compact_ids(pred)
        # group the predicted segments by (class, track id); an untracked segment (stuff, void)
        # is a group of its own, keyed (class, None, its id)
        track_of = {s.id: (s.category_id, s.track_id) for s in segments if s.track_id is not None}
        keys = [track_of.get(int(i), (int(i) // ld, None, int(i))) for i in pr_ids.tolist()]
        group_of: dict[tuple, int] = {}
        pr_group = np.array([group_of.setdefault(k, len(group_of)) for k in keys], np.int64)
        group_key = list(group_of)
        gt_ids, gt_inv = compact_ids(gt)
        n_g, n_p = len(gt_ids), len(group_key)
        inter = np.bincount(gt_inv * n_p + pr_group[pr_inv], minlength=n_g * n_p).reshape(n_g, n_p)
        area_g, area_p = inter.sum(1), inter.sum(0)
        iou = inter / np.maximum(area_g[:, None] + area_p[None, :] - inter, 1)
        g_thing = np.array(
            [i != self.void_label and i // ld in self.thing_ids and i % ld > 0 for i in gt_ids.tolist()], bool
        )
        g_thing &= area_g >= self.min_area
        tracked = np.array([k[1] is not None for k in group_key], bool)
        same = (gt_ids[:, None] // ld) == np.array([k[0] for k in group_key])[None, :]
        iou = np.where(same & tracked[None, :], iou, 0.0)
        switches = 0
        for g in np.flatnonzero(g_thing).tolist():
            gid = int(gt_ids[g])
            seen = self._seen.setdefault(gid, [0, 0])
            seen[0] += 1
            self.object_frames += 1
            p = int(np.argmax(iou[g])) if n_p else -1
            if p < 0 or iou[g, p] <= 0.5:
                continue
            track = group_key[p][1]
            seen[1] += 1
            self.matched += 1
            if gid in self._last_track and self._last_track[gid] != track:
                switches += 1
                self.events.append((self.frames - 1, gid, self._last_track[gid], track))
            self._last_track[gid] = track
        self.switches += switches
        return switches

    def summary(self) -> dict[str, float]:
        objects = len(self._seen)
        mostly = sum(1 for present, hit in self._seen.values() if hit >= 0.8 * present)
        return {
            "frames": self.frames,
            "objects": objects,
            "id_switches": self.switches,
            "switches_per_100_frames": 100.0 * self.switches / max(self.frames, 1),
            "tracked_fraction": self.matched / max(self.object_frames, 1),  # matched object-frames
            "mostly_tracked_fraction": mostly / max(objects, 1),  # objects matched in >= 80 % of their frames
        }


class OracleAssociation:
    """Association by ground truth: each thing segment gets the id of the ground-truth track it
    overlaps most, the best any tracker could do with the same masks (an upper bound on STQ's AQ
    for them). Used in place of :class:`edgeps.stream.tracker.Tracker`, with the ground truth.

    Overlap is counted in pixels over ground-truth thing instances of any class (crowd, stuff and
    void are no track). Ground-truth tracks are numbered 1, 2, ... in the order first met over the
    sequence; a segment that overlaps none gets a number of its own, never reused. Pieces of one
    object all get its id, two objects merged into one segment get the larger one's. Create one
    per sequence.
    """

    def __init__(self, thing_ids: Iterable[int], label_divisor: int = LABEL_DIVISOR, void_label: int = VOID_LABEL):
        self.thing_ids = frozenset(int(t) for t in thing_ids)
        self.label_divisor = label_divisor
        self.void_label = void_label
        self.next_id = 1
        self._number: dict[int, int] = {}  # ground-truth id -> track id

    def update(self, gt: np.ndarray, panoptic: np.ndarray, segments: list[Segment]) -> list[Segment]:
        """Set ``track_id`` on the thing segments of ``segments`` (the segments of ``panoptic``;
        stuff keeps None) from ``gt``, the frame's ground truth with persistent ids; returns
        ``segments``.

        Raises:
            InputShapeError: ``gt`` and ``panoptic`` differ in shape.
        """
        gt, pan = np.asarray(gt), np.asarray(panoptic)
        if gt.shape != pan.shape:
            raise InputShapeError(f"gt {gt.shape} and panoptic {pan.shape}: expected the same (H, W)")
        ld = self.label_divisor
        things = [s for s in segments if s.category_id in self.thing_ids]
        if not things:
            return segments
        pr_ids, pr_inv = compact_ids(pan)
        gt_ids, gt_inv = compact_ids(gt)
        gt_ids = gt_ids.astype(np.int64)
        g_thing = (
            (gt_ids != self.void_label)
            & np.isin(gt_ids // ld, np.fromiter(self.thing_ids, np.int64, len(self.thing_ids)))
            & (gt_ids % ld > 0)
        )
        n_g, n_p = len(gt_ids), len(pr_ids)
        inter = np.bincount(pr_inv * n_g + gt_inv, minlength=n_p * n_g).reshape(n_p, n_g)
        inter = np.where(g_thing[None, :], inter, 0)
        best = np.argmax(inter, axis=1)
        row_of = {int(i): r for r, i in enumerate(pr_ids.tolist())}
        for seg in things:
            r = row_of.get(seg.id)
            if r is None or inter[r, best[r]] == 0:
                seg.track_id = self.next_id
                self.next_id += 1
                continue
            gid = int(gt_ids[best[r]])
            if gid not in self._number:
                self._number[gid] = self.next_id
                self.next_id += 1
            seg.track_id = self._number[gid]
        return segments
