"""Token-ID ROUGE against Google's rouge-score (``score``/``score_multi``, called here) and torchmetrics.

The oracle sees the IDs joined by spaces with every ``sep_id`` written as a newline. Tolerances: float64 within
1e-12 of rouge-score, float32 torchmetrics within 1e-6.
"""

from __future__ import annotations

import random
from functools import cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score.rouge_scorer import RougeScorer, _lcs_table, _summary_level_lcs

from tensorbleu_metrics.functional import ROUGE_KEYS, rouge_score
from tensorbleu_metrics.functional._lcs import lcs_length, union_lcs_hits

PAD = 0
SEP = 1  # token IDs of the batches are >= 1; 1 is the sentence separator
ATOL64 = 1e-12
ATOL32 = 1e-6
FIELDS = ("fmeasure", "precision", "recall")
ALL_KEYS = ("rouge1", "rouge2", "rouge3", "rouge4", "rouge9", "rougeL", "rougeLsum")


def _text(seq) -> str:
    return " ".join("\n" if int(t) == SEP else str(int(t)) for t in seq)


@cache
def _scorer(keys: tuple[str, ...]) -> RougeScorer:
    return RougeScorer(list(keys))


def rouge_oracle(preds, refs, keys, accumulate: str) -> dict[str, list[float]]:
    """rouge-score per sentence: ``score_multi`` for "best", the mean of ``score`` over references for "avg"."""
    scorer = _scorer(tuple(keys))
    out: dict[str, list[float]] = {f"{k}_{f}": [] for k in keys for f in FIELDS}
    for hyp, sentence_refs in zip(preds, refs, strict=True):
        texts = [_text(r) for r in sentence_refs]
        if accumulate == "best":
            best = scorer.score_multi(texts, _text(hyp))
            values = {k: [getattr(best[k], f) for f in FIELDS] for k in keys}
        else:
            each = [scorer.score(t, _text(hyp)) for t in texts]
            values = {k: [sum(getattr(s[k], f) for s in each) / len(each) for f in FIELDS] for k in keys}
        for k in keys:
            for f, v in zip(FIELDS, values[k], strict=True):
                out[f"{k}_{f}"].append(v)
    return out


def _assert_matches(got: dict[str, torch.Tensor], expected: dict[str, list[float]], atol: float = ATOL64) -> None:
    assert set(got) == set(expected)
    for name, values in expected.items():
        exp = torch.tensor(values, dtype=torch.float64)
        diff = (got[name].detach().to("cpu", torch.float64) - exp).abs()
        assert not bool((diff > atol).any()), f"{name}: {got[name].tolist()} != {values}"


def random_batch(rng: random.Random, n: int, max_len: int, vocab: int, max_refs: int, sep_rate: float = 0.1):
    """Ragged candidates and references with IDs in 2..vocab+1, separators, empty sequences and repeats."""

    def seq(length: int) -> list[int]:
        return [SEP if rng.random() < sep_rate else rng.randint(2, vocab + 1) for _ in range(length)]

    preds, refs = [], []
    for _ in range(n):
        hyp = seq(rng.choice([0, rng.randint(0, max_len)]) if rng.random() < 0.1 else rng.randint(1, max_len))
        sentence_refs = []
        for _ in range(rng.randint(1, max_refs)):
            ref = [t if rng.random() < 0.6 else rng.randint(1, vocab + 1) for t in hyp]
            ref += seq(rng.randint(0, 4))
            sentence_refs.append(ref if rng.random() > 0.05 else [])
        preds.append(hyp)
        refs.append(sentence_refs)
    return preds, refs


