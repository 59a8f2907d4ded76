"""Hardening: NLTK's weight lists of mixed lengths, the valid `smooth_value` ranges, finite scores everywhere.

Every expected value comes from NLTK or SacreBLEU called here (see conftest's ``oracle``), on NLTK's own docstring
and unit-test sentences re-expressed as token IDs, and on random batches (hypothesis).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_functional_parity import ALL_METHODS, NLTK_METHODS, SACRE_METHODS, _assert_close, token_batches

from tensorbleu_metrics.bleu import TokenIDBLEU
from tensorbleu_metrics.functional import bleu as bleu_module
from tensorbleu_metrics.functional import (
    bleu_from_stats,
    bleu_stats,
    check_bleu_options,
    corpus_bleu,
    sentence_bleu,
)

# ---- NLTK's docstring / unit-test sentences, as token IDs --------------------------------------------------

_HYP1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
_HYP2 = "It is to insure the troops forever hearing the activity guidebook that party direct"
_REF1 = "It is a guide to action that ensures that the military will forever heed Party commands"
_REF2 = "It is the guiding principle which guarantees the military forces always being under the command of the Party"
_REF3 = "It is the practical guide for the army always to heed the directions of the party"
_HYP_B = "he read the book because he was interested in world history"
_REF_B = "he was interested in world history because he read the book"
_VOCAB: dict[str, int] = {}


def _ids(text: str) -> list[int]:
    return [_VOCAB.setdefault(w, len(_VOCAB) + 1) for w in text.split()]


HYP1, HYP2, REF1, REF2, REF3, HYP_B, REF_B = map(_ids, (_HYP1, _HYP2, _REF1, _REF2, _REF3, _HYP_B, _REF_B))
SENTENCE_WEIGHTS = [(1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3), (1 / 4, 1 / 4, 1 / 4, 1 / 4)]
CORPUS_WEIGHTS = [(0.5, 0.5), (0.333, 0.333, 0.334), (0.25, 0.25, 0.25, 0.25), (0.2, 0.2, 0.2, 0.2, 0.2)]
UNIT_TEST_WEIGHTS = [(1, 0, 0, 0), (0.25, 0.25, 0.25, 0.25), (0, 0, 0, 0, 1)]
MIXED_WEIGHT_LISTS = {
    "docstring-sentence": SENTENCE_WEIGHTS,
    "docstring-corpus": CORPUS_WEIGHTS,
    "unit-test": UNIT_TEST_WEIGHTS,
    "short-first": [(0.25,) * 4, (1.0,), (0.1, 0.2, 0.3, 0.2, 0.1, 0.1)],
}
# every smoothing method that takes a parameter, with a value other than its default
PARAMS = {"method1": ("epsilon", 0.3), "method4": ("k", 3.0), "method6": ("alpha", 2.0), "method7": ("k", 7.0)}


def test_nltk_docstring_examples():
    """The values NLTK's docstrings show, with NLTK itself as the oracle."""
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
    from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

    refs = [REF1, REF2, REF3]
    got = sentence_bleu([HYP1], [refs], weights=SENTENCE_WEIGHTS, dtype=torch.float64)[:, 0]
    expected = nltk_sentence_bleu(refs, HYP1, SENTENCE_WEIGHTS)
    _assert_close(got, expected)
    assert [f"{x:.8f}"[:6] for x in got.tolist()] == ["0.7453", "0.6240", "0.5045"]  # NLTK's "0.7453..."
    got = corpus_bleu([HYP1, HYP_B], [refs, [REF_B]], weights=CORPUS_WEIGHTS, dtype=torch.float64)
    _assert_close(got, nltk_corpus_bleu([refs, [REF_B]], [HYP1, HYP_B], CORPUS_WEIGHTS))
    assert [f"{x:.8f}"[:6] for x in got.tolist()] == ["0.8242", "0.7067", "0.5920", "0.4719"]


