"""The bad-input catalogue (issue 8): every bad input gets a typed edgeps error whose message
names the file, field or shape at fault and what was expected; valid-but-unusual input (gray,
BGRA, non-contiguous frames) works. Real files, real runtimes, real OpenCV sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeps.bundle import MANIFEST_NAME, read_manifest
from edgeps.errors import (
    CategoryError,
    ConfigError,
    DataNotFoundError,
    EdgepsError,
    FormatError,
    InputShapeError,
    SourceError,
)

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)  # tiny_checkpoint's input size (tiny_model.TINY_SIZE)
FORMAT_FILES = {"torch": "model.pt", "onnx": "model.onnx", "openvino": "model.xml", "tflite": "model.tflite"}


@pytest.fixture(scope="session")
def fp32_bundles(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """One real fp32 bundle per format (torch, onnx, openvino, tflite) of the tiny model."""
    from edgeps.export.pipeline import export_bundles

    out = tmp_path_factory.mktemp("bad_input_bundles")
    results = export_bundles(
        tiny_checkpoint, list(FORMAT_FILES), ["fp32"], out, parity_data="synth:val:2", parity_images=2
    )
    # the export builds each bundle under a hidden temporary name: none is left behind
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{f}-fp32" for f in FORMAT_FILES)
    return {r.name.split("-")[0]: r.path for r in results}


@pytest.fixture(scope="module")
def onnx_runtime(fp32_bundles):
    from edgeps.runtimes import load

    return load(fp32_bundles["onnx"], threads=1)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    from edgeps.data.datasets import open_dataset

    return open_dataset("synth:val:1", size=SIZE)[0].image


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / bundle.name
    shutil.copytree(bundle, dst)
    return dst


def _raises(exc_type: type[Exception], fn: Callable[[], object], *fragments: str) -> str:
    """``fn()`` raises ``exc_type`` (an edgeps error) whose message holds every fragment."""
    with pytest.raises(exc_type) as info:
        fn()
    assert isinstance(info.value, EdgepsError)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------------------ model files
def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(b"this is not a model file\n" * 40)


@pytest.mark.parametrize(
    "fmt, file, damage, expected",
    [
        ("onnx", "model.onnx", _truncate, "ONNX Runtime cannot load this model"),
        ("onnx", "model.onnx", _garbage, "ONNX Runtime cannot load this model"),
        ("openvino", "model.xml", _truncate, "OpenVINO cannot read this model"),
        ("openvino", "model.bin", _truncate, "OpenVINO cannot read this model"),
        ("openvino", "model.bin", _garbage, "OpenVINO cannot read this model"),
        ("tflite", "model.tflite", _truncate, "cannot load this model"),
        ("tflite", "model.tflite", _garbage, "cannot load this model"),
        ("torch", "model.pt", _truncate, "not a torch state dict"),
        ("torch", "model.pt", _garbage, "not a torch state dict"),
    ],
    ids=[
        "onnx-truncated",
        "onnx-garbage",
        "openvino-xml-truncated",
        "openvino-bin-truncated",
        "openvino-bin-garbage",
        "tflite-truncated",
        "tflite-garbage",
        "torch-truncated",
        "torch-garbage",
    ],
)
def test_corrupt_model_file_is_a_format_error_naming_the_file(fp32_bundles, tmp_path, fmt, file, damage, expected):
    from edgeps.runtimes import load

    bundle = _copy(fp32_bundles[fmt], tmp_path)
    damage(bundle / file)
    msg = _raises(FormatError, lambda: load(bundle, threads=1), str(bundle / FORMAT_FILES[fmt]), expected)
    assert file in msg and "\n" not in msg  # the .bin is named too; one line for the CLI


def test_openvino_weights_file_missing(fp32_bundles, tmp_path):
    from edgeps.runtimes import load

    bundle = _copy(fp32_bundles["openvino"], tmp_path)
    (bundle / "model.bin").unlink()
    _raises(DataNotFoundError, lambda: load(bundle), "model.xml", "weights file model.bin is missing")


def test_torch_weights_of_another_model_config(fp32_bundles, tmp_path):
    from edgeps.runtimes import load

    bundle = _copy(fp32_bundles["torch"], tmp_path)
    raw = yaml.safe_load((bundle / MANIFEST_NAME).read_text())
    raw["model_config"]["width_mult"] = 1.0
    (bundle / MANIFEST_NAME).write_text(yaml.safe_dump(raw))
    _raises(FormatError, lambda: load(bundle), "model.pt", "weights do not fit the manifest's model_config")


# ------------------------------------------------------------------------------ bundle folder
def test_bundle_missing_its_model_file(fp32_bundles, tmp_path):
    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    (bundle / "model.onnx").unlink()
    _raises(DataNotFoundError, lambda: read_manifest(bundle), MANIFEST_NAME, "model_file 'model.onnx' is missing")


def test_bundle_missing_its_manifest(fp32_bundles, tmp_path):
    from edgeps.runtimes import load

    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    (bundle / MANIFEST_NAME).unlink()
    _raises(DataNotFoundError, lambda: load(bundle), str(bundle), f"no {MANIFEST_NAME} manifest")


def test_bundle_folder_that_does_not_exist(tmp_path):
    from edgeps.runtimes import load

    _raises(DataNotFoundError, lambda: load(tmp_path / "nope"), "bundle folder not found", "nope")


# ------------------------------------------------------------------------------ manifest
def _drop(key: str) -> Callable[[dict], None]:
    return lambda m: m.pop(key)


def _set(path: str, value: object) -> Callable[[dict], None]:
    def apply(m: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            m = m[p]
        m[last] = value

    return apply


MANIFEST_CASES = {
    "missing-format": (_drop("format"), "format: missing (a required key)"),
    "missing-outputs-head": (lambda m: m["outputs"].pop("offset"), "outputs: missing head 'offset'"),
    "extra-field": (_set("colour_space", "sRGB"), "unknown key 'colour_space'"),
    "extra-input-field": (_set("input.gamma", 2.2), "input: unknown key 'gamma'"),
    "wrong-type-precision": (_set("precision", 8), "precision: expected string, got int"),
    "wrong-type-size": (_set("input.size", "64x128"), "input.size: expected list, got str"),
    "wrong-size-values": (_set("input.size", [64, -1]), "input.size: expected [H, W] positive integers"),
    "wrong-type-postprocess": (_set("postprocess.nms_kernel", 7.5), "postprocess.nms_kernel: expected int"),
    "negative-output-index": (
        _set("outputs.center.index", -1),
        "outputs.center: expected a mapping with an integer 'index' >= 0",
    ),
    "shared-output-index": (_set("outputs.center.index", 0), "outputs: two heads share one output index"),
    "category-id-too-large": (
        lambda m: m["categories"][0].update(id=2**40),
        "categories[0]: field 'id' must be an integer 0..65535",
    ),
    "unknown-version": (_set("format_version", 3), "format_version: this edgeps reads versions 1, 2, the bundle has 3"),
    "unknown-format": (_set("format", "caffe"), "format: expected one of torch, onnx, openvino, tflite, got 'caffe'"),
    "duplicate-category-ids": (
        lambda m: m["categories"].append(dict(m["categories"][0], name="copy")),
        "duplicate category id 0",
    ),
    "category-isthing-wrong": (
        lambda m: m["categories"][0].update(isthing="yes"),
        "categories[0]: field 'isthing' must be 0/1",
    ),
    "top-level-list": (lambda m: None, "expected a mapping at the top level, got list"),
}


def test_output_index_beyond_the_model_outputs(fp32_bundles, frame, tmp_path):
    from edgeps.runtimes import load

    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    raw = yaml.safe_load((bundle / MANIFEST_NAME).read_text())
    raw["outputs"]["offset"]["index"] = 7  # the graph has 4 outputs
    (bundle / MANIFEST_NAME).write_text(yaml.safe_dump(raw))
    rt = load(bundle, threads=1)
    _raises(
        FormatError,
        lambda: rt.predict(frame),
        str(bundle / MANIFEST_NAME),
        "outputs.offset.index is 7, the model has 4 outputs",
    )


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_bad_manifest_is_a_format_error_naming_the_field(fp32_bundles, tmp_path, case):
    mutate, expected = MANIFEST_CASES[case]
    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    path = bundle / MANIFEST_NAME
    raw = yaml.safe_load(path.read_text())
    mutate(raw)
    path.write_text(yaml.safe_dump([raw] if case == "top-level-list" else raw))
    _raises(FormatError, lambda: read_manifest(bundle), str(path), expected)


def test_manifest_that_is_not_yaml(fp32_bundles, tmp_path):
    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    (bundle / MANIFEST_NAME).write_text("format: onnx\n  precision: [fp32\n")
    _raises(FormatError, lambda: read_manifest(bundle), str(bundle / MANIFEST_NAME), "not valid YAML")


# ------------------------------------------------------------------------------ categories
def test_categories_with_duplicate_ids():
    from edgeps.categories import Categories

    raw = [{"id": 1, "name": "road", "isthing": 0}, {"id": 1, "name": "car", "isthing": 1}]
    _raises(CategoryError, lambda: Categories.from_list(raw), "duplicate category id 1", "'road' and 'car'")


def test_category_file_with_a_bad_colour(tmp_path):
    from edgeps.categories import Categories

    path = tmp_path / "cats.yaml"
    path.write_text(yaml.safe_dump({"categories": [{"id": 0, "name": "road", "isthing": 0, "color": [0, 300, 0]}]}))
    _raises(CategoryError, lambda: Categories.from_file(path), f"{path}[0]", "'color' must be three integers 0..255")


def test_category_file_that_is_binary(tmp_path):
    from edgeps.categories import Categories

    path = tmp_path / "cats.yaml"
    path.write_bytes(b"\xff\xfe\x00\x80")
    _raises(FormatError, lambda: Categories.from_file(path), str(path), "cannot parse")


def test_thing_ids_not_among_the_classes():
    from edgeps.postprocess import panoptic_from_heads

    logits = np.zeros((3, 8, 8), np.float32)
    heads = (np.zeros((8, 8), np.float32), np.zeros((2, 8, 8), np.float32))
    _raises(
        CategoryError,
        lambda: panoptic_from_heads(logits, *heads, thing_ids=[1, 5, 7]),
        "thing_ids: [5, 7]",
        "3 classes (0..2)",
    )


# ------------------------------------------------------------------------------ frames
def _gray(f: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)


VALID_FRAMES = {
    "gray-HxW": (_gray, lambda f: np.repeat(_gray(f)[:, :, None], 3, axis=2)),
    "gray-HxWx1": (lambda f: _gray(f)[:, :, None], lambda f: np.repeat(_gray(f)[:, :, None], 3, axis=2)),
    "bgra": (lambda f: np.dstack([f, np.full(f.shape[:2], 200, np.uint8)]), lambda f: f),
    "non-contiguous-view": (lambda f: np.ascontiguousarray(np.pad(f, ((0, 0), (0, 0), (0, 1))))[:, :, :3], lambda f: f),
    "strided-crop": (
        lambda f: np.ascontiguousarray(np.pad(f, ((0, 0), (0, f.shape[1]), (0, 0))))[:, ::2][:, : f.shape[1] // 2],
        None,
    ),
}


@pytest.mark.parametrize("case", list(VALID_FRAMES))
def test_valid_unusual_frames_are_converted(onnx_runtime, frame, case):
    make, equivalent = VALID_FRAMES[case]
    image = make(frame)
    assert not image.flags.c_contiguous or case.startswith(("gray", "bgra"))
    result = onnx_runtime.predict(image)
    assert result.panoptic.shape == image.shape[:2] and result.panoptic.dtype == np.int32
    reference = np.ascontiguousarray(image[:, :, :3] if image.ndim == 3 and image.shape[2] == 3 else equivalent(frame))
    np.testing.assert_array_equal(result.panoptic, onnx_runtime.predict(reference).panoptic)


BAD_FRAMES = {
    "float64": (np.zeros((48, 64, 3), np.float64), ["expected dtype uint8", "float64", "(48, 64, 3)"]),
    "uint16": (np.zeros((48, 64, 3), np.uint16), ["expected dtype uint8", "uint16"]),
    "two-channels": (np.zeros((48, 64, 2), np.uint8), ["expected HxWx3 BGR", "(48, 64, 2)"]),
    "five-channels": (np.zeros((48, 64, 5), np.uint8), ["(48, 64, 5)"]),
    "batch-axis": (np.zeros((1, 48, 64, 3), np.uint8), ["(1, 48, 64, 3)"]),
    "zero-height": (np.zeros((0, 64, 3), np.uint8), ["empty frame", "(0, 64, 3)"]),
    "zero-width-gray": (np.zeros((48, 0), np.uint8), ["empty frame", "(48, 0)"]),
    # a view with zero strides: the shape is huge, the memory is not
    "too-large": (
        np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (16385, 64, 3)),
        ["(16385, 64, 3)", "maximum of 16384 pixels per side"],
    ),
    "not-an-array": ([[0, 0, 0]], ["expected a numpy array, got list"]),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frames_are_input_shape_errors_naming_the_shape(onnx_runtime, case):
    image, fragments = BAD_FRAMES[case]
    _raises(InputShapeError, lambda: onnx_runtime.predict(image), "image:", *fragments)


def test_largest_documented_frame_is_accepted():
    from edgeps.preprocess import MAX_FRAME_SIDE, as_bgr

    assert as_bgr(np.zeros((MAX_FRAME_SIDE, 2, 3), np.uint8)).shape == (MAX_FRAME_SIDE, 2, 3)


# ------------------------------------------------------------------------------ heads
def _heads(onnx_runtime, frame) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in onnx_runtime.infer(onnx_runtime.preprocess(frame)).items()}


@pytest.mark.parametrize(
    "head, value, name",
    [
        ("center", np.nan, "center_heatmap"),
        ("center", np.inf, "center_heatmap"),
        ("offset", np.nan, "offsets"),
        ("offset", -np.inf, "offsets"),
        ("semantic_prob", np.nan, "semantic_prob"),
    ],
)
def test_non_finite_heads_are_rejected_naming_the_head(onnx_runtime, frame, head, value, name):
    heads = _heads(onnx_runtime, frame)
    heads[head].reshape(-1)[heads[head].size // 2] = value
    _raises(
        InputShapeError,
        lambda: onnx_runtime.postprocess(heads, frame.shape[:2]),
        f"{name}: shape",
        "contains NaN or Inf",
    )


def test_non_finite_semantic_logits_are_rejected():
    from edgeps.postprocess import panoptic_from_heads

    logits = np.zeros((3, 8, 8), np.float32)
    logits[1, 2, 3] = np.nan
    _raises(
        InputShapeError,
        lambda: panoptic_from_heads(
            logits, np.zeros((8, 8), np.float32), np.zeros((2, 8, 8), np.float32), thing_ids=[1]
        ),
        "semantic: logits of shape (3, 8, 8) contain NaN or Inf",
    )


def test_class_beyond_the_manifest_categories(onnx_runtime, frame):
    heads = _heads(onnx_runtime, frame)
    n = len(onnx_runtime.manifest.categories)
    heads["semantic"][0, 3, 5] = n  # a model trained with one class more than the manifest lists
    _raises(
        FormatError,
        lambda: onnx_runtime.postprocess(heads, frame.shape[:2]),
        "edgeps.yaml",
        f"the model predicts class {n}, the manifest lists {n} categories",
    )


def test_head_of_the_wrong_shape(onnx_runtime, frame):
    heads = _heads(onnx_runtime, frame)
    heads["offset"] = heads["offset"][:, :1]
    _raises(
        InputShapeError,
        lambda: onnx_runtime.postprocess(heads, frame.shape[:2]),
        "offsets: expected shape (2, 64, 128)",
    )


# ------------------------------------------------------------------------------ calibration
def test_empty_calibration_folder(tmp_path):
    from edgeps.calibration.sets import load_calibration_set
    from edgeps.preprocess import InputSpec

    (tmp_path / "notes.txt").write_text("no images here")
    _raises(DataNotFoundError, lambda: load_calibration_set(str(tmp_path), InputSpec(SIZE)), str(tmp_path), "no images")


def test_unreadable_calibration_image(tmp_path, frame):
    import cv2

    from edgeps.calibration.sets import load_calibration_set
    from edgeps.preprocess import InputSpec

    cv2.imwrite(str(tmp_path / "a.png"), frame)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    _raises(
        FormatError,
        lambda: load_calibration_set(str(tmp_path), InputSpec(SIZE)),
        str(tmp_path / "b.jpg"),
        "not a readable image",
    )


def test_empty_calibration_spec():
    from edgeps.calibration.sets import load_calibration_set
    from edgeps.preprocess import InputSpec

    _raises(ConfigError, lambda: load_calibration_set("  ", InputSpec(SIZE)), "calibration: empty source")


def test_calibration_video_that_is_not_a_video(tmp_path):
    from edgeps.calibration.sets import load_calibration_set
    from edgeps.preprocess import InputSpec

    fake = tmp_path / "calib.mp4"
    fake.write_text("just text\n")
    _raises(
        FormatError, lambda: load_calibration_set(str(fake), InputSpec(SIZE)), str(fake), "cannot open it as a video"
    )


# ------------------------------------------------------------------------------ frame sources
def test_text_file_renamed_mp4_is_not_a_video(tmp_path):
    from edgeps.stream.sources import open_source

    fake = tmp_path / "clip.mp4"
    fake.write_text("this is a text file\n" * 20)
    _raises(SourceError, lambda: open_source(str(fake)), str(fake), "not a video file")


def test_camera_index_that_does_not_exist():
    from edgeps.stream.sources import open_source

    _raises(SourceError, lambda: open_source("7"), "7: cannot open camera", "no such camera")


def test_rtsp_url_that_refuses():
    from edgeps.stream.sources import open_source

    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    _raises(SourceError, lambda: open_source("rtsp://127.0.0.1:9/x"), "rtsp://127.0.0.1:9/x", "cannot open stream")


def test_source_path_that_does_not_exist(tmp_path):
    from edgeps.stream.sources import open_source

    _raises(DataNotFoundError, lambda: open_source(str(tmp_path / "missing.mp4")), "source not found", "missing.mp4")


def test_unreadable_image_in_a_folder_source(tmp_path, frame):
    import cv2

    from edgeps.stream.sources import open_source

    cv2.imwrite(str(tmp_path / "000.png"), frame)
    (tmp_path / "001.png").write_text("not a png")
    cv2.imwrite(str(tmp_path / "002.png"), frame)
    # by default the bad file is skipped and named; the files after it are still read
    src = open_source(str(tmp_path))
    assert src.read().shape == frame.shape and src.frame_path().name == "000.png"
    assert src.read().shape == frame.shape and src.frame_path().name == "002.png"
    assert src.read() is None
    assert [(p.name, why) for p, why in src.skipped()] == [("001.png", "not a readable image")]
    # strict: an error naming the file
    src = open_source(str(tmp_path), strict=True)
    assert src.read().shape == frame.shape
    _raises(SourceError, src.read, "001.png", "not a readable image")


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"encoding": "yuv422", "step": 96}, "encoding: 'yuv422' is not a colour/mono camera encoding"),
        ({"encoding": "bgr8", "step": 90}, "step: 90 bytes per row is less than"),
        ({"encoding": "bgr8", "step": 96, "height": 5}, "data: length"),
    ],
    ids=["wrong-encoding", "step-too-small", "data-length"],
)
def test_ros_image_with_a_wrong_encoding_or_step(fields, expected):
    from edgeps.stream.ros_image import image_msg_to_bgr

    msg = {"height": 4, "width": 32, "is_bigendian": 0, "data": bytes(4 * 96), **fields}
    _raises(FormatError, lambda: image_msg_to_bgr(**msg), expected)


# ------------------------------------------------------------------------------ training config
CONFIG_CASES = {
    "unknown-key": ("schedule: {batch_sise: 4}\n", ConfigError, "schedule: unknown key 'batch_sise'"),
    "unknown-section": ("optimizer: {lr: 0.1}\n", ConfigError, "unknown section 'optimizer'"),
    "unknown-model-key": ("model: {depth: 3}\n", ConfigError, "unknown key 'depth'"),
    "wrong-type-int": (
        "schedule: {batch_size: four}\n",
        ConfigError,
        "schedule.batch_size: expected integer, got str 'four'",
    ),
    "wrong-type-bool": ("data: {flip: 1}\n", ConfigError, "data.flip: expected boolean, got int 1"),
    "wrong-type-pair": ("data: {crop: 256}\n", ConfigError, "data.crop: expected list, got int 256"),
    "wrong-type-postprocess": (
        "postprocess: {top_k: many}\n",
        ConfigError,
        "postprocess.top_k: expected integer or null",
    ),
    "nan-threshold": (
        "postprocess: {threshold: .nan}\n",
        ConfigError,
        "postprocess.threshold: expected a finite number",
    ),
    "infinite-lr": ("schedule: {lr: .inf}\n", ConfigError, "schedule.lr: expected a finite number, got inf"),
    "section-not-mapping": ("loss: [1, 2]\n", ConfigError, "loss: expected a mapping, got list"),
    "not-yaml": ("schedule: {lr: [0.1\n", ConfigError, "not valid YAML"),
    "binary-file": (b"\xff\xfe\x00\x80 binary", ConfigError, "not valid YAML"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_training_config(tmp_path, case):
    from edgeps.training.config import load_config

    text, exc, expected = CONFIG_CASES[case]
    path = tmp_path / "train.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    _raises(exc, lambda: load_config(path), str(path), expected)


# ------------------------------------------------------------------------------ checkpoints
def test_file_that_is_not_a_checkpoint(tmp_path):
    from edgeps.training.checkpoint import load_checkpoint

    path = tmp_path / "best.pt"
    path.write_text("epoch,loss\n1,0.5\n")
    _raises(FormatError, lambda: load_checkpoint(path), str(path), "not a readable edgeps checkpoint", "zip archive")


def test_truncated_checkpoint(tiny_checkpoint, tmp_path):
    from edgeps.training.checkpoint import load_checkpoint

    path = tmp_path / "last.pt"
    path.write_bytes(tiny_checkpoint.read_bytes()[:-5000])
    _raises(FormatError, lambda: load_checkpoint(path), str(path))


def test_torch_file_that_is_not_an_edgeps_checkpoint(tmp_path):
    import torch

    from edgeps.training.checkpoint import load_checkpoint

    path = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    _raises(FormatError, lambda: load_checkpoint(path), str(path), "not an edgeps checkpoint", "edgeps-checkpoint/1")


def test_checkpoint_from_another_model_config(tiny_checkpoint, tmp_path):
    import torch

    from edgeps.training.checkpoint import save_checkpoint
    from edgeps.training.inference import model_from_checkpoint

    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ckpt["config"]["model"]["width_mult"] = 1.0  # the weights were trained at 0.5
    path = save_checkpoint(tmp_path / "other.pt", ckpt)
    _raises(FormatError, lambda: model_from_checkpoint(path), str(path), "weights do not fit the model config")


def test_checkpoint_with_a_bad_config(tiny_checkpoint, tmp_path):
    import torch

    from edgeps.training.checkpoint import save_checkpoint
    from edgeps.training.inference import model_from_checkpoint

    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ckpt["config"]["schedule"]["optimiser"] = "sgd"
    path = save_checkpoint(tmp_path / "odd.pt", ckpt)
    _raises(ConfigError, lambda: model_from_checkpoint(path), str(path), "unknown key 'optimiser'")


# ------------------------------------------------------------------------------ the CLI
def _cli(capsys, *argv: str) -> tuple[int, list[str]]:
    from edgeps.apps.cli import main

    code = main(list(argv))
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_cli_corrupt_bundle_is_one_line_and_exit_2(fp32_bundles, tmp_path, capsys):
    bundle = _copy(fp32_bundles["openvino"], tmp_path)
    _truncate(bundle / "model.bin")  # OpenVINO's own message spans several lines
    code, err = _cli(capsys, "eval", "--bundle", str(bundle), "--data", "synth:val:1")
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edgeps eval: error: ") and "model.bin" in err[0]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["eval", "--checkpoint", "{tmp}/notes.txt"], "not a readable edgeps checkpoint"),
        (["train", "--config", "{tmp}/bad.yaml", "--out", "{tmp}/run"], "not valid YAML"),
        (["model-info", "--config", "{tmp}/unknown.yaml"], "model: unknown key 'depth'"),
        (
            [
                "eval-coco",
                "--gt-json",
                "{tmp}/notes.txt",
                "--gt-dir",
                "{tmp}",
                "--pred-json",
                "{tmp}/notes.txt",
                "--pred-dir",
                "{tmp}",
            ],
            "not valid JSON",
        ),
        (["eval", "--bundle", "{tmp}", "--data", "synth:val:1"], "no edgeps.yaml manifest"),
        (
            ["data", "synth", "--out", "{tmp}/notes.txt/set", "--n", "1", "--size", "32x64"],
            "Not a directory: '{tmp}/notes.txt",
        ),
    ],
    ids=[
        "checkpoint-not-a-checkpoint",
        "config-not-yaml",
        "config-unknown-key",
        "json-not-json",
        "folder-not-a-bundle",
        "output-under-a-file",
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragment):
    (tmp_path / "notes.txt").write_text("not json, not a checkpoint\n")
    (tmp_path / "bad.yaml").write_text("schedule: {lr: [0.1\n")
    (tmp_path / "unknown.yaml").write_text("model: {depth: 3}\n")
    code, err = _cli(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"edgeps {argv[0]}: error: ") and fragment.format(tmp=tmp_path) in err[0]


def test_cli_subprocess_one_line_and_traceback_with_debug(fp32_bundles, tmp_path):
    bundle = _copy(fp32_bundles["onnx"], tmp_path)
    _garbage(bundle / "model.onnx")
    cmd = [sys.executable, "-m", "edgeps.apps.cli", "eval", "--bundle", str(bundle), "--data", "synth:val:1"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert plain.returncode == 2 and plain.stdout == ""
    lines = plain.stderr.splitlines()
    assert len(lines) == 1, plain.stderr
    assert lines[0].startswith(f"edgeps eval: error: {bundle / 'model.onnx'}: ONNX Runtime cannot load this model")
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "edgeps.errors.FormatError" in debug.stderr and "model.onnx" in debug.stderr
