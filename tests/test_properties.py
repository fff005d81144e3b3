"""Property-based tests (hypothesis): parsers either parse or raise a typed edgeps error (never
another exception), and post-processing keeps its invariants on random heads of random sizes."""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeps.errors import EdgepsError

# modest by default (CI time); EDGEPS_HYPOTHESIS_EXAMPLES=5000 for a deeper search by hand
EXAMPLES = int(os.environ.get("EDGEPS_HYPOTHESIS_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# YAML-like values, including the awkward ones (bool vs int, NaN, huge numbers, nesting)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=8,
)


def _paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists (the places a mutation can hit)."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict, roots: tuple[str, ...] = ()) -> dict:
    """``base`` with one to three random edits: replace a value, delete a key, add a key
    (only under the top-level keys ``roots`` when given, to search a section harder)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if not roots or p[0] in roots]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return doc


# ------------------------------------------------------------------------------ manifest
def _valid_manifest() -> dict:
    from edgeps.bundle import Manifest
    from edgeps.data.synthetic import SYNTH_CATEGORIES
    from edgeps.postprocess import PostprocessSettings
    from edgeps.preprocess import InputSpec

    m = Manifest(
        model_name="tiny",
        format="onnx",
        precision="int8",
        model_file="model.onnx",
        categories=SYNTH_CATEGORIES,
        input=InputSpec((64, 128)),
        outputs={
            h: {"name": h, "index": i, "layout": "NCHW"}
            for i, h in enumerate(("semantic", "semantic_prob", "center", "offset"))
        },
        postprocess=PostprocessSettings(),
        calibration={"source": "synth:train:8", "images": 8},
    )
    return m.to_dict()


MANIFEST = _valid_manifest()


def _parses_or_typed_error(fn: Any, doc: Any) -> Any:
    try:
        return fn(doc)
    except EdgepsError as exc:
        assert str(exc), "an edgeps error must say what is wrong"
        return None


def test_the_base_manifest_parses():
    from edgeps.bundle import manifest_from_dict

    m = manifest_from_dict(MANIFEST)
    assert manifest_from_dict(m.to_dict()).to_dict() == m.to_dict()


@FAST
@given(mutated(MANIFEST))
def test_mutated_manifest_parses_or_raises_a_typed_error(doc):
    from edgeps.bundle import manifest_from_dict

    m = _parses_or_typed_error(manifest_from_dict, doc)
    if m is not None:  # what parses must round-trip
        assert manifest_from_dict(m.to_dict()).to_dict() == m.to_dict()
        assert all(0 <= d["index"] for d in m.outputs.values())


@FAST
@given(mutated(MANIFEST, roots=("outputs", "input", "postprocess", "format_version", "label_divisor")))
def test_mutated_manifest_sections_parse_or_raise_a_typed_error(doc):
    from edgeps.bundle import manifest_from_dict

    m = _parses_or_typed_error(manifest_from_dict, doc)
    if m is not None:
        indices = [d["index"] for d in m.outputs.values()]
        assert all(isinstance(i, int) and i >= 0 for i in indices) and len(set(indices)) == len(indices)
        assert all(v > 0 for v in m.input.size) and min(m.input.std) > 0
        assert m.label_divisor == m.postprocess.label_divisor


@FAST
@given(VALUES)
def test_random_manifest_document_parses_or_raises_a_typed_error(doc):
    from edgeps.bundle import manifest_from_dict

    assert _parses_or_typed_error(manifest_from_dict, doc) is None


CATEGORY = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(0, 2**40), VALUES),
        "name": st.one_of(st.sampled_from(["road", "car", "sky"]), VALUES),
        "isthing": st.one_of(st.sampled_from([0, 1, True, False]), VALUES),
        "color": st.one_of(st.none(), st.lists(st.integers(-5, 300), min_size=3, max_size=3), VALUES),
    },
)


@FAST
@given(st.lists(CATEGORY, max_size=4))
def test_random_categories_parse_or_raise_a_typed_error(raw):
    from edgeps.categories import Categories

    cats = _parses_or_typed_error(Categories.from_list, raw)
    if cats is not None:
        assert len(set(cats.ids)) == len(cats) and cats.color_table().shape == (max(cats.ids) + 1, 3)


# ------------------------------------------------------------------------------ training config
def _valid_config() -> dict:
    from edgeps.training.config import TrainConfig

    doc = TrainConfig().to_dict()
    doc["model"] = {"width_mult": 0.5, "pretrained": False, "neck": "fpn"}
    return doc


CONFIG = _valid_config()


@FAST
@given(mutated(CONFIG))
def test_mutated_config_parses_or_raises_a_typed_error(doc):
    from edgeps.training.config import config_from_dict

    cfg = _parses_or_typed_error(config_from_dict, doc)
    if cfg is not None:
        assert config_from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
        floats = [
            cfg.schedule.lr,
            cfg.schedule.weight_decay,
            cfg.loss.center,
            cfg.postprocess.threshold,
            *cfg.data.scale_range,
        ]
        assert np.isfinite(floats).all()


@FAST
@given(VALUES)
def test_random_config_document_parses_or_raises_a_typed_error(doc):
    from edgeps.training.config import config_from_dict

    _parses_or_typed_error(config_from_dict, doc)


# ------------------------------------------------------------------------------ post-processing
@st.composite
def heads(draw: st.DrawFn) -> dict:
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    n_classes = draw(st.integers(1, 6))
    things = sorted(draw(st.sets(st.integers(0, n_classes - 1), max_size=n_classes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = draw(st.booleans())
    if logits:
        semantic = rng.normal(size=(n_classes, h, w)).astype(np.float32)
    else:  # blocky class maps, like a real network's
        semantic = rng.integers(0, n_classes, size=(max(1, h // 4), max(1, w // 4)))
        semantic = np.kron(semantic, np.ones((4, 4), np.int64))[:h, :w]
        semantic = np.pad(semantic, ((0, h - semantic.shape[0]), (0, w - semantic.shape[1])), mode="edge").astype(
            draw(st.sampled_from([np.uint8, np.int32, np.int64]))
        )
    center = rng.random((h, w), dtype=np.float32) ** draw(st.sampled_from([1, 4, 16]))
    offsets = (rng.normal(size=(2, h, w)) * draw(st.sampled_from([0.0, 2.0, 20.0, 500.0]))).astype(np.float32)
    return {
        "semantic": semantic,
        "center": center,
        "offsets": offsets,
        "things": things,
        "n_classes": n_classes,
        "threshold": draw(st.sampled_from([0.0, 0.1, 0.5, 0.99])),
        "nms_kernel": draw(st.sampled_from([1, 3, 7])),
        "top_k": draw(st.sampled_from([None, 1, 5, 200])),
        "stuff_area": draw(st.sampled_from([0, 1, 16, 10_000])),
    }


@settings(max_examples=EXAMPLES, deadline=None)
@given(heads())
def test_postprocess_invariants_on_random_heads(hd):
    from edgeps import LABEL_DIVISOR, VOID_LABEL
    from edgeps.errors import InputShapeError
    from edgeps.postprocess import find_instance_centers, panoptic_prediction_from_heads

    try:
        pred = panoptic_prediction_from_heads(
            hd["semantic"],
            hd["center"],
            hd["offsets"],
            thing_ids=hd["things"],
            threshold=hd["threshold"],
            nms_kernel=hd["nms_kernel"],
            top_k=hd["top_k"],
            stuff_area=hd["stuff_area"],
        )
    except InputShapeError as exc:  # the documented limit: instance numbers must stay < label_divisor
        assert "more than 999 instances of one class" in str(exc)
        centers, _ = find_instance_centers(hd["center"], hd["threshold"], hd["nms_kernel"], hd["top_k"])
        assert len(centers) >= LABEL_DIVISOR
        return
    pan = pred.panoptic
    sem = hd["semantic"].argmax(axis=0) if hd["semantic"].ndim == 3 else hd["semantic"].astype(np.int64)
    assert pan.shape == sem.shape and pan.dtype == np.int32
    things = np.zeros(hd["n_classes"], bool)
    things[hd["things"]] = True
    void = pan == VOID_LABEL
    cls, inst = pan // LABEL_DIVISOR, pan % LABEL_DIVISOR
    # every id decodes to a valid class; stuff has instance 0, things an instance >= 1
    assert ((cls[~void] >= 0) & (cls[~void] < hd["n_classes"])).all()
    is_thing = np.zeros(pan.shape, bool)
    is_thing[~void] = things[cls[~void]]
    assert (inst[~void & ~is_thing] == 0).all()
    assert (inst[is_thing] >= 1).all()
    # a stuff pixel keeps its own class; a thing pixel goes to a thing instance
    np.testing.assert_array_equal(cls[~void & ~is_thing], sem[~void & ~is_thing])
    assert not (~void & ~is_thing & things[sem]).any()
    # no pixel is left unassigned except void: thing pixels are void only without any center,
    # stuff pixels only when their class covers less than stuff_area
    pixel_thing = things[sem]
    if len(pred.centers):
        assert not (void & pixel_thing).any()
    else:
        assert void[pixel_thing].all()
    area = np.bincount(sem.ravel(), minlength=hd["n_classes"])
    big_stuff = ~pixel_thing & (area[sem] >= hd["stuff_area"])
    assert not (void & big_stuff).any() and void[~pixel_thing & ~big_stuff].all()
    # deterministic: the same heads give the same map
    again = panoptic_prediction_from_heads(
        hd["semantic"],
        hd["center"],
        hd["offsets"],
        thing_ids=hd["things"],
        threshold=hd["threshold"],
        nms_kernel=hd["nms_kernel"],
        top_k=hd["top_k"],
        stuff_area=hd["stuff_area"],
    )
    np.testing.assert_array_equal(again.panoptic, pan)
