"""Token-ID ROUGE-N, ROUGE-L and ROUGE-Lsum per sentence, exact to Google's ``rouge-score`` on the IDs as words.

ROUGE-N reads per-reference n-gram overlaps from the shared counting kernel; ROUGE-L and ROUGE-Lsum run the
bit-parallel LCS of ``tensorbleu_metrics.functional._lcs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine
from tensorbleu_metrics.functional._counting import count_ngrams
from tensorbleu_metrics.functional._inputs import (
    TokenBatch,
    _left_align,
    check_dtype,
    check_int,
    check_special_ids,
    in_dtype,
    normalise_inputs,
    public_entry,
)
from tensorbleu_metrics.functional._lcs import lcs_length, union_lcs_hits

ROUGE_KEYS: tuple[str, ...] = (*(f"rouge{n}" for n in range(1, 10)), "rougeL", "rougeLsum")
ACCUMULATE: tuple[str, ...] = ("best", "avg")
SCORE_FIELDS: tuple[str, ...] = ("fmeasure", "precision", "recall")


def check_rouge_options(rouge_keys: Any, accumulate: Any, sep_id: Any) -> tuple[tuple[str, ...], int | None]:
    """Validate the ROUGE options; return the keys as a tuple (a single key may be a string) and ``sep_id``.

    Raises:
        TypeError: ``rouge_keys`` not a string or a sequence of strings, ``sep_id`` not an int or None.
        ValueError: an unknown or repeated key, no key, an unknown ``accumulate``, ``rougeLsum`` without
            ``sep_id``.
    """
    keys = (rouge_keys,) if isinstance(rouge_keys, str) else rouge_keys
    if not isinstance(keys, Sequence) or not all(isinstance(k, str) for k in keys):
        raise TypeError(f"`rouge_keys` must be a key or a sequence of keys from {ROUGE_KEYS}, got {rouge_keys!r}.")
    keys = tuple(keys)
    if not keys:
        raise ValueError("`rouge_keys` is empty: give at least one key.")
    unknown = [k for k in keys if k not in ROUGE_KEYS]
    if unknown:
        raise ValueError(f"`rouge_keys` holds unknown keys {unknown}; allowed: {ROUGE_KEYS}.")
    if len(set(keys)) != len(keys):
        raise ValueError(f"`rouge_keys` names a key twice: {keys}.")
    if accumulate not in ACCUMULATE:
        raise ValueError(f"`accumulate` must be one of {ACCUMULATE}, got {accumulate!r}.")
    sep_id = check_int(sep_id, "sep_id", allow_none=True)
    if "rougeLsum" in keys and sep_id is None:
        raise ValueError(
            "`rougeLsum` needs `sep_id`: the token ID that ends a sentence (rouge-score splits summaries at newlines)."
        )
    return keys, sep_id


def _check_special(sep_id: int | None, pad_id: Any, eos_id: Any) -> None:
    """``sep_id`` must differ from ``pad_id`` and ``eos_id`` (those tokens are gone before sentences are split)."""
    if sep_id is not None and sep_id in (pad_id, eos_id):
        raise ValueError(f"`sep_id` ({sep_id}) must differ from `pad_id` and `eos_id`.")


def _without_separators(batch: TokenBatch, sep_id: int) -> TokenBatch:
    """The batch with every ``sep_id`` token dropped: rouge-score reads a newline as a space for ROUGE-N and -L."""

    def drop(x: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
        keep = (torch.arange(x.shape[-1], device=x.device) < length.unsqueeze(-1)) & (x != sep_id)
        return _left_align(x, keep)

    preds, pred_len = drop(batch.preds, batch.pred_len)
    refs, ref_len = drop(batch.refs, batch.ref_len)
    return TokenBatch(preds, pred_len, refs, ref_len, batch.ref_present)


def _scores(hits: Tensor, pred_total: Tensor, ref_total: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """rouge-score's precision, recall and F (float64, same operations in the same order) per reference."""
    hits = hits.double()
    precision = hits / pred_total.clamp(min=1).double()
    recall = hits / ref_total.clamp(min=1).double()
    both = precision + recall
    fmeasure = torch.where(both > 0, 2 * precision * recall / torch.where(both > 0, both, 1), 0)
    return fmeasure, precision, recall


def _accumulate(scores: tuple[Tensor, Tensor, Tensor], present: Tensor, accumulate: str) -> tuple[Tensor, ...]:
    """Per sentence: the reference with the highest F (the first on ties), or the mean over references."""
    if accumulate == "best":
        best = torch.where(present, scores[0], -1.0).argmax(1, keepdim=True)  # argmax returns the first maximum
        return tuple(torch.gather(s, 1, best).squeeze(1) for s in scores)
    count = present.sum(1).double()
    return tuple(torch.where(present, s, 0).sum(1) / count for s in scores)


def _key_scores(
    hits: Tensor, pred_total: Tensor, ref_total: Tensor, present: Tensor, accumulate: str
) -> tuple[Tensor, ...]:
    """F, precision and recall per sentence (float64) from per-reference ``(B, R)`` hits and totals (``pred_total``
    may be ``(B, 1)``): the CPU engine's compiled scorer row by row (NumPy arrays), or batched torch operations on
    accelerators."""
    if not _device.host_reads_are_free(hits.device):
        return _accumulate(_scores(hits, pred_total, ref_total), present, accumulate)
    out = np.empty((3, hits.shape[0]))
    _engine.kernels("scoring").rouge_rows(
        hits.numpy(),
        np.ascontiguousarray(np.broadcast_to(pred_total.numpy(), hits.shape)),
        ref_total.numpy(),
        present.numpy(),
        accumulate == "best",
        out,
    )
    return tuple(out)  # NumPy rows: the public function returns them as tensors