def _forms(preds, refs, device):
    """The accepted input forms of one ragged batch (the padded form only when it can express the batch)."""
    yield "lists", preds, refs
    yield (
        "tensors",
        [torch.tensor(p, dtype=torch.int64, device=device) for p in preds],
        [[torch.tensor(r, dtype=torch.int64, device=device) for r in rs] for rs in refs],
    )
    if all(len(r) for rs in refs for r in rs):
        width = max(len(p) for p in preds) + 2
        p = torch.full((len(preds), width), PAD, dtype=torch.int64)
        for i, hyp in enumerate(preds):
            p[i, : len(hyp)] = torch.tensor(hyp, dtype=torch.int64)
        n_refs = max(len(rs) for rs in refs)
        t = torch.full((len(refs), n_refs, max(len(r) for rs in refs for r in rs) + 1), PAD, dtype=torch.int64)
        for i, rs in enumerate(refs):
            for j, r in enumerate(rs):
                t[i, j, : len(r)] = torch.tensor(r, dtype=torch.int64)
        yield "padded", p.to(device), t.to(device)  # short rows of `refs` leave all-padding (absent) references
        if n_refs == 1:
            yield "padded-2d", p.to(device), t[:, 0].to(device)


@pytest.mark.parametrize("accumulate", ["best", "avg"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_rouge_score_every_key_and_form(seed: int, accumulate: str, device: torch.device) -> None:
    rng = random.Random(seed)
    preds, refs = random_batch(rng, n=12, max_len=40, vocab=[3, 8, 40][seed], max_refs=[1, 3, 4][seed])
    expected = rouge_oracle(preds, refs, ALL_KEYS, accumulate)
    for form, p, t in _forms(preds, refs, device):
        got = rouge_score(p, t, rouge_keys=ALL_KEYS, accumulate=accumulate, sep_id=SEP, pad_id=PAD, dtype=torch.float64)
        assert all(v.device.type == (device.type if form != "lists" else "cpu") for v in got.values()), form
        _assert_matches(got, expected)


@pytest.mark.parametrize("path", ["engine", "accelerator"])
def test_word_boundaries_and_long_sequences(monkeypatch, path: str) -> None:
    """Lengths around multiples of 64 and up to 2048: carries across int64 words and long lanes, in the CPU's
    engine and in the accelerator's bit-parallel recurrence (forced on the CPU)."""
    from tensorbleu_metrics.functional import _device

    if path == "accelerator":
        monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    rng = random.Random(5)
    lengths = [(0, 5), (1, 1), (63, 64), (64, 65), (65, 63), (128, 129), (200, 190), (2048, 1900)]
    preds = [[rng.randint(2, 9) for _ in range(a)] for a, _ in lengths]
    refs = [
        [[t if rng.random() < 0.7 else rng.randint(2, 9) for t in (p * 2)[:b]]]
        for p, (_, b) in zip(preds, lengths, strict=True)
    ]
    keys = ("rouge1", "rouge2", "rougeL")
    _assert_matches(
        rouge_score(preds, refs, rouge_keys=keys, dtype=torch.float64), rouge_oracle(preds, refs, keys, "best")
    )
    # ROUGE-Lsum with many sentences per sequence (lanes crossing word boundaries), up to 1024 tokens
    sep_preds = [[SEP if rng.random() < 0.03 else t for t in p[:1024]] for p in preds]
    sep_refs = [[[SEP if rng.random() < 0.03 else t for t in r[:1024]] for r in rs] for rs in refs]
    _assert_matches(
        rouge_score(sep_preds, sep_refs, rouge_keys="rougeLsum", sep_id=SEP, dtype=torch.float64),
        rouge_oracle(sep_preds, sep_refs, ("rougeLsum",), "best"),
    )


def test_separators_and_empty_sentences() -> None:
    """Leading, trailing and repeated separators; sequences of separators only; empty sequences."""
    preds = [[SEP, 2, 3, SEP, SEP, 4, 2, SEP], [SEP, SEP], [], [2, 3, 4], [5, SEP, 5, 5, SEP, 6]]
    refs = [[[2, SEP, 3, 4, 2, SEP]], [[2, 3]], [[2]], [[SEP], [SEP, 2, 3, 4]], [[5, 5, SEP, 6, 5], [6, SEP, 5]]]
    for accumulate in ("best", "avg"):
        got = rouge_score(preds, refs, rouge_keys=ALL_KEYS, sep_id=SEP, accumulate=accumulate, dtype=torch.float64)
        _assert_matches(got, rouge_oracle(preds, refs, ALL_KEYS, accumulate))


def test_best_keeps_the_first_reference_on_ties() -> None:
    """Equal F with different P/R: score_multi keeps the first such reference."""
    preds = [[2, 3, 4, 5]]
    refs = [[[2, 3], [2, 3, 4, 5, 6, 7, 8, 9], [2, 3, 9]]]
    got = rouge_score(preds, refs, rouge_keys=("rouge1", "rougeL"), dtype=torch.float64)
    _assert_matches(got, rouge_oracle(preds, refs, ("rouge1", "rougeL"), "best"))


def test_eos_and_pad_and_default_dtype() -> None:
    preds = torch.tensor([[2, 3, 4, 9, 5, 0], [3, 3, 3, 0, 0, 0]])
    target = torch.tensor([[[2, 4, 3, 9, 7, 0], [0, 0, 0, 0, 0, 0]], [[3, 2, 3, 0, 0, 0], [3, 9, 3, 3, 0, 0]]])
    got = rouge_score(preds, target, rouge_keys=("rouge1", "rougeL"), pad_id=0, eos_id=9)
    assert all(v.dtype == torch.float32 and v.shape == (2,) for v in got.values())
    expected = rouge_oracle([[2, 3, 4], [3, 3, 3]], [[[2, 4, 3]], [[3, 2, 3], [3]]], ("rouge1", "rougeL"), "best")
    _assert_matches(got, expected, ATOL32)


def _tm_join(seq) -> str:
    return " ".join(str(int(t)) for t in seq)


@pytest.mark.parametrize("accumulate", ["best", "avg"])
def test_mean_matches_torchmetrics(accumulate: str) -> None:
    """torchmetrics' rouge_score returns the corpus mean of the same sentence scores for N and L (its ROUGE-Lsum
    splits sentences with NLTK's sentence tokenizer instead of a separator token, so it is not compared)."""
    from torchmetrics.functional.text import rouge_score as tm_rouge_score

    rng = random.Random(3)
    preds, refs = random_batch(rng, n=10, max_len=30, vocab=6, max_refs=3, sep_rate=0.0)
    keys = ("rouge1", "rouge2", "rougeL")
    got = rouge_score(preds, refs, rouge_keys=keys, accumulate=accumulate, dtype=torch.float64)
    expected = tm_rouge_score(
        [_tm_join(p) for p in preds], [[_tm_join(r) for r in rs] for rs in refs], accumulate=accumulate, rouge_keys=keys
    )
    for name, value in expected.items():
        assert abs(float(got[name].mean()) - float(value)) < ATOL32, name


# ---- properties (hypothesis) ----

short_seqs = st.lists(st.integers(2, 5), max_size=70)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(short_seqs, short_seqs), min_size=1, max_size=5))
def test_lcs_length_is_the_dp_value_symmetric_and_bounded(pairs) -> None:
    a = [list(x) for x, _ in pairs]
    b = [list(y) for _, y in pairs]

    def run(left, right):
        width_l, width_r = max(map(len, left)) + 1, max(map(len, right)) + 1
        lt = torch.tensor([x + [0] * (width_l - len(x)) for x in left])
        rt = torch.tensor([[y + [0] * (width_r - len(y))] for y in right])
        return lcs_length(lt, torch.tensor([len(x) for x in left]), rt, torch.tensor([[len(y)] for y in right]))[:, 0]

    forward, backward = run(a, b), run(b, a)
    dp = [_lcs_table(y, x)[-1][-1] for x, y in pairs]
    assert forward.tolist() == dp
    assert backward.tolist() == dp
    assert all(v <= min(len(x), len(y)) for v, (x, y) in zip(dp, pairs, strict=True))


