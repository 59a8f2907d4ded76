"""Parity of the functional kernel with NLTK, SacreBLEU and torchmetrics (oracles are called, see conftest).

Tolerances: float64 output within 1e-12 absolute of the oracle, float32 output within 1e-6.
"""

from __future__ import annotations

import random

import pytest
import torch
from corpus_utils import NoHostReads, OperationKinds
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional import (
    SMOOTHING_METHODS,
    BLEUStats,
    bleu_from_stats,
    bleu_stats,
    corpus_bleu,
    counted_orders,
    sentence_bleu,
)

NLTK_METHODS = tuple(f"method{k}" for k in range(8))
SACRE_METHODS = ("none", "floor", "add-k", "exp")
ALL_METHODS = SACRE_METHODS + NLTK_METHODS
N_GRAMS = (1, 2, 3, 4, 5, 6)
PAD = 0  # the parity batches use token IDs >= 1
ATOL64 = 1e-12
ATOL32 = 1e-6


def _flag_kwargs(smoothing: str, flag: bool) -> dict:
    """effective_order for SacreBLEU methods, auto_reweigh for NLTK methods."""
    return {"effective_order": flag} if smoothing in SACRE_METHODS else {"auto_reweigh": flag}


def _grid(n_grams=N_GRAMS, methods=ALL_METHODS):
    for smoothing in methods:
        for n_gram in n_grams:
            if smoothing == "method6" and n_gram < 3:
                continue
            for flag in (False, True):
                name = "eff" if smoothing in SACRE_METHODS else "reweigh"
                yield pytest.param(smoothing, n_gram, flag, id=f"{smoothing}-n{n_gram}-{name}{int(flag)}")


def _t(seq, device) -> torch.Tensor:
    return torch.tensor(list(seq), dtype=torch.int64, device=device)


def _assert_close(got: torch.Tensor, expected, atol: float = ATOL64, what: str = "") -> None:
    exp = torch.as_tensor(expected, dtype=torch.float64, device="cpu")
    got64 = got.detach().to("cpu", torch.float64)
    assert got64.shape == exp.shape, f"{what}: shape {tuple(got64.shape)} != {tuple(exp.shape)}"
    diff = (got64 - exp).abs()
    bad = diff > atol
    assert not bool(bad.any()), (
        f"{what}: kernel differs from the oracle at {bad.nonzero().flatten().tolist()}: "
        f"got {got64[bad].tolist()}, expected {exp[bad].tolist()}"
    )


# ----------------------------------------------------------------------------------------------------------
# fixed batches
# ----------------------------------------------------------------------------------------------------------


def _single_ref_batch():
    rng = random.Random(20240601)
    crafted = [
        ([1, 2, 3, 4, 5, 6], [[1, 2, 3, 4, 7, 5, 6]]),  # partial matches at every order
        ([1, 1, 1, 1, 1, 1, 1], [[1, 1, 2, 1, 1]]),  # repeated n-grams: clipping
        (list(range(1, 11)), [list(range(1, 11))]),  # exact match
        ([], [[1, 2, 3]]),  # empty candidate
        ([3, 4], [[3, 4, 5]]),  # candidate shorter than n
        ([1, 2, 3, 4, 5], [[1, 2]]),  # reference shorter than n
        ([7, 8, 9], [[1, 2, 3]]),  # no match at all
        ([5], [[5, 6]]),  # single matching token
        ([1, 2, 1, 2, 1, 2, 3], [[]]),  # the only reference is empty
        ([2, 3, 2, 3, 4, 4, 2, 3], [[2, 3, 4, 4, 2, 3, 2]]),
    ]
    randoms = []
    for _ in range(6):
        hyp = [rng.randint(1, 3) for _ in range(rng.randint(3, 12))]
        ref = [rng.randint(1, 3) for _ in range(rng.randint(3, 12))]
        randoms.append((hyp, [ref]))
    batch = crafted + randoms
    return [h for h, _ in batch], [r for _, r in batch]


def _multi_ref_batch():
    rng = random.Random(7)
    eight = [[rng.randint(1, 4) for _ in range(rng.randint(1, 10))] for _ in range(8)]
    crafted = [
        ([1, 2, 3, 4, 5], [[1, 2, 3, 4], [1, 2, 3, 4, 5, 6]]),  # closest-length tie 4 / 6 -> 4
        ([1, 2, 3, 4, 5], [[9, 1, 2, 3, 4, 5], [5, 4, 3, 2]]),  # tie, shorter listed second
        ([2, 2, 2, 2, 3], [[2, 2, 3], [2, 2, 2, 3, 3], [1]]),  # clipping by the max over references
        ([1, 2, 3, 4, 1, 2, 3, 4], eight),  # eight references
        ([9, 9], [[1, 2], [3]]),  # no match
        ([4, 5, 6], [[4, 5, 6, 7], [4, 5], [6]]),
        ([], [[1], [1, 2]]),  # empty candidate
        ([3, 1, 3, 1, 3], [[3, 1, 3, 2, 3, 1], [1, 3, 1, 3, 1, 3, 1, 3]]),
    ]
    randoms = []
    for _ in range(6):
        hyp = [rng.randint(1, 4) for _ in range(rng.randint(2, 12))]
        refs = [[rng.randint(1, 4) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(2, 4))]
        randoms.append((hyp, refs))
    batch = crafted + randoms
    return [h for h, _ in batch], [r for _, r in batch]


BATCHES = {"single": _single_ref_batch(), "multi": _multi_ref_batch()}


def _device_inputs(kind: str, device, pack):
    """Padded tensors on ``device``: (B, L') target for the one-reference batch (its empty reference is an
    all-pad row), (B, R, L') for the several-reference batch (missing references are all-pad rows)."""
    hyps, refs = BATCHES[kind]
    preds = pack.preds(hyps, PAD, device, extra=1)
    if kind == "single":
        target = pack.preds([rs[0] for rs in refs], PAD, device, extra=2)
    else:
        target = pack.target(refs, PAD, device, extra=1)
    return preds, target


