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
