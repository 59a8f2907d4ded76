"""Self-BLEU and distinct-n on token IDs against their oracles, called here.

Self-BLEU: the NLTK ``sentence_bleu(others, sample)`` loop (SacreBLEU's ``sentence_score`` loop for its methods),
within 1e-12 in float64, and fast-bleu's ``SelfBLEU`` where its semantics match (one group, NLTK ``method0`` or
``method1``; its ``auto_reweight`` differs from NLTK's for samples shorter than 4 tokens, so it is not compared).
distinct-n: a plain Python set count.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from corpus_utils import NoHostReads
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional import distinct_ngrams, self_bleu, sentence_bleu

SACRE_METHODS = ("none", "floor", "add-k", "exp")
NLTK_METHODS = tuple(f"method{k}" for k in range(8))
ALL_METHODS = SACRE_METHODS + NLTK_METHODS
PAD = 0
ATOL64 = 1e-12
F64 = torch.float64


def _others(samples, groups):
    """For each sample, the other samples of its group (the Self-BLEU references)."""
    groups = groups if groups is not None else [0] * len(samples)
    return [[s for j, s in enumerate(samples) if j != i and groups[j] == groups[i]] for i in range(len(samples))]


def oracle_self_bleu(oracle, samples, groups, n_gram, smoothing, **kwargs) -> list:
    """The quadratic oracle loop; a sample alone in its group (NLTK/SacreBLEU would raise) scores 0."""
    out = []
    for sample, others in zip(samples, _others(samples, groups), strict=True):
        if not others:
            weights = kwargs.get("weights")
            out.append([0.0] * len(weights) if weights is not None and isinstance(weights[0], tuple) else 0.0)
        else:
            out.append(oracle.sentence(sample, others, n_gram, smoothing, **kwargs))
    return out


def _close(got: torch.Tensor, expected, atol: float = ATOL64) -> None:
    exp = torch.tensor(expected, dtype=F64)
    if exp.ndim == 2:  # oracle rows are samples; ours are weight sets
        exp = exp.T
    torch.testing.assert_close(got.cpu().to(F64), exp, rtol=0, atol=atol)


def _samples(seed: int, n: int, vocab: int = 5, max_len: int = 10) -> list[list[int]]:
    """Samples of different lengths (some empty), with exact duplicates and near-duplicates."""
    rng = random.Random(seed)
    out: list[list[int]] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.15:
            out.append(list(rng.choice(out)))  # a duplicate of an earlier sample
        elif out and roll < 0.35:
            base = rng.choice(out)
            out.append([t if rng.random() < 0.7 else rng.randint(1, vocab) for t in base])
        else:
            out.append([rng.randint(1, vocab) for _ in range(rng.randint(0, max_len))])
    return out


SAMPLES = _samples(seed=1, n=24)
# group ids in any order, unordered and sparse: sizes 7, 6, 5, 2, 1, 1, 1, 1
GROUP_IDS = [9, 4, 9, 17, 4, 4, 9, 2, 4, 9, 30, 17, 9, 4, 2, 2, 9, 2, 4, 2, -1, 9, 5, 8]


def _grid():
    for smoothing in ALL_METHODS:
        for n_gram in (1, 2, 4, 5):
            if smoothing == "method6" and n_gram < 3:
                continue
            yield pytest.param(smoothing, n_gram, id=f"{smoothing}-n{n_gram}")


# ------------------------------------------------------------------------------------------------ Self-BLEU
@pytest.mark.parametrize(("smoothing", "n_gram"), list(_grid()))
def test_self_bleu_equals_the_oracle_loop(oracle, device, smoothing, n_gram):
    groups = torch.tensor(GROUP_IDS, device=device)
    samples = [torch.tensor(s, dtype=torch.int64, device=device) for s in SAMPLES]
    got = self_bleu(samples, groups=groups, n_gram=n_gram, smoothing=smoothing, dtype=F64)
    assert got.device.type == device.type and got.shape == (len(SAMPLES),)
    _close(got, oracle_self_bleu(oracle, SAMPLES, GROUP_IDS, n_gram, smoothing))


@pytest.mark.parametrize("path", ["engine", "accelerator choices", "int64 counts, accelerator"])
def test_self_bleu_and_distinct_on_every_path(oracle, monkeypatch, path):
    """The CPU's engine, the accelerator's sorted pass (no host reads) forced on the CPU, and its leave-one-out
    counts in int64 (batches of 2**31 positions or more), give the oracles' numbers."""
    from tensorbleu_metrics.functional import _device, _sorted_pass

    if "accelerator" in path:
        monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    if path.startswith("int64 counts"):
        monkeypatch.setattr(_sorted_pass, "_COUNT_INT32_MAX", 0)
    got = self_bleu(SAMPLES, groups=torch.tensor(GROUP_IDS), n_gram=4, smoothing="method1", dtype=F64)
    _close(got, oracle_self_bleu(oracle, SAMPLES, GROUP_IDS, 4, "method1"))
    for n_gram in (1, 2, 3):
        got = distinct_ngrams(SAMPLES, n_gram=n_gram, groups=torch.tensor(GROUP_IDS), dtype=F64)
        _close(got, python_distinct(SAMPLES, n_gram, GROUP_IDS))