# ----------------------------------------------------------------------------------------------------------
# the grid: every smoothing x n_gram x effective_order / auto_reweigh x one / several references
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize(("smoothing", "n_gram", "flag"), list(_grid()))
def test_sentence_bleu_matches_oracle(device, pack, oracle, kind, smoothing, n_gram, flag):
    hyps, refs = BATCHES[kind]
    preds, target = _device_inputs(kind, device, pack)
    kwargs = _flag_kwargs(smoothing, flag)
    got = sentence_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    assert got.dtype == torch.float64
    assert got.device.type == device.type
    expected = [oracle.sentence(h, rs, n_gram, smoothing, **kwargs) for h, rs in zip(hyps, refs, strict=True)]
    _assert_close(got, expected, what=f"sentence {smoothing} n={n_gram} {kwargs}")


@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize(("smoothing", "n_gram", "flag"), list(_grid()))
def test_corpus_bleu_matches_oracle(device, pack, oracle, kind, smoothing, n_gram, flag):
    hyps, refs = BATCHES[kind]
    preds, target = _device_inputs(kind, device, pack)
    kwargs = _flag_kwargs(smoothing, flag)
    got = corpus_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    assert got.shape == ()
    assert got.dtype == torch.float64
    assert got.device.type == device.type
    expected = oracle.corpus(hyps, refs, n_gram, smoothing, **kwargs)
    _assert_close(got, expected, what=f"corpus {smoothing} n={n_gram} {kwargs}")


@pytest.mark.parametrize(
    ("smoothing", "n_gram", "flag"),
    list(_grid(n_grams=(1, 3, 4, 6), methods=("method5", "method6", "method7"))),
)
def test_corpus_method567_single_sentence_matches_nltk(device, oracle, smoothing, n_gram, flag):
    """On one-sentence corpora NLTK's last-pair smoothing is the corpus rule: compare with NLTK's corpus_bleu
    (and check the Fraction transcription used for multi-sentence corpora agrees too)."""
    hyps, refs = BATCHES["multi"]
    for i in (0, 2, 3, 5, 7, 9):  # tie, clipping, 8 references, partial, longer, random
        hyp, rs = hyps[i], refs[i]
        got = corpus_bleu(
            [_t(hyp, device)],
            [[_t(r, device) for r in rs]],
            n_gram=n_gram,
            smoothing=smoothing,
            auto_reweigh=flag,
            dtype=torch.float64,
        )
        if smoothing == "method6" and oracle.nltk_method6_raises([hyp], [rs]):
            expected = 0.0
        else:
            expected = oracle.nltk_corpus([hyp], [rs], n_gram, smoothing, auto_reweigh=flag)
        formula = oracle.nltk_formula(
            oracle.nltk_corpus_stats([hyp], [rs], max(n_gram, 5)), n_gram, smoothing, auto_reweigh=flag
        )
        assert abs(formula - expected) <= ATOL64, "test oracle transcription disagrees with NLTK"
        _assert_close(got, expected, what=f"corpus {smoothing} n={n_gram} hyp={hyp} refs={rs}")


@pytest.mark.parametrize("smoothing", ALL_METHODS)
def test_float32_output_within_1e6(device, pack, oracle, smoothing):
    kind = "multi"
    hyps, refs = BATCHES[kind]
    preds, target = _device_inputs(kind, device, pack)
    sent = sentence_bleu(preds, target, smoothing=smoothing, pad_id=PAD)
    corp = corpus_bleu(preds, target, smoothing=smoothing, pad_id=PAD, dtype=torch.float32)
    assert sent.dtype == torch.float32
    assert corp.dtype == torch.float32
    _assert_close(
        sent,
        [oracle.sentence(h, rs, 4, smoothing) for h, rs in zip(hyps, refs, strict=True)],
        ATOL32,
        "sentence",
    )
    _assert_close(corp, oracle.corpus(hyps, refs, 4, smoothing), ATOL32, "corpus")


@pytest.mark.parametrize(
    ("smoothing", "smooth_value"),
    [("floor", 0.3), ("floor", 0.01), ("add-k", 0.5), ("add-k", 2), ("exp", None)],
)
@pytest.mark.parametrize("n_gram", [2, 4])
@pytest.mark.parametrize("effective_order", [False, True])
def test_sacrebleu_smooth_value(device, pack, oracle, smoothing, smooth_value, n_gram, effective_order):
    hyps, refs = BATCHES["multi"]
    preds, target = _device_inputs("multi", device, pack)
    kwargs = {"smooth_value": smooth_value, "effective_order": effective_order}
    sent = sentence_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    corp = corpus_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    exp_sent = [oracle.sacre_sentence(h, rs, n_gram, smoothing, **kwargs) for h, rs in zip(hyps, refs, strict=True)]
    _assert_close(sent, exp_sent, what="sentence")
    _assert_close(corp, oracle.sacre_corpus(hyps, refs, n_gram, smoothing, **kwargs), what="corpus")


# ----------------------------------------------------------------------------------------------------------
# torchmetrics as a third oracle where its semantics coincide
# ----------------------------------------------------------------------------------------------------------


def _torchmetrics_batch(n_gram: int, seed: int):
    """Candidates of length >= n_gram (so NLTK's clamped totals equal the raw totals), references derived from
    the candidate (so every order matches at corpus level) with a unique closest length (no ties)."""
    rng = random.Random(seed)
    hyps, refs = [], []
    for _ in range(6):
        hyp = [rng.randint(1, 6) for _ in range(rng.randint(max(n_gram, 6), 12))]
        rs = []
        for j in range(rng.randint(1, 3)):
            r = list(hyp)
            for _ in range(rng.randint(0, 3)):
                r[rng.randrange(len(r))] = rng.randint(1, 6)
            r = r[: len(r) - j] if j % 2 else r + [rng.randint(1, 6) for _ in range(2 * j)]
            rs.append(r)
        diffs = sorted(abs(len(r) - len(hyp)) for r in rs)
        if len(diffs) > 1 and diffs[0] == diffs[1]:
            rs = rs[:1]
        hyps.append(hyp)
        refs.append(rs)
    return hyps, refs


