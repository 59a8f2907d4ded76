"""Tests of the ``TokenIDBLEU`` torchmetrics Metric (single process).

The oracles are NLTK's ``corpus_bleu``/``sentence_bleu`` and SacreBLEU's ``corpus_score``/``sentence_score``
on the token IDs, and :mod:`tensorbleu_metrics.functional` on the concatenated data.
"""

from __future__ import annotations

import io
import pickle
import warnings

import pytest
import torch
from corpus_utils import make_corpus, padded, tensor_lists
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu
from sacrebleu.metrics import BLEU
from torchmetrics import Metric, MetricCollection

from tensorbleu_metrics import functional
from tensorbleu_metrics.bleu import TokenIDBLEU

PAD = 0
ABS = 1e-6  # the metric returns float32

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # NLTK's zero-count warnings


# ------------------------------------------------------------------------------------------- data & oracles


def nltk_corpus(preds, refs, n_gram=4, smoothing="method0", weights=None, auto_reweigh=False) -> float:
    weights = tuple(weights) if weights is not None else (1.0 / n_gram,) * n_gram
    fn = getattr(SmoothingFunction(), smoothing)
    return nltk_corpus_bleu(refs, preds, weights=weights, smoothing_function=fn, auto_reweigh=auto_reweigh)


def nltk_sentences(preds, refs, n_gram=4, smoothing="method0") -> list[float]:
    weights = (1.0 / n_gram,) * n_gram
    fn = getattr(SmoothingFunction(), smoothing)
    return [nltk_sentence_bleu(r, p, weights=weights, smoothing_function=fn) for p, r in zip(preds, refs, strict=True)]


def _sacre(n_gram, smoothing, smooth_value, effective_order) -> BLEU:
    return BLEU(
        tokenize="none",
        smooth_method=smoothing,
        smooth_value=smooth_value,
        max_ngram_order=n_gram,
        effective_order=effective_order,
    )


def _join(ids) -> str:
    return " ".join(map(str, ids))


def sacre_corpus(preds, refs, n_gram=4, smoothing="none", smooth_value=None, effective_order=False) -> float:
    n_refs = max(len(r) for r in refs)
    streams = [[_join(r[j]) if j < len(r) else None for r in refs] for j in range(n_refs)]
    bleu = _sacre(n_gram, smoothing, smooth_value, effective_order)
    return bleu.corpus_score([_join(p) for p in preds], streams).score / 100


def sacre_sentences(preds, refs, n_gram=4, smoothing="exp", smooth_value=None, effective_order=True) -> list:
    bleu = _sacre(n_gram, smoothing, smooth_value, effective_order)
    return [bleu.sentence_score(_join(p), [_join(x) for x in r]).score / 100 for p, r in zip(preds, refs, strict=True)]


def chunks(preds, refs, sizes):
    start = 0
    for size in sizes:
        yield preds[start : start + size], refs[start : start + size]
        start += size


def states(metric: TokenIDBLEU) -> dict:
    """A deep copy of every metric state, for before/after comparisons."""
    out = {}
    for key, value in metric.metric_state.items():
        out[key] = [v.clone() for v in value] if isinstance(value, list) else value.clone()
    return out


def assert_same_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], list):
            assert isinstance(b[key], list) and len(a[key]) == len(b[key]), key
            for x, y in zip(a[key], b[key], strict=True):
                assert x.dtype == y.dtype and torch.equal(x, y), key
        else:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


CORPUS = make_corpus(seed=1, n=23)
SIZES = (5, 1, 9, 8)


# --------------------------------------------------------------------------------------------------- basics
def test_class_constants():
    assert TokenIDBLEU.is_differentiable is False
    assert TokenIDBLEU.higher_is_better is True
    assert TokenIDBLEU.full_state_update is False
    assert TokenIDBLEU.plot_lower_bound == 0.0
    assert TokenIDBLEU.plot_upper_bound == 1.0


