"""The implementations that the benchmark times, and how each one's scores are checked against this project's.

Every timed call starts from the token-ID tensors, as a training loop has them: list- and string-based peers
pay for ``.tolist()``, for cutting the padding off and for joining IDs into strings inside the timed call.
Objects that do not depend on the batch (a SacreBLEU ``BLEU`` instance) are built outside it.

Each implementation names the options of this project's ``sentence_bleu``/``corpus_bleu`` that should give
the same scores (``ours_kwargs``) and documents known semantic differences (``note``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.data import PAD_ID, Batch

SENTENCE = "sentence"
CORPUS = "corpus"


@dataclass(frozen=True)
class Impl:
    name: str
    level: str  # SENTENCE or CORPUS
    devices: tuple[str, ...]
    label: str  # human description for tables
    package: str  # distribution whose version is recorded ("" for none)
    build: Callable[[Batch], Callable[[], Any]]  # batch already on the right device -> timed callable
    to_scores: Callable[[Any], np.ndarray]  # output of the timed callable -> float64 scores ((B,) or (1,))
    ours_kwargs: dict[str, Any] = field(default_factory=dict)  # matching options of this project's functions
    note: str = ""
    vocab_sensitive: bool = True  # False: the cost does not depend on the vocabulary size (list/string peers)
    budget_scale: float = 1.0  # multiplies --time-budget (NLTK, the speed-up baseline, gets more)
    is_ours: bool = False
    is_baseline: bool = False  # NLTK: the denominator of "speed-up vs NLTK"

    def available(self) -> tuple[bool, str]:
        """(True, version) or (False, reason)."""
        try:
            _check_import(self.name)
        except Exception as exc:  # an ImportError, or a broken install
            return False, f"{type(exc).__name__}: {exc}"
        version = ""
        if self.package:
            try:
                version = importlib.metadata.version(self.package)
            except importlib.metadata.PackageNotFoundError:
                version = "?"
        return True, version


# ------------------------------------------------------------ conversions
def to_lists(batch: Batch) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Tensors -> Python lists without padding (timed: a training loop pays for it)."""
    pred_lens = (batch.preds != PAD_ID).sum(-1).tolist()
    ref_lens = (batch.target != PAD_ID).sum(-1).tolist()
    preds = [row[:n] for row, n in zip(batch.preds.tolist(), pred_lens, strict=True)]
    refs = [
        [ref[:n] for ref, n in zip(rows, lens, strict=True)]
        for rows, lens in zip(batch.target.tolist(), ref_lens, strict=True)
    ]
    return preds, refs


def to_strings(batch: Batch) -> tuple[list[str], list[list[str]]]:
    """Tensors -> space-joined ID strings (timed)."""
    preds, refs = to_lists(batch)
    return (
        [" ".join(map(str, p)) for p in preds],
        [[" ".join(map(str, r)) for r in rs] for rs in refs],
    )


def _floats(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).reshape(-1).numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


# ------------------------------------------------------------ this project
def _ours_sentence(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import sentence_bleu

    preds, target = batch.preds, batch.target_for_ours()
    return lambda: sentence_bleu(preds, target, pad_id=PAD_ID)


def _ours_corpus(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import corpus_bleu

    preds, target = batch.preds, batch.target_for_ours()
    return lambda: corpus_bleu(preds, target, pad_id=PAD_ID)


def ours_scores(batch: Batch, level: str, **kwargs: Any) -> np.ndarray:
    """This project's float64 scores for the agreement check (untimed)."""
    from tensorbleu_metrics.functional import corpus_bleu, sentence_bleu

    fn = sentence_bleu if level == SENTENCE else corpus_bleu
    return _floats(fn(batch.preds, batch.target_for_ours(), pad_id=PAD_ID, dtype=torch.float64, **kwargs))


# ------------------------------------------------------------ NLTK
def _nltk_sentence(batch: Batch) -> Callable[[], Any]:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smooth = SmoothingFunction().method1

    def run() -> list[float]:
        preds, refs = to_lists(batch)
        return [sentence_bleu(r, p, smoothing_function=smooth) for p, r in zip(preds, refs, strict=True)]

    return run


def _nltk_corpus(batch: Batch) -> Callable[[], Any]:
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    smooth = SmoothingFunction().method1

    def run() -> float:
        preds, refs = to_lists(batch)
        return corpus_bleu(refs, preds, smoothing_function=smooth)

    return run


# ------------------------------------------------------------ SacreBLEU
def _sacrebleu_sentence(batch: Batch) -> Callable[[], Any]:
    from sacrebleu.metrics import BLEU

    # default options (smooth_method="exp", effective_order=False); silence its advice about effective_order
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)
    bleu = BLEU(tokenize="none")

    def run() -> list[float]:
        preds, refs = to_strings(batch)
        return [bleu.sentence_score(p, r).score / 100 for p, r in zip(preds, refs, strict=True)]

    return run


def _sacrebleu_corpus(batch: Batch) -> Callable[[], Any]:
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize="none")

    def run() -> float:
        preds, refs = to_strings(batch)
        streams = [list(s) for s in zip(*refs, strict=True)]
        return bleu.corpus_score(preds, streams).score / 100

    return run


