#!/usr/bin/env bash
# Tests the dependency floors that pyproject.toml declares: makes a separate venv (.venv-floors) with the oldest
# declared torch (the pinned 2.13), torchmetrics, lightning and numpy, then runs the metric tests in it.
# Usage: scripts/check_floors.sh [extra pytest args]     (FLOORS_VENV=path to use another venv folder)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${FLOORS_VENV:-.venv-floors}

# the lowest version named by a `NAME>=X` requirement in pyproject.toml
floor() {
    local found
    found=$(sed -n "s/^ *\"$1>=\([0-9][0-9.]*\)\".*/\1/p" pyproject.toml | sort -V | head -n 1)
    if [ -z "$found" ]; then
        echo "check_floors: no \"$1>=...\" requirement in pyproject.toml" >&2
        exit 1
    fi
    echo "$found"
}
TORCH=$(floor torch)  # also the torch the project pins (scripts/setup.sh)
TORCHMETRICS=$(floor torchmetrics)
LIGHTNING=$(floor lightning)
NUMPY=$(floor numpy)
MATPLOTLIB=$(floor matplotlib)

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
echo "check_floors: installing torch==$TORCH torchmetrics==$TORCHMETRICS lightning==$LIGHTNING numpy==$NUMPY matplotlib==$MATPLOTLIB into $VENV ..."
"$VENV/bin/python" -m pip install --quiet "torch==$TORCH" "torchmetrics==$TORCHMETRICS" "lightning==$LIGHTNING" \
    "numpy==$NUMPY" "matplotlib==$MATPLOTLIB" pytest pytest-timeout hypothesis nltk sacrebleu
"$VENV/bin/python" - <<'PY'
import lightning, numpy, torch, torchmetrics
print(f"check_floors: torch {torch.__version__}, torchmetrics {torchmetrics.__version__}, "
      f"lightning {lightning.__version__}, numpy {numpy.__version__}")
PY
# the package from this checkout, without installing it (the venv keeps the exact floor versions)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tensorbleu_metrics tests/test_metric.py tests/test_metric_ddp.py \
    tests/test_lightning_ddp.py tests/test_readme.py tests/test_functional_inputs.py tests/test_functional_errors.py "$@"
