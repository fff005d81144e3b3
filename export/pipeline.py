"""Checkpoint -> bundles: one folder ``<format>-<precision>`` per combination, each ending
with the parity gate and a manifest that records it.

The request (formats x precisions x int8 target) is checked against
:data:`edgeps.formats.FORMATS` before anything is exported: every bad part is named in one
error. Then every combination is exported; one that fails (converter error or parity gate) is
kept as ``<name>.rejected`` when it got as far as the gate, and the others go on.
:class:`ExportFailed` at the end lists the failures and carries the bundles that passed.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeps.atomic import replace_dir, temp_name
from edgeps.bundle import POSTPROCESS_PLACES, Manifest, write_manifest
from edgeps.calibration.sets import CalibrationSet, load_calibration_set
from edgeps.errors import ConfigError, EdgepsError, ExportError
from edgeps.export.job import ExportJob
from edgeps.export.parity import check_parity, parity_report
from edgeps.formats import (
    BATCH_FORMATS,
    FORMATS,
    GRAPH_GROUPING_FORMATS,
    GRAPH_POSTPROCESS_FORMATS,
    check_export_request,
)
from edgeps.hashing import file_sha256
from edgeps.model.deploy import OUTPUT_LAYOUTS
from edgeps.preprocess import InputSpec
from edgeps.training.inference import TorchPredictor, model_from_checkpoint
from edgeps.validate import check_batch_value

log = logging.getLogger("edgeps.export")


@dataclass
class ExportResult:
    """A bundle that passed its gate: ``path`` is ``OUT/<name>``; ``parity`` is the manifest's."""

    name: str
    path: Path
    seconds: float
    size_bytes: int
    parity: dict[str, Any]


class ExportFailed(ExportError):
    """Some combinations failed: ``failures`` maps each name to its error message, ``results``
    holds the bundles that passed (written and valid)."""

    def __init__(self, results: list[ExportResult], failures: dict[str, str]) -> None:
        self.results, self.failures = results, failures
        done = f"{len(results)} bundle(s) passed" if results else "no bundle passed"
        super().__init__(
            f"{len(failures)} export(s) failed ({done}): " + "; ".join(f"{k}: {v}" for k, v in failures.items())
        )


def _model_data(cfg: Any, calib: str | None, parity_data: str | None, *, need_calib: bool) -> tuple[str, str]:
    """The calibration and parity specs: as given, else the checkpoint's own training split
    (calibration) and validation split (parity), which are disjoint images. A checkpoint whose
    data is not on this machine is an error naming both flags, never a silent fallback."""
    from edgeps.data.datasets import open_dataset, parse_data_spec

    chosen = []
    for given, field, split, needed in ((calib, "train", "train", need_calib), (parity_data, "val", "val", True)):
        if given is not None:
            chosen.append(given)
            continue
        spec = str(parse_data_spec(getattr(cfg.data, field)).with_split(split))
        if needed:
            try:
                open_dataset(spec)
            except EdgepsError as exc:
                raise ConfigError(
                    f"the checkpoint was trained on data.{field} {getattr(cfg.data, field)!r}, which cannot be "
                    "opened here "
                    f"({exc}); give calibration and parity images with --calib SPEC and --parity-data SPEC"
                ) from None
        chosen.append(spec)
    return chosen[0], chosen[1]