def test_states_are_int64_sums():
    metric = TokenIDBLEU(n_gram=3)
    states = {"matches", "totals", "clamped_totals", "pred_len", "ref_len", metric._options_state}
    assert set(metric._defaults) == states
    for name in ("matches", "totals", "clamped_totals"):
        assert getattr(metric, name).shape == (3,)
    for name in ("pred_len", "ref_len"):
        assert getattr(metric, name).shape == ()
    for name, value in metric.metric_state.items():
        assert value.dtype == torch.int64, name
        assert metric._reductions[name].__name__ == "dim_zero_sum", name
    # smoothings that look past n_gram keep more orders
    assert TokenIDBLEU(n_gram=4, smoothing="method5").matches.shape == (functional.counted_orders(4, "method5"),)


def test_states_equal_summed_functional_stats():
    preds, refs = CORPUS
    metric = TokenIDBLEU(pad_id=PAD)
    for p, r in chunks(preds, refs, SIZES):
        metric.update(*padded(p, r))
    expected = functional.bleu_stats(*padded(preds, refs), n_gram=4, pad_id=PAD).sum()
    for name in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert torch.equal(getattr(metric, name), getattr(expected, name).to(torch.int64)), name


@pytest.mark.parametrize(
    ("smoothing", "smooth_value", "effective_order"),
    [
        ("none", None, False),
        ("floor", 0.2, False),
        ("add-k", 2, False),
        ("exp", None, False),
        ("exp", None, True),
    ],
)
def test_accumulated_equals_sacrebleu_corpus(smoothing, smooth_value, effective_order):
    preds, refs = CORPUS
    metric = TokenIDBLEU(pad_id=PAD, smoothing=smoothing, smooth_value=smooth_value, effective_order=effective_order)
    forms = [padded, lambda p, r: (p, r), tensor_lists, padded]
    for form, (p, r) in zip(forms, chunks(preds, refs, SIZES), strict=True):
        metric.update(*form(p, r))
    value = metric.compute()
    assert value.dtype == torch.float32 and value.shape == ()
    expected = functional.corpus_bleu(
        preds, refs, smoothing=smoothing, smooth_value=smooth_value, effective_order=effective_order
    )
    assert value.item() == pytest.approx(expected.item(), abs=ABS)
    assert value.item() == pytest.approx(
        sacre_corpus(preds, refs, 4, smoothing, smooth_value, effective_order), abs=ABS
    )


@pytest.mark.parametrize("smoothing", ["method0", "method1", "method2", "method3", "method4"])
@pytest.mark.parametrize("n_gram", [2, 4])
def test_accumulated_equals_nltk_corpus(smoothing, n_gram):
    preds, refs = CORPUS
    metric = TokenIDBLEU(n_gram=n_gram, smoothing=smoothing, pad_id=PAD)
    for p, r in chunks(preds, refs, SIZES):
        metric.update(*padded(p, r))
    value = metric.compute().item()
    assert value == pytest.approx(
        functional.corpus_bleu(preds, refs, n_gram=n_gram, smoothing=smoothing).item(), abs=ABS
    )
    assert value == pytest.approx(nltk_corpus(preds, refs, n_gram, smoothing), abs=ABS)


@pytest.mark.parametrize("smoothing", ["method5", "method6", "method7"])
def test_accumulated_equals_functional_for_corpus_wide_smoothings(smoothing):
    # NLTK's corpus_bleu gives these only the last sentence (documented deviation): compare to the functional
    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing=smoothing)
    for p, r in chunks(preds, refs, SIZES):
        metric.update(p, r)
    expected = functional.corpus_bleu(preds, refs, smoothing=smoothing)
    assert metric.compute().item() == pytest.approx(expected.item(), abs=ABS)
    # ... and with a single sentence NLTK agrees
    single = TokenIDBLEU(smoothing=smoothing)
    single.update(preds[:1], refs[:1])
    assert single.compute().item() == pytest.approx(nltk_corpus(preds[:1], refs[:1], 4, smoothing), abs=ABS)


