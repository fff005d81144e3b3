"""``edgeps train``: train a panoptic model from a YAML config.

Works the same under ``torchrun --nproc_per_node N -m edgeps.apps.cli train ...`` (data
parallel; gloo on CPU, NCCL on GPUs). ``--data`` / ``--val-data`` take data specs
(``DIR[:SPLIT[:N]]``, ``synth:train[:N]``); ``--init`` fine-tunes from a checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="training config YAML, e.g. configs/synth.yaml")
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, metrics.json, curves.png)")
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="training data spec, overrides data.train: DIR[:SPLIT[:N]] (Cityscapes or COCO-panoptic root; no split "
        "= train) "
        "or synth:train[:N]",
    )
    parser.add_argument(
        "--val-data",
        metavar="SPEC",
        help="held-out data spec, overrides data.val (no split = val; default with --data DIR: the val split of DIR)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        metavar="CKPT",
        help="start from this checkpoint's weights (fine-tuning); "
        "the semantic head is re-initialised when the class count differs",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="data loader processes per training process (overrides data.workers; "
        "0 = load in the training process; default from the core count)",
    )
    parser.add_argument("--max-steps", type=int, help="override schedule.max_steps")
    parser.add_argument("--max-minutes", type=float, help="override schedule.max_minutes (wall-clock budget)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def run(args: argparse.Namespace) -> int:
    from edgeps.data.datasets import parse_data_spec
    from edgeps.errors import ConfigError
    from edgeps.training.config import load_config
    from edgeps.training.trainer import train

    cfg = load_config(args.config)
    if args.max_minutes is not None:
        cfg.schedule.max_minutes = args.max_minutes
    for value, field in ((args.data, "train"), (args.val_data, "val")):
        if value is not None:
            parse_data_spec(value)  # a malformed spec fails here, naming itself
            setattr(cfg.data, field, value)
    if args.data is not None and args.val_data is None and not parse_data_spec(args.data).is_synth:
        cfg.data.val = parse_data_spec(args.data).source  # the same root; no split = its val split
    if args.workers is not None:
        if args.workers < 0:
            raise ConfigError(f"--workers: expected >= 0, got {args.workers}")
        cfg.data.workers = args.workers
    metrics = train(
        cfg,
        args.out,
        max_steps=args.max_steps,
        device=args.device,
        resume=args.resume,
        show_progress=not args.no_progress,
        init=args.init,
    )
    if "final_eval" in metrics:
        ev = metrics["final_eval"]
        print(
            f"trained {metrics['steps']} steps in {metrics['train_seconds'] / 60:.1f} min; "
            f"held-out PQ {100 * ev['All']['pq']:.1f} (things {100 * ev['Things']['pq']:.1f}, stuff "
            f"{100 * ev['Stuff']['pq']:.1f}) "
            f"on {ev['images']} images; checkpoints in {args.out}/checkpoints"
        )
    return 0