sep_seqs = st.lists(st.integers(1, 4), max_size=50)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(sep_seqs, st.lists(sep_seqs, min_size=1, max_size=3)), min_size=1, max_size=4))
def test_union_lcs_hits_are_rouge_scores(pairs) -> None:
    """Hits over the separator-free lengths reproduce rouge-score's _summary_level_lcs for any splits."""
    preds = [list(p) for p, _ in pairs]
    refs = [[list(r) for r in rs] for _, rs in pairs]
    n_refs = max(len(rs) for rs in refs)
    width_p = max(map(len, preds)) + 1
    width_r = max(len(r) for rs in refs for r in rs) + 1
    p = torch.tensor([x + [0] * (width_p - len(x)) for x in preds])
    t = torch.zeros(len(refs), n_refs, width_r, dtype=torch.int64)
    ref_len = torch.zeros(len(refs), n_refs, dtype=torch.int64)
    for i, rs in enumerate(refs):
        for j, r in enumerate(rs):
            t[i, j, : len(r)] = torch.tensor(r, dtype=torch.int64)
            ref_len[i, j] = len(r)
    hits, pred_total, ref_total = union_lcs_hits(p, torch.tensor([len(x) for x in preds]), t, ref_len, SEP)

    def sentences(seq):
        out = [[]]
        for tok in seq:
            out.append([]) if tok == SEP else out[-1].append(tok)
        return out

    for i, (hyp, rs) in enumerate(zip(preds, refs, strict=True)):
        assert int(pred_total[i]) == sum(tok != SEP for tok in hyp)
        for j, r in enumerate(rs):
            expected = _summary_level_lcs(sentences(r), sentences(hyp))
            h, m, n = int(hits[i, j]), int(ref_total[i, j]), int(pred_total[i])
            assert m == sum(tok != SEP for tok in r)
            assert abs((h / m if m and n else 0.0) - expected.recall) < ATOL64
            assert abs((h / n if m and n else 0.0) - expected.precision) < ATOL64


