"""The synthetic street scenes written in the on-disk layouts of the real datasets.

``write_synth_layout(out, "cityscapes" | "coco", n, split=...)`` renders ``n`` scenes of
:func:`edgeps.data.street.render_scene` and writes them as the real dataset is laid out, with
the real dataset's category ids, so code written for Cityscapes or COCO panoptic (edgeps'
loaders, cityscapesscripts, panopticapi) reads them unchanged.

Seeds. ``split="val"`` writes synth:val: seeds ``SYNTH_VAL_SEED_BASE + i`` for i = 0..n-1
(n <= ``SYNTH_VAL_COUNT``; ``seed`` must stay 0). ``split="train"`` writes seeds ``seed + i``,
all below ``SYNTH_TRAIN_SEED_MAX``, so a train split never holds a synth:val scene.

Category ids (one table, :data:`SYNTH_TO_DATASET`, keyed by the synthetic class name):

==========  ==========  ==============================
synthetic   Cityscapes  COCO panoptic
==========  ==========  ==============================
road        7           149 ``road``
sidewalk    8           191 ``pavement-merged``
building    11          197 ``building-other-merged``
vegetation  21          184 ``tree-merged``
sky         23          187 ``sky-other-merged``
car         26          3 ``car``
person      24          1 ``person``
bicycle     33          2 ``bicycle``
==========  ==========  ==============================

Cityscapes layout (what the real dataset plus cityscapesscripts' ``createPanopticImgs`` give),
with ``stem = {city}_{seq:06d}_000019`` (city ``synthcity`` in train, ``synthvalcity`` in val) and
``seq`` the seed's place in its split's seed range (train: the seed itself; val: i, for seed
``SYNTH_VAL_SEED_BASE + i``)::

    leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png          image (PNG, lossless)
    gtFine/{split}/{city}/{stem}_gtFine_instanceIds.png        uint16: stuff and crowd = label id,
                                                                  instance k (from 0) = label id * 1000 + k,
                                                                  unlabeled (void) 0
    gtFine/{split}/{city}/{stem}_gtFine_labelIds.png           uint8 label ids, void 0
    gtFine/cityscapes_panoptic_{split}/{stem}_gtFine_panoptic.png  RGB segment ids (R + 256 G + 256^2 B)
    gtFine/cityscapes_panoptic_{split}.json

The panoptic JSON and PNGs are what ``createPanopticImgs`` (label ids, not train ids) writes
from those instanceIds files, byte for byte in the JSON: segment id = the instanceIds value,
``images`` ids are the stems (``file_name`` is ``{stem}_gtFine_leftImg8bit.png``, the tool's
quirk, kept: readers find the image from the id), all 19 evaluation classes in ``categories``
(with ``supercategory``), ``json.dump(..., sort_keys=True, indent=4)``. The same ``seq`` in train and
val gives the same stem; the two live in different folders and JSONs, as Cityscapes splits do.

COCO layout (the official COCO panoptic one), ``name = f"{image_id:012d}"``::

    {split}2017/{name}.jpg                                  image (JPEG)
    annotations/panoptic_{split}2017/{name}.png             RGB segment ids (R + 256 G + 256^2 B)
    annotations/panoptic_{split}2017.json

The image id is the scene's seed, so train ids (< 1_000_000) and val ids (1_000_000 + i)
never collide. Segment ids are edgeps panoptic id + 1 (:func:`edgeps.io.coco_panoptic.panoptic_to_coco`),
e.g. car instance 2 -> ``3 * 1000 + 2 + 1``. ``categories`` holds only the 8 COCO classes the
scenes use (a subset of COCO's 133, with COCO's ids, names, colours and supercategories).

Writes are safe: every image and PNG is written under a temporary name and renamed; the
split's JSON is removed first and written last, so a stopped run never leaves a JSON that
indexes missing or stale files. Other splits in the same folder are kept, so ``train`` then
``val`` into one folder gives both side by side. numpy/OpenCV only (no torch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.atomic import atomic_path, atomic_write_text
from edgeps.categories import Categories
from edgeps.data.street import (
    GENERATOR_VERSION,
    SYNTH_TRAIN_SEED_MAX,
    SYNTH_VAL_COUNT,
    SYNTH_VAL_SEED_BASE,
    render_scene,
)
from edgeps.data.synthetic import SYNTH_CATEGORIES
from edgeps.errors import ConfigError, FormatError, InputShapeError
from edgeps.io.cityscapes import (
    CITYSCAPES_CATEGORIES,
    panoptic_to_instance_ids,
    write_instance_ids_png,
)
from edgeps.io.coco_panoptic import panoptic_to_coco, write_id_png, write_json

__all__ = [
    "CITYSCAPES_CITY",
    "COCO_SUBSET_CATEGORIES",
    "LAYOUT_FORMATS",
    "SPLITS",
    "SYNTH_TO_DATASET",
    "dataset_categories",
    "remap_panoptic",
    "synth_layout_json",
    "synth_seeds",
    "write_image",
    "write_synth_layout",
]

LAYOUT_FORMATS = ("cityscapes", "coco")
"""The dataset layouts :func:`write_synth_layout` writes."""

SPLITS = ("train", "val")

CITYSCAPES_CITY = {"train": "synthcity", "val": "synthvalcity"}
"""The fake city of each split: real Cityscapes splits hold different cities, so their stems never collide."""
"""The fake city of the Cityscapes layout (no underscore: the image id's first field is the city)."""

CITYSCAPES_FRAME = 19
"""The frame number in the Cityscapes file names (Cityscapes annotates frame 19 of each snippet)."""

SYNTH_TO_DATASET: dict[str, dict[str, int]] = {
    "cityscapes": {
        "road": 7,
        "sidewalk": 8,
        "building": 11,
        "vegetation": 21,
        "sky": 23,
        "car": 26,
        "person": 24,
        "bicycle": 33,
    },
    "coco": {
        "road": 149,
        "sidewalk": 191,
        "building": 197,
        "vegetation": 184,
        "sky": 187,
        "car": 3,
        "person": 1,
        "bicycle": 2,
    },
}
"""Synthetic class name -> the dataset's category id (Cityscapes label id, COCO panoptic id)."""

COCO_SUBSET_CATEGORIES: tuple[dict[str, Any], ...] = (
    # As in panopticapi's panoptic_coco_categories.json (COCO 2017 panoptic), ascending ids.
    {"supercategory": "person", "color": [220, 20, 60], "isthing": 1, "id": 1, "name": "person"},
    {"supercategory": "vehicle", "color": [119, 11, 32], "isthing": 1, "id": 2, "name": "bicycle"},
    {"supercategory": "vehicle", "color": [0, 0, 142], "isthing": 1, "id": 3, "name": "car"},
    {"supercategory": "ground", "color": [128, 64, 128], "isthing": 0, "id": 149, "name": "road"},
    {"supercategory": "plant", "color": [107, 142, 35], "isthing": 0, "id": 184, "name": "tree-merged"},
    {"supercategory": "sky", "color": [70, 130, 180], "isthing": 0, "id": 187, "name": "sky-other-merged"},
    {"supercategory": "ground", "color": [96, 96, 96], "isthing": 0, "id": 191, "name": "pavement-merged"},
    {"supercategory": "building", "color": [116, 112, 0], "isthing": 0, "id": 197, "name": "building-other-merged"},
)
"""The 8 COCO panoptic categories the synthetic classes map to (a subset of COCO's 133)."""

_CITYSCAPES_SUPERCATEGORY = {  # label id -> category, as in cityscapesscripts/helpers/labels.py
    7: "flat",
    8: "flat",
    11: "construction",
    12: "construction",
    13: "construction",
    17: "object",
    19: "object",
    20: "object",
    21: "nature",
    22: "nature",
    23: "sky",
    24: "human",
    25: "human",
    26: "vehicle",
    27: "vehicle",
    28: "vehicle",
    31: "vehicle",
    32: "vehicle",
    33: "vehicle",
}


def _check_format(fmt: str) -> str:
    if fmt not in LAYOUT_FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(LAYOUT_FORMATS)}, got {fmt!r}")
    return fmt