@pytest.mark.parametrize("auto_reweigh", [False, True])
@pytest.mark.parametrize("smoothing", NLTK_METHODS)
@pytest.mark.parametrize("name", list(MIXED_WEIGHT_LISTS))
def test_mixed_length_weights_match_nltk(device, oracle, name, smoothing, auto_reweigh):
    """Each NLTK method with a weight list of mixed lengths, sentence and corpus, against NLTK."""
    weights = MIXED_WEIGHT_LISTS[name]
    hyps = [HYP1, HYP2, HYP_B, [7, 8], HYP1[:3], []]
    refs = [[REF1, REF2, REF3], [REF1, REF2, REF3], [REF_B], [[7, 8, 9]], [REF1], [REF2]]
    preds = [torch.tensor(h, dtype=torch.int64, device=device) for h in hyps]
    kwargs = {"weights": weights, "smoothing": smoothing, "auto_reweigh": auto_reweigh, "dtype": torch.float64}
    sent = sentence_bleu(preds, refs, **kwargs)
    assert sent.shape == (len(weights), len(hyps))
    expected = [
        oracle.sentence(h, rs, 0, smoothing, weights=weights, auto_reweigh=auto_reweigh)
        for h, rs in zip(hyps, refs, strict=True)
    ]
    _assert_close(sent, torch.tensor(expected, dtype=torch.float64).T, what=f"sentence {name} {smoothing}")
    corp = corpus_bleu(preds, refs, **kwargs)
    order = max(len(w) for w in weights)
    _assert_close(corp, oracle.corpus(hyps, refs, order, smoothing, weights=weights, auto_reweigh=auto_reweigh))
    # one sentence as a corpus is NLTK's corpus_bleu itself, for every method
    one = corpus_bleu(preds[:1], refs[:1], **kwargs)
    _assert_close(one, oracle.nltk_corpus(hyps[:1], refs[:1], 0, smoothing, weights=weights, auto_reweigh=auto_reweigh))


@pytest.mark.parametrize("smoothing", list(PARAMS))
def test_mixed_length_weights_with_smoothing_parameter(oracle, smoothing):
    param, value = PARAMS[smoothing]
    hyps, refs = [HYP1, HYP2], [[REF1, REF2, REF3], [REF1, REF3]]
    for weights in MIXED_WEIGHT_LISTS.values():
        got = sentence_bleu(hyps, refs, weights=weights, smoothing=smoothing, smooth_value=value, dtype=torch.float64)
        expected = [
            [0.0] * len(weights)
            if smoothing == "method6" and oracle.nltk_method6_raises([h], [rs])
            else oracle.nltk_sentence(h, rs, 0, smoothing, weights=weights, smoothing_params={param: value})
            for h, rs in zip(hyps, refs, strict=True)
        ]
        _assert_close(got, torch.tensor(expected, dtype=torch.float64).T, what=f"{smoothing} {weights}")


def test_mixed_length_method5_is_not_zero_padding_of_separate_calls(oracle):
    """NLTK smooths once over the longest order: with method5 a 2-tuple next to a 4-tuple mixes in the real
    trigram precision, not the 5-gram one a BLEU-2 call alone uses. So a mixed list differs from separate calls."""
    weights = [(0.5, 0.5), (0.25,) * 4]
    together = sentence_bleu([HYP1], [[REF1, REF2, REF3]], weights=weights, smoothing="method5", dtype=torch.float64)
    alone = sentence_bleu([HYP1], [[REF1, REF2, REF3]], weights=weights[0], smoothing="method5", dtype=torch.float64)
    assert abs(together[0, 0].item() - alone[0].item()) > 1e-6
    _assert_close(together[:, 0], oracle.nltk_sentence(HYP1, [REF1, REF2, REF3], 0, "method5", weights=weights))
    _assert_close(alone, [oracle.nltk_sentence(HYP1, [REF1, REF2, REF3], 0, "method5", weights=weights[0])])


@pytest.mark.parametrize("smoothing", SACRE_METHODS)
@pytest.mark.parametrize("flag", [False, True])
def test_mixed_length_uniform_weights_match_sacrebleu_orders(oracle, smoothing, flag):
    """SacreBLEU's methods: a uniform tuple of length n in a mixed list scores as SacreBLEU with max order n."""
    hyps, refs = [HYP1, HYP2, HYP_B, [1, 2]], [[REF1, REF2, REF3], [REF1, REF3], [REF_B], [[1, 2, 3]]]
    orders = (1, 3, 2, 5, 4)
    weights = [(1 / n,) * n for n in orders]
    kwargs = {"weights": weights, "smoothing": smoothing, "effective_order": flag, "dtype": torch.float64}
    sent, corp = sentence_bleu(hyps, refs, **kwargs), corpus_bleu(hyps, refs, **kwargs)
    for k, n in enumerate(orders):
        pairs = zip(hyps, refs, strict=True)
        exp = [oracle.sacre_sentence(h, rs, n, smoothing, effective_order=flag) for h, rs in pairs]
        _assert_close(sent[k], exp, what=f"sentence n={n}")
        exp_corpus = oracle.sacre_corpus(hyps, refs, n, smoothing, effective_order=flag)
        _assert_close(corp[k], exp_corpus, what=f"corpus n={n}")


