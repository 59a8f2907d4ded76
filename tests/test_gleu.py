"""GLEU on token IDs against NLTK's ``sentence_gleu``/``corpus_gleu`` (called here): the functions, and the options
of the Metric (whose shared checks run in ``tests/test_metric_common.py``).

Tolerances: float64 within 1e-12 of NLTK; float32 within 1e-6.
"""

from __future__ import annotations

import random

import pytest
import torch
from corpus_utils import make_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu
from nltk.translate.gleu_score import sentence_gleu as nltk_sentence_gleu

from tensorbleu_metrics import TokenIDGLEU
from tensorbleu_metrics.functional import GLEUStats, corpus_gleu, gleu_from_stats, gleu_stats, sentence_gleu

PAD = 0
ATOL64 = 1e-12
ATOL32 = 1e-6
F64 = torch.float64
ORDERS = [(lo, hi) for lo in range(1, 7) for hi in range(lo, 7)]


def nltk_sentences(preds, refs, min_len=1, max_len=4) -> list[float]:
    return [nltk_sentence_gleu(r, p, min_len, max_len) for p, r in zip(preds, refs, strict=True)]


def nltk_corpus(preds, refs, min_len=1, max_len=4) -> float:
    return nltk_corpus_gleu(refs, preds, min_len, max_len)


def _close(got: torch.Tensor, expected, atol: float = ATOL64) -> None:
    torch.testing.assert_close(got.cpu().to(F64), torch.tensor(expected, dtype=F64), rtol=0, atol=atol)


def _forms(preds, refs, device):
    """Every input form of the same batch: padded (B, R, L') with absent rows, ragged lists, ragged tensors."""
    n_refs = max(map(len, refs))
    width = max(len(x) for r in refs for x in r)
    target = torch.full((len(refs), n_refs, width + 1), PAD, dtype=torch.int64)
    for i, rs in enumerate(refs):
        for j, r in enumerate(rs):
            target[i, j, : len(r)] = torch.tensor(r)
    pred_t = torch.full((len(preds), max(map(len, preds)) + 2), PAD, dtype=torch.int64)
    for i, p in enumerate(preds):
        pred_t[i, : len(p)] = torch.tensor(p, dtype=torch.int64)
    yield "padded", pred_t.to(device), target.to(device)
    yield "lists", preds, refs
    yield (
        "tensors",
        [torch.tensor(p, dtype=torch.int64, device=device) for p in preds],
        [[torch.tensor(x, dtype=torch.int64, device=device) for x in r] for r in refs],
    )


CORPUS = make_corpus(seed=5, n=40, max_refs=4, vocab=6, max_len=14)


# ------------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize(("min_len", "max_len"), ORDERS, ids=[f"{a}-{b}" for a, b in ORDERS])
def test_sentence_and_corpus_equal_nltk(device, min_len, max_len):
    preds, refs = CORPUS
    expected_sentences = nltk_sentences(preds, refs, min_len, max_len)
    expected_corpus = nltk_corpus(preds, refs, min_len, max_len)
    for name, p, r in _forms(preds, refs, device):
        got = sentence_gleu(p, r, min_len=min_len, max_len=max_len, pad_id=PAD, dtype=F64)
        assert got.device.type == (device.type if name != "lists" else "cpu"), name
        _close(got, expected_sentences)
        _close(corpus_gleu(p, r, min_len=min_len, max_len=max_len, pad_id=PAD, dtype=F64), expected_corpus)