@pytest.mark.parametrize("block", [1, 3, 40])
def test_lsum_in_blocks_of_sentence_pairs(monkeypatch, block: int) -> None:
    """ROUGE-Lsum screening its sentence pairs and walking its walkers a few at a time (the accelerator's path,
    forced on the CPU) gives the same hits as in one block, and rouge-score's numbers."""
    from tensorbleu_metrics.functional import _device, _lcs

    monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    preds, refs = random_batch(random.Random(11), n=10, max_len=60, vocab=5, max_refs=3, sep_rate=0.15)
    expected = rouge_oracle(preds, refs, ("rougeLsum",), "best")
    whole = rouge_score(preds, refs, rouge_keys="rougeLsum", sep_id=SEP, dtype=torch.float64)
    monkeypatch.setattr(_lcs, "_PAIR_BLOCK", block)
    got = rouge_score(preds, refs, rouge_keys="rougeLsum", sep_id=SEP, dtype=torch.float64)
    _assert_matches(got, expected)
    for name, value in got.items():
        assert torch.equal(value, whole[name]), name


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 9), max_size=12), block=st.integers(1, 20))
def test_blocks_cover_every_item_once(sizes: list[int], block: int) -> None:
    """The ranges of _blocks are consecutive, non-empty and cover every item; past its first item a range holds at
    most ``block`` of the sizes."""
    from tensorbleu_metrics.functional._lcs import _blocks

    ranges = _blocks(torch.tensor(sizes, dtype=torch.int64), block)
    assert [lo for lo, _ in ranges] == ([0, *(hi for _, hi in ranges[:-1])] if sizes else [])
    assert (ranges[-1][1] if ranges else 0) == len(sizes)
    for lo, hi in ranges:
        assert hi > lo
        assert sum(sizes[lo + 1 : hi]) <= block


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), accumulate=st.sampled_from(["best", "avg"]))
def test_random_batches_match_rouge_score(seed: int, accumulate: str) -> None:
    preds, refs = random_batch(random.Random(seed), n=4, max_len=25, vocab=4, max_refs=3, sep_rate=0.2)
    keys = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    got = rouge_score(preds, refs, rouge_keys=keys, accumulate=accumulate, sep_id=SEP, dtype=torch.float64)
    _assert_matches(got, rouge_oracle(preds, refs, keys, accumulate))


