"""Map-style datasets (numpy/OpenCV only) that training, evaluation and the CLI share.

Every dataset has ``categories`` (contiguous train ids 0..N-1), ``len()`` and ``[i] -> Sample``
with the image as stored (BGR uint8, no resizing) and the panoptic map in train-id encoding
(``train_id * 1000 + instance``, void -1). Construction reads only the annotation JSON;
images and PNGs are read on access, so a large set never sits in memory.

``open_dataset(spec)`` turns the data strings of configs and the CLI into a dataset:
``synth:val`` (the frozen held-out set, see :mod:`edgeps.data.street`), ``synth:val:N``,
``synth:train`` / ``synth:train:N``, or a folder (COCO panoptic; Cityscapes when it has
``gtFine/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR
from edgeps.categories import Categories
from edgeps.data.street import (
    SYNTH_TRAIN_SEED_MAX,
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

__all__ = ["CityscapesPanopticDataset", "CocoPanopticDataset", "Dataset", "Sample", "SynthDataset", "open_dataset"]

IMAGE_DIR_NAMES = ("images", "input_images", "val2017", "train2017")
"""Image folders looked for beside a COCO panoptic JSON, in this order."""


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
    """Street scenes rendered on access: ``split="val"`` is synth:val (seeds
    ``SYNTH_VAL_SEED_BASE + i``, the first ``n`` of its 200); ``split="train"`` uses seeds
    ``seed_offset + i``, all below ``SYNTH_TRAIN_SEED_MAX`` so training never sees synth:val.

    ``size`` other than ``SYNTH_VAL_SIZE`` renders the same scenes at another resolution;
    scores on that are not synth:val scores.
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
        if split == "val":
            if seed_offset:
                raise ConfigError(f"seed_offset applies to split 'train' only (synth:val is frozen), got {seed_offset}")
            n = SYNTH_VAL_COUNT if n is None else n
            if not 1 <= n <= SYNTH_VAL_COUNT:
                raise ConfigError(f"synth:val has {SYNTH_VAL_COUNT} images; n must be 1..{SYNTH_VAL_COUNT}, got {n}")
            first = SYNTH_VAL_SEED_BASE
        elif split == "train":
            if not 0 <= seed_offset < SYNTH_TRAIN_SEED_MAX:
                raise ConfigError(f"seed_offset must be in [0, {SYNTH_TRAIN_SEED_MAX}), got {seed_offset}")
            n = SYNTH_TRAIN_SEED_MAX - seed_offset if n is None else n
            if not 1 <= n <= SYNTH_TRAIN_SEED_MAX - seed_offset:
                raise ConfigError(
                    f"synth:train: n must be 1..{SYNTH_TRAIN_SEED_MAX - seed_offset} (training seeds stay below {SYNTH_TRAIN_SEED_MAX}), got {n}"
                )
            first = seed_offset
        else:
            raise ConfigError(f"synth split must be 'train' or 'val', got {split!r}")
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
    """A COCO-panoptic annotation set read lazily, category ids mapped to train ids."""

    def __init__(self, cset: CocoPanopticSet, categories: Categories | None, image_path: Callable[[Mapping], Path]) -> None:
        self._set = cset
        self._annotations = cset.annotations
        source = categories if categories is not None else cset.categories
        self.categories: Categories = source.with_train_ids()
        # Category ids of the data -> train ids; ids outside ``source`` become void.
        self._category_map = {c.id: i for i, c in enumerate(source)}
        self._thing_ids = self.categories.thing_ids
        self._image_path = image_path

    def __len__(self) -> int:
        return len(self._annotations)

    def image_path(self, i: int) -> Path:
        return self._image_path(self._annotations[_index(i, len(self))])

    def __getitem__(self, i: int) -> Sample:
        ann = self._annotations[_index(i, len(self))]
        path = self._image_path(ann)
        if not path.is_file():
            raise DataNotFoundError(f"image not found: {path} (for annotation {ann['file_name']})")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FormatError(f"{path}: not a readable image")
        ids = read_id_png(self._set.png_path(ann))
        if ids.shape != image.shape[:2]:
            raise FormatError(f"{self._set.png_path(ann)}: size {ids.shape} differs from its image {path} {image.shape[:2]}")
        pan = coco_to_panoptic(ids, ann["segments_info"], LABEL_DIVISOR, category_map=self._category_map, thing_ids=self._thing_ids)
        return Sample(image, pan, Path(ann["file_name"]).stem)


def _find_coco_json(root: Path) -> tuple[Path, Path]:
    """The panoptic JSON and PNG folder of a COCO-panoptic folder.

    ``panoptic.json`` + ``panoptic/`` (what ``edgeps data synth`` writes) wins; otherwise a
    ``NAME.json`` with a ``NAME/`` folder beside it, in ``root`` or ``root/annotations``.
    """
    if (root / "panoptic.json").is_file() and (root / "panoptic").is_dir():
        return root / "panoptic.json", root / "panoptic"
    found = [
        (j, j.with_suffix(""))
        for d in (root, root / "annotations")
        if d.is_dir()
        for j in sorted(d.glob("*.json"))
        if j.with_suffix("").is_dir()
    ]
    if len(found) > 1:
        found = [f for f in found if f[0].name.startswith("panoptic")] or found
    if not found:
        raise DataNotFoundError(
            f"{root}: no COCO panoptic annotations (expected panoptic.json + panoptic/, or NAME.json + NAME/)"
        )
    if len(found) > 1:
        raise ConfigError(f"{root}: several panoptic JSONs ({', '.join(str(j.name) for j, _ in found)}); keep one")
    return found[0]