# ------------------------------------------------------------ bleuscore (Rust)
def _bleuscore_sentence(batch: Batch) -> Callable[[], Any]:
    import bleuscore

    def run() -> list[float]:
        preds, refs = to_strings(batch)
        return [bleuscore.compute([r], [p], 4, False, "closest")["bleu"] for p, r in zip(preds, refs, strict=True)]

    return run


def _bleuscore_corpus(batch: Batch) -> Callable[[], Any]:
    import bleuscore

    def run() -> float:
        preds, refs = to_strings(batch)
        return bleuscore.compute(refs, preds, 4, False, "closest")["bleu"]

    return run


# ------------------------------------------------------------ fast-bleu (C++)
def _fastbleu_sentence(batch: Batch) -> Callable[[], Any]:
    from fast_bleu import BLEU

    weights = {4: (0.25, 0.25, 0.25, 0.25)}

    def run() -> list[float]:
        preds, refs = to_lists(batch)
        # fast-bleu scores many hypotheses against ONE reference set: references differ per sentence here,
        # so one BLEU object per sentence.
        return [BLEU(r, weights, smoothing_func=1).get_score([p])[4][0] for p, r in zip(preds, refs, strict=True)]

    return run


# ------------------------------------------------------------ torchmetrics
def _torchmetrics_sentence(batch: Batch) -> Callable[[], Any]:
    from torchmetrics.functional.text import bleu_score

    def run() -> list[float]:
        preds, refs = to_strings(batch)
        return [float(bleu_score([p], [r])) for p, r in zip(preds, refs, strict=True)]

    return run


def _torchmetrics_corpus(batch: Batch) -> Callable[[], Any]:
    from torchmetrics.functional.text import bleu_score

    def run() -> Any:
        preds, refs = to_strings(batch)
        return bleu_score(preds, refs)

    return run


# ------------------------------------------------------------ the paper's code
_PAPER_MODULE: Any = None


def load_paper_module() -> Any:
    """``rxlm/metrics/tensorbleu.py`` alone (the rest of ``rxlm`` and its dependencies are not needed)."""
    global _PAPER_MODULE
    if _PAPER_MODULE is None:
        spec = importlib.util.find_spec("rxlm")  # locates the package without executing rxlm/__init__.py
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("rxlm is not installed (pip install --no-deps rxlm==0.3.80)")
        path = os.path.join(next(iter(spec.submodule_search_locations)), "metrics", "tensorbleu.py")
        if not os.path.exists(path):
            raise ImportError(f"{path} not found")
        file_spec = importlib.util.spec_from_file_location("rxlm_tensorbleu_paper", path)
        assert file_spec is not None and file_spec.loader is not None
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        _PAPER_MODULE = module
    return _PAPER_MODULE


def _paper_sentence(batch: Batch) -> Callable[[], Any]:
    fn = load_paper_module().tensor_sentence_bleu
    preds, target = batch.preds, batch.target
    return lambda: fn(preds, target, pad_token_id=PAD_ID, smoothing_method="floor")


def _paper_corpus(batch: Batch) -> Callable[[], Any]:
    fn = load_paper_module().tensor_corpus_bleu
    preds, target = batch.preds, batch.target
    return lambda: fn(preds, target, pad_token_id=PAD_ID, smoothing_method="floor")


# ------------------------------------------------------------ registry
_TIE_NOTE = "closest-length ties go to the first reference (we, NLTK, SacreBLEU: the shorter)"
_PAPER_NOTE = (
    "paper code, smoothing 'floor' (eps 0.1) vs our 'floor'; float32 arithmetic; " + _TIE_NOTE + "; other "
    "differences (no early 0, add-k on unigrams, 'exp' = 1e-12, corpus order skipping) do not arise on "
    "this data"
)

_IMPORTS = {
    "tensorbleu": "tensorbleu_metrics.functional",
    "nltk": "nltk.translate.bleu_score",
    "sacrebleu": "sacrebleu.metrics",
    "bleuscore": "bleuscore",
    "fast-bleu": "fast_bleu",
    "torchmetrics": "torchmetrics.functional.text",
}


def _check_import(name: str) -> None:
    family = name.rsplit("-", 1)[0]
    if family == "paper":
        load_paper_module()
        return
    importlib.import_module(_IMPORTS[family])


