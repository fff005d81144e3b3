"""``edgeps tune-postprocess``: choose the post-processing settings of a checkpoint on held-out
data. The network runs once per image; every combination of the given values is scored (PQ
All / Things / Stuff and thing classes), the best is marked and printed as the config block to
paste (or written with ``--write-config``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint (.pt)")
    parser.add_argument(
        "--data",
        default="synth:dev",
        help="held-out data spec (default synth:dev: unused training seeds); never the set you report on",
    )
    parser.add_argument("--max-images", type=int, help="use only the first N images")
    parser.add_argument("--threshold", type=_floats, default=[], help="center thresholds, e.g. 0.1,0.2,0.3")
    parser.add_argument("--nms-kernel", type=_ints, default=[], help="odd NMS kernels (model pixels), e.g. 5,7,11")
    parser.add_argument("--top-k", type=_ints, default=[], help="center top-k values, e.g. 100,200")
    parser.add_argument("--stuff-area", type=_ints, default=[], help="stuff area limits (model pixels), e.g. 256,512")
    parser.add_argument(
        "--thing-area",
        type=_ints,
        default=[],
        help="minimum thing instance areas (model pixels; smaller instances become void), e.g. 0,32,64",
    )
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="write every row here")
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="YAML",
        help="write the checkpoint's config with the chosen postprocess block",
    )
    parser.add_argument(
        "--write-checkpoint",
        type=Path,
        metavar="PT",
        help="write a copy of the checkpoint with the chosen settings (what edgeps eval / export then use)",
    )


def run(args: argparse.Namespace) -> int:
    import yaml

    from edgeps.atomic import atomic_write_text
    from edgeps.data.datasets import open_dataset
    from edgeps.errors import ConfigError
    from edgeps.io.coco_panoptic import write_json
    from edgeps.preprocess import frame_geometry
    from edgeps.training.inference import predictor_from_checkpoint
    from edgeps.tuning import best_row, cache_heads, score_settings, settings_grid

    grid_values = {"thresholds": args.threshold, "nms_kernels": args.nms_kernel, "top_ks": args.top_k}
    grid_values.update(stuff_areas=args.stuff_area, thing_areas=args.thing_area)
    if not any(grid_values.values()):
        raise ConfigError(
            "tune-postprocess: give at least one of --threshold, --nms-kernel, --top-k, --stuff-area, --thing-area"
        )
    predictor = predictor_from_checkpoint(args.checkpoint)
    grid = settings_grid(predictor.settings, **grid_values)
    dataset = open_dataset(args.data)
    cached = cache_heads(
        predictor.heads, lambda shape: frame_geometry(shape, predictor.spec), dataset, max_images=args.max_images
    )
    rows = score_settings(cached, grid, dataset.categories)
    best = best_row(rows)
    names = list(rows[0].per_class)
    print(f"{args.checkpoint} on {args.data} ({len(cached)} images); first row: the checkpoint's own settings")
    print(
        f"  {'threshold':>9} {'nms':>4} {'top_k':>6} {'stuff':>6} {'thing':>6} {'PQ':>6} {'PQth':>6} {'PQst':>6}"
        + "".join(f" {n[:8]:>8}" for n in names)
    )
    for r in rows:
        s = r.settings
        mark = "*" if r is best else " "
        cells = "".join(f" {r.per_class[n]:8.1f}" for n in names)
        print(
            f"{mark} {s.threshold:9.3g} {s.nms_kernel:4d} {str(s.top_k):>6} {s.stuff_area:6d} {s.thing_area:6d} "
            f"{r.pq:6.1f} {r.pq_things:6.1f} {r.pq_stuff:6.1f}{cells}"
        )
    chosen = best.settings.to_dict()
    print("chosen (*): highest PQ, rows within 0.1 of it tied toward the first")
    print(yaml.safe_dump({"postprocess": chosen}, sort_keys=False).rstrip())
    if args.json_out:
        write_json(
            args.json_out,
            {
                "checkpoint": str(args.checkpoint),
                "data": args.data,
                "images": len(cached),
                "chosen": chosen,
                "rows": [
                    {
                        "settings": r.settings.to_dict(),
                        "pq": r.pq,
                        "pq_things": r.pq_things,
                        "pq_stuff": r.pq_stuff,
                        "per_class": r.per_class,
                    }
                    for r in rows
                ],
            },
        )
    if args.write_config or args.write_checkpoint:
        from edgeps.training.checkpoint import load_checkpoint, save_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        ckpt.pop("format", None)
        ckpt["config"] = {**ckpt["config"], "postprocess": {**ckpt["config"].get("postprocess", {}), **chosen}}
        if args.write_config:
            atomic_write_text(args.write_config, yaml.safe_dump(ckpt["config"], sort_keys=False))
            print(f"wrote {args.write_config}")
        if args.write_checkpoint:
            save_checkpoint(args.write_checkpoint, ckpt)
            print(f"wrote {args.write_checkpoint}")
    return 0