def test_auto_reweigh_and_custom_weights():
    preds, refs = make_corpus(seed=7, n=6)
    preds[0] = preds[0][:2]  # a short candidate
    weights = (0.4, 0.3, 0.2, 0.1)
    metric = TokenIDBLEU(weights=weights, smoothing="method1", auto_reweigh=True)
    for p, r in chunks(preds, refs, (2, 4)):
        metric.update(p, r)
    expected = nltk_corpus(preds, refs, 4, "method1", weights=weights, auto_reweigh=True)
    assert metric.compute().item() == pytest.approx(expected, abs=ABS)


def test_list_of_weights_gives_k_scores():
    preds, refs = CORPUS
    weight_sets = [(1.0, 0.0, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0), (0.25, 0.25, 0.25, 0.25)]
    metric = TokenIDBLEU(weights=weight_sets, smoothing="method1", return_sentence_level_score=True)
    for p, r in chunks(preds, refs, SIZES):
        metric.update(p, r)
    corpus, sentences = metric.compute()
    assert corpus.shape == (3,) and sentences.shape == (3, len(preds))
    expected = functional.corpus_bleu(preds, refs, weights=weight_sets, smoothing="method1")
    torch.testing.assert_close(corpus, expected.float(), rtol=0, atol=ABS)
    expected_sent = functional.sentence_bleu(preds, refs, weights=weight_sets, smoothing="method1")
    torch.testing.assert_close(sentences, expected_sent.float(), rtol=0, atol=ABS)
    for k, w in enumerate(weight_sets):
        assert corpus[k].item() == pytest.approx(nltk_corpus(preds, refs, 4, "method1", weights=w), abs=ABS)


def test_pad_and_eos_ids():
    preds, refs = make_corpus(seed=3, n=5, max_refs=1)
    eos, pad = 99, -100
    p = torch.full((5, 16), pad)
    t = torch.full((5, 18), pad)
    for i, (hyp, (ref,)) in enumerate(zip(preds, refs, strict=True)):
        p[i, : len(hyp) + 2] = torch.tensor([*hyp, eos, 7])  # tokens after eos are ignored
        t[i, : len(ref) + 1] = torch.tensor([*ref, eos])
    metric = TokenIDBLEU(pad_id=pad, eos_id=eos, smoothing="method1")
    metric.update(p, t)
    assert metric.compute().item() == pytest.approx(nltk_corpus(preds, refs, 4, "method1"), abs=ABS)


def test_forward_returns_batch_value_and_accumulates():
    preds, refs = CORPUS
    metric = TokenIDBLEU(pad_id=PAD, smoothing="method2")
    for p, r in chunks(preds, refs, SIZES):
        batch_value = metric(*padded(p, r))
        assert batch_value.dtype == torch.float32
        assert batch_value.item() == pytest.approx(nltk_corpus(p, r, 4, "method2"), abs=ABS)
    assert metric.update_count == len(SIZES)
    assert metric.compute().item() == pytest.approx(nltk_corpus(preds, refs, 4, "method2"), abs=ABS)


def test_forward_with_dist_sync_on_step_single_process():
    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing="method1", dist_sync_on_step=True, return_sentence_level_score=True)
    for p, r in chunks(preds, refs, SIZES):
        corpus, sentences = metric(p, r)
        assert corpus.item() == pytest.approx(nltk_corpus(p, r, 4, "method1"), abs=ABS)
        assert sentences.shape == (len(p),)
    corpus, sentences = metric.compute()
    assert corpus.item() == pytest.approx(nltk_corpus(preds, refs, 4, "method1"), abs=ABS)
    assert sentences.shape == (len(preds),)


