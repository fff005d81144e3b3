"""Video panoptic metrics: STQ (Weber et al. 2021) and VPQ (Kim et al. 2020), fed frame by frame.

Both accumulators take the project's panoptic maps (``class * label_divisor + instance``, void
``void_label``) of ground truth and prediction, one frame per :meth:`update` call, and group
frames into sequences (videos) with :meth:`next_sequence`. An id that recurs in later frames of
a sequence is the same track (ground truth) or the same predicted track; a stuff class is the
one segment ``class * label_divisor``. In ground truth, a thing class with instance 0 is a crowd
region. Memory does not grow with the length of a video: STQ keeps per-track pixel counts, VPQ
keeps the pixel-pair counts of the last ``max(spans) + 1`` frames.

**STQ** (Segmentation and Tracking Quality, Weber et al., "STEP: Segmenting and Tracking Every
Pixel", NeurIPS 2021), as deeplab2's ``segmentation_and_tracking_quality.py`` computes it:

- Per sequence, for each ground-truth track g and predicted track p (thing classes only):
  TPA(p, g) = |p ∩ g|, FPA = |p \\ g|, FNA = |g \\ p|, IoU_id = TPA / (TPA + FPA + FNA).
  A predicted track is every predicted id of a thing class (its class need not be g's).
- AQ = Σ_sequences Σ_g (1 / |g|) Σ_{p ∩ g ≠ ∅} TPA · IoU_id, divided by the number of ground-
  truth tracks of all sequences (not a mean of per-sequence AQ). Per sequence, the same over
  its own tracks (0 for a sequence without any, as in deeplab2).
- Crowd pixels (ground-truth thing class, instance 0) are left out of AQ for ground truth and
  prediction alike; predicted pixels on ground-truth void or stuff still count in |p|.
- SQ = mean IoU over classes of one semantic confusion matrix summed over every frame of every
  sequence; ground-truth-void pixels are dropped, predicted void on a labelled pixel is a miss
  of that pixel's class, and classes whose union is empty (never in ground truth nor predicted)
  are left out of the mean. deeplab2 also counts its void column as one more class (IoU 0)
  whenever void is predicted on labelled pixels; its models never predict void, ours may, and
  void is no class, so it is not counted here.
- STQ = sqrt(AQ · SQ), overall and per sequence (per-sequence SQ from that sequence's matrix).

**VPQ** (Video Panoptic Quality, Kim et al., "Video Panoptic Segmentation", CVPR 2020), as the
reference ``eval_vpq.py`` (github.com/mcahny/vps) computes it:

- A window of span k is the frames t, t + step, ..., t + k (``step`` = 5: the reference scores
  Cityscapes-VPS, where every 5th frame is annotated, on consecutive annotated frames; our
  videos are annotated in every frame, so the window keeps that spacing and slides t by one
  frame). Spans k = 0, 5, 10, 15 give windows of 1 to 4 frames. A sequence shorter than
  k + 1 frames has no window of span k.
- In a window, each id's pixels over the window's frames form a tube (the frames concatenated).
  Tubes are matched with panopticapi's image rules, those of :func:`edgeps.metrics.pq.pq_image`
  applied to the window's summed pixel-pair counts rather than to the concatenated maps: same
  class, IoU > 0.5 with the prediction's pixels on ground-truth void left out of the union;
  crowd tubes are never matched nor missed; an unmatched predicted tube is no false positive
  when more than half of it lies on void or on the crowd tube of its class.
- VPQ^k = mean over classes of Σ_TP IoU / (|TP| + ½|FP| + ½|FN|), with TP, FP, FN and IoU
  summed over every window of every sequence; classes with no TP, FP or FN are left out.
- VPQ = mean of VPQ^k over the spans; a span without any scored window is left out (and reported).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.errors import CategoryError, ConfigError, InputShapeError
from edgeps.metrics.pq import PQStat, _pair_counts
from edgeps.panoptic import compact_ids

DEFAULT_SPANS = (0, 5, 10, 15)
DEFAULT_STEP = 5


@dataclass
class _PairTable:
    """Pixel counts of the distinct (ground-truth id, predicted id) pairs of one or more frames."""

    gt: np.ndarray  # int64 ids
    pred: np.ndarray  # int64 ids
    count: np.ndarray  # int64 pixels


class _VideoMetric:
    """What STQ and VPQ share: the class set, input checks and the per-frame pair table."""

    def __init__(
        self,
        num_classes: int,
        thing_ids: Iterable[int],
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ConfigError(f"num_classes: expected a positive integer, got {num_classes!r}")
        if isinstance(label_divisor, bool) or not isinstance(label_divisor, (int, np.integer)) or label_divisor < 1:
            raise ConfigError(f"label_divisor: expected a positive integer, got {label_divisor!r}")
        things = sorted({int(t) for t in thing_ids})
        bad = [t for t in things if not 0 <= t < num_classes]
        if bad:
            raise CategoryError(f"thing_ids: classes {bad} are not in [0, num_classes = {num_classes})")
        self.num_classes = int(num_classes)
        self.thing_ids = frozenset(things)
        self.label_divisor = int(label_divisor)
        self.void_label = int(void_label)
        self._is_thing = np.zeros(self.num_classes, bool)
        self._is_thing[things] = True
        self._sequences = 0  # sequences started so far (names default to their index)

    def _classes(self, ids: np.ndarray, name: str) -> np.ndarray:
        """Class of each id (void -> ``num_classes``); rejects ids outside the class range."""
        void = ids == self.void_label
        cls = np.where(void, self.num_classes, ids // self.label_divisor)
        bad = ~void & ((ids < 0) | (cls >= self.num_classes))
        if bad.any():
            raise InputShapeError(
                f"{name}: panoptic ids {ids[bad][:8].tolist()} are not void ({self.void_label}) and not "
                f"class * {self.label_divisor} + instance with a class in [0, {self.num_classes})"
            )
        return cls

    def _pairs(self, gt: Any, pred: Any) -> _PairTable:
        g, p = np.asarray(gt), np.asarray(pred)
        for name, a in (("gt", g), ("pred", p)):
            if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
                raise InputShapeError(
                    f"{name}: expected an (H, W) integer panoptic map, got shape {a.shape} dtype {a.dtype}"
                )
        if g.shape != p.shape:
            raise InputShapeError(f"pred: shape {p.shape} differs from gt shape {g.shape}")
        g_ids, g_inv = compact_ids(g.astype(np.int64, copy=False))
        p_ids, p_inv = compact_ids(p.astype(np.int64, copy=False))
        self._classes(g_ids, "gt")
        self._classes(p_ids, "pred")
        keys, counts = _pair_counts(g_inv.ravel(), p_inv.ravel(), len(g_ids), len(p_ids))
        n_p = max(len(p_ids), 1)
        return _PairTable(
            g_ids[keys // n_p].astype(np.int64), p_ids[keys % n_p].astype(np.int64), counts.astype(np.int64)
        )

    def _next_name(self, name: str | None) -> str:
        self._sequences += 1
        return str(self._sequences - 1) if name is None else str(name)


# ----------------------------------------------------------------------------- STQ
@dataclass
class _StqSequence:
    name: str
    num_classes: int
    frames: int = 0
    gt_size: dict[int, int] = field(default_factory=dict)
    pred_size: dict[int, int] = field(default_factory=dict)
    inter: dict[tuple[int, int], int] = field(default_factory=dict)
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.num_classes + 1  # last row / column: void
        self.confusion = np.zeros((n, n), np.int64)

    def association(self) -> tuple[float, int]:
        """(Σ_g (1/|g|) Σ_p TPA · IoU_id, number of ground-truth tracks)."""
        if not self.inter:
            return 0.0, len(self.gt_size)
        tpa = np.array(list(self.inter.values()), np.float64)
        size_g = np.array([self.gt_size[g] for g, _ in self.inter], np.float64)
        size_p = np.array([self.pred_size[p] for _, p in self.inter], np.float64)
        return float(np.sum(tpa * tpa / (size_g + size_p - tpa) / size_g)), len(self.gt_size)


def _add_counts(table: dict, keys: Iterable, counts: np.ndarray) -> None:
    for k, c in zip(keys, counts.tolist(), strict=True):
        table[k] = table.get(k, 0) + c


def _mean_iou(confusion: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean IoU over classes with a non-empty union, per-class IoU, which classes count) of an
    (n + 1, n + 1) confusion matrix whose last row and column are void; void rows are dropped."""
    n = confusion.shape[0] - 1
    labelled = confusion[:n]  # ground-truth void row dropped
    inter = np.diag(labelled[:, :n]).astype(np.float64)
    union = labelled.sum(axis=1) + labelled[:, :n].sum(axis=0) - inter
    present = union > 0
    iou = np.divide(inter, union, out=np.zeros(n), where=present)
    return (float(iou[present].mean()) if present.any() else 0.0), iou, present


