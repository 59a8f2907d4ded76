"""The accelerators' counting: one sorted pass over every row at once, reading nothing on the host.

n-grams are named by compact integer ids built order by order with stable sorts, and each order's occurrences,
grouped by n-gram, go to a reduction that counts what its metric needs: BLEU's clipping (and per-reference
overlaps) for BLEU, GLEU and ROUGE-N, leave-one-out clipping for Self-BLEU, distinct n-grams for distinct-n. Short
rows with one reference are counted with every order in one sort. The entry points and the statistics types are in
``_counting``, which calls these where host reads are not free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device
from tensorbleu_metrics.functional._inputs import TokenBatch


def _row_width(batch: TokenBatch) -> int:
    """Width W of a ``_row_layout`` row: every sequence of a sentence and one empty position after each."""
    n_refs, ref_width = batch.refs.shape[1:]
    return batch.preds.shape[1] + 1 + n_refs * (ref_width + 1)


def _row_layout(batch: TokenBatch) -> tuple[Tensor, Tensor]:
    """Each sentence's candidate and references side by side in one row: ``[candidate | ref 0 | ref 1 | ...]``.

    Returns the (B, W) keys, each sequence followed by one column of -1 (no token, as padding is), so that an
    n-gram never runs from one sequence into the next; and the (W,) source of each column (0 = candidate,
    r + 1 = reference r).
    """
    n_sent, n_refs, ref_width = batch.refs.shape
    pred_width = batch.preds.shape[1]
    device = batch.preds.device
    first_key = torch.full((n_sent, _row_width(batch)), -1, dtype=torch.int64, device=device)
    columns = torch.arange(max(pred_width, ref_width), device=device)
    is_pred = columns[:pred_width] < batch.pred_len.unsqueeze(1)
    first_key[:, :pred_width] = torch.where(is_pred, batch.preds, -1)
    refs = first_key[:, pred_width + 1 :].view(n_sent, n_refs, ref_width + 1)
    is_ref = columns[:ref_width] < batch.ref_len.unsqueeze(2)
    refs[:, :, :ref_width] = torch.where(is_ref, batch.refs, -1)
    return first_key, _row_sources(pred_width, n_refs, ref_width, device)


@functools.lru_cache(maxsize=32)
def _row_sources(pred_width: int, n_refs: int, ref_width: int, device: torch.device) -> Tensor:
    """The (W,) int32 source of each ``_row_layout`` column (kept between calls; callers only read it)."""
    # built on the host and copied: no host read, and a call captured in a CUDA graph finds it already there
    sources = np.repeat(np.arange(n_refs + 1, dtype=np.int32), [pred_width + 1] + [ref_width + 1] * n_refs)
    return torch.from_numpy(sources).to(device)


class _Order(NamedTuple):
    """What a reduction hands back to the sorted pass for one order."""

    group: Tensor  # (rows, A) int64 id of each occurrence's n-gram within its row, ascending along the row
    carry: Tensor  # (rows, A) bool, whether the n-gram can still matter one order up (the pass may modify it)
    span: int  # an upper bound of the ids, exclusive


# A reduction gets one order's sorted occurrences (order n, key, src, counted; each (rows, A), equal keys
# adjacent, sources ascending within a key) and records that order's statistics itself.
_Reduction = Callable[[int, Tensor, Tensor, Tensor], _Order]


class _Groups(NamedTuple):
    """Sorted occurrences split into n-grams, row by row."""

    starts: Tensor  # (rows, A) bool: the first occurrence of an n-gram (False in column 0, which always is one)
    group: Tensor  # (rows, A) int64 n-gram id within the row: 0 for the first, ascending


def _group(key: Tensor) -> _Groups:
    starts = torch.empty(key.shape, dtype=torch.bool, device=key.device)
    starts[:, 0] = False  # so that a row's ids start at 0 without a subtraction
    torch.ne(key[:, 1:], key[:, :-1], out=starts[:, 1:])
    return _Groups(starts, torch.cumsum(starts, 1))


class _Runs(NamedTuple):
    """Runs of one source within an n-gram, in the order of a flat sorted row: one slot per occurrence, those past
    the last run empty (count 0), so that no host read sizes them."""

    group: Tensor  # the run's n-gram id
    src: Tensor  # the run's source
    count: Tensor  # occurrences in the run (int32 below 2**31 positions), 0 where uncounted


def _runs(starts: Tensor, group: Tensor, src: Tensor, counted: Tensor) -> _Runs:
    """The runs of one source within each n-gram of one flat sorted row (``starts``: where an n-gram begins)."""
    new_run = starts.clone()
    new_run[0] = True
    new_run[1:] |= src[1:] != src[:-1]
    # no compaction (its size is a host read): tables indexed by each occurrence's run; an n-gram is counted at
    # all its occurrences or at none, so a run's count is its number of counted occurrences
    run = torch.cumsum(new_run, 0).sub_(1)
    n_slots = run.numel()
    count_dtype = _count_dtype(n_slots)
    return _Runs(
        torch.zeros(n_slots, dtype=group.dtype, device=group.device).scatter_(0, run, group),
        torch.zeros(n_slots, dtype=src.dtype, device=src.device).scatter_(0, run, src),
        torch.zeros(n_slots, dtype=count_dtype, device=src.device).scatter_add_(0, run, counted.to(count_dtype)),
    )


# counts of fewer elements than this are int32 (half the memory of int64; tests lower it to reach int64)
_COUNT_INT32_MAX = 2**31


def _count_dtype(n: int) -> torch.dtype:
    """The dtype of counts of at most ``n`` elements."""
    return torch.int32 if n < _COUNT_INT32_MAX else torch.int64


def _count_per_group(group: Tensor, flags: Tensor, n_groups: int) -> Tensor:
    """How many flagged elements each group id has."""
    dtype = _count_dtype(group.numel())
    counts = torch.zeros(n_groups, dtype=dtype, device=group.device)
    return counts.scatter_add_(0, group, flags.to(dtype))


def _sort_counted_first(key: Tensor, counted: Tensor, key_span: int) -> tuple[Tensor, Tensor, Tensor] | None:
    """Rows of keys below ``key_span`` sorted with their counted occurrences first, ties in column order, and cut
    to the longest counted prefix (the host reads its length): (keys, columns, counted), or None when nothing is
    counted.

    ``key`` and ``counted`` may be overwritten; ``key`` must hold values up to ``2 * key_span``.
    """
    # the uncounted get a key past every counted one of their row (an addition, not a masked fill) and sort after
    # them
    key.add_(counted.logical_not_(), alpha=key_span)
    del counted  # what the sort no longer needs is freed before it allocates
    key, column = torch.sort(key, dim=1, stable=True)
    kept = int((key < key_span).sum(1).max())
    if kept == 0:
        return None
    key, column = key[:, :kept], column[:, :kept]
    return key, column, key < key_span


def _sort_rows(first_key: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Stable sort of each row of keys >= -1 (-1: no token, sorted first): (the sorted keys, the columns they come
    from, whether each holds a token).

    ``first_key`` is overwritten.
    """
    # negative IDs let through unvalidated are no tokens, not other rows' keys; the rows are sorted as they are
    # (no key is shifted in place: the largest int64 ID must not wrap around)
    key, column = torch.sort(first_key.clamp_(min=-1), dim=1, stable=True)
    return key, column, key >= 0


