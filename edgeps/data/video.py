"""The synthetic street video on disk: an mp4 and its per-frame COCO-panoptic ground truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps.atomic import atomic_path
from edgeps.errors import FormatError


def write_synth_video(
    path: Path,
    frames: int,
    size: tuple[int, int],
    seed: int,
    *,
    fps: float = 15.0,
    show: Callable[..., Any] | None = None,
) -> Path:
    """Render ``render_video(seed)`` to ``path`` (mp4v) and its ground truth beside it.

    Args:
        path: the mp4 to write (written atomically).
        frames: number of frames.
        size: (H, W) in pixels.
        seed: the scene's seed; the same seed gives the same video.
        fps: frame rate stored in the file.
        show: optional progress wrapper, called as ``show(iterable, total=, desc=)``.

    Returns:
        The ground-truth folder ``<stem>_gt/`` holding ``panoptic.json`` and ``panoptic/*.png``
        (synthetic category ids; an object keeps its segment id in every frame).
    """
    from edgeps.data.street import render_video
    from edgeps.data.synthetic import SYNTH_CATEGORIES
    from edgeps.io.coco_panoptic import panoptic_to_coco, write_coco_panoptic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gt = path.with_name(path.stem + "_gt")
    h, w = size
    images: list[dict] = []

    def entries() -> Iterator[tuple[int, str, np.ndarray, list[dict]]]:
        scenes = render_video(seed, size, frames)
        for s in scenes if show is None else show(scenes, total=frames, desc="rendering video"):
            writer.write(s.image)
            name = f"{s.frame:06d}.png"
            images.append({"id": s.frame, "file_name": name, "frame": s.frame, "height": h, "width": w})
            yield (s.frame, name, *panoptic_to_coco(s.panoptic, SYNTH_CATEGORIES))

    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise FormatError(f"{path}: OpenCV cannot write mp4 video (no mp4v encoder in this build)")
        try:
            write_coco_panoptic(gt / "panoptic.json", gt / "panoptic", entries(), SYNTH_CATEGORIES, images=images)
        finally:
            writer.release()
    return gt


__all__ = ["write_synth_video"]
