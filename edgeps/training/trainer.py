"""The training loop: AdamW + poly LR, hard-pixel-mined losses, periodic PQ, checkpoints.

One loop for a laptop CPU and for ``torchrun --nproc_per_node N`` (DistributedDataParallel,
rank-0 logging and checkpoints, each rank training on its own shard of the data).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from edgeps.atomic import atomic_write_text
from edgeps.categories import Categories
from edgeps.errors import ConfigError, DataNotFoundError
from edgeps.evaluation import evaluate_predictor
from edgeps.preprocess import InputSpec
from edgeps.training.batch import train_batch
from edgeps.training.checkpoint import load_checkpoint, save_checkpoint
from edgeps.training.config import TrainConfig
from edgeps.training.distributed import DistInfo, any_rank, cleanup, init_distributed
from edgeps.training.inference import TorchPredictor
from edgeps.training.loader import (
    BatchStream,
    EpochSampler,
    TrainSamples,
    compute_threads,
    default_workers,
    train_loader,
)
from edgeps.training.losses import panoptic_losses
from edgeps.training.plot import plot_curves

log = logging.getLogger("edgeps.train")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device: expected auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def open_train_val(cfg: TrainConfig) -> tuple[Any, Any]:
    """Training and held-out datasets from the config's data specs (no split: ``train`` and
    ``val``).

    Synthetic training data is rendered directly at the model input size, with
    ``data.synth_things`` objects per scene. A ``synth:train:N`` held-out spec (for overfitting
    checks) renders the same way; ``synth:val`` is always the frozen set.
    """
    from edgeps.data.datasets import open_dataset, parse_data_spec

    synth = {"size": tuple(cfg.data.input_size), "n_things": tuple(cfg.data.synth_things)}
    train_spec, val_spec = parse_data_spec(cfg.data.train), parse_data_spec(cfg.data.val)
    is_synth_train = train_spec.is_synth and train_spec.split in (None, "train")
    train = open_dataset(cfg.data.train, default_split="train", **(synth if is_synth_train else {}))
    is_synth_train_val = val_spec.is_synth and val_spec.split == "train"
    val = open_dataset(cfg.data.val, default_split="val", **(synth if is_synth_train_val else {}))
    return train, val


def training_source(cfg: TrainConfig, dataset: Any, show: bool) -> Sequence[Any]:
    """What the loader draws from: the dataset itself (decoded on access, in the workers), its
    first ``data.train_images`` images when that is set, and, for synthetic data with that
    set, those scenes rendered once and kept (a fixed set, like the default config's 400)."""
    from edgeps.data.datasets import SynthDataset
    from edgeps.progress import progress

    n = len(dataset)
    if cfg.data.train_images:
        n = min(cfg.data.train_images, n)
        log.info("data.train_images: training on the first %d of %d images of %s", n, len(dataset), cfg.data.train)
    if isinstance(dataset, SynthDataset) and cfg.data.train_images:
        return [dataset[i] for i in progress(range(n), total=n, desc="rendering training scenes", enabled=show)]
    return dataset if n == len(dataset) else _Head(dataset, n)


class _Head:
    """The first ``n`` items of a dataset, decoded on access."""

    def __init__(self, dataset: Any, n: int) -> None:
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


def autocast_dtype(amp: str, dev: torch.device) -> torch.dtype | None:
    """The autocast dtype of the forward pass, None for fp32. ``auto``: fp16 on CUDA, fp32 on a
    CPU. ``fast`` (the default config's): fp16 on CUDA, bf16 on a CPU whose oneDNN runs it
    natively (AVX512-BF16 / AMX), else fp32 (emulated bf16 is slower than fp32; the bf16 and
    fp32 demo runs are compared in docs/measurements.md)."""
    if amp == "fast":
        return torch.float16 if dev.type == "cuda" else torch.bfloat16 if dev.type == "cpu" and _native_bf16() else None
    if amp == "off":
        return None
    if amp == "fp16":
        if dev.type != "cuda":
            raise ConfigError("schedule.amp: fp16 needs a CUDA device; use bf16 or off on a CPU")
        return torch.float16
    if amp == "bf16":
        if dev.type == "cpu" and not _native_bf16():
            log.warning(
                "schedule.amp bf16: this CPU has no native bf16 (AVX512-BF16 / AMX); oneDNN emulates it, slower than "
                "fp32"
            )
        return torch.bfloat16
    return torch.float16 if dev.type == "cuda" else None


def _native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN or without the query
        return False


def _shard_report(drawn: set[int], info: DistInfo) -> dict[str, Any]:
    """How many images each rank drew in its first epoch, and how many more than one rank drew
    (0: the DistributedSampler kept the shards disjoint; when the image count is not a multiple
    of the world size, its padding repeats up to world size - 1 images)."""
    sets = [drawn]
    if info.enabled:
        import torch.distributed as dist

        sets = [set() for _ in range(info.world_size)]
        dist.all_gather_object(sets, drawn)
    seen: dict[int, int] = {}
    for s in sets:
        for i in s:
            seen[i] = seen.get(i, 0) + 1
    return {"per_rank": [len(s) for s in sets], "overlap": sum(1 for c in seen.values() if c > 1)}


def _lr_lambda(cfg: TrainConfig, total: int):
    warm = max(cfg.schedule.warmup_steps, 0)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(1.0 - (step - warm) / max(total - warm, 1), 0.0) ** cfg.schedule.poly_power

    return f


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    max_steps: int | None = None,
    device: str = "auto",
    resume: bool = False,
    show_progress: bool = True,
    init: str | Path | None = None,
) -> dict[str, Any]:
    """Train, write checkpoints / metrics.json / curves.png under ``out_dir``; return metrics.

    ``init``: a checkpoint whose weights start the run (fine-tuning; see :func:`init_from_checkpoint`).
    ``data.workers`` DataLoader processes decode and augment (-1: :func:`default_workers`)."""
    from edgeps.model import ModelConfig, build_model

    dev = resolve_device(device)
    info = init_distributed(dev.type)
    try:
        return _train(cfg, Path(out_dir), max_steps, dev, info, resume, show_progress, init, ModelConfig, build_model)
    finally:
        cleanup(info)


