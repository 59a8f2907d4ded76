"""The compiled candidate-against-references n-gram kernel against today's torch counting, NLTK and a plain
Counter-based transcription of the definition."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import modified_precision

from tensorbleu_metrics.functional._counting import count_ngrams
from tensorbleu_metrics.functional._engine import set_cpu_threads
from tensorbleu_metrics.functional._engine.ngrams import count_pairs
from tensorbleu_metrics.functional._inputs import TokenBatch

# today's functions, the reference here, run the accelerator's sorted path (the engine serves them on the CPU)
pytestmark = pytest.mark.usefixtures("accelerator_path_in_module")


# token pools: a few small IDs (many repeats, high orders match; the direct map), a large vocabulary and huge values
# (the token table); the torch counting takes negative IDs for no token, so they are checked against _definition only
POOLS = {
    "small": np.arange(3),
    "large": np.arange(1_000_000),
    "huge": np.array([0, 7, 2**31, 2**40, 2**62, 2**63 - 1]),
}
# values whose hash (value * _HASH mod 2**64) is -2, -1, 0, 1, ... : all in the token table's last and first slots,
# whatever its size, so that they collide and their probes wrap around the end of the table
_HASH_INVERSE = pow(11400714819323198485, -1, 2**64)
COLLIDING = np.array([(h % 2**64) * _HASH_INVERSE % 2**64 for h in range(-2, 6)], dtype=np.uint64).view(np.int64)
GARBAGE = np.array([-(2**63), -100, -1, 0, 2**63 - 1])


def _batch(seed: int, n_sent: int, n_refs: int, width: int, ref_width: int, pool: str) -> tuple[np.ndarray, ...]:
    """Ragged candidates and references (some empty, some absent) with garbage past their lengths; references
    often copy part of their candidate, so that high orders match."""
    rng = np.random.default_rng(seed)
    values = POOLS[pool]
    preds = values[rng.integers(0, values.size, (n_sent, width))]
    refs = values[rng.integers(0, values.size, (n_sent, n_refs, ref_width))]
    if width and ref_width:
        # a shifted copy of the candidate with a few tokens replaced
        shift = rng.integers(0, width, (n_sent, n_refs))
        columns = (np.arange(ref_width) + shift[..., None]) % width
        copied = np.take_along_axis(preds[:, None, :].repeat(n_refs, 1), columns, axis=2)
        refs = np.where(rng.random(refs.shape) < 0.8, copied, refs)
    pred_len = rng.integers(0, width + 1, n_sent)
    ref_len = rng.integers(0, ref_width + 1, (n_sent, n_refs))
    ref_len[rng.random((n_sent, n_refs)) < 0.2] = 0  # absent references
    preds = np.where(np.arange(width) < pred_len[:, None], preds, rng.choice(GARBAGE, preds.shape))
    refs = np.where(np.arange(ref_width) < ref_len[..., None], refs, rng.choice(GARBAGE, refs.shape))
    return preds, pred_len, refs, ref_len


def _torch(preds, pred_len, refs, ref_len, n_gram, per_reference):
    batch = TokenBatch(*(torch.from_numpy(a) for a in (preds, pred_len, refs, ref_len)), torch.from_numpy(ref_len > 0))
    counts = count_ngrams(batch, n_gram, per_reference=per_reference)
    return counts.stats.matches.numpy(), None if counts.ref_matches is None else counts.ref_matches.numpy()


def _ngrams(tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _definition(preds, pred_len, refs, ref_len, n_gram) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs of count_pairs straight from their definition, with Counters."""
    n_sent, n_refs = refs.shape[:2]
    matches = np.zeros((n_sent, n_gram), dtype=np.int64)
    ref_matches = np.zeros((n_sent, n_refs, n_gram), dtype=np.int64)
    for b in range(n_sent):
        cand = preds[b, : pred_len[b]].tolist()
        for n in range(1, n_gram + 1):
            c = _ngrams(cand, n)
            per_ref = [_ngrams(refs[b, k, : ref_len[b, k]].tolist(), n) for k in range(n_refs)]
            matches[b, n - 1] = sum(min(v, max((r[g] for r in per_ref), default=0)) for g, v in c.items())
            for k, r in enumerate(per_ref):
                ref_matches[b, k, n - 1] = sum(min(v, r[g]) for g, v in c.items())
    return matches, ref_matches


