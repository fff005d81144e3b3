"""Torch bundle: the state dict (loadable with weights_only=True) + manifest, so the torch
reference runs through the same runtime interface as every exported format."""

from __future__ import annotations

import torch

from edgeps.atomic import atomic_path
from edgeps.export.job import ExportArtifact, ExportJob, timed_export


@timed_export
def export(job: ExportJob) -> ExportArtifact:
    with atomic_path(job.out_dir / job.model_file) as tmp:
        torch.save(job.model.state_dict(), tmp)
    return ExportArtifact(job.model_file)