def init_from_checkpoint(model: torch.nn.Module, path: str | Path, num_classes: int) -> dict[str, list[str]]:
    """Load a trained checkpoint's weights into ``model`` to fine-tune it.

    Every tensor is taken, except the semantic head's when the class count differs from the
    checkpoint's: that head stays freshly initialised (center and offset heads do not depend on
    classes and are kept). Any other difference (another backbone width, neck, channels) is a
    ConfigError naming the tensors. Returns ``{"loaded": [...], "reinitialised": [...]}``."""
    ck = load_checkpoint(path)
    source = ck["model"]
    own = model.state_dict()
    old_classes = len(ck["categories"])
    reinit_prefix = "semantic_head." if old_classes != num_classes else None
    bad = sorted(set(own) ^ set(source))
    bad += [
        k
        for k in own
        if k in source and own[k].shape != source[k].shape and not (reinit_prefix and k.startswith(reinit_prefix))
    ]
    if bad:
        raise ConfigError(
            f"--init {path}: its model differs from the config's beyond the class count "
            f"({len(bad)} tensors, e.g. {', '.join(bad[:4])}); use the model section it was trained with"
        )
    reinit = [k for k in own if reinit_prefix and k.startswith(reinit_prefix)]
    loaded = {k: v for k, v in source.items() if k not in reinit}
    model.load_state_dict(loaded, strict=False)
    return {"loaded": sorted(loaded), "reinitialised": reinit, "classes": [old_classes, num_classes]}