# 1: the rows of orders 2.. are cut to their counted prefix, one host read (a synchronisation) per order; kept for
# side-by-side measurements (benchmarks/gpu_probe.py)
_CUT_ROWS_ANYWHERE = 0


def _token_ids(ids: Tensor, column: Tensor, n_gram: int, dtype: torch.dtype) -> Tensor:
    """Every position of each row named by its token's order-1 id: ``(rows, W)`` sorted ``ids`` (0 for no token)
    put back at their ``column``, and ``n_gram - 1`` columns of 0 past the end, so that the n-gram starting at any
    position can be read."""
    n_rows, width = ids.shape
    token_id = torch.zeros(n_rows, width + n_gram - 1, dtype=dtype, device=ids.device)
    return token_id.scatter_(1, column, ids if ids.dtype == dtype else ids.to(dtype))


def _sorted_pass(first_key: Tensor, source: Tensor, n_gram: int, reduce: _Reduction) -> None:
    """Orders 1..``n_gram`` of every row, each handed to ``reduce`` grouped by n-gram.

    ``first_key`` (rows, W) names each position's token; -1 marks a position without one, and a sequence must
    be followed by such a position before the next starts (the last one too). It is overwritten: the callers
    hand over tensors of their own, and the pass frees it as soon as it is sorted. ``source`` (W,) says which
    sequence of the row a column belongs to (ascending along the row). Only occurrences whose n-gram ``reduce``
    marks as ``carry`` go one order up.
    """
    n_rows, width = first_key.shape
    if width == 0:
        return
    key, column, counted = _sort_rows(first_key)
    del first_key
    # the sources are int32 (they are small), like every array the pass keeps that is not used as an index. A
    # position is its column in the row: the sorted columns say where each occurrence stands
    src = source.to(torch.int32).expand(n_rows, width).gather(1, column)
    pos = column
    del column
    order = reduce(1, key, src, counted)
    del key
    # int32 where the ids fit: the per-order lookups in this table are the pass's only scattered reads
    token_span = order.span
    id_dtype = torch.int32 if token_span < 2**31 else torch.int64
    # every row has positions without a token (one after each sequence): they sort first and form group 0 of
    # their row, the tokens' ids are 1.. The reduction's ids serve as the (n-1)-gram ids below
    group = order.group
    token_id = _token_ids(group, pos, n_gram, id_dtype)
    carry, span = order.carry, order.span
    del order, counted
    # the rows are sorted whole and the host reads nothing, so no call waits for the device (unless
    # _CUT_ROWS_ANYWHERE asks for the rows cut to their counted prefix)
    cut_rows = bool(_CUT_ROWS_ANYWHERE)
    for n in range(2, n_gram + 1):
        last_token = token_id[:, n - 1 :].gather(1, pos)
        # carried n-grams are counted ones (a reduction carries nothing it did not count): the carry flags are
        # the reduction's own tensor, updated in place like the keys (every large temporary costs page faults)
        counted = carry.logical_and_(last_token.bool())  # ids are >= 0: a cast serves as "> 0"
        # an n-gram's key is (id of its (n-1)-gram, id of its last token), below key_span (ids are >= 0). An
        # n-gram's occurrences are all counted or none is: it has one (n-1)-gram and one last token. Rows are
        # already sorted by the (n-1)-gram id, so the sort mostly reorders within groups
        key_span = span * token_span
        # in int32 where the keys fit (with room for the uncounted pushed past them when the rows are cut)
        if last_token.dtype == torch.int32 and key_span << cut_rows <= 2**31:
            group = group.to(torch.int32)
        key = torch.add(last_token, group, alpha=token_span)
        del last_token, group, carry
        if cut_rows:
            cut = _sort_counted_first(key, counted, key_span)
            del key, counted
            if cut is None:
                break
            key, column, counted = cut
            del cut
        else:
            key, column = torch.sort(key, dim=1, stable=True)
            counted = counted.gather(1, column)
        pos, src = torch.gather(pos, 1, column), torch.gather(src, 1, column)
        del column
        order = reduce(n, key, src, counted)
        # read at the top of the next iteration (the linter does not follow the loop past the dels above)
        carry, group, span = order.carry, order.group, order.span  # noqa: F841
        del order