@pytest.mark.parametrize("smoothing", ["none", "method1", "method5", "method7"])
def test_mixed_lengths_count_once_for_the_highest_order(monkeypatch, smoothing):
    calls: list[int] = []
    real = bleu_module.count_stats

    def counting(batch, n_gram):
        calls.append(n_gram)
        return real(batch, n_gram)

    monkeypatch.setattr(bleu_module, "count_stats", counting)
    weights = [(1.0,), (0.5, 0.5), (1 / 3,) * 3]
    sentence_bleu([HYP1], [[REF1]], weights=weights, smoothing=smoothing)
    corpus_bleu([HYP1], [[REF1]], weights=weights, smoothing=smoothing)
    assert calls == [5 if smoothing in ("method5", "method7") else 3] * 2


def test_n_gram_may_be_left_out_or_must_match():
    weights = [(0.5, 0.5), (1 / 3,) * 3]
    assert check_bleu_options(weights=weights) == 3
    assert check_bleu_options(n_gram=3, weights=weights) == 3
    assert check_bleu_options() == 4
    assert check_bleu_options(n_gram=2) == 2
    left_out = sentence_bleu([HYP1], [[REF1]], weights=weights)
    given_n = sentence_bleu([HYP1], [[REF1]], n_gram=3, weights=weights)
    assert torch.equal(left_out, given_n)
    with pytest.raises(ValueError, match=r"weights\[1\]` has 3 weights, more than n_gram=2"):
        sentence_bleu([HYP1], [[REF1]], n_gram=2, weights=weights)
    with pytest.raises(ValueError, match="longest weight tuple has 3 weights but n_gram=4"):
        corpus_bleu([HYP1], [[REF1]], n_gram=4, weights=weights)
    with pytest.raises(ValueError, match="weights"):
        TokenIDBLEU(n_gram=2, weights=weights)
    with pytest.raises(ValueError, match="method6"):
        sentence_bleu([HYP1], [[REF1]], weights=[(0.5, 0.5), (1.0,)], smoothing="method6")
    # a single weight tuple decides the order too
    assert check_bleu_options(weights=(0.5, 0.5)) == 2


def test_bleu_from_stats_with_mixed_lengths():
    stats = bleu_stats([HYP1, HYP2], [[REF1, REF2], [REF3]], n_gram=5)
    weights = [(0.5, 0.5), (0.25,) * 4]
    sent = bleu_from_stats(stats, weights=weights, smoothing="method5", dtype=torch.float64)
    corp = bleu_from_stats(stats.sum(), weights=weights, smoothing="method5", dtype=torch.float64)
    kwargs = {"weights": weights, "smoothing": "method5", "dtype": torch.float64}
    _assert_close(sent, sentence_bleu([HYP1, HYP2], [[REF1, REF2], [REF3]], **kwargs))
    _assert_close(corp, corpus_bleu([HYP1, HYP2], [[REF1, REF2], [REF3]], **kwargs))


@pytest.mark.parametrize("smoothing", ["none", "exp", "method3", "method7"])
def test_metric_with_mixed_length_weights(smoothing):
    hyps, refs = [HYP1, HYP2, HYP_B], [[REF1, REF2, REF3], [REF1, REF3], [REF_B]]
    weights = CORPUS_WEIGHTS
    metric = TokenIDBLEU(weights=weights, smoothing=smoothing, return_sentence_level_score=True)
    assert metric.n_gram == 5
    metric.update(hyps[:2], refs[:2])
    metric.update(hyps[2:], refs[2:])
    corpus, sentences = metric.compute()
    kwargs = {"weights": weights, "smoothing": smoothing}
    torch.testing.assert_close(corpus, corpus_bleu(hyps, refs, **kwargs), rtol=0, atol=1e-6)
    torch.testing.assert_close(sentences, sentence_bleu(hyps, refs, **kwargs), rtol=0, atol=1e-6)
    assert sentences.shape == (len(weights), len(hyps))