def export_bundles(
    checkpoint: str | Path,
    formats: list[str],
    precisions: list[str],
    out: str | Path,
    *,
    calib: str | None = None,
    calib_images: int = 32,
    parity_data: str | None = None,
    parity_images: int = 8,
    size: tuple[int, int] | None = None,
    target: str = "generic",
    dynamic_hw: bool = False,
    resize: str = "letterbox",
    postprocess: str = "host",
    batch: int | str = 1,
) -> list[ExportResult]:
    """Export ``checkpoint`` to one bundle per (format, precision) under ``out``.

    Args:
        formats, precisions: names from :data:`edgeps.formats.FORMATS`; every combination a
            format offers is exported (torch has fp32 only). Unknown names, a precision no
            requested format offers or a bad int8 target are one error before anything is done.
        calib, parity_data: data specs; default: the checkpoint's own train / val splits.
        size: model input (H, W); default: the training input size.
        target: the int8 target (one of each int8 format's ``targets``).
        postprocess: ``host`` (the runtime finds the centers in the heatmap) or ``graph``
            (the graph extracts them with the checkpoint's threshold / nms_kernel / top_k and
            outputs the top-K candidates; formats in GRAPH_POSTPROCESS_FORMATS only, the others
            keep ``host`` and say so), or ``grouping`` (``graph``, and the graph also groups the
            thing pixels to their nearest voted center: the runtime receives the instance map;
            formats in GRAPH_GROUPING_FORMATS, the others keep ``graph``). Recorded in the
            manifest as ``graph_centers``; the parity gate then also checks the panoptic maps
            against the host path.
        batch: frames per model call: 1, a fixed N (the runtime pads a shorter batch), or
            ``"dynamic"``; formats in BATCH_FORMATS only, the others export batch 1 and say so.
            Recorded in the manifest as ``input.batch``; the parity gate runs at batch 1 and
            checks that a batch of two gives each frame's heads.

    Returns:
        The bundles, in request order, each past its parity gate.

    Raises:
        ConfigError: a bad request (all its problems in one message), data that cannot be opened.
        ExportFailed: after every combination was tried, when some failed; it holds the rest.
    """
    from edgeps.data.datasets import open_dataset

    try:
        jobs, left_out = check_export_request(formats, precisions, target)
    except ValueError as exc:
        raise ConfigError(f"export request: {exc}") from None
    if left_out:
        log.info("not exported (the format does not offer that precision): %s", ", ".join(left_out))
    if postprocess not in POSTPROCESS_PLACES:
        raise ConfigError(f"--postprocess: one of {', '.join(POSTPROCESS_PLACES)}, got {postprocess!r}")
    batch = check_batch(batch, [f for f, _ in jobs])
    model, categories, cfg = model_from_checkpoint(checkpoint)
    spec = InputSpec(size=tuple(size or cfg.data.input_size), resize=resize)
    cfg = _settings_at_size(cfg, spec.size)
    graph_centers = _graph_centers(cfg, postprocess, dynamic_hw, [f for f, _ in jobs], categories.thing_ids)
    calib, parity_data = _model_data(cfg, calib, parity_data, need_calib=any(p == "int8" for _, p in jobs))
    calibration: CalibrationSet | None = None
    if any(p == "int8" for _, p in jobs):
        calibration = load_calibration_set(calib, spec, n=calib_images)
        log.info("calibration: %d images from %s", len(calibration.batches), calib)
    parity_set = open_dataset(parity_data)
    if calibration is not None and set(calibration.names) & {
        parity_set[i].name for i in range(min(parity_images, len(parity_set)))
    }:
        raise ConfigError(f"parity images ({parity_data}) overlap the calibration images ({calib}): use disjoint sets")
    reference = TorchPredictor(model, categories, spec, cfg.postprocess)
    sha = file_sha256(checkpoint)
    out = Path(out)
    results: list[ExportResult] = []
    failures: dict[str, str] = {}
    run = _ExportRun(
        model,
        categories,
        cfg,
        spec,
        calibration,
        target,
        dynamic_hw,
        reference,
        parity_set,
        parity_data,
        parity_images,
        Path(checkpoint),
        sha,
        out,
        graph_centers,
        batch,
    )
    for fmt, precision in jobs:
        name = f"{fmt}-{precision}"
        try:
            results.append(_export_one(fmt, precision, run))
        except (ConfigError, ExportError) as exc:
            failures[name] = " ".join(str(exc).split())
            log.error("%s: %s", name, failures[name])
    if failures:
        raise ExportFailed(results, failures)
    return results


@dataclass
class _ExportRun:
    """What every combination of one export_bundles call shares."""

    model: Any
    categories: Any
    cfg: Any
    spec: InputSpec
    calibration: CalibrationSet | None
    target: str
    dynamic_hw: bool
    reference: Any
    parity_set: Any
    parity_data: str
    parity_images: int
    checkpoint: Path
    sha: str
    out: Path
    graph_centers: dict[str, Any] | None = None
    batch: int | str = 1


def check_batch(batch: Any, formats: list[str]) -> int | str:
    """``--batch``: a positive integer or ``dynamic`` (a string of digits is read as N)."""
    if isinstance(batch, str) and batch.isdigit():
        batch = int(batch)
    batch = check_batch_value(batch, "--batch")
    unbatched = sorted({f for f in formats if f not in BATCH_FORMATS})
    if batch != 1 and unbatched:
        log.info("batch 1 for %s (a batch dimension: %s)", ", ".join(unbatched), ", ".join(BATCH_FORMATS))
    return batch


def _graph_centers(
    cfg: Any, postprocess: str, dynamic_hw: bool, formats: list[str], thing_ids: Any
) -> dict[str, Any] | None:
    """The settings a ``--postprocess graph|grouping`` export bakes in (None for host):
    threshold / nms_kernel / top_k, and for ``grouping`` also ``grouping: True`` and the thing
    class ids."""
    if postprocess == "host":
        return None
    post = cfg.postprocess
    if post.top_k is None:
        raise ConfigError("--postprocess graph needs postprocess.top_k (the graph's outputs have a fixed size)")
    if dynamic_hw:
        raise ConfigError("--postprocess graph takes a static input size (no --dynamic-hw)")
    host_only = sorted({f for f in formats if f not in GRAPH_POSTPROCESS_FORMATS})
    if host_only:
        log.info(
            "centers stay on the host for %s (graph post-processing: %s)",
            ", ".join(host_only),
            ", ".join(GRAPH_POSTPROCESS_FORMATS),
        )
    centers = {"threshold": float(post.threshold), "nms_kernel": int(post.nms_kernel), "top_k": int(post.top_k)}
    if postprocess != "grouping":
        return centers
    centers_only = sorted({f for f in formats if f in GRAPH_POSTPROCESS_FORMATS and f not in GRAPH_GROUPING_FORMATS})
    if centers_only:
        log.info(
            "grouping stays on the host for %s (graph grouping: %s)",
            ", ".join(centers_only),
            ", ".join(GRAPH_GROUPING_FORMATS),
        )
    return {**centers, "grouping": True, "thing_ids": [int(t) for t in thing_ids]}


