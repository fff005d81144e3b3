"""Map-style datasets (numpy/OpenCV only) that training, evaluation and the CLI share.

Every dataset has ``categories`` (contiguous train ids 0..N-1, each keeping its dataset id in
``Category.dataset_id``), ``len()`` and ``[i] -> Sample`` with the image as stored (BGR uint8,
no resizing) and the panoptic map in train-id encoding (``train_id * 1000 + instance``, void
-1). Construction reads the annotation JSON and lists the folders once, so a missing PNG or
image is an error when the dataset is opened, not mid-training; images and PNGs are decoded on
access, so a large set never sits in memory.

Data specs (configs, ``edgeps train/eval/export/bench``): ``SOURCE`` or ``SOURCE:SPLIT[:N]``.

- ``synth:train[:N]`` / ``synth:val[:N]``: the built-in street scenes (:mod:`edgeps.data.street`).
- ``synth:dev[:N]``: held-out street scenes for choices made while developing (which checkpoint
  is ``best.pt``, variants, post-processing settings): ``SYNTH_DEV_COUNT`` scenes from seed
  ``SYNTH_DEV_SEED_BASE``, rendered like synth:val (``SYNTH_VAL_SIZE``, default things per
  scene). Disjoint from synth:val and from every seed ``synth:train`` can draw, so synth:val
  stays for reporting only.
- ``DIR[:SPLIT[:N]]``: a Cityscapes root (has ``gtFine/``; splits from
  ``gtFine/cityscapes_panoptic_{split}.json``) or a COCO-panoptic root, in the official layout
  (``annotations/panoptic_{split}2017.json`` + ``annotations/panoptic_{split}2017/`` +
  ``{split}2017/`` images: the split picks all three) or flat (one ``NAME.json`` + ``NAME/``
  PNGs + ``images/`` or ``input_images/``).
- Without a split, training opens ``train`` and evaluation, calibration and parity open
  ``val`` (``open_dataset(..., default_split=...)``); a flat folder with one JSON is its own
  only split. ``N`` keeps the first N images.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeps import LABEL_DIVISOR
from edgeps.categories import Categories
from edgeps.data.street import (
    SYNTH_VAL_COUNT,
    SYNTH_VAL_SEED_BASE,
    SYNTH_VAL_SIZE,
    render_scene,
)
from edgeps.data.synthetic import SYNTH_CATEGORIES
from edgeps.errors import ConfigError, DataNotFoundError, EdgepsError, FormatError
from edgeps.io.cityscapes import load_cityscapes_panoptic
from edgeps.io.coco_panoptic import (
    CocoPanopticSet,
    coco_to_panoptic,
    load_coco_panoptic,
    read_id_png,
)
from edgeps.io.images import read_bgr

__all__ = [
    "SYNTH_DEV_COUNT",
    "SYNTH_DEV_SEED_BASE",
    "CityscapesPanopticDataset",
    "CocoPanopticDataset",
    "DataSpec",
    "Dataset",
    "Sample",
    "SynthDataset",
    "is_dataset_spec",
    "open_dataset",
    "parse_data_spec",
]

SYNTH_DEV_SEED_BASE = 999_000
"""First seed of synth:dev; ``synth:train`` stays below it (seeds ``0 .. SYNTH_DEV_SEED_BASE - 1``)."""
SYNTH_DEV_COUNT = 200
"""Scenes in synth:dev (seeds ``SYNTH_DEV_SEED_BASE + i``); seeds after them up to
``edgeps.data.street.SYNTH_TRAIN_SEED_MAX`` are reserved (neither training nor dev)."""
SYNTH_SPLITS = ("train", "dev", "val")
"""The splits of the built-in synthetic data."""

FLAT_IMAGE_DIRS = ("images", "input_images")
"""Image folders looked for beside a flat COCO panoptic JSON that names no split folder."""


@dataclass
class Sample:
    """One image: ``image`` (H, W, 3) uint8 BGR, ``panoptic`` (H, W) int32 in train ids, a
    ``name``; ``occlusion`` is known only for synthetic scenes (None elsewhere)."""

    image: np.ndarray
    panoptic: np.ndarray
    name: str
    occlusion: bool | None = None


def _index(i: int, n: int) -> int:
    j = int(i) + n if int(i) < 0 else int(i)
    if not 0 <= j < n:
        raise IndexError(f"index {i} out of range for a dataset of {n} images")
    return j


class SynthDataset:
    """Street scenes rendered on access.

    - ``split="val"``: synth:val (seeds ``SYNTH_VAL_SEED_BASE + i``, the first ``n`` of its
      ``SYNTH_VAL_COUNT``), for reported scores only.
    - ``split="dev"``: synth:dev (seeds ``SYNTH_DEV_SEED_BASE + i``, the first ``n`` of its
      ``SYNTH_DEV_COUNT``), for choosing checkpoints, variants and settings.
    - ``split="train"``: seeds ``seed_offset + i``, all below ``SYNTH_DEV_SEED_BASE``, so
      training never sees a dev or val scene.

    ``seed_offset`` applies to ``train`` only (ConfigError otherwise). ``size`` other than
    ``SYNTH_VAL_SIZE`` renders the same scenes at another resolution; scores on that are not
    synth:val (or synth:dev) scores. ``n_things`` as in :func:`edgeps.data.street.render_scene`.
    """

    def __init__(
        self,
        split: str = "train",
        n: int | None = None,
        size: tuple[int, int] = SYNTH_VAL_SIZE,
        seed_offset: int = 0,
        *,
        n_things: tuple[int, int] | None = None,
    ) -> None:
        if split in ("val", "dev"):
            if seed_offset:
                raise ConfigError(
                    f"seed_offset applies to split 'train' only (synth:{split} is frozen), got {seed_offset}"
                )
            frozen = {"val": (SYNTH_VAL_COUNT, SYNTH_VAL_SEED_BASE), "dev": (SYNTH_DEV_COUNT, SYNTH_DEV_SEED_BASE)}
            count, first = frozen[split]
            n = count if n is None else n
            if not 1 <= n <= count:
                raise ConfigError(f"synth:{split} has {count} images; n must be 1..{count}, got {n}")
        elif split == "train":
            if not 0 <= seed_offset < SYNTH_DEV_SEED_BASE:
                raise ConfigError(f"seed_offset must be in [0, {SYNTH_DEV_SEED_BASE}), got {seed_offset}")
            n = SYNTH_DEV_SEED_BASE - seed_offset if n is None else n
            if not 1 <= n <= SYNTH_DEV_SEED_BASE - seed_offset:
                raise ConfigError(
                    f"synth:train: n must be 1..{SYNTH_DEV_SEED_BASE - seed_offset} (training seeds stay below "
                    f"{SYNTH_DEV_SEED_BASE}, synth:dev's first), got {n}"
                )
            first = seed_offset
        else:
            raise ConfigError(f"synth split must be one of {', '.join(SYNTH_SPLITS)}, got {split!r}")
        self.split = split
        self.size = (int(size[0]), int(size[1]))
        self.n_things = n_things
        self.seeds = range(first, first + n)
        self.categories: Categories = SYNTH_CATEGORIES.with_train_ids()

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> Sample:
        seed = self.seeds[_index(i, len(self))]
        s = render_scene(seed, self.size, n_things=self.n_things)
        return Sample(s.image, s.panoptic, f"synth_{seed:07d}", s.occlusion)


class _PanopticSetDataset:
    """A COCO-panoptic annotation set read lazily, category ids mapped to train ids.

    ``n`` keeps the first n annotations. Every kept annotation's PNG and image are checked to
    exist when the dataset is made (one listing per folder). Subclasses say where an
    annotation's image is (``_ann_image_path``). Picklable, so loader worker processes get it."""

    def __init__(self, cset: CocoPanopticSet, categories: Categories | None, n: int | None = None) -> None:
        self._set = cset
        annotations = cset.annotations
        if not annotations:
            raise DataNotFoundError(f"{cset.json_path}: holds no annotations")
        if n is not None:
            if n > len(annotations):
                raise ConfigError(f"asked for {n} images, {cset.json_path} has {len(annotations)}")
            annotations = annotations[:n]
        self._annotations = annotations
        source = categories if categories is not None else cset.categories
        self.categories: Categories = source.with_train_ids()
        # Dataset category ids -> train ids; ids outside ``source`` become void.
        self._category_map = {c.source_id: i for i, c in enumerate(source)}
        self._thing_ids = self.categories.thing_ids
        _check_files(cset.json_path, "panoptic PNG", [cset.png_path(a) for a in annotations])
        _check_files(cset.json_path, "image", [self._ann_image_path(a) for a in annotations])

    def _ann_image_path(self, ann: Mapping) -> Path:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._annotations)

    def image_path(self, i: int) -> Path:
        return self._ann_image_path(self._annotations[_index(i, len(self))])

    def __getitem__(self, i: int) -> Sample:
        ann = self._annotations[_index(i, len(self))]
        path = self._ann_image_path(ann)
        if not path.is_file():
            raise DataNotFoundError(f"image not found: {path} (for annotation {ann['file_name']})")
        image = read_bgr(path)
        if image is None:
            raise FormatError(f"{path}: not a readable image")
        ids = read_id_png(self._set.png_path(ann))
        if ids.shape != image.shape[:2]:
            raise FormatError(
                f"{self._set.png_path(ann)}: size {ids.shape} differs from its image {path} {image.shape[:2]}"
            )
        pan = coco_to_panoptic(
            ids, ann["segments_info"], LABEL_DIVISOR, category_map=self._category_map, thing_ids=self._thing_ids
        )
        return Sample(image, pan, Path(ann["file_name"]).stem)


