"""Metrics with different options never share a state: in a ``MetricCollection`` and through ``merge_state``.

torchmetrics' ``MetricCollection`` puts metrics whose state names and values are equal after the first update into
one compute group and updates only its first member. Each value below is checked against its oracle (rouge-score,
NLTK) called here, not against another instance of ours.
"""

from __future__ import annotations

import pytest
import torch
from conftest import nltk_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu
from rouge_score.rouge_scorer import RougeScorer
from torchmetrics import MetricCollection

from tensorbleu_metrics import TokenIDBLEU, TokenIDGLEU, TokenIDROUGE


def _words(seq) -> str:
    return " ".join(str(t) for t in seq)


def _rouge_mean(key: str, batches) -> float:
    scorer = RougeScorer([key])
    values = [
        scorer.score_multi([_words(r) for r in refs], _words(hyp))[key].fmeasure
        for preds, target in batches
        for hyp, refs in zip(preds, target, strict=True)
    ]
    return sum(values) / len(values)


def _cut(seq, eos_id):
    seq = list(seq)
    return seq[: seq.index(eos_id)] if eos_id is not None and eos_id in seq else seq


def _feed(collection: MetricCollection, batches) -> dict[str, torch.Tensor]:
    for preds, target in batches:
        collection.update(preds, target)
    return collection.compute()


def test_rouge_keys_do_not_share_a_group():
    batches = [([[9, 9, 9]], [[[4, 5, 6, 7]]]), ([[7, 6, 5, 4]], [[[4, 5, 6, 7]]])]
    collection = MetricCollection({"a": TokenIDROUGE(rouge_keys="rouge1"), "b": TokenIDROUGE(rouge_keys="rougeL")})
    out = _feed(collection, batches)
    assert len(collection.compute_groups) == 2
    assert out["rouge1_fmeasure"].item() == pytest.approx(_rouge_mean("rouge1", batches), abs=1e-6)
    assert out["rougeL_fmeasure"].item() == pytest.approx(_rouge_mean("rougeL", batches), abs=1e-6)
    assert out["rougeL_fmeasure"].item() == pytest.approx(0.125, abs=1e-6)


def test_gleu_orders_do_not_share_a_group():
    batches = [([[]], [[[]]]), ([[4, 5, 6, 7]], [[[4, 5, 6, 8]]])]
    collection = MetricCollection({"a": TokenIDGLEU(), "b": TokenIDGLEU(min_len=2, max_len=2)})
    out = _feed(collection, batches)
    hyps = [h for preds, _ in batches for h in preds]
    refs = [r for _, target in batches for r in target]
    assert len(collection.compute_groups) == 2
    assert out["a"].item() == pytest.approx(nltk_corpus_gleu(refs, hyps, 1, 4), abs=1e-6)
    assert out["b"].item() == pytest.approx(nltk_corpus_gleu(refs, hyps, 2, 2), abs=1e-6)


def test_bleu_eos_does_not_share_a_group():
    batches = [([[5, 6, 7, 8]], [[[5, 6, 7, 8]]]), ([[5, 6, 2, 8, 9]], [[[5, 6, 7, 8, 9]]])]
    collection = MetricCollection(
        {"a": TokenIDBLEU(smoothing="method1"), "b": TokenIDBLEU(smoothing="method1", eos_id=2)}
    )
    out = _feed(collection, batches)
    hyps = [h for preds, _ in batches for h in preds]
    refs = [r for _, target in batches for r in target]
    assert len(collection.compute_groups) == 2
    assert out["a"].item() == pytest.approx(nltk_corpus(hyps, refs, 4, "method1"), abs=1e-6)
    cut = [_cut(h, 2) for h in hyps]
    assert out["b"].item() == pytest.approx(nltk_corpus(cut, refs, 4, "method1"), abs=1e-6)


def test_equal_options_still_share_a_group():
    batches = [([[5, 6, 7, 8]], [[[5, 6, 7, 8]]]), ([[5, 6, 9, 8]], [[[5, 6, 7, 8]]])]
    collection = MetricCollection({"a": TokenIDBLEU(smoothing="method1"), "b": TokenIDBLEU(smoothing="method1")})
    out = _feed(collection, batches)
    hyps = [h for preds, _ in batches for h in preds]
    refs = [r for _, target in batches for r in target]
    assert len(collection.compute_groups) == 1
    expected = nltk_corpus(hyps, refs, 4, "method1")
    assert out["a"].item() == pytest.approx(expected, abs=1e-6)
    assert out["b"].item() == pytest.approx(expected, abs=1e-6)