# ---- candidate against its references (BLEU, GLEU, ROUGE-N) ----


def _clip_against_refs(matches: Tensor, ref_matches: Tensor | None, n_refs: int) -> _Reduction:
    """The reduction of BLEU's clipping (and per-reference overlaps), writing order n into column n - 1."""
    slots = n_refs + 1

    def reduce(n: int, key: Tensor, src: Tensor, counted: Tensor) -> _Order:
        n_rows, width = key.shape
        device = key.device
        group = _group(key).group
        # a row holds at most W n-grams: a table of W slots per source needs no host read of their number
        n_groups = width
        # int32 counts: a row holds at most W occurrences, and a GPU's atomic adds are native in 32 bits
        count_dtype = torch.int32
        # occurrences per (source, n-gram) in one scatter per row: the candidate's counts, then each reference's,
        # each a contiguous row of the table
        counts = torch.zeros(n_rows, slots, n_groups, dtype=count_dtype, device=device)
        counts.view(n_rows, -1).scatter_add_(1, torch.add(group, src, alpha=n_groups), counted.to(count_dtype))
        pred_count, ref_count = counts[:, 0], counts[:, 1:]
        best = ref_count[:, 0] if n_refs == 1 else ref_count.amax(1)
        if ref_matches is not None and n_refs > 1:
            ref_matches[:, :, n - 1] = torch.minimum(ref_count, pred_count.unsqueeze(1)).sum(2)
        clipped = torch.minimum(pred_count, best)
        matches[:, n - 1] = clipped.sum(1)
        if ref_matches is not None and n_refs == 1:
            ref_matches[:, 0, n - 1] = matches[:, n - 1]
        # an n-gram both sides hold is one that clipped to at least one match (counts are >= 0: a cast serves as "> 0")
        return _Order(group, clipped.bool().gather(1, group), n_groups)

    return reduce


