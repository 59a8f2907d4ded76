"""Clipped n-gram counting: normalised token batches in, per-sentence sufficient statistics out.

Each sentence's candidate and references share one row; n-grams are named by compact integer ids built order by
order with stable sorts, and only n-grams present in both a candidate and its references are carried upwards.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from tensorbleu_metrics.functional._inputs import TokenBatch

# keys are (previous n-gram id) * (number of token ids) + token id; both ids are below the number of positions
_MAX_POSITIONS = 3_000_000_000


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
    """Flattened rows ``[candidate | ref 0 | ref 1 | ...]`` per sentence.

    Returns the tokens, each position's source (0 = candidate, r + 1 = reference r) and how many tokens of its
    sequence start at it (positions past a sequence's end get 0 or less).
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
    offset = torch.cat(
        [torch.arange(pred_width, device=device), torch.arange(ref_width, device=device).repeat(n_refs)]
    )
    seq_len = torch.cat(
        [batch.pred_len.unsqueeze(1).expand(n_sent, pred_width), batch.ref_len.repeat_interleave(ref_width, dim=1)],
        dim=1,
    )
    return tokens, source.expand(n_sent, -1), seq_len - offset


def _match_order(
    position: Tensor, key: Tensor, source: Tensor, width: int, n_sent: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Clipped matches per sentence for one order.

    ``key`` names each n-gram occurrence and is sorted stably, so equal n-grams of one sentence are adjacent
    and ordered by source (candidate first, then reference by reference); ``position`` is where each starts.
    Returns the matches (n_sent,), each occurrence's group id (one per sentence and n-gram), and which groups
    occur in both the candidate and a reference: only those can grow into a match of the next order.
    """
    sentence = torch.div(position, width, rounding_mode="floor")
    src = source[position]
    new_group = torch.ones_like(key, dtype=torch.bool)
    new_group[1:] = (key[1:] != key[:-1]) | (sentence[1:] != sentence[:-1])
    group = torch.cumsum(new_group, 0) - 1
    new_run = new_group.clone()
    new_run[1:] |= src[1:] != src[:-1]
    run_start = new_run.nonzero().squeeze(1)
    run_len = torch.diff(run_start, append=run_start.new_tensor([key.numel()]))
    run_group = group[run_start]
    from_pred = src[run_start] == 0
    n_groups = int(run_group[-1]) + 1
    pred_count = torch.zeros(n_groups, dtype=torch.int64, device=key.device)
    pred_count.index_add_(0, run_group, torch.where(from_pred, run_len, 0))
    ref_max = torch.zeros(n_groups, dtype=torch.int64, device=key.device)
    ref_max.scatter_reduce_(0, run_group, torch.where(from_pred, 0, run_len), reduce="amax")
    group_sentence = torch.zeros(n_groups, dtype=torch.int64, device=key.device)
    group_sentence[run_group] = sentence[run_start]
    matches = torch.zeros(n_sent, dtype=torch.int64, device=key.device)
    matches.index_add_(0, group_sentence, torch.minimum(pred_count, ref_max))
    shared = (pred_count > 0) & (ref_max > 0)
    return matches, group, shared


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
    if n_sent * width > _MAX_POSITIONS:
        raise ValueError(f"the batch spans {n_sent * width} positions; at most {_MAX_POSITIONS} are supported.")
    # order 1: sort each row by token; positions outside every sequence get -1 and sort first (IDs are >= 0)
    sorted_tokens, order = torch.sort(torch.where(room > 0, tokens, -1), dim=1, stable=True)
    is_token = (sorted_tokens >= 0).flatten()
    if not bool(is_token.any()):
        return stats
    row_start = torch.arange(n_sent, device=device).unsqueeze(1) * width
    position = (order + row_start).flatten()[is_token]
    source, room = source.flatten(), room.flatten()
    found, group, shared = _match_order(position, sorted_tokens.flatten()[is_token], source, width, n_sent)
    matches[:, 0] = found
    # compact token ids, unique per sentence; the key of an n-gram is (its (n-1)-gram's id, its last token's id)
    token_id = torch.zeros(n_sent * width, dtype=torch.int64, device=device)
    token_id[position] = group
    n_token_ids = int(group[-1]) + 1
    for n in range(2, n_gram + 1):
        carry = shared[group] & (room[position] >= n)
        position, group = position[carry], group[carry]
        if position.numel() == 0:
            break
        key, perm = torch.sort(group * n_token_ids + token_id[position + (n - 1)], stable=True)
        position = position[perm]
        found, group, shared = _match_order(position, key, source, width, n_sent)
        matches[:, n - 1] = found
    return stats
