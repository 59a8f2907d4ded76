#!/usr/bin/env bash
# Creates .venv (if missing) and installs the package with its dev extras, saying what it installs as it goes.
# torch==2.13.0 goes in first: on the project's machines that is a CPU build from local disk, where a bare
# `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# Runs a quiet pip step, printing one line before it and a dot every 5 s while it works (pip --quiet is silent
# for minutes on the big step); pip's own output is shown only if the step fails.
step() {
    local what=$1
    shift
    local log
    log=$(mktemp)
    printf 'setup: %s ' "$what"
    "$@" >"$log" 2>&1 &
    local pid=$! start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        sleep 5
        kill -0 "$pid" 2>/dev/null && printf '.'
    done
    if wait "$pid"; then
        printf ' done (%ds)\n' $((SECONDS - start))
        rm -f "$log"
    else
        printf ' FAILED\n'
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
}

if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $PYTHON" "$PYTHON" -m venv .venv
fi
step "upgrading pip" .venv/bin/python -m pip install --quiet --upgrade pip
step "installing torch==2.13.0" .venv/bin/python -m pip install --quiet "torch==2.13.0"
step "installing tensorbleu-metrics and its dev tools (torchmetrics, lightning, trl/transformers, pytest, \
hypothesis, nltk, sacrebleu, rouge-score, ruff, matplotlib)" .venv/bin/python -m pip install --quiet -e ".[dev]"
# verl's metadata pins transformers<5.11 (trl brings 5.25), so it is not a dev extra: --no-deps keeps transformers,
# and the second command adds only the packages its reward loop, DataProto and Hydra config import (ray, tensordict,
# omegaconf, hydra-core, aiohttp, codetiming); neither touches torch, transformers or numpy.
step "installing verl 0.9.1 without its pins (its reward-loop classes, for the verl integration tests)" \
    .venv/bin/python -m pip install --quiet --no-deps "verl==0.9.1"
step "installing what verl's reward loop imports (ray, tensordict, omegaconf, hydra-core, aiohttp, codetiming)" \
    .venv/bin/python -m pip install --quiet ray "tensordict<=0.10.0,>=0.8.0,!=0.9.0" omegaconf hydra-core aiohttp \
    codetiming
echo "set up: $(.venv/bin/python -c 'import torch, tensorbleu_metrics as t; print("tensorbleu-metrics", t.__version__, "torch", torch.__version__)')"