@pytest.mark.parametrize("smoothing", ALL_METHODS)
def test_self_bleu_options(oracle, smoothing):
    flag = {"effective_order": True} if smoothing in SACRE_METHODS else {"auto_reweigh": True}
    got = self_bleu(SAMPLES, groups=GROUP_IDS, smoothing=smoothing, dtype=F64, **flag)
    _close(got, oracle_self_bleu(oracle, SAMPLES, GROUP_IDS, 4, smoothing, **flag))
    if smoothing in ("floor", "add-k", "method1", "method4", "method6", "method7"):
        value = 0.3 if smoothing in ("floor", "method1") else 2.0
        got = self_bleu(SAMPLES, groups=GROUP_IDS, smoothing=smoothing, smooth_value=value, dtype=F64)
        if smoothing in SACRE_METHODS:
            _close(got, oracle_self_bleu(oracle, SAMPLES, GROUP_IDS, 4, smoothing, smooth_value=value))
        else:
            # NLTK takes the parameter through SmoothingFunction(epsilon=..., alpha=..., k=...)
            key = {"method1": "epsilon", "method6": "alpha"}.get(smoothing, "k")
            expected = [
                0.0
                if not others
                else oracle.nltk_sentence(s, others, 4, smoothing, smoothing_params={key: value})
                if not (smoothing == "method6" and oracle.nltk_method6_raises([s], [others]))
                else 0.0
                for s, others in zip(SAMPLES, _others(SAMPLES, GROUP_IDS), strict=True)
            ]
            _close(got, expected)


def test_self_bleu_weight_sets(oracle):
    weights = [(1.0,), (0.5, 0.5), (0.2, 0.3, 0.5)]
    weights = [tuple(w) + (0.0,) * (3 - len(w)) for w in weights]
    got = self_bleu(SAMPLES, groups=GROUP_IDS, n_gram=3, weights=weights, smoothing="method3", dtype=F64)
    assert got.shape == (3, len(SAMPLES))
    _close(got, oracle_self_bleu(oracle, SAMPLES, GROUP_IDS, 3, "method3", weights=weights))


def test_self_bleu_groups_of_one_and_two_and_duplicates():
    samples = [[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7], [5, 6, 8, 9], [3, 3, 3]]
    got = self_bleu(samples, groups=[0, 0, 1, 1, 2], dtype=F64)
    assert got[0].item() == got[1].item() == 1.0  # identical pair
    assert got[4].item() == 0.0  # alone in its group: no references, scores 0
    # a group's order and ids do not matter
    perm = [4, 2, 0, 3, 1]
    moved = self_bleu([samples[i] for i in perm], groups=[7, -3, 2, -3, 2], dtype=F64)
    torch.testing.assert_close(moved, got[perm], rtol=0, atol=0)
    # one sample in total: no references
    assert self_bleu([[1, 2, 3]]).tolist() == [0.0]


def test_self_bleu_is_sentence_bleu_with_the_others_as_references():
    samples = _samples(seed=4, n=9, vocab=6)
    refs = [others or [[]] for others in _others(samples, None)]
    expected = sentence_bleu(samples, refs, smoothing="method2", dtype=F64)
    torch.testing.assert_close(self_bleu(samples, smoothing="method2", dtype=F64), expected, rtol=0, atol=0)


