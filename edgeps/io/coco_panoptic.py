"""COCO panoptic format: a JSON of ``segments_info`` per image plus RGB-encoded PNGs.

Segment ids are ``R + 256 G + 256^2 B``; id 0 is void. Converting an edgeps panoptic map
(``class * label_divisor + instance``, void -1) to COCO uses ``segment id = panoptic id + 1``,
which keeps ids unique, non-zero and reversible for any class id, including 0.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeps import LABEL_DIVISOR, VOID_LABEL
from edgeps.atomic import atomic_path, atomic_write_text
from edgeps.categories import Categories
from edgeps.errors import ConfigError, DataNotFoundError, FormatError, InputShapeError
from edgeps.io.images import read_rgb
from edgeps.panoptic import compact_ids, id_to_rgb, rgb_to_id, segments_of


def read_id_png(path: str | Path) -> np.ndarray:
    """Read a COCO panoptic PNG as (H, W) uint32 segment ids."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"panoptic PNG not found: {path}")
    rgb = read_rgb(path)
    if rgb is None:
        raise FormatError(f"{path}: not a readable image")
    if sys.byteorder == "little":  # bytes R, G, B, A read as one uint32: R + 256 G + 256^2 B (+ A << 24, masked)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA).view(np.uint32)[..., 0] & np.uint32(0xFFFFFF)
    return rgb_to_id(rgb)


def write_id_png(path: str | Path, ids: np.ndarray) -> None:
    path = Path(path)
    with atomic_path(path, fsync=False) as tmp:  # bulk dataset images: rename only
        if not cv2.imwrite(str(tmp), id_to_rgb(ids)[..., ::-1]):
            raise FormatError(f"{path}: OpenCV could not write the PNG")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"JSON file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON: {exc}") from exc


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically: a killed process never leaves a half-written file."""
    atomic_write_text(path, json.dumps(data))


@dataclass
class CocoPanopticSet:
    """A COCO-panoptic annotation set: the parsed JSON and the folder of its PNGs."""

    json_path: Path
    png_dir: Path
    data: dict

    @property
    def categories(self) -> Categories:
        return Categories.from_list(self.data["categories"], where=f"{self.json_path}: categories")

    @property
    def annotations(self) -> list[dict]:
        return self.data["annotations"]

    def image_info(self, image_id: Any) -> dict | None:
        for img in self.data.get("images", []):
            if img.get("id") == image_id:
                return img
        return None

    def png_path(self, ann: Mapping) -> Path:
        return self.png_dir / ann["file_name"]


def load_coco_panoptic(json_path: str | Path, png_dir: str | Path, require_categories: bool = True) -> CocoPanopticSet:
    """Load and check the structure of a COCO panoptic JSON (errors name the file and field)."""
    json_path, png_dir = Path(json_path), Path(png_dir)
    data = read_json(json_path)
    if not isinstance(data, dict):
        raise FormatError(f"{json_path}: expected a JSON object at the top level")
    if not png_dir.is_dir():
        raise DataNotFoundError(f"panoptic PNG folder not found: {png_dir}")
    if "annotations" not in data or not isinstance(data["annotations"], list):
        raise FormatError(f"{json_path}: missing list field 'annotations'")
    if require_categories and not isinstance(data.get("categories"), list):
        raise FormatError(f"{json_path}: missing list field 'categories'")
    for i, ann in enumerate(data["annotations"]):
        where = f"{json_path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise FormatError(f"{where}: expected an object")
        for key in ("image_id", "file_name", "segments_info"):
            if key not in ann:
                raise FormatError(f"{where}: missing field '{key}'")
        for j, seg in enumerate(ann["segments_info"]):
            for key in ("id", "category_id"):
                if not isinstance(seg, dict) or key not in seg:
                    raise FormatError(f"{where}.segments_info[{j}]: missing field '{key}'")
    return CocoPanopticSet(json_path, png_dir, data)


DIRECT_LOOKUP_MAX_ID = 1 << 20  # ids below this are looked up in a table (4 MB at most)


def coco_to_panoptic(
    ids: np.ndarray,
    segments_info: Iterable[Mapping],
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    category_map: Mapping[int, int] | None = None,
    thing_ids: Iterable[int] | None = None,
) -> np.ndarray:
    """COCO segment ids + segments_info -> edgeps panoptic map.

    Things get instance numbers 1, 2, ... per class in segments_info order; stuff and crowd
    regions get instance 0 (the Cityscapes convention for crowd). ``category_map`` renames
    category ids (e.g. to train ids); categories it omits become void. ``thing_ids`` (in the
    output ids) decides which classes are numbered; without it, ``isthing`` from the segment
    entries is not known, so every non-crowd segment is numbered unless listed as stuff.
    """
    if ids.ndim != 2:
        raise InputShapeError(f"ids: expected (H, W), got shape {ids.shape}")
    things = set(thing_ids) if thing_ids is not None else None
    seg_list = list(segments_info)
    seg_ids = np.array([int(s["id"]) for s in seg_list], dtype=np.int64)
    values = np.full(len(seg_list), void_label, dtype=np.int64)
    counters: dict[int, int] = {}
    for k, seg in enumerate(seg_list):
        cat = int(seg["category_id"])
        if category_map is not None:
            if cat not in category_map:
                continue
            cat = int(category_map[cat])
        if seg.get("iscrowd", 0) or (things is not None and cat not in things):
            values[k] = cat * label_divisor
        else:
            counters[cat] = counters.get(cat, 0) + 1
            if counters[cat] >= label_divisor:
                raise FormatError(f"class {cat} has more than {label_divisor - 1} instances in one image")
            values[k] = cat * label_divisor + counters[cat]
    top = int(ids.max(initial=0))
    if 0 <= int(ids.min(initial=0)) and top < DIRECT_LOOKUP_MAX_ID:  # a table over the id range (Cityscapes' ids)
        table = np.full(top + 1, void_label, np.int32)
        listed = (seg_ids >= 0) & (seg_ids <= top)
        table[seg_ids[listed][::-1]] = values[listed][::-1]  # a repeated id keeps its first entry
        return table[ids]
    # Look up the few distinct ids of the image, then spread their values over the pixels.
    distinct, inverse = compact_ids(ids.astype(np.int64))
    order = np.argsort(seg_ids)
    pos = np.clip(np.searchsorted(seg_ids[order], distinct), 0, max(len(seg_ids) - 1, 0))
    known = (seg_ids[order][pos] == distinct) if len(seg_ids) else np.zeros(distinct.shape, bool)
    per_id = np.where(known, values[order][pos] if len(seg_ids) else void_label, void_label).astype(np.int32)
    return per_id[inverse].reshape(ids.shape)


def panoptic_to_coco(
    panoptic: np.ndarray,
    categories: Categories,
    label_divisor: int = LABEL_DIVISOR,
    void_label: int = VOID_LABEL,
    scores: Mapping[int, float] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """edgeps panoptic map -> (COCO segment-id map, segments_info), ids = panoptic id + 1.

    A thing class with instance 0 is written as a crowd region (``iscrowd = 1``).
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2:
        raise InputShapeError(f"panoptic: expected (H, W), got shape {pan.shape}")
    ids = np.where(pan == void_label, 0, pan.astype(np.int64) + 1)
    if ids.max(initial=0) >= 256**3:
        raise InputShapeError(f"panoptic: id {int(ids.max()) - 1} does not fit a COCO PNG (max 2^24 - 2)")
    infos = []
    for seg in segments_of(pan, label_divisor, void_label):
        if seg.category_id not in categories:
            raise InputShapeError(f"panoptic: class {seg.category_id} (id {seg.id}) is not in the category set")
        crowd = int(categories[seg.category_id].isthing and seg.instance == 0)
        info = {
            "id": seg.id + 1,
            "category_id": seg.category_id,
            "iscrowd": crowd,
            "area": seg.area,
            "bbox": list(seg.bbox),
        }
        if scores is not None and seg.id in scores:
            info["score"] = float(scores[seg.id])
        infos.append(info)
    return ids.astype(np.uint32), infos


