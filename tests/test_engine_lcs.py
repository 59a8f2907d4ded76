"""The compiled LCS kernels (ROUGE-L lengths, ROUGE-Lsum union hits) against the torch recurrence and rouge-score."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score.rouge_scorer import _lcs_table, _summary_level_lcs

from tensorbleu_metrics.functional import _lcs
from tensorbleu_metrics.functional._engine import lcs as engine
from tensorbleu_metrics.functional._engine import set_cpu_threads

# today's functions, the reference here, run the accelerator's sorted path (the engine serves them on the CPU)
pytestmark = pytest.mark.usefixtures("accelerator_path_in_module")


SEP = 1  # the sentence separator; tokens are >= 2


def pack(preds: list[list[int]], refs: list[list[list[int]]]):
    """``(B, L)``, ``(B,)``, ``(B, R, L')``, ``(B, R)`` int64 arrays (absent references: length 0)."""
    n_refs = max((len(rs) for rs in refs), default=0)
    width_p = max(map(len, preds), default=0) + 1
    width_r = max((len(r) for rs in refs for r in rs), default=0) + 1
    p = np.zeros((len(preds), width_p), dtype=np.int64)
    t = np.zeros((len(preds), n_refs, width_r), dtype=np.int64)
    ref_len = np.zeros((len(preds), n_refs), dtype=np.int64)
    for i, (x, rs) in enumerate(zip(preds, refs, strict=True)):
        p[i, : len(x)] = x
        for j, r in enumerate(rs):
            t[i, j, : len(r)] = r
            ref_len[i, j] = len(r)
    return p, np.array([len(x) for x in preds], dtype=np.int64), t, ref_len


def today(fn, *arrays, **kwargs):
    """The torch recurrence of ``_lcs`` on the same arrays, as numpy (zeros of the right shapes for no rows, which
    it does not take)."""
    if arrays[0].shape[0] == 0:
        shape = arrays[3].shape
        zeros = np.zeros(shape, dtype=np.int64)
        return zeros if fn is _lcs.lcs_length else (zeros, np.zeros(0, dtype=np.int64), zeros)
    out = fn(*(torch.from_numpy(a) for a in arrays), **kwargs)
    return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()


def sentences(seq: list[int]) -> list[list[int]]:
    out: list[list[int]] = [[]]
    for tok in seq:
        out.append([]) if tok == SEP else out[-1].append(tok)
    return out


def check_lengths(preds, refs) -> None:
    arrays = pack(preds, refs)
    got = engine.lcs_lengths(*arrays)
    assert got.dtype == np.int64 and got.shape == arrays[3].shape
    np.testing.assert_array_equal(got, today(_lcs.lcs_length, *arrays))
    for i, (x, rs) in enumerate(zip(preds, refs, strict=True)):
        for j, r in enumerate(rs):
            assert got[i, j] == (_lcs_table(r, x)[-1][-1] if r and x else 0)


def check_hits(preds, refs, against_today: bool = True) -> None:
    arrays = pack(preds, refs)
    hits, pred_total, ref_total = engine.union_lcs_hits(*arrays, SEP)
    if against_today:
        expected = today(_lcs.union_lcs_hits, *arrays, sep_id=SEP)
        for got, want in zip((hits, pred_total, ref_total), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    for i, (x, rs) in enumerate(zip(preds, refs, strict=True)):
        n = sum(tok != SEP for tok in x)
        assert pred_total[i] == n
        for j, r in enumerate(rs):
            m = sum(tok != SEP for tok in r)
            assert ref_total[i, j] == m
            expected = _summary_level_lcs(sentences(r), sentences(x))
            h = int(hits[i, j])
            assert abs((h / m if m and n else 0.0) - expected.recall) < 1e-12
            assert abs((h / n if m and n else 0.0) - expected.precision) < 1e-12


@st.composite
def batches(draw, sep: bool):
    vocab = draw(st.sampled_from([3, 6, 1000, 10**6]))
    max_len = draw(st.sampled_from([8, 70, 140]))
    seq = st.lists(
        st.one_of(st.integers(2, vocab), st.just(SEP)) if sep else st.integers(2, vocab),
        max_size=max_len,
    )
    n_refs = draw(st.integers(1, 3))
    rows = draw(st.integers(0, 4))
    preds = [draw(seq) for _ in range(rows)]
    # an absent reference is an empty one
    refs = [[draw(st.one_of(st.just([]), seq)) for _ in range(n_refs)] for _ in range(rows)]
    return preds, refs


@settings(max_examples=60, deadline=None)
@given(batch=batches(sep=False))
def test_lengths_equal_the_recurrence_and_the_table(batch) -> None:
    check_lengths(*batch)


@settings(max_examples=60, deadline=None)
@given(batch=batches(sep=True))
def test_hits_equal_the_recurrence_and_rouge_score(batch) -> None:
    check_hits(*batch)


@settings(max_examples=20, deadline=None)
@given(lengths=batches(sep=False), hits=batches(sep=True))
def test_two_threads_equal_one(lengths, hits) -> None:
    one = engine.lcs_lengths(*pack(*lengths)), engine.union_lcs_hits(*pack(*hits), SEP)
    set_cpu_threads(2)
    try:
        two = engine.lcs_lengths(*pack(*lengths)), engine.union_lcs_hits(*pack(*hits), SEP)
    finally:
        set_cpu_threads(1)
    np.testing.assert_array_equal(one[0], two[0])
    for a, b in zip(one[1], two[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_long_rows_every_word_group() -> None:
    """Vectors of 1-9 words (every group of 4, 2 and 1 word, with carries between groups), either side longer."""
    rng = random.Random(3)
    lengths = [1, 63, 64, 65, 128, 129, 191, 256, 257, 320, 520]
    preds, refs = [], []
    for a in lengths:
        for vocab in (4, 300):
            preds.append([rng.randint(2, vocab) for _ in range(a)])
            refs.append([[rng.randint(2, vocab) for _ in range(rng.choice(lengths))] for _ in range(2)])
    arrays = pack(preds, refs)
    np.testing.assert_array_equal(engine.lcs_lengths(*arrays), today(_lcs.lcs_length, *arrays))


def test_empty_batches_and_references() -> None:
    none = np.zeros((0, 5), np.int64), np.zeros(0, np.int64), np.zeros((0, 2, 5), np.int64), np.zeros((0, 2), np.int64)
    lengths = engine.lcs_lengths(*none)
    assert lengths.shape == (0, 2) and lengths.dtype == np.int64
    hits, pred_total, ref_total = engine.union_lcs_hits(*none, SEP)
    assert hits.shape == (0, 2) and pred_total.shape == (0,) and ref_total.shape == (0, 2)
    preds, pred_len = np.array([[2, SEP, 3], [4, 5, 0]]), np.array([3, 2])
    no_refs, no_len = np.zeros((2, 0, 4), np.int64), np.zeros((2, 0), np.int64)
    assert engine.lcs_lengths(preds, pred_len, no_refs, no_len).shape == (2, 0)
    hits, pred_total, ref_total = engine.union_lcs_hits(preds, pred_len, no_refs, no_len, SEP)
    assert hits.shape == (2, 0) and ref_total.shape == (2, 0) and pred_total.tolist() == [2, 2]
    check_lengths([[], [2, 3], []], [[[2]], [[], []], [[]]])
    check_hits([[], [2, 3], [SEP, SEP]], [[[2]], [[], [SEP, 2, 3]], [[SEP]]])


def test_separators_at_the_ends_and_in_runs() -> None:
    check_hits(
        [[SEP, 2, 3, SEP, SEP, 4, 2, SEP], [2, 3, 4, 5], [SEP, SEP, SEP]],
        [[[SEP, SEP, 3, 2, SEP, 4], [2, 3, 4, 2, SEP]], [[SEP, 5, 4, SEP, 3, 2, SEP], [2]], [[SEP, 2]]],
    )


def test_many_sentences_and_long_sentences() -> None:
    """Over 64 candidate sentences (several per group), and sentences of several words with the sentence pair's
    vectors kept a few blocks of steps at a time."""
    rng = random.Random(5)
    preds = [[SEP if rng.random() < 0.35 else rng.randint(2, 6) for _ in range(400)]]
    refs = [[[SEP if rng.random() < 0.3 else rng.randint(2, 6) for _ in range(300)]]]
    long_p = [[SEP if rng.random() < 0.004 else rng.randint(2, 5) for _ in range(300)] for _ in range(2)]
    long_r = [[[SEP if rng.random() < 0.004 else rng.randint(2, 5) for _ in range(n)]] for n in (140, 270)]
    check_hits(preds + long_p, refs + long_r)


def test_blocks_of_kept_vectors(monkeypatch) -> None:
    rng = random.Random(8)
    preds = [[rng.randint(2, 4) for _ in range(n)] + [SEP, 2, 3] for n in (90, 200, 1)]
    refs = [
        [[rng.randint(2, 4) for _ in range(n)], [3, SEP] + [rng.randint(2, 4) for _ in range(n)]] for n in (70, 150, 3)
    ]
    arrays = pack(preds, refs)
    whole = engine.union_lcs_hits(*arrays, SEP)
    monkeypatch.setattr(engine, "_HISTORY_WORDS", 8)  # about sqrt(len) steps a block
    in_blocks = engine.union_lcs_hits(*arrays, SEP)
    for a, b in zip(whole, in_blocks, strict=True):
        np.testing.assert_array_equal(a, b)
    check_hits(preds, refs, against_today=False)


def test_a_long_row() -> None:
    """1 x 20000: one long sentence (the reference a subsequence of the candidate) and sentences of 32 tokens."""
    rng = np.random.default_rng(0)
    preds = rng.integers(2, 50, (1, 20000))
    keep = np.sort(rng.choice(20000, 15000, replace=False))
    refs = np.zeros((1, 2, 20000), np.int64)
    refs[0, 0, :15000] = preds[0, keep]
    refs[0, 1] = rng.integers(2, 50, 20000)
    pred_len, ref_len = np.array([20000]), np.array([[15000, 20000]])
    lengths = engine.lcs_lengths(preds, pred_len, refs, ref_len)
    assert lengths[0, 0] == 15000 and 0 < lengths[0, 1] < 20000
    assert lengths[0, 1] == engine.lcs_lengths(refs[:, 1], ref_len[:, 1], preds[:, None], pred_len[:, None])[0, 0]
    hits, pred_total, ref_total = engine.union_lcs_hits(preds, pred_len, refs, ref_len, SEP)
    assert hits[0, 0] == 15000 and pred_total[0] == 20000 and ref_total.tolist() == [[15000, 20000]]
    split_p, split_r = preds.copy(), refs.copy()
    split_p[:, 31::32] = SEP
    split_r[:, :, 31::32] = SEP
    split_r[0, 0, 15000:] = 0
    a, b = split_p[:, :2000], split_r[:, :, :2000]
    short = engine.union_lcs_hits(a, np.array([2000]), b, np.array([[2000, 2000]]), SEP)
    expected = today(_lcs.union_lcs_hits, a, np.array([2000]), b, np.array([[2000, 2000]]), sep_id=SEP)
    for got, want in zip(short, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    hits, pred_total, ref_total = engine.union_lcs_hits(split_p, pred_len, split_r, ref_len, SEP)
    assert pred_total[0] == 20000 - 625 and 0 < hits[0, 0] <= ref_total[0, 0] and 0 < hits[0, 1] <= pred_total[0]


@pytest.mark.parametrize("shift", [2**40, -(2**50), 1 << 22])
def test_huge_and_negative_tokens(shift: int) -> None:
    """Token values a direct map cannot hold are renumbered (the separator with them)."""
    rng = random.Random(9)
    preds = [[SEP if rng.random() < 0.2 else rng.randint(2, 5) for _ in range(40)] for _ in range(3)]
    refs = [[[SEP if rng.random() < 0.2 else rng.randint(2, 5) for _ in range(35)] for _ in range(2)] for _ in range(3)]
    p, pl, t, tl = pack(preds, refs)
    p_far, t_far = np.where(p == 0, 0, p + shift), np.where(t == 0, 0, t + shift)
    np.testing.assert_array_equal(engine.lcs_lengths(p_far, pl, t_far, tl), engine.lcs_lengths(p, pl, t, tl))
    near = engine.union_lcs_hits(p, pl, t, tl, SEP)
    far = engine.union_lcs_hits(p_far, pl, t_far, tl, SEP + shift)
    for a, b in zip(near, far, strict=True):
        np.testing.assert_array_equal(a, b)