class CocoPanopticDataset(_PanopticSetDataset):
    """A COCO-panoptic folder: the layout ``edgeps data synth`` writes (``panoptic.json``,
    ``panoptic/``, ``images/``) or the COCO one (``NAME.json`` + ``NAME/`` PNGs + an image
    folder such as ``input_images/`` or ``val2017/``).

    An image is found by the JSON's ``images`` entry (``file_name``) for the annotation's
    ``image_id``, else by the annotation's PNG name with ``.jpg`` (then ``.png``).
    ``categories`` picks and orders the classes (train ids); others become void. By default
    the JSON's own categories are used.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        categories: Categories | None = None,
        json_path: str | Path | None = None,
        png_dir: str | Path | None = None,
        image_dir: str | Path | None = None,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataNotFoundError(f"COCO panoptic folder not found: {root}")
        if json_path is None or png_dir is None:
            found_json, found_png = _find_coco_json(root)
            json_path, png_dir = json_path or found_json, png_dir or found_png
        if image_dir is None:
            image_dir = next((root / d for d in IMAGE_DIR_NAMES if (root / d).is_dir()), None)
            if image_dir is None:
                raise DataNotFoundError(f"{root}: no image folder (looked for {', '.join(IMAGE_DIR_NAMES)})")
        self.root, self.image_dir = root, Path(image_dir)
        cset = load_coco_panoptic(json_path, png_dir)
        infos = {img.get("id"): img for img in cset.data.get("images", []) if isinstance(img, dict)}
        self._infos = infos

        def image_path(ann: Mapping) -> Path:
            info = infos.get(ann["image_id"])
            if info is not None and "file_name" in info:
                return self.image_dir / info["file_name"]
            stem = Path(ann["file_name"]).stem
            jpg = self.image_dir / f"{stem}.jpg"
            return jpg if jpg.is_file() or not (self.image_dir / f"{stem}.png").is_file() else self.image_dir / f"{stem}.png"

        super().__init__(cset, categories, image_path)

    def __getitem__(self, i: int) -> Sample:
        sample = super().__getitem__(i)
        # ``edgeps data synth`` records each scene's occlusion flag in its images entry.
        info = self._infos.get(self._annotations[_index(i, len(self))]["image_id"]) or {}
        if isinstance(info.get("occlusion"), bool):
            sample.occlusion = info["occlusion"]
        return sample


class CityscapesPanopticDataset(_PanopticSetDataset):
    """Cityscapes panoptic: ``gtFine/cityscapes_panoptic_{split}.json`` + PNGs (made by
    cityscapesscripts' createPanopticImgs) and ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``.

    Classes are the JSON's (the 19 evaluation classes, label ids or train ids alike), in
    train-id order; ``categories`` overrides them.
    """

    def __init__(self, root: str | Path, split: str = "val", *, categories: Categories | None = None) -> None:
        self.root, self.split = Path(root), split
        cset = load_cityscapes_panoptic(self.root, split)
        images = self.root / "leftImg8bit" / split

        def image_path(ann: Mapping) -> Path:
            image_id = str(ann["image_id"])
            city = image_id.split("_")[0]
            return images / city / f"{image_id}_leftImg8bit.png"

        super().__init__(cset, categories, image_path)


Dataset = SynthDataset | CocoPanopticDataset | CityscapesPanopticDataset

_SPEC_HELP = "expected synth:val, synth:val:N, synth:train, synth:train:N, or a COCO-panoptic / Cityscapes folder"


def open_dataset(spec: str, **kw: Any) -> Dataset:
    """The dataset a data spec names; keyword arguments go to its class (e.g. ``size`` for
    synthetic data, ``split`` for Cityscapes). Errors name the spec."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"data spec {spec!r}: {_SPEC_HELP}")
    text = spec.strip()
    try:
        if text == "synth" or text.startswith("synth:"):
            parts = text.split(":")
            if len(parts) not in (2, 3) or parts[1] not in ("train", "val"):
                raise ConfigError(_SPEC_HELP)
            if len(parts) == 3:
                if not parts[2].isdigit() or int(parts[2]) < 1:
                    raise ConfigError(f"the image count must be a positive integer, got {parts[2]!r}")
                kw["n"] = int(parts[2])
            return SynthDataset(parts[1], **kw)
        path = Path(text).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"no such folder {path} ({_SPEC_HELP})")
        if not path.is_dir():
            raise ConfigError(f"{path} is a file; {_SPEC_HELP}")
        if (path / "gtFine").is_dir():
            return CityscapesPanopticDataset(path, **kw)
        return CocoPanopticDataset(path, **kw)
    except EdgepsError as exc:
        raise type(exc)(f"data spec {spec!r}: {exc}") from exc
