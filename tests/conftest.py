"""Shared fixtures for the functional-kernel tests.

* ``device``: "cpu" and "cuda" (the latter marked ``cuda`` and skipped without a GPU).
* ``oracle``: independent reference implementations that the tests *call*: NLTK's and SacreBLEU's BLEU,
  torchmetrics' ``bleu_score``, NLTK's own n-gram statistics, and a small exact (``Fraction``) transcription
  of NLTK's corpus formula that is fed corpus-summed statistics (the documented corpus-level rule for
  ``method5``/``method6``/``method7``, where NLTK itself only looks at the last sentence pair).
* ``pack``: turns ragged Python batches into padded ``(B, L)`` / ``(B, R, L')`` tensors.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from functools import cache
from types import SimpleNamespace

import pytest
import torch

NLTK_METHODS = tuple(f"method{k}" for k in range(8))
SACRE_METHODS = ("none", "floor", "add-k", "exp")

Seq = Sequence[int]


@pytest.fixture(scope="session", autouse=True)
def _single_intra_op_thread() -> Iterator[None]:
    """The kernels work on many tiny tensors: on a small shared machine, intra-op threads only contend, so the
    tests run with one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def accelerator_path_in_module() -> Iterator[None]:
    """The torch sorted pass (the accelerator's path) for every call of a test module, forced on the CPU, where the
    compiled engine serves the public functions otherwise."""
    from tensorbleu_metrics.functional import _device

    original = _device.host_reads_are_free
    _device.host_reads_are_free = lambda device: False
    yield
    _device.host_reads_are_free = original


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(
                    not torch.cuda.is_available(),
                    reason="CUDA device tests skipped: torch.cuda.is_available() is False",
                ),
            ],
        ),
    ]
)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


# ----------------------------------------------------------------------------------------------------------
# oracles
# ----------------------------------------------------------------------------------------------------------


def uniform_weights(n_gram: int) -> tuple[float, ...]:
    """The default weights: (1/N,)*N (for N=4 exactly NLTK's default, so auto_reweigh can trigger)."""
    return tuple(1.0 / n_gram for _ in range(n_gram))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence NLTK's UserWarnings and SacreBLEU's logger warnings inside an oracle call."""
    logger = logging.getLogger("sacrebleu")
    previous = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.disabled = previous


def _join(seq: Seq) -> str:
    return " ".join(str(int(t)) for t in seq)


def _nltk_weights(n_gram: int, weights):
    return uniform_weights(n_gram) if weights is None else weights


def _is_weight_list(weights) -> bool:
    return weights is not None and isinstance(weights[0], (tuple, list))


def _nltk_result(out, weights):
    """NLTK returns a bare float for a one-element list of weight tuples: always a list for a list."""
    if isinstance(out, list):
        return [float(x) for x in out]
    return [float(out)] if _is_weight_list(weights) else float(out)


def nltk_sentence(
    hyp: Seq,
    refs: Sequence[Seq],
    n_gram: int,
    smoothing: str = "method0",
    *,
    weights=None,
    auto_reweigh: bool = False,
    smoothing_params: dict | None = None,
):
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    fn = getattr(SmoothingFunction(**(smoothing_params or {})), smoothing)
    with _quiet():
        out = sentence_bleu(
            [list(r) for r in refs],
            list(hyp),
            _nltk_weights(n_gram, weights),
            smoothing_function=fn,
            auto_reweigh=auto_reweigh,
        )
    return _nltk_result(out, weights)


def nltk_corpus(
    hyps: Sequence[Seq],
    refs: Sequence[Sequence[Seq]],
    n_gram: int,
    smoothing: str = "method0",
    *,
    weights=None,
    auto_reweigh: bool = False,
    smoothing_params: dict | None = None,
):
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    fn = getattr(SmoothingFunction(**(smoothing_params or {})), smoothing)
    with _quiet():
        out = corpus_bleu(
            [[list(r) for r in rs] for rs in refs],
            [list(h) for h in hyps],
            _nltk_weights(n_gram, weights),
            smoothing_function=fn,
            auto_reweigh=auto_reweigh,
        )
    return _nltk_result(out, weights)


@cache
def _sacre_bleu(smoothing: str, smooth_value, n_gram: int, effective_order: bool):
    from sacrebleu.metrics import BLEU

    return BLEU(
        tokenize="none",
        smooth_method=smoothing,
        smooth_value=smooth_value,
        max_ngram_order=n_gram,
        effective_order=effective_order,
    )


def sacre_sentence(
    hyp: Seq,
    refs: Sequence[Seq],
    n_gram: int,
    smoothing: str = "none",
    *,
    smooth_value=None,
    effective_order: bool = False,
) -> float:
    bleu = _sacre_bleu(smoothing, smooth_value, n_gram, effective_order)
    with _quiet():
        return bleu.sentence_score(_join(hyp), [_join(r) for r in refs]).score / 100


def sacre_corpus(
    hyps: Sequence[Seq],
    refs: Sequence[Sequence[Seq]],
    n_gram: int,
    smoothing: str = "none",
    *,
    smooth_value=None,
    effective_order: bool = False,
) -> float:
    bleu = _sacre_bleu(smoothing, smooth_value, n_gram, effective_order)
    n_streams = max(len(rs) for rs in refs)
    streams = [[_join(rs[r]) if r < len(rs) else None for rs in refs] for r in range(n_streams)]
    with _quiet():
        return bleu.corpus_score([_join(h) for h in hyps], streams).score / 100


def tm_corpus(hyps: Sequence[Seq], refs: Sequence[Sequence[Seq]], n_gram: int, smooth: bool, weights=None) -> float:
    """torchmetrics' functional bleu_score (float32 inside) on space-joined IDs."""
    from torchmetrics.functional.text import bleu_score

    out = bleu_score(
        [_join(h) for h in hyps],
        [[_join(r) for r in rs] for rs in refs],
        n_gram=n_gram,
        smooth=smooth,
        weights=weights,
    )
    return float(out)


