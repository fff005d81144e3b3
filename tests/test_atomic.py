"""Atomic writes: a writer that fails or is killed mid-way never leaves a half-written file
under the final name (the old file stays intact, or there is no file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeps.atomic import atomic_path, atomic_write_bytes, atomic_write_text

REPO = Path(__file__).resolve().parents[1]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a" / "data.json"
    atomic_write_text(target, '{"v": 1}')
    atomic_write_bytes(target, b'{"v": 2}')
    assert json.loads(target.read_text()) == {"v": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]


def test_exception_inside_atomic_path_keeps_the_old_file(tmp_path):
    target = tmp_path / "data.json"
    target.write_text('{"v": "old"}')
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": "ne')  # half written
            raise RuntimeError("writer died")
    assert json.loads(target.read_text()) == {"v": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]  # temporary removed


def test_exception_inside_atomic_path_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"\0" * 100)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_suffix_for_encoders_that_pick_by_it(tmp_path):
    import cv2
    import numpy as np

    target = tmp_path / "x.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
        assert cv2.imwrite(str(tmp), np.full((4, 5, 3), 7, np.uint8))
    assert cv2.imread(str(target)).shape == (4, 5, 3)


def test_writer_that_never_created_the_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did not create"):
        with atomic_path(tmp_path / "x.txt"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_failed_checkpoint_save_keeps_the_previous_checkpoint(tmp_path):
    import torch

    from edgeps.training.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "config": {}, "categories": [], "step": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(Exception, match="cannot pickle"):
        save_checkpoint(
            path, {"model": {"w": torch.zeros(3)}, "config": {}, "categories": [], "step": 2, "x": Unpicklable()}
        )
    assert load_checkpoint(path)["step"] == 1
    assert _visible(tmp_path) == ["last.pt"] and len(list(tmp_path.iterdir())) == 1


def test_video_writer_stopped_mid_way_leaves_no_video(tmp_path):
    from edgeps.data.video import write_synth_video

    def show(items, total, desc):
        for i, item in enumerate(items):
            if i == 2:
                raise KeyboardInterrupt  # the user pressed Ctrl-C during rendering
            yield item

    video = tmp_path / "street.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_synth_video(video, 6, (32, 64), seed=0, show=show)
    assert not video.exists()
    assert not any(p.suffix == ".mp4" for p in tmp_path.iterdir())  # no temporary video either
    write_synth_video(video, 3, (32, 64), seed=0)
    import cv2

    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def _sigkill_when(script: str, ready: Callable[[], bool], what: str, tries: int, pause: float) -> None:
    """Run ``script`` in a child Python and SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO)
    try:
        for _ in range(tries):  # the child needs seconds to import torch on a busy machine
            if ready() or proc.poll() is not None:
                break
            time.sleep(pause)
        assert ready(), f"{what} (exit code {proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _kill_mid_write(tmp_path: Path, script: str, target: Path) -> None:
    """Run ``script`` (which touches ``tmp_path/started`` once its writer is mid-way, then
    blocks) and SIGKILL it there."""
    marker = tmp_path / "started"
    _sigkill_when(script, marker.exists, "the writer never started", tries=1200, pause=0.05)


def test_json_writer_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "result.json"
    target.write_text(json.dumps({"version": "old"}))
    script = f"""
        import json, pathlib, time
        from edgeps.atomic import atomic_path

        class Block:  # serialized last, after megabytes of the new file are written
            pass

        def default(obj):
            pathlib.Path({str(tmp_path / "started")!r}).touch()
            time.sleep(120)

        data = {{"rows": list(range(500_000)), "z": Block()}}
        with atomic_path({str(target)!r}) as tmp:
            with open(tmp, "w") as f:
                json.dump(data, f, default=default)
    """
    _kill_mid_write(tmp_path, script, target)
    assert json.loads(target.read_text()) == {"version": "old"}
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".result.tmp")]
    assert len(partial) == 1 and partial[0].stat().st_size > 1_000_000  # killed mid-write, under a hidden name
    with pytest.raises(json.JSONDecodeError):
        json.loads(partial[0].read_text())


def test_checkpoint_writer_killed_mid_write_leaves_the_old_checkpoint_loadable(tmp_path):
    import torch

    from edgeps.training.checkpoint import load_checkpoint, save_checkpoint

    target = tmp_path / "last.pt"
    save_checkpoint(target, {"model": {"w": torch.ones(4)}, "config": {}, "categories": [], "step": 1})
    script = f"""
        import pathlib, time, torch
        from edgeps.training.checkpoint import save_checkpoint

        class Block:  # pickled while torch.save has the new (temporary) file open
            def __reduce__(self):
                pathlib.Path({str(tmp_path / "started")!r}).touch()
                time.sleep(120)

        big = {{f"w{{i}}": torch.randn(256, 256) for i in range(40)}}
        save_checkpoint({str(target)!r}, {{"model": big, "config": {{}}, "categories": [], "step": 2, "z": Block()}})
    """
    _kill_mid_write(tmp_path, script, target)
    assert load_checkpoint(target)["step"] == 1
    assert _visible(tmp_path) == ["last.pt", "started"]


def test_bundle_export_killed_mid_way_leaves_the_old_bundle(tiny_checkpoint, tmp_path):
    """The export builds the bundle in a hidden temporary folder: killed while that folder is
    being filled (model written, parity running), the old bundle is intact."""
    out = tmp_path / "bundles"
    old = out / "torch-fp32"
    old.mkdir(parents=True)
    (old / "edgeps.yaml").write_text("old: bundle\n")
    script = f"""
        from edgeps.export.pipeline import export_bundles
        export_bundles({str(tiny_checkpoint)!r}, ["torch"], ["fp32"], {str(out)!r},
                       parity_data="synth:val:16", parity_images=16)
    """

    def started() -> bool:
        return any((p / "model.pt").exists() for p in out.glob(".torch-fp32.tmp*"))

    _sigkill_when(script, started, "the export never started its bundle", tries=6000, pause=0.02)
    assert (old / "edgeps.yaml").read_text() == "old: bundle\n" and sorted(p.name for p in old.iterdir()) == [
        "edgeps.yaml"
    ]
    assert _visible(out) == ["torch-fp32"]  # the half-made bundle only under its hidden name
