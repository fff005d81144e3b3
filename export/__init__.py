"""Export a trained checkpoint to deployable bundles (installed as ``edgeps.export``).

The formats are the rows of :data:`edgeps.formats.FORMATS` (re-exported here); each is one
small module with ``export(job) -> ExportArtifact``, run by :mod:`edgeps.export.pipeline`.
"""

from __future__ import annotations

from edgeps.formats import FORMATS, Format

__all__ = ["FORMATS", "Format"]
