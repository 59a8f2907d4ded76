"""Token-ID GLEU (Google BLEU, Wu et al. 2016): the minimum of n-gram precision and recall, per sentence or corpus.

Per-reference overlaps come from the same sorted pass as BLEU's clipping; the best reference follows NLTK's rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine
from tensorbleu_metrics.functional._counting import count_ngrams, ngram_totals
from tensorbleu_metrics.functional._inputs import (
    HostRows,
    check_dtype,
    check_int,
    check_stats,
    in_dtype,
    normalise_inputs,
    public_entry,
)

__all__ = ["GLEUStats", "check_gleu_options", "corpus_gleu", "gleu_from_stats", "gleu_stats", "sentence_gleu"]


class GLEUStats(NamedTuple):
    """Sufficient statistics of GLEU, one row per sentence (or their sum for a corpus).

    Attributes:
        matches: ``(...)`` int64 n-grams (all orders ``min_len..max_len`` together) the hypothesis shares with its
            best reference, clipped (NLTK's ``tp``).
        n_all: ``(...)`` int64 ``max(hypothesis n-grams, best reference's n-grams)``; 0 when no reference has
            any n-gram and the hypothesis has none either.
    """

    matches: Tensor
    n_all: Tensor

    def sum(self) -> GLEUStats:
        """Corpus statistics: the sum over the leading (sentence) dimension."""
        return GLEUStats(self.matches.sum(0), self.n_all.sum(0))


def check_gleu_options(min_len: Any = 1, max_len: Any = 4) -> tuple[int, int]:
    """Validate GLEU's n-gram orders, raising ``TypeError``/``ValueError`` that names the bad argument; return them
    as Python ints.

    Example:
        >>> check_gleu_options(2, 4)
        (2, 4)
        >>> check_gleu_options(3, 2)
        Traceback (most recent call last):
        ...
        ValueError: `max_len` must be at least `min_len` (3), got 2.
    """
    min_len = check_int(min_len, "min_len", minimum=1)
    check_int(max_len, "max_len")
    if max_len < min_len:
        raise ValueError(f"`max_len` must be at least `min_len` ({min_len}), got {max_len}.")
    return min_len, int(max_len)


def _ngram_totals(lengths: Tensor | np.ndarray, min_len: int, max_len: int) -> Tensor | np.ndarray:
    """Number of n-grams of orders ``min_len..max_len`` in sequences of the given lengths (a tensor or an array)."""
    return ngram_totals(lengths, max_len)[..., min_len - 1 :].sum(-1)


@public_entry(engine_on_cpu=True)
def gleu_stats(
    preds: Any,
    target: Any,
    *,
    min_len: int = 1,
    max_len: int = 4,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
) -> GLEUStats:
    """Per-sentence sufficient statistics of GLEU against the best reference of each sentence.

    For each reference, ``tp`` counts the n-grams of orders ``min_len..max_len`` the hypothesis shares with it
    (clipped), and ``n_all = max(hypothesis n-grams, reference n-grams)``. As in NLTK, references with
    ``n_all == 0`` are skipped and the kept reference is the one with the highest ``tp / n_all``, the first on
    ties; ``(0, 0)`` when every reference is skipped.

    Args:
        preds: hypotheses, as in ``tensorbleu_metrics.functional.bleu_stats``.
        target: references, as in ``tensorbleu_metrics.functional.bleu_stats`` (padded, ``(B, R, L')`` with
            absent all-padding rows, or ragged).
        min_len: the lowest n-gram order.
        max_len: the highest n-gram order.
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sequence (excluded from it).
        validate: check the token values, as ``tensorbleu_metrics.functional.sentence_bleu`` does (one host
            synchronisation); ``False`` trusts them.

    Returns:
        ``GLEUStats`` of ``(B,)`` int64 tensors on the input's device; ``stats.sum()`` gives the corpus.

    Raises:
        TypeError, ValueError: as ``tensorbleu_metrics.functional.bleu_stats``, and for bad ``min_len`` or
            ``max_len``.

    Example:
        >>> import torch
        >>> stats = gleu_stats([[1, 2, 3, 4]], [[[1, 2, 3, 5], [1, 2, 4, 3, 9]]], max_len=2)
        >>> stats.matches, stats.n_all
        (tensor([5]), tensor([7]))
    """
    min_len, max_len = check_gleu_options(min_len, max_len)
    batch = normalise_inputs(preds, target, pad_id, eos_id, validate, layout=False)
    counted = count_ngrams(batch, max_len, per_reference=True)
    ref_matches = counted.ref_matches
    assert ref_matches is not None
    tp = ref_matches[..., min_len - 1 :].sum(-1)  # (B, R)
    if isinstance(batch, HostRows):  # the CPU engine's NumPy arrays, scored by its compiled choice of reference
        n_all = np.maximum(
            _ngram_totals(counted.stats.pred_len, min_len, max_len)[:, None],
            _ngram_totals(counted.ref_len, min_len, max_len),
        )
        matches, totals = np.empty(tp.shape[0], dtype=np.int64), np.empty(tp.shape[0], dtype=np.int64)
        _engine.kernels("scoring").gleu_best(tp, n_all, counted.present & (n_all > 0), matches, totals)
        return GLEUStats(matches, totals)
    n_all = torch.maximum(
        _ngram_totals(batch.pred_len, min_len, max_len).unsqueeze(1), _ngram_totals(batch.ref_len, min_len, max_len)
    )
    kept = batch.ref_present & (n_all > 0)
    # NLTK compares the float ratios tp / n_all and keeps the first maximum: float64 division is the same
    # correctly rounded operation, and argmax returns the first of equal values
    ratio = torch.where(kept, tp / n_all.clamp(min=1).to(torch.float64), -1.0)
    best = ratio.argmax(-1, keepdim=True)
    any_kept = kept.any(-1)
    matches = torch.where(any_kept, tp.gather(-1, best).squeeze(-1), 0)
    return GLEUStats(matches, torch.where(any_kept, n_all.gather(-1, best).squeeze(-1), 0))


@public_entry(engine_on_cpu=True)
def gleu_from_stats(stats: GLEUStats, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """GLEU from statistics, ``matches / n_all`` (0 where ``n_all`` is 0): per sentence, or one corpus score.

    Example:
        >>> import torch
        >>> gleu_from_stats(GLEUStats(torch.tensor([5, 0]), torch.tensor([7, 0])), dtype=torch.float64)
        tensor([0.7143, 0.0000], dtype=torch.float64)
    """
    check_stats(stats, GLEUStats)
    check_dtype(dtype)
    if _device.host_reads_are_free(stats.matches.device):
        # NumPy on the CPU (returned as a tensor by the public boundary): no torch operation on the scores
        matches, n_all = stats.matches.numpy(), stats.n_all.numpy()
        return in_dtype(np.where(n_all > 0, matches / np.maximum(n_all, 1).astype(np.float64), 0.0), dtype)
    n_all = stats.n_all.to(torch.float64)
    return torch.where(stats.n_all > 0, stats.matches / n_all.clamp(min=1), 0.0).to(dtype)


@public_entry(engine_on_cpu=True)
def sentence_gleu(
    preds: Any,
    target: Any,
    *,
    min_len: int = 1,
    max_len: int = 4,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """GLEU of each hypothesis against its references, equal to NLTK's ``sentence_gleu``.

    Takes the arguments of ``gleu_stats``; ``dtype`` is the floating dtype of the result (computed in
    float64).

    Returns:
        ``(B,)`` scores in [0, 1] on the input's device.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]])
        >>> target = torch.tensor([[1, 2, 3, 4, 5, 7], [7, 8, 9, 10, 0, 0]])
        >>> sentence_gleu(preds, target, pad_id=0, dtype=torch.float64)
        tensor([0.7778, 0.6000], dtype=torch.float64)
    """
    check_dtype(dtype)
    stats = gleu_stats(preds, target, min_len=min_len, max_len=max_len, pad_id=pad_id, eos_id=eos_id, validate=validate)
    return gleu_from_stats(stats, dtype=dtype)


@public_entry(engine_on_cpu=True)
def corpus_gleu(
    preds: Any,
    target: Any,
    *,
    min_len: int = 1,
    max_len: int = 4,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """GLEU of the batch as one corpus, equal to NLTK's ``corpus_gleu``: summed ``matches`` over summed ``n_all``.

    Takes the arguments of ``sentence_gleu``.

    Returns:
        A scalar in [0, 1]; 0 when the corpus has no n-gram at all.

    Example:
        >>> import torch
        >>> corpus_gleu([[1, 2, 3, 4, 5, 6], [7, 8, 9]], [[[1, 2, 3, 4, 5, 7]], [[7, 8, 9, 10], [7, 8]]])
        tensor(0.7143)
    """
    check_dtype(dtype)
    stats = gleu_stats(preds, target, min_len=min_len, max_len=max_len, pad_id=pad_id, eos_id=eos_id, validate=validate)
    return gleu_from_stats(stats.sum(), dtype=dtype)
