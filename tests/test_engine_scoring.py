"""The CPU engine's compiled BLEU scorer against the accelerators' batched torch scorer (forced on the CPU), on any
statistics and options: both are checked against NLTK and SacreBLEU elsewhere; here they must agree everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional import BLEUStats, _device, bleu_from_stats
from tensorbleu_metrics.functional._scoring import NLTK_METHODS, SACREBLEU_METHODS, SMOOTHING, bleu_options


@contextmanager
def _torch_scorer() -> Iterator[None]:
    """The accelerators' scorer, forced on the CPU (hypothesis runs examples outside function-scoped fixtures)."""
    original = _device.host_reads_are_free
    _device.host_reads_are_free = lambda device: False
    try:
        yield
    finally:
        _device.host_reads_are_free = original


_WEIGHTS = st.one_of(
    st.none(),
    st.lists(st.sampled_from([0.0, 0.25, 0.5, 1 / 3, 1.0, 7.0, 1e200]), min_size=1, max_size=6),
    st.lists(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]), min_size=1, max_size=6), min_size=1, max_size=3),
    st.just((0.25, 0.25, 0.25, 0.25)),
)


def _options(draw: st.DrawFn) -> dict:
    smoothing = draw(st.sampled_from(list(SMOOTHING)))
    weights = draw(_WEIGHTS)
    valid = SMOOTHING[smoothing].valid
    smooth_value = None
    if valid is not None and draw(st.booleans()):
        smooth_value = draw(st.sampled_from([valid[0] + 1e-3, 0.5, 1.0, 5.0, 1e6]))
    options = {
        "weights": weights,
        "smoothing": smoothing,
        "smooth_value": smooth_value,
        "effective_order": smoothing in SACREBLEU_METHODS and draw(st.booleans()),
        "auto_reweigh": smoothing in NLTK_METHODS and draw(st.booleans()),
    }
    if weights is None:
        options["n_gram"] = draw(st.integers(3 if smoothing == "method6" else 1, 6))
    return options


@st.composite
def _case(draw: st.DrawFn) -> tuple[BLEUStats, dict]:
    options = _options(draw)
    try:
        order = bleu_options(
            options.get("n_gram"),
            options["weights"],
            options["smoothing"],
            options["smooth_value"],
            options["effective_order"],
            options["auto_reweigh"],
        ).counted_orders
    except ValueError:  # e.g. method6 with short weights: not a scoring case
        order = 0
    rows = draw(st.integers(1, 6))
    big = draw(st.sampled_from([5, 300, 2**40]))
    pred_len = np.array(draw(st.lists(st.integers(0, big), min_size=rows, max_size=rows)), dtype=np.int64)
    ref_len = np.array(draw(st.lists(st.integers(0, big), min_size=rows, max_size=rows)), dtype=np.int64)
    totals = np.maximum(pred_len[:, None] - np.arange(max(order, 1)), 0)
    fractions = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.0, 0.3, 1.0]), min_size=totals.size, max_size=totals.size))
    ).reshape(totals.shape)
    matches = np.floor(totals * fractions).astype(np.int64)
    stats = BLEUStats(*(torch.from_numpy(a) for a in (matches, totals, np.maximum(totals, 1), pred_len, ref_len)))
    return stats, options


@settings(max_examples=400, deadline=None)
@given(case=_case(), dtype=st.sampled_from([torch.float64, torch.float32, torch.bfloat16]))
def test_compiled_scorer_equals_torch_scorer(case, dtype) -> None:
    stats, options = case
    try:
        host = bleu_from_stats(stats, **options, dtype=dtype)
    except ValueError:
        return  # options the validation refuses (tested elsewhere)
    with _torch_scorer():
        batched = bleu_from_stats(stats, **options, dtype=dtype)
    assert host.dtype == batched.dtype == dtype
    assert host.shape == batched.shape
    assert torch.isfinite(host).all()
    h, b = host.double(), batched.double()
    tolerance = 1e-12 if dtype == torch.float64 else 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(h, b, rtol=tolerance, atol=tolerance), (h, b, options)


@pytest.mark.parametrize("smoothing", list(SMOOTHING))
def test_corpus_shape_and_empty_statistics(smoothing: str) -> None:
    """Summed statistics (no batch dimension), and those of no sentence at all, score the same on both scorers."""
    n = 5
    zero = torch.zeros(n, dtype=torch.int64)
    cases = [
        BLEUStats(zero, zero, zero, zero[0], zero[0]),
        BLEUStats(
            torch.tensor([7, 4, 2, 1, 0]),
            torch.tensor([9, 8, 7, 6, 5]),
            torch.tensor([9, 8, 7, 6, 5]),
            torch.tensor(9),
            torch.tensor(11),
        ),
    ]
    for stats in cases:
        host = bleu_from_stats(stats, n_gram=4, smoothing=smoothing, dtype=torch.float64)
        with _torch_scorer():
            batched = bleu_from_stats(stats, n_gram=4, smoothing=smoothing, dtype=torch.float64)
        assert host.shape == batched.shape == ()
        assert torch.allclose(host, batched, rtol=1e-12, atol=1e-12), (host, batched)