# ------------------------------------------------------------------------------------------- sentence scores
def test_sentence_level_scores_nltk():
    preds, refs = CORPUS
    metric = TokenIDBLEU(pad_id=PAD, smoothing="method4", return_sentence_level_score=True)
    for p, r in chunks(preds, refs, SIZES):
        metric.update(*padded(p, r))
    corpus, sentences = metric.compute()
    assert corpus.dtype == sentences.dtype == torch.float32
    assert sentences.shape == (len(preds),)
    assert corpus.item() == pytest.approx(nltk_corpus(preds, refs, 4, "method4"), abs=ABS)
    expected = torch.tensor(nltk_sentences(preds, refs, 4, "method4"), dtype=torch.float32)
    torch.testing.assert_close(sentences, expected, rtol=0, atol=ABS)
    torch.testing.assert_close(sentences, functional.sentence_bleu(preds, refs, smoothing="method4"), rtol=0, atol=0)


def test_sentence_level_scores_sacrebleu_and_forward():
    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing="exp", effective_order=True, return_sentence_level_score=True)
    seen = []
    for p, r in chunks(preds, refs, SIZES):
        corpus, sentences = metric(*tensor_lists(p, r))
        assert sentences.shape == (len(p),)
        torch.testing.assert_close(
            sentences, torch.tensor(sacre_sentences(p, r), dtype=torch.float32), rtol=0, atol=ABS
        )
        seen.append(sentences)
    corpus, sentences = metric.compute()
    torch.testing.assert_close(sentences, torch.cat(seen), rtol=0, atol=0)
    assert corpus.item() == pytest.approx(sacre_corpus(preds, refs, 4, "exp", None, True), abs=ABS)
    assert metric.sentence_scores[0].dtype == torch.float64


def test_one_element_results_keep_their_shape():
    # torchmetrics squeezes one-element results; the metric keeps (S,), (K,) and (K, S)
    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True)
    corpus, sentences = metric(preds[:1], refs[:1])
    assert corpus.shape == () and sentences.shape == (1,)
    assert metric.compute()[1].shape == (1,)
    metric = TokenIDBLEU(weights=[(0.25,) * 4], smoothing="method1", return_sentence_level_score=True)
    corpus, sentences = metric(preds[:1], refs[:1])
    assert corpus.shape == (1,) and sentences.shape == (1, 1)
    metric.update(preds[1:3], refs[1:3])
    corpus, sentences = metric.compute()
    assert corpus.shape == (1,) and sentences.shape == (1, 3)
    assert TokenIDBLEU(weights=[(0.5, 0.5)], n_gram=2)(preds[:2], refs[:2]).shape == (1,)


def test_compute_before_update():
    metric = TokenIDBLEU(return_sentence_level_score=True)
    with pytest.warns(UserWarning, match="before the ``update``"):
        corpus, sentences = metric.compute()
    assert corpus.item() == 0.0
    assert sentences.shape == (0,) and sentences.dtype == torch.float32
    metric = TokenIDBLEU(weights=[(1.0,), (1.0,)], n_gram=1, return_sentence_level_score=True)
    with pytest.warns(UserWarning):
        corpus, sentences = metric.compute()
    assert corpus.shape == (2,) and sentences.shape == (2, 0)


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"smoothing": "method9"}, ValueError),
        ({"n_gram": 0}, ValueError),
        ({"n_gram": 4, "weights": (0.5, 0.5)}, ValueError),
        ({"effective_order": True, "smoothing": "method1"}, ValueError),
        ({"auto_reweigh": True, "smoothing": "exp"}, ValueError),
        ({"smoothing": "method6", "n_gram": 2}, ValueError),
        ({"pad_id": 0.5}, TypeError),
        ({"eos_id": "2"}, TypeError),
        ({"return_sentence_level_score": 1}, TypeError),
        ({"sync_on_compute": "yes"}, ValueError),
        ({"not_an_option": 1}, ValueError),
    ],
)
def test_invalid_options(kwargs, error):
    with pytest.raises(error):
        TokenIDBLEU(**kwargs)


