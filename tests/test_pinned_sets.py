"""The frozen test sets, pinned by content: synth:val (200 images and their ground truth) and the
tracking benchmark's videos (seeds 7, 11-19, 512x1024).

Scores on these sets are only comparable while their pixels and labels stay the same, so any
change to :mod:`edgeps.data.street` that alters them fails here. Generator changes meant for
training go behind a training-only option (off by default), which leaves these digests as they
are. Everything is rendered in memory and hashed with hashlib: a digest covers each array's dtype,
shape and bytes (images uint8 BGR, panoptic maps little-endian int32), in order.

The videos are pinned as :func:`edgeps.data.street.render_video` renders them, before
``write_synth_video`` encodes them to mp4 (the mp4 bytes depend on the OpenCV build's encoder).
A video has to be rendered frame by frame from its first frame, so a strided subset costs as
much as every frame: by default the first ``PINNED_FRAMES`` frames of each video are pinned
(about half the render time), and ``EDGEPS_PIN_FULL=1`` pins all 100 frames of each video.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from edgeps.data.datasets import open_dataset
from edgeps.data.street import GENERATOR_VERSION, SYNTH_VAL_COUNT, SYNTH_VAL_SIZE, render_video
from edgeps.data.tracking_videos import DEFAULT_FRAMES, DEFAULT_SIZE

# Ground-truth maps are integer fills: pinned by sha256, bit for bit. Images go through float
# OpenCV filters whose SIMD paths (AVX2, AVX512, none) round a few pixels differently by 1, so
# they are pinned by a fingerprint compared with a relative tolerance (see _fingerprint).
SYNTH_VAL_GT_SHA256 = "ba3a66dee9ab4c6e0597c9720086a9c3ca74982a4b5f3eb6a7bc7b5e31121773"
SYNTH_VAL_IMAGES_FINGERPRINT = (34817040868.0, 5220640084382.0, 3510563426453.0)

TRACKING_SEEDS = (7, 11, 12, 13, 14, 15, 16, 17, 18, 19)
PINNED_FRAMES = 50
# seed -> (sha256 of the first PINNED_FRAMES maps, of all DEFAULT_FRAMES maps, image fingerprint of the first frames)
TRACKING_VIDEOS: dict[int, tuple[str, str, tuple[float, float, float]]] = {
    7: (
        "2d40b8af497a5016a99e7bcccd34e00b91a7ffb6bfe999a044a7c79ffe22852a",
        "112bc2471a10350902b2283d6bd11eae814baee2aec18c0cecbfb3f0b56f4735",
        (8300920980.0, 1152191714008.0, 220343552033.0),
    ),
    11: (
        "15f20454c2b96879a05f3603af289757c7fdfd9370f2848ade893889f39140cd",
        "ee0df592b4bce3da0b1b99c23f8c46fdb7a5d11937478f5264b2bef105764e7b",
        (9635969012.0, 1378991036242.0, 244258869790.0),
    ),
    12: (
        "72832b4872339f2c1665c5615eea2ef1ac8b11fa1055c667dd67966ec8dc6636",
        "f7828f6ab59e32116415c1bd9daa419c07088f70a4ea8b5fdf95c3e9e107f9d8",
        (7347061291.0, 911539737751.0, 183545586061.0),
    ),
    13: (
        "d92ad527afed265f6511b4f6e91dd58a783bd4a933ab754692cc2240f8e5b1f3",
        "51d82b887d2f04b6c6f02de248dbad3bb08f65360fb9930932d9193ecaaaae81",
        (8516074799.0, 1177436569861.0, 216063429339.0),
    ),
    14: (
        "7ec7fb270dfde6a58b68a8e1c16e8db5259010382c71156650c0e9fa204e5e60",
        "2b8af6567072ac9a1ea6c20545eff53edabdeb88b7acace0dcece4d3577e9bf0",
        (7732219664.0, 905085770808.0, 201575916383.0),
    ),
    15: (
        "1a12ad88c2abd0bedc2fb4786bfd9896e7c3d065d1c62fc1d5fdc3ab0b2f2e32",
        "59e7197055653433207d1e1583caba015b9467c4ded441cbb86e90978f4c17e3",
        (7002999760.0, 769190781338.0, 181071550044.0),
    ),
    16: (
        "2dedb47a677984889bc25d5b6b13eacabb1346d6f05ba3d201b303c0436d1b1b",
        "cadd42c31f7343c9192aca95a5f5996cda16b68b0a0949b2fdcc7c6347654d77",
        (5830803150.0, 573436430382.0, 148100265452.0),
    ),
    17: (
        "96321707920a707f48cd80aeb930c8b4691d542d3418d0a7aa82c97ba9530576",
        "9a393fa87e36b65402db29868c00ff65afcb015f5a5fa3c0f24d7123c9f07e54",
        (8146055659.0, 1050398897879.0, 211265501702.0),
    ),
    18: (
        "571b66f36a201dd4d3ef26fd947b7e13b1aa7c176544b5d269601eaf7ebaece3",
        "541328845114eabfbebcc91f122bc80e3ae31d4eba8f073326573dea8dab7a57",
        (5385462919.0, 543942302469.0, 138515585606.0),
    ),
    19: (
        "cc63947cf3cf13bc194cbe7c77c325a9dd27cc9c631df1842630257e124b63c7",
        "b0cb1f247faff1dfef444b5338696b6606ec65d3272a330a5d74f1d29d4f3ff4",
        (7152642208.0, 927256426264.0, 187117354285.0),
    ),
}
FINGERPRINT_RTOL = 1e-6  # SIMD rounding moves a fingerprint by ~1e-8; a changed scene by far more

FULL = os.environ.get("EDGEPS_PIN_FULL") == "1"
HINT = (
    f"a frozen test set changed (GENERATOR_VERSION {GENERATOR_VERSION}, numpy {np.__version__}, "
    f"OpenCV {cv2.__version__}): put the generator change behind a training-only option, or, if this "
    "build of numpy/OpenCV renders differently, re-pin only after checking that scores are unaffected"
)


def _update(h: Any, array: np.ndarray, dtype: str) -> None:
    """Add one array (dtype, shape, bytes) to the running digest ``h``."""
    a = np.ascontiguousarray(array, dtype=dtype)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def _fingerprint(images: Iterable[np.ndarray]) -> tuple[float, float, float]:
    """(sum of pixels, sum of squared pixels, sum over images of (index + 1) x the image's sum):
    order- and content-sensitive, insensitive to a few pixels rounded the other way."""
    s1 = s2 = s3 = 0.0
    for i, img in enumerate(images):
        v = img.astype(np.float64)
        t = float(v.sum())
        s1 += t
        s2 += float((v * v).sum())
        s3 += (i + 1) * t
    return s1, s2, s3


def _close(got: tuple[float, ...], want: tuple[float, ...]) -> bool:
    return all(abs(g - w) <= FINGERPRINT_RTOL * abs(w) for g, w in zip(got, want, strict=True))


def _video_pins(seed: int, frames: int, pinned: int) -> tuple[str, str | None, tuple[float, float, float]]:
    """(maps digest of the first ``pinned`` frames, of all ``frames`` or None when only the first
    ``pinned`` were rendered, image fingerprint of the first ``pinned`` frames)."""
    h, head, images = hashlib.sha256(), None, []
    for f in render_video(seed, DEFAULT_SIZE, frames):
        _update(h, f.panoptic, "<i4")
        if f.frame < pinned:
            images.append(f.image)
        if f.frame == pinned - 1:
            head = h.hexdigest()
    assert head is not None
    return head, (h.hexdigest() if frames > pinned else None), _fingerprint(images)


def _synth_val_pins(samples: Iterable) -> tuple[str, tuple[float, float, float], int]:
    hg, images = hashlib.sha256(), []
    for s in samples:
        images.append(s.image)
        _update(hg, s.panoptic, "<i4")
        hg.update(b"o1" if s.occlusion else b"o0")
    return hg.hexdigest(), _fingerprint(images), len(images)


def test_synth_val_is_pinned() -> None:
    """All 200 synth:val images and ground-truth maps (and occlusion flags), as evaluation reads them."""
    ds = open_dataset("synth:val")
    assert ds.size == SYNTH_VAL_SIZE == (512, 1024)
    gts, images, n = _synth_val_pins(ds)
    assert n == SYNTH_VAL_COUNT == 200
    assert gts == SYNTH_VAL_GT_SHA256, f"synth:val ground truth: {HINT}"
    assert _close(images, SYNTH_VAL_IMAGES_FINGERPRINT), f"synth:val images {images}: {HINT}"


def test_tracking_videos_are_pinned() -> None:
    """The tracking benchmark's videos (seeds 7, 11-19, 512x1024): maps and images of the first
    ``PINNED_FRAMES`` frames of each, and the maps of all 100 with ``EDGEPS_PIN_FULL=1``."""
    assert (DEFAULT_FRAMES, DEFAULT_SIZE) == (100, (512, 1024))
    frames = DEFAULT_FRAMES if FULL else PINNED_FRAMES
    changed = []
    for seed in TRACKING_SEEDS:
        head, full, images = _video_pins(seed, frames, PINNED_FRAMES)
        want_head, want_full, want_images = TRACKING_VIDEOS[seed]
        if head != want_head or (full is not None and full != want_full) or not _close(images, want_images):
            changed.append(seed)
    assert not changed, f"tracking videos of seeds {changed}: {HINT}"
