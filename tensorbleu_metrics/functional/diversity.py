"""Diversity of generated token-ID samples: Self-BLEU (each sample against the others of its group) and distinct-n.

Both run in one sorted pass over all tokens, ``O(T log T)`` time and linear memory: no sample-by-sample loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional._counting import distinct_stats, self_bleu_stats
from tensorbleu_metrics.functional._inputs import _INT_DTYPES, check_dtype, check_int, normalise_preds, public_entry
from tensorbleu_metrics.functional._scoring import bleu_options

__all__ = ["distinct_ngrams", "self_bleu"]


def _checked_groups(groups: Any, n_samples: int, device: torch.device) -> Tensor | None:
    """``groups`` as a ``(B,)`` int64 tensor on ``device`` (or None), with errors naming it."""
    if groups is None:
        return None
    if isinstance(groups, np.ndarray):
        if groups.dtype.kind not in "iu":
            raise TypeError(f"`groups` must hold integer group ids, got a NumPy {groups.dtype} array.")
        # a uint64 id above the int64 range wraps to a negative one: still one id per group
        groups = torch.from_numpy(np.ascontiguousarray(groups).astype(np.int64))
    if isinstance(groups, Tensor):
        if groups.device.type == "meta":
            raise ValueError("`groups` is a tensor on the 'meta' device, which holds no group ids.")
        if groups.layout != torch.strided:
            raise TypeError(f"`groups` must be a dense (strided) tensor, got layout {groups.layout}.")
        if groups.dtype not in _INT_DTYPES:
            raise TypeError(f"`groups` must hold integer group ids, got a {groups.dtype} tensor.")
    elif isinstance(groups, Sequence) and not isinstance(groups, (str, bytes)):
        ids = [check_int(g, f"groups[{i}]", what=" (a group id)") for i, g in enumerate(groups)]
        groups = torch.tensor(ids, dtype=torch.int64)
    else:
        raise TypeError(f"`groups` must be a (B,) integer tensor or a sequence of ints, got {type(groups).__name__}.")
    if groups.shape != (n_samples,):
        raise ValueError(
            f"`groups` must have shape ({n_samples},), one group id per sample; got {tuple(groups.shape)}."
        )
    return groups.to(device=device, dtype=torch.int64)


@public_entry
def self_bleu(
    preds: Any,
    *,
    groups: Any = None,
    n_gram: int | None = None,
    weights: Any = None,
    smoothing: str = "method1",
    smooth_value: float | None = None,
    effective_order: bool = False,
    auto_reweigh: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Self-BLEU (Zhu et al. 2018): the BLEU of each sample with every *other* sample of its group as references.

    Equal to NLTK's ``sentence_bleu(others, sample, ...)`` computed sample by sample (Texygen's definition) for
    every smoothing method and option of ``tensorbleu_metrics.functional.sentence_bleu``. A sample's clipping
    count for an n-gram is the largest count among the other samples of its group, and its reference length the
    closest length among them (the shorter one on ties), so the cost is a few sorts over all tokens: no
    sample-by-sample comparison. Lower means more diverse; ``.mean()`` of the result is the set's Self-BLEU (use
    ``groups`` and a scatter-mean for one value per group).

    A sample alone in its group has no references (NLTK would raise) and scores 0. An empty sample scores 0.

    Args:
        preds: the samples: an integer tensor ``(B, L)`` or a sequence of ``B`` token sequences of any lengths.
        groups: a ``(B,)`` integer tensor (or sequence of ints) of group ids, in any order, e.g. the prompt index
            of each completion in GRPO; ``None`` puts all samples in one group.
        n_gram: the BLEU order; ``None`` (default): the longest weight tuple's length, 4 without weights.
        weights: one weight per order (default uniform), or a list of ``K`` weight tuples for ``K`` scores.
        smoothing: as ``tensorbleu_metrics.functional.sentence_bleu``; default ``"method1"`` (NLTK's epsilon
            0.1, the common Self-BLEU choice).
        smooth_value: the smoothing's parameter, as ``tensorbleu_metrics.functional.sentence_bleu``.
        effective_order: SacreBLEU's effective order (SacreBLEU methods only).
        auto_reweigh: NLTK's ``auto_reweigh`` (NLTK methods only).
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sample (excluded from it).
        validate: check the token values for negative IDs (one host synchronisation); ``False`` trusts them: the
            call then reads nothing on the host, on an accelerator too.
        dtype: floating dtype of the result (computed in float64).

    Returns:
        ``(B,)`` scores in [0, 1] on the input's device; ``(K, B)`` for a list of ``K`` weight tuples.

    Raises:
        TypeError, ValueError: for malformed ``preds`` or ``groups``, an empty batch, negative IDs other than
            ``pad_id``/``eos_id``, and invalid scoring options (as ``sentence_bleu``).

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 5], [6, 7, 8, 9], [6, 7, 8, 9]])
        >>> self_bleu(preds, groups=torch.tensor([0, 0, 1, 1]), dtype=torch.float64)
        tensor([0.3976, 0.3976, 1.0000, 1.0000], dtype=torch.float64)
        >>> self_bleu(preds, n_gram=2, dtype=torch.float64)  # one group of four
        tensor([0.7071, 0.7071, 1.0000, 1.0000], dtype=torch.float64)
    """
    check_dtype(dtype)
    options = bleu_options(n_gram, weights, smoothing, smooth_value, effective_order, auto_reweigh)
    tokens, lengths = normalise_preds(preds, pad_id, eos_id, validate)
    group_ids = _checked_groups(groups, tokens.shape[0], tokens.device)
    stats = self_bleu_stats(tokens, lengths, group_ids, options.counted_orders)
    return options.score(stats, dtype)