def test_self_bleu_input_forms_pad_and_eos(oracle, device):
    samples = [[1, 2, 3, 4, 2], [1, 2, 3], [4, 4, 1, 2]]
    padded = torch.tensor([[1, 2, 3, 4, 2, 0], [1, 2, 0, 3, 0, 0], [4, 4, 1, 2, 0, 0]], device=device)
    expected = self_bleu(samples, dtype=F64)
    for form in (padded, [torch.tensor(s, device=device) for s in samples], samples):
        got = self_bleu(form, pad_id=PAD, dtype=F64)
        assert got.device.type == (device.type if form is not samples else "cpu")
        # bit for bit on the CPU; CUDA's exp and log may round the last bit differently
        torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=0 if device.type == "cpu" else 1e-15)
    # eos ends each sample (pad -100 too, as in label tensors)
    with_eos = torch.tensor([[1, 2, 3, 9, 5], [1, 2, 9, 9, -100], [4, 4, 1, 2, 3]], device=device)
    cut = [[1, 2, 3], [1, 2], [4, 4, 1, 2, 3]]
    got = self_bleu(with_eos, pad_id=-100, eos_id=9, dtype=F64)
    _close(got, oracle_self_bleu(oracle, cut, None, 4, "method1"))


@pytest.mark.parametrize("smoothing_func", [0, 1])
def test_self_bleu_equals_fast_bleu(smoothing_func):
    # fast-bleu has no groups and wants non-empty samples; its smoothing_func 0/1 are NLTK's method0/method1. Its
    # brevity penalty reads one length past its array of the other samples' lengths, so a sample could get that
    # stray value as its closest reference length: with samples of one length no value can be closer than theirs
    fast_bleu = pytest.importorskip("fast_bleu")
    samples = [s[:6] for s in _samples(seed=7, n=80, vocab=8, max_len=14) if len(s) >= 6]
    assert len(samples) >= 20
    weights = {"4": (0.25,) * 4, "2": (0.5, 0.5)}
    scorer = fast_bleu.SelfBLEU([[str(t) for t in s] for s in samples], weights, smoothing_func=smoothing_func)
    expected = scorer.get_score()
    method = f"method{smoothing_func}"
    got4 = self_bleu(samples, smoothing=method, dtype=F64)
    got2 = self_bleu(samples, n_gram=2, smoothing=method, dtype=F64)
    _close(got4, expected["4"])
    _close(got2, expected["2"])


@settings(max_examples=40, deadline=None)
@given(
    samples=st.lists(st.lists(st.integers(1, 3), max_size=7), min_size=1, max_size=8),
    group_seed=st.integers(0, 3),
    smoothing=st.sampled_from(["none", "exp", "method1", "method3", "method5"]),
    n_gram=st.integers(1, 4),
)
def test_property_self_bleu_equals_oracle(oracle, samples, group_seed, smoothing, n_gram):
    groups = [random.Random(group_seed * 100 + i).randint(0, group_seed) for i in range(len(samples))]
    got = self_bleu(samples, groups=groups, n_gram=n_gram, smoothing=smoothing, dtype=F64)
    _close(got, oracle_self_bleu(oracle, samples, groups, n_gram, smoothing))


# ---------------------------------------------------------------------------------------------- distinct-n
@pytest.mark.parametrize("path", ["engine", "accelerator"])
def test_self_bleu_and_distinct_with_the_widest_ids(oracle, monkeypatch, path):
    """IDs up to 2**63 - 1 give the same numbers, in the CPU's engine and in the accelerator's sorted pass (forced
    on the CPU: it names tokens by their ranks)."""
    from tensorbleu_metrics.functional import _device

    if path == "accelerator":
        monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    big = [[2**63 - 1 - 977 * t for t in s] for s in SAMPLES]
    got = self_bleu(big, groups=torch.tensor(GROUP_IDS), n_gram=4, smoothing="method1", dtype=F64)
    _close(got, oracle_self_bleu(oracle, big, GROUP_IDS, 4, "method1"))
    _close(got, self_bleu(SAMPLES, groups=torch.tensor(GROUP_IDS), n_gram=4, smoothing="method1", dtype=F64).tolist())
    for n_gram in (1, 3):
        got = distinct_ngrams(big, n_gram=n_gram, groups=torch.tensor(GROUP_IDS), dtype=F64)
        _close(got, python_distinct(big, n_gram, GROUP_IDS))


