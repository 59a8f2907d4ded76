#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one call (about 8 minutes on one data-centre GPU), written to one folder:
#   1. benchmarks.gpu_probe: the kernel's paths side by side on CUDA (time, peak memory, host synchronisations,
#      agreement with the CPU; the default call eager against its CUDA-graph replay) and the fastest one within
#      the memory bound (OUT_DIR/kernel.txt);
#   2. the CUDA variants of the test suite (pytest -m cuda);
#   3. gpu.sh (the benchmark grid against NLTK, bleuscore and the paper's code), with the probe's choice.
# Each step has its own time limit (PROBE_S, TESTS_S, BENCH_S seconds; BENCH_S=0 skips the grid), so that a slow
# step leaves the others their time and whatever was measured is kept. PROBE_ARGS, BENCH_ARGS: more
# options for the probe and for benchmarks.run.
#
# Usage: benchmarks/gpu_check.sh [OUT_DIR]   (default $OUT when set, else benchmarks/results/gpu-check-<date>)
# Offline machines: wheels in .whl/ (nltk, bleuscore, rxlm, rouge-score; see benchmarks/README.md).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
OUT_DIR="${1:-${OUT:-benchmarks/results/gpu-check-$(date +%Y%m%d-%H%M%S)}}"
mkdir -p "$OUT_DIR"
SITE="${BENCH_SITE:-/tmp/tensorbleu-bench-site}"
export PYTHONUNBUFFERED=1

echo "== $(date -Iseconds) gpu_check -> $OUT_DIR"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L || true

echo "== $(date -Iseconds) probe"
# shellcheck disable=SC2086  # PROBE_ARGS: extra options, split
timeout "${PROBE_S:-150}" "$PY" -m benchmarks.gpu_probe --out "$OUT_DIR" ${PROBE_ARGS:-} 2>&1 | tee "$OUT_DIR/probe.log"

echo "== $(date -Iseconds) CUDA tests"
timeout "${TESTS_S:-170}" "$PY" -m pytest -q -m cuda -n "${TEST_WORKERS:-8}" -p no:cacheprovider \
    --continue-on-collection-errors tests/test_functional_parity.py tests/test_functional_inputs.py \
    tests/test_hardening.py tests/test_gleu.py tests/test_rouge.py tests/test_diversity.py tests/test_metric.py \
    tests/test_rouge_metric.py tests/test_integrations_trl.py >"$OUT_DIR/tests.log" 2>&1
echo "pytest exit status $? (124: stopped at TESTS_S)" | tee -a "$OUT_DIR/tests.log"
tail -5 "$OUT_DIR/tests.log"

if [ "${BENCH_S:-280}" != 0 ]; then
    echo "== $(date -Iseconds) benchmark grid"
    KERNEL="$(cat "$OUT_DIR/kernel.txt" 2>/dev/null || true)"
    # shellcheck disable=SC2086  # KERNEL: one option and its value, or nothing; BENCH_ARGS: more options, split
    BENCH_SITE="$SITE" timeout "${BENCH_S:-280}" benchmarks/gpu.sh "$OUT_DIR/gpu" --no-plots --vocab 32000 $KERNEL \
        ${BENCH_ARGS:-} >/dev/null 2>&1
    echo "gpu.sh exit status $? (124: stopped at BENCH_S)"
    tail -8 "$OUT_DIR/gpu/run.log" 2>/dev/null
fi
echo "== $(date -Iseconds) done"