@pytest.mark.parametrize("n_gram", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_corpus_bleu_matches_torchmetrics(device, oracle, n_gram, seed):
    hyps, refs = _torchmetrics_batch(n_gram, seed)
    stats = oracle.nltk_corpus_stats(hyps, refs, n_gram)
    assert min(stats["matches"]) > 0  # precondition of the comparison
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    plain = oracle.tm_corpus(hyps, refs, n_gram, smooth=False)
    smooth = oracle.tm_corpus(hyps, refs, n_gram, smooth=True)
    for name in ("none", "method0"):
        got = corpus_bleu(preds, target, n_gram=n_gram, smoothing=name, dtype=torch.float64)
        _assert_close(got, plain, ATOL32, f"{name} vs torchmetrics smooth=False")
    got = corpus_bleu(preds, target, n_gram=n_gram, smoothing="method2", dtype=torch.float64)
    _assert_close(got, smooth, ATOL32, "method2 vs torchmetrics smooth=True")
    metric = oracle.tm_metric_corpus(hyps, refs, n_gram, smooth=True)
    _assert_close(got, metric, ATOL32, "method2 vs torchmetrics BLEUScore(smooth=True)")
    weights = tuple((i + 1) / (n_gram * (n_gram + 1) / 2) for i in range(n_gram))
    got = corpus_bleu(preds, target, n_gram=n_gram, weights=weights, smoothing="method0")
    _assert_close(got, oracle.tm_corpus(hyps, refs, n_gram, smooth=False, weights=weights), ATOL32, "weights")


# ----------------------------------------------------------------------------------------------------------
# edge cases
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", ALL_METHODS)
def test_empty_candidates_score_zero(device, oracle, smoothing):
    n_gram = 4
    hyps = [[], [], []]
    refs = [[[1, 2, 3]], [[1], []], [[4, 5, 6, 7, 8]]]
    preds = [torch.zeros(0, dtype=torch.int64, device=device) for _ in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    sent = sentence_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, dtype=torch.float64)
    corp = corpus_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, dtype=torch.float64)
    assert sent.tolist() == [0.0, 0.0, 0.0]
    assert corp.item() == 0.0
    _assert_close(sent, [oracle.sentence(h, rs, n_gram, smoothing) for h, rs in zip(hyps, refs, strict=True)])
    stats = bleu_stats(preds, target, n_gram=n_gram)
    assert stats.pred_len.tolist() == [0, 0, 0]
    assert stats.totals.tolist() == [[0] * 4] * 3
    assert stats.clamped_totals.tolist() == [[1] * 4] * 3
    assert stats.ref_len.tolist() == [3, 0, 5]


@pytest.mark.parametrize("refs", [[[1, 2, 3, 4], [1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4]]])
def test_closest_reference_length_tie_takes_shorter(device, oracle, refs):
    hyp = [1, 2, 3, 4, 5]
    preds = [_t(hyp, device)]
    target = [[_t(r, device) for r in refs]]
    stats = bleu_stats(preds, target)
    assert stats.ref_len.tolist() == [4]
    assert stats.pred_len.tolist() == [5]
    # brevity penalty 1 with the shorter reference; the longer one would penalise (exp(1 - 6/5))
    for smoothing in ("none", "method0", "method1"):
        got = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
        _assert_close(got, [oracle.sentence(hyp, refs, 4, smoothing)], what=smoothing)
        _assert_close(got, [1.0], what=smoothing)  # all precisions 1, brevity penalty 1 (not exp(1 - 6/5))


def test_clipping_of_repeated_ngrams(device, oracle):
    hyp = [1, 1, 1, 1, 1, 1, 1]
    refs = [[1, 1, 2, 1, 1], [2, 1, 1, 1]]
    stats = bleu_stats([_t(hyp, device)], [[_t(r, device) for r in refs]])
    # unigram 1: max(4, 3) = 4; bigram (1,1): max(2, 2) = 2; trigram (1,1,1): max(0, 1) = 1; 4-gram: 0
    assert stats.matches.tolist() == [[4, 2, 1, 0]]
    assert stats.totals.tolist() == [[7, 6, 5, 4]]
    expected = oracle.nltk_stats(hyp, refs, 4)
    assert stats.matches.tolist() == [expected["matches"]]


@pytest.mark.parametrize("smoothing", ALL_METHODS)
def test_tiny_vocabulary_everything_matches(device, oracle, smoothing):
    hyps = [[3] * 6, [3] * 9, [3, 3, 3, 3, 3]]
    refs = [[[3] * 6], [[3] * 9, [3] * 2], [[3] * 5] * 8]
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    stats = bleu_stats(preds, target, n_gram=4)
    assert torch.equal(stats.matches, stats.totals)
    sent = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    corp = corpus_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    _assert_close(
        sent,
        [oracle.sentence(h, rs, 4, smoothing) for h, rs in zip(hyps, refs, strict=True)],
        what="sentence",
    )
    _assert_close(corp, oracle.corpus(hyps, refs, 4, smoothing), what="corpus")
    if smoothing not in ("method5", "method7"):  # those average in the +1 of NLTK's m[-1]
        assert sent.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-15)


BIG_ID_MAPS = {
    "above_2^40": lambda t: 2**40 + 977 * t,
    "near_2^62": lambda t: 2**62 - 5 + t,
    "int64_max": lambda t: 2**63 - 1 - t,
    "low_bits_equal": lambda t: 5 + (t << 32) if t % 2 else 5 + (t << 40),  # equal modulo 2**32
}


@pytest.mark.parametrize("id_map", list(BIG_ID_MAPS), ids=list(BIG_ID_MAPS))
@pytest.mark.parametrize("smoothing", ["none", "exp", "method1", "method5"])
def test_large_token_ids(device, oracle, id_map, smoothing):
    fmap = BIG_ID_MAPS[id_map]
    hyps, refs = BATCHES["multi"]
    big_hyps = [[fmap(t) for t in h] for h in hyps]
    big_refs = [[[fmap(t) for t in r] for r in rs] for rs in refs]
    assert len({fmap(t) for t in range(10)}) == 10  # injective on the vocabulary
    preds = [_t(h, device) for h in big_hyps]
    target = [[_t(r, device) for r in rs] for rs in big_refs]
    got = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    _assert_close(got, [oracle.sentence(h, rs, 4, smoothing) for h, rs in zip(big_hyps, big_refs, strict=True)])
    small = sentence_bleu(hyps, refs, smoothing=smoothing, dtype=torch.float64)
    _assert_close(got, small.tolist(), what="big IDs vs small IDs")
    got_list = corpus_bleu(big_hyps, big_refs, smoothing=smoothing, dtype=torch.float64)  # Python ints path
    _assert_close(got_list, oracle.corpus(big_hyps, big_refs, 4, smoothing), what="corpus, list input")


