"""Training: config errors, losses go down, overfitting two images, checkpoints, DDP on gloo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edgeps.errors import ConfigError, FormatError
from edgeps.training.checkpoint import load_checkpoint
from edgeps.training.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "model": {
        "width_mult": 0.5,
        "pretrained": False,
        "semantic_channels": 32,
        "instance_channels": 32,
        "aspp_channels": 32,
        "head_channels": 16,
    },
    "data": {
        "train": "synth:train",
        "train_images": 2,
        "val": "synth:train:2",
        "val_images": 2,
        "input_size": [128, 256],
        "crop": [128, 256],
        "scale_range": [1.0, 1.0],
        "flip": False,
        "color_jitter": 0.0,
        "center_sigma": 4.0,
        "synth_things": [3, 5],
    },
    "schedule": {
        "max_steps": 4,
        "batch_size": 2,
        "lr": 0.003,
        "warmup_steps": 5,
        "eval_every": 0,
        "checkpoint_every": 2,
        "threads": 2,
    },
    "postprocess": {"stuff_area": 64},
}


def write_cfg(tmp_path: Path, cfg: dict, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_default_config_loads():
    cfg = load_config(REPO / "configs" / "synth.yaml")
    assert cfg.data.input_size == (256, 512) and cfg.schedule.max_minutes == 15
    assert cfg.schedule.amp == "fast" and cfg.model["freeze_at"] == 4


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"data": {"crop": [256]}}, r"data\.crop: expected a list of 2"),
        ({"data": {"input_sise": [1, 2]}}, r"data: unknown key 'input_sise'"),
        ({"schedule": {"batch_size": "8"}}, r"schedule\.batch_size: expected integer, got str"),
        ({"loss": {"semantic_top_k": 2.0}}, r"loss\.semantic_top_k"),
        ({"model": {"neck": "fcn"}}, r"model.*neck"),
        ({"postprocess": {"nms_kernel": 4}}, r"postprocess.*nms_kernel"),
        ({"optimizer": {}}, r"unknown section 'optimizer'"),
        ({"schedule": {"amp": "int8"}}, r"schedule\.amp: expected one of auto, fast, off, bf16, fp16, got 'int8'"),
        ({"model": {"freeze_at": 30}}, r"model\.freeze_at: expected 0\.\.18"),
    ],
)
def test_config_errors_name_the_field(patch, match):
    raw = {k: dict(v) for k, v in TINY.items()}
    for section, values in patch.items():
        raw.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw)


def test_autocast_dtype_follows_schedule_amp():
    from edgeps.training.trainer import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype("off", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("fp16", torch.device("cuda")) is torch.float16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        autocast_dtype("fp16", cpu)
    assert autocast_dtype("auto", cpu) is None  # auto stays fp32 on a CPU; fast picks bf16
    assert autocast_dtype("auto", torch.device("cuda")) is torch.float16
    from edgeps.training.trainer import _native_bf16

    assert autocast_dtype("fast", cpu) is (torch.bfloat16 if _native_bf16() else None)  # never emulated bf16
    assert autocast_dtype("fast", torch.device("cuda")) is torch.float16


@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_a_few_steps_reduce_the_loss(amp):
    from edgeps.data.datasets import SynthDataset
    from edgeps.model import ModelConfig, build_model
    from edgeps.preprocess import InputSpec
    from edgeps.training.batch import collate_crops, train_batch
    from edgeps.training.losses import panoptic_losses
    from edgeps.training.samples import make_train_crop

    torch.manual_seed(0)
    cfg = config_from_dict(TINY)
    ds = SynthDataset("train", n=2, size=(128, 256), n_things=(3, 5))
    rng = np.random.default_rng(0)
    spec = InputSpec(size=(128, 256))
    crops = collate_crops([make_train_crop(ds[i].image, ds[i].panoptic, cfg.data, spec, rng) for i in range(2)])
    batch = train_batch(crops, ds.categories.thing_ids, cfg.data, spec, torch.device("cpu"))
    model = build_model(ModelConfig.from_dict({**cfg.model, "num_classes": len(ds.categories)}))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            heads = model(batch["image"])
        out = panoptic_losses({k: v.float() for k, v in heads.items()}, batch, cfg.loss)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    from edgeps.training.trainer import train

    out = tmp_path_factory.mktemp("overfit")
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["model"] = {
        "width_mult": 1.0,
        "pretrained": True,
        "semantic_channels": 64,
        "instance_channels": 32,
        "aspp_channels": 64,
        "head_channels": 32,
    }
    raw["schedule"].update({"max_steps": 120, "lr": 0.003, "checkpoint_every": 60})
    metrics = train(config_from_dict(raw), out, show_progress=False)
    return out, metrics


def test_short_run_overfits_two_images(overfit_run):
    out, metrics = overfit_run
    ev = metrics["final_eval"]
    assert ev["images"] == 2
    assert ev["All"]["pq"] >= 0.6, ev["All"]
    assert (out / "metrics.json").is_file() and (out / "curves.png").is_file()
    history = metrics["history"]
    assert np.mean(history["loss"][-10:]) < 0.5 * np.mean(history["loss"][:10])


def test_checkpoint_loads_weights_only_and_evaluates(overfit_run, capsys):
    from edgeps.apps.cli import main

    out, _ = overfit_run
    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ck["step"] == 120 and ck["pretrained"] == "imagenet"
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["format"] == "edgeps-checkpoint/1"
    rc = main(
        [
            "eval",
            "--checkpoint",
            str(out / "checkpoints" / "last.pt"),
            "--data",
            "synth:train:2",
            "--json",
            str(out / "eval.json"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "PQ" in text and "mIoU" in text
    assert (out / "eval.json").is_file()


def test_checkpoint_of_another_model_config_is_refused(overfit_run, tmp_path):
    from edgeps.training.checkpoint import save_checkpoint
    from edgeps.training.inference import model_from_checkpoint

    out, _ = overfit_run
    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    ck["config"]["model"]["neck"] = "fpn"
    bad = save_checkpoint(tmp_path / "other.pt", {k: v for k, v in ck.items() if k != "format"})
    with pytest.raises(FormatError, match="another model config"):
        model_from_checkpoint(bad)


def test_not_a_checkpoint_is_refused(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(FormatError, match=r"x\.pt.*not a readable edgeps checkpoint"):
        load_checkpoint(p)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "y.pt")
    with pytest.raises(FormatError, match="not an edgeps checkpoint"):
        load_checkpoint(tmp_path / "y.pt")


def test_resume_continues_from_last_checkpoint(tmp_path):
    from edgeps.training.trainer import train

    cfg = config_from_dict(TINY)
    train(cfg, tmp_path, max_steps=2, show_progress=False)
    metrics = train(cfg, tmp_path, max_steps=4, resume=True, show_progress=False)
    assert metrics["steps"] == 4
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4
    assert len(metrics["history"]["loss"]) == 4


def test_sync_bn_option_converts_the_model():
    from edgeps.model import ModelConfig, build_model

    model = build_model(ModelConfig(num_classes=3, width_mult=0.5, pretrained=False))
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    kinds = {type(m).__name__ for m in converted.modules()}
    assert "SyncBatchNorm" in kinds and "BatchNorm2d" not in kinds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_parallel_two_cpu_processes_on_gloo(tmp_path):
    cfg_path = write_cfg(tmp_path, TINY)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "edgeps.apps.cli",
        "train",
        "--config",
        str(cfg_path),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "3",
        "--no-progress",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ck["step"] == 3
    assert "trained 3 steps" in proc.stdout  # printed once, by rank 0
    assert proc.stdout.count("trained 3 steps") == 1
