"""Per-sentence sufficient statistics: their types, and the entry points that count them from normalised batches.

On the CPU the compiled engine (``_engine``) counts, row by row; on accelerators the sorted pass (``_sorted_pass``)
counts every row at once, reading nothing on the host. ``_device.host_reads_are_free`` chooses between them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine, _sorted_pass
from tensorbleu_metrics.functional._engine import NO_REF_LEN
from tensorbleu_metrics.functional._inputs import HostRows, TokenBatch, raise_negative_value, raise_no_reference


class BLEUStats(NamedTuple):
    """Sufficient statistics of BLEU, one row per sentence (or their sum for a corpus).

    All fields are int64 tensors; adding the rows of several sentences gives the statistics of their corpus.

    Attributes:
        matches: ``(..., N)`` clipped n-gram matches for orders 1..N.
        totals: ``(..., N)`` candidate n-gram counts, ``max(len - n + 1, 0)``.
        clamped_totals: ``(..., N)`` ``max(totals, 1)`` per sentence, NLTK's precision denominators.
        pred_len: ``(...)`` candidate lengths.
        ref_len: ``(...)`` closest reference lengths (ties go to the shorter reference).
    """

    matches: Tensor
    totals: Tensor
    clamped_totals: Tensor
    pred_len: Tensor
    ref_len: Tensor

    @property
    def n_gram(self) -> int:
        """Number of n-gram orders held."""
        return self.matches.shape[-1]

    def sum(self) -> BLEUStats:
        """Corpus statistics: the sum over the leading (sentence) dimension."""
        return BLEUStats(*(field.sum(0) for field in self))

    def to(self, device: torch.device | str) -> BLEUStats:
        """The same statistics on another device."""
        return BLEUStats(*(field.to(device) for field in self))


def ngram_totals(lengths: Tensor | np.ndarray, n_gram: int) -> Tensor | np.ndarray:
    """``(..., N)`` numbers of n-grams of orders 1..``n_gram`` in sequences of the given lengths (a tensor, or a
    NumPy array on the CPU engine's path)."""
    if isinstance(lengths, np.ndarray):
        return np.maximum(lengths[..., None] - np.arange(n_gram), 0)
    return (lengths[..., None] - torch.arange(n_gram, device=lengths.device)).clamp_min(0)


_INT64_MAX = 2**63 - 1


def _closest_ref_len(pred_len: Tensor, ref_len: Tensor, present: Tensor) -> Tensor:
    """Length of the present reference closest in length to each candidate, the shorter one on ties (``NO_REF_LEN``
    without one: a brevity penalty of 0)."""
    if ref_len.shape[1] == 1:
        return torch.where(present[:, 0], ref_len[:, 0], NO_REF_LEN)
    distance = abs(ref_len - pred_len[:, None])
    # one integer key orders by distance, then by length (lengths are below 2**31); absent references never win
    key = torch.where(present, (distance << 32) + ref_len, _INT64_MAX)
    return torch.amin(key, 1) & NO_REF_LEN


# ---- candidate against its references (BLEU, GLEU, ROUGE-N) ----


class NGramCounts(NamedTuple):
    """What one pass over ``[candidate | references]`` rows counts.

    Attributes:
        stats: the ``BLEUStats`` (clipped against the maximum count over the references).
        ref_matches: ``(B, R, N)`` int64 overlaps with each reference alone, ``sum(min(candidate count,
            reference count))`` over the n-grams of each order, or ``None`` when not asked for.
        ref_len: ``(B, R)`` reference lengths (0 for an absent one) and present: ``(B, R)`` which references are
            present, counted from ``HostRows`` (NumPy arrays); None from a ``TokenBatch``, which holds both.
    """

    stats: BLEUStats
    ref_matches: Tensor | np.ndarray | None
    ref_len: np.ndarray | None = None
    present: np.ndarray | None = None


def _numpy(x: Tensor) -> np.ndarray:
    """A CPU tensor as a C-contiguous NumPy array (a view where it already is one), as the CPU engine takes it."""
    return np.ascontiguousarray(x.numpy())


def count_ngrams(batch: TokenBatch | HostRows, n_gram: int, *, per_reference: bool = False) -> NGramCounts:
    """Per-sentence ``BLEUStats`` for orders 1..``n_gram`` and, if asked, overlaps with each reference.

    On the CPU the compiled engine goes from rows to statistics in one call (``HostRows``, whose statistics come
    back as NumPy arrays, or a laid-out ``TokenBatch``, whose come back as tensors); on accelerators the sorted pass
    (``_sorted_pass``) counts every row at once.
    """
    if isinstance(batch, HostRows):
        counted = _engine.kernels("ngrams").count_rows(*batch[:-1], batch.validate, n_gram)
        if counted.bad_pred >= 0:
            raise_negative_value(int(batch.preds.reshape(-1)[counted.bad_pred]), "preds")
        if counted.bad_ref >= 0:
            raise_negative_value(int(batch.refs.reshape(-1)[counted.bad_ref]), "target")
        if counted.no_ref >= 0:
            raise_no_reference(counted.no_ref)
        stats = BLEUStats(counted.matches, *counted[2:4], counted.pred_len, counted.closest_ref_len)
        return NGramCounts(stats, counted.ref_matches if per_reference else None, counted.ref_len, counted.present)
    if _device.host_reads_are_free(batch.preds.device):
        preds, pred_len, refs, ref_len, present = batch.arrays or map(_numpy, batch[:5])
        counted = _engine.kernels("ngrams").count_rows(
            preds, pred_len, refs, ref_len, present, False, None, None, False, n_gram
        )
        stats = BLEUStats(counted.matches, *counted[2:4], counted.pred_len, counted.closest_ref_len)
        ref_matches = torch.from_numpy(counted.ref_matches) if per_reference else None
        return NGramCounts(BLEUStats(*map(torch.from_numpy, stats)), ref_matches)
    counted = _sorted_pass.count_against_refs(batch, n_gram, per_reference=per_reference)
    matches, ref_matches = counted
    totals = ngram_totals(batch.pred_len, n_gram)
    closest = _closest_ref_len(batch.pred_len, batch.ref_len, batch.ref_present)
    return NGramCounts(BLEUStats(matches, totals, totals.clamp_min(1), batch.pred_len, closest), ref_matches)


def count_stats(batch: TokenBatch | HostRows, n_gram: int) -> BLEUStats:
    """Per-sentence ``BLEUStats`` for orders 1..``n_gram`` of a normalised batch (NumPy arrays for ``HostRows``)."""
    return count_ngrams(batch, n_gram).stats


# ---- samples against the other samples of their group (Self-BLEU, distinct-n): the engine on the CPU, the sorted
# pass elsewhere ----


def _closest_other_len(lengths: Tensor, group: Tensor) -> Tensor:
    """Length of the sample closest in length among the others of its group (the shorter one on ties; 0 if none)."""
    # (group, length) order in one key: lengths are below 2**31, and no host synchronisation is needed
    order = torch.argsort((group << 32) + lengths)
    sorted_len, sorted_group = lengths[order], group[order]
    big = torch.iinfo(torch.int64).max // 4
    # in (group, length) order the closest other lengths are the neighbours; equal lengths are adjacent
    prev_len = torch.cat([sorted_len.new_zeros(1), sorted_len[:-1]])
    next_len = torch.cat([sorted_len[1:], sorted_len.new_zeros(1)])
    has_prev = torch.cat([sorted_group.new_zeros(1, dtype=torch.bool), sorted_group[1:] == sorted_group[:-1]])
    has_next = torch.cat([sorted_group[1:] == sorted_group[:-1], sorted_group.new_zeros(1, dtype=torch.bool)])
    prev_dist = torch.where(has_prev, sorted_len - prev_len, big)
    next_dist = torch.where(has_next, next_len - sorted_len, big)
    closest = torch.where(next_dist < prev_dist, next_len, prev_len)
    closest = torch.where(has_prev | has_next, closest, 0)
    out = torch.empty_like(closest)
    out[order] = closest
    return out


def _first_appearance_numpy(groups: Tensor | None, n_samples: int) -> tuple[np.ndarray, int]:
    """Group ids 0..G-1 numbered by first appearance (all 0 without groups), and G."""
    if groups is None:
        return np.zeros(n_samples, dtype=np.int64), 1
    _, first, inverse = np.unique(groups.numpy(), return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    return rank[inverse.reshape(-1)], int(first.shape[0])


def self_bleu_stats(preds: Tensor, pred_len: Tensor, groups: Tensor | None, n_gram: int) -> BLEUStats:
    """Per-sample ``BLEUStats`` of left-aligned samples against the other samples of their group."""
    if _device.host_reads_are_free(preds.device):
        group_np, n_groups = _first_appearance_numpy(groups, preds.shape[0])
        kernel = _engine.kernels("diversity").leave_one_out
        matches = torch.from_numpy(kernel(_numpy(preds), _numpy(pred_len), group_np, n_groups, n_gram))
        group = torch.from_numpy(group_np)
    else:
        grouped = _sorted_pass.group_tokens(preds, pred_len, groups)
        matches, group = _sorted_pass.count_leave_one_out(grouped, n_gram), grouped.group
    totals = ngram_totals(pred_len, n_gram)
    ref_len = _closest_other_len(pred_len, group)
    return BLEUStats(matches, totals, totals.clamp(min=1), pred_len.clone(), ref_len)


def distinct_stats(preds: Tensor, pred_len: Tensor, groups: Tensor | None, n_gram: int) -> tuple[Tensor, Tensor]:
    """``(G, N)`` numbers of different n-grams and of all n-grams of each group (first-appearance order)."""
    if _device.host_reads_are_free(preds.device):
        group_np, n_groups = _first_appearance_numpy(groups, preds.shape[0])
        kernel = _engine.kernels("diversity").distinct
        distinct = torch.from_numpy(kernel(_numpy(preds), _numpy(pred_len), group_np, n_groups, n_gram))
        group = torch.from_numpy(group_np)
    else:
        grouped = _sorted_pass.group_tokens(preds, pred_len, groups)
        n_groups = 1 if groups is None else int(grouped.group.max()) + 1
        distinct, group = _sorted_pass.count_distinct(grouped, n_gram, n_groups), grouped.group
    totals = torch.zeros(n_groups, n_gram, dtype=torch.int64, device=preds.device)
    totals.index_add_(0, group, ngram_totals(pred_len, n_gram))
    return distinct, totals