BAD_INPUTS = [
    pytest.param(torch.tensor([[1.0, 2.0]]), torch.tensor([[1, 2]]), TypeError, "preds", id="float-preds"),
    pytest.param(torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]]), TypeError, "target", id="float-target"),
    pytest.param(torch.tensor([[1, -3]]), torch.tensor([[1, 2]]), ValueError, "negative", id="negative-id"),
    pytest.param(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2]]), ValueError, "must match", id="batch"),
    pytest.param([], [], ValueError, "empty", id="empty-batch"),
    pytest.param([[1, 2]], [[]], ValueError, "no reference", id="no-reference"),
    pytest.param(torch.zeros(1, 1, 1, 2, dtype=torch.long), torch.tensor([[1, 2]]), ValueError, "preds", id="4d"),
]


@pytest.mark.parametrize("use_forward", [False, True], ids=["update", "forward"])
@pytest.mark.parametrize(("preds", "target", "error", "match"), BAD_INPUTS)
def test_failed_update_leaves_state_untouched(preds, target, error, match, use_forward):
    good_p, good_r = CORPUS
    metric = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True)
    metric.update(good_p[:5], good_r[:5])
    metric(good_p[5:9], good_r[5:9])
    before, count = states(metric), metric.update_count
    with pytest.raises(error, match=match):
        if use_forward:
            metric(preds, target)
        else:
            metric.update(preds, target)
    assert_same_states(before, states(metric))
    assert metric.update_count == count
    # and it carries on exactly
    metric.update(good_p[9:], good_r[9:])
    corpus, sentences = metric.compute()
    assert corpus.item() == pytest.approx(nltk_corpus(good_p, good_r, 4, "method1"), abs=ABS)
    assert sentences.shape == (len(good_p),)


# ----------------------------------------------------------------------------------- torchmetrics machinery
def _filled(**kwargs) -> TokenIDBLEU:
    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True, **kwargs)
    for p, r in chunks(preds, refs, SIZES[:2]):
        metric.update(p, r)
    return metric


def _expected(n: int) -> tuple[float, torch.Tensor]:
    preds, refs = CORPUS
    return (
        nltk_corpus(preds[:n], refs[:n], 4, "method1"),
        functional.sentence_bleu(preds[:n], refs[:n], smoothing="method1"),
    )


def _check(metric: TokenIDBLEU, n: int) -> None:
    corpus, sentences = metric.compute()
    exp_corpus, exp_sentences = _expected(n)
    assert corpus.item() == pytest.approx(exp_corpus, abs=ABS)
    torch.testing.assert_close(sentences, exp_sentences.float(), rtol=0, atol=ABS)


def test_reset():
    metric = _filled()
    metric.reset()
    assert metric.update_count == 0 and metric.sentence_scores == []
    assert int(metric.pred_len) == 0 and int(metric.matches.sum()) == 0
    preds, refs = CORPUS
    metric.update(preds[:3], refs[:3])
    _check(metric, 3)


def test_clone_is_independent():
    metric = _filled()
    n = sum(SIZES[:2])
    copy = metric.clone()
    preds, refs = CORPUS
    copy.update(preds[n:], refs[n:])
    _check(copy, len(preds))
    _check(metric, n)


def test_pickle_round_trip():
    metric = _filled()
    n = sum(SIZES[:2])
    restored = pickle.loads(pickle.dumps(metric))
    _check(restored, n)
    preds, refs = CORPUS
    restored.update(preds[n:], refs[n:])  # update/compute wrappers are restored
    _check(restored, len(preds))


def test_state_dict_not_persistent_by_default():
    metric = _filled()
    assert metric.state_dict() == {}
    # a module holding the metric can be saved and loaded strictly into one without metric state keys
    holder = torch.nn.Module()
    holder.bleu = metric
    assert list(holder.state_dict()) == []


def test_state_dict_round_trip_when_persistent():
    metric = _filled()
    n = sum(SIZES[:2])
    metric.persistent(True)
    sd = metric.state_dict()
    assert set(sd) == {"matches", "totals", "clamped_totals", "pred_len", "ref_len", "sentence_scores"}
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True)
    fresh.load_state_dict(loaded)
    for name in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert getattr(fresh, name).dtype == torch.int64
    _check(fresh, n)
    preds, refs = CORPUS
    fresh.update(preds[n:], refs[n:])
    _check(fresh, len(preds))


