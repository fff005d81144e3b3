"""The Runtime contract every backend module implements (only ``_infer`` differs)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeps.bundle import CENTER_HEADS, GROUPING_HEADS, MANIFEST_NAME, Manifest
from edgeps.errors import FormatError, InputShapeError
from edgeps.postprocess import PostprocessSettings, panoptic_from_outputs
from edgeps.preprocess import as_bgr, frame_geometry, preprocess
from edgeps.result import PanopticResult


class Runtime:
    """A loaded bundle: one session made once, then ``predict`` per frame.

    Thread safety: one runtime may be shared by several threads. The backend call
    (``infer``, and so the inference step of ``predict``) holds a per-runtime lock, because
    backend sessions are not all safe to enter concurrently (an OpenVINO infer request, a
    TFLite interpreter's tensors, ...); ``preprocess`` and ``postprocess`` are pure functions of
    their arguments and run concurrently outside it. Concurrent ``predict`` calls therefore
    give exactly the results of sequential calls (tests/test_thread_safety.py), but their
    inference runs one at a time: to overlap inference, use one runtime per thread, or the
    staged :class:`edgeps.stream.pipeline.StreamPipeline`.
    """

    name = "base"

    def __init__(
        self, bundle_dir: Path, manifest: Manifest, *, device: str = "cpu", threads: int | None = None, **options: Any
    ):
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.device = device
        self.threads = threads
        self.options = options
        self.thing_ids = manifest.categories.thing_ids
        self._lock = threading.Lock()
        self.info: dict[str, Any] = {
            "backend": self.name,
            "format": manifest.format,
            "precision": manifest.precision,
            "input_size": list(manifest.input.size),
            "model_name": manifest.model_name,
            "requested_device": device,
        }

    # -- the contract ------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return preprocess(image, self.manifest.input)

    @property
    def max_batch(self) -> int | None:
        """Frames one model call takes at most: 1, a fixed N (a shorter batch is padded to N), or
        None for any number (a bundle exported with ``--batch dynamic``)."""
        batch = self.manifest.batch
        return None if batch == "dynamic" else int(batch)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Model call on a preprocessed batch: float32 (B, 3, H, W) (NHWC bundles: (B, H, W, 3)),
        1 <= B <= ``max_batch``. A fixed-batch model gets the batch padded to its N with copies
        of the first frame. Returns head -> array with B rows (layouts in ``HEAD_LAYOUTS``)."""
        size = self.manifest.input.size
        tail = (3, *size) if self.manifest.input.layout == "NCHW" else (*size, 3)
        most = self.max_batch
        ok = (
            isinstance(batch, np.ndarray)
            and batch.dtype == np.float32
            and batch.ndim == 4
            and batch.shape[1:] == tail
            and 1 <= batch.shape[0] <= (most or batch.shape[0])
        )
        if not ok:
            got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
            lead = "1" if most == 1 else ("B" if most is None else f"B <= {most}")
            raise InputShapeError(
                f"infer: expected a float32 batch of shape ({lead}, {', '.join(map(str, tail))}) (from rt.preprocess), "
                f"got {got}"
            )
        n = batch.shape[0]
        if most is not None and n < most:
            batch = np.concatenate([batch, np.repeat(batch[:1], most - n, axis=0)], axis=0)
        with self._lock:
            heads = self._infer(batch)
        return heads if most is None or n == most else {h: v[:n] for h, v in heads.items()}

    def infer_frames(self, batches: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Heads of several preprocessed frames (each (1, ...) from ``preprocess``) in as few model
        calls as the bundle allows: all at once for a dynamic batch, chunks of N for a fixed N,
        one by one for batch 1. Returns one head dict per frame, each with one row; equal to
        ``infer`` on each frame alone up to the backend's batch-dependent rounding."""
        frames = list(batches)
        chunk = self.max_batch or max(len(frames), 1)
        out: list[dict[str, np.ndarray]] = []
        for start in range(0, len(frames), chunk):
            part = frames[start : start + chunk]
            heads = self.infer(part[0] if len(part) == 1 else np.concatenate(part, axis=0))
            out.extend({h: v[i : i + 1] for h, v in heads.items()} for i in range(len(part)))
        return out

    def predict_many(self, images: Sequence[np.ndarray]) -> list[PanopticResult]:
        """``predict`` for several frames (of any sizes), inferred together by ``infer_frames``;
        ``timings`` per result: that frame's preprocess and postprocess, and the shared model call
        divided by the number of frames."""
        t0 = time.perf_counter()
        frames = [as_bgr(image, f"images[{i}]") for i, image in enumerate(images)]
        batches = [self.preprocess(f) for f in frames]
        t1 = time.perf_counter()
        heads = self.infer_frames(batches)
        t2 = time.perf_counter()
        results = []
        for frame, h in zip(frames, heads):
            ta = time.perf_counter()
            result = self.postprocess(h, frame.shape[:2])
            result.timings = {
                "preprocess": (t1 - t0) * 1e3 / len(frames),
                "infer": (t2 - t1) * 1e3 / len(frames),
                "postprocess": (time.perf_counter() - ta) * 1e3,
            }
            results.append(result)
        return results

    def set_postprocess(self, **overrides: Any) -> PostprocessSettings:
        """Override the bundle's post-processing settings (threshold, nms_kernel, top_k,
        stuff_area, thing_area) for this session; None keeps the bundle's value. Validated like the
        manifest, so a bad value names its field."""
        merged = {**self.manifest.postprocess.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        settings = PostprocessSettings.from_dict(merged, where="postprocess override")
        self.manifest = dataclasses.replace(self.manifest, postprocess=settings)
        return settings

    def postprocess(self, heads: dict[str, np.ndarray], frame_hw: tuple[int, int]) -> PanopticResult:
        """Heads of one frame -> panoptic map at the frame's size (``frame_hw`` = (H, W)) and its
        segments. A separate stage so a streaming pipeline can run it on its own thread."""
        self._check_classes(heads.get("semantic"))
        if self.manifest.graph_centers is not None and not self._graph_centers_apply():
            heads = {h: v for h, v in heads.items() if h not in CENTER_HEADS + GROUPING_HEADS}
        pred = panoptic_from_outputs(
            heads,
            thing_ids=self.thing_ids,
            settings=self.manifest.postprocess,
            geometry=frame_geometry(frame_hw, self.manifest.input),
        )
        segments = pred.segments(self.manifest.postprocess.label_divisor, self.manifest.postprocess.void_label)
        for seg in segments:
            seg.score = pred.scores.get(seg.id)
        return PanopticResult(pred.panoptic, segments)

    def _graph_centers_apply(self) -> bool:
        """Whether the graph's center candidates answer for the current settings (they were
        extracted with the manifest's ``graph_centers``; an override sends the host back to
        the heatmap)."""
        graph = self.manifest.graph_centers
        post = self.manifest.postprocess
        return graph is not None and (
            float(graph["threshold"]) == float(post.threshold)
            and int(graph["nms_kernel"]) == post.nms_kernel
            and post.top_k is not None
            and int(graph["top_k"]) == post.top_k
        )

    def predict(self, image: np.ndarray) -> PanopticResult:
        t0 = time.perf_counter()
        frame = as_bgr(image, "image")
        batch = self.preprocess(frame)
        t1 = time.perf_counter()
        heads = self.infer(batch)
        t2 = time.perf_counter()
        result = self.postprocess(heads, frame.shape[:2])
        t3 = time.perf_counter()
        result.timings = {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return result

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The panoptic map alone: a predictor for :func:`edgeps.evaluation.evaluate_predictor`."""
        return self.predict(image).panoptic

    def _check_classes(self, semantic: np.ndarray | None) -> None:
        """Every class the model emits must be one of the manifest's categories (train ids
        0..N-1), or ids would decode to classes nobody can name or colour."""
        n = len(self.manifest.categories)
        if not isinstance(semantic, np.ndarray) or semantic.size == 0:
            return
        if np.issubdtype(semantic.dtype, np.integer):
            top = int(semantic.max())
            if top >= n:
                raise FormatError(
                    f"{self.bundle_dir / MANIFEST_NAME}: the model predicts class {top}, the manifest lists {n} "
                    f"categories (0..{n - 1})"
                )
        elif semantic.ndim == 4 and semantic.shape[1] != n:
            raise FormatError(
                f"{self.bundle_dir / MANIFEST_NAME}: the model has {semantic.shape[1]} classes, the manifest lists "
                f"{n} categories"
            )

    # -- for backends ---------------------------------------------------------------------
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _outputs_by_head(self, values: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Positional model outputs -> heads, by the manifest's output indices."""
        out = {}
        for head, desc in self.manifest.outputs.items():
            if desc["index"] >= len(values):
                raise FormatError(
                    f"{self.bundle_dir / MANIFEST_NAME}: outputs.{head}.index is {desc['index']}, the model has "
                    f"{len(values)} outputs"
                )
            out[head] = values[desc["index"]]
        return out