IMPLS: dict[str, Impl] = {
    impl.name: impl
    for impl in [
        Impl(
            "tensorbleu-sentence",
            SENTENCE,
            ("cpu", "cuda"),
            "this project: sentence_bleu",
            "tensorbleu-metrics",
            _ours_sentence,
            _floats,
            is_ours=True,
        ),
        Impl(
            "tensorbleu-corpus",
            CORPUS,
            ("cpu", "cuda"),
            "this project: corpus_bleu",
            "tensorbleu-metrics",
            _ours_corpus,
            _floats,
            is_ours=True,
        ),
        Impl(
            "nltk-sentence",
            SENTENCE,
            ("cpu",),
            "NLTK sentence_bleu loop (method1)",
            "nltk",
            _nltk_sentence,
            _floats,
            {"smoothing": "method1"},
            vocab_sensitive=False,
            budget_scale=4.0,
            is_baseline=True,
        ),
        Impl(
            "nltk-corpus",
            CORPUS,
            ("cpu",),
            "NLTK corpus_bleu (method1)",
            "nltk",
            _nltk_corpus,
            _floats,
            {"smoothing": "method1"},
            vocab_sensitive=False,
            budget_scale=4.0,
            is_baseline=True,
        ),
        Impl(
            "sacrebleu-sentence",
            SENTENCE,
            ("cpu",),
            'SacreBLEU BLEU(tokenize="none").sentence_score loop',
            "sacrebleu",
            _sacrebleu_sentence,
            _floats,
            {"smoothing": "exp"},
            vocab_sensitive=False,
        ),
        Impl(
            "sacrebleu-corpus",
            CORPUS,
            ("cpu",),
            'SacreBLEU BLEU(tokenize="none").corpus_score',
            "sacrebleu",
            _sacrebleu_corpus,
            _floats,
            {"smoothing": "exp"},
            vocab_sensitive=False,
        ),
        Impl(
            "bleuscore-sentence",
            SENTENCE,
            ("cpu",),
            'bleuscore compute loop (ref_len_method="closest")',
            "bleuscore",
            _bleuscore_sentence,
            _floats,
            {"smoothing": "none"},
            vocab_sensitive=False,
        ),
        Impl(
            "bleuscore-corpus",
            CORPUS,
            ("cpu",),
            'bleuscore compute (ref_len_method="closest")',
            "bleuscore",
            _bleuscore_corpus,
            _floats,
            {"smoothing": "none"},
            vocab_sensitive=False,
        ),
        Impl(
            "fast-bleu-sentence",
            SENTENCE,
            ("cpu",),
            "fast-bleu, one BLEU object per sentence (method1)",
            "fast-bleu",
            _fastbleu_sentence,
            _floats,
            {"smoothing": "method1"},
            vocab_sensitive=False,
        ),
        Impl(
            "torchmetrics-sentence",
            SENTENCE,
            ("cpu",),
            "torchmetrics bleu_score per sentence",
            "torchmetrics",
            _torchmetrics_sentence,
            _floats,
            {"smoothing": "none"},
            note=_TIE_NOTE,
            vocab_sensitive=False,
        ),
        Impl(
            "torchmetrics-corpus",
            CORPUS,
            ("cpu",),
            "torchmetrics bleu_score",
            "torchmetrics",
            _torchmetrics_corpus,
            _floats,
            {"smoothing": "none"},
            note=_TIE_NOTE,
            vocab_sensitive=False,
        ),
        Impl(
            "paper-sentence",
            SENTENCE,
            ("cpu", "cuda"),
            "TensorBLEU paper code: tensor_sentence_bleu",
            "rxlm",
            _paper_sentence,
            _floats,
            {"smoothing": "floor"},
            note=_PAPER_NOTE,
            vocab_sensitive=False,
        ),
        Impl(
            "paper-corpus",
            CORPUS,
            ("cpu", "cuda"),
            "TensorBLEU paper code: tensor_corpus_bleu",
            "rxlm",
            _paper_corpus,
            _floats,
            {"smoothing": "floor"},
            note=_PAPER_NOTE,
            vocab_sensitive=False,
        ),
    ]
}

# The modules the CPU worker processes import ahead (so that a measurement does not pay for imports).
PRELOAD_MODULES = ["torch", "numpy", "benchmarks.data", "benchmarks.impls", "benchmarks.measure"]
OPTIONAL_PRELOAD = [
    "tensorbleu_metrics.functional",
    "nltk.translate.bleu_score",
    "sacrebleu.metrics",
    "bleuscore",
    "fast_bleu",
    "torchmetrics.functional.text",
]
# imported last by the forkserver: moves everything imported so far out of the garbage collector's sight,
# so that a worker's gc.collect() walks only the objects the worker made
FREEZE_MODULE = "benchmarks._gc_freeze"