@pytest.mark.skipif(
    not hasattr(Metric, "merge_state"), reason="Metric.merge_state arrived after torchmetrics 1.3 (the declared floor)"
)
def test_merge_state():
    preds, refs = CORPUS
    a = TokenIDBLEU(smoothing="method3", return_sentence_level_score=True)
    b = TokenIDBLEU(smoothing="method3", return_sentence_level_score=True)
    a.update(preds[:10], refs[:10])
    b.update(preds[10:15], refs[10:15])
    b.update(preds[15:], refs[15:])
    a.merge_state(b)
    corpus, sentences = a.compute()
    assert corpus.item() == pytest.approx(nltk_corpus(preds, refs, 4, "method3"), abs=ABS)
    expected = functional.sentence_bleu(preds, refs, smoothing="method3")
    # torchmetrics puts the incoming sentences first
    torch.testing.assert_close(sentences, torch.cat([expected[10:], expected[:10]]), rtol=0, atol=ABS)
    # merging a dict of states works too
    c = TokenIDBLEU(smoothing="method3")
    c.update(preds[:10], refs[:10])
    d = TokenIDBLEU(smoothing="method3")
    d.update(preds[10:], refs[10:])
    c.merge_state(d.metric_state)
    assert c.compute().item() == pytest.approx(nltk_corpus(preds, refs, 4, "method3"), abs=ABS)


def test_metric_collection():
    preds, refs = CORPUS
    collection = MetricCollection(
        {
            "bleu": TokenIDBLEU(pad_id=PAD),
            "bleu_m1": TokenIDBLEU(pad_id=PAD, smoothing="method1"),
            "bleu2": TokenIDBLEU(pad_id=PAD, n_gram=2),
        },
        prefix="val/",
    )
    for p, r in chunks(preds, refs, SIZES):
        out = collection(*padded(p, r))
        assert out["val/bleu_m1"].item() == pytest.approx(nltk_corpus(p, r, 4, "method1"), abs=ABS)
    result = collection.compute()
    assert result["val/bleu"].item() == pytest.approx(sacre_corpus(preds, refs, 4, "none"), abs=ABS)
    assert result["val/bleu_m1"].item() == pytest.approx(nltk_corpus(preds, refs, 4, "method1"), abs=ABS)
    assert result["val/bleu2"].item() == pytest.approx(sacre_corpus(preds, refs, 2, "none"), abs=ABS)
    collection.reset()
    collection.update(*padded(preds[:4], refs[:4]))
    assert collection.compute()["val/bleu_m1"].item() == pytest.approx(
        nltk_corpus(preds[:4], refs[:4], 4, "method1"), abs=ABS
    )


# ------------------------------------------------------------------------------------------- dtypes, devices
def _big(metric: TokenIDBLEU) -> TokenIDBLEU:
    """Counts past float16's range and float32's integer precision, so any float cast would be visible."""
    base = 2**40 + 1
    metric.matches = torch.tensor([base + 7, base + 5, base + 3, base + 1])
    metric.totals = torch.tensor([base + 9, base + 8, base + 7, base + 6])
    metric.clamped_totals = metric.totals.clone()
    metric.pred_len = torch.tensor(base + 9)
    metric.ref_len = torch.tensor(base + 11)
    metric.sentence_scores = [torch.tensor([0.1234567890123, 1 / 3], dtype=torch.float64)]
    metric._update_count = 1
    return metric


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda m: m.half(), id="half"),
        pytest.param(lambda m: m.bfloat16(), id="bfloat16"),
        pytest.param(lambda m: m.to(torch.bfloat16), id="to-bfloat16"),
        pytest.param(lambda m: m.to(torch.float16), id="to-float16"),
        pytest.param(lambda m: m.to(torch.float64), id="to-float64"),
        pytest.param(lambda m: m.set_dtype(torch.half), id="set_dtype-half"),
        pytest.param(lambda m: m.set_dtype(torch.bfloat16), id="set_dtype-bfloat16"),
        pytest.param(lambda m: m.type(torch.float16), id="type"),
    ],
)
def test_dtype_conversions_keep_states_exact(convert):
    reference = _big(TokenIDBLEU(return_sentence_level_score=True))
    before = states(reference)
    expected = reference.compute()
    metric = _big(TokenIDBLEU(return_sentence_level_score=True))
    metric.compute()  # a cached result must not be rounded either
    metric = convert(metric)
    assert_same_states(before, states(metric))
    for name in ("matches", "totals", "clamped_totals", "pred_len", "ref_len"):
        assert metric._defaults[name].dtype == torch.int64
    corpus, sentences = metric.compute()
    assert corpus.dtype == sentences.dtype == torch.float32
    assert torch.equal(corpus, expected[0]) and torch.equal(sentences, expected[1])
    metric.reset()
    assert_same_states(states(metric), states(TokenIDBLEU(return_sentence_level_score=True)))


