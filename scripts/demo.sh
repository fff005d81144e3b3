#!/usr/bin/env bash
# Set up edgeps in .venv and run the main job on built-in synthetic data (no download).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
.venv/bin/edgeps demo --out out/demo "$@"