def test_ids_that_collide_under_truncation_are_distinct(device, oracle):
    """n-grams whose IDs agree in the low 32 / 40 bits, or differ only in high bits, must not match."""
    a, b, c, d = 7, 7 + 2**32, 7 + 2**40, 7 + 2**62
    hyp = [a, b, c, d, a, b]
    refs = [[b, a, d, c, 2**63 - 1, a]]
    preds = [_t(hyp, device)]
    target = [[_t(r, device) for r in refs]]
    stats = bleu_stats(preds, target, n_gram=3)
    expected = oracle.nltk_stats(hyp, refs, 3)
    assert stats.matches.tolist() == [expected["matches"]] == [[5, 0, 0]]


def test_many_references_and_empty_reference(device, oracle):
    rng = random.Random(3)
    hyps = [[rng.randint(1, 4) for _ in range(9)] for _ in range(3)]
    refs = [
        [[rng.randint(1, 4) for _ in range(rng.randint(0, 11))] for _ in range(8)],
        [[], [1, 2, 3, 4, 1, 2, 3, 4, 1]],  # an empty reference beside a real one
        [[]],  # only an empty reference
    ]
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    for smoothing in ("none", "add-k", "method0", "method2", "method4", "method7"):
        sent = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
        corp = corpus_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
        _assert_close(
            sent,
            [oracle.sentence(h, rs, 4, smoothing) for h, rs in zip(hyps, refs, strict=True)],
            what=smoothing,
        )
        _assert_close(corp, oracle.corpus(hyps, refs, 4, smoothing), what=smoothing)
    stats = bleu_stats(preds, target)
    for i in range(3):
        exp = oracle.nltk_stats(hyps[i], refs[i], 4)
        assert stats.matches[i].tolist() == exp["matches"]
        assert int(stats.ref_len[i]) == exp["ref_len"]
    assert stats.matches[2].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("smoothing", ALL_METHODS)
def test_corpus_with_a_zero_match_sentence(device, oracle, smoothing):
    hyps = [[1, 2, 3, 4, 5, 6], [8, 8, 8], [2, 3, 4, 5, 1]]
    refs = [[[1, 2, 3, 4, 5, 7]], [[1, 2, 3]], [[2, 3, 4, 5]]]
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    stats = bleu_stats(preds, target, n_gram=counted_orders(4, smoothing))
    assert stats.matches[1].tolist() == [0] * counted_orders(4, smoothing)
    corp = corpus_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    _assert_close(corp, oracle.corpus(hyps, refs, 4, smoothing), what=smoothing)
    sent = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    assert sent[1].item() == 0.0
    _assert_close(
        sent, [oracle.sentence(h, rs, 4, smoothing) for h, rs in zip(hyps, refs, strict=True)], what=smoothing
    )


def test_method6_zero_trigram_precision_returns_zero(device, oracle):
    from nltk.translate.bleu_score import SmoothingFunction
    from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

    raising = ([1, 2, 9, 9, 9], [[1, 2, 3, 4]])  # unigram and bigram matches, no trigram match
    assert oracle.nltk_method6_raises([raising[0]], [raising[1]])
    with pytest.raises(AssertionError):
        nltk_sentence_bleu(raising[1], raising[0], smoothing_function=SmoothingFunction().method6)
    fine = ([1, 2, 3, 4, 5], [[1, 2, 3, 4, 6]])
    hyps, refs = [raising[0], fine[0]], [raising[1], fine[1]]
    for n_gram in (3, 4, 6):
        sent = sentence_bleu(hyps, refs, n_gram=n_gram, smoothing="method6", dtype=torch.float64)
        assert sent[0].item() == 0.0
        assert sent[1].item() > 0.0
        _assert_close(sent[1:], [oracle.nltk_sentence(fine[0], fine[1], n_gram, "method6")])
        # corpus: the trigram precision summed over the corpus is what counts
        assert corpus_bleu([raising[0]], [raising[1]], n_gram=n_gram, smoothing="method6").item() == 0.0
        corp = corpus_bleu(hyps, refs, n_gram=n_gram, smoothing="method6", dtype=torch.float64)
        assert corp.item() > 0.0
        _assert_close(corp, oracle.corpus(hyps, refs, n_gram, "method6"))


def test_method4_single_token_corpus_skips_zero_precisions(device, oracle):
    """NLTK's method4 leaves zero precisions alone when the (corpus) hypothesis length is <= 1, and its final
    sum skips zero precisions: a one-token match scores the brevity penalty alone."""
    hyp, refs = [5], [[5, 6]]
    expected = oracle.nltk_sentence(hyp, refs, 4, "method4")
    assert expected > 0.0
    got = sentence_bleu([_t(hyp, device)], [[_t(refs[0], device)]], smoothing="method4", dtype=torch.float64)
    _assert_close(got, [expected])


@pytest.mark.parametrize("smoothing", NLTK_METHODS)
def test_nltk_auto_reweigh_short_corpus(device, oracle, smoothing):
    hyps, refs = [[1, 2, 3], []], [[[1, 2, 3, 4]], [[7]]]  # corpus length 3 < 4
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    with_rw = corpus_bleu(preds, target, smoothing=smoothing, auto_reweigh=True, dtype=torch.float64)
    _assert_close(with_rw, oracle.corpus(hyps, refs, 4, smoothing, auto_reweigh=True), what="reweigh")
    sent = sentence_bleu(preds, target, smoothing=smoothing, auto_reweigh=True, dtype=torch.float64)
    _assert_close(
        sent,
        [oracle.sentence(h, rs, 4, smoothing, auto_reweigh=True) for h, rs in zip(hyps, refs, strict=True)],
    )
    if smoothing == "method0":  # reweighing over the 3 observed orders rescues the score from 0
        assert with_rw.item() > 0.1
        assert corpus_bleu(preds, target, smoothing=smoothing).item() < 1e-6