class STQAccumulator(_VideoMetric):
    """Segmentation and Tracking Quality over sequences, one frame per :meth:`update`.

    Args:
        num_classes: classes are ``0 .. num_classes - 1``; a class id outside is an error.
        thing_ids: the thing classes (the tracked ones; instance 0 of a thing is crowd in GT).
        label_divisor: ``panoptic id = class * label_divisor + instance``.
        void_label: the void id, in ground truth and prediction.

    The rules (and where they follow deeplab2) are in the module docstring.
    """

    def __init__(
        self,
        num_classes: int,
        thing_ids: Iterable[int],
        *,
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
    ) -> None:
        super().__init__(num_classes, thing_ids, label_divisor, void_label)
        self.reset()

    def reset(self) -> None:
        """Forget every sequence."""
        self._sequences = 0
        self._done: list[dict[str, Any]] = []  # closed sequences: name, frames, AQ sum, tracks, confusion
        self._current: _StqSequence | None = None

    def next_sequence(self, name: str | None = None) -> None:
        """End the current sequence (if it has frames) and start a new one; ``name`` labels it in
        :meth:`result` (default: its index). Track ids of different sequences are unrelated."""
        self._close()
        self._current = _StqSequence(self._next_name(name), self.num_classes)

    def _close(self) -> None:
        seq = self._current
        if seq is not None and seq.frames:
            aq_sum, tracks = seq.association()
            self._done.append(
                {"name": seq.name, "frames": seq.frames, "aq_sum": aq_sum, "tracks": tracks, "confusion": seq.confusion}
            )
        self._current = None

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one frame of the current sequence (a first call starts sequence "0").

        Args:
            gt: (H, W) integer ground-truth panoptic map.
            pred: (H, W) integer predicted panoptic map, track ids as instance numbers.

        Raises:
            InputShapeError: not 2-D integer maps of one shape, or an id of a class outside
                ``[0, num_classes)``.
        """
        t = self._pairs(gt, pred)
        if self._current is None:
            self.next_sequence()
        seq = self._current
        assert seq is not None
        n = self.num_classes
        g_cls, p_cls = self._classes(t.gt, "gt"), self._classes(t.pred, "pred")
        seq.confusion += (
            np.bincount(g_cls * (n + 1) + p_cls, weights=t.count, minlength=(n + 1) ** 2)
            .reshape(n + 1, n + 1)
            .astype(np.int64)
        )
        g_thing = self._is_thing[np.minimum(g_cls, n - 1)] & (g_cls < n)
        g_crowd = g_thing & (t.gt % self.label_divisor == 0)
        g_track = g_thing & ~g_crowd
        p_track = self._is_thing[np.minimum(p_cls, n - 1)] & (p_cls < n) & ~g_crowd
        both = g_track & p_track
        _add_counts(seq.gt_size, t.gt[g_track].tolist(), t.count[g_track])
        _add_counts(seq.pred_size, t.pred[p_track].tolist(), t.count[p_track])
        _add_counts(seq.inter, zip(t.gt[both].tolist(), t.pred[both].tolist(), strict=True), t.count[both])
        seq.frames += 1

    def result(self) -> dict[str, Any]:
        """The figures so far (the open sequence included), fractions in [0, 1].

        Returns:
            ``stq``, ``aq``, ``sq`` (overall), ``tracks`` (ground-truth tracks, all sequences),
            ``frames``, ``per_class_iou`` ({class id: IoU} of the classes in SQ's mean) and
            ``per_sequence``: a list of {``name``, ``frames``, ``tracks``, ``stq``, ``aq``,
            ``sq``} in the order the sequences were fed.
        """
        seqs = list(self._done)
        if self._current is not None and self._current.frames:
            aq_sum, tracks = self._current.association()
            seqs.append(
                {
                    "name": self._current.name,
                    "frames": self._current.frames,
                    "aq_sum": aq_sum,
                    "tracks": tracks,
                    "confusion": self._current.confusion,
                }
            )
        n = self.num_classes
        total = np.zeros((n + 1, n + 1), np.int64)
        per_sequence = []
        for s in seqs:
            total += s["confusion"]
            aq = s["aq_sum"] / s["tracks"] if s["tracks"] else 0.0
            sq = _mean_iou(s["confusion"])[0]
            per_sequence.append(
                {
                    "name": s["name"],
                    "frames": s["frames"],
                    "tracks": s["tracks"],
                    "stq": math.sqrt(aq * sq),
                    "aq": aq,
                    "sq": sq,
                }
            )
        tracks = sum(s["tracks"] for s in seqs)
        aq = sum(s["aq_sum"] for s in seqs) / tracks if tracks else 0.0
        sq, iou, present = _mean_iou(total)
        return {
            "stq": math.sqrt(aq * sq),
            "aq": aq,
            "sq": sq,
            "tracks": tracks,
            "frames": sum(s["frames"] for s in seqs),
            "per_class_iou": {c: float(iou[c]) for c in np.flatnonzero(present).tolist()},
            "per_sequence": per_sequence,
        }


# ----------------------------------------------------------------------------- VPQ
def _merge(tables: list[_PairTable]) -> _PairTable:
    """One table of the pairs of several frames (a window's tubes)."""
    g = np.concatenate([t.gt for t in tables])
    p = np.concatenate([t.pred for t in tables])
    c = np.concatenate([t.count for t in tables])
    pairs, inv = np.unique(np.stack([g, p]), axis=1, return_inverse=True)
    counts = np.bincount(inv.ravel(), weights=c, minlength=pairs.shape[1]).astype(np.int64)
    return _PairTable(pairs[0], pairs[1], counts)


@dataclass
class _VpqSequence:
    name: str
    spans: tuple[int, ...]
    frames: int = 0
    buffer: deque = field(default_factory=deque)
    stats: dict[int, PQStat] = field(init=False)
    windows: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.stats = {k: PQStat() for k in self.spans}
        self.windows = dict.fromkeys(self.spans, 0)
        self.buffer = deque(maxlen=max(self.spans) + 1)


class VPQAccumulator(_VideoMetric):
    """Video Panoptic Quality over sequences, one frame per :meth:`update`.

    Args:
        num_classes: classes are ``0 .. num_classes - 1``; a class id outside is an error.
        thing_ids: the thing classes (instance 0 of a thing in ground truth is crowd).
        label_divisor: ``panoptic id = class * label_divisor + instance``.
        void_label: the void id, in ground truth and prediction.
        spans: the window spans k, each a multiple of ``step`` (default 0, 5, 10, 15).
        step: frames between two frames of a window (default 5).

    Only the pixel-pair counts of the last ``max(spans) + 1`` frames are kept. The rules (and
    where they follow the reference code) are in the module docstring.
    """

    def __init__(
        self,
        num_classes: int,
        thing_ids: Iterable[int],
        *,
        label_divisor: int = LABEL_DIVISOR,
        void_label: int = VOID_LABEL,
        spans: Iterable[int] = DEFAULT_SPANS,
        step: int = DEFAULT_STEP,
    ) -> None:
        super().__init__(num_classes, thing_ids, label_divisor, void_label)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ConfigError(f"step: expected a positive integer, got {step!r}")
        spans = tuple(sorted({int(k) for k in spans}))
        if not spans or any(k < 0 or k % step for k in spans):
            raise ConfigError(f"spans: expected non-negative multiples of step {step}, got {list(spans)}")
        self.spans = spans
        self.step = int(step)
        self.reset()

    def reset(self) -> None:
        """Forget every sequence."""
        self._sequences = 0
        self._done: list[_VpqSequence] = []
        self._current: _VpqSequence | None = None
        self._total = {k: PQStat() for k in self.spans}
        self._windows = dict.fromkeys(self.spans, 0)

    def next_sequence(self, name: str | None = None) -> None:
        """End the current sequence (if it has frames) and start a new one; ``name`` labels it in
        :meth:`result` (default: its index). No window spans two sequences."""
        if self._current is not None and self._current.frames:
            self._current.buffer.clear()
            self._done.append(self._current)
        self._current = _VpqSequence(self._next_name(name), self.spans)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one frame of the current sequence (a first call starts sequence "0") and score
        every window that ends with it.

        Args:
            gt: (H, W) integer ground-truth panoptic map.
            pred: (H, W) integer predicted panoptic map, track ids as instance numbers.

        Raises:
            InputShapeError: not 2-D integer maps of one shape, or an id of a class outside
                ``[0, num_classes)``.
        """
        table = self._pairs(gt, pred)
        if self._current is None:
            self.next_sequence()
        seq = self._current
        assert seq is not None
        seq.buffer.append(table)
        seq.frames += 1
        last = len(seq.buffer) - 1
        for k in self.spans:
            if k > last:
                continue
            window = [seq.buffer[last - k + j] for j in range(0, k + 1, self.step)]
            stat = self._window(_merge(window) if len(window) > 1 else window[0])
            seq.stats[k].add(stat)
            seq.windows[k] += 1
            self._total[k].add(stat)
            self._windows[k] += 1

    def _window(self, t: _PairTable) -> PQStat:
        """panopticapi's matching (:func:`edgeps.metrics.pq.pq_image`) on a window's pair table."""
        n = self.num_classes
        g_labels, gi = np.unique(t.gt, return_inverse=True)
        p_labels, pi = np.unique(t.pred, return_inverse=True)
        gi, pi = gi.ravel(), pi.ravel()
        g_area = np.bincount(gi, weights=t.count, minlength=len(g_labels))
        p_area = np.bincount(pi, weights=t.count, minlength=len(p_labels))
        g_cls, p_cls = self._classes(g_labels, "gt"), self._classes(p_labels, "pred")
        g_valid, p_valid = g_cls < n, p_cls < n
        g_crowd = g_valid & self._is_thing[np.minimum(g_cls, n - 1)] & (g_labels % self.label_divisor == 0)
        on_void = ~g_valid[gi]
        void_inter = np.bincount(pi[on_void], weights=t.count[on_void], minlength=len(p_labels))
        same = g_cls[gi] == p_cls[pi]
        cand = g_valid[gi] & ~g_crowd[gi] & p_valid[pi] & same
        union = p_area[pi] + g_area[gi] - t.count - void_inter[pi]
        iou = np.divide(t.count, union, out=np.zeros(len(union)), where=cand & (union > 0))
        matched = cand & (iou > 0.5)  # > 0.5 makes each match unique
        tp = np.bincount(g_cls[gi[matched]], minlength=n)
        iou_sum = np.bincount(g_cls[gi[matched]], weights=iou[matched], minlength=n)
        g_hit = np.zeros(len(g_labels), bool)
        g_hit[gi[matched]] = True
        p_hit = np.zeros(len(p_labels), bool)
        p_hit[pi[matched]] = True
        fn = np.bincount(g_cls[g_valid & ~g_crowd & ~g_hit], minlength=n + 1)[:n]
        # an unmatched prediction is forgiven when more than half of it is on void or on the
        # crowd region of its own class
        on_crowd = g_crowd[gi] & same
        ignored = void_inter + np.bincount(pi[on_crowd], weights=t.count[on_crowd], minlength=len(p_labels))
        fp_mask = p_valid & ~p_hit & ~(ignored > 0.5 * p_area)
        fp = np.bincount(p_cls[fp_mask], minlength=n + 1)[:n]
        stat = PQStat()
        for c in np.flatnonzero(tp + fp + fn).tolist():
            s = stat[c]
            s.tp, s.fp, s.fn, s.iou = int(tp[c]), int(fp[c]), int(fn[c]), float(iou_sum[c])
        return stat

    def _mean(self, stat: PQStat, isthing: bool | None) -> tuple[float, int]:
        """(mean PQ, number of classes) over the classes with a TP, FP or FN."""
        values = []
        for c in range(self.num_classes):
            if isthing is not None and bool(self._is_thing[c]) != isthing:
                continue
            m = stat.class_metrics(c)
            if m is not None:
                values.append(m["pq"])
        return (float(np.mean(values)) if values else 0.0), len(values)

    def _summary(self, stats: dict[int, PQStat], windows: dict[int, int]) -> dict[str, Any]:
        per_span: dict[int, dict[str, Any]] = {}
        for k in self.spans:
            vpq, classes = self._mean(stats[k], None)
            per_span[k] = {
                "vpq": vpq,
                "vpq_things": self._mean(stats[k], True)[0],
                "vpq_stuff": self._mean(stats[k], False)[0],
                "windows": windows[k],
                "classes": classes,
            }
        scored = [k for k in self.spans if per_span[k]["classes"]]
        out: dict[str, Any] = {}
        for key in ("vpq", "vpq_things", "vpq_stuff"):
            out[key] = float(np.mean([per_span[k][key] for k in scored])) if scored else 0.0
        out["spans_scored"] = scored
        out["per_span"] = per_span
        return out

    def result(self) -> dict[str, Any]:
        """The figures so far (the open sequence included), fractions in [0, 1].

        Returns:
            ``vpq``, ``vpq_things``, ``vpq_stuff`` (means over the spans that had a scored
            window; ``spans_scored`` lists them), ``frames``, ``per_span`` ({k: {``vpq``,
            ``vpq_things``, ``vpq_stuff``, ``windows``, ``classes``}}) and ``per_sequence``: a
            list of {``name``, ``frames``, and the same figures for that sequence alone}.
        """
        seqs = list(self._done)
        if self._current is not None and self._current.frames:
            seqs.append(self._current)
        out = self._summary(self._total, self._windows)
        out["frames"] = sum(s.frames for s in seqs)
        out["per_sequence"] = [{"name": s.name, "frames": s.frames, **self._summary(s.stats, s.windows)} for s in seqs]
        return out