# ---- every order in one sort (accelerators, one reference, short rows) ----

# On an accelerator, batches with one reference, rows of at most _ONE_SORT_ROW n-grams (positions x orders) and at
# most _ONE_SORT_MAX in all are counted with every order in one sort: fewer launches and no host synchronisation,
# which pays where launches set a call's time (small batches); larger inputs keep the order-by-order pass, whose
# shorter sorts and per-order tables cost less device time and memory (docs' performance page)
_ONE_SORT_ROW = 1 << 12
_ONE_SORT_MAX = 1 << 20


def _order_shift(width: int, n_gram: int) -> int | None:
    """Where ``_count_one_sort`` puts an n-gram's order in its key, or None where 63 bits do not hold it.

    A key is ``order index | the tokens' order-1 ids as digits of base width | source`` (one bit: 0 = candidate,
    1 = reference).
    """
    order_shift = ((width**n_gram - 1) << 1).bit_length()
    return order_shift if order_shift + n_gram.bit_length() <= 63 else None


def _count_one_sort(batch: TokenBatch, n_gram: int, order_shift: int, matches: Tensor) -> None:
    """Clipped matches of orders 1..``n_gram`` against one reference, every n-gram of every order in one sort.

    About two thirds of the launches of ``_sorted_pass`` and no host synchronisation, whatever ``n_gram``:
    it gives up pruning, order by order, the n-grams that can no longer match.
    """
    n_rows = batch.preds.shape[0]
    device = batch.preds.device
    first_key, source = _row_layout(batch)
    width = first_key.shape[1]
    key, column, _ = _sort_rows(first_key)
    del first_key
    # order-1 ids: every row has positions without a token (one after each sequence); they sort first, group 0
    token_id = _token_ids(_group(key).group, column, n_gram, torch.int64)
    del key, column
    # the n-grams starting at each position, orders 1..N side by side: the ids are digits, most significant
    # first, so order n's key is the running sum of its first n weighted ids; then its order and source
    windows = token_id.unfold(1, n_gram, 1)  # (rows, W, N), a view
    weights = _device.on_device(torch.tensor([width ** (n_gram - 1 - i) << 1 for i in range(n_gram)]), device)
    ngram = torch.mul(windows, weights).cumsum_(2)
    ngram.add_(torch.arange(n_gram, device=device) << order_shift)
    ngram.add_(source.view(width, 1))
    # an n-gram exists where its positions all hold tokens (a sequence's tokens come first, then no-token
    # positions); the others share one key past every order's
    exists = (windows > 0).cumprod(2).bool()
    ngram = torch.where(exists, ngram, n_gram << order_shift).view(n_rows, width * n_gram)
    del windows, exists, token_id
    ngram = torch.sort(ngram, dim=1).values  # equal keys adjacent is all that is needed: no stable sort
    # the n-grams of a row numbered 0.. in key order (so order by order), counted per source in a table of
    # upper-bounded size (the host reads nothing)
    group = _group(ngram >> 1).group
    n_groups = group.shape[1]
    slot = group.mul_(2).add_(ngram & 1)
    counts = torch.zeros(n_rows, n_groups * 2, dtype=torch.int32, device=device)
    counts.scatter_add_(1, slot, torch.ones((), dtype=torch.int32, device=device).expand(slot.shape))
    counts = counts.view(n_rows, n_groups, 2)
    # each n-gram's order (all its occurrences share it; the no-n-gram key's is n_gram), then the clipped
    # counts summed per order
    group_order = torch.zeros(n_rows, n_groups, dtype=torch.int64, device=device)
    group_order.scatter_(1, slot.bitwise_right_shift_(1), ngram.bitwise_right_shift_(order_shift))
    del ngram, slot
    per_order = torch.zeros(n_rows, n_gram + 1, dtype=torch.int64, device=device)
    per_order.scatter_add_(1, group_order, counts.amin(2).long())
    matches.copy_(per_order[:, :n_gram])