@pytest.mark.parametrize("smoothing", NLTK_METHODS)
def test_weight_list_matches_nltk(device, oracle, smoothing):
    hyps, refs = BATCHES["multi"]
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    weights = [(0.25, 0.25, 0.25, 0.25), (0.5, 0.3, 0.1, 0.1), (0.1, 0.2, 0.3, 0.4)]
    sent = sentence_bleu(preds, target, weights=weights, smoothing=smoothing, dtype=torch.float64)
    corp = corpus_bleu(preds, target, weights=weights, smoothing=smoothing, dtype=torch.float64)
    assert sent.shape == (3, len(hyps))
    assert corp.shape == (3,)
    exp_sent = [oracle.sentence(h, rs, 4, smoothing, weights=weights) for h, rs in zip(hyps, refs, strict=True)]
    _assert_close(sent, torch.tensor(exp_sent, dtype=torch.float64).T, what="sentence weights")
    _assert_close(corp, oracle.corpus(hyps, refs, 4, smoothing, weights=weights), what="corpus weights")


def test_method0_zero_precision_with_small_weight_follows_nltk(oracle):
    """NLTK's method0 replaces a zero precision by sys.float_info.min and keeps it in the weighted log-sum,
    so a small weight on a zero-precision order gives exp(w * log(float_min)), not 0 (w=0.01 -> ~8e-4)."""
    hyp, refs = [1, 2, 3, 9, 8], [[1, 2, 3, 4, 5]]  # 4-gram precision 0
    weights = (0.5, 0.3, 0.19, 0.01)
    expected = oracle.nltk_sentence(hyp, refs, 4, "method0", weights=weights)
    assert expected > 1e-4
    got = sentence_bleu([hyp], [refs], weights=weights, smoothing="method0", dtype=torch.float64)
    _assert_close(got, [expected])


@pytest.mark.parametrize(
    ("smoothing", "param", "value"),
    [("method1", "epsilon", 0.3), ("method4", "k", 3), ("method6", "alpha", 2), ("method7", "k", 7)],
)
def test_nltk_smooth_value_sets_the_smoothing_parameter(device, oracle, smoothing, param, value):
    """smooth_value is NLTK's epsilon (method1), k (method4/7) or alpha (method6), as the kernel documents."""
    hyps, refs = BATCHES["multi"]
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    sent = sentence_bleu(preds, target, smoothing=smoothing, smooth_value=value, dtype=torch.float64)
    expected = [
        0.0
        if smoothing == "method6" and oracle.nltk_method6_raises([h], [rs])
        else oracle.nltk_sentence(h, rs, 4, smoothing, smoothing_params={param: value})
        for h, rs in zip(hyps, refs, strict=True)
    ]
    _assert_close(sent, expected, what=f"sentence {smoothing} {param}={value}")
    default = sentence_bleu(preds, target, smoothing=smoothing, dtype=torch.float64)
    assert not torch.allclose(sent, default, rtol=0, atol=1e-9)  # the parameter matters on this batch
    corp = corpus_bleu(preds, target, smoothing=smoothing, smooth_value=value, dtype=torch.float64)
    if smoothing in ("method1", "method4"):
        exp_corp = oracle.nltk_corpus(hyps, refs, 4, smoothing, smoothing_params={param: value})
    else:
        stats = oracle.nltk_corpus_stats(hyps, refs, 5)
        exp_corp = oracle.nltk_formula(stats, 4, smoothing, **{param: value})
    _assert_close(corp, exp_corp, what=f"corpus {smoothing} {param}={value}")


# ----------------------------------------------------------------------------------------------------------
# sufficient statistics
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize("n_gram", N_GRAMS)
def test_bleu_stats_match_nltk_counts(device, pack, oracle, kind, n_gram):
    hyps, refs = BATCHES[kind]
    preds, target = _device_inputs(kind, device, pack)
    stats = bleu_stats(preds, target, n_gram=n_gram, pad_id=PAD)
    assert isinstance(stats, BLEUStats)
    assert stats.n_gram == n_gram
    for field in (stats.matches, stats.totals, stats.clamped_totals, stats.pred_len, stats.ref_len):
        assert field.dtype == torch.int64
        assert field.device.type == device.type
    assert stats.matches.shape == (len(hyps), n_gram)
    assert stats.pred_len.shape == (len(hyps),)
    expected = [oracle.nltk_stats(h, rs, n_gram) for h, rs in zip(hyps, refs, strict=True)]
    for key in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert getattr(stats, key).tolist() == [e[key] for e in expected], key
    total = stats.sum()
    assert total.matches.shape == (n_gram,)
    assert total.pred_len.shape == ()
    assert total.n_gram == n_gram
    summed = oracle.nltk_corpus_stats(hyps, refs, n_gram)
    for key in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert getattr(total, key).tolist() == summed[key], key


@pytest.mark.parametrize(
    ("smoothing", "n_gram", "flag"),
    list(_grid(n_grams=(4,)))
    + [
        pytest.param(s, n, f, id=f"{s}-n{n}-{int(f)}")
        for s in ("method5", "method7")
        for n in (2, 6)
        for f in (False, True)
    ],
)
def test_bleu_from_stats_reproduces_sentence_and_corpus(device, pack, smoothing, n_gram, flag):
    preds, target = _device_inputs("multi", device, pack)
    kwargs = _flag_kwargs(smoothing, flag)
    orders = counted_orders(n_gram, smoothing)
    stats = bleu_stats(preds, target, n_gram=orders, pad_id=PAD)
    sent = sentence_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    corp = corpus_bleu(preds, target, n_gram=n_gram, smoothing=smoothing, pad_id=PAD, dtype=torch.float64, **kwargs)
    from_sent = bleu_from_stats(stats, n_gram=n_gram, smoothing=smoothing, dtype=torch.float64, **kwargs)
    from_corp = bleu_from_stats(stats.sum(), n_gram=n_gram, smoothing=smoothing, dtype=torch.float64, **kwargs)
    assert from_sent.shape == sent.shape
    assert from_corp.shape == ()
    _assert_close(from_sent, sent, what="per-sentence stats")
    _assert_close(from_corp, corp, what="summed stats")
    assert from_sent.device.type == device.type


@pytest.mark.parametrize("n_gram", N_GRAMS)
def test_counted_orders(n_gram):
    assert set(SMOOTHING_METHODS) == set(ALL_METHODS)
    for smoothing in ALL_METHODS:
        expected = max(n_gram, 5) if smoothing in ("method5", "method7") else n_gram
        assert counted_orders(n_gram, smoothing) == expected, smoothing


# ----------------------------------------------------------------------------------------------------------
# property tests (hypothesis)
# ----------------------------------------------------------------------------------------------------------