def python_distinct(samples, n, groups=None) -> list[float]:
    """Different n-grams over all n-grams per group, groups in order of first appearance (a plain set count)."""
    groups = groups if groups is not None else [0] * len(samples)
    order = list(dict.fromkeys(groups))
    out = []
    for g in order:
        grams = [
            tuple(s[i : i + n]) for s, gs in zip(samples, groups, strict=True) if gs == g for i in range(len(s) - n + 1)
        ]
        out.append(float(Fraction(len(set(grams)), len(grams))) if grams else 0.0)
    return out


@pytest.mark.parametrize("n_gram", [1, 2, 3, 4, 7])
def test_distinct_equals_a_set_count(device, n_gram):
    samples = _samples(seed=2, n=30, vocab=4, max_len=12)
    got = distinct_ngrams(
        [torch.tensor(s, dtype=torch.int64, device=device) for s in samples], n_gram=n_gram, dtype=F64
    )
    assert got.shape == () and got.device.type == device.type
    _close(got, python_distinct(samples, n_gram)[0])
    got = distinct_ngrams(samples, n_gram=n_gram, groups=torch.tensor(GROUP_IDS[:24] + [3] * 6), dtype=F64)
    _close(got, python_distinct(samples, n_gram, GROUP_IDS[:24] + [3] * 6))


def test_distinct_padded_and_empty():
    preds = torch.tensor([[1, 2, 1, 2, 0], [1, 2, 0, 0, 0]])
    assert distinct_ngrams(preds, pad_id=0, dtype=F64).item() == pytest.approx(2 / 4, abs=ATOL64)
    assert distinct_ngrams([[], [5]], n_gram=2).item() == 0.0  # no bigram at all
    assert distinct_ngrams([[1, 1], [2]], n_gram=1, groups=[1, 0]).tolist() == [0.5, 1.0]
    assert distinct_ngrams(preds, n_gram=2).dtype == torch.float32


@settings(max_examples=40, deadline=None)
@given(
    samples=st.lists(st.lists(st.integers(0, 3), max_size=8), min_size=1, max_size=8),
    n_gram=st.integers(1, 4),
    n_groups=st.integers(1, 3),
)
def test_property_distinct_equals_set_count(samples, n_gram, n_groups):
    groups = [(i * 7) % n_groups for i in range(len(samples))]
    got = distinct_ngrams(samples, n_gram=n_gram, groups=groups, dtype=F64)
    _close(got, python_distinct(samples, n_gram, groups))


# ----------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"groups": torch.tensor([0.0, 1.0])}, TypeError, "groups"),
        ({"groups": torch.tensor([0, 1, 2])}, ValueError, "groups"),
        ({"groups": [0, "a"]}, TypeError, "groups"),
        ({"groups": "ab"}, TypeError, "groups"),
        ({"n_gram": 0}, ValueError, "n_gram"),
        ({"n_gram": 2.0}, TypeError, "n_gram"),
        ({"dtype": torch.int32}, TypeError, "dtype"),
        ({"eos_id": 1.5}, TypeError, "eos_id"),
    ],
)
def test_invalid_options(kwargs, error, match):
    for fn in (self_bleu, distinct_ngrams):
        with pytest.raises(error, match=match):
            fn([[1, 2], [3, 4]], **kwargs)


def test_invalid_inputs():
    for fn in (self_bleu, distinct_ngrams):
        with pytest.raises(ValueError, match="empty"):
            fn([])
        with pytest.raises(TypeError, match="preds"):
            fn(torch.tensor([[1.0, 2.0]]))
        with pytest.raises(ValueError, match="negative"):
            fn(torch.tensor([[1, -2]]))
    with pytest.raises(ValueError, match="smoothing"):
        self_bleu([[1]], smoothing="method9")
    with pytest.raises(ValueError, match="effective_order"):
        self_bleu([[1]], smoothing="method1", effective_order=True)


def _padded_samples(gen: torch.Generator, n_samples: int, width: int, vocab: int) -> torch.Tensor:
    preds = torch.randint(1, vocab, (n_samples, width), generator=gen)
    lengths = torch.randint(0, width + 1, (n_samples,), generator=gen)
    return torch.where(torch.arange(width) < lengths.unsqueeze(1), preds, 0)