def count_against_refs(batch: TokenBatch, n_gram: int, *, per_reference: bool = False) -> tuple[Tensor, Tensor | None]:
    """``(B, N)`` clipped matches of orders 1..``n_gram`` and, if asked, ``(B, R, N)`` overlaps with each reference
    (``None`` otherwise): every order in one sort where that pays, else the order-by-order pass."""
    n_sent, n_refs = batch.refs.shape[:2]
    device = batch.preds.device
    matches = torch.zeros(n_sent, n_gram, dtype=torch.int64, device=device)
    ref_matches = torch.zeros(n_sent, n_refs, n_gram, dtype=torch.int64, device=device) if per_reference else None
    width = _row_width(batch)
    one_sort = n_refs == 1 and width * n_gram <= _ONE_SORT_ROW and n_sent * width * n_gram <= _ONE_SORT_MAX
    order_shift = _order_shift(width, n_gram) if one_sort else None
    if order_shift is not None:
        _count_one_sort(batch, n_gram, order_shift, matches)
        if ref_matches is not None:
            ref_matches[:, 0] = matches
    else:
        _sorted_pass(*_row_layout(batch), n_gram, _clip_against_refs(matches, ref_matches, n_refs))
    return matches, ref_matches


# ---- samples against the other samples of their group (Self-BLEU, distinct-n) ----


class GroupedTokens(NamedTuple):
    """Samples laid end to end in one row, with their groups, for counts across the samples of a group."""

    first_key: Tensor  # (1, P) each token named with its group, sample after sample, each followed by -1 (no
    # token); overwritten by the count that uses it
    sample: Tensor  # (P,) which sample each position belongs to
    lengths: Tensor  # (B,) sample lengths
    group: Tensor  # (B,) group index of each sample, 0..G-1 in order of first appearance


def _dense_ranks(values: Tensor) -> Tensor:
    """Each value's rank among the distinct values of a 1-D tensor (0 for the smallest), no host read."""
    ordered, order = torch.sort(values)
    return torch.empty_like(order).scatter_(0, order, _group(ordered.unsqueeze(0)).group.view(-1))


def _first_appearance_ids(groups: Tensor) -> Tensor:
    """Group ids 0..G-1 numbered by first appearance in ``groups``, with tables of ``B`` slots (no host read)."""
    n_samples = groups.numel()
    device = groups.device
    by_value = _dense_ranks(groups)
    samples = torch.arange(n_samples, device=device)
    first_seen = torch.full((n_samples,), n_samples, dtype=torch.int64, device=device)
    first_seen.scatter_reduce_(0, by_value, samples, reduce="amin")
    # the slots no group took hold n_samples and sort after every group's first sample
    rank = torch.empty_like(first_seen).scatter_(0, torch.argsort(first_seen, stable=True), samples)
    return rank.gather(0, by_value)


