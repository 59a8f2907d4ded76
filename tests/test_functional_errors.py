"""Invalid inputs and options raise ValueError/TypeError whose message names the offending argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tensorbleu_metrics import TokenIDGLEU
from tensorbleu_metrics import functional as F
from tensorbleu_metrics.functional import (
    bleu_from_stats,
    bleu_stats,
    check_bleu_options,
    corpus_bleu,
    sentence_bleu,
)

ENTRY_POINTS = [sentence_bleu, corpus_bleu, bleu_stats]
SCORERS = [sentence_bleu, corpus_bleu]
GOOD_PREDS = [[1, 2, 3, 4], [2, 3]]
GOOD_TARGET = [[[1, 2, 3, 4, 5]], [[2, 3], [3]]]

ids = pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
scorer_ids = pytest.mark.parametrize("fn", SCORERS, ids=lambda f: f.__name__)

_OPTION_DEFAULTS = {
    "n_gram": 4,
    "weights": None,
    "smoothing": "none",
    "smooth_value": None,
    "effective_order": False,
    "auto_reweigh": False,
}


def _options(**overrides):
    return {**_OPTION_DEFAULTS, **overrides}


def test_valid_inputs_do_not_raise():
    """The baseline the error cases perturb is itself valid."""
    for fn in ENTRY_POINTS:
        fn(GOOD_PREDS, GOOD_TARGET)
    check_bleu_options(**_options())
    assert sentence_bleu(GOOD_PREDS, GOOD_TARGET).shape == (2,)


# ----------------------------------------------------------------------------------------------------- inputs


@ids
@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64])
def test_float_preds_tensor(fn, float_dtype):
    preds = torch.tensor([[1, 2, 3, 4]], dtype=float_dtype)
    with pytest.raises((TypeError, ValueError), match="preds"):
        fn(preds, torch.tensor([[1, 2, 3, 4]]))
    with pytest.raises((TypeError, ValueError), match="preds"):
        fn([torch.tensor([1.0, 2.0])], [[[1, 2]]])


@ids
def test_float_target_tensor(fn):
    with pytest.raises((TypeError, ValueError), match="target"):
        fn(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    with pytest.raises((TypeError, ValueError), match="target"):
        fn(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]))
    with pytest.raises((TypeError, ValueError), match="target"):
        fn([[1, 2]], [[torch.tensor([1.0, 2.0])]])


@ids
def test_negative_ids(fn):
    with pytest.raises(ValueError, match="preds"):
        fn([[1, -3, 2]], [[[1, 2]]])
    with pytest.raises(ValueError, match="target"):
        fn([[1, 2]], [[[1, -3]]])
    with pytest.raises(ValueError, match="preds"):
        fn(torch.tensor([[1, -5, 2]]), torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="target"):
        fn(torch.tensor([[1, 2, 3]]), torch.tensor([[[1, 2, -5]]]))
    # pad_id=-1 / eos_id=-2 are allowed, but any other negative value is not
    fn(torch.tensor([[1, -1, 2, -2, 9]]), torch.tensor([[1, 2, -1]]), pad_id=-1, eos_id=-2)
    with pytest.raises(ValueError, match="preds"):
        fn(torch.tensor([[1, -3, 2]]), torch.tensor([[1, 2, -1]]), pad_id=-1, eos_id=-2)
    with pytest.raises(ValueError, match="target"):
        fn(torch.tensor([[1, 2]]), torch.tensor([[1, -3, -1]]), pad_id=-1, eos_id=-2)


@ids
def test_batch_size_mismatch(fn):
    with pytest.raises(ValueError, match=r"preds|target"):
        fn([[1, 2], [3]], [[[1, 2]]])
    with pytest.raises(ValueError, match=r"preds|target"):
        fn(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 4], [5, 6]]))
    with pytest.raises(ValueError, match=r"preds|target"):
        fn(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[[1, 2]]]))
    with pytest.raises(ValueError, match=r"preds|target"):
        fn(torch.tensor([[1, 2], [3, 4]]), [[[1, 2]], [[3]], [[4]]])


@ids
def test_empty_batch(fn):
    with pytest.raises(ValueError, match="preds"):
        fn([], [])
    with pytest.raises(ValueError, match="preds"):
        fn(torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0, 4, dtype=torch.int64))


@ids
def test_sentence_without_reference(fn):
    with pytest.raises(ValueError, match="target"):
        fn([[1, 2], [3]], [[[1, 2]], []])
    all_pad = torch.tensor([[[1, 2, 3], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    with pytest.raises(ValueError, match="target"):
        fn(torch.tensor([[1, 2], [3, 4]]), all_pad, pad_id=0)


@ids
def test_four_d_tensors(fn):
    with pytest.raises((TypeError, ValueError), match="preds"):
        fn(torch.ones(1, 1, 2, 3, dtype=torch.int64), torch.ones(1, 3, dtype=torch.int64))
    with pytest.raises((TypeError, ValueError), match="target"):
        fn(torch.ones(1, 3, dtype=torch.int64), torch.ones(1, 1, 2, 3, dtype=torch.int64))


# ---------------------------------------------------------------------------------------------------- options


@scorer_ids
@pytest.mark.parametrize("smoothing", ["add_k", "method8", "Method1", "", "nltk"])
def test_unknown_smoothing(fn, smoothing):
    with pytest.raises(ValueError, match="smoothing"):
        fn(GOOD_PREDS, GOOD_TARGET, smoothing=smoothing)


@scorer_ids
@pytest.mark.parametrize(
    ("n_gram", "weights"),
    [
        (4, (0.5, 0.5)),
        (2, (0.2, 0.2, 0.6)),
        (2, [(0.5, 0.5, 0.0), (1.0,)]),  # a tuple longer than n_gram
        (4, [(0.5, 0.5, 0.0), (1.0,)]),  # n_gram longer than every tuple
        (None, [(0.5, 0.5), ()]),  # an empty tuple
    ],
)
def test_weights_of_wrong_length(fn, n_gram, weights):
    with pytest.raises((TypeError, ValueError), match="weights"):
        fn(GOOD_PREDS, GOOD_TARGET, n_gram=n_gram, weights=weights)


@ids
@pytest.mark.parametrize("n_gram", [0, -1])
def test_n_gram_below_one(fn, n_gram):
    with pytest.raises(ValueError, match="n_gram"):
        fn(GOOD_PREDS, GOOD_TARGET, n_gram=n_gram)


@scorer_ids
@pytest.mark.parametrize("n_gram", [1, 2])
def test_method6_needs_trigrams(fn, n_gram):
    with pytest.raises(ValueError, match=r"n_gram|method6|smoothing"):
        fn(GOOD_PREDS, GOOD_TARGET, n_gram=n_gram, smoothing="method6")


@scorer_ids
@pytest.mark.parametrize("smoothing", ["method0", "method3", "method7"])
def test_effective_order_only_with_sacrebleu_methods(fn, smoothing):
    with pytest.raises(ValueError, match="effective_order"):
        fn(GOOD_PREDS, GOOD_TARGET, smoothing=smoothing, effective_order=True)


@scorer_ids
@pytest.mark.parametrize("smoothing", ["none", "floor", "add-k", "exp"])
def test_auto_reweigh_only_with_nltk_methods(fn, smoothing):
    with pytest.raises(ValueError, match="auto_reweigh"):
        fn(GOOD_PREDS, GOOD_TARGET, smoothing=smoothing, auto_reweigh=True)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"smoothing": "bogus"}, "smoothing"),
        ({"n_gram": 0}, "n_gram"),
        ({"weights": (0.5, 0.5)}, "weights"),
        ({"smoothing": "method6", "n_gram": 2}, "n_gram|method6|smoothing"),
        ({"smoothing": "method1", "effective_order": True}, "effective_order"),
        ({"smoothing": "exp", "auto_reweigh": True}, "auto_reweigh"),
    ],
)
def test_check_bleu_options(overrides, name):
    with pytest.raises((TypeError, ValueError), match=name):
        check_bleu_options(**_options(**overrides))


def test_bleu_from_stats_options_are_checked():
    stats = bleu_stats(GOOD_PREDS, GOOD_TARGET, n_gram=4)
    with pytest.raises(ValueError, match="smoothing"):
        bleu_from_stats(stats, smoothing="bogus")
    with pytest.raises(ValueError, match="weights"):
        bleu_from_stats(stats, n_gram=4, weights=(0.5, 0.5))


def test_bleu_from_stats_needs_enough_orders():
    """method5/method7 need the 5-gram statistics: stats counted with n_gram=4 are not enough."""
    stats = bleu_stats(GOOD_PREDS, GOOD_TARGET, n_gram=4)
    bleu_from_stats(stats, smoothing="method4")  # enough
    with pytest.raises(ValueError, match=r"stats|n_gram|order"):
        bleu_from_stats(stats, smoothing="method5")
    with pytest.raises(ValueError, match=r"stats|n_gram|order"):
        bleu_from_stats(bleu_stats(GOOD_PREDS, GOOD_TARGET, n_gram=3), n_gram=4)


def test_validate_false_trusts_values_without_failing() -> None:
    """``validate=False`` skips the value checks: valid input scores the same, invalid input gives finite scores."""
    preds = torch.tensor([[1, 2, 3, 4, 0], [5, 6, 7, 0, 0]])
    target = torch.tensor([[[1, 2, 3, 4, 0], [0, 0, 0, 0, 0]], [[5, 6, 8, 0, 0], [5, 6, 7, 9, 0]]])
    for fn in (sentence_bleu, corpus_bleu):
        assert torch.equal(fn(preds, target, pad_id=0), fn(preds, target, pad_id=0, validate=False))
    bad_preds = torch.tensor([[1, -7, 3, 4, 0], [5, 6, 7, -(2**62), 0]])
    with pytest.raises(ValueError, match="negative token ID"):
        sentence_bleu(bad_preds, target, pad_id=0)
    scores = sentence_bleu(bad_preds, target, pad_id=0, validate=False)
    assert bool(torch.isfinite(scores).all())
    no_ref = torch.zeros_like(target)
    with pytest.raises(ValueError, match="no reference"):
        sentence_bleu(preds, no_ref, pad_id=0)
    assert torch.equal(sentence_bleu(preds, no_ref, pad_id=0, validate=False), torch.zeros(2))
    with pytest.raises(TypeError, match="`validate`"):
        sentence_bleu(preds, target, validate=1)


def test_gleu_validate_false_trusts_values_without_failing() -> None:
    """GLEU takes ``validate`` as BLEU does: the same scores for valid input, finite ones for invalid input."""
    from tensorbleu_metrics.functional import corpus_gleu, gleu_stats, sentence_gleu

    preds = torch.tensor([[1, 2, 3, 4, 0], [5, 6, 7, 0, 0]])
    target = torch.tensor([[[1, 2, 3, 4, 0], [0, 0, 0, 0, 0]], [[5, 6, 8, 0, 0], [5, 6, 7, 9, 0]]])
    for fn in (sentence_gleu, corpus_gleu):
        assert torch.equal(fn(preds, target, pad_id=0), fn(preds, target, pad_id=0, validate=False))
    checked, trusted = gleu_stats(preds, target, pad_id=0), gleu_stats(preds, target, pad_id=0, validate=False)
    assert all(torch.equal(a, b) for a, b in zip(checked, trusted, strict=True))
    bad_preds = torch.tensor([[1, -7, 3, 4, 0], [5, 6, 7, -(2**62), 0]])
    with pytest.raises(ValueError, match="negative token ID"):
        sentence_gleu(bad_preds, target, pad_id=0)
    assert bool(torch.isfinite(sentence_gleu(bad_preds, target, pad_id=0, validate=False)).all())
    with pytest.raises(ValueError, match="no reference"):
        sentence_gleu(preds, torch.zeros_like(target), pad_id=0)
    assert torch.equal(sentence_gleu(preds, torch.zeros_like(target), pad_id=0, validate=False), torch.zeros(2))
    with pytest.raises(TypeError, match="`validate`"):
        corpus_gleu(preds, target, validate="no")


# ---- integer arguments: one check, NumPy integers welcome, errors that name the argument ----

_NUMPY_INT_CALLS = {
    "sentence_gleu min/max_len": lambda: F.sentence_gleu(
        [[1, 2]], [[[1, 2]]], min_len=np.int64(1), max_len=np.int32(2)
    ),
    "TokenIDGLEU min/max_len": lambda: TokenIDGLEU(min_len=np.int64(1), max_len=np.uint8(3)),
    "distinct_ngrams n_gram": lambda: F.distinct_ngrams([[1, 2]], n_gram=np.int64(2)),
    "self_bleu n_gram": lambda: F.self_bleu([[1, 2], [1, 2]], n_gram=np.int16(2)),
    "self_bleu NumPy groups": lambda: F.self_bleu([[1, 2], [1, 2]], groups=np.array([0, 0])),
    "self_bleu groups of NumPy ints": lambda: F.self_bleu([[1, 2], [1, 2]], groups=[np.int64(3), np.int64(3)]),
    "bleu_stats n_gram": lambda: F.bleu_stats([[1, 2]], [[[1, 2]]], n_gram=np.int64(2)),
    "rouge_score sep_id": lambda: F.rouge_score([[1, 2]], [[[1, 2]]], rouge_keys="rougeLsum", sep_id=np.int64(9)),
}


@pytest.mark.parametrize("call", list(_NUMPY_INT_CALLS.values()), ids=list(_NUMPY_INT_CALLS))
def test_numpy_integers_work_where_python_ints_do(call):
    call()


def test_numpy_integer_options_score_as_python_ints():
    got = F.self_bleu([[1, 2, 3], [1, 2, 4], [5]], groups=np.array([0, 0, 1]), n_gram=np.int64(2))
    torch.testing.assert_close(got, F.self_bleu([[1, 2, 3], [1, 2, 4], [5]], groups=[0, 0, 1], n_gram=2))
    got = F.sentence_gleu([[1, 2, 3]], [[[1, 2, 4]]], min_len=np.int64(2), max_len=np.int64(3))
    torch.testing.assert_close(got, F.sentence_gleu([[1, 2, 3]], [[[1, 2, 4]]], min_len=2, max_len=3))


_BAD_ARGUMENTS = [
    (lambda: F.rouge_score([[1]], [[[1]]], rouge_keys="rougeLsum", sep_id=2**70), ValueError, "`sep_id`"),
    (lambda: F.rouge_score([[1]], [[[1]]], rouge_keys="rougeLsum", sep_id=1.0), TypeError, "`sep_id`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=[0, 2**70]), ValueError, r"`groups\[1\]`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=[0.0, 1.0]), TypeError, r"`groups\[0\]`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=[True, False]), TypeError, r"`groups\[0\]`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=torch.tensor([0.0, 1.0])), TypeError, "`groups`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=np.array([0.0, 1.0])), TypeError, "`groups`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=torch.tensor([0, 1], device="meta")), ValueError, "`groups`"),
    (lambda: F.self_bleu([[1, 2], [3, 4]], groups=torch.tensor([0, 1]).to_sparse()), TypeError, "`groups`"),
    (lambda: F.distinct_ngrams([[1, 2]], groups=torch.tensor([0, 1], device="meta")), ValueError, "`groups`"),
    (lambda: F.distinct_ngrams([[1, 2]], n_gram=2.0), TypeError, "`n_gram`"),
    (lambda: F.distinct_ngrams([[1, 2]], n_gram=0), ValueError, "`n_gram`"),
    (lambda: F.bleu_stats([[1, 2]], [[[1, 2]]], n_gram=None), TypeError, "`n_gram`"),
    (lambda: F.bleu_stats([[1, 2]], [[[1, 2]]], n_gram=0), ValueError, "`n_gram`"),
    (lambda: F.sentence_gleu([[1, 2]], [[[1, 2]]], min_len=np.float64(1)), TypeError, "`min_len`"),
    (lambda: F.sentence_gleu([[1, 2]], [[[1, 2]]], max_len=True), TypeError, "`max_len`"),
    (lambda: bleu_from_stats(tuple(bleu_stats([[1, 2]], [[[1, 2]]])), n_gram=4), TypeError, "`stats`.*BLEUStats"),
    (lambda: F.gleu_from_stats((torch.tensor([1]), torch.tensor([2]))), TypeError, "`stats`.*GLEUStats"),
    (lambda: F.gleu_from_stats(F.GLEUStats(torch.tensor([1.0]), torch.tensor([2]))), TypeError, r"`stats\.matches`"),
]


@pytest.mark.parametrize(("call", "error", "match"), _BAD_ARGUMENTS)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_single_reference_not_wrapped_shows_the_accepted_form():
    with pytest.raises(TypeError, match=r"target=\[\[ref_0\], \[ref_1\], \.\.\.\]"):
        corpus_bleu([[5, 6, 7]], [[5, 6, 7]])


@pytest.mark.parametrize(("item", "what"), [(None, "None"), ("1 2", "'1 2'"), (3.5, "float")])
def test_a_bad_reference_is_described_as_what_it_is(item, what):
    with pytest.raises(TypeError, match=rf"`target\[1\]\[0\]` is {what}") as info:
        sentence_bleu([[1], [1]], [[[1]], [item]])
    assert "list of ints" not in str(info.value)