def _check(preds, pred_len, refs, ref_len, n_gram):
    for per_reference in (False, True):
        matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, n_gram, per_reference)
        expected, expected_refs = _torch(preds, pred_len, refs, ref_len, n_gram, per_reference)
        np.testing.assert_array_equal(matches, expected)
        assert matches.dtype == np.int64 and matches.shape == (preds.shape[0], n_gram)
        if per_reference:
            np.testing.assert_array_equal(ref_matches, expected_refs)
            assert ref_matches.dtype == np.int64
        else:
            assert ref_matches is None


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sent=st.integers(1, 6),
    n_refs=st.integers(1, 4),
    width=st.integers(0, 24),
    ref_width=st.integers(0, 24),
    pool=st.sampled_from(sorted(POOLS)),
    n_gram=st.integers(1, 6),
)
def test_equals_torch_counting(seed, n_sent, n_refs, width, ref_width, pool, n_gram):
    _check(*_batch(seed, n_sent, n_refs, width, ref_width, pool), n_gram)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_refs=st.integers(1, 5),
    width=st.integers(20, 80),
    vocab=st.integers(1, 4),
    n_gram=st.integers(2, 8),
)
def test_prefixes_with_several_continuations(seed, n_refs, width, vocab, n_gram):
    """Long rows over a few tokens: most prefixes go on with several different tokens (the kernel's table path),
    and high orders still match."""
    preds, pred_len, refs, ref_len = _batch(seed, 3, n_refs, width, width, "small")
    preds, refs = preds % vocab, refs % vocab
    matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, n_gram, True)
    expected, expected_refs = _definition(preds, pred_len, refs, ref_len, n_gram)
    np.testing.assert_array_equal(matches, expected)
    np.testing.assert_array_equal(ref_matches, expected_refs)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_refs=st.integers(1, 4),
    vocab=st.integers(1, 5),
    n_gram=st.integers(1, 10),
    group=st.integers(1, 4),
)
def test_groups_of_orders(seed, n_refs, vocab, n_gram, group):
    """Orders counted in groups of any size (a huge candidate gets groups of one; more than four orders chain groups
    through the ids of each group's last order) give the same counts, and leave the count planes cleared."""
    from tensorbleu_metrics.functional._engine import ngrams

    preds, pred_len, refs, ref_len = _batch(seed, 4, n_refs, 40, 40, "small")
    preds, refs = preds % vocab, refs % vocab
    expected, expected_refs = _definition(preds, pred_len, refs, ref_len, n_gram)
    kept = ngrams.GROUP
    ngrams.GROUP = group
    try:
        matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, n_gram, True)
    finally:
        ngrams.GROUP = kept
    np.testing.assert_array_equal(matches, expected)
    np.testing.assert_array_equal(ref_matches, expected_refs)
    assert not ngrams._local.work.counts.any()


def test_shared_token_map_and_table_restart():
    """The kernel shares the thread's token map with the LCS and Self-BLEU kernels (calls in any order give the
    same counts), and its table starts again when its key base nears overflow."""
    from tensorbleu_metrics.functional._engine import diversity, lcs, ngrams

    args = _batch(5, 12, 3, 40, 40, "small")
    expected = _definition(*args, 5)
    for _ in range(3):
        np.testing.assert_array_equal(count_pairs(*args, 5, True)[1], expected[1])
        lcs.lcs_lengths(*args)
        diversity.leave_one_out(args[0], args[1], np.arange(12) % 3, 3, 4)
    ngrams._local.work.table_base = int(ngrams._TABLE_RESET) - 1
    np.testing.assert_array_equal(count_pairs(*args, 5, True)[1], expected[1])
    assert ngrams._local.work.table_base < ngrams._TABLE_RESET


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_refs=st.integers(1, 4), pool=st.sampled_from(sorted(POOLS)))
def test_threads_equal_one_thread(seed, n_refs, pool):
    args = _batch(seed, 40, n_refs, 30, 30, pool)
    one = count_pairs(*args, 4, True)
    set_cpu_threads(2)
    try:
        two = count_pairs(*args, 4, True)
    finally:
        set_cpu_threads(1)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_nltk_modified_precision_numerators():
    rng = np.random.default_rng(0)
    for _ in range(300):
        vocab = int(rng.integers(2, 12))
        cand = rng.integers(0, vocab, int(rng.integers(0, 25))).tolist()
        refs = [rng.integers(0, vocab, int(rng.integers(1, 25))).tolist() for _ in range(int(rng.integers(1, 5)))]
        width = max(len(r) for r in refs)
        padded = np.zeros((1, len(refs), width), dtype=np.int64)
        for k, r in enumerate(refs):
            padded[0, k, : len(r)] = r
        preds = np.array([cand + [0] * (25 - len(cand))], dtype=np.int64)
        ref_len = np.array([[len(r) for r in refs]])
        matches, _ = count_pairs(preds, np.array([len(cand)]), padded, ref_len, 4, False)
        # NLTK's Fraction keeps its numerator unreduced: the clipped count itself
        expected = [modified_precision(refs, cand, n).numerator for n in range(1, 5)]
        assert matches[0].tolist() == expected


