"""NumPy inputs (what Hugging Face's ``Trainer`` hands ``compute_metrics``) equal the tensor path exactly, and
inputs that hold no data (``meta`` tensors) or are otherwise unsupported raise a clear error naming the argument."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.bleu import TokenIDBLEU
from tensorbleu_metrics.functional import bleu_stats, check_bleu_options, corpus_bleu, sentence_bleu

PAD, EOS = 0, 9
FIELDS = ("matches", "totals", "clamped_totals", "pred_len", "ref_len")
INT_DTYPES = [np.int64, np.int32, np.int16, np.uint8, np.uint16, np.uint32, np.uint64]


def _batch(seed: int, size: int = 6):
    rng = random.Random(seed)
    hyps = [[rng.randint(1, 5) for _ in range(rng.randint(0, 10))] for _ in range(size)]
    refs = [[[rng.randint(1, 5) for _ in range(rng.randint(1, 10))] for _ in range(rng.randint(1, 3))] for _ in hyps]
    return hyps, refs


def _padded(hyps, refs, dtype=np.int64):
    width = max(len(h) for h in hyps) + 1
    preds = np.full((len(hyps), width), PAD, dtype=dtype)
    for i, h in enumerate(hyps):
        preds[i, : len(h)] = h
    n_refs = max(len(rs) for rs in refs)
    ref_width = max(len(r) for rs in refs for r in rs)
    target = np.full((len(refs), n_refs, ref_width), PAD, dtype=dtype)
    for i, rs in enumerate(refs):
        for j, r in enumerate(rs):
            target[i, j, : len(r)] = r
    return preds, target


def _same(got, expected) -> None:
    assert got.shape == expected.shape
    assert torch.equal(got, expected), (got, expected)


@pytest.mark.parametrize("dtype", [torch.uint16, torch.uint32, torch.uint64, torch.uint8, torch.int16])
def test_all_integer_tensor_dtypes_are_token_ids(dtype):
    hyps, refs = _batch(7)
    preds, target = _padded(hyps, refs)
    expected = sentence_bleu(torch.from_numpy(preds), torch.from_numpy(target), pad_id=PAD)
    got = sentence_bleu(torch.from_numpy(preds).to(dtype), torch.from_numpy(target).to(dtype), pad_id=PAD)
    _same(got, expected)
    _same(sentence_bleu([torch.tensor(h, dtype=dtype) for h in hyps], refs), sentence_bleu(hyps, refs))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_padded_numpy_arrays_equal_tensors(dtype):
    hyps, refs = _batch(1)
    preds, target = _padded(hyps, refs, dtype)
    t_preds, t_target = torch.from_numpy(preds.astype(np.int64)), torch.from_numpy(target.astype(np.int64))
    for fn in (sentence_bleu, corpus_bleu):
        for kwargs in ({"smoothing": "method1"}, {"smoothing": "exp", "n_gram": 2}, {"weights": [(1.0,), (0.5, 0.5)]}):
            _same(fn(preds, target, pad_id=PAD, **kwargs), fn(t_preds, t_target, pad_id=PAD, **kwargs))
    stats, t_stats = bleu_stats(preds, target, pad_id=PAD), bleu_stats(t_preds, t_target, pad_id=PAD)
    for key in FIELDS:
        assert torch.equal(getattr(stats, key), getattr(t_stats, key)), key
    # (B, L') target: one reference each
    _same(sentence_bleu(preds, target[:, 0], pad_id=PAD), sentence_bleu(t_preds, t_target[:, 0], pad_id=PAD))


def test_sequences_of_numpy_arrays_equal_lists():
    hyps, refs = _batch(2)
    np_preds = [np.array(h, dtype=np.int32) for h in hyps]
    np_target = [[np.array(r, dtype=np.int64) for r in rs] for rs in refs]
    for fn in (sentence_bleu, corpus_bleu):
        expected = fn(hyps, refs, smoothing="method3")
        _same(fn(np_preds, np_target, smoothing="method3"), expected)
        _same(fn(np_preds, refs, smoothing="method3"), expected)
        _same(fn(hyps, np_target, smoothing="method3"), expected)
    # a (R, L) array of references per sentence follows the (B, R, L) rule (an all-pad row is absent)
    _, target = _padded(hyps, refs)
    per_sentence = list(target)
    _same(sentence_bleu(np_preds, per_sentence, pad_id=PAD), sentence_bleu(hyps, refs, pad_id=PAD))
    # a ragged object array (what np.array of ragged lists gives) is a sequence of sequences
    ragged = np.empty(len(hyps), dtype=object)
    ragged[:] = [np.array(h, dtype=np.int64) for h in hyps]
    _same(sentence_bleu(ragged, refs), sentence_bleu(hyps, refs))


def test_numpy_special_ids_and_eos():
    hyps, refs = _batch(3)
    preds, target = _padded(hyps, refs)
    preds[:, -1] = EOS
    expected = sentence_bleu(torch.from_numpy(preds), torch.from_numpy(target), pad_id=PAD, eos_id=EOS)
    for pad, eos in ((np.int64(PAD), np.int32(EOS)), (np.uint8(PAD), np.int16(EOS))):
        _same(sentence_bleu(preds, target, pad_id=pad, eos_id=eos), expected)
        metric = TokenIDBLEU(pad_id=pad, eos_id=eos, return_sentence_level_score=True)
        metric.update(preds, target)
        _same(metric.compute()[1], expected)
    # the Hugging Face way: -100 marks ignored label positions
    labels = np.where(target[:, 0] == PAD, -100, target[:, 0])
    _same(
        sentence_bleu(preds, labels, pad_id=np.int64(-100), eos_id=EOS),
        sentence_bleu(preds, target[:, 0], pad_id=PAD, eos_id=EOS),
    )


def test_numpy_weights():
    hyps, refs = _batch(4)
    for weights in ([0.1, 0.2, 0.3, 0.4], [[0.25] * 4, [0.5, 0.5, 0.0, 0.0]]):
        array = np.array(weights)
        for fn in (sentence_bleu, corpus_bleu):
            _same(fn(hyps, refs, weights=array), fn(hyps, refs, weights=weights))
            _same(fn(hyps, refs, weights=torch.tensor(weights)), fn(hyps, refs, weights=weights))
    # a list of 1-D arrays of different lengths, and NumPy scalars
    mixed = [np.array([0.5, 0.5]), np.array([1 / 3] * 3, dtype=np.float32)]
    expected = sentence_bleu(hyps, refs, weights=[tuple(float(x) for x in w) for w in mixed])
    _same(sentence_bleu(hyps, refs, weights=mixed), expected)
    assert (
        check_bleu_options(
            n_gram=np.int64(2), weights=np.array([0.5, 0.5]), smooth_value=np.float32(0.5), smoothing="floor"
        )
        == 2
    )
    metric = TokenIDBLEU(weights=np.array([[0.5, 0.5], [1.0, 0.0]]))
    metric.update(hyps, refs)
    _same(metric.compute(), corpus_bleu(hyps, refs, weights=[(0.5, 0.5), (1.0, 0.0)]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_, np.complex64])
def test_numpy_non_integer_arrays_are_type_errors(dtype):
    hyps, refs = _batch(5)
    preds, target = _padded(hyps, refs)
    with pytest.raises(TypeError, match=r"`preds` must hold integer token IDs, got a NumPy"):
        sentence_bleu(preds.astype(dtype), target)
    with pytest.raises(TypeError, match=r"`target` must hold integer token IDs, got a NumPy"):
        corpus_bleu(preds, target.astype(dtype))
    with pytest.raises(TypeError, match=r"`preds\[0\]` must hold integer token IDs"):
        sentence_bleu([np.array(hyps[0] or [1], dtype=dtype)], [refs[0]])
    with pytest.raises(TypeError, match=r"`target\[0\]` must hold integer token IDs"):
        sentence_bleu(preds[:1], [target[0].astype(dtype)])
    metric = TokenIDBLEU()
    with pytest.raises(TypeError, match="preds"):
        metric.update(preds.astype(dtype), target)
    assert metric.matches.sum().item() == 0


def test_numpy_bad_special_ids_and_out_of_range_ids():
    hyps, refs = _batch(6)
    with pytest.raises(TypeError, match="pad_id"):
        sentence_bleu(hyps, refs, pad_id=np.float64(0))
    with pytest.raises(TypeError, match="eos_id"):
        sentence_bleu(hyps, refs, eos_id=np.bool_(True))
    with pytest.raises(ValueError, match="pad_id"):
        sentence_bleu(hyps, refs, pad_id=2**64)
    with pytest.raises(ValueError, match="int64 range"):
        sentence_bleu(np.array([[2**63]], dtype=np.uint64), [[[1]]])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from(INT_DTYPES), smoothing=st.sampled_from(["none", "method2"]))
def test_property_numpy_equals_tensor(seed, dtype, smoothing):
    hyps, refs = _batch(seed, size=1 + seed % 5)
    preds, target = _padded(hyps, refs, dtype)
    t_preds, t_target = torch.from_numpy(preds.astype(np.int64)), torch.from_numpy(target.astype(np.int64))
    for fn in (sentence_bleu, corpus_bleu):
        _same(
            fn(preds, target, pad_id=PAD, smoothing=smoothing), fn(t_preds, t_target, pad_id=PAD, smoothing=smoothing)
        )


# ---- meta and other unsupported tensors ---------------------------------------------------------------------

META = torch.tensor([[1, 2, 3]], device="meta")


@pytest.mark.parametrize(
    ("preds", "target", "name"),
    [
        (META, [[[1, 2]]], "preds"),
        ([[1, 2]], META, "target"),
        ([META[0]], [[[1, 2]]], r"preds"),
        ([[1, 2]], [[META[0]]], "target"),
        ([[1, 2]], [META], "target"),
        (torch.tensor([[1, 2]]), META.unsqueeze(0), "target"),
    ],
)
def test_meta_tensors_give_a_clear_error(preds, target, name):
    for fn in (sentence_bleu, corpus_bleu, bleu_stats):
        with pytest.raises(ValueError, match=rf"`{name}.*'meta' device"):
            fn(preds, target)
    metric = TokenIDBLEU()
    with pytest.raises(ValueError, match="meta"):
        metric.update(preds, target)
    with pytest.raises(ValueError, match="meta"):
        metric(preds, target)
    assert metric.matches.sum().item() == 0


def test_meta_weights_give_a_clear_error():
    for weights in (torch.full((4,), 0.25, device="meta"), [torch.full((2,), 0.5, device="meta")]):
        with pytest.raises(ValueError, match=r"`weights`.*'meta' device"):
            sentence_bleu([[1, 2]], [[[1, 2]]], weights=weights)
        with pytest.raises(ValueError, match="meta"):
            TokenIDBLEU(weights=weights)


@pytest.mark.parametrize(
    ("preds", "error", "match"),
    [
        (torch.tensor([[1, 2]]).to_sparse(), TypeError, "dense"),
        (torch.tensor([[1, 2]], dtype=torch.complex64), TypeError, "integer"),
        (torch.tensor([[2**63 + 5]], dtype=torch.uint64), ValueError, "int64 range"),
        (torch.tensor([[1.0, 2.0]], dtype=torch.bfloat16), TypeError, "integer"),
        ({"a": 1}, TypeError, "preds"),
        ("1 2 3", TypeError, "preds"),
        (torch.tensor(3), ValueError, "preds"),
    ],
)
def test_other_unsupported_preds(preds, error, match):
    with pytest.raises(error, match=match):
        sentence_bleu(preds, [[[1, 2]]])


def test_unsupported_weights():
    with pytest.raises(TypeError, match="weights"):
        sentence_bleu([[1, 2]], [[[1, 2]]], weights=torch.tensor([0.5, 0.5], dtype=torch.complex64))
    with pytest.raises(TypeError, match="weights"):
        sentence_bleu([[1, 2]], [[[1, 2]]], weights=np.array(["a", "b"]))
    with pytest.raises(TypeError, match="weights"):
        sentence_bleu([[1, 2]], [[[1, 2]]], weights={"a": 1})
    with pytest.raises(ValueError, match="weights"):
        sentence_bleu([[1, 2]], [[[1, 2]]], weights=np.zeros((1, 1, 2)))
    for empty in (torch.zeros(0), torch.zeros(0, 4), torch.zeros(2, 0), np.zeros((0, 2)), [], [()]):
        with pytest.raises(ValueError, match="weights"):
            sentence_bleu([[1, 2]], [[[1, 2]]], weights=empty)
