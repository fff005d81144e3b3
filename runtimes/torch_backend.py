"""Torch backend: the reference model in eager mode, behind the same interface as the others."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeps.bundle import Manifest
from edgeps.errors import ConfigError, FormatError, brief
from edgeps.runtimes.base import Runtime


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(
        self, bundle_dir: Path, manifest: Manifest, *, device: str = "cpu", threads: int | None = None, **options: Any
    ):
        super().__init__(bundle_dir, manifest, device=device, threads=threads, **options)
        from edgeps.model import ModelConfig, PanopticModel
        from edgeps.model.deploy import DeployModel

        if options:
            raise ConfigError(f"torch backend: unknown options {sorted(options)}")
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"device: the torch backend takes cpu or cuda, got {device!r}")
        if threads:
            torch.set_num_threads(threads)
        path = bundle_dir / manifest.model_file
        if not zipfile.is_zipfile(path):
            raise FormatError(
                f"{path}: not a torch state dict (expected the zip archive torch.save writes; the file is truncated "
                "or corrupt)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise FormatError(f"{path}: not a readable torch state dict ({brief(exc)})") from None
        cfg = ModelConfig.from_dict(
            {**manifest.model_config, "num_classes": len(manifest.categories), "pretrained": False}
        )
        model = PanopticModel(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise FormatError(f"{path}: weights do not fit the manifest's model_config ({brief(exc)})") from None
        self._device = torch.device(device if device == "cpu" or torch.cuda.is_available() else "cpu")
        self.model = DeployModel(model).to(self._device).eval()
        self.info.update(
            {"device": self._device.type, "threads": torch.get_num_threads(), "versions": {"torch": torch.__version__}}
        )

    @torch.inference_mode()
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.model(torch.from_numpy(batch).to(self._device))
        return self._outputs_by_head([o.cpu().numpy() for o in outs])


BACKEND = TorchRuntime