@pytest.mark.parametrize("with_groups", [False, True])
def test_diversity_reads_nothing_on_accelerators(monkeypatch, with_groups: bool) -> None:
    """With ``validate=False`` and the accelerator's choices (every position laid out, tables of one slot per
    occurrence), Self-BLEU and distinct-n of one set read nothing on the host, so wait for no GPU, and give the
    CPU path's numbers; distinct-n per group reads only the number of groups (the size of its result)."""
    from tensorbleu_metrics.functional import _device

    gen = torch.Generator().manual_seed(5)
    preds = _padded_samples(gen, 24, 20, 9)
    groups = torch.randint(-3, 4, (24,), generator=gen) * 1000 if with_groups else None
    expected = self_bleu(preds, groups=groups, pad_id=0, dtype=F64)
    expected_distinct = [distinct_ngrams(preds, n_gram=n, groups=groups, pad_id=0, dtype=F64) for n in (1, 2, 4)]
    monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    with NoHostReads():
        got = self_bleu(preds, groups=groups, pad_id=0, dtype=F64, validate=False)
        if groups is None:
            got_distinct = [distinct_ngrams(preds, n_gram=n, pad_id=0, dtype=F64, validate=False) for n in (1, 2, 4)]
    if groups is not None:
        got_distinct = [distinct_ngrams(preds, n_gram=n, groups=groups, pad_id=0, dtype=F64) for n in (1, 2, 4)]
    assert torch.equal(got, expected)
    for ours, theirs in zip(got_distinct, expected_distinct, strict=True):
        assert torch.equal(ours, theirs)


def test_unvalidated_negative_ids_count_alike_on_every_layout(monkeypatch) -> None:
    """Negative IDs let through with ``validate=False`` are tokens for Self-BLEU and distinct-n, in the CPU's engine
    as in the accelerator's sorted pass (which names tokens by rank, so no two groups' keys meet)."""
    from tensorbleu_metrics.functional import _device

    preds = torch.tensor([[3, -5, 4, 2, 7], [-5, 4, 2, 0, 0], [3, -5, 9, 9, 4], [4, 2, -5, 4, 0]])
    groups = torch.tensor([0, 1, 1, 0])
    kwargs = {"groups": groups, "pad_id": 0, "validate": False, "dtype": F64}
    cpu = [self_bleu(preds, smoothing="method1", **kwargs)]
    cpu += [distinct_ngrams(preds, n_gram=n, **kwargs) for n in (1, 2)]
    samples = [[t for t in row if t != 0] for row in preds.tolist()]
    assert cpu[1].tolist() == python_distinct(samples, 1, groups.tolist())
    assert cpu[2].tolist() == python_distinct(samples, 2, groups.tolist())
    monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    accelerator = [self_bleu(preds, smoothing="method1", **kwargs)]
    accelerator += [distinct_ngrams(preds, n_gram=n, **kwargs) for n in (1, 2)]
    for ours, theirs in zip(cpu, accelerator, strict=True):
        assert torch.equal(ours, theirs)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_samples=st.integers(1, 12), width=st.integers(1, 14))
def test_property_accelerator_layout_equals_the_cpu_one(seed: int, n_samples: int, width: int) -> None:
    """The accelerator's sorted pass (every position laid out) and the CPU's engine: the same Self-BLEU and
    distinct-n, for padded samples, empty ones and groups in any order."""
    from tensorbleu_metrics.functional import _device

    gen = torch.Generator().manual_seed(seed)
    preds = _padded_samples(gen, n_samples, width, 5)
    groups = torch.randint(0, 3, (n_samples,), generator=gen)
    from tensorbleu_metrics.functional._counting import self_bleu_stats
    from tensorbleu_metrics.functional._inputs import normalise_preds

    def run() -> list:
        tokens, lengths = normalise_preds(preds, 0, None)
        return [
            *self_bleu_stats(tokens, lengths, groups, 4),
            distinct_ngrams(preds, groups=groups, pad_id=0),
            self_bleu(preds, groups=groups, pad_id=0, dtype=F64),
        ]

    cpu = run()
    original = _device.host_reads_are_free
    _device.host_reads_are_free = lambda device: False
    try:
        accelerator = run()
    finally:
        _device.host_reads_are_free = original
    # the same counts; the scores of the two scorers (compiled per row, batched torch) within float64 rounding
    for ours, theirs in zip(accelerator[:-1], cpu[:-1], strict=True):
        assert torch.equal(ours, theirs)
    assert torch.allclose(accelerator[-1], cpu[-1], rtol=0, atol=1e-12)