@st.composite
def token_batches(draw, max_batch: int = 5, max_len: int = 12, max_refs: int = 4):
    """Ragged batches of Python-int token IDs from a small vocabulary (2..6) or a larger one (12, 40), mapped
    either to small IDs or to arbitrary distinct int64 IDs."""
    vocab = draw(st.sampled_from([2, 3, 4, 5, 6, 12, 40]))
    if draw(st.booleans()):
        ids = list(range(vocab))
    else:
        ids = draw(st.lists(st.integers(0, 2**63 - 1), min_size=vocab, max_size=vocab, unique=True))
    token = st.sampled_from(ids)
    seq = st.lists(token, min_size=0, max_size=max_len)
    size = draw(st.integers(1, max_batch))
    hyps = draw(st.lists(seq, min_size=size, max_size=size))
    refs = draw(st.lists(st.lists(seq, min_size=1, max_size=max_refs), min_size=size, max_size=size))
    return hyps, refs


def _smoothing_setups():
    return st.sampled_from(ALL_METHODS).flatmap(
        lambda s: st.tuples(st.just(s), st.integers(3 if s == "method6" else 1, 6), st.booleans())
    )


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(batch=token_batches(), setup=_smoothing_setups())
def test_property_sentence_and_corpus_match_oracles(oracle, batch, setup):
    hyps, refs = batch
    smoothing, n_gram, flag = setup
    kwargs = _flag_kwargs(smoothing, flag)
    sent = sentence_bleu(hyps, refs, n_gram=n_gram, smoothing=smoothing, dtype=torch.float64, **kwargs)
    expected = [oracle.sentence(h, rs, n_gram, smoothing, **kwargs) for h, rs in zip(hyps, refs, strict=True)]
    _assert_close(sent, expected, what=f"sentence {smoothing} n={n_gram} {kwargs}")
    corp = corpus_bleu(hyps, refs, n_gram=n_gram, smoothing=smoothing, dtype=torch.float64, **kwargs)
    _assert_close(
        corp,
        oracle.corpus(hyps, refs, n_gram, smoothing, **kwargs),
        what=f"corpus {smoothing} n={n_gram} {kwargs}",
    )


@settings(max_examples=40, deadline=None)
@given(first=token_batches(), second=token_batches(), n_gram=st.integers(1, 6))
def test_property_stats_of_concatenation(first, second, n_gram):
    joined = bleu_stats(first[0] + second[0], first[1] + second[1], n_gram=n_gram)
    a = bleu_stats(first[0], first[1], n_gram=n_gram)
    b = bleu_stats(second[0], second[1], n_gram=n_gram)
    for key in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert torch.equal(getattr(joined, key), torch.cat([getattr(a, key), getattr(b, key)])), key
        summed = getattr(a.sum(), key) + getattr(b.sum(), key)
        assert torch.equal(getattr(joined.sum(), key), summed), key
        assert torch.equal(getattr(joined.sum(), key), getattr(joined, key).sum(0)), key


@settings(max_examples=40, deadline=None)
@given(batch=token_batches(max_batch=6), n_gram=st.integers(1, 6), data=st.data())
def test_property_stats_permute_with_batch(batch, n_gram, data):
    hyps, refs = batch
    perm = data.draw(st.permutations(range(len(hyps))))
    stats = bleu_stats(hyps, refs, n_gram=n_gram)
    permuted = bleu_stats([hyps[i] for i in perm], [refs[i] for i in perm], n_gram=n_gram)
    index = torch.tensor(perm, dtype=torch.long)
    for key in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert torch.equal(getattr(permuted, key), getattr(stats, key)[index]), key
    # a sentence alone gives its own row
    i = data.draw(st.integers(0, len(hyps) - 1))
    alone = bleu_stats([hyps[i]], [refs[i]], n_gram=n_gram)
    for key in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert torch.equal(getattr(alone, key)[0], getattr(stats, key)[i]), key


@settings(max_examples=40, deadline=None)
@given(batch=token_batches(), setup=_smoothing_setups(), data=st.data())
def test_property_weight_list_equals_stacked_single_calls(oracle, batch, setup, data):
    hyps, refs = batch
    smoothing, n_gram, flag = setup
    kwargs = _flag_kwargs(smoothing, flag)
    weight = st.tuples(*[st.floats(0.05, 1.0) for _ in range(n_gram)])
    weights = data.draw(st.lists(weight, min_size=1, max_size=3))
    if data.draw(st.booleans()):
        weights.append(oracle.uniform_weights(n_gram))
    sent = sentence_bleu(hyps, refs, n_gram=n_gram, weights=weights, smoothing=smoothing, dtype=torch.float64, **kwargs)
    corp = corpus_bleu(hyps, refs, n_gram=n_gram, weights=weights, smoothing=smoothing, dtype=torch.float64, **kwargs)
    assert sent.shape == (len(weights), len(hyps))
    assert corp.shape == (len(weights),)
    singles_s = torch.stack(
        [
            sentence_bleu(hyps, refs, n_gram=n_gram, weights=w, smoothing=smoothing, dtype=torch.float64, **kwargs)
            for w in weights
        ]
    )
    singles_c = torch.stack(
        [
            corpus_bleu(hyps, refs, n_gram=n_gram, weights=w, smoothing=smoothing, dtype=torch.float64, **kwargs)
            for w in weights
        ]
    )
    _assert_close(sent, singles_s, what="sentence list vs stacked")
    _assert_close(corp, singles_c, what="corpus list vs stacked")
    if smoothing in NLTK_METHODS:
        exp_c = oracle.corpus(hyps, refs, n_gram, smoothing, weights=weights, **kwargs)
        _assert_close(corp, exp_c, what=f"corpus weights vs NLTK {smoothing}")


# the kernel's paths: the CPU's compiled engine; and the accelerator's sorted pass, forced on the CPU (no host reads:
# every order in one sort for one reference and short rows, or the orders one by one with tables sized from shapes,
# whole rows sorted; and, kept for side-by-side runs on GPUs, those rows cut to their counted prefix)
_ACCELERATOR = lambda device: False  # noqa: E731
_KERNEL_PATHS = {
    "engine": {},
    "accelerator choices": {"host_reads_are_free": _ACCELERATOR},
    "accelerator, one sort for long rows": {
        "host_reads_are_free": _ACCELERATOR,
        "_ONE_SORT_ROW": 1 << 62,
        "_ONE_SORT_MAX": 1 << 62,
    },
    "accelerator, order by order": {"host_reads_are_free": _ACCELERATOR, "_ONE_SORT_ROW": 0},
    "accelerator, order by order, rows cut": {
        "host_reads_are_free": _ACCELERATOR,
        "_ONE_SORT_ROW": 0,
        "_CUT_ROWS_ANYWHERE": 1,
    },
}