@settings(max_examples=60, deadline=None)
@given(batch=token_batches(), smoothing=st.sampled_from(NLTK_METHODS), auto_reweigh=st.booleans(), data=st.data())
def test_property_mixed_length_weights_match_nltk(oracle, batch, smoothing, auto_reweigh, data):
    hyps, refs = batch
    lowest = 3 if smoothing == "method6" else 1
    lengths = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    if max(lengths) < lowest:
        lengths.append(lowest)
    weights = [
        (0.25,) * 4 if n == 4 and data.draw(st.booleans()) else tuple(data.draw(st.floats(0.0, 1.0)) for _ in range(n))
        for n in lengths
    ]
    kwargs = {"weights": weights, "auto_reweigh": auto_reweigh}
    sent = sentence_bleu(hyps, refs, smoothing=smoothing, dtype=torch.float64, **kwargs)
    expected = [oracle.sentence(h, rs, 0, smoothing, **kwargs) for h, rs in zip(hyps, refs, strict=True)]
    _assert_close(sent, torch.tensor(expected, dtype=torch.float64).T, what=f"sentence {weights}")
    corp = corpus_bleu(hyps, refs, smoothing=smoothing, dtype=torch.float64, **kwargs)
    _assert_close(corp, oracle.corpus(hyps, refs, max(lengths), smoothing, **kwargs), what=f"corpus {weights}")


# ---- smooth_value ranges ---------------------------------------------------------------------------------------

_MIN_K = 1.5 * math.log(2.0**63) / 1.7976931348623157e308
# (method, lowest valid value, the largest invalid value below it)
BOUNDARIES = [
    ("floor", 0.0, -1e-300),
    ("add-k", 0.0, -1e-300),
    ("method1", 0.0, -1e-300),
    ("method4", _MIN_K, math.nextafter(_MIN_K, 0.0)),
    ("method7", _MIN_K, math.nextafter(_MIN_K, 0.0)),
    ("method6", math.nextafter(0.0, 1.0), 0.0),
]
EXTREME_BATCH = (
    [HYP1, HYP2, [5], [], HYP_B, HYP1[:3], [1, 1, 1, 1]],
    [[REF1, REF2, REF3], [REF3], [[5, 6, 7, 8]], [REF1], [REF_B], [REF1], [[1, 1]]],
)


@pytest.mark.parametrize(("smoothing", "lowest", "below"), BOUNDARIES)
def test_smooth_value_boundaries(smoothing, lowest, below):
    hyps, refs = EXTREME_BATCH
    for fn in (sentence_bleu, corpus_bleu):
        for value in (lowest, 1e-300 if lowest < 1e-300 else lowest, 1.0, 1e300, 1.7976931348623157e308):
            out = fn(hyps, refs, smoothing=smoothing, smooth_value=value, dtype=torch.float64)
            assert bool(torch.isfinite(out).all()), (smoothing, value, out)
            out32 = fn(hyps, refs, smoothing=smoothing, smooth_value=value)
            assert bool(torch.isfinite(out32).all()), (smoothing, value, out32)
        for bad in (below, -1.0, math.inf, -math.inf, math.nan):
            with pytest.raises(ValueError, match=rf"smooth_value.*{smoothing}.*must be a finite number in"):
                fn(hyps, refs, smoothing=smoothing, smooth_value=bad)
        with pytest.raises(ValueError, match="smooth_value"):
            TokenIDBLEU(smoothing=smoothing, smooth_value=below)


def test_smooth_value_zero_for_method4_and_method7_is_an_error_as_in_nltk(oracle):
    """NLTK raises ZeroDivisionError for k=0; the range check says which values work instead of returning inf."""
    with pytest.raises(ZeroDivisionError):
        oracle.nltk_sentence(HYP2, [REF1], 4, "method4", smoothing_params={"k": 0})
    for smoothing in ("method4", "method7"):
        with pytest.raises(ValueError, match=r"NLTK's k.*\[3\.643692424065002e-307, inf\)"):
            sentence_bleu([HYP2], [[REF1]], smoothing=smoothing, smooth_value=0)


@pytest.mark.parametrize("smoothing", ["floor", "add-k", "method1", "method4", "method6", "method7"])
def test_the_bound_an_error_names_is_the_exact_one(smoothing):
    """The lower bound printed in a range error is exact: it (for a closed range) or the next float (open) scores."""
    with pytest.raises(ValueError, match="must be a finite number in") as err:
        sentence_bleu([HYP2], [[REF1]], smoothing=smoothing, smooth_value=-1.0)
    closed, low = re.search(r"in ([\[(])([^,]+), inf\)", str(err.value)).groups()
    value = float(low) if closed == "[" else math.nextafter(float(low), math.inf)
    score = sentence_bleu([HYP2], [[REF1]], smoothing=smoothing, smooth_value=value, dtype=torch.float64)
    assert bool(torch.isfinite(score).all())