def _graph_settings_for(fmt: str, graph_centers: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``fmt``'s graph gets of the run's graph post-processing settings."""
    if graph_centers is None or fmt not in GRAPH_POSTPROCESS_FORMATS:
        return None
    if graph_centers.get("grouping") and fmt not in GRAPH_GROUPING_FORMATS:
        return {k: v for k, v in graph_centers.items() if k not in ("grouping", "thing_ids")}
    return graph_centers


def _settings_at_size(cfg: Any, size: tuple[int, int]) -> Any:
    """``cfg`` with its post-processing settings for a model input of ``size`` (H, W): they
    are in model pixels, so ``stuff_area`` and ``thing_area`` scale with the input area relative
    to training."""
    trained = tuple(cfg.data.input_size)
    if tuple(size) == trained:
        return cfg
    scale = (size[0] * size[1]) / (trained[0] * trained[1])
    post = dataclasses.replace(
        cfg.postprocess,
        stuff_area=max(0, round(cfg.postprocess.stuff_area * scale)),
        thing_area=max(0, round(cfg.postprocess.thing_area * scale)),
    )
    return dataclasses.replace(cfg, postprocess=post)


def _export_one(fmt: str, precision: str, run: _ExportRun) -> ExportResult:
    """One combination: export into a hidden folder, gate it, rename it into place (or to
    ``<name>.rejected`` when the gate fails, which raises ExportError)."""
    from edgeps.runtimes import load

    info = FORMATS[fmt]
    name = f"{fmt}-{precision}"
    final = run.out / name
    # Built under a hidden temporary name and renamed into place once it passed the parity
    # gate: a killed export never leaves a folder that looks like a finished bundle.
    bundle = temp_name(final)
    bundle.mkdir(parents=True)
    try:
        module = importlib.import_module(f"edgeps.export.{info.export_module}")
        job = ExportJob(
            run.model,
            dict(run.cfg.model),
            run.spec,
            precision,
            bundle,
            info.model_file,
            run.calibration,
            run.target,
            run.dynamic_hw,
            _graph_settings_for(fmt, run.graph_centers),
            run.batch if fmt in BATCH_FORMATS else 1,
        )
        heads = job.output_heads()
        try:
            art = module.export(job)
        except (ConfigError, ExportError):
            raise
        except Exception as exc:
            raise ExportError(f"{name}: {fmt} export failed: {type(exc).__name__}: {str(exc)[:400]}") from exc
        manifest = Manifest(
            model_name=f"{Path(run.checkpoint).stem}-{name}",
            format=fmt,
            precision=precision,
            model_file=art.model_file,
            categories=run.categories,
            input=run.spec,
            outputs={
                h: {"name": h, "index": art.output_index.get(h, i), "layout": OUTPUT_LAYOUTS[h]}
                for i, h in enumerate(heads)
            },
            postprocess=run.cfg.postprocess,
            label_divisor=run.cfg.postprocess.label_divisor,
            model_config={k: v for k, v in run.cfg.model.items() if k not in ("num_classes", "pretrained")},
            calibration=run.calibration.summary() if (run.calibration is not None and precision == "int8") else None,
            source_checkpoint_sha256=run.sha,
            target=art.target,
            graph_centers=job.graph_centers,
            batch=job.batch,
        )
        write_manifest(bundle, manifest)
        runtime = load(bundle, backend=info.backend)
        report = parity_report(runtime, run.reference, run.model, run.parity_set, run.parity_images, precision)
        del runtime  # releases the model file before the folder is renamed
        report["data"] = run.parity_data
        manifest.parity = report
        write_manifest(bundle, manifest)
    except BaseException:
        shutil.rmtree(bundle, ignore_errors=True)
        raise
    log.info(
        "%s: %.1f s, %.2f MB, parity: max|diff| %s, class agreement %.4f, PQ %.2f vs torch %.2f",
        name,
        art.seconds,
        art.size_bytes / 1e6,
        {k: f"{v:.2e}" for k, v in report["max_abs_diff"].items()},
        report["class_agreement"],
        100 * report["pq_bundle"],
        100 * report["pq_torch_fp32"],
    )
    try:
        check_parity(report, name)
    except ExportError:
        replace_dir(bundle, run.out / (name + ".rejected"))
        if final.exists():  # no stale bundle of this name stays beside the rejected one
            shutil.rmtree(final)
        raise
    replace_dir(bundle, final)
    return ExportResult(name, final, art.seconds, art.size_bytes, report)
