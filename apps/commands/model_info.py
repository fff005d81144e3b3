"""``edgeps model-info``: parameters, GFLOPs and tensor shapes of a model config.

Reads only the ``model:`` section of the YAML (a training config works as is) and never loads
the pretrained weights (it only reports whether they are available), so it is quick.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgeps.apps.arguments import parse_size

DEFAULT_NUM_CLASSES = 19  # Cityscapes, when neither the config nor --num-classes gives one


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, type=Path, help="YAML with a 'model:' section (e.g. configs/synth.yaml)"
    )
    parser.add_argument("--size", type=parse_size, action="append", help="input HxW (repeatable; default 256x512)")
    parser.add_argument(
        "--num-classes",
        type=int,
        help=f"override model.num_classes (default: the config's, else {DEFAULT_NUM_CLASSES})",
    )


def read_model_section(path: Path) -> dict[str, Any]:
    """The ``model:`` mapping of a YAML file (other top-level sections are ignored)."""
    from edgeps.errors import ConfigError
    from edgeps.io.yaml_file import read_yaml

    raw = read_yaml(path, kind="config file")
    if not isinstance(raw, dict) or "model" not in raw:
        raise ConfigError(f"{path}: expected a mapping with a 'model:' section")
    model = raw["model"] or {}
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: model: expected a mapping, got {type(model).__name__}")
    return dict(model)


def _pretrained_availability(width_mult: float) -> str:
    from edgeps.model.pretrained import INSTALL_HINT, find_imagenet_weights

    path = find_imagenet_weights()
    if width_mult != 1.0:
        return f"not usable at width_mult {width_mult:g} (ImageNet weights are for width 1.0)"
    if path is None:
        return f"not installed ({INSTALL_HINT})"
    return f"available ({path})"


def run(args: argparse.Namespace) -> int:
    import torch

    from edgeps.errors import ConfigError
    from edgeps.model import ModelConfig, PanopticModel
    from edgeps.model.complexity import count_flops, count_parameters

    section = read_model_section(args.config)
    note = ""
    if args.num_classes is not None:
        if args.num_classes < 1:
            raise ConfigError(f"--num-classes: expected >= 1, got {args.num_classes}")
        section["num_classes"] = args.num_classes
    elif "num_classes" not in section:
        section["num_classes"] = DEFAULT_NUM_CLASSES
        note = " (not in the config; pass --num-classes)"
    cfg = ModelConfig.from_dict(section, where=f"{args.config}: model")
    requested_pretrained = cfg.pretrained
    model = PanopticModel(cfg).eval()  # random init, no weight loading

    print(f"config: {args.config}")
    print(
        f"model: neck={cfg.neck} width_mult={cfg.width_mult:g} shared_decoder={cfg.shared_decoder} "
        f"activation={cfg.activation} num_classes={cfg.num_classes}{note}"
    )
    parts = ", ".join(f"{name} {count_parameters(child) / 1e6:.3f} M" for name, child in model.named_children())
    print(f"parameters: {count_parameters(model) / 1e6:.3f} M ({parts})")
    taps: list[tuple[int, ...]] = []
    model.encoder.register_forward_hook(lambda _m, _i, out: taps.extend(tuple(t.shape) for t in out))
    for h, w in args.size or [(256, 512)]:
        taps.clear()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, h, w))
        tap_shapes = list(taps)  # before count_flops runs the model again
        print(f"input 1x3x{h}x{w}: {count_flops(model, (h, w)):.3f} GFLOPs")
        strides = model.encoder.strides
        print("  encoder taps: " + ", ".join(f"stride {s} {list(shape)}" for s, shape in zip(strides, tap_shapes)))
        print("  outputs: " + ", ".join(f"{k} {list(v.shape)}" for k, v in out.items()))
    state = "requested" if requested_pretrained else "not requested"
    print(f"pretrained ImageNet encoder ({state}; not loaded here): {_pretrained_availability(cfg.width_mult)}")
    return 0
