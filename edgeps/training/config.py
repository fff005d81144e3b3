"""The training config: one YAML file with model, data, schedule, loss and postprocess sections.

Every field is checked on load; an error names the file and the field (``data.crop``) and
says what was expected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeps.errors import ConfigError
from edgeps.io.yaml_file import read_yaml
from edgeps.postprocess import PostprocessSettings
from edgeps.validate import check_choice, check_mapping, check_value


@dataclass
class DataConfig:
    train: str = "synth:train"  # data spec (edgeps.data.datasets); no split = train
    # 0 = every image of `train`; N = its first N. Synthetic scenes are then rendered once and
    # kept in memory (a fixed set); real data is always decoded on access, in the workers.
    train_images: int = 0
    # data spec of the periodic eval that picks best.pt; no split = val. synth:dev, not synth:val:
    # choices are made on held-out training seeds, synth:val is kept for reported scores
    val: str = "synth:dev"
    val_images: int = 16  # periodic PQ during training on this many held-out images
    input_size: tuple[int, int] = (256, 512)  # model input (H, W); frames are resized to it
    crop: tuple[int, int] = (256, 256)
    scale_range: tuple[float, float] = (0.75, 1.5)
    flip: bool = True
    color_jitter: float = 0.25
    center_sigma: float = 8.0
    # > 0: each instance's center Gaussian has sigma = clamp(scale * sqrt(area), 1, center_sigma)
    # (area in crop pixels), so small neighbours keep separate peaks; 0: every center uses center_sigma
    center_sigma_scale: float = 0.0
    small_instance_area: int = 1024  # pixels at input size
    small_instance_weight: float = 3.0
    synth_things: tuple[int, int] = (20, 36)  # things per synthetic training scene (min, max)
    ignore_crowd_in_semantic: bool = False  # crowd regions also left out of the semantic loss (COCO)
    workers: int = -1  # DataLoader worker processes per training process; -1 = from the core count


@dataclass
class ScheduleConfig:
    max_steps: int = 1000
    max_minutes: float = 0.0  # wall-clock budget; 0 = none
    batch_size: int = 8
    lr: float = 0.002
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    poly_power: float = 0.9
    eval_every: int = 200
    checkpoint_every: int = 100
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = all cores
    sync_bn: bool = False  # SyncBatchNorm under torchrun on GPUs
    # mixed precision of the forward pass: auto = fp16 on CUDA, fp32 on a CPU; fast = fp16 on
    # CUDA, bf16 on a CPU that runs it natively, else fp32 (see training.trainer.autocast_dtype);
    # or off, bf16, fp16 (CUDA only)
    amp: str = "auto"


@dataclass
class LossConfig:
    semantic: float = 1.0
    semantic_top_k: float = 0.2  # fraction of hardest pixels kept (1.0 = plain mean)
    center: float = 200.0
    offset: float = 0.01
    # offset L1 normalised per instance: every instance of the batch weighs the same in total
    # (a small person as much as a bus), instead of every pixel the same
    offset_per_instance: bool = False
    # weight of thing-instance pixels in the center MSE (1 = every labelled pixel the same)
    center_thing_weight: float = 1.0


@dataclass
class TrainConfig:
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "model": dict(self.model),
            "data": _plain(asdict(self.data)),
            "schedule": asdict(self.schedule),
            "loss": asdict(self.loss),
            "postprocess": self.postprocess.to_dict(),
        }
        return d


_CHOICES = {"schedule.amp": ("auto", "fast", "off", "bf16", "fp16")}
_MIN_INT = {"data.workers": -1}  # integer fields that take a sentinel below 0


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _build_section(cls: type, raw: Any, where: str, section: str) -> Any:
    """The ``section`` dataclass from its mapping; each field's type is its default's type."""
    if raw is None:
        return cls()
    defaults = cls()
    kinds = {}
    for f in fields(cls):
        default = getattr(defaults, f.name)
        kinds[f.name] = (list, tuple) if isinstance(default, tuple) else type(default)
    checked = check_mapping(raw, kinds, where)
    return cls(
        **{
            key: _check_range(value, getattr(defaults, key), f"{where}.{key}", f"{section}.{key}")
            for key, value in checked.items()
        }
    )


def _check_range(value: Any, default: Any, where: str, name: str) -> Any:
    """Rules beyond the type for field ``name`` (``section.key``): counts >= 0 (or the
    field's sentinel), numbers >= 0, non-empty strings among the field's choices, lists of
    the default's length with values > 0."""
    if isinstance(default, bool):
        return value
    if isinstance(default, int):
        low = _MIN_INT.get(name, 0)
        if value < low:
            raise ConfigError(f"{where}: expected >= {low}, got {value}")
        return value
    if isinstance(default, float):
        if value < 0:
            raise ConfigError(f"{where}: expected >= 0, got {value}")
        return value
    if isinstance(default, str):
        if not value:
            raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
        if name in _CHOICES:
            check_choice(value, _CHOICES[name], where)
        return value
    if len(value) != len(default):
        raise ConfigError(f"{where}: expected a list of {len(default)} values, got {list(value)!r}")
    items = tuple(
        _check_range(check_value(v, type(d), f"{where}[{i}]"), d, where, name)
        for i, (v, d) in enumerate(zip(value, default))
    )
    if any(v <= 0 for v in items):
        raise ConfigError(f"{where}: values must be > 0, got {list(items)}")
    return items


def config_from_dict(raw: Any, where: str = "config") -> TrainConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    sections = {"model", "data", "schedule", "loss", "postprocess"}
    for key in raw:
        if key not in sections:
            raise ConfigError(f"{where}: unknown section '{key}' (known: {', '.join(sorted(sections))})")
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"{where}: model: expected a mapping, got {type(model).__name__}")
    from edgeps.model.config import ModelConfig

    # Validate the model section now (num_classes comes from the data's categories later).
    ModelConfig.from_dict(
        {"num_classes": 1, **{k: v for k, v in model.items() if k != "num_classes"}}, where=f"{where}: model"
    )
    cfg = TrainConfig(
        model=dict(model),
        data=_build_section(DataConfig, raw.get("data"), f"{where}: data", "data"),
        schedule=_build_section(ScheduleConfig, raw.get("schedule"), f"{where}: schedule", "schedule"),
        loss=_build_section(LossConfig, raw.get("loss"), f"{where}: loss", "loss"),
        postprocess=PostprocessSettings.from_dict(raw.get("postprocess"), where=f"{where}: postprocess"),
    )
    if cfg.schedule.batch_size < 1:
        raise ConfigError(f"{where}: schedule.batch_size: expected >= 1, got {cfg.schedule.batch_size}")
    if not 0 < cfg.loss.semantic_top_k <= 1:
        raise ConfigError(f"{where}: loss.semantic_top_k: expected a fraction in (0, 1], got {cfg.loss.semantic_top_k}")
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    raw = read_yaml(path, kind="config file", error=ConfigError)
    return config_from_dict(raw, where=str(path))
