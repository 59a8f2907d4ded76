"""Every accepted input form gives the same statistics and scores (the contract's "Inputs" paragraph)."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional import bleu_from_stats, bleu_stats, corpus_bleu, sentence_bleu

FIELDS = ("matches", "totals", "clamped_totals", "pred_len", "ref_len")
PAD = 0
EOS = 9  # token IDs in these batches are 1..5; 9 never occurs as a token


def _t(seq, device, dtype=torch.int64) -> torch.Tensor:
    return torch.tensor(list(seq), dtype=dtype, device=device)


def _assert_same_stats(got, expected, what: str = "") -> None:
    for key in FIELDS:
        a, b = getattr(got, key), getattr(expected, key)
        assert a.dtype == torch.int64, f"{what}: {key} dtype {a.dtype}"
        assert torch.equal(a.cpu(), b.cpu()), f"{what}: {key} {a.tolist()} != {b.tolist()}"


def _assert_same_scores(got: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    assert got.shape == expected.shape, what
    assert torch.allclose(got.cpu().double(), expected.cpu().double(), rtol=0, atol=1e-12), (
        f"{what}: {got.tolist()} != {expected.tolist()}"
    )


def _random_batch(seed: int, size: int = 7, empty_refs: bool = False):
    rng = random.Random(seed)
    hyps, refs = [], []
    for i in range(size):
        hyps.append([rng.randint(1, 5) for _ in range(0 if i == 1 else rng.randint(0, 11))])
        low = 0 if empty_refs else 1
        refs.append([[rng.randint(1, 5) for _ in range(rng.randint(low, 11))] for _ in range(rng.randint(1, 4))])
    if empty_refs:
        refs[0] = [[], [1, 2, 3]]
        refs[2] = [[]]
    return hyps, refs


def _pad_rows(seqs, width, fill, device, dtype=torch.int64):
    out = torch.full((len(seqs), width), fill, dtype=dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(list(s), dtype=dtype)
    return out.to(device)


def _eos_rows(seqs, width, rng, garbage, device, dtype=torch.int64):
    """Each row: the sequence, EOS, then garbage (tokens that would match, EOS again, PAD) up to ``width``."""
    rows = []
    for s in seqs:
        tail = [rng.choice(garbage) for _ in range(width - len(s) - 1)]
        rows.append([*s, EOS, *tail])
    return torch.tensor(rows, dtype=dtype, device=device)


def _forms(hyps, refs, device, seed: int = 0):
    """The same batch in every accepted form: (name, preds, target, kwargs)."""
    rng = random.Random(seed)
    n_refs = max(len(rs) for rs in refs)
    width = max(len(s) for s in hyps + [r for rs in refs for r in rs]) + 3
    garbage = [1, 2, 3, 4, 5, EOS, PAD]
    forms = [("lists", hyps, refs, {})]
    forms.append(
        (
            "lists of 1-D tensors",
            [_t(h, device) for h in hyps],
            [[_t(r, device) for r in rs] for rs in refs],
            {},
        )
    )
    # eos-truncated tensors, absent references as all-PAD rows (an empty reference is a row starting with EOS)
    preds_eos = _eos_rows(hyps, width, rng, garbage, device)
    target_eos = torch.full((len(refs), n_refs, width), PAD, dtype=torch.int64)
    for i, rs in enumerate(refs):
        target_eos[i, : len(rs)] = _eos_rows(rs, width, rng, garbage, "cpu")
    forms.append(("eos-truncated tensors", preds_eos, target_eos.to(device), {"pad_id": PAD, "eos_id": EOS}))
    if all(len(r) > 0 for rs in refs for r in rs):
        preds_pad = _pad_rows(hyps, width, PAD, device)
        target_pad = torch.full((len(refs), n_refs, width), PAD, dtype=torch.int64)
        for i, rs in enumerate(refs):
            target_pad[i, : len(rs)] = _pad_rows(rs, width, PAD, "cpu")
        forms.append(("padded (B, L) / (B, R, L') tensors", preds_pad, target_pad.to(device), {"pad_id": PAD}))
        forms.append(
            (
                "padded preds, per-sentence (R_i, L) target tensors",
                preds_pad,
                [_pad_rows(rs, width, PAD, device) for rs in refs],
                {"pad_id": PAD},
            )
        )
    return forms


@pytest.mark.parametrize("empty_refs", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_all_input_forms_agree(device, seed, empty_refs):
    hyps, refs = _random_batch(seed, empty_refs=empty_refs)
    forms = _forms(hyps, refs, device, seed)
    assert len(forms) == (3 if empty_refs else 5)
    base_stats = bleu_stats(hyps, refs, n_gram=5)
    base_sent = sentence_bleu(hyps, refs, smoothing="method1", dtype=torch.float64)
    base_corp = corpus_bleu(hyps, refs, smoothing="exp", dtype=torch.float64)
    assert base_stats.pred_len.tolist() == [len(h) for h in hyps]
    for name, preds, target, kwargs in forms:
        stats = bleu_stats(preds, target, n_gram=5, **kwargs)
        _assert_same_stats(stats, base_stats, name)
        sent = sentence_bleu(preds, target, smoothing="method1", dtype=torch.float64, **kwargs)
        _assert_same_scores(sent, base_sent, name)
        corp = corpus_bleu(preds, target, smoothing="exp", dtype=torch.float64, **kwargs)
        _assert_same_scores(corp, base_corp, name)
        if name != "lists":
            assert stats.matches.device.type == device.type, name
            assert sent.device.type == device.type, name
            assert corp.device.type == device.type, name


def test_two_d_target_equals_three_d_with_one_reference(device):
    hyps, refs = _random_batch(3)
    single = [rs[:1] for rs in refs]
    width = max(len(rs[0]) for rs in single) + 2
    target_2d = _pad_rows([rs[0] for rs in single], width, PAD, device)
    preds = _pad_rows(hyps, max(len(h) for h in hyps) + 1, PAD, device)
    s2 = bleu_stats(preds, target_2d, pad_id=PAD)
    s3 = bleu_stats(preds, target_2d.unsqueeze(1), pad_id=PAD)
    _assert_same_stats(s2, s3, "2-D vs 3-D")
    _assert_same_stats(s2, bleu_stats(hyps, single), "2-D vs lists")
    for smoothing in ("none", "method4"):
        _assert_same_scores(
            sentence_bleu(preds, target_2d, pad_id=PAD, smoothing=smoothing, dtype=torch.float64),
            sentence_bleu(preds, target_2d.unsqueeze(1), pad_id=PAD, smoothing=smoothing, dtype=torch.float64),
            smoothing,
        )


def test_two_d_all_pad_row_is_an_empty_reference(device):
    """In a (B, L') target an all-padding row is an empty reference (length 0), not an absent one."""
    hyps = [[1, 2, 3], [4, 5]]
    target = _pad_rows([[1, 2, 3, 4], []], 5, PAD, device)
    preds = _pad_rows(hyps, 4, PAD, device)
    stats = bleu_stats(preds, target, pad_id=PAD)
    _assert_same_stats(stats, bleu_stats(hyps, [[[1, 2, 3, 4]], [[]]]), "empty reference")
    assert stats.ref_len.tolist() == [4, 0]
    assert stats.matches[1].tolist() == [0, 0, 0, 0]


def test_three_d_all_pad_rows_are_absent_references(device):
    hyps = [[1, 2, 3, 4, 5], [2, 2, 3], [5, 4, 3, 2, 1, 1]]
    refs_full = [
        [[1, 2, 3], None, [1, 2, 3, 4, 5, 6, 7]],  # middle reference absent
        [None, None, [2, 2, 3, 3]],  # only the last one present
        [[5, 4], [4, 3, 2, 1, 1], None],
    ]
    refs = [[r for r in rs if r is not None] for rs in refs_full]
    target = torch.full((3, 3, 8), PAD, dtype=torch.int64)
    for i, rs in enumerate(refs_full):
        for j, r in enumerate(rs):
            if r is not None:
                target[i, j, : len(r)] = torch.tensor(r)
    preds = _pad_rows(hyps, 7, PAD, device)
    target = target.to(device)
    stats = bleu_stats(preds, target, pad_id=PAD)
    expected = bleu_stats(hyps, refs)
    _assert_same_stats(stats, expected, "absent rows")
    # an absent row would otherwise be an empty reference: hyp 1 (length 3) would take ref length 0 < 4
    assert stats.ref_len.tolist() == [3, 4, 5]
    for smoothing in ("none", "method3"):
        _assert_same_scores(
            corpus_bleu(preds, target, pad_id=PAD, smoothing=smoothing, dtype=torch.float64),
            corpus_bleu(hyps, refs, smoothing=smoothing, dtype=torch.float64),
            smoothing,
        )


def test_three_d_without_pad_id_keeps_every_row(device):
    """Without pad_id there is no padding: a row of zeros is a reference of zeros."""
    hyps = [[0, 0, 0, 0], [1, 2, 3, 7]]
    refs = [[[1, 2, 3, 4], [0, 0, 0, 0]], [[1, 2, 3, 0], [0, 0, 0, 0]]]
    stats = bleu_stats(torch.tensor(hyps, device=device), torch.tensor(refs, device=device))
    _assert_same_stats(stats, bleu_stats(hyps, refs), "no pad_id")
    assert stats.matches[0].tolist() == [4, 3, 2, 1]


@pytest.mark.parametrize("as_tensor", [False, True])
def test_pad_positions_anywhere_are_ignored(device, as_tensor):
    hyps = [[1, 2, 3, 4, 2, 3], [5, 5, 1]]
    refs = [[[1, 2, 3, 4, 2]], [[5, 1, 5], [2, 2]]]
    p = 7  # pad ID interleaved everywhere
    hyps_p = [[1, p, 2, 3, p, p, 4, 2, 3, p], [p, 5, 5, p, 1]]
    refs_p = [[[p, 1, 2, p, 3, 4, 2]], [[5, 1, p, 5], [2, p, p, 2, p]]]
    if as_tensor:
        preds = _pad_rows(hyps_p, 11, p, device)
        target = torch.full((2, 2, 8), p, dtype=torch.int64)
        for i, rs in enumerate(refs_p):
            for j, r in enumerate(rs):
                target[i, j, : len(r)] = torch.tensor(r)
        target = target.to(device)
    else:
        preds = [_t(h, device) for h in hyps_p]
        target = refs_p
    stats = bleu_stats(preds, target, pad_id=p)
    _assert_same_stats(stats, bleu_stats(hyps, refs), "pad in the middle")
    assert stats.pred_len.tolist() == [6, 3]
    # had the pads counted, (1, 2) would not be a bigram of the first candidate
    assert stats.matches[0].tolist()[1] == 4


def test_eos_ends_sequences_in_lists_and_tensors(device):
    hyps = [[1, 2, 3, EOS, 1, 2, 3, 4], [EOS, 4, 4]]
    refs = [[[1, 2, 3, 4, EOS, 5]], [[4, 4, EOS], [EOS]]]
    clean_h = [[1, 2, 3], []]
    clean_r = [[[1, 2, 3, 4]], [[4, 4], []]]
    expected = bleu_stats(clean_h, clean_r)
    _assert_same_stats(bleu_stats(hyps, refs, eos_id=EOS), expected, "lists")
    preds = torch.tensor([hyps[0], [EOS, 4, 4, 1, 2, 3, 4, 5]], device=device)
    target = torch.tensor(
        [[[1, 2, 3, 4, EOS, 5], [EOS, 1, 2, 3, 4, 5]], [[4, 4, EOS, 3, 3, 3], [EOS, 4, 4, 4, 4, 4]]],
        device=device,
    )
    got = bleu_stats(preds, target, eos_id=EOS)
    _assert_same_stats(got, bleu_stats(clean_h, [[[1, 2, 3, 4], []], [[4, 4], []]]), "tensors")
    assert got.pred_len.tolist() == [3, 0]


def test_negative_pad_and_eos_ids_are_allowed(device):
    hyps = [[1, 2, 3, 4], [3, 3]]
    refs = [[[1, 2, 3]], [[3, 3, 3], [4]]]
    preds = torch.tensor([[1, -1, 2, 3, 4, -2, 7, 7], [3, 3, -2, -1, -1, 8, 8, 8]], device=device)
    target = torch.tensor(
        [[[1, 2, 3, -2, 9], [-1, -1, -1, -1, -1]], [[3, -1, 3, 3, -1], [4, -2, 4, 4, 4]]], device=device
    )
    stats = bleu_stats(preds, target, pad_id=-1, eos_id=-2)
    _assert_same_stats(stats, bleu_stats(hyps, refs), "negative specials")
    _assert_same_scores(
        sentence_bleu(preds, target, pad_id=-1, eos_id=-2, dtype=torch.float64),
        sentence_bleu(hyps, refs, dtype=torch.float64),
    )


@pytest.mark.parametrize("int_dtype", [torch.int32, torch.int64, torch.uint8])
def test_integer_dtypes(device, int_dtype):
    hyps, refs = _random_batch(5)
    n_refs = max(len(rs) for rs in refs)
    preds = _pad_rows(hyps, 13, PAD, device, int_dtype)
    target = torch.full((len(refs), n_refs, 12), PAD, dtype=int_dtype)
    for i, rs in enumerate(refs):
        target[i, : len(rs)] = _pad_rows(rs, 12, PAD, "cpu", int_dtype)
    target = target.to(device)
    expected = bleu_stats(hyps, refs)
    _assert_same_stats(bleu_stats(preds, target, pad_id=PAD), expected, str(int_dtype))
    _assert_same_scores(
        corpus_bleu(preds, target, pad_id=PAD, dtype=torch.float64),
        corpus_bleu(hyps, refs, dtype=torch.float64),
    )
    # lists of 1-D tensors of that dtype, and a mixture of dtypes between preds and target
    listed = bleu_stats(
        [_t(h, device, int_dtype) for h in hyps], [[_t(r, device, int_dtype) for r in rs] for rs in refs]
    )
    _assert_same_stats(listed, expected, f"{int_dtype} list")
    mixed = bleu_stats(preds, target.to(torch.int64), pad_id=PAD)
    _assert_same_stats(mixed, expected, f"{int_dtype} preds, int64 target")


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float64])
def test_result_device_and_dtype(device, out_dtype):
    hyps, refs = _random_batch(11)
    preds = [_t(h, device) for h in hyps]
    target = [[_t(r, device) for r in rs] for rs in refs]
    sent = sentence_bleu(preds, target, dtype=out_dtype)
    corp = corpus_bleu(preds, target, dtype=out_dtype)
    multi = sentence_bleu(preds, target, weights=[(0.4, 0.3, 0.2, 0.1), (0.25,) * 4], dtype=out_dtype)
    stats = bleu_stats(preds, target)
    from_stats = bleu_from_stats(stats, dtype=out_dtype)
    for name, value in (
        ("sentence", sent),
        ("corpus", corp),
        ("weights list", multi),
        ("from stats", from_stats),
    ):
        assert value.dtype == out_dtype, name
        assert value.device.type == device.type, name
    for key in FIELDS:
        assert getattr(stats, key).device.type == device.type, key
    assert sent.shape == (len(hyps),)
    assert multi.shape == (2, len(hyps))
    assert corp.shape == ()
    # the float64 computation is only cast: float32 output is the rounded float64 result
    ref64 = sentence_bleu(preds, target, dtype=torch.float64)
    assert torch.equal(sent.cpu(), ref64.cpu().to(out_dtype))


