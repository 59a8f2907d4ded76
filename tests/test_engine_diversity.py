"""The compiled Self-BLEU and distinct-n kernels against today's torch counting and against NLTK directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional._engine import diversity, set_cpu_threads
from tensorbleu_metrics.functional._engine.diversity import distinct, leave_one_out
from tensorbleu_metrics.functional._sorted_pass import count_distinct, count_leave_one_out, group_tokens

# today's functions, the reference here, run the accelerator's sorted path (the engine serves them on the CPU)
pytestmark = pytest.mark.usefixtures("accelerator_path_in_module")


# token pools: a few small IDs (many repeats), a large vocabulary (direct map), huge and negative values (renumbered;
# not -1, which the torch counting takes for its own no-token marker, see test_minus_one_is_a_token)
POOLS = {
    "small": np.arange(3),
    "large": np.arange(1_000_000),
    "huge": np.array([-(2**62), -5, -2, 0, 7, 2**40, 2**62]),
}


def _first_appearance(group: np.ndarray) -> np.ndarray:
    """Group ids renumbered 0.. in order of first appearance (how ``group_tokens`` numbers them)."""
    ids: dict[int, int] = {}
    return np.array([ids.setdefault(int(g), len(ids)) for g in group], dtype=np.int64)


def _batch(seed: int, n_samples: int, width: int, pool: str, n_raw_groups: int) -> tuple[np.ndarray, ...]:
    """Ragged samples (some empty) with garbage past their lengths, and random groups (singletons included)."""
    rng = np.random.default_rng(seed)
    values = POOLS[pool]
    # a sample often repeats part of another, so that higher orders match across samples
    preds = values[rng.integers(0, min(values.size, 4 if pool == "large" else values.size), (n_samples, width))]
    if pool == "large":
        preds = np.where(rng.random((n_samples, width)) < 0.3, rng.integers(0, values.size, (n_samples, width)), preds)
    lengths = rng.integers(0, width + 1, n_samples)
    garbage = rng.choice(np.array([-(2**63), -100, 0, 2**63 - 1]), (n_samples, width))
    preds = np.where(np.arange(width) < lengths[:, None], preds, garbage)
    group = _first_appearance(rng.integers(0, n_raw_groups, n_samples))
    return preds, lengths, group


def _torch_counts(preds, lengths, group, n_gram) -> tuple[np.ndarray, np.ndarray]:
    n_groups = int(group.max()) + 1
    args = torch.from_numpy(preds), torch.from_numpy(lengths), torch.from_numpy(group)
    matches = count_leave_one_out(group_tokens(*args), n_gram).numpy()
    counts = count_distinct(group_tokens(*args), n_gram, n_groups).numpy()
    return matches, counts


def _engine_counts(preds, lengths, group, n_gram) -> tuple[np.ndarray, np.ndarray]:
    n_groups = int(group.max()) + 1 if group.size else 0
    return leave_one_out(preds, lengths, group, n_groups, n_gram), distinct(preds, lengths, group, n_groups, n_gram)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 24),
    width=st.integers(0, 12),
    pool=st.sampled_from(sorted(POOLS)),
    n_raw_groups=st.integers(1, 8),
    n_gram=st.integers(1, 5),
)
def test_equal_to_torch_counting(seed, n_samples, width, pool, n_raw_groups, n_gram):
    preds, lengths, group = _batch(seed, n_samples, width, pool, n_raw_groups)
    expected = _torch_counts(preds, lengths, group, n_gram)
    got = _engine_counts(preds, lengths, group, n_gram)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    set_cpu_threads(2)
    try:
        threaded = _engine_counts(preds, lengths, group, n_gram)
    finally:
        set_cpu_threads(1)
    np.testing.assert_array_equal(threaded[0], got[0])
    np.testing.assert_array_equal(threaded[1], got[1])


@pytest.mark.parametrize(
    ("n_samples", "width", "n_raw_groups", "vocab"),
    [(600, 24, 3, 40), (256, 32, 1, 8), (160, 48, 16, 1000)],
)
def test_large_groups_equal_to_torch_counting(n_samples, width, n_raw_groups, vocab):
    """Groups of hundreds of samples, where many n-grams are shared and the buckets are long."""
    rng = np.random.default_rng(n_samples)
    preds = rng.integers(0, vocab, (n_samples, width))
    # every fourth sample copies a stretch of another one
    for i in range(0, n_samples, 4):
        j = int(rng.integers(0, n_samples))
        preds[i, 4 : width // 2] = preds[j, 4 : width // 2]
    lengths = rng.integers(width // 2, width + 1, n_samples)
    group = _first_appearance(rng.integers(0, n_raw_groups, n_samples))
    expected = _torch_counts(preds, lengths, group, 5)
    got = _engine_counts(preds, lengths, group, 5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    set_cpu_threads(2)
    try:
        threaded = _engine_counts(preds, lengths, group, 5)
    finally:
        set_cpu_threads(1)
    np.testing.assert_array_equal(threaded[0], got[0])
    np.testing.assert_array_equal(threaded[1], got[1])


def test_buffers_of_one_call_for_huge_groups(monkeypatch):
    """Groups past the kept size get buffers of their own call: same counts, the thread's kept buffers untouched."""
    preds, lengths, group = _batch(7, 40, 12, "small", 3)
    expected = _engine_counts(preds, lengths, group, 4)
    kept = diversity._work(1)
    monkeypatch.setattr(diversity, "KEEP_WIDTH", 8)
    got = _engine_counts(preds, lengths, group, 4)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert diversity._work(1) is kept


