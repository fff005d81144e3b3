"""What a runtime returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeps.panoptic import Segment


@dataclass
class PanopticResult:
    """``panoptic``: (H, W) int32 at the frame's size; ``segments``: one entry per segment with
    class, area, bbox, centroid, score (track ids are filled by a tracker); ``timings``: ms per
    stage (preprocess, infer, postprocess)."""

    panoptic: np.ndarray
    segments: list[Segment] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "segments": [s.to_dict() for s in self.segments],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