def test_scores_are_finite_and_bounded_on_degenerate_input() -> None:
    preds = torch.zeros(3, 0, dtype=torch.int64)
    got = rouge_score(preds, torch.zeros(3, 0, dtype=torch.int64), rouge_keys=ROUGE_KEYS, sep_id=SEP)
    assert all(bool((v == 0).all()) for v in got.values())
    single = rouge_score([[SEP]], [[[SEP]]], rouge_keys=ROUGE_KEYS, sep_id=SEP)
    assert all(bool((v == 0).all()) for v in single.values())


# ---- errors ----


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rouge_keys": ("rouge1", "rougeX")}, ValueError, "rouge_keys"),
        ({"rouge_keys": ("rouge0",)}, ValueError, "rouge_keys"),
        ({"rouge_keys": ()}, ValueError, "rouge_keys"),
        ({"rouge_keys": ("rouge1", "rouge1")}, ValueError, "rouge_keys"),
        ({"rouge_keys": 1}, TypeError, "rouge_keys"),
        ({"accumulate": "max"}, ValueError, "accumulate"),
        ({"rouge_keys": "rougeLsum"}, ValueError, "sep_id"),
        ({"sep_id": "\n"}, TypeError, "sep_id"),
        ({"sep_id": True}, TypeError, "sep_id"),
        ({"sep_id": 0, "pad_id": 0}, ValueError, "sep_id"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
        ({"pad_id": 1.5}, TypeError, "pad_id"),
    ],
)
def test_bad_options_raise(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rouge_score([[2, 3]], [[[2, 3]]], **kwargs)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="preds"):
        rouge_score([[2, 3], [4]], [[[2]]])
    with pytest.raises(TypeError, match="preds"):
        rouge_score(torch.tensor([[0.5]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="target"):
        rouge_score([[2, 3]], [[[-4]]])


def test_numpy_inputs_and_ids_equal_the_tensor_path() -> None:
    import numpy as np

    preds = torch.tensor([[2, 3, SEP, 4, 5, 0], [3, 3, 4, 0, 0, 0]])
    target = torch.tensor([[[2, SEP, 3, 4, 5, 0]], [[4, 3, 3, 0, 0, 0]]])
    expected = rouge_score(preds, target, rouge_keys=ALL_KEYS, sep_id=SEP, pad_id=PAD)
    got = rouge_score(
        preds.numpy(), target.numpy(), rouge_keys=list(ALL_KEYS), sep_id=np.int64(SEP), pad_id=np.int32(PAD)
    )
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    trusted = rouge_score(preds, target, rouge_keys=ALL_KEYS, sep_id=SEP, pad_id=PAD, validate=False)
    assert all(torch.equal(trusted[k], expected[k]) for k in expected)


@pytest.mark.parametrize("accumulate", ["best", "avg"])
def test_accelerator_choices_on_the_cpu(monkeypatch, accumulate: str) -> None:
    """The choices made where host reads cost a synchronisation (tables sized from shapes, int32 counts, row sorts,
    no left-alignment check), forced on the CPU, give rouge-score's numbers for every key."""
    from tensorbleu_metrics.functional import _device

    monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    preds, refs = random_batch(random.Random(7), n=12, max_len=40, vocab=8, max_refs=3)
    expected = rouge_oracle(preds, refs, ALL_KEYS, accumulate)
    for _form, p, t in _forms(preds, refs, torch.device("cpu")):
        got = rouge_score(p, t, rouge_keys=ALL_KEYS, accumulate=accumulate, sep_id=SEP, pad_id=PAD, dtype=torch.float64)
        _assert_matches(got, expected)
