"""Clipped n-gram counting: normalised token batches in, per-sentence sufficient statistics out.

Each sentence's candidate and references share one row; n-grams are named by compact integer ids built order by
order with stable sorts, and only n-grams present in both a candidate and its references are carried upwards.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from tensorbleu_metrics.functional._inputs import TokenBatch


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


def _closest_ref_len(pred_len: Tensor, ref_len: Tensor, present: Tensor) -> Tensor:
    """Length of the reference closest in length to each candidate, the shorter one on ties."""
    span = int(ref_len.max()) + 1 if ref_len.numel() else 1
    distance = (ref_len - pred_len.unsqueeze(1)).abs()
    # one integer key orders by distance, then by length; absent references can never win
    key = torch.where(present, distance * span + ref_len, torch.iinfo(torch.int64).max)
    return key.min(dim=1).values % span


def _row_layout(batch: TokenBatch) -> tuple[Tensor, Tensor, Tensor]:
    """Each sentence's candidate and references side by side in one row: ``[candidate | ref 0 | ref 1 | ...]``.

    Returns the (B, W) tokens, the (W,) source of each column (0 = candidate, r + 1 = reference r) and, per
    position, how many tokens of its sequence start there (0 or less past a sequence's end).
    """
    n_sent, n_refs, ref_width = batch.refs.shape
    pred_width = batch.preds.shape[1]
    device = batch.preds.device
    tokens = torch.cat([batch.preds, batch.refs.reshape(n_sent, n_refs * ref_width)], dim=1)
    source = torch.cat(
        [
            torch.zeros(pred_width, dtype=torch.int64, device=device),
            torch.arange(1, n_refs + 1, device=device).repeat_interleave(ref_width),
        ]
    )
    offset = torch.cat([torch.arange(pred_width, device=device), torch.arange(ref_width, device=device).repeat(n_refs)])
    seq_len = torch.cat(
        [batch.pred_len.unsqueeze(1).expand(n_sent, pred_width), batch.ref_len.repeat_interleave(ref_width, dim=1)],
        dim=1,
    )
    return tokens, source, seq_len - offset


class _Order(NamedTuple):
    """One order's n-gram occurrences after sorting, each row grouped by n-gram."""

    matches: Tensor  # (B,) clipped matches
    group: Tensor  # (B, A) id of each occurrence's n-gram within its row, equal ids adjacent
    shared: Tensor  # (B, A) whether that n-gram occurs in both the candidate and a reference


def _count_per_group(group: Tensor, flags: Tensor, n_groups: int) -> Tensor:
    """How many flagged elements each group id has."""
    counts = torch.zeros(n_groups, dtype=torch.int64, device=group.device)
    return counts.index_add_(0, group, flags.long())


def _clip_sorted(key: Tensor, src: Tensor, counted: Tensor, n_refs: int) -> _Order:
    """Clipped matches of one order from rows sorted stably by n-gram ``key``.

    Within an n-gram, occurrences are in column order, hence by ``src``: candidate (0), then reference 1, 2...
    Only occurrences marked ``counted`` are counted.
    """
    n_sent, width = key.shape
    starts = torch.ones_like(key, dtype=torch.bool)
    starts[:, 1:] = key[:, 1:] != key[:, :-1]
    starts = starts.view(-1)
    group = torch.cumsum(starts, 0) - 1  # one id per (sentence, n-gram), ascending over the batch
    n_groups = starts.numel()  # an upper bound: avoids a host synchronisation
    counted = counted.view(-1)
    flat_src = src.view(-1)
    in_pred = counted & (flat_src == 0)
    pred_count = _count_per_group(group, in_pred, n_groups)
    if n_refs == 1:
        ref_max = _count_per_group(group, counted ^ in_pred, n_groups)
    else:
        # runs of one source inside an n-gram's occurrences: the longest reference run is its clipping count
        new_run = starts.clone()
        new_run[1:] |= flat_src[1:] != flat_src[:-1]
        run_first = new_run.nonzero().squeeze(1)
        run_count = torch.diff(run_first, append=run_first.new_tensor([new_run.numel()]))
        run_count = torch.where(counted[run_first] & (flat_src[run_first] > 0), run_count, 0)
        ref_max = torch.zeros_like(pred_count).scatter_reduce_(0, group[run_first], run_count, reduce="amax")
    clipped = torch.cumsum(torch.minimum(pred_count, ref_max), 0)
    row_group = group.view(n_sent, width)
    first, last = row_group[:, 0], row_group[:, -1]
    matches = clipped[last] - torch.where(first > 0, clipped[first - 1], 0)
    shared = ((pred_count > 0) & (ref_max > 0))[row_group]
    return _Order(matches, row_group - first.unsqueeze(1), shared)


def count_stats(batch: TokenBatch, n_gram: int) -> BLEUStats:
    """Per-sentence :class:`BLEUStats` for orders 1..``n_gram`` of a normalised batch."""
    n_sent = batch.preds.shape[0]
    device = batch.preds.device
    orders = torch.arange(1, n_gram + 1, device=device)
    totals = (batch.pred_len.unsqueeze(1) - orders + 1).clamp(min=0)
    ref_len = _closest_ref_len(batch.pred_len, batch.ref_len, batch.ref_present)
    matches = torch.zeros(n_sent, n_gram, dtype=torch.int64, device=device)
    stats = BLEUStats(matches, totals, totals.clamp(min=1), batch.pred_len.clone(), ref_len)

    tokens, source, room = _row_layout(batch)
    width = tokens.shape[1]
    if width == 0:
        return stats
    n_refs = batch.refs.shape[1]
    # order 1: sort each row by token; positions outside every sequence get -1 and sort first (IDs are >= 0)
    key, column = torch.sort(torch.where(room > 0, tokens, -1), dim=1, stable=True)
    counted = key >= 0
    src = source[column]
    order = _clip_sorted(key, src, counted, n_refs)
    matches[:, 0] = order.matches
    # compact per-row token ids; an n-gram's key is (id of its (n-1)-gram, id of its last token)
    token_id = torch.empty_like(tokens).scatter_(1, column, order.group)
    room = torch.gather(room, 1, column)
    # per-row ids are below the row width W, so every key is below W * (W + 1): no overflow for any real W
    beyond = width * (width + 1)
    for n in range(2, n_gram + 1):
        counted = counted & order.shared & (room >= n)
        last_token = torch.gather(token_id, 1, (column + (n - 1)).clamp(max=width - 1))
        # rows are already sorted by the (n-1)-gram id, so this sort mostly reorders within groups; n-grams
        # that cannot match sort past the end of their row, and the rows are cut to the longest matching prefix
        key = torch.where(counted, order.group * (width + 1) + last_token, beyond)
        key, perm = torch.sort(key, dim=1, stable=True)
        kept = int(counted.sum(1).max())
        if kept == 0:
            break
        key, perm = key[:, :kept], perm[:, :kept]
        column, src, room = (torch.gather(t, 1, perm) for t in (column, src, room))
        counted = key < beyond
        order = _clip_sorted(key, src, counted, n_refs)
        matches[:, n - 1] = order.matches
    return stats
