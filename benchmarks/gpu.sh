#!/usr/bin/env bash
# One command for a GPU benchmark run, everything written to one folder:
#   - NLTK (sentence + corpus, the speed-up baseline) and bleuscore (the fastest CPU peer) on the host CPU,
#   - this project's sentence_bleu / corpus_bleu and the TensorBLEU paper's code on CUDA,
# over the paper's grid (batch 16..512 x length 256, 1024), 1 and 4 references, vocab 32k and 128k.
# About 4-6 minutes on one data-centre GPU.
#
# Usage (from anywhere):  benchmarks/gpu.sh [OUT_DIR] [extra options for python -m benchmarks.run ...]
#   OUT_DIR defaults to $OUT/gpu when $OUT is set, else benchmarks/results/gpu-<date>.
#   BENCH_IMPLS=... overrides the implementation list (see python -m benchmarks.run --help).
#   PYTHON=... picks the interpreter (default python3).
# Offline machines: put wheels in .whl/ at the repository root (nltk, bleuscore, rxlm; see benchmarks/README.md).
# They are installed with `pip install --no-index --no-deps` into a private folder put on PYTHONPATH. Without .whl/,
# missing peers are installed from the package index (benchmarks/requirements.txt, rxlm with --no-deps).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    OUT_DIR="$1"
    shift
elif [ -n "${OUT:-}" ]; then
    OUT_DIR="$OUT/gpu"
else
    OUT_DIR="benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$OUT_DIR"

IMPLS="${BENCH_IMPLS:-tensorbleu-sentence@cuda,tensorbleu-corpus@cuda,paper-sentence@cuda,paper-corpus@cuda,nltk-sentence@cpu,nltk-corpus@cpu,bleuscore-sentence@cpu}"

main() {
    echo "== $(date -Iseconds) tensorbleu_metrics GPU benchmark -> $OUT_DIR"
    if compgen -G ".whl/*.whl" >/dev/null || compgen -G ".whl/*.tar.gz" >/dev/null; then
        SITE="${BENCH_SITE:-/tmp/tensorbleu-bench-site}"
        echo "== installing wheels from .whl/ into $SITE (offline)"
        if compgen -G ".whl/*.whl" >/dev/null; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" .whl/*.whl
        fi
        for sdist in .whl/*.tar.gz; do  # e.g. fast-bleu (a C++ build); optional
            [ -e "$sdist" ] || continue
            "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" "$sdist" \
                || echo "warning: could not build $sdist; that peer is reported as unavailable"
        done
        export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    else
        missing=$("$PY" -c "import importlib.util as u; print(' '.join(m for m in ['nltk', 'sacrebleu', 'torchmetrics', 'bleuscore', 'rxlm', 'tqdm', 'matplotlib'] if u.find_spec(m) is None))")
        if [ -n "$missing" ]; then
            echo "== missing: $missing; installing from the package index"
            grep -v '^rxlm' benchmarks/requirements.txt | "$PY" -m pip install -q -r /dev/stdin \
                || echo "warning: some benchmark peers could not be installed"
            "$PY" -m pip install -q --no-deps "rxlm==0.3.80" || echo "warning: rxlm (the paper's code) not installed"
        fi
        export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    fi
    nvidia-smi -L || true
    "$PY" -c "import os, torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0), 'cpus', os.cpu_count())" || true
    PYTHONUNBUFFERED=1 "$PY" -m benchmarks.run --device both --grid paper --refs 1,4 --vocab 32000,128000 \
        --impls "$IMPLS" --warmup 2 --repeats 5 --point-time 3 --time-budget 3 \
        --out "$OUT_DIR" "$@"
    echo "== $(date -Iseconds) done"
}

set -o pipefail
main "$@" 2>&1 | tee "$OUT_DIR/run.log"