def test_negative_and_huge_values_match_the_definition():
    rng = np.random.default_rng(1)
    values = np.array([-(2**63), -(2**40), -7, -1, 0, 3, 2**62, 2**63 - 1])
    preds = values[rng.integers(0, values.size, (8, 20))]
    refs = np.where(rng.random((8, 3, 20)) < 0.7, preds[:, None, :], values[rng.integers(0, values.size, (8, 3, 20))])
    pred_len = rng.integers(0, 21, 8)
    ref_len = rng.integers(0, 21, (8, 3))
    matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, 5, True)
    expected, expected_refs = _definition(preds, pred_len, refs, ref_len, 5)
    np.testing.assert_array_equal(matches, expected)
    np.testing.assert_array_equal(ref_matches, expected_refs)
    # garbage past the lengths changes nothing (nor which of the map and the table gives the ids)
    shifted = count_pairs(np.where(np.arange(20) < pred_len[:, None], preds, -5), pred_len, refs, ref_len, 5, True)
    np.testing.assert_array_equal(shifted[0], expected)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_refs=st.integers(1, 4),
    width=st.integers(1, 40),
    pool=st.sampled_from(["colliding", "negative", "small", "huge"]),
    n_gram=st.integers(1, 6),
    direct_share=st.sampled_from([1, 2, 1 << 62]),
)
def test_token_table_and_direct_map(seed, n_refs, width, pool, n_gram, direct_share):
    """Order 1's ids from the token table (any int64 value, colliding hashes included) and from the direct map (where
    the values are few beside the call's tokens) give the definition's counts."""
    from tensorbleu_metrics.functional._engine import ngrams

    rng = np.random.default_rng(seed)
    values = {"colliding": COLLIDING, "negative": np.array([-(2**63), -(2**40), -7, -1, 0, 3]),
              "small": np.arange(4), "huge": POOLS["huge"]}[pool]  # fmt: skip
    preds = values[rng.integers(0, values.size, (5, width))]
    refs = np.where(rng.random((5, n_refs, width)) < 0.7, preds[:, None, :],
                    values[rng.integers(0, values.size, (5, n_refs, width))])  # fmt: skip
    pred_len = rng.integers(0, width + 1, 5)
    ref_len = rng.integers(0, width + 1, (5, n_refs))
    expected, expected_refs = _definition(preds, pred_len, refs, ref_len, n_gram)
    kept = ngrams.DIRECT_SHARE
    ngrams.DIRECT_SHARE = direct_share
    try:
        matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, n_gram, True)
    finally:
        ngrams.DIRECT_SHARE = kept
    np.testing.assert_array_equal(matches, expected)
    np.testing.assert_array_equal(ref_matches, expected_refs)


def test_empty_batch_and_no_references():
    matches, ref_matches = count_pairs(np.zeros((0, 5), np.int64), np.zeros(0, np.int64),
                                       np.zeros((0, 2, 5), np.int64), np.zeros((0, 2), np.int64), 4, True)  # fmt: skip
    assert matches.shape == (0, 4) and ref_matches.shape == (0, 2, 4)
    preds = np.arange(12, dtype=np.int64).reshape(3, 4)
    matches, ref_matches = count_pairs(preds, np.full(3, 4), np.zeros((3, 0, 4), np.int64), np.zeros((3, 0), np.int64),
                                       4, True)  # fmt: skip
    assert not matches.any() and matches.shape == (3, 4) and ref_matches.shape == (3, 0, 4)


