"""Cityscapes panoptic data: the 19 evaluation classes, the panoptic set, and instanceIds PNGs.

``cityscapesscripts``' ``createPanopticImgs`` writes COCO panoptic files, so loading reuses the
COCO reader. The raw ``*_gtFine_instanceIds.png`` files use their own encoding (label id for
stuff and crowd, ``label_id * 1000 + k`` for the k-th instance, k from 0); the converters here
map it to and from the edgeps encoding, where instance numbers start at 1 and crowd is 0.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.atomic import atomic_path
from edgeps.categories import Categories
from edgeps.errors import DataNotFoundError, FormatError, InputShapeError
from edgeps.io.coco_panoptic import CocoPanopticSet, load_coco_panoptic

CITYSCAPES_DIVISOR = 1000
"""The divisor of the instanceIds encoding, fixed by Cityscapes (independent of edgeps')."""

_CLASSES = (  # (label id, name, isthing, RGB colour) as in cityscapesscripts/helpers/labels.py
    (7, "road", 0, (128, 64, 128)),
    (8, "sidewalk", 0, (244, 35, 232)),
    (11, "building", 0, (70, 70, 70)),
    (12, "wall", 0, (102, 102, 156)),
    (13, "fence", 0, (190, 153, 153)),
    (17, "pole", 0, (153, 153, 153)),
    (19, "traffic light", 0, (250, 170, 30)),
    (20, "traffic sign", 0, (220, 220, 0)),
    (21, "vegetation", 0, (107, 142, 35)),
    (22, "terrain", 0, (152, 251, 152)),
    (23, "sky", 0, (70, 130, 180)),
    (24, "person", 1, (220, 20, 60)),
    (25, "rider", 1, (255, 0, 0)),
    (26, "car", 1, (0, 0, 142)),
    (27, "truck", 1, (0, 0, 70)),
    (28, "bus", 1, (0, 60, 100)),
    (31, "train", 1, (0, 80, 100)),
    (32, "motorcycle", 1, (0, 0, 230)),
    (33, "bicycle", 1, (119, 11, 32)),
)

CITYSCAPES_CATEGORIES: Categories = Categories.from_list(
    [{"id": i, "name": n, "isthing": t, "color": list(c)} for i, n, t, c in _CLASSES],
    where="CITYSCAPES_CATEGORIES",
)
"""The 19 evaluation classes with their Cityscapes label ids (train-id order)."""


def load_cityscapes_panoptic(root: str | Path, split: str) -> CocoPanopticSet:
    """Load ``root/gtFine/cityscapes_panoptic_{split}.json`` and its PNG folder.

    These are the files ``cityscapesscripts``' ``createPanopticImgs`` writes; checking them
    here gives an error that says how to make them instead of a bare missing-file message.
    """
    gt = Path(root) / "gtFine"
    json_path = gt / f"cityscapes_panoptic_{split}.json"
    png_dir = gt / f"cityscapes_panoptic_{split}"
    hint = "(create it with cityscapesscripts' createPanopticImgs)"
    if not json_path.is_file():
        raise DataNotFoundError(f"Cityscapes panoptic JSON not found: {json_path} {hint}")
    if not png_dir.is_dir():
        raise DataNotFoundError(f"Cityscapes panoptic PNG folder not found: {png_dir} {hint}")
    return load_coco_panoptic(json_path, png_dir)


def _class_tables(categories: Categories) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables indexed by label id: is the class known, is it a thing."""
    known = np.zeros(max(categories.ids) + 1, dtype=bool)
    thing = np.zeros_like(known)
    known[categories.ids] = True
    thing[categories.thing_ids] = True
    return known, thing


def instance_ids_to_panoptic(
    instance_ids: np.ndarray,
    categories: Categories = CITYSCAPES_CATEGORIES,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
) -> np.ndarray:
    """Cityscapes instanceIds array -> edgeps panoptic map (class ids stay Cityscapes label ids).

    Instance k (from 0) becomes instance k + 1; thing regions without instances (crowd) get
    instance 0; stuff always gets instance 0; labels not in ``categories`` become void.
    """
    arr = np.asarray(instance_ids)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InputShapeError(
            f"instance_ids: expected an (H, W) integer array, got shape {arr.shape} dtype {arr.dtype}"
        )
    v = arr.astype(np.int64)
    has_instance = v >= CITYSCAPES_DIVISOR
    label = np.where(has_instance, v // CITYSCAPES_DIVISOR, v)
    number = np.where(has_instance, v % CITYSCAPES_DIVISOR + 1, 0)
    known_lut, thing_lut = _class_tables(categories)
    in_range = (label >= 0) & (label < len(known_lut))
    safe = np.where(in_range, label, 0)
    known = in_range & known_lut[safe]
    instance = np.where(thing_lut[safe], number, 0)
    if np.any(known & (instance >= label_divisor)):
        raise FormatError(
            f"instance_ids: instance number {int(instance[known].max())} does not fit label_divisor {label_divisor}"
        )
    out = np.where(known, label * label_divisor + instance, void_label)
    return out.astype(np.int32)


def panoptic_to_instance_ids(
    panoptic: np.ndarray,
    categories: Categories = CITYSCAPES_CATEGORIES,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
) -> np.ndarray:
    """edgeps panoptic map -> Cityscapes instanceIds (int32; void becomes 0, "unlabeled").

    The inverse of :func:`instance_ids_to_panoptic`. Stuff drops any instance number, since
    Cityscapes has none for stuff; a class outside ``categories`` is an error, not silent void.
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2 or not np.issubdtype(pan.dtype, np.integer):
        raise InputShapeError(f"panoptic: expected an (H, W) integer array, got shape {pan.shape} dtype {pan.dtype}")
    p = pan.astype(np.int64)
    void = p == void_label
    label = np.where(void, 0, p // label_divisor)
    instance = np.where(void, 0, p % label_divisor)
    known_lut, thing_lut = _class_tables(categories)
    in_range = (label >= 0) & (label < len(known_lut))
    safe = np.where(in_range, label, 0)
    bad = ~void & ~(in_range & known_lut[safe])
    if np.any(bad):
        classes = sorted({int(c) for c in np.unique(label[bad])})
        raise InputShapeError(f"panoptic: classes {classes} are not in the category set")
    numbered = thing_lut[safe] & (instance > 0)
    if np.any(numbered & (instance > CITYSCAPES_DIVISOR)):
        raise InputShapeError(
            f"panoptic: instance number {int(instance[numbered].max())} does not fit the Cityscapes encoding (max "
            f"{CITYSCAPES_DIVISOR})"
        )
    out = np.where(numbered, label * CITYSCAPES_DIVISOR + instance - 1, label)
    return np.where(void, 0, out).astype(np.int32)


def read_instance_ids_png(path: str | Path) -> np.ndarray:
    """Read a 16-bit ``*_gtFine_instanceIds.png`` as an (H, W) int32 array.

    An 8-bit file is refused: it is almost surely a ``labelIds`` PNG, whose values would
    silently read as crowd regions.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"instanceIds PNG not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FormatError(f"{path}: not a readable image")
    if img.ndim != 2 or img.dtype != np.uint16:
        raise FormatError(
            f"{path}: expected a single-channel 16-bit PNG (*_gtFine_instanceIds.png), got shape {img.shape} dtype "
            f"{img.dtype}"
        )
    return img.astype(np.int32)


def write_instance_ids_png(path: str | Path, instance_ids: np.ndarray) -> None:
    """Write an (H, W) instanceIds array as a 16-bit PNG, atomically."""
    arr = np.asarray(instance_ids)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InputShapeError(
            f"instance_ids: expected an (H, W) integer array, got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
        raise InputShapeError(
            f"instance_ids: values must lie in [0, 65535] for a 16-bit PNG, got [{arr.min()}, {arr.max()}]"
        )
    path = Path(path)
    with atomic_path(path, fsync=False) as tmp:  # bulk dataset images: rename only
        if not cv2.imwrite(str(tmp), arr.astype(np.uint16)):
            raise FormatError(f"{path}: OpenCV could not write the PNG")