def test_ties_keep_the_first_best_reference(device):
    # refs A (tp/n_all = 1/2) and B (2/4) tie: NLTK keeps the first, which changes the corpus sums
    hyp, other = [1, 2], [5, 6, 7, 8]
    ref_a, ref_b = [1, 9], [1, 2, 9, 9]
    pairs = [(hyp, [ref_a, ref_b]), (hyp, [ref_b, ref_a]), (other, [other])]
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    for max_len in (1, 2):
        for _name, p, r in _forms(preds, refs, device):
            _close(sentence_gleu(p, r, max_len=max_len, pad_id=PAD, dtype=F64), nltk_sentences(preds, refs, 1, max_len))
            for subset in ([0, 2], [1, 2], [0, 1, 2]):
                sub_p = p[subset] if isinstance(p, torch.Tensor) else [p[i] for i in subset]
                sub_r = r[subset] if isinstance(r, torch.Tensor) else [r[i] for i in subset]
                expected = nltk_corpus([preds[i] for i in subset], [refs[i] for i in subset], 1, max_len)
                _close(corpus_gleu(sub_p, sub_r, max_len=max_len, pad_id=PAD, dtype=F64), expected)


def test_first_reference_on_tie_changes_the_corpus():
    # unigrams: A gives (1, 2), B gives (2, 4); the corpus with a third pair (3, 3) differs by which one is kept
    preds = [[1, 2], [3, 4, 5]]
    first_a = [[[1, 9], [1, 2, 9, 9]], [[3, 4, 5]]]
    first_b = [[[1, 2, 9, 9], [1, 9]], [[3, 4, 5]]]
    got_a = corpus_gleu(preds, first_a, max_len=1, dtype=F64).item()
    got_b = corpus_gleu(preds, first_b, max_len=1, dtype=F64).item()
    assert got_a == pytest.approx(4 / 5, abs=ATOL64) and got_b == pytest.approx(5 / 7, abs=ATOL64)
    assert got_a == pytest.approx(nltk_corpus(preds, first_a, 1, 1), abs=ATOL64)
    assert got_b == pytest.approx(nltk_corpus(preds, first_b, 1, 1), abs=ATOL64)


def test_empty_hypotheses_and_references(device):
    # empty hypotheses, empty references (skipped when n_all == 0), references shorter than min_len
    preds = [[], [1, 2, 3], [], [4], [1, 2, 3, 4]]
    refs = [[[1, 2]], [[], [1, 2]], [[]], [[], [4]], [[1], [9, 9, 9, 9]]]
    for min_len, max_len in ((1, 4), (2, 3), (3, 6)):
        p = [torch.tensor(x, dtype=torch.int64, device=device) for x in preds]
        r = [[torch.tensor(x, dtype=torch.int64, device=device) for x in rs] for rs in refs]
        for pp, rr in ((preds, refs), (p, r)):
            _close(
                sentence_gleu(pp, rr, min_len=min_len, max_len=max_len, dtype=F64),
                nltk_sentences(preds, refs, min_len, max_len),
            )
            _close(
                corpus_gleu(pp, rr, min_len=min_len, max_len=max_len, dtype=F64),
                nltk_corpus(preds, refs, min_len, max_len),
            )
    # a corpus without any n-gram scores 0, as NLTK
    assert corpus_gleu([[], [1]], [[[]], [[]]], min_len=2).item() == 0.0 == nltk_corpus([[], [1]], [[[]], [[]]], 2, 4)


@pytest.mark.parametrize(("min_len", "max_len"), [(1, 4), (2, 6), (1, 1)])
def test_one_reference_each(device, min_len, max_len):
    # a (B, L') target: one reference per hypothesis (the kernel's single-reference reduction)
    preds, refs = CORPUS
    single = [r[:1] for r in refs]
    target = torch.full((len(preds), max(len(r[0]) for r in refs)), PAD, dtype=torch.int64)
    for i, r in enumerate(single):
        target[i, : len(r[0])] = torch.tensor(r[0])
    got = sentence_gleu(preds, target.to(device), min_len=min_len, max_len=max_len, pad_id=PAD, dtype=F64)
    _close(got, nltk_sentences(preds, single, min_len, max_len))
    _close(
        gleu_stats(preds, single, min_len=min_len, max_len=max_len).matches,
        gleu_stats(preds, [[r[0], r[0]] for r in single], min_len=min_len, max_len=max_len).matches.to(F64).tolist(),
    )