def test_default_dtype_is_float32():
    out = sentence_bleu([[1, 2, 3, 4]], [[[1, 2, 3, 4]]])
    assert out.dtype == torch.float32
    assert out.device.type == "cpu"
    assert out.tolist() == [1.0]
    assert corpus_bleu([[1, 2, 3, 4]], [[[1, 2, 3, 4]]]).dtype == torch.float32


@st.composite
def ragged(draw):
    size = draw(st.integers(1, 5))
    seq = st.lists(st.integers(1, 5), min_size=0, max_size=10)
    ref = st.lists(st.integers(1, 5), min_size=1, max_size=10)
    hyps = draw(st.lists(seq, min_size=size, max_size=size))
    refs = draw(st.lists(st.lists(ref, min_size=1, max_size=3), min_size=size, max_size=size))
    return hyps, refs


@settings(max_examples=30, deadline=None)
@given(batch=ragged(), seed=st.integers(0, 2**16), n_gram=st.integers(1, 6))
def test_property_input_forms_agree(batch, seed, n_gram):
    hyps, refs = batch
    base = bleu_stats(hyps, refs, n_gram=n_gram)
    for name, preds, target, kwargs in _forms(hyps, refs, "cpu", seed):
        _assert_same_stats(bleu_stats(preds, target, n_gram=n_gram, **kwargs), base, name)


def test_device_constants_stay_on_the_host_or_are_copied_once() -> None:
    """The kernel's small constants (weights, digit values): the CPU's are used as they are; another device gets
    one copy per distinct value, shape and dtype, reused by later calls (no copy to launch, none to capture)."""
    from tensorbleu_metrics.functional._device import on_device

    weights = torch.tensor([[0.25] * 4, [0.5, 0.5, 0.0, 0.0]], dtype=torch.float64)
    assert on_device(weights, torch.device("cpu")) is weights
    meta = torch.device("meta")  # a device without values: enough to see what is copied and kept
    first = on_device(weights, meta)
    assert (first.device, first.shape, first.dtype) == (meta, weights.shape, weights.dtype)
    assert on_device(weights.clone(), meta) is first
    assert on_device(weights * 2, meta) is not first
    assert on_device(weights.view(4, 2), meta).shape == (4, 2)
    assert on_device(weights.to(torch.float32), meta).dtype == torch.float32