def tm_metric_corpus(
    hyps: Sequence[Seq], refs: Sequence[Sequence[Seq]], n_gram: int, smooth: bool, chunk: int = 2
) -> float:
    """torchmetrics' BLEUScore Metric, updated in chunks (its state is corpus statistics)."""
    from torchmetrics.text import BLEUScore

    metric = BLEUScore(n_gram=n_gram, smooth=smooth)
    for start in range(0, len(hyps), chunk):
        metric.update(
            [_join(h) for h in hyps[start : start + chunk]],
            [[_join(r) for r in rs] for rs in refs[start : start + chunk]],
        )
    return float(metric.compute())


def nltk_stats(hyp: Seq, refs: Sequence[Seq], n_orders: int) -> dict:
    """Sufficient statistics of one sentence, from NLTK's own helpers."""
    from nltk.translate.bleu_score import closest_ref_length, modified_precision

    refs = [list(r) for r in refs]
    hyp = list(hyp)
    matches, clamped = [], []
    for n in range(1, n_orders + 1):
        p = modified_precision(refs, hyp, n)
        matches.append(int(p.numerator))
        clamped.append(int(p.denominator))
    totals = [max(len(hyp) - n + 1, 0) for n in range(1, n_orders + 1)]
    return {
        "matches": matches,
        "totals": totals,
        "clamped_totals": clamped,
        "pred_len": len(hyp),
        "ref_len": int(closest_ref_length(refs, len(hyp))),
    }


def nltk_corpus_stats(hyps: Sequence[Seq], refs: Sequence[Sequence[Seq]], n_orders: int) -> dict:
    per = [nltk_stats(h, rs, n_orders) for h, rs in zip(hyps, refs, strict=True)]
    out = {}
    for key in ("matches", "totals", "clamped_totals"):
        out[key] = [sum(s[key][i] for s in per) for i in range(n_orders)]
    out["pred_len"] = sum(s["pred_len"] for s in per)
    out["ref_len"] = sum(s["ref_len"] for s in per)
    return out


def nltk_method6_raises(hyps: Sequence[Seq], refs: Sequence[Sequence[Seq]]) -> bool:
    """Explicit check for the case where NLTK's method6 raises: unigram matches but a zero trigram precision
    (NLTK returns 0 before smoothing when there is no unigram match at all)."""
    stats = nltk_corpus_stats(hyps, refs, 3)
    return stats["matches"][0] > 0 and stats["matches"][2] == 0