def test_pad_and_eos(device):
    preds = torch.tensor([[3, 4, 2, 5, 5], [7, 3, 4, 0, 0]], device=device)
    target = torch.tensor([[[3, 0, 4, 2, 9]], [[7, 3, 2, 4, 4]]], device=device)
    got = sentence_gleu(preds, target, pad_id=0, eos_id=2, dtype=F64)
    _close(got, nltk_sentences([[3, 4], [7, 3, 4]], [[[3, 4]], [[7, 3]]]))


def test_stats_and_from_stats():
    preds, refs = CORPUS
    stats = gleu_stats(preds, refs, min_len=2, max_len=3)
    assert stats.matches.dtype == stats.n_all.dtype == torch.int64 and stats.matches.shape == (len(preds),)
    _close(gleu_from_stats(stats, dtype=F64), nltk_sentences(preds, refs, 2, 3))
    _close(gleu_from_stats(stats.sum(), dtype=F64), nltk_corpus(preds, refs, 2, 3))
    assert gleu_from_stats(GLEUStats(torch.tensor(0), torch.tensor(0))).item() == 0.0


def test_float32_default_and_large_batch():
    rng = random.Random(3)
    preds = [[rng.randint(1, 50) for _ in range(rng.randint(0, 40))] for _ in range(200)]
    refs = [[[t if rng.random() < 0.7 else rng.randint(1, 50) for t in p] + [1] for _ in range(2)] for p in preds]
    got = sentence_gleu(preds, refs)
    assert got.dtype == torch.float32
    _close(got, nltk_sentences(preds, refs), atol=ATOL32)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.lists(st.integers(1, 4), max_size=9),
            st.lists(st.lists(st.integers(1, 4), max_size=9), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
    orders=st.sampled_from(ORDERS),
)
def test_property_equals_nltk(data, orders):
    preds, refs = [p for p, _ in data], [r for _, r in data]
    min_len, max_len = orders
    _close(
        sentence_gleu(preds, refs, min_len=min_len, max_len=max_len, dtype=F64), nltk_sentences(preds, refs, *orders)
    )
    _close(corpus_gleu(preds, refs, min_len=min_len, max_len=max_len, dtype=F64), nltk_corpus(preds, refs, *orders))


# ------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_len": 0}, ValueError, "min_len"),
        ({"min_len": 3, "max_len": 2}, ValueError, "max_len"),
        ({"max_len": 2.0}, TypeError, "max_len"),
        ({"min_len": True}, TypeError, "min_len"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
        ({"pad_id": "0"}, TypeError, "pad_id"),
    ],
)
def test_invalid_options(kwargs, error, match):
    for fn in (sentence_gleu, corpus_gleu):
        with pytest.raises(error, match=match):
            fn([[1, 2]], [[[1, 2]]], **kwargs)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="no reference"):
        sentence_gleu([[1, 2]], [[]])
    with pytest.raises(TypeError, match="preds"):
        sentence_gleu(torch.tensor([[1.0]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="must match"):
        corpus_gleu(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2]]))


# ------------------------------------------------------------------------------------------------- Metric
# The checks every Metric shares run over TokenIDGLEU's spec in tests/test_metric_common.py and test_metric_ddp.py.
@pytest.mark.parametrize(("kwargs", "error"), [({"min_len": 0}, ValueError), ({"max_len": 0}, ValueError)])
def test_metric_invalid_options(kwargs, error):
    with pytest.raises(error):
        TokenIDGLEU(**kwargs)


def test_metric_identical_sentence_scores_one():
    corpus, sentences = TokenIDGLEU(return_sentence_level_score=True)([[1, 2, 3]], [[[1, 2, 3]]])
    assert corpus.item() == 1.0 and sentences.tolist() == [1.0]