def write_coco_panoptic(
    out_json: str | Path,
    out_dir: str | Path,
    entries: Iterable[tuple[Any, str, np.ndarray, list[dict]]],
    categories: Categories,
    images: list[dict] | None = None,
) -> None:
    """Write (image_id, file_name, segment-id map, segments_info) entries as a COCO panoptic set."""
    out_dir = Path(out_dir)
    annotations = []
    for image_id, file_name, ids, infos in entries:
        write_id_png(out_dir / file_name, ids)
        annotations.append({"image_id": image_id, "file_name": file_name, "segments_info": infos})
    data = {"annotations": annotations, "categories": categories.to_list()}
    if images is not None:
        data["images"] = images
    write_json(out_json, data)


def image_ids_for_files(
    file_names: Sequence[str], images_json: str | Path | None = None, *, require_all: bool = True
) -> dict[str, Any]:
    """COCO image ids for input files, keyed by file name.

    Args:
        file_names: the inputs' file names (no folders), in processing order; unique stems.
        images_json: a COCO JSON with an ``images`` list (``id``, ``file_name``), e.g. the
            dataset's annotation file. Each input is matched by file name, else by stem
            (``000139.png`` matches ``000139.jpg``). Ids are kept as they are, strings included.
        require_all: with ``images_json``, an input it lacks is an error; when False, such an
            input is left out of the result (the caller decides, e.g. once the file proves
            readable).

    Returns:
        ``{file name: image id}``. Without ``images_json``: the numeric stem as an int when
        every stem is numeric (COCO's ``000000000139.jpg`` -> 139), else the index in sorted
        file-name order.

    Raises:
        ConfigError: two inputs share a stem (their outputs would collide), or an input is not
            in ``images_json``.
        FormatError: ``images_json`` has no ``images`` list or an entry lacks ``id``/``file_name``.
    """
    names = list(file_names)
    stems: dict[str, str] = {}
    for name in names:
        stem = Path(name).stem
        if stem in stems:
            raise ConfigError(f"inputs {stems[stem]} and {name} share the stem {stem!r}: their outputs would collide")
        stems[stem] = name
    if images_json is not None:
        data = read_json(images_json)
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, list):
            raise FormatError(f"{images_json}: missing list field 'images'")
        by_name: dict[str, Any] = {}
        by_stem: dict[str, Any] = {}
        for i, img in enumerate(images):
            if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
                raise FormatError(f"{images_json}: images[{i}]: expected an object with 'id' and 'file_name'")
            file_name = Path(str(img["file_name"])).name
            by_name[file_name] = img["id"]
            by_stem.setdefault(Path(file_name).stem, img["id"])
        out, missing = {}, []
        for name in names:
            found = by_name.get(name, by_stem.get(Path(name).stem))
            if found is None:
                missing.append(name)
            else:
                out[name] = found
        if missing and require_all:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ConfigError(f"{images_json}: no image with the file name of {shown}")
        return out
    if names and all(Path(n).stem.isdigit() for n in names):
        return {n: int(Path(n).stem) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}