def test_edge_cases():
    # no samples
    empty = np.zeros((0, 5), dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    assert leave_one_out(empty, none, none, 0, 3).shape == (0, 3)
    assert distinct(empty, none, none, 0, 3).shape == (0, 3)
    # one sample per group: no other samples, nothing clipped; all samples empty; orders beyond every length
    preds = np.array([[1, 2, 1, 2], [1, 2, 1, 2], [9, 9, 9, 9]])
    np.testing.assert_array_equal(leave_one_out(preds, np.array([4, 4, 4]), np.array([0, 1, 2]), 3, 2), 0)
    np.testing.assert_array_equal(leave_one_out(preds, np.array([0, 0, 0]), np.array([0, 0, 0]), 1, 2), 0)
    np.testing.assert_array_equal(distinct(preds, np.array([0, 0, 0]), np.array([0, 0, 0]), 1, 2), 0)
    np.testing.assert_array_equal(leave_one_out(preds, np.array([4, 4, 4]), np.array([0, 0, 0]), 1, 6)[:, 4:], 0)
    np.testing.assert_array_equal(distinct(preds, np.array([4, 4, 4]), np.array([0, 0, 0]), 1, 6), [[3, 3, 3, 2, 0, 0]])
    # an empty group between others (ids not all used)
    np.testing.assert_array_equal(distinct(preds, np.array([4, 4, 4]), np.array([0, 0, 2]), 3, 1), [[2], [0], [1]])


def test_minus_one_is_a_token():
    """-1 is a token like any other value, never matched across groups."""
    preds = np.array([[5], [7], [-1], [3], [-1]])
    group = np.array([0, 0, 1, 1, 1])
    np.testing.assert_array_equal(leave_one_out(preds, np.ones(5, np.int64), group, 2, 1)[:, 0], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(distinct(preds, np.ones(5, np.int64), group, 2, 1)[:, 0], [2, 2])


def _ngrams(sample: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(sample[i : i + n]) for i in range(len(sample) - n + 1)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(1, 12), n_raw_groups=st.integers(1, 3))
def test_against_nltk(seed, n_samples, n_raw_groups):
    """Self-BLEU matches are NLTK's ``modified_precision(others, sample, n)`` numerators; distinct-n a set count."""
    from nltk.translate.bleu_score import modified_precision

    rng = np.random.default_rng(seed)
    width = 10
    preds = rng.integers(0, 4, (n_samples, width))
    lengths = rng.integers(0, width + 1, n_samples)
    raw = rng.integers(0, n_raw_groups, n_samples)
    group = _first_appearance(raw)
    n_groups = int(group.max()) + 1
    samples = [[int(t) for t in preds[i, : lengths[i]]] for i in range(n_samples)]
    matches = leave_one_out(preds, lengths, group, n_groups, 4)
    counts = distinct(preds, lengths, group, n_groups, 4)
    for i, sample in enumerate(samples):
        others = [s for j, s in enumerate(samples) if j != i and group[j] == group[i]]
        for n in range(1, 5):
            expected = modified_precision(others, sample, n).numerator if others else 0
            assert matches[i, n - 1] == expected, (i, n)
    for g in range(n_groups):
        members = [s for s, h in zip(samples, group, strict=True) if h == g]
        for n in range(1, 5):
            assert counts[g, n - 1] == len({ng for s in members for ng in _ngrams(s, n)})