def _train(
    cfg, out, max_steps, dev, info: DistInfo, resume, show_progress, init, ModelConfig, build_model
) -> dict[str, Any]:
    sch = cfg.schedule
    total_steps = max_steps if max_steps is not None else sch.max_steps
    if total_steps < 1:
        raise ConfigError(f"max steps must be >= 1, got {total_steps}")
    torch.manual_seed(sch.seed + info.rank)
    if dev.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
    main = info.is_main
    show = show_progress and main

    train_set, val_set = open_train_val(cfg)
    categories: Categories = train_set.categories
    if [c.name for c in val_set.categories] != [c.name for c in categories]:
        raise ConfigError(
            f"data.val: its categories differ from data.train's ({val_set.categories.names} vs {categories.names})"
        )
    if len(train_set) < 1:
        raise DataNotFoundError(f"data.train '{cfg.data.train}' holds no images")
    spec = InputSpec(size=tuple(cfg.data.input_size))
    source = training_source(cfg, train_set, show)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
    in_memory = isinstance(source, list)
    workers = cfg.data.workers if cfg.data.workers >= 0 else default_workers(local_world, in_memory=in_memory)
    threads = sch.threads or compute_threads(workers, local_world)
    torch.set_num_threads(threads)
    sampler = EpochSampler(len(source), info, sch.seed)
    if main:
        log.info(
            "data: %d training images from %s (%d per epoch per process), %d loader workers and %d compute threads "
            "per process",
            len(source),
            cfg.data.train,
            sampler.samples_per_epoch,
            workers,
            threads,
        )

    mcfg = ModelConfig.from_dict({**cfg.model, "num_classes": len(categories)}, where="model")
    # channels-last (NHWC) activations: oneDNN's convolutions, the depthwise ones above all, run
    # faster that way on a CPU (docs/measurements.md)
    model = build_model(mcfg)
    if init is not None:
        done = init_from_checkpoint(model, init, len(categories))
        if main:
            old, new = done["classes"]
            log.info("--init %s: %d tensors loaded", init, len(done["loaded"]))
            if done["reinitialised"]:
                log.info(
                    "class count %d -> %d: semantic head re-initialised (%s)",
                    old,
                    new,
                    ", ".join(done["reinitialised"]),
                )
    model = model.to(dev, memory_format=torch.channels_last)
    if sch.sync_bn and info.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if dev.type == "cuda" else None
        )
    opt = torch.optim.AdamW(model.parameters(), lr=sch.lr, weight_decay=sch.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total_steps))
    amp_dtype = autocast_dtype(sch.amp, dev)
    if main:
        log.info(
            "forward precision: %s (schedule.amp %s)",
            "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch."),
            sch.amp,
        )
    # fp16 needs loss scaling (its exponent range is narrow); bf16 has fp32's and does not
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)

    ckpt_dir = out / "checkpoints"
    history: dict[str, list] = {
        k: []
        for k in ("step", "loss", "semantic", "center", "offset", "lr", "eval_step", "pq", "pq_things", "pq_stuff")
    }
    step, best_pq, elapsed_before = 0, -1.0, 0.0
    if resume and (ckpt_dir / "last.pt").is_file():
        ck = load_checkpoint(ckpt_dir / "last.pt")
        model.load_state_dict(ck["model"], strict=True)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, best_pq = int(ck["step"]), float(ck.get("best_pq", -1.0))
        history = {k: list(v) for k, v in ck.get("history", history).items()}
        elapsed_before = float(ck.get("elapsed_s", 0.0))
        if int(ck.get("batch_size", sch.batch_size)) != sch.batch_size or int(
            ck.get("train_images", len(source))
        ) != len(source):
            raise ConfigError(
                f"--resume: {ckpt_dir / 'last.pt'} was trained with another batch size or image count; start a new run"
            )
        sampler.start = sampler.position(step * sch.batch_size)
        if main:
            log.info("resumed from %s at step %d (epoch %d)", ckpt_dir / "last.pt", step, sampler.start.epoch)
    # Workers start here, before the first forward pass, and live for the whole run.
    batches = BatchStream(
        train_loader(
            TrainSamples(source, cfg.data, spec, sch.seed),
            sampler,
            sch.batch_size,
            workers=workers,
            device_type=dev.type,
        )
    )

    def payload(pq: float | None = None) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "best_pq": best_pq,
            "config": cfg.to_dict(),
            "categories": categories.to_list(),
            "history": history,
            "elapsed_s": elapsed_before + time.monotonic() - t_start,
            "epoch": sampler.position(step * sch.batch_size).epoch,
            "batch_size": sch.batch_size,
            "train_images": len(source),
            "pretrained": getattr(model, "pretrained_status", "unknown"),
            "pq": pq,
        }

    def evaluate(n: int | None) -> dict[str, Any]:
        model.eval()
        predictor = TorchPredictor(model, categories, spec, cfg.postprocess)
        res = evaluate_predictor(predictor, val_set, max_images=n, show_progress=show, desc="eval")
        model.train()
        return res

    bar = None
    if show:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total_steps, initial=step, desc="train", dynamic_ncols=True)
        except ImportError:
            bar = None
    t_start = time.monotonic()
    first_epoch, drawn = sampler.start.epoch, set()  # the images this rank drew in its first epoch
    # Throughput is timed from the step after the first few (worker start-up, cuDNN autotuning).
    first_timed, t_timed = step + min(5, max((total_steps - step) // 4, 0)), None
    budget = sch.max_minutes * 60.0
    model.train()
    last_print = 0.0
    while step < total_steps:
        loaded = next(batches)
        drawn.update(loaded["index"][loaded["epoch"] == first_epoch].tolist())
        batch = train_batch(loaded, categories.thing_ids, cfg.data, spec, dev, cfg.loss)
        with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            outputs = net(batch["image"])
        losses = panoptic_losses({k: v.float() for k, v in outputs.items()}, batch, cfg.loss)
        if not torch.isfinite(losses["loss"]):
            raise FloatingPointError(f"loss became {losses['loss'].item()} at step {step}: lower schedule.lr")
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        step += 1
        if step == first_timed:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_timed = time.monotonic()
        vals = {k: float(v.detach()) for k, v in losses.items()}
        if main:
            history["step"].append(step)
            for k in ("loss", "semantic", "center", "offset"):
                history[k].append(vals[k])
            history["lr"].append(sched.get_last_lr()[0])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{vals['loss']:.3f}",
                sem=f"{vals['semantic']:.3f}",
                ctr=f"{vals['center']:.4f}",
                off=f"{vals['offset']:.2f}",
            )
        elif main and time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            log.info(
                "step %d/%d loss %.3f (sem %.3f ctr %.4f off %.2f)",
                step,
                total_steps,
                vals["loss"],
                vals["semantic"],
                vals["center"],
                vals["offset"],
            )
        out_of_time = budget > 0 and time.monotonic() - t_start >= budget
        stop = any_rank(out_of_time, info)
        if main and sch.eval_every and step % sch.eval_every == 0 and step < total_steps and not stop:
            res = evaluate(cfg.data.val_images)
            history["eval_step"].append(step)
            for key, group in (("pq", "All"), ("pq_things", "Things"), ("pq_stuff", "Stuff")):
                history[key].append(res[group]["pq"])
            if bar is not None:
                bar.write(
                    f"step {step}: PQ {100 * res['All']['pq']:.1f} (things {100 * res['Things']['pq']:.1f}, stuff "
                    f"{100 * res['Stuff']['pq']:.1f})"
                )
            if res["All"]["pq"] > best_pq:
                best_pq = res["All"]["pq"]
                save_checkpoint(ckpt_dir / "best.pt", payload(best_pq))
        if main and sch.checkpoint_every and step % sch.checkpoint_every == 0:
            save_checkpoint(ckpt_dir / "last.pt", payload())
        if stop:
            if main:
                log.info("time budget of %.1f min reached at step %d", sch.max_minutes, step)
            break
    if bar is not None:
        bar.close()
    batches.close()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_end = time.monotonic()
    train_seconds = elapsed_before + t_end - t_start
    steps_per_s = (step - first_timed) / (t_end - t_timed) if t_timed is not None and step > first_timed else None
    metrics: dict[str, Any] = {
        "steps": step,
        "train_seconds": train_seconds,
        "world_size": info.world_size,
        "workers": workers,
        "threads": threads,
        "train_images": len(source),
        "epochs": step * sch.batch_size / sampler.samples_per_epoch,
        "steps_per_s": steps_per_s,  # after the first few steps; None for a very short run
        "images_per_s": None if steps_per_s is None else steps_per_s * sch.batch_size * info.world_size,
    }
    metrics["shards"] = _shard_report(drawn, info)
    if main and info.enabled:
        log.info(
            "data shards: %s images per rank in the first epoch, %d drawn by more than one rank",
            metrics["shards"]["per_rank"],
            metrics["shards"]["overlap"],
        )
    if main and steps_per_s is not None:
        log.info(
            "throughput: %.2f steps/s, %.1f images/s (%d processes, %d workers each)",
            steps_per_s,
            metrics["images_per_s"],
            info.world_size,
            workers,
        )
    if main:
        res = evaluate(cfg.data.val_images)
        history["eval_step"].append(step)
        for key, group in (("pq", "All"), ("pq_things", "Things"), ("pq_stuff", "Stuff")):
            history[key].append(res[group]["pq"])
        if res["All"]["pq"] >= best_pq:
            best_pq = res["All"]["pq"]
            save_checkpoint(ckpt_dir / "best.pt", payload(best_pq))
        save_checkpoint(ckpt_dir / "last.pt", payload(res["All"]["pq"]))
        from edgeps.model.complexity import count_flops, count_parameters

        metrics.update(
            {
                "final_eval": {k: res[k] for k in ("All", "Things", "Stuff", "miou", "images")},
                "best_pq": best_pq,
                "parameters": count_parameters(model),
                "gflops_at_input_size": count_flops(model, tuple(cfg.data.input_size)),
                "input_size": list(cfg.data.input_size),
                "pretrained": getattr(model, "pretrained_status", "unknown"),
                "history": history,
            }
        )
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=float))
        plot_curves(out / "curves.png", history)
    return metrics


__all__ = ["resolve_device", "train"]
