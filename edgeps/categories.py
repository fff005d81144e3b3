"""Category sets: id, name, isthing, colour, and the mapping to contiguous train ids.

One ``Categories`` object is passed around everywhere (data, model heads, post-processing,
metrics, manifests), so the definition of which classes are things lives in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgeps.errors import CategoryError, DataNotFoundError, FormatError

# Category ids index lookup tables (colours, train ids) and, times label_divisor (1000), must
# keep panoptic ids inside int32: 65535 leaves room and covers every dataset in use.
MAX_CATEGORY_ID = 65535


@dataclass(frozen=True)
class Category:
    """One class. ``id`` is the id this set uses (a train id in a model's set); ``dataset_id``
    is the class's id in its dataset (Cityscapes label id, COCO category id) when the set was
    renumbered, else None (the id is the dataset's own)."""

    id: int
    name: str
    isthing: bool
    color: tuple[int, int, int]
    dataset_id: int | None = None

    @property
    def source_id(self) -> int:
        """The dataset's id of this class (``id`` when the set was never renumbered)."""
        return self.id if self.dataset_id is None else self.dataset_id

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "name": self.name, "isthing": int(self.isthing), "color": list(self.color)}
        if self.dataset_id is not None:
            d["dataset_id"] = self.dataset_id
        return d


def _parse_category(raw: Any, where: str) -> Category:
    if not isinstance(raw, Mapping):
        raise CategoryError(f"{where}: expected a mapping with id, name, isthing, color; got {type(raw).__name__}")
    for key in ("id", "name", "isthing"):
        if key not in raw:
            raise CategoryError(f"{where}: missing field '{key}'")
    cid = raw["id"]
    if isinstance(cid, bool) or not isinstance(cid, (int, np.integer)) or not 0 <= cid <= MAX_CATEGORY_ID:
        raise CategoryError(f"{where}: field 'id' must be an integer 0..{MAX_CATEGORY_ID}, got {cid!r}")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise CategoryError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
    isthing = raw["isthing"]
    if isinstance(isthing, bool):
        thing = isthing
    elif isinstance(isthing, (int, np.integer)) and isthing in (0, 1):
        thing = bool(isthing)
    else:
        raise CategoryError(f"{where}: field 'isthing' must be 0/1 or true/false, got {isthing!r}")
    color = raw.get("color")
    if color is None:
        color = _default_color(int(cid))
    if (
        not isinstance(color, Sequence)
        or isinstance(color, str)
        or len(color) != 3
        or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    ):
        raise CategoryError(f"{where}: field 'color' must be three integers 0..255 (R, G, B), got {color!r}")
    did = raw.get("dataset_id")
    if did is not None and (
        isinstance(did, bool) or not isinstance(did, (int, np.integer)) or not 0 <= did <= MAX_CATEGORY_ID
    ):
        raise CategoryError(f"{where}: field 'dataset_id' must be an integer 0..{MAX_CATEGORY_ID}, got {did!r}")
    return Category(
        int(cid), name, thing, (int(color[0]), int(color[1]), int(color[2])), None if did is None else int(did)
    )


def _default_color(cid: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(cid * 7919 + 13)
    r, g, b = (int(v) for v in rng.integers(40, 256, size=3))
    return (r, g, b)


@dataclass(frozen=True)
class Categories:
    """An ordered, validated set of categories.

    The order is the train-id order: ``train_id`` i is ``categories[i]``. Colours are RGB.
    """

    items: tuple[Category, ...]
    _by_id: dict[int, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.items:
            raise CategoryError("a category set needs at least one category")
        by_id: dict[int, Category] = {}
        names: set[str] = set()
        for cat in self.items:
            if cat.id in by_id:
                raise CategoryError(f"duplicate category id {cat.id} ('{by_id[cat.id].name}' and '{cat.name}')")
            if cat.name in names:
                raise CategoryError(f"duplicate category name '{cat.name}'")
            by_id[cat.id] = cat
            names.add(cat.name)
        object.__setattr__(self, "_by_id", by_id)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_list(cls, raw: Iterable[Any], where: str = "categories") -> Categories:
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
            raise CategoryError(f"{where}: expected a list of categories, got {type(raw).__name__}")
        items = tuple(_parse_category(item, f"{where}[{i}]") for i, item in enumerate(raw))
        try:
            return cls(items)
        except CategoryError as exc:  # duplicates / empty set: say which file or field
            raise CategoryError(f"{where}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> Categories:
        """Read categories from YAML (a list, or a mapping with a ``categories`` key) or COCO JSON."""
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"category file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path}: cannot parse: {exc}") from exc
        if isinstance(raw, Mapping):
            if "categories" not in raw:
                raise CategoryError(f"{path}: expected a list or a mapping with 'categories'")
            raw = raw["categories"]
        return cls.from_list(raw, where=str(path))

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.items]

    def to_yaml(self, path: str | Path) -> None:
        from edgeps.atomic import atomic_write_text

        atomic_write_text(path, yaml.safe_dump({"categories": self.to_list()}, sort_keys=False))

    # -- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Category]:
        return iter(self.items)

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_id

    def __getitem__(self, cid: int) -> Category:
        try:
            return self._by_id[int(cid)]
        except KeyError:
            raise CategoryError(f"unknown category id {cid}") from None

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.items]

    @property
    def thing_ids(self) -> list[int]:
        return [c.id for c in self.items if c.isthing]

    @property
    def stuff_ids(self) -> list[int]:
        return [c.id for c in self.items if not c.isthing]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.items]

    @property
    def dataset_ids(self) -> list[int]:
        """Each class's dataset id, in order (``source_id``)."""
        return [c.source_id for c in self.items]

    def with_train_ids(self) -> Categories:
        """The same classes renumbered 0..N-1 in order (the ids a network predicts); each keeps
        its dataset id in ``dataset_id`` (the id it had, or the dataset id it already carried)."""
        return Categories(tuple(Category(i, c.name, c.isthing, c.color, c.source_id) for i, c in enumerate(self.items)))

    def with_dataset_ids(self) -> Categories:
        """The same classes under their dataset ids (what files read by other tools carry)."""
        return Categories(tuple(Category(c.source_id, c.name, c.isthing, c.color) for c in self.items))

    def dataset_id_lut(self) -> np.ndarray:
        """A lookup table: ``lut[id] = dataset id`` for the ids of this set (-1 elsewhere)."""
        lut = np.full(max(self.ids) + 1, -1, dtype=np.int64)
        for c in self.items:
            lut[c.id] = c.source_id
        return lut

    def to_dataset_panoptic(self, panoptic: np.ndarray, label_divisor: int, void_label: int = -1) -> np.ndarray:
        """A panoptic map (or array of panoptic ids) in this set's ids -> the same map with each
        class part replaced by its dataset id (instance numbers and void unchanged), int64.

        Raises CategoryError for a class not in the set."""
        pan = np.asarray(panoptic, dtype=np.int64)
        void = pan == void_label
        cls = np.where(void, 0, pan // label_divisor)
        lut = self.dataset_id_lut()
        if cls.size and (cls.max() >= len(lut) or cls.min() < 0 or (lut[cls][~void] < 0).any()):
            bad = sorted(set(np.unique(cls[~void]).tolist()) - set(self.ids))
            raise CategoryError(f"panoptic map: class ids {bad[:8]} are not in the category set")
        return np.where(void, void_label, lut[np.clip(cls, 0, len(lut) - 1)] * label_divisor + pan % label_divisor)

    def id_to_train_id(self, ignore: int = 255) -> np.ndarray:
        """A lookup table: ``lut[category_id] = train_id`` (``ignore`` for ids not in the set)."""
        lut = np.full(max(self.ids) + 1, ignore, dtype=np.int32)
        for i, c in enumerate(self.items):
            lut[c.id] = i
        return lut

    def color_table(self) -> np.ndarray:
        """(max_id + 1, 3) uint8 RGB colours indexed by category id."""
        table = np.zeros((max(self.ids) + 1, 3), dtype=np.uint8)
        for c in self.items:
            table[c.id] = c.color
        return table