def test_empty_rows_and_orders_past_the_rows():
    preds = np.array([[1, 2, 3, 0], [5, 5, 5, 5], [0, 0, 0, 0]], dtype=np.int64)
    refs = np.array([[[1, 2, 3]], [[5, 5, 0]], [[9, 9, 9]]], dtype=np.int64)
    pred_len, ref_len = np.array([3, 4, 0]), np.array([[3], [2], [3]])
    matches, ref_matches = count_pairs(preds, pred_len, refs, ref_len, 6, True)
    assert matches.tolist() == [[3, 2, 1, 0, 0, 0], [2, 1, 0, 0, 0, 0], [0] * 6]
    np.testing.assert_array_equal(ref_matches[:, 0], matches)
    _check(preds, pred_len, refs, ref_len, 6)


def test_long_row():
    rng = np.random.default_rng(2)
    preds = rng.integers(0, 50, (1, 100_000))
    refs = np.concatenate([preds[:, None, 5:], rng.integers(0, 50, (1, 1, 5))], axis=2)
    refs[0, 0, ::7] = rng.integers(0, 50, refs[0, 0, ::7].size)
    refs = np.concatenate([refs, rng.integers(0, 50, (1, 1, 100_000))], axis=1)
    _check(preds, np.array([100_000]), refs, np.array([[100_000, 99_000]]), 4)


@pytest.mark.parametrize("n_gram", [1, 4])
def test_non_contiguous_and_other_dtypes(n_gram):
    preds, pred_len, refs, ref_len = _batch(3, 5, 2, 16, 16, "small")
    expected = count_pairs(preds, pred_len, refs, ref_len, n_gram, True)
    got = count_pairs(
        np.asfortranarray(preds), pred_len.astype(np.int32), refs[:, ::-1][:, ::-1], ref_len, n_gram, True
    )
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_refs=st.integers(1, 3),
    layout=st.sampled_from(["right", "left", "inside", "mixed"]),
    eos=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_rows_as_given_laid_out_in_place_or_copied(seed, n_refs, layout, eos, threads):
    """``count_rows`` on rows as given: rows whose tokens stand first (right padding, an eos cut) are read in place,
    others (left or inner padding) are copied first; a call, or a thread's block of rows, may hold either kind."""
    from tensorbleu_metrics.functional._engine.ngrams import count_rows

    pad, end = 0, 1
    rng = np.random.default_rng(seed)
    n_sent, width = 6, 14

    def row(n: int, kind: str) -> list[int]:
        tokens = [int(t) for t in rng.integers(2, 6, n)]
        if eos and n and rng.random() < 0.5:
            tokens[int(rng.integers(0, n))] = end
        gaps = width - n
        if kind == "right":
            return tokens + [pad] * gaps
        if kind == "left":
            return [pad] * gaps + tokens
        cut = int(rng.integers(0, n + 1))
        return tokens[:cut] + [pad] * gaps + tokens[cut:]

    kinds = {"mixed": ["right", "left", "inside"]}.get(layout, [layout])
    preds = np.array([row(int(rng.integers(0, width + 1)), kinds[i % len(kinds)]) for i in range(n_sent)])
    refs = np.array(
        [
            [row(int(rng.integers(0, width + 1)), kinds[(i + k) % len(kinds)]) for k in range(n_refs)]
            for i in range(n_sent)
        ]
    )

    def clean(r: np.ndarray) -> list[int]:
        out = []
        for t in r.tolist():
            if eos and t == end:
                break
            if t != pad:
                out.append(t)
        return out

    cand = [clean(r) for r in preds]
    ref_rows = [[clean(r) for r in rs] for rs in refs]
    pl = np.array([len(c) for c in cand])
    rl = np.array([[len(r) for r in rs] for rs in ref_rows])
    dense_p = np.zeros((n_sent, width), np.int64)
    dense_r = np.zeros((n_sent, n_refs, width), np.int64)
    for i, c in enumerate(cand):
        dense_p[i, : len(c)] = c
        for k, r in enumerate(ref_rows[i]):
            dense_r[i, k, : len(r)] = r
    expected, expected_refs = _definition(dense_p, pl, dense_r, rl, 4)
    set_cpu_threads(threads)
    try:
        got = count_rows(preds, None, refs, None, None, False, pad, end if eos else None, True, 4)
    finally:
        set_cpu_threads(1)
    np.testing.assert_array_equal(got.matches, expected)
    np.testing.assert_array_equal(got.ref_matches, expected_refs)
    np.testing.assert_array_equal(got.pred_len, pl)
    np.testing.assert_array_equal(got.ref_len, rl)