def dataset_categories(fmt: str) -> list[dict[str, Any]]:
    """The ``categories`` list of the layout's JSON: Cityscapes' 19 evaluation classes (label
    ids, as ``createPanopticImgs`` lists them) or the 8 COCO classes of :data:`COCO_SUBSET_CATEGORIES`."""
    if _check_format(fmt) == "coco":
        return [dict(c, color=list(c["color"])) for c in COCO_SUBSET_CATEGORIES]
    return [
        {
            "id": c.id,
            "name": c.name,
            "color": list(c.color),
            "supercategory": _CITYSCAPES_SUPERCATEGORY[c.id],
            "isthing": int(c.isthing),
        }
        for c in CITYSCAPES_CATEGORIES
    ]


def _class_lut(fmt: str) -> np.ndarray:
    """Synthetic class id -> dataset category id (-1 where a synthetic id is unused)."""
    table = SYNTH_TO_DATASET[_check_format(fmt)]
    lut = np.full(max(SYNTH_CATEGORIES.ids) + 1, -1, np.int64)
    for cat in SYNTH_CATEGORIES:
        lut[cat.id] = table[cat.name]
    return lut


def remap_panoptic(panoptic: np.ndarray, fmt: str) -> np.ndarray:
    """A synthetic panoptic map (``class * 1000 + instance``, void -1) with its class ids
    replaced by the dataset's (a lookup table; instance numbers and void unchanged)."""
    pan = np.asarray(panoptic)
    if pan.ndim != 2 or not np.issubdtype(pan.dtype, np.integer):
        raise InputShapeError(f"panoptic: expected an (H, W) integer array, got shape {pan.shape} dtype {pan.dtype}")
    lut = _class_lut(fmt)
    p = pan.astype(np.int64)
    void = p == VOID_LABEL
    cls = np.where(void, 0, p // LABEL_DIVISOR)
    if np.any(~void & ((cls < 0) | (cls >= len(lut)))):
        classes = sorted(set(np.unique(cls[~void]).tolist()))
        raise InputShapeError(f"panoptic: classes {classes} are not all synthetic classes")
    out = np.where(void, VOID_LABEL, lut[cls] * LABEL_DIVISOR + p % LABEL_DIVISOR)
    return out.astype(np.int32)


def synth_seeds(split: str, n: int, seed: int | None = None) -> range:
    """The seeds a split of ``n`` scenes renders; errors name the CLI flag.

    ``val``: synth:val's ``SYNTH_VAL_SEED_BASE + i`` (``seed`` must be None: synth:val is
    frozen); ``train``: ``seed + i`` (default 0), all below ``SYNTH_TRAIN_SEED_MAX``.
    """
    if split not in SPLITS:
        raise ConfigError(f"--split: expected train or val, got {split!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--n: expected a number of images >= 1, got {n!r}")
    if split == "val":
        if seed is not None:
            raise ConfigError(
                f"--seed: --split val renders synth:val's fixed seeds {SYNTH_VAL_SEED_BASE}..; drop --seed (got {seed})"
            )
        if n > SYNTH_VAL_COUNT:
            raise ConfigError(f"--n: synth:val has {SYNTH_VAL_COUNT} scenes, got {n}")
        return range(SYNTH_VAL_SEED_BASE, SYNTH_VAL_SEED_BASE + n)
    first = 0 if seed is None else seed
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ConfigError(f"--seed: expected an integer >= 0, got {seed!r}")
    if first + n > SYNTH_TRAIN_SEED_MAX:
        raise ConfigError(
            f"--seed/--n: training seeds must stay below {SYNTH_TRAIN_SEED_MAX} (synth:val's start), "
            f"but --seed {first} --n {n} reaches {first + n - 1}; use --split val for synth:val"
        )
    return range(first, first + n)


def synth_layout_json(root: str | Path, fmt: str, split: str) -> Path:
    """The panoptic JSON of ``split`` in a layout rooted at ``root``."""
    root = Path(root)
    if _check_format(fmt) == "coco":
        return root / "annotations" / f"panoptic_{split}2017.json"
    return root / "gtFine" / f"cityscapes_panoptic_{split}.json"


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an image with OpenCV (format from the suffix) under a temporary name, then rename."""
    path = Path(path)
    with atomic_path(path, fsync=False) as tmp:  # bulk dataset images: rename only
        if not cv2.imwrite(str(tmp), image):
            raise FormatError(f"{path}: OpenCV could not write the image")


def write_synth_layout(
    out: str | Path,
    fmt: str,
    n: int,
    *,
    split: str = "train",
    size: tuple[int, int] = (512, 1024),
    seed: int = 0,
    show: Callable[..., Iterable[Any]] | None = None,
) -> Path:
    """Render ``n`` street scenes into the ``fmt`` ("cityscapes" or "coco") layout of the real
    dataset at ``out`` and return ``out``; see the module docstring for paths, ids and seeds.

    ``split="val"`` writes synth:val's seeds (``seed`` must stay 0); ``split="train"`` writes
    seeds ``seed .. seed + n - 1`` (below ``SYNTH_TRAIN_SEED_MAX``). ``size`` is (H, W).
    ``show`` wraps the loop for progress (e.g. :func:`edgeps.progress.progress`).
    Raises ConfigError (naming the CLI flag) for a bad format, split, count or seed.
    """
    _check_format(fmt)
    seeds = synth_seeds(split, n, None if split == "val" and seed == 0 else seed)
    h, w = (int(v) for v in size)
    root = Path(out)
    json_path = synth_layout_json(root, fmt, split)
    json_path.unlink(missing_ok=True)  # no stale index while the files change under it
    loop: Iterable[int] = seeds if show is None else show(seeds, total=len(seeds), desc=f"rendering {fmt} {split}")
    if fmt == "cityscapes":
        _write_cityscapes(root, json_path, split, SYNTH_VAL_SEED_BASE if split == "val" else 0, loop, (h, w))
    else:
        _write_coco(root, json_path, split, loop, (h, w))
    return root


def _write_coco(root: Path, json_path: Path, split: str, seeds: Iterable[int], size: tuple[int, int]) -> None:
    categories = Categories.from_list(COCO_SUBSET_CATEGORIES, where="COCO_SUBSET_CATEGORIES")
    png_dir = json_path.with_suffix("")
    images, annotations = [], []
    for seed in seeds:
        s = render_scene(seed, size)
        name = f"{seed:012d}"
        write_image(root / f"{split}2017" / f"{name}.jpg", s.image)
        ids, infos = panoptic_to_coco(remap_panoptic(s.panoptic, "coco"), categories)
        write_id_png(png_dir / f"{name}.png", ids)
        images.append({"id": seed, "file_name": f"{name}.jpg", "height": size[0], "width": size[1]})
        annotations.append({"image_id": seed, "file_name": f"{name}.png", "segments_info": infos})
    info = {"description": f"edgeps synthetic street scenes, {split} (generator version {GENERATOR_VERSION})"}
    categories_json = dataset_categories("coco")
    write_json(json_path, {"info": info, "images": images, "annotations": annotations, "categories": categories_json})


def _write_cityscapes(
    root: Path, json_path: Path, split: str, base: int, seeds: Iterable[int], size: tuple[int, int]
) -> None:
    """``base``: the split's first seed (0 for train), so ``seq = seed - base``."""
    png_dir = json_path.with_suffix("")
    images, annotations = [], []
    for seed in seeds:
        s = render_scene(seed, size)
        city = CITYSCAPES_CITY[split]
        stem = f"{city}_{seed - base:06d}_{CITYSCAPES_FRAME:06d}"
        write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", s.image)
        pan = remap_panoptic(s.panoptic, "cityscapes")
        instance_ids = panoptic_to_instance_ids(pan, CITYSCAPES_CATEGORIES)
        gt = root / "gtFine" / split / city
        write_instance_ids_png(gt / f"{stem}_gtFine_instanceIds.png", instance_ids)
        write_image(gt / f"{stem}_gtFine_labelIds.png", np.where(pan < 0, 0, pan // LABEL_DIVISOR).astype(np.uint8))
        write_id_png(png_dir / f"{stem}_gtFine_panoptic.png", instance_ids)
        # createPanopticImgs names the image "{stem}_gtFine_leftImg8bit.png" (its string replace keeps
        # "_gtFine"), so the real Cityscapes JSONs do too; readers build the path from the image id.
        images.append({"id": stem, "width": size[1], "height": size[0], "file_name": f"{stem}_gtFine_leftImg8bit.png"})
        annotations.append(
            {
                "image_id": stem,
                "file_name": f"{stem}_gtFine_panoptic.png",
                "segments_info": _cityscapes_segments(pan, instance_ids, CITYSCAPES_CATEGORIES),
            }
        )
    data = {"images": images, "annotations": annotations, "categories": dataset_categories("cityscapes")}
    # As createPanopticImgs writes it: json.dump(d, f, sort_keys=True, indent=4).
    atomic_write_text(json_path, json.dumps(data, sort_keys=True, indent=4))


def _cityscapes_segments(pan: np.ndarray, instance_ids: np.ndarray, categories: Categories) -> list[dict[str, Any]]:
    """segments_info as createPanopticImgs gives it: the segments of ``panoptic_to_coco``, each
    renamed to its instanceIds value (the Cityscapes segment id), in ascending id order."""
    ids, infos = panoptic_to_coco(pan, categories)
    # Each edgeps segment id must meet exactly one instanceIds value, and the other way round.
    keys = np.unique(ids.astype(np.int64).ravel() * 65536 + instance_ids.astype(np.int64).ravel())
    ours, theirs = keys // 65536, keys % 65536
    keep = ours > 0
    ours, theirs = ours[keep], theirs[keep]
    if len(np.unique(ours)) != len(ours) or len(np.unique(theirs)) != len(theirs) or np.any(theirs == 0):
        raise FormatError("panoptic map: its segments do not map one to one onto Cityscapes instanceIds")
    rename = dict(zip(ours.tolist(), theirs.tolist(), strict=True))
    segments = [
        {
            "id": rename[seg["id"]],
            "category_id": int(seg["category_id"]),
            "area": int(seg["area"]),
            "bbox": [int(v) for v in seg["bbox"]],
            "iscrowd": int(seg["iscrowd"]),
        }
        for seg in infos
    ]
    return sorted(segments, key=lambda seg: seg["id"])