def group_tokens(preds: Tensor, pred_len: Tensor, groups: Tensor | None) -> GroupedTokens:
    """Lay left-aligned ``(B, L)`` samples end to end and number their groups by first appearance.

    Every position is laid out (P = B * (L + 1)): each sample's tokens, then its padding and one more position as
    positions without a token, which keep n-grams from running into the next sample. A token's key is (group,
    token), the token named by its rank among the values of the batch, which needs no host read.
    """
    n_samples, width = preds.shape
    device = preds.device
    if groups is None:
        group = torch.zeros(n_samples, dtype=torch.int64, device=device)
    else:
        group = _first_appearance_ids(groups)
    is_token = torch.arange(width + 1, device=device) < pred_len.unsqueeze(1)
    tokens = torch.where(is_token, torch.nn.functional.pad(preds, (0, 1)), -1)
    n_positions = tokens.numel()
    sample = torch.arange(n_samples, device=device).unsqueeze(1).expand(n_samples, width + 1).reshape(-1)
    # tokens named by their rank among the values at all positions: keys below B * P
    tokens = _dense_ranks(tokens.view(-1)).view(is_token.shape)
    first_key = torch.where(is_token, group.unsqueeze(1) * n_positions + tokens, -1)
    return GroupedTokens(first_key.view(1, -1), sample, pred_len, group)


def _clip_leave_one_out(matches: Tensor) -> _Reduction:
    """The reduction of Self-BLEU: each sample clipped against the largest count among the other samples."""

    def reduce(n: int, key: Tensor, src: Tensor, counted: Tensor) -> _Order:
        # the samples lie in one row, so the row's n-gram ids are ids over the whole batch
        groups = _group(key)
        group = groups.group.view(-1)
        # a table of one slot per occurrence: no host read of the number of n-grams
        n_groups = groups.group.shape[1]
        runs = _runs(groups.starts.view(-1), group, src.view(-1), counted.view(-1))
        run_group, run_count = runs.group, runs.count
        # int32 counts, and the per-run arrays overwritten in place: this reduction's temporaries set its peak memory
        top = torch.zeros(n_groups, dtype=run_count.dtype, device=key.device)
        top.scatter_reduce_(0, run_group, run_count, reduce="amax")
        others = top.index_select(0, run_group)
        at_top = run_count == others
        held = run_count.bool()
        n_top = _count_per_group(run_group, at_top & held, n_groups)
        second = torch.zeros_like(top).scatter_reduce_(0, run_group, torch.where(at_top, 0, run_count), reduce="amax")
        # the largest count among the others is the group maximum unless this sample alone holds it
        alone = at_top.logical_and_(n_top.index_select(0, run_group) == 1)
        del at_top, n_top
        torch.where(alone, second.index_select(0, run_group), others, out=others)
        del alone, second
        clipped = torch.minimum(others, run_count, out=others)
        matches[:, n - 1].scatter_add_(0, runs.src.long(), clipped.long())
        del clipped, others
        holders = _count_per_group(run_group, held, n_groups)
        return _Order(groups.group, (holders >= 2).gather(0, group).view(key.shape), n_groups)

    return reduce


def count_leave_one_out(grouped: GroupedTokens, n_gram: int) -> Tensor:
    """``(B, N)`` matches of each sample clipped against the other samples of its group, orders 1..``n_gram``."""
    lengths = grouped.lengths
    matches = torch.zeros(lengths.numel(), n_gram, dtype=torch.int64, device=lengths.device)
    _sorted_pass(grouped.first_key, grouped.sample, n_gram, _clip_leave_one_out(matches))
    return matches


def _count_distinct(distinct: Tensor, sample_group: Tensor) -> _Reduction:
    """The reduction of distinct-n: how many different n-grams each group has, every n-gram carried."""

    def reduce(n: int, key: Tensor, src: Tensor, counted: Tensor) -> _Order:
        groups = _group(key)
        new = groups.starts.logical_and_(counted)
        new[:, 0] = counted[:, 0]  # the first occurrence of a row is always a new n-gram
        distinct[:, n - 1].scatter_add_(0, sample_group.index_select(0, src.view(-1)), new.view(-1).long())
        return _Order(groups.group, counted, key.shape[1])

    return reduce


def count_distinct(grouped: GroupedTokens, n_gram: int, n_groups: int) -> Tensor:
    """``(G, N)`` numbers of different n-grams of each group, orders 1..``n_gram``."""
    distinct = torch.zeros(n_groups, n_gram, dtype=torch.int64, device=grouped.lengths.device)
    _sorted_pass(grouped.first_key, grouped.sample, n_gram, _count_distinct(distinct, grouped.group))
    return distinct