@public_entry
def distinct_ngrams(
    preds: Any,
    *,
    n_gram: int = 2,
    groups: Any = None,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """distinct-n (Li et al. 2016): the number of different n-grams over the number of all n-grams of the samples.

    Only n-grams of order ``n_gram`` are counted, across all samples of a group together (an n-gram repeated in
    two samples counts once); n-grams never span two samples. A set without any n-gram of that order scores 0.

    Args:
        preds: the samples: an integer tensor ``(B, L)`` or a sequence of ``B`` token sequences of any lengths.
        n_gram: the n-gram order ``n``.
        groups: a ``(B,)`` integer tensor (or sequence of ints) of group ids, in any order; ``None`` for one set.
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sample (excluded from it).
        validate: check the token values for negative IDs (one host synchronisation); ``False`` trusts them. With
            ``groups`` the host still reads their number (the size of the result).
        dtype: floating dtype of the result (computed in float64).

    Returns:
        A scalar in [0, 1] for ``groups=None``; otherwise ``(G,)``, one value per group, the groups numbered
        ``0..G-1`` in order of first appearance in ``groups``.

    Raises:
        TypeError, ValueError: for malformed ``preds`` or ``groups``, an empty batch, negative IDs other than
            ``pad_id``/``eos_id``, or ``n_gram < 1``.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 2, 1, 2], [1, 2, 3, 4]])
        >>> distinct_ngrams(preds, n_gram=2, dtype=torch.float64)  # 4 different of 6 bigrams
        tensor(0.6667, dtype=torch.float64)
        >>> distinct_ngrams(preds, n_gram=1, groups=torch.tensor([7, 3]), dtype=torch.float64)
        tensor([0.5000, 1.0000], dtype=torch.float64)
    """
    n_gram = check_int(n_gram, "n_gram", minimum=1)
    check_dtype(dtype)
    tokens, lengths = normalise_preds(preds, pad_id, eos_id, validate)
    group_ids = _checked_groups(groups, tokens.shape[0], tokens.device)
    distinct, totals = distinct_stats(tokens, lengths, group_ids, n_gram)
    distinct, totals = distinct[:, n_gram - 1], totals[:, n_gram - 1]
    score = torch.where(totals > 0, distinct / totals.clamp(min=1).to(torch.float64), 0.0).to(dtype)
    return score[0] if groups is None else score