@public_entry
def rouge_score(
    preds: Any,
    target: Any,
    *,
    rouge_keys: str | Sequence[str] = ("rouge1", "rouge2", "rougeL"),
    accumulate: str = "best",
    sep_id: int | None = None,
    pad_id: int | None = None,
    eos_id: int | None = None,
    dtype: torch.dtype = torch.float32,
    validate: bool = True,
) -> dict[str, Tensor]:
    """ROUGE of each candidate against its references, on token IDs.

    Equals Google's ``rouge_score.rouge_scorer.RougeScorer(rouge_keys).score`` (one reference) and
    ``score_multi`` (several, ``accumulate="best"``) applied to the IDs joined by spaces, with ``sep_id`` tokens
    written as newlines:

    - ``rougeN`` (N = 1..9): clipped n-gram overlap ``sum(min(candidate count, reference count))`` over the
      candidate's n-grams (precision) and the reference's (recall).
    - ``rougeL``: the longest common subsequence over the candidate and reference lengths.
    - ``rougeLsum``: the summary-level union LCS over sentences split at ``sep_id`` (each token of the union
      counted at most as often as it occurs in the candidate), over the lengths without separators.

    ``sep_id`` tokens are never tokens themselves: ROUGE-N and ROUGE-L skip them (rouge-score reads a newline as
    a space), so n-grams run across sentence ends. F is ``2PR / (P + R)``, 0 when ``P + R = 0``; an empty
    candidate or reference scores 0.

    Args:
        preds: candidates: an integer tensor ``(B, L)`` or a sequence of ``B`` token sequences.
        target: references: ``(B, L')``, ``(B, R, L')`` (an all-padding row is an absent reference), or a
            sequence of ``B`` sequences of references, as for ``tensorbleu_metrics.functional.sentence_bleu``.
        rouge_keys: a key or keys from ``rouge1``..``rouge9``, ``rougeL``, ``rougeLsum``.
        accumulate: with several references, ``"best"`` keeps per key the reference with the highest F (the first
            on ties, as ``score_multi``), ``"avg"`` averages precision, recall and F over the references.
        sep_id: the sentence-end token (e.g. the newline's ID); required for ``rougeLsum``.
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sequence.
        dtype: floating dtype of the results (always computed in float64).
        validate: check the token values, as ``tensorbleu_metrics.functional.sentence_bleu`` does; ``False``
            trusts them (the LCS still reads its loop lengths from the device).

    Returns:
        ``{f"{key}_{field}": (B,) tensor}`` for every key and ``field`` in ``fmeasure``, ``precision``,
        ``recall`` (torchmetrics' names), on the input's device.

    Raises:
        TypeError, ValueError: as ``tensorbleu_metrics.functional.bleu_stats``, and for unknown keys or
            ``accumulate``, ``rougeLsum`` without ``sep_id``, ``sep_id`` equal to ``pad_id``/``eos_id``.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 2, 3, 4, 0], [5, 6, 7, 8, 9]])
        >>> target = torch.tensor([[1, 3, 2, 4, 0], [5, 6, 9, 0, 0]])
        >>> scores = rouge_score(preds, target, rouge_keys=("rouge2", "rougeL"), pad_id=0)
        >>> scores["rouge2_fmeasure"], scores["rougeL_precision"], scores["rougeL_recall"]
        (tensor([0.0000, 0.3333]), tensor([0.7500, 0.6000]), tensor([0.7500, 1.0000]))
        >>> newline = 99  # ROUGE-Lsum: sentences end at `sep_id`
        >>> rouge_score([[1, 2, 99, 3, 4]], [[[3, 4, 99, 1, 2]]], rouge_keys="rougeLsum", sep_id=newline)
        {'rougeLsum_fmeasure': tensor([1.]), 'rougeLsum_precision': tensor([1.]), 'rougeLsum_recall': tensor([1.])}
    """
    keys, sep_id = check_rouge_options(rouge_keys, accumulate, sep_id)
    check_special_ids(pad_id, eos_id)
    _check_special(sep_id, pad_id, eos_id)
    check_dtype(dtype)
    batch = normalise_inputs(preds, target, pad_id, eos_id, validate)
    words = batch if sep_id is None else _without_separators(batch, sep_id)
    per_key: dict[str, tuple[Tensor, Tensor, Tensor]] = {}  # (hits, candidate total, reference totals)
    orders = [int(k[5:]) for k in keys if k[5:].isdigit()]
    if orders:
        overlaps = count_ngrams(words, max(orders), per_reference=True).ref_matches
        assert overlaps is not None
        for n in orders:
            pred_total = (words.pred_len - n + 1).clamp(min=0).unsqueeze(1)
            per_key[f"rouge{n}"] = (overlaps[..., n - 1], pred_total, (words.ref_len - n + 1).clamp(min=0))
    if "rougeL" in keys:
        lcs = lcs_length(words.preds, words.pred_len, words.refs, words.ref_len)
        per_key["rougeL"] = (lcs, words.pred_len.unsqueeze(1), words.ref_len)
    if "rougeLsum" in keys:
        assert sep_id is not None
        hits, pred_total, ref_total = union_lcs_hits(batch.preds, batch.pred_len, batch.refs, batch.ref_len, sep_id)
        per_key["rougeLsum"] = (hits, pred_total.unsqueeze(1), ref_total)
    out: dict[str, Tensor] = {}
    for key in keys:
        for field, value in zip(SCORE_FIELDS, _key_scores(*per_key[key], batch.ref_present, accumulate), strict=True):
            out[f"{key}_{field}"] = in_dtype(value, dtype)
    return out
