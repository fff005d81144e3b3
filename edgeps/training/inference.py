"""Run a torch model on frames: the reference every exported backend is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeps.categories import Categories
from edgeps.errors import FormatError
from edgeps.postprocess import PostprocessSettings, panoptic_from_outputs
from edgeps.preprocess import InputSpec, frame_geometry, preprocess
from edgeps.training.checkpoint import load_checkpoint
from edgeps.training.config import config_from_dict


def heads_from_logits(outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Training outputs -> deployment heads: class map + max probability instead of logits
    (the same ArgMax the exported graphs end with)."""
    prob, cls = outputs["semantic"].softmax(dim=1).max(dim=1)
    return {
        "semantic": cls.to(torch.int32).cpu().numpy(),
        "semantic_prob": prob.float().cpu().numpy(),
        "center": outputs["center"].float().cpu().numpy(),
        "offset": outputs["offset"].float().cpu().numpy(),
    }


class TorchPredictor:
    """A model in eval mode + its input spec, categories and post-processing settings."""

    def __init__(self, model: torch.nn.Module, categories: Categories, spec: InputSpec, settings: PostprocessSettings):
        self.model = model.eval()
        self.categories = categories
        self.spec = spec
        self.settings = settings
        self.thing_ids = categories.thing_ids

    @torch.inference_mode()
    def heads(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(preprocess(frame, self.spec))
        device = next(self.model.parameters()).device
        return heads_from_logits(self.model(x.to(device)))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = self.heads(frame)
        return panoptic_from_outputs(
            out,
            thing_ids=self.thing_ids,
            settings=self.settings,
            geometry=frame_geometry(frame.shape[:2], self.spec),
            compute_scores=False,
        ).panoptic


def model_from_checkpoint(
    ckpt: dict[str, Any] | str | Path, *, pretrained: bool = False
) -> tuple[torch.nn.Module, Categories, Any]:
    """(model with weights loaded strictly, train-id categories, TrainConfig) from a checkpoint."""
    from edgeps.model import ModelConfig, build_model

    where = "checkpoint"
    if not isinstance(ckpt, dict):
        where = str(ckpt)
        ckpt = load_checkpoint(ckpt)
    cfg = config_from_dict(ckpt["config"], where=f"{where}: config")
    categories = Categories.from_list(ckpt["categories"], where=f"{where}: categories")
    mcfg = ModelConfig.from_dict(
        {**cfg.model, "num_classes": len(categories), "pretrained": pretrained}, where=f"{where}: model"
    )
    model = build_model(mcfg)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise FormatError(
            f"{where}: weights do not fit the model config it names (another model config?): "
            f"{' '.join(str(exc).split())[:300]}"
        ) from None
    return model.eval(), categories, cfg


def predictor_from_checkpoint(path: str | Path) -> TorchPredictor:
    model, categories, cfg = model_from_checkpoint(path)
    spec = InputSpec(size=tuple(cfg.data.input_size))
    return TorchPredictor(model, categories, spec, cfg.postprocess)
