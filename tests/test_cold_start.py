"""What a worker process pays to import the functional API: torch and the package, nothing heavier."""

from __future__ import annotations

import subprocess
import sys

import pytest

_HEAVY = ("torchmetrics", "transformers", "lightning", "trl", "numba", "torch._dynamo")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_functional_import_loads_nothing_heavy():
    assert _loaded_after("import tensorbleu_metrics.functional") == set()
    assert _loaded_after("import tensorbleu_metrics") == set()


def test_metric_classes_load_on_first_access():
    assert "torchmetrics" in _loaded_after("from tensorbleu_metrics import TokenIDBLEU")
    import tensorbleu_metrics
    from tensorbleu_metrics.bleu import TokenIDBLEU
    from tensorbleu_metrics.gleu import TokenIDGLEU
    from tensorbleu_metrics.rouge import TokenIDROUGE

    assert tensorbleu_metrics.TokenIDBLEU is TokenIDBLEU
    assert tensorbleu_metrics.TokenIDGLEU is TokenIDGLEU
    assert tensorbleu_metrics.TokenIDROUGE is TokenIDROUGE
    assert {"TokenIDBLEU", "TokenIDGLEU", "TokenIDROUGE", "functional"} <= set(dir(tensorbleu_metrics))
    with pytest.raises(AttributeError, match="no attribute 'TokenIDChrF'"):
        _ = tensorbleu_metrics.TokenIDChrF


@pytest.mark.parametrize("collector_on", [True, False])
def test_engine_start_leaves_the_garbage_collector_as_it_was(collector_on):
    # the engine pauses the collector while Numba starts in the process; the user's setting stands after
    code = (
        "import gc, torch, tensorbleu_metrics.functional as F\n"
        f"{'' if collector_on else 'gc.disable()'}\n"
        "x = torch.tensor([[1, 2, 3, 4]])\n"
        "assert float(F.sentence_bleu(x, x)) == 1.0\n"
        "print(gc.isenabled(), 'numba' in __import__('sys').modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(collector_on), "True"]


def _collections_during(call) -> int:
    """How many full (generation 2) garbage collections ran during ``call()``."""
    import gc

    seen = []

    def note(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(info)

    gc.callbacks.append(note)
    try:
        call()
    finally:
        gc.callbacks.remove(note)
    return len(seen)


def test_garbage_collected_after_a_compile_of_this_packages_kernels():
    # a compile's cycles hold LLVM handles whose finalizers release the GIL; collected at interpreter exit, they
    # let a DDP rank's gloo thread take the GIL during finalization, which aborts the rank
    import gc

    import numba

    from tensorbleu_metrics.functional import _engine

    _engine.kernels("scoring")  # the engine's start registers the listener

    def make(module: str):
        def add_one(x):
            return x + 1

        add_one.__module__ = module
        return numba.njit(add_one)

    ours, theirs = make("tensorbleu_metrics.functional._engine.fake"), make("somebody_else")
    assert gc.isenabled()
    assert _collections_during(lambda: ours(1)) >= 1  # compiled: collected
    assert _collections_during(lambda: ours(2)) == 0  # compiled already
    assert _collections_during(lambda: theirs(1)) == 0  # another package's compile is left alone
    gc.disable()
    try:
        assert _collections_during(lambda: make("tensorbleu_metrics.fake2")(1)) == 0  # the user's setting stands
    finally:
        gc.enable()
