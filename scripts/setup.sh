#!/usr/bin/env bash
# Fresh-machine install into .venv: system libraries, the CPU torch wheel first (so resolving the
# project never pulls a CUDA build on a CPU machine), then InsertBench itself with its test tools
# (pytest, ruff). Afterwards `source .venv/bin/activate` puts `insertbench`, `python` and
# `pytest` on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[test]"
