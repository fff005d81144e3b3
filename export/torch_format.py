"""Torch bundle: the state dict (loadable with weights_only=True) + manifest, so the torch
reference runs through the same runtime interface as every exported format."""

from __future__ import annotations

import torch

from edgeps.export.job import ExportArtifact, ExportJob, timed_export


@timed_export
def export(job: ExportJob) -> ExportArtifact:
    tmp = job.out_dir / (job.model_file + ".tmp")
    torch.save(job.model.state_dict(), tmp)
    tmp.replace(job.out_dir / job.model_file)
    return ExportArtifact(job.model_file)