def nltk_formula(
    stats: dict,
    n_gram: int,
    smoothing: str,
    *,
    weights=None,
    auto_reweigh: bool = False,
    epsilon: float = 0.1,
    alpha: int = 5,
    k: int = 5,
):
    """NLTK's ``corpus_bleu`` + ``SmoothingFunction().methodK`` transcribed from
    nltk/translate/bleu_score.py, but fed (corpus-summed) sufficient statistics everywhere NLTK would look at
    the last sentence pair (method5's 5-gram precision, method6's n-gram count ``l``).  Exact Fractions as in
    NLTK.  method6 with a zero trigram precision returns 0.0 (the documented rule; NLTK raises)."""
    matches, clamped, totals = stats["matches"], stats["clamped_totals"], stats["totals"]
    hyp_len, ref_len = stats["pred_len"], stats["ref_len"]
    weight_list = [uniform_weights(n_gram)] if weights is None else weights
    single = not _is_weight_list(weights)
    if single and weights is not None:
        weight_list = [weights]

    def finish(values):
        return values[0] if single else values

    if matches[0] == 0:
        return finish([0.0] * len(weight_list))
    if smoothing == "method6" and matches[2] == 0:
        return finish([0.0] * len(weight_list))

    num = list(matches[:n_gram])
    den = list(clamped[:n_gram])
    p: list = [Fraction(a, b) for a, b in zip(num, den, strict=True)]

    def method4(p):
        inc = 1
        for i in range(len(p)):
            if num[i] == 0 and hyp_len > 1:
                numerator = 1 / (2**inc * k / math.log(hyp_len))
                p[i] = numerator / den[i]
                inc += 1
        return p

    def method5(p):
        p5 = Fraction(matches[4], clamped[4])
        plus1 = [*p, p5]
        m = {-1: p[0] + 1}
        for i in range(len(p)):
            p[i] = (m[i - 1] + p[i] + plus1[i + 1]) / 3
            m[i] = p[i]
        return p

    if smoothing == "method0":
        p = [p[i] if num[i] != 0 else sys.float_info.min for i in range(n_gram)]
    elif smoothing == "method1":
        p = [p[i] if num[i] != 0 else (num[i] + epsilon) / den[i] for i in range(n_gram)]
    elif smoothing == "method2":
        p = [p[0]] + [Fraction(num[i] + 1, den[i] + 1) for i in range(1, n_gram)]
    elif smoothing == "method3":
        inc = 1
        for i in range(n_gram):
            if num[i] == 0:
                p[i] = 1 / (2**inc * den[i])
                inc += 1
    elif smoothing == "method4":
        p = method4(p)
    elif smoothing == "method5":
        p = method5(p)
    elif smoothing == "method6":
        for i in range(2, n_gram):
            pi0 = 0 if p[i - 2] == 0 else p[i - 1] ** 2 / p[i - 2]
            p[i] = (num[i] + alpha * pi0) / (totals[i] + alpha)
    elif smoothing == "method7":
        p = method5(method4(p))
    else:  # pragma: no cover - test bug
        raise AssertionError(smoothing)

    if hyp_len > ref_len:
        bp = 1.0
    elif hyp_len == 0:
        bp = 0.0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    scores = []
    for weight in weight_list:
        weight = tuple(weight)
        if auto_reweigh and hyp_len < 4 and weight == (0.25, 0.25, 0.25, 0.25):
            weight = (1 / hyp_len,) * hyp_len
        s = math.fsum(w * math.log(pi) for w, pi in zip(weight, p, strict=False) if pi > 0)
        scores.append(bp * math.exp(s))
    return finish(scores)


def oracle_sentence(
    hyp: Seq,
    refs: Sequence[Seq],
    n_gram: int,
    smoothing: str,
    *,
    effective_order=False,
    auto_reweigh=False,
    smooth_value=None,
    weights=None,
):
    """The sentence-level oracle for any smoothing name (NLTK or SacreBLEU); method6 NLTK-raising -> 0.0."""
    if smoothing in SACRE_METHODS:
        assert weights is None, "SacreBLEU has no weights"
        return sacre_sentence(hyp, refs, n_gram, smoothing, smooth_value=smooth_value, effective_order=effective_order)
    if smoothing == "method6" and nltk_method6_raises([hyp], [refs]):
        return [0.0] * len(weights) if _is_weight_list(weights) else 0.0
    return nltk_sentence(hyp, refs, n_gram, smoothing, weights=weights, auto_reweigh=auto_reweigh)