# one option changed at a time, each of which changes what an update adds
_VARIANTS = {
    "bleu": [
        (TokenIDBLEU, {}),
        (TokenIDBLEU, {"eos_id": 2}),
        (TokenIDBLEU, {"pad_id": 3}),
        (TokenIDBLEU, {"n_gram": 4, "weights": (0.5, 0.5, 0, 0)}),
        (TokenIDBLEU, {"smoothing": "method1", "return_sentence_level_score": True}),
    ],
    "gleu": [
        (TokenIDGLEU, {}),
        (TokenIDGLEU, {"max_len": 3}),
        (TokenIDGLEU, {"min_len": 2}),
        (TokenIDGLEU, {"eos_id": 2}),
    ],
    "rouge": [
        (TokenIDROUGE, {"rouge_keys": "rouge1"}),
        (TokenIDROUGE, {"rouge_keys": "rouge2"}),
        (TokenIDROUGE, {"rouge_keys": "rougeL"}),
        (TokenIDROUGE, {"rouge_keys": "rouge1", "accumulate": "avg"}),
        (TokenIDROUGE, {"rouge_keys": "rouge1", "eos_id": 2}),
    ],
}
_SEQ = st.lists(st.integers(2, 6), min_size=0, max_size=6)


@pytest.mark.parametrize("family", sorted(_VARIANTS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_any_two_options_score_as_alone(family, data):
    """Whatever the batches, every metric of a collection scores what it scores alone, each pair in its own group."""
    variants = _VARIANTS[family]
    i, j = data.draw(st.lists(st.integers(0, len(variants) - 1), min_size=2, max_size=2, unique=True))
    n_batches = data.draw(st.integers(1, 3))
    batches = []
    for _ in range(n_batches):
        size = data.draw(st.integers(1, 3))
        preds = [data.draw(_SEQ) for _ in range(size)]
        target = [[data.draw(_SEQ.filter(bool)) for _ in range(data.draw(st.integers(1, 2)))] for _ in range(size)]
        batches.append((preds, target))
    members = {f"m{k}": cls(**kwargs) for k, (cls, kwargs) in enumerate((variants[i], variants[j]))}
    alone = {f"m{k}": cls(**kwargs) for k, (cls, kwargs) in enumerate((variants[i], variants[j]))}
    collection = MetricCollection(members, compute_groups=True)
    for preds, target in batches:
        collection.update(preds, target)
        for metric in alone.values():
            metric.update(preds, target)
    assert len(collection.compute_groups) == 2
    for name, metric in alone.items():
        expected, got = metric.compute(), collection[name].compute()
        if isinstance(expected, tuple):
            expected, got = expected[0], got[0]
        expected = expected if isinstance(expected, dict) else {"": expected}
        got = got if isinstance(got, dict) else {"": got}
        for key, value in expected.items():
            torch.testing.assert_close(got[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("make", "other", "option"),
    [
        (lambda: TokenIDROUGE(rouge_keys="rouge1"), lambda: TokenIDROUGE(rouge_keys="rougeL"), "rouge_keys"),
        (lambda: TokenIDROUGE(), lambda: TokenIDROUGE(accumulate="avg"), "accumulate"),
        (lambda: TokenIDGLEU(), lambda: TokenIDGLEU(max_len=2), "max_len"),
        (lambda: TokenIDGLEU(), lambda: TokenIDGLEU(min_len=2), "min_len"),
        (lambda: TokenIDBLEU(), lambda: TokenIDBLEU(n_gram=2), "n_gram"),
        (lambda: TokenIDBLEU(), lambda: TokenIDBLEU(eos_id=2), "eos_id"),
        (lambda: TokenIDBLEU(smoothing="exp"), lambda: TokenIDBLEU(smoothing="floor"), "smoothing"),
    ],
)
def test_merge_state_refuses_other_options(make, other, option):
    metric, incoming = make(), other()
    for m in (metric, incoming):
        m.update([[4, 5, 6, 7]], [[[4, 5, 6, 8]]])
    before = {k: v.clone() for k, v in metric.metric_state.items()}
    with pytest.raises(ValueError, match=f"`{option}="):
        metric.merge_state(incoming)
    with pytest.raises(ValueError, match="other options"):
        metric.merge_state(incoming.metric_state)
    for key, value in metric.metric_state.items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_merge_state_of_a_stat_dict_with_other_shapes_names_the_state():
    metric, incoming = TokenIDBLEU(), TokenIDBLEU(n_gram=2)
    incoming.update([[4, 5, 6]], [[[4, 5, 6]]])
    state = {k: v for k, v in incoming.metric_state.items() if not k.startswith("_options_")}
    with pytest.raises(ValueError, match="`matches` of shape"):
        metric.merge_state(state)


def test_merge_state_with_the_same_options_is_exact():
    hyps = [[4, 5, 6, 7], [4, 5, 9, 7, 8], [1, 2]]
    refs = [[[4, 5, 6, 8]], [[4, 5, 6, 7, 8], [4, 5]], [[1, 2, 3]]]
    metric, incoming, plain = TokenIDBLEU(), TokenIDBLEU(), TokenIDBLEU()
    metric.update(hyps[:1], refs[:1])
    incoming.update(hyps[1:2], refs[1:2])
    plain.update(hyps[2:], refs[2:])
    metric.merge_state(incoming)
    metric.merge_state({k: v for k, v in plain.metric_state.items() if not k.startswith("_options_")})
    assert metric.compute().item() == pytest.approx(nltk_corpus(hyps, refs, 4), abs=1e-6)


def test_options_marker_stays_out_of_checkpoints():
    metric = TokenIDGLEU(max_len=2)
    metric.persistent(True)
    assert set(metric.state_dict()) == {"matches", "n_all"}
