#!/usr/bin/env bash
# Fresh-machine install into .venv: system libraries, torch first (on a machine without an NVIDIA
# GPU its CPU build, so resolving the project never pulls CUDA packages), then InsertBench itself
# with its test tools (pytest, ruff). Afterwards `source .venv/bin/activate` puts `insertbench`,
# `python` and `pytest` on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh  # brings python3 (python3-venv) where the image has none
# pyproject.toml requires Python 3.11+: Ubuntu 22.04's 3.10 installed torch first, then failed
# on the project itself. Say it before anything else is installed.
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "scripts/setup.sh: InsertBench needs Python >= 3.11; python3 is $(python3 -V 2>&1)" >&2
    exit 1
}
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
TORCH=torch==2.13.0
# PyPI's Linux torch is the CUDA build (~3 GB of nvidia-* wheels): without a GPU (nvidia-smi
# listing none: a CUDA container run without its GPUs has the tool but no driver), take the CPU
# build from PyTorch's own index, unless pip's configured sources already offer one ("+cpu").
# The report is read whole before grep: under pipefail, grep -q's exit at its match could
# kill pip with SIGPIPE and turn an offered CPU build into "none offered".
report=$(.venv/bin/python -m pip install --dry-run --quiet --no-deps --report - "$TORCH" \
    2>/dev/null || true)
if nvidia-smi -L >/dev/null 2>&1 || grep -q '"version": "[^"]*+cpu"' <<<"$report"; then
    .venv/bin/python -m pip install -q "$TORCH"
else
    .venv/bin/python -m pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/python -m pip install -q -e ".[test]"
