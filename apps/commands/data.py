"""``edgeps data``: write the synthetic street data to disk, and measure a dataset.

``edgeps data synth --out DIR --n N`` writes a COCO-panoptic folder (``images/``,
``panoptic/``, ``panoptic.json``, the synthetic category ids 0..7) that ``CocoPanopticDataset``
and ``eval-coco`` read back; ``--video OUT.mp4 --frames F`` adds a moving scene with its
per-frame ground truth, where an object keeps its segment id in every frame (so tracking can be
scored). ``--format cityscapes`` or ``--format coco`` instead writes the real dataset's layout
with its category ids (``leftImg8bit/`` + ``gtFine/`` with instanceIds and the
createPanopticImgs JSON; ``{split}2017/`` + ``annotations/panoptic_{split}2017.json``), see
:mod:`edgeps.data.synth_layouts`. ``--split val`` renders synth:val's scenes
(``SYNTH_VAL_SEED_BASE + i``), ``--split train`` (default) seeds ``--seed + i``; a second split
written into the same folder sits beside the first.
``edgeps data stats --data SPEC`` prints the properties synth:val promises (thing pixels,
occlusion, instances per image) for any data spec.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth_help = "render street scenes to a COCO-panoptic folder, or to the Cityscapes / COCO dataset layout"
    synth = sub.add_parser("synth", help=synth_help, description=synth_help)
    synth.add_argument("--out", required=True, type=Path, help="output folder (the root of the layout)")
    synth.add_argument(
        "--format",
        default="flat",
        metavar="{flat,coco,cityscapes}",
        help="flat (default): images/, panoptic/, panoptic.json with the synthetic ids 0..7; "
        "cityscapes: leftImg8bit/{split}/{city}/, gtFine/{split}/{city}/ (instanceIds, labelIds), "
        "gtFine/cityscapes_panoptic_{split}.json + PNGs as createPanopticImgs writes them, Cityscapes label ids; "
        "coco: {split}2017/*.jpg, annotations/panoptic_{split}2017.json + PNGs, COCO panoptic ids",
    )
    synth.add_argument(
        "--split",
        default="train",
        metavar="{train,val}",
        help="train (default): seeds --seed + i, below 1000000; val: synth:val's seeds 1000000 + i "
        "(at most 200, no --seed). Names the split folders and JSON of the cityscapes / coco layouts",
    )
    synth.add_argument("--n", type=int, required=True, help="number of images (0: only the --video, flat only)")
    synth.add_argument("--size", default="512x1024", help="image size HxW (default 512x1024)")
    synth.add_argument(
        "--seed", type=int, help="seed of the first image; image i uses seed + i (default 0; --split train only)"
    )
    synth.add_argument(
        "--jpg", action="store_true", help="write images as JPEG (default lossless PNG; --format flat only)"
    )
    synth.add_argument(
        "--video",
        type=Path,
        metavar="OUT.mp4",
        help="also render a moving scene to this mp4, GT in OUT_gt/ (--format flat only)",
    )
    synth.add_argument("--frames", type=int, default=120, help="video length in frames (default 120)")
    synth.add_argument("--fps", type=float, default=15.0, help="video frame rate (default 15)")
    stats = sub.add_parser(
        "stats",
        help="thing-pixel fraction, occlusion and instances per image of a data spec",
        description="thing-pixel fraction, occlusion and instances per image of a data spec",
    )
    stats.add_argument(
        "--data",
        default="synth:val",
        help="data spec: synth:val[:N] (default synth:val), synth:train:N, or DIR[:SPLIT[:N]] of a Cityscapes or "
        "COCO-panoptic root (no split = val)",
    )
    stats.add_argument("--n", type=int, help="measure only the first N images")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        return _run_synth(args)
    return _run_stats(args)


# ----------------------------------------------------------------------------- synth
def _run_synth(args: argparse.Namespace) -> int:
    from edgeps.apps.arguments import parse_size
    from edgeps.data.street import SYNTH_VAL_SEED_BASE
    from edgeps.data.synth_layouts import (
        LAYOUT_FORMATS,
        SPLITS,
        synth_layout_json,
        synth_seeds,
        write_synth_layout,
    )
    from edgeps.data.video import write_synth_video
    from edgeps.progress import progress

    size = parse_size(args.size)
    if args.format not in ("flat", *LAYOUT_FORMATS):
        raise ConfigError(f"--format: expected flat, {', '.join(LAYOUT_FORMATS)}; got {args.format!r}")
    if args.split not in SPLITS:
        raise ConfigError(f"--split: expected train or val, got {args.split!r}")
    if args.format != "flat":
        for flag, given in (("--jpg", args.jpg), ("--video", args.video is not None)):
            if given:
                raise ConfigError(f"{flag} applies to --format flat only, not --format {args.format}")
        seeds = synth_seeds(args.split, args.n, args.seed)  # checks --n, --seed against the split
        first = seeds.start if args.split == "train" else 0
        root = write_synth_layout(args.out, args.format, args.n, split=args.split, size=size, seed=first, show=progress)
        which = "synth:val seeds" if args.split == "val" else "seeds"
        print(
            f"{args.n} scenes at {size[0]}x{size[1]} ({which} {seeds.start}..{seeds.stop - 1}) "
            f"-> {args.format} {args.split} layout in {root}; "
            f"annotations {synth_layout_json(root, args.format, args.split)}"
        )
        return 0
    # flat: --split train takes any --seed, as before; --split val is synth:val's seeds
    seed = 0 if args.seed is None else args.seed
    if args.split == "val":
        synth_seeds("val", max(args.n, 1), args.seed)  # refuses --seed, and --n over synth:val's count
        seed = SYNTH_VAL_SEED_BASE
    if args.n < 0:
        raise ConfigError(f"--n: expected >= 0, got {args.n}")
    if args.n == 0 and args.video is None:
        raise ConfigError("--n 0 writes no images; add --video OUT.mp4 or ask for images with --n N")
    if args.video is not None:
        if args.video.suffix.lower() != ".mp4":
            raise ConfigError(f"--video: expected a .mp4 path, got {args.video}")
        if args.frames < 1:
            raise ConfigError(f"--frames: expected >= 1, got {args.frames}")
    if args.n:
        write_synth_set(args.out, args.n, size, seed, jpg=args.jpg, show=progress)
        split = "synth:val seeds" if seed >= SYNTH_VAL_SEED_BASE else "seeds"
        seeds_text = f"{split} {seed}..{seed + args.n - 1}"
        print(f"{args.n} scenes at {size[0]}x{size[1]} ({seeds_text}) -> {args.out}/panoptic.json")
    if args.video is not None:
        gt = write_synth_video(args.video, args.frames, size, seed, fps=args.fps, show=progress)
        print(f"{args.frames} frames -> {args.video}; ground truth (persistent segment ids) -> {gt}/panoptic.json")
    return 0


def write_synth_set(
    out: Path, n: int, size: tuple[int, int], seed: int, *, jpg: bool = False, show: Any = None
) -> None:
    """Render scenes ``seed .. seed + n - 1`` into a COCO-panoptic folder at ``out``."""
    from edgeps.data.street import render_scene
    from edgeps.data.synth_layouts import write_image
    from edgeps.data.synthetic import SYNTH_CATEGORIES
    from edgeps.io.coco_panoptic import panoptic_to_coco, write_coco_panoptic

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict] = []  # filled while write_coco_panoptic consumes the entries

    def entries() -> Iterator[tuple[int, str, np.ndarray, list[dict]]]:
        indices = range(n) if show is None else show(range(n), total=n, desc="rendering scenes")
        for i in indices:
            s = render_scene(seed + i, size)
            name = f"{i:06d}"
            image_name = f"{name}.jpg" if jpg else f"{name}.png"
            write_image(out / "images" / image_name, s.image)
            images.append(
                {
                    "id": i,
                    "file_name": image_name,
                    "height": size[0],
                    "width": size[1],
                    "seed": seed + i,
                    "occlusion": s.occlusion,
                }
            )
            yield (i, f"{name}.png", *panoptic_to_coco(s.panoptic, SYNTH_CATEGORIES))

    write_coco_panoptic(out / "panoptic.json", out / "panoptic", entries(), SYNTH_CATEGORIES, images=images)


def _run_stats(args: argparse.Namespace) -> int:
    from edgeps.data.datasets import open_dataset
    from edgeps.data.stats import dataset_stats

    if args.n is not None and args.n < 1:
        raise ConfigError(f"--n: expected >= 1, got {args.n}")
    r = dataset_stats(open_dataset(args.data), args.n)
    how = "drawn shapes overlap" if r["occlusion_exact"] else "approximated: instances touch"
    print(f"{args.data}: {r['images']} images")
    print(f"thing pixels          {100 * r['thing_fraction']:5.1f} %")
    print(f"images with occlusion {100 * r['occlusion_fraction']:5.1f} % ({how})")
    print(f"instances per image   {r['instances_per_image']:5.1f}")
    return 0
