"""``edgeps fuse``: semantic + instance predictions -> COCO panoptic (PNGs + JSON).

The counterpart of panopticapi's ``combine_semantic_and_instance_predictions.py``, with the
same inputs, flags (its underscore spellings are accepted too) and rules:

- instance predictions: a COCO instance-segmentation results JSON (a list of
  ``{"image_id", "category_id", "segmentation": RLE, "score"}``);
- semantic predictions: a COCO semantic-results JSON (one RLE per image and category, as
  panopticapi reads) with ``--semseg-json``, or with ``--semseg-dir`` a folder of PNG class
  maps (pixel value = category id, any other value void; one PNG per image, named like the
  image's ``file_name`` with the suffix ``.png``);
- the images JSON (``images``: ``id``, ``file_name``, ``height``, ``width``) and the
  categories JSON (``id``, ``name``, ``isthing``).

The output, a COCO panoptic JSON and a folder of PNGs, is what ``edgeps eval-coco`` scores.
The fusion itself is :func:`edgeps.fusion.fuse_semantic_and_instances`.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instseg-json",
        "--instseg_json_file",
        dest="instseg_json",
        required=True,
        type=Path,
        help="COCO instance-segmentation results JSON (RLE segmentation, score, category_id, image_id)",
    )
    sem = parser.add_mutually_exclusive_group(required=True)
    sem.add_argument(
        "--semseg-json",
        "--semseg_json_file",
        dest="semseg_json",
        type=Path,
        help="COCO semantic-results JSON: one RLE per image and category",
    )
    sem.add_argument(
        "--semseg-dir",
        dest="semseg_dir",
        type=Path,
        help="folder of single-channel PNG class maps (category ids), named like the images with .png",
    )
    parser.add_argument(
        "--images-json",
        "--images_json_file",
        dest="images_json",
        required=True,
        type=Path,
        help="JSON with the 'images' list (id, file_name, height, width) to fuse",
    )
    parser.add_argument(
        "--categories-json",
        "--categories_json_file",
        dest="categories_json",
        type=Path,
        help="panoptic categories JSON (id, name, isthing); default: the 'categories' of --images-json",
    )
    parser.add_argument(
        "--panoptic-json",
        "--panoptic_json_file",
        dest="panoptic_json",
        required=True,
        type=Path,
        help="output COCO panoptic JSON",
    )
    parser.add_argument(
        "--segmentations-folder",
        "--segmentations_folder",
        dest="segmentations_folder",
        type=Path,
        help="output folder of panoptic PNGs (default: --panoptic-json without its suffix)",
    )
    parser.add_argument(
        "--confidence-thr",
        "--confidence_thr",
        dest="confidence_thr",
        type=float,
        default=0.5,
        help="instances scoring below this are dropped (default 0.5)",
    )
    parser.add_argument(
        "--overlap-thr",
        "--overlap_thr",
        dest="overlap_thr",
        type=float,
        default=0.5,
        help="an instance is dropped when more than this fraction of it is already taken (default 0.5)",
    )
    parser.add_argument(
        "--stuff-area-limit",
        "--stuff_area_limit",
        dest="stuff_area_limit",
        type=float,
        default=64 * 64,
        help="a stuff class keeps its leftover pixels only when there are at least this many (default 4096)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1; 0 = one per CPU core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------
# reading the inputs
# ---------------------------------------------------------------------------------------------
def _list_of_objects(data: Any, path: Path, what: str) -> list[dict]:
    from edgeps.errors import FormatError

    if not isinstance(data, list):
        raise FormatError(f"{path}: expected a JSON list of {what}, got {type(data).__name__}")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise FormatError(f"{path}[{i}]: expected an object, got {type(entry).__name__}")
        if "image_id" not in entry:
            raise FormatError(f"{path}[{i}]: missing field 'image_id'")
    return data


def _images(data: Any, path: Path) -> list[dict]:
    from edgeps.errors import FormatError

    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{path}: expected a JSON object with an 'images' list")
    seen = set()
    for i, img in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if not isinstance(img, dict):
            raise FormatError(f"{where}: expected an object")
        for key in ("id", "file_name", "height", "width"):
            if key not in img:
                raise FormatError(f"{where}: missing field '{key}'")
        for key in ("height", "width"):
            v = img[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise FormatError(f"{where}.{key}: expected a positive integer, got {v!r}")
        if img["id"] in seen:
            raise FormatError(f"{where}: image id {img['id']!r} is listed twice")
        seen.add(img["id"])
        _png_name(img["file_name"], where)
    return data["images"]


def _png_name(file_name: Any, where: str) -> str:
    """``file_name`` with the suffix ``.png`` (sub-folders kept), refused when it would leave
    the output folder."""
    from edgeps.errors import FormatError

    if not isinstance(file_name, str) or not file_name:
        raise FormatError(f"{where}.file_name: expected a non-empty string, got {file_name!r}")
    p = PurePosixPath(file_name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise FormatError(f"{where}.file_name: expected a relative path inside the folder, got {file_name!r}")
    return str(p.with_suffix(".png"))


# ---------------------------------------------------------------------------------------------
# one image (runs in the worker processes)
# ---------------------------------------------------------------------------------------------
_SETTINGS: dict[str, Any] = {}


def _init_worker(settings: dict[str, Any]) -> None:
    """Worker initializer: the settings every image needs, sent once per process."""
    from edgeps.categories import Categories

    _SETTINGS.clear()
    _SETTINGS.update(settings)
    _SETTINGS["categories"] = Categories.from_list(settings["categories_raw"], where=str(settings["categories_path"]))


def _semantic_from_png(path: Path, where: str) -> Any:
    import cv2

    from edgeps.errors import DataNotFoundError, FormatError

    if not path.is_file():
        raise DataNotFoundError(f"semantic PNG not found: {path} ({where})")
    sem = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if sem is None:
        raise FormatError(f"{path}: not a readable image")
    if sem.ndim != 2:
        raise FormatError(f"{path}: expected a single-channel class map, got shape {sem.shape}")
    return sem


def _semantic_from_rles(anns: list[dict], hw: tuple[int, int], where: str) -> Any:
    """Class map from per-category RLEs (at the RLEs' size; the fusion resizes it). As in
    panopticapi, RLEs of thing categories are skipped; the first RLE to claim a pixel keeps it;
    pixels no RLE claims get a value that is no category (void)."""
    import numpy as np

    from edgeps.errors import FormatError
    from edgeps.io.rle import rle_decode, rle_size

    cats = _SETTINGS["categories"]
    void = max(cats.ids) + 1
    dtype = np.uint8 if void <= 255 else np.int32
    sem = None
    for ann in anns:
        at = f"{where}[{ann['_index']}]"
        cat = ann.get("category_id")
        if isinstance(cat, bool) or not isinstance(cat, int) or cat not in cats:
            raise FormatError(f"{at}.category_id: {cat!r} is not a category of {_SETTINGS['categories_path']}")
        if "segmentation" not in ann:
            raise FormatError(f"{at}: missing field 'segmentation'")
        size = rle_size(ann["segmentation"], f"{at}.segmentation")
        if sem is None:
            sem = np.full(size, void, dtype=dtype)
        elif size != sem.shape:
            raise FormatError(
                f"{at}.segmentation: size {list(size)} differs from the image's other RLEs {list(sem.shape)}"
            )
        if cats[cat].isthing:
            continue
        mask = rle_decode(ann["segmentation"], where=f"{at}.segmentation")
        np.copyto(sem, dtype(cat), where=mask & (sem == void))
    return np.full(hw, void, dtype=dtype) if sem is None else sem


def _fuse_one(task: dict[str, Any]) -> dict[str, Any]:
    """Fuse one image, write its PNG, return its panoptic annotation."""
    from edgeps.fusion import fuse_semantic_and_instances, instances_from_coco_results
    from edgeps.io.coco_panoptic import panoptic_to_coco, write_id_png
    from edgeps.io.rle import rle_counts

    s = _SETTINGS
    img = task["image"]
    hw = (img["height"], img["width"])
    if task["semantic_png"] is not None:
        semantic = _semantic_from_png(Path(task["semantic_png"]), f"image_id {img['id']!r}")
    else:
        semantic = _semantic_from_rles(task["semantic_rles"], hw, str(s["semseg_path"]))
    for ann in task["instances"]:  # malformed RLEs named by their place in the file
        rle_counts(ann["segmentation"], f"{s['instseg_path']}[{ann['_index']}].segmentation")
    masks, classes, scores = instances_from_coco_results(
        task["instances"], where=f"{s['instseg_path']} (image_id {img['id']!r})"
    )
    cats = s["categories"]
    pred = fuse_semantic_and_instances(
        semantic,
        masks,
        classes,
        scores,
        thing_ids=cats.thing_ids,
        stuff_ids=cats.stuff_ids,
        overlap_threshold=s["overlap_thr"],
        stuff_area=s["stuff_area"],
        score_threshold=s["confidence_thr"],
        size=hw,
    )
    ids, infos = panoptic_to_coco(pred.panoptic, cats, scores=pred.scores)
    out = Path(s["out_dir"]) / task["png_name"]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_id_png(out, ids)
    return {"image_id": img["id"], "file_name": task["png_name"], "segments_info": infos}


def _run_tasks(tasks: list[dict], settings: dict[str, Any], workers: int) -> Iterator[dict]:
    if workers <= 1 or len(tasks) <= 1:
        _init_worker(settings)
        yield from map(_fuse_one, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # safe with threads (OpenCV's) and on every OS
    chunk = max(1, min(16, len(tasks) // (4 * workers)))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.map(_fuse_one, tasks, chunksize=chunk)


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    import os

    from edgeps.categories import Categories
    from edgeps.errors import ConfigError, FormatError
    from edgeps.fusion import instances_from_coco_results
    from edgeps.io.coco_panoptic import read_json, write_json
    from edgeps.progress import progress

    for name in ("confidence_thr", "overlap_thr", "stuff_area_limit"):
        value = getattr(args, name)
        if not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')}: expected a finite number, got {value}")
    if args.overlap_thr < 0:
        raise ConfigError(f"--overlap-thr: must be >= 0, got {args.overlap_thr}")
    if args.stuff_area_limit < 0:
        raise ConfigError(f"--stuff-area-limit: must be >= 0, got {args.stuff_area_limit}")
    if args.workers < 0:
        raise ConfigError(f"--workers: must be >= 0, got {args.workers}")
    workers = args.workers or os.cpu_count() or 1

    images_data = read_json(args.images_json)
    images = _images(images_data, args.images_json)
    if args.categories_json is not None:
        cat_path, cat_raw = args.categories_json, read_json(args.categories_json)
    elif isinstance(images_data, dict) and isinstance(images_data.get("categories"), list):
        cat_path, cat_raw = args.images_json, images_data["categories"]
    else:
        raise ConfigError(f"--categories-json: needed, {args.images_json} has no 'categories' list")
    categories = Categories.from_list(cat_raw, where=str(cat_path))
    things = set(categories.thing_ids)

    instances = _list_of_objects(read_json(args.instseg_json), args.instseg_json, "instance results")
    _, classes, scores = instances_from_coco_results(instances, where=str(args.instseg_json))
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for i, ann in enumerate(instances):
        cat = int(classes[i])
        if cat not in things:
            kind = "a stuff category" if cat in categories else "not a category"
            raise FormatError(
                f"{args.instseg_json}[{i}].category_id: {cat!r} is {kind} in {cat_path}; instances must be things"
            )
        if scores[i] >= args.confidence_thr:  # the others are dropped here already, as panopticapi does
            by_image[ann["image_id"]].append({**ann, "_index": i})

    sem_by_image: dict[Any, list[dict]] = defaultdict(list)
    if args.semseg_json is not None:
        for i, ann in enumerate(_list_of_objects(read_json(args.semseg_json), args.semseg_json, "semantic results")):
            sem_by_image[ann["image_id"]].append({**ann, "_index": i})
    elif not args.semseg_dir.is_dir():
        from edgeps.errors import DataNotFoundError

        raise DataNotFoundError(f"--semseg-dir: folder not found: {args.semseg_dir}")

    out_dir = args.segmentations_folder or args.panoptic_json.with_suffix("")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "categories_raw": cat_raw,
        "categories_path": str(cat_path),
        "instseg_path": str(args.instseg_json),
        "semseg_path": str(args.semseg_json),
        "overlap_thr": float(args.overlap_thr),
        "stuff_area": int(math.ceil(args.stuff_area_limit)),  # an area is an integer: >= x iff >= ceil(x)
        "confidence_thr": float(args.confidence_thr),
        "out_dir": str(out_dir),
    }
    tasks = []
    for i, img in enumerate(images):
        png = _png_name(img["file_name"], f"{args.images_json}: images[{i}]")
        tasks.append(
            {
                "image": {k: img[k] for k in ("id", "file_name", "height", "width")},
                "png_name": png,
                "instances": by_image.get(img["id"], []),
                "semantic_png": None if args.semseg_dir is None else str(args.semseg_dir / png),
                "semantic_rles": sem_by_image.get(img["id"], []),
            }
        )
    annotations = list(
        progress(_run_tasks(tasks, settings, workers), total=len(tasks), desc="fuse", enabled=not args.no_progress)
    )
    out = {k: v for k, v in images_data.items() if k not in ("annotations", "categories")}
    out["annotations"] = annotations
    out["categories"] = cat_raw
    write_json(args.panoptic_json, out)
    n_segments = sum(len(a["segments_info"]) for a in annotations)
    print(f"fused {len(annotations)} images ({n_segments} segments) -> {args.panoptic_json}, PNGs in {out_dir}")
    return 0