def test_low_precision_model_holding_the_metric():
    preds, refs = CORPUS
    model = torch.nn.Module()
    model.linear = torch.nn.Linear(2, 2)
    model.bleu = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True)
    for convert in (lambda m: m.half(), lambda m: m.to(torch.bfloat16), lambda m: m.float()):
        model = convert(model)
        model.bleu.update(preds[:6], refs[:6])
        model.bleu.update(preds[6:], refs[6:])
        corpus, _ = model.bleu.compute()
        assert model.bleu.pred_len.dtype == torch.int64
        assert model.bleu.sentence_scores[0].dtype == torch.float64
        assert corpus.dtype == torch.float32
        assert corpus.item() == pytest.approx(nltk_corpus(preds, refs, 4, "method1"), abs=ABS)
        model.bleu.reset()
    assert model.linear.weight.dtype == torch.float32


def test_to_cpu_and_compute_on_cpu():
    metric = _filled(compute_on_cpu=True).to("cpu")
    assert metric.device.type == "cpu"
    assert all(s.device.type == "cpu" for s in metric.sentence_scores)
    _check(metric, sum(SIZES[:2]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device():
    preds, refs = CORPUS
    metric = TokenIDBLEU(pad_id=PAD, smoothing="method1", return_sentence_level_score=True).to("cuda")
    assert metric.matches.device.type == "cuda"
    for p, r in chunks(preds, refs, SIZES):
        p_t, r_t = padded(p, r)
        metric.update(p_t.cuda(), r_t.cuda())
    metric.update([torch.tensor([1, 2, 3], device="cuda")], [[torch.tensor([1, 2, 3], device="cuda")]])
    corpus, sentences = metric.compute()
    assert corpus.device.type == "cuda" and sentences.device.type == "cuda"
    assert metric.matches.dtype == torch.int64
    all_p, all_r = [*preds, [1, 2, 3]], [*refs, [[1, 2, 3]]]
    assert corpus.item() == pytest.approx(nltk_corpus(all_p, all_r, 4, "method1"), abs=ABS)
    metric = metric.to(torch.bfloat16).cpu()
    assert metric.matches.device.type == "cpu" and metric.sentence_scores[0].dtype == torch.float64
    assert metric.compute()[0].item() == pytest.approx(corpus.item(), abs=0)


# ---------------------------------------------------------------------------------------------------- plot
def test_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preds, refs = CORPUS
    metric = TokenIDBLEU(smoothing="method1")
    values = [metric(p, r) for p, r in chunks(preds, refs, SIZES)]
    fig, ax = metric.plot(values)
    assert fig is not None and ax is not None
    fig, ax = metric.plot()
    assert fig is not None
    sentence_metric = TokenIDBLEU(smoothing="method1", return_sentence_level_score=True)
    outputs = [sentence_metric(p, r) for p, r in chunks(preds, refs, SIZES)]
    fig, ax = sentence_metric.plot(outputs)
    assert fig is not None
    fig, ax = sentence_metric.plot()
    assert fig is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plt.close("all")
