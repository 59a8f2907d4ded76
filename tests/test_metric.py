"""What only ``TokenIDBLEU`` does (single process): its states, NLTK's ``auto_reweigh`` and custom weights, padding
and EOS, ``K`` weight sets' shapes, its options. The checks every Metric shares (functional, NLTK and SacreBLEU
over updates, failed updates, dtypes, copies, DDP) run over its spec in ``tests/test_metric_common.py`` and
``tests/test_metric_ddp.py``.
"""

from __future__ import annotations

import pytest
import torch
from corpus_utils import make_corpus
from metric_harness import BLEU_SPEC
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

from tensorbleu_metrics import functional
from tensorbleu_metrics.bleu import TokenIDBLEU

ABS = 1e-6  # the metric returns float32

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # NLTK's zero-count warnings

CORPUS = BLEU_SPEC.corpus


def nltk_corpus(preds, refs, n_gram=4, smoothing="method0", weights=None, auto_reweigh=False) -> float:
    weights = tuple(weights) if weights is not None else (1.0 / n_gram,) * n_gram
    fn = getattr(SmoothingFunction(), smoothing)
    return nltk_corpus_bleu(refs, preds, weights=weights, smoothing_function=fn, auto_reweigh=auto_reweigh)


# --------------------------------------------------------------------------------------------------- basics
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


def test_auto_reweigh_and_custom_weights():
    preds, refs = make_corpus(seed=7, n=6)
    preds[0] = preds[0][:2]  # a short candidate
    weights = (0.4, 0.3, 0.2, 0.1)
    metric = TokenIDBLEU(weights=weights, smoothing="method1", auto_reweigh=True)
    metric.update(preds[:2], refs[:2])
    metric.update(preds[2:], refs[2:])
    expected = nltk_corpus(preds, refs, 4, "method1", weights=weights, auto_reweigh=True)
    assert metric.compute().item() == pytest.approx(expected, abs=ABS)


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


def test_one_element_results_keep_their_shape():
    # torchmetrics squeezes one-element results; the metric keeps (K,) and (K, S) (and (S,): the shared checks)
    preds, refs = CORPUS
    metric = TokenIDBLEU(weights=[(0.25,) * 4], smoothing="method1", return_sentence_level_score=True)
    corpus, sentences = metric(preds[:1], refs[:1])
    assert corpus.shape == (1,) and sentences.shape == (1, 1)
    metric.update(preds[1:3], refs[1:3])
    corpus, sentences = metric.compute()
    assert corpus.shape == (1,) and sentences.shape == (1, 3)
    assert TokenIDBLEU(weights=[(0.5, 0.5)], n_gram=2)(preds[:2], refs[:2]).shape == (1,)


def test_compute_before_update_with_weight_sets():
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
    ],
)
def test_invalid_options(kwargs, error):
    with pytest.raises(error):
        TokenIDBLEU(**kwargs)


def test_nltk_sentence_oracle_for_the_spec_corpus():
    # the functional reference of the shared checks agrees with NLTK sentence by sentence, in float64
    preds, refs = CORPUS
    fn = SmoothingFunction().method1
    expected = [nltk_sentence_bleu(r, p, smoothing_function=fn) for p, r in zip(preds, refs, strict=True)]
    got = functional.sentence_bleu(preds, refs, smoothing="method1", dtype=torch.float64)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