def oracle_corpus(
    hyps: Sequence[Seq],
    refs: Sequence[Sequence[Seq]],
    n_gram: int,
    smoothing: str,
    *,
    effective_order=False,
    auto_reweigh=False,
    smooth_value=None,
    weights=None,
):
    """The corpus-level oracle: SacreBLEU corpus_score, NLTK corpus_bleu, or (method5/6/7 on a multi-sentence
    corpus, the documented deviation) ``nltk_formula`` on corpus-summed NLTK statistics."""
    if smoothing in SACRE_METHODS:
        assert weights is None, "SacreBLEU has no weights"
        return sacre_corpus(hyps, refs, n_gram, smoothing, smooth_value=smooth_value, effective_order=effective_order)
    if smoothing in ("method5", "method6", "method7") and len(hyps) > 1:
        stats = nltk_corpus_stats(hyps, refs, max(n_gram, 5))
        return nltk_formula(stats, n_gram, smoothing, weights=weights, auto_reweigh=auto_reweigh)
    if smoothing == "method6" and nltk_method6_raises(hyps, refs):
        return [0.0] * len(weights) if _is_weight_list(weights) else 0.0
    return nltk_corpus(hyps, refs, n_gram, smoothing, weights=weights, auto_reweigh=auto_reweigh)


@pytest.fixture(scope="session")
def oracle() -> SimpleNamespace:
    return SimpleNamespace(
        NLTK_METHODS=NLTK_METHODS,
        SACRE_METHODS=SACRE_METHODS,
        uniform_weights=uniform_weights,
        nltk_sentence=nltk_sentence,
        nltk_corpus=nltk_corpus,
        sacre_sentence=sacre_sentence,
        sacre_corpus=sacre_corpus,
        tm_corpus=tm_corpus,
        tm_metric_corpus=tm_metric_corpus,
        nltk_stats=nltk_stats,
        nltk_corpus_stats=nltk_corpus_stats,
        nltk_method6_raises=nltk_method6_raises,
        nltk_formula=nltk_formula,
        sentence=oracle_sentence,
        corpus=oracle_corpus,
    )


# ----------------------------------------------------------------------------------------------------------
# packing ragged batches into padded tensors
# ----------------------------------------------------------------------------------------------------------


def pad_preds(hyps: Sequence[Seq], pad_id: int, device, dtype=torch.int64, extra: int = 0) -> torch.Tensor:
    """(B, L) tensor; every row padded with ``pad_id`` up to the longest length + ``extra``."""
    width = max([len(h) for h in hyps] + [0]) + extra
    out = torch.full((len(hyps), width), pad_id, dtype=dtype)
    for i, h in enumerate(hyps):
        if len(h):
            out[i, : len(h)] = torch.tensor(list(h), dtype=dtype)
    return out.to(device)


def pad_target(
    refs: Sequence[Sequence[Seq]],
    pad_id: int,
    device,
    dtype=torch.int64,
    n_refs: int | None = None,
    extra: int = 0,
) -> torch.Tensor:
    """(B, R, L') tensor; missing references are all-``pad_id`` rows (absent).  Empty references cannot be
    expressed in this form (they would be absent), so the caller must not pass any."""
    assert all(len(r) > 0 for rs in refs for r in rs), "an empty reference has no (B, R, L') form"
    n_refs = max(len(rs) for rs in refs) if n_refs is None else n_refs
    width = max(len(r) for rs in refs for r in rs) + extra
    out = torch.full((len(refs), n_refs, width), pad_id, dtype=dtype)
    for i, rs in enumerate(refs):
        for j, r in enumerate(rs):
            out[i, j, : len(r)] = torch.tensor(list(r), dtype=dtype)
    return out.to(device)


@pytest.fixture(scope="session")
def pack() -> SimpleNamespace:
    return SimpleNamespace(preds=pad_preds, target=pad_target)
