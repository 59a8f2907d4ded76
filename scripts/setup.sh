#!/usr/bin/env bash
# Creates .venv (if missing) and installs the package with its dev extras.
# torch==2.13.0 goes in first: on the project's machines that is a CPU build from local disk, where a bare
# `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "set up: $(.venv/bin/python -c 'import torch, tensorbleu_metrics as t; print("tensorbleu-metrics", t.__version__, "torch", torch.__version__)')"