def _force_kernel_path(monkeypatch, path: str) -> None:
    from tensorbleu_metrics.functional import _device, _sorted_pass

    for name, value in _KERNEL_PATHS[path].items():
        monkeypatch.setattr(_device if name == "host_reads_are_free" else _sorted_pass, name, value)


@pytest.mark.parametrize("path", sorted(_KERNEL_PATHS))
@pytest.mark.parametrize("n_refs", [1, 3])
@pytest.mark.parametrize("batch", [4, 64])
def test_every_kernel_path_agrees_with_nltk(oracle, monkeypatch, path: str, batch: int, n_refs: int) -> None:
    """The CPU's engine and each of the accelerator's paths (forced on the CPU) give NLTK's BLEU and GLEU."""
    from nltk.translate.gleu_score import sentence_gleu as nltk_sentence_gleu

    from tensorbleu_metrics.functional import sentence_gleu

    _force_kernel_path(monkeypatch, path)
    rng = random.Random(batch * 10 + n_refs)
    hyps = [[rng.randint(1, 40) for _ in range(rng.randint(150, 260))] for _ in range(batch)]
    refs = [
        [[t if rng.random() < 0.7 else rng.randint(1, 40) for t in h][: rng.randint(100, 260)] for _ in range(n_refs)]
        for h in hyps
    ]
    ours = sentence_bleu(hyps, refs, smoothing="method1", dtype=torch.float64)
    expected = torch.tensor(
        [oracle.nltk_sentence(h, r, 4, "method1") for h, r in zip(hyps, refs, strict=True)], dtype=torch.float64
    )
    assert torch.allclose(ours, expected, atol=1e-12, rtol=0)
    gleu = sentence_gleu(hyps, refs, dtype=torch.float64)
    expected = torch.tensor([nltk_sentence_gleu(r, h) for h, r in zip(hyps, refs, strict=True)], dtype=torch.float64)
    assert torch.allclose(gleu, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_gram", [6, 12])
def test_accelerator_choices_where_no_packing_fits(oracle, monkeypatch, n_gram: int) -> None:
    """Orders whose n-grams do not pack into 63 bits take the order-by-order pass on accelerators too."""
    from tensorbleu_metrics.functional import _sorted_pass

    _force_kernel_path(monkeypatch, "accelerator, one sort for long rows")
    rng = random.Random(n_gram)
    hyps = [[rng.randint(1, 6) for _ in range(rng.randint(100, 200))] for _ in range(5)]
    refs = [[[t if rng.random() < 0.8 else rng.randint(1, 6) for t in h]] for h in hyps]
    width = max(map(len, hyps)) + 1 + max(len(r[0]) for r in refs) + 1
    assert (_sorted_pass._order_shift(width, n_gram) is None) == (n_gram == 12)
    ours = sentence_bleu(hyps, refs, n_gram=n_gram, smoothing="method1", dtype=torch.float64)
    expected = [oracle.nltk_sentence(h, r, n_gram, "method1") for h, r in zip(hyps, refs, strict=True)]
    assert torch.allclose(ours, torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("path", ["accelerator choices", "accelerator, order by order"])
@pytest.mark.parametrize("n_refs", [1, 3])
def test_accelerator_paths_read_nothing_on_the_host(monkeypatch, path: str, n_refs: int) -> None:
    """With ``validate=False`` a padded batch is counted and scored without one host read on either accelerator
    path (so without one synchronisation on a GPU), and gives the scores of the CPU's path; GLEU and ROUGE-N too."""
    from tensorbleu_metrics.functional import _counting, _inputs, rouge_score, sentence_gleu

    gen = torch.Generator().manual_seed(n_refs)
    preds = torch.randint(1, 30, (6, 40), generator=gen)
    preds[:, 30:] = 0
    target = torch.randint(1, 30, (6, n_refs, 35), generator=gen)
    target[:, :, 25:] = 0
    target[:, :, :10] = preds[:, None, :10]
    expected_bleu = sentence_bleu(preds, target, pad_id=0, smoothing="method1", dtype=torch.float64)
    expected_counts = _counting.count_ngrams(_inputs.normalise_inputs(preds, target, 0, None), 4, per_reference=True)
    _force_kernel_path(monkeypatch, path)
    with NoHostReads():
        batch = _inputs.normalise_inputs(preds, target, 0, None, validate=False)
        bleu = sentence_bleu(preds, target, pad_id=0, smoothing="method1", dtype=torch.float64, validate=False)
        corpus_bleu(preds, target, pad_id=0, validate=False)
        counts = _counting.count_ngrams(batch, 4, per_reference=True)  # GLEU's and ROUGE-N's counts
        sentence_gleu(preds, target, pad_id=0, validate=False)
        rouge_score(preds, target, rouge_keys=("rouge1", "rouge4"), sep_id=29, pad_id=0, validate=False)
    assert torch.equal(bleu, expected_bleu)
    assert torch.equal(counts.ref_matches, expected_counts.ref_matches)
    for ours, theirs in zip(counts.stats, expected_counts.stats, strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("n_refs", [1, 4])
def test_sentence_bleu_replays_from_a_cuda_graph(n_refs: int) -> None:
    """With ``validate=False`` a call reads nothing on the host and, its constants once on the device, copies
    nothing from it: it can be captured in a CUDA graph (both kernel paths: one sort for one reference, order by
    order for four) and replayed on new inputs of the same shape, giving the eager call's scores."""
    gen = torch.Generator().manual_seed(n_refs)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        preds = torch.randint(1, 30, (8, 40), generator=gen)
        target = torch.randint(1, 30, (8, n_refs, 35), generator=gen)
        target[:, :, :12] = preds[:, None, :12]
        target[:, :, 30:] = 0
        return preds.cuda(), target.cuda()

    static_preds, static_target = batch()

    def call(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sentence_bleu(preds, target, pad_id=0, smoothing="method1", dtype=torch.float64, validate=False)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            call(static_preds, static_target)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call(static_preds, static_target)
    for _ in range(2):
        preds, target = batch()
        static_preds.copy_(preds)
        static_target.copy_(target)
        graph.replay()
        assert torch.equal(out, call(preds, target))
        expected = sentence_bleu(preds.cpu(), target.cpu(), pad_id=0, smoothing="method1", dtype=torch.float64)
        assert torch.allclose(out.cpu(), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("path", sorted(_KERNEL_PATHS))
def test_the_largest_int64_id_on_every_kernel_path(oracle, monkeypatch, path: str) -> None:
    """2**63 - 1 is a token like any other (no key is shifted past it), alone and beside small IDs."""
    _force_kernel_path(monkeypatch, path)
    top = 2**63 - 1
    hyps = [[top], [top, 5, top], [5, top, top, 5]]
    refs = [[[top]], [[5, top, top]], [[top, top, 5], [5, 5]]]
    got = sentence_bleu(hyps, refs, n_gram=2, smoothing="method1", dtype=torch.float64)
    _assert_close(got, [oracle.sentence(h, rs, 2, "method1") for h, rs in zip(hyps, refs, strict=True)])
    assert bleu_stats(hyps, refs, n_gram=2).matches.tolist() == [
        oracle.nltk_stats(h, rs, 2)["matches"] for h, rs in zip(hyps, refs, strict=True)
    ]


def test_inference_mode_gives_the_same_numbers() -> None:
    """The CPU's engine takes tensors as NumPy arrays and hands its counts back: inference tensors are no
    exception."""
    from tensorbleu_metrics.functional import distinct_ngrams, rouge_score, self_bleu

    gen = torch.Generator().manual_seed(5)
    preds, target = torch.randint(1, 30, (6, 14), generator=gen), torch.randint(1, 30, (6, 2, 11), generator=gen)
    calls = [
        lambda: sentence_bleu(preds, target, smoothing="method1"),
        lambda: self_bleu(preds),
        lambda: distinct_ngrams(preds, n_gram=2),
        lambda: rouge_score(preds, target)["rougeL_fmeasure"],
    ]
    eager = [call() for call in calls]
    with torch.inference_mode():
        inferred = [call() for call in calls]
    for a, b in zip(eager, inferred, strict=True):
        assert torch.equal(a, b)


def test_results_are_normal_tensors_that_take_updates_and_gradients() -> None:
    """The work runs in inference mode; what comes back is normal: it can be updated in place (a reward
    normalised) and multiply tensors that need gradients."""
    from tensorbleu_metrics.functional import (
        bleu_from_stats,
        corpus_gleu,
        distinct_ngrams,
        gleu_stats,
        rouge_score,
        self_bleu,
    )

    gen = torch.Generator().manual_seed(9)
    preds, target = torch.randint(1, 20, (5, 12), generator=gen), torch.randint(1, 20, (5, 2, 10), generator=gen)
    stats = bleu_stats(preds, target)
    results = [
        sentence_bleu(preds, target),
        corpus_bleu(preds, target),
        bleu_from_stats(stats),
        corpus_gleu(preds, target),
        self_bleu(preds),
        distinct_ngrams(preds, n_gram=2),
        *stats,
        *gleu_stats(preds, target),
        *rouge_score(preds, target).values(),
    ]
    for result in results:
        assert not result.is_inference()
    reward = sentence_bleu(preds, target)
    reward.sub_(reward.mean())  # in place, as a reward baseline does
    logits = torch.zeros(5, requires_grad=True)
    (reward * logits).sum().backward()
    assert torch.equal(logits.grad, reward)
    with torch.inference_mode():  # inside the caller's own inference mode, its tensors
        assert sentence_bleu(preds, target).is_inference()


# the kinds of torch operation of a CPU `sentence_bleu` call on a (B, L) batch: 26 when this bound was set (44 before
# the CPU's counts moved to the compiled engine, 50 before the value checks moved to numpy)
_CPU_KINDS_BOUND = 26


def test_cpu_call_uses_few_kinds_of_operation():
    # a regression guard for the cold cost of a call (benchmarks/README.md: what a cold call is made of): a change
    # that needs more kinds should say so here, with what it buys
    gen = torch.Generator().manual_seed(0)
    preds = torch.randint(1, 300, (64, 128), generator=gen)
    target = torch.cat([preds[:, :100], torch.randint(1, 300, (64, 20), generator=gen)], dim=1)
    target[::3, -7:] = 0
    sentence_bleu(preds, target, pad_id=0)
    with OperationKinds() as seen:
        sentence_bleu(preds, target, pad_id=0)
    assert len(seen.kinds) <= _CPU_KINDS_BOUND, sorted(seen.kinds)


# the operations (views left out) of a `sentence_bleu(..., validate=False)` call on the accelerator's paths, forced
# on the CPU: on a GPU each is at least one kernel launch, and launches set a call's time there (README, GPU
# section). The counts when these bounds were set, whatever the batch's size: a change that needs more should say so
# here, with what it buys
_ACCELERATOR_OPERATIONS_BOUND = {
    ("accelerator, order by order", 1): 148,
    ("accelerator, order by order", 4): 160,
    ("accelerator, one sort for long rows", 1): 103,
}


@pytest.mark.parametrize(("path", "n_refs"), sorted(_ACCELERATOR_OPERATIONS_BOUND))
def test_accelerator_call_launches_few_operations(monkeypatch, path: str, n_refs: int) -> None:
    gen = torch.Generator().manual_seed(n_refs)
    preds = torch.randint(1, 300, (8, 64), generator=gen)
    preds[::2, 50:] = 0
    target = torch.randint(1, 300, (8, n_refs, 60), generator=gen)
    target[:, :, :40] = preds[:, None, :40]
    target[1::2, :, 45:] = 0
    if n_refs == 1:
        target = target[:, 0]  # (B, L): one reference each, every one present
    _force_kernel_path(monkeypatch, path)
    sentence_bleu(preds, target, pad_id=0, validate=False)
    with OperationKinds() as seen:
        sentence_bleu(preds, target, pad_id=0, validate=False)
    assert seen.count <= _ACCELERATOR_OPERATIONS_BOUND[path, n_refs], seen.count