@pytest.mark.parametrize(("smoothing", "lowest", "below"), BOUNDARIES)
def test_smooth_value_at_the_boundary_matches_nltk_or_sacrebleu(oracle, smoothing, lowest, below):
    """The smallest valid value still scores as the oracle does (where the oracle can compute it)."""
    hyps, refs = [HYP1, HYP2, [7, 8, 9]], [[REF1, REF2, REF3], [REF3], [[7, 8, 1, 2]]]
    if smoothing in SACRE_METHODS:
        got = sentence_bleu(hyps, refs, smoothing=smoothing, smooth_value=lowest, dtype=torch.float64)
        pairs = zip(hyps, refs, strict=True)
        exp = [oracle.sacre_sentence(h, rs, 4, smoothing, smooth_value=lowest) for h, rs in pairs]
    else:
        param = PARAMS[smoothing][0]
        value = 1e-3 if smoothing == "method6" else lowest  # NLTK's method6 works in exact fractions only then
        got = sentence_bleu(hyps, refs, smoothing=smoothing, smooth_value=value, dtype=torch.float64)
        exp = [
            0.0
            if smoothing == "method6" and oracle.nltk_method6_raises([h], [rs])
            else oracle.nltk_sentence(h, rs, 4, smoothing, smoothing_params={param: value})
            for h, rs in zip(hyps, refs, strict=True)
        ]
    _assert_close(got, exp, what=f"{smoothing} at {lowest}")


@pytest.mark.parametrize("smoothing", ["none", "floor", "add-k", "exp", "method0", "method2", "method3", "method5"])
def test_smooth_value_without_meaning_is_rejected(smoothing):
    if smoothing in ("floor", "add-k"):
        sentence_bleu([HYP1], [[REF1]], smoothing=smoothing, smooth_value=0.5)
        return
    with pytest.raises(ValueError, match="no meaning"):
        sentence_bleu([HYP1], [[REF1]], smoothing=smoothing, smooth_value=0.5)


@settings(max_examples=80, deadline=None)
@given(
    batch=token_batches(max_batch=4),
    smoothing=st.sampled_from(ALL_METHODS),
    exponent=st.floats(-306.0, 308.0),
    weight=st.one_of(st.floats(0.0, 1e3), st.floats(0.0, 1e300)),
    n_gram=st.integers(3, 6),
    dtype=st.sampled_from([torch.float64, torch.float32, torch.float16]),
)
def test_property_no_input_gives_inf_or_nan(batch, smoothing, exponent, weight, n_gram, dtype):
    """Extreme smoothing values and weights never give inf or NaN (a score beyond the dtype saturates)."""
    hyps, refs = batch
    value = None if smoothing not in dict.fromkeys([b[0] for b in BOUNDARIES]) else 10.0**exponent
    weights = [(weight,) * n_gram, (1.0,), tuple([0.0] * (n_gram - 1) + [weight])]
    for fn in (sentence_bleu, corpus_bleu):
        out = fn(hyps, refs, weights=weights, smoothing=smoothing, smooth_value=value, dtype=dtype)
        assert bool(torch.isfinite(out).all()), (smoothing, value, weights, out)
        assert bool((out >= 0).all())


def test_bleu_scores_survive_weights_moved_to_shared_memory() -> None:
    """Pickling a Metric for spawned processes moves its tensors' storage to shared memory (``share_memory_``); the
    CPU scorer's own copies of the weights must not dangle, in this process or in the spawned one."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # registers the tensor reductions with ForkingPickler

    from tensorbleu_metrics.bleu import TokenIDBLEU
    from tensorbleu_metrics.functional import sentence_bleu

    preds, target = torch.tensor([[1, 2, 3, 4, 5, 6]]), torch.tensor([[1, 2, 3, 4, 5, 7]])
    expected = sentence_bleu(preds, target, smoothing="method1", dtype=torch.float64)
    metric = TokenIDBLEU(smoothing="method1", weights=(0.5, 0.25, 0.25))
    metric.update(preds, target)
    before = metric.compute()
    copy = pickle.loads(ForkingPickler.dumps(metric))  # share_memory_ on every tensor, as spawning does
    torch.testing.assert_close(copy.compute(), before, rtol=0, atol=0)
    torch.testing.assert_close(metric.compute(), before, rtol=0, atol=0)
    # the default weights are kept between calls: moving them must not change later calls either
    from tensorbleu_metrics.functional._scoring import _uniform_weights

    _uniform_weights(4).matrix.share_memory_()
    torch.testing.assert_close(sentence_bleu(preds, target, smoothing="method1", dtype=torch.float64), expected)