def _check_files(json_path: Path, kind: str, paths: list[Path]) -> None:
    """Every path exists: one directory listing per folder, not one open per file. The error
    names the JSON, how many are missing and the first missing path."""
    listing: dict[Path, set[str]] = {}
    missing = []
    for p in paths:
        folder = p.parent
        if folder not in listing:
            try:
                listing[folder] = set(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                listing[folder] = set()
            if not listing[folder] and kind == "image" and folder.is_dir():
                raise DataNotFoundError(f"{json_path}: image folder {folder} is empty")
        if p.name not in listing[folder]:
            missing.append(p)
    if missing:
        raise DataNotFoundError(
            f"{json_path}: {len(missing)} of {len(paths)} annotations have no {kind} (first missing: {missing[0]})"
        )


def _split_key(name: str) -> str:
    """``panoptic_train2017`` -> ``train`` (prefix and a trailing year dropped)."""
    return re.sub(r"\d{4}$", "", name.removeprefix("panoptic_"))


def _coco_jsons(root: Path) -> list[tuple[Path, Path]]:
    """(JSON, PNG folder) pairs of a COCO-panoptic root: ``NAME.json`` with a ``NAME/`` folder
    beside it, in ``root`` or ``root/annotations``."""
    return [
        (j, j.with_suffix(""))
        for d in (root, root / "annotations")
        if d.is_dir()
        for j in sorted(d.glob("*.json"))
        if j.with_suffix("").is_dir()
    ]


def find_coco_split(root: Path, split: str | None) -> tuple[Path, Path, Path, str | None]:
    """The panoptic JSON, PNG folder and image folder of ``split`` in a COCO-panoptic root, and
    the split's name (None for a flat folder with one JSON and no split asked).

    ``split`` ``train`` matches ``panoptic_train2017.json`` and ``panoptic_train.json`` alike.
    Errors name the root and the splits found."""
    found = _coco_jsons(root)
    if not found:
        raise DataNotFoundError(
            f"{root}: no COCO panoptic annotations (expected annotations/panoptic_SPLIT.json + "
            "annotations/panoptic_SPLIT/, "
            "or NAME.json + NAME/)"
        )
    names = [j.stem for j, _ in found]
    if split is None:
        if len(found) > 1:
            raise ConfigError(f"{root}: several panoptic JSONs ({', '.join(names)}); name a split: {root}:SPLIT")
        (json_path, png_dir), name = found[0], None
    else:
        hits = [(j, d) for j, d in found if split in (j.stem, j.stem.removeprefix("panoptic_"), _split_key(j.stem))]
        if len(hits) != 1:
            splits = ", ".join(sorted({_split_key(n) for n in names}))
            what = "is ambiguous" if hits else "is not on disk"
            raise DataNotFoundError(f"{root}: split '{split}' {what} (splits found: {splits})")
        (json_path, png_dir), name = hits[0], split
    stem = json_path.stem.removeprefix("panoptic_")
    candidates = ([root / stem, root / "images" / stem] if stem != json_path.stem else []) + [
        root / d for d in FLAT_IMAGE_DIRS
    ]
    image_dir = next((d for d in candidates if d.is_dir()), None)
    if image_dir is None:
        raise DataNotFoundError(
            f"{root}: no image folder for {json_path.name} (looked for {', '.join(str(c) for c in candidates)})"
        )
    return json_path, png_dir, image_dir, name


class CocoPanopticDataset(_PanopticSetDataset):
    """A COCO-panoptic root: the official layout (``annotations/panoptic_{split}2017.json``,
    ``annotations/panoptic_{split}2017/`` PNGs, ``{split}2017/`` images; ``split`` picks them),
    the flat one (``NAME.json`` + ``NAME/`` + ``images/`` or ``input_images/``; ``edgeps data
    synth`` writes ``panoptic.json``, ``panoptic/``, ``images/``), or explicit paths.

    An image is found by the JSON's ``images`` entry (``file_name``) for the annotation's
    ``image_id``, else by the annotation's PNG name with ``.jpg`` (then ``.png``).
    ``categories`` picks and orders the classes by dataset id (train ids follow its order);
    others become void. By default the JSON's own categories are used. ``n``: the first n.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        categories: Categories | None = None,
        n: int | None = None,
        json_path: str | Path | None = None,
        png_dir: str | Path | None = None,
        image_dir: str | Path | None = None,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataNotFoundError(f"COCO panoptic folder not found: {root}")
        self.split = split
        if json_path is None or png_dir is None or image_dir is None:
            found_json, found_png, found_images, self.split = find_coco_split(root, split)
            json_path, png_dir, image_dir = json_path or found_json, png_dir or found_png, image_dir or found_images
        self.root, self.image_dir = root, Path(image_dir)
        cset = load_coco_panoptic(json_path, png_dir)
        self._infos = {img.get("id"): img for img in cset.data.get("images", []) if isinstance(img, dict)}
        self._listing = set(os.listdir(self.image_dir))
        super().__init__(cset, categories, n)

    def _ann_image_path(self, ann: Mapping) -> Path:
        info = self._infos.get(ann["image_id"])
        if info is not None and "file_name" in info:
            return self.image_dir / info["file_name"]
        stem = Path(ann["file_name"]).stem
        png_only = f"{stem}.jpg" not in self._listing and f"{stem}.png" in self._listing
        return self.image_dir / (f"{stem}.png" if png_only else f"{stem}.jpg")

    def __getitem__(self, i: int) -> Sample:
        sample = super().__getitem__(i)
        # ``edgeps data synth`` records each scene's occlusion flag in its images entry.
        info = self._infos.get(self._annotations[_index(i, len(self))]["image_id"]) or {}
        if isinstance(info.get("occlusion"), bool):
            sample.occlusion = info["occlusion"]
        return sample


def cityscapes_splits(root: Path) -> list[str]:
    """The splits of a Cityscapes root that have panoptic annotations (``createPanopticImgs``)."""
    gt = Path(root) / "gtFine"
    return sorted(
        j.stem.removeprefix("cityscapes_panoptic_")
        for j in gt.glob("cityscapes_panoptic_*.json")
        if j.with_suffix("").is_dir()
    )


class CityscapesPanopticDataset(_PanopticSetDataset):
    """Cityscapes panoptic: ``gtFine/cityscapes_panoptic_{split}.json`` + PNGs (made by
    cityscapesscripts' createPanopticImgs) and ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``.

    Classes are the JSON's (the 19 evaluation classes, label ids or train ids alike), in
    train-id order, each keeping its label id as dataset id; ``categories`` overrides them.
    ``n``: the first n images.
    """

    def __init__(
        self, root: str | Path, split: str = "val", *, categories: Categories | None = None, n: int | None = None
    ) -> None:
        self.root, self.split = Path(root), split
        found = cityscapes_splits(self.root)
        if split not in found:
            hint = "(create it with cityscapesscripts' createPanopticImgs)"
            raise DataNotFoundError(
                f"{self.root}: no Cityscapes split '{split}' (splits found: {', '.join(found) or 'none'}) {hint}"
            )
        self._images = self.root / "leftImg8bit" / split
        super().__init__(load_cityscapes_panoptic(self.root, split), categories, n)

    def _ann_image_path(self, ann: Mapping) -> Path:
        image_id = str(ann["image_id"])
        return self._images / image_id.split("_")[0] / f"{image_id}_leftImg8bit.png"


Dataset = SynthDataset | CocoPanopticDataset | CityscapesPanopticDataset

SPEC_HELP = (
    "a data spec is synth:train[:N], synth:dev[:N], synth:val[:N], "
    "or DIR[:SPLIT[:N]] for a Cityscapes or COCO-panoptic root "
    "(no split: train for training, val for evaluation, calibration and parity)"
)


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``source`` (``synth`` or a folder path), ``split`` (None when the
    spec names none), ``n`` (None: all images)."""

    source: str
    split: str | None = None
    n: int | None = None

    @property
    def is_synth(self) -> bool:
        return self.source == "synth"

    def with_split(self, default_split: str) -> DataSpec:
        return self if self.split is not None else DataSpec(self.source, default_split, self.n)

    def __str__(self) -> str:
        return ":".join([self.source] + ([self.split] if self.split else []) + ([str(self.n)] if self.n else []))


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"the image count must be a positive integer, got {text!r}")
    return int(text)


def parse_data_spec(spec: str) -> DataSpec:
    """``synth:SPLIT[:N]``, ``DIR`` or ``DIR:SPLIT[:N]`` -> :class:`DataSpec`. A folder that
    exists under the whole text (a path holding ``:``) is taken as it is. Errors name the spec."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"data spec {spec!r}: {SPEC_HELP}")
    text = spec.strip()
    try:
        if text == "synth" or text.startswith("synth:"):
            parts = text.split(":")
            if len(parts) > 3 or (len(parts) > 1 and parts[1] not in SYNTH_SPLITS):
                raise ConfigError(f"synthetic splits are {', '.join(SYNTH_SPLITS)}; {SPEC_HELP}")
            return DataSpec(
                "synth", parts[1] if len(parts) > 1 else None, _count(parts[2]) if len(parts) == 3 else None
            )
        if ":" not in text or Path(text).expanduser().exists():
            return DataSpec(text)
        head, _, last = text.rpartition(":")
        if last.isdigit() and ":" in head:
            head, _, split = head.rpartition(":")
            n: int | None = _count(last)
        else:
            split, n = last, None
        if not head or not re.fullmatch(r"[A-Za-z0-9_.\-]+", split):
            raise ConfigError(f"split {split!r} is not a split name; {SPEC_HELP}")
        return DataSpec(head, split, n)
    except EdgepsError as exc:
        raise type(exc)(f"data spec {spec!r}: {exc}") from exc


def is_dataset_spec(spec: str) -> bool:
    """Does ``spec`` name a dataset (synthetic, or a Cityscapes / COCO-panoptic root with an
    optional split), rather than a plain folder of images, a glob or a video?"""
    try:
        parsed = parse_data_spec(spec)
    except EdgepsError:
        return False
    if parsed.is_synth:
        return True
    root = Path(parsed.source).expanduser()
    return root.is_dir() and ((root / "gtFine").is_dir() or bool(_coco_jsons(root)))


def open_dataset(spec: str, *, default_split: str = "val", **kw: Any) -> Dataset:
    """The dataset a data spec names (see the module docstring); ``default_split`` is used
    when the spec names no split (``train`` for training, ``val`` elsewhere). Keyword
    arguments go to its class (``size`` for synthetic data, ``categories``). Errors name the
    spec."""
    parsed = parse_data_spec(spec)
    try:
        if parsed.is_synth:
            split = parsed.split or default_split
            return SynthDataset(split, **({"n": parsed.n} if parsed.n else {}), **kw)
        path = Path(parsed.source).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"no such folder {path} ({SPEC_HELP})")
        if not path.is_dir():
            raise ConfigError(f"{path} is a file; {SPEC_HELP}")
        if (path / "gtFine").is_dir():
            return CityscapesPanopticDataset(path, parsed.split or default_split, n=parsed.n, **kw)
        if parsed.split is None and len(_coco_jsons(path)) > 1:
            return CocoPanopticDataset(path, default_split, n=parsed.n, **kw)
        return CocoPanopticDataset(path, parsed.split, n=parsed.n, **kw)
    except EdgepsError as exc:
        raise type(exc)(f"data spec {spec!r}: {exc}") from exc
