#!/usr/bin/env bash
# One device check for a machine with a CUDA GPU: the CUDA variants of the test suite, then a short benchmark
# of this project against the paper's code on the GPU, all written under OUT_DIR (default $OUT, else ./gpu-check).
# Offline machines: put wheels of what the image lacks (e.g. nltk, bleuscore, rxlm) in .whl/ first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu-check}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/tbm-site .whl/*.whl
    export PYTHONPATH="/tmp/tbm-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi -L | tee "$OUT_DIR/device.txt"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT_DIR/device.txt"
PYTHONUNBUFFERED=1 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tee "$OUT_DIR/cuda_tests.log" | tail -5
PYTHONUNBUFFERED=1 "$PY" -m benchmarks.run --device cuda --grid "${GRID:-128,512x1024}" --refs 1,4 --vocab 32000 \
    --impls tensorbleu-sentence@cuda,tensorbleu-corpus@cuda,paper-sentence@cuda --no-plots --quiet \
    --out "$OUT_DIR/bench" 2>&1 | tail -20
grep -E "^\| (tensorbleu|paper)" "$OUT_DIR/bench/results.md"
