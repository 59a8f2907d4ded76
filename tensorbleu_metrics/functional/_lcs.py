"""Longest common subsequences of token-ID batches, bit-parallel: every sentence pair advances one token at a time.

LCS lengths (ROUGE-L) and the summary-level union-LCS hits (ROUGE-Lsum), without any ``(B, L, L')`` table. On the
CPU the compiled engine computes them row by row; the torch recurrence below serves accelerators.

Method (Allison–Dix / Hyyrö): each reference is a bit vector ``V`` of ``ceil(L'/64)`` int64 words (bit ``p`` of
word ``p // 64`` stands for reference position ``p``). For every candidate token with match mask ``M`` (the
reference positions holding that token), ``V <- (V + (V & M)) | (V & ~M)``; afterwards the zero bits of ``V``
below position ``i`` count the LCS of the candidate prefix and the reference prefix of length ``i``. One step
updates every sentence and every reference at once; the carries of the addition cross words with tensor ops.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine
from tensorbleu_metrics.functional._counting import _numpy
from tensorbleu_metrics.functional._sorted_pass import _sort_rows

_WORD = 64
_SIGN = -(2**63)  # xor with it maps unsigned order onto signed order
_ALL_ONES = -1
_BACKTRACK_COMPACT_EVERY = 8  # walker steps between two removals of the walkers that have finished
# sentence pairs screened, and walkers walked, together in ROUGE-Lsum (tests lower it to reach several blocks)
_PAIR_BLOCK = 1 << 16


def _popcount(x: Tensor) -> Tensor:
    """Number of set bits of each int64 (SWAR: torch has no popcount)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    # the byte sum lands in the top byte and is at most 64, so the arithmetic shift is exact
    return (x * 0x0101010101010101) >> 56


def _add_words(x: Tensor, y: Tensor, word: Tensor, carries: Tensor) -> Tensor:
    """``x + y`` of multi-word unsigned integers (little-endian int64 words on the last dim), top carry dropped.

    ``word`` is ``arange(W) + 1`` and ``carries`` a ``(..., W + 1)`` int64 scratch tensor whose slot 0 is 0: both
    are made once by the caller, as this runs once per candidate token.
    """
    total = x + y
    if word.shape[0] == 1:
        return total
    # a word whose sum is not all ones passes on exactly its own overflow; an all-ones word (which cannot
    # overflow itself) passes on its incoming carry: each word's carry comes from the last word before it
    # that is not all ones (slot 0: none, no carry)
    carries[..., 1:] = (total ^ _SIGN) < (x ^ _SIGN)  # the unsigned overflow of each word
    source = torch.where(total != _ALL_ONES, word, 0).cummax(-1).values
    total[..., 1:] += torch.gather(carries, -1, source)[..., :-1]
    return total


def pack_bits(flags: Tensor, n_words: int) -> Tensor:
    """Bool ``(..., P)`` flags as ``(..., n_words)`` words; position ``p`` is bit ``p % 64`` of word ``p // 64``."""
    width = flags.shape[-1]
    padded = torch.zeros((*flags.shape[:-1], n_words * _WORD), dtype=torch.int64, device=flags.device)
    padded[..., :width] = flags
    bits = torch.ones((), dtype=torch.int64, device=flags.device) << torch.arange(_WORD, device=flags.device)
    # distinct bits: their sum is their bitwise or (bit 63 wraps to the sign, as intended)
    return (padded.view(*flags.shape[:-1], n_words, _WORD) * bits).sum(-1)


class MatchIds(NamedTuple):
    """Per-row compact ids of the candidate's token values, shared with the equal reference tokens."""

    pred: Tensor  # (B, L) id in [0, K), or K where a position is not a token
    refs: Tensor  # (B, R, L') id of the equal candidate token, or K where there is none
    n_ids: int  # K: the most distinct candidate tokens of any row


def match_ids(preds: Tensor, pred_keep: Tensor, refs: Tensor, ref_keep: Tensor) -> MatchIds:
    """Name each row's candidate token values ``0..K-1`` with the counting kernel's sort of ``[candidate | refs]``.

    Only positions marked ``keep`` are tokens; reference tokens absent from the candidate can never match and get
    the id ``K``, as do the positions that are not tokens.
    """
    n_sent, pred_width = preds.shape
    tokens = torch.cat([torch.where(pred_keep, preds, -1), torch.where(ref_keep, refs, -1).reshape(n_sent, -1)], 1)
    if tokens.shape[1] == 0:
        return MatchIds(preds.clone(), refs.clone(), 0)
    width = tokens.shape[1]
    key, column, is_token = _sort_rows(tokens)
    del tokens  # each array is freed once read: this sort's temporaries set the peak memory of ROUGE-L
    starts = torch.ones_like(key, dtype=torch.bool)
    torch.ne(key[:, 1:], key[:, :-1], out=starts[:, 1:])
    del key
    # the sort is stable, so a value's candidate occurrences come before its references': a value has an id
    # when the first element of its group comes from the candidate
    named = starts.logical_and(column < pred_width).logical_and_(is_token)
    del is_token
    # int32 where the positions fit: ids, ranks and group starts are the sort's largest temporaries
    small = torch.int32 if width < 2**31 else torch.int64
    rank = torch.cumsum(named, 1, dtype=small).sub_(1)
    position = torch.arange(width, dtype=small, device=column.device)
    group_start = torch.where(starts, position, 0).cummax(1).values.long()
    del starts
    n_ids = int(named.sum(1).max())
    sorted_id = torch.where(torch.gather(named, 1, group_start), rank, n_ids)
    del named, rank, group_start
    ids = torch.empty(sorted_id.shape, dtype=torch.int64, device=column.device).scatter_(1, column, sorted_id.long())
    return MatchIds(ids[:, :pred_width], ids[:, pred_width:].reshape(refs.shape), n_ids)


def _match_masks(ref_ids: Tensor, n_ids: int, n_words: int) -> Tensor:
    """``(B * (K + 1), R, W)`` words: row ``b * (K + 1) + k`` marks where sentence ``b``'s references hold id ``k``.

    Row ``K`` of each sentence stays empty: a candidate position that is not a token matches nothing.
    """
    n_sent, n_refs, width = ref_ids.shape
    device = ref_ids.device
    position = torch.arange(width, device=device)
    bit = torch.ones((), dtype=torch.int64, device=device) << (position % _WORD)
    sent = torch.arange(n_sent, device=device).view(-1, 1, 1)
    ref = torch.arange(n_refs, device=device).view(1, -1, 1)
    index = ((sent * (n_ids + 1) + ref_ids) * n_refs + ref) * n_words + position // _WORD
    value = torch.where(ref_ids < n_ids, bit, 0)  # adding distinct bits is or-ing them; 0 keeps row K empty
    masks = torch.zeros(n_sent * (n_ids + 1) * n_refs * n_words, dtype=torch.int64, device=device)
    masks.index_add_(0, index.reshape(-1), value.reshape(-1))
    return masks.view(n_sent * (n_ids + 1), n_refs, n_words)


def _advance(
    ids: MatchIds,
    n_words: int,
    steps: int,
    lanes: Tensor | None = None,
    reset: Tensor | None = None,
    keep: bool = False,
) -> Tensor:
    """Run the bit-parallel recurrence over the first ``steps`` candidate positions.

    Args:
        ids: the match ids of the batch.
        n_words: words per reference bit vector.
        steps: candidate positions to run (positions that are not tokens change nothing).
        lanes: optional ``(B, R, W)`` words marking the top bit of each independent lane (a reference sentence):
            carries never cross a lane's top bit, so every lane holds its own LCS column.
        reset: optional ``(B, L)`` bool: after these candidate positions every bit vector restarts (a new
            candidate sentence).
        keep: return every intermediate vector, not only the last.

    Returns:
        ``(B, R, W)`` final vectors, or with ``keep`` ``(B, R, steps + 1, W)`` vectors after 0..steps positions.
    """
    n_sent, n_refs = ids.refs.shape[:2]
    device = ids.refs.device
    masks = _match_masks(ids.refs, ids.n_ids, n_words)
    # one contiguous row of mask indices per step
    rows = (torch.arange(n_sent, device=device).unsqueeze(1) * (ids.n_ids + 1) + ids.pred).t().contiguous()
    word = torch.arange(1, n_words + 1, device=device)
    carries = torch.zeros((n_sent, n_refs, n_words + 1), dtype=torch.int64, device=device)
    vec = torch.full((n_sent, n_refs, n_words), _ALL_ONES, dtype=torch.int64, device=device)
    history = None
    if keep:
        history = torch.empty((n_sent, n_refs, steps + 1, n_words), dtype=torch.int64, device=device)
        history[:, :, 0] = vec
    inner = None if lanes is None else ~lanes
    restart = None if reset is None else torch.where(reset, _ALL_ONES, 0).view(n_sent, 1, 1, -1)
    for j in range(steps):
        match = masks.index_select(0, rows[j])
        hit = vec & match
        rest = vec ^ hit  # vec & ~match, since hit lies inside vec
        # with lanes, carries stop at lane tops: add below them, then set each top to its carry-free sum bit
        total = (
            _add_words(vec, hit, word, carries)
            if inner is None
            else _add_words(vec & inner, hit & inner, word, carries) ^ (rest & lanes)
        )
        vec = total | rest
        if restart is not None:
            vec = vec | restart[..., j]
        if history is not None:
            history[:, :, j + 1] = vec
    return vec if history is None else history


def lcs_length(preds: Tensor, pred_len: Tensor, refs: Tensor, ref_len: Tensor) -> Tensor:
    """LCS length of every candidate with each of its references.

    Args:
        preds: ``(B, L)`` left-aligned tokens, valid below ``pred_len`` ``(B,)``.
        pred_len: candidate lengths.
        refs: ``(B, R, L')`` left-aligned tokens, valid below ``ref_len`` ``(B, R)``.
        ref_len: reference lengths (0 for absent references).

    Returns:
        ``(B, R)`` int64 LCS lengths. Cost: ``max(pred_len)`` steps over ``B * R * ceil(L'/64)`` words, and a
        ``B * (K + 1) * R * ceil(L'/64)`` word table of match masks (``K`` the most distinct candidate tokens).

    Example:
        >>> import torch
        >>> preds, refs = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[[2, 4, 3, 9]]])
        >>> lcs_length(preds, torch.tensor([4]), refs, torch.tensor([[3]]))  # LCS of 1 2 3 4 and 2 4 3
        tensor([[2]])
    """
    if _device.host_reads_are_free(preds.device):
        return torch.from_numpy(
            _engine.kernels("lcs").lcs_lengths(*(_numpy(x) for x in (preds, pred_len, refs, ref_len)))
        )
    width = refs.shape[-1]
    n_words = max(1, -(-width // _WORD))
    position = torch.arange(width, device=refs.device)
    ref_keep = position < ref_len.unsqueeze(-1)
    pred_keep = torch.arange(preds.shape[1], device=preds.device) < pred_len.unsqueeze(-1)
    ids = match_ids(preds, pred_keep, refs, ref_keep)
    steps = int(pred_len.max()) if pred_len.numel() else 0
    vec = _advance(ids, n_words, steps)
    return _popcount(~vec & pack_bits(ref_keep, n_words)).sum(-1)


def _sentences(tokens: Tensor, keep: Tensor, sep_id: int) -> tuple[Tensor, Tensor]:
    """Non-empty sentences of ``tokens`` (split at ``sep_id``): a start flag per position and each start's length."""
    width = tokens.shape[-1]
    prev_sep = torch.ones_like(keep)
    prev_sep[..., 1:] = tokens[..., :-1] == sep_id
    start = keep & prev_sep
    # every position that is not a token opens a new segment; a sentence's length is its segment's token count
    segment = torch.cumsum(~keep, -1)
    counts = torch.zeros((*keep.shape[:-1], width + 1), dtype=torch.int64, device=tokens.device)
    counts.scatter_add_(-1, segment, keep.long())
    return start, torch.gather(counts, -1, segment) * start


def _zeros_below(vectors: Tensor, zeros_before: Tensor, row: Tensor, pos: Tensor) -> Tensor:
    """Zero bits below bit ``pos`` of ``vectors[row]`` (``(N, W)`` words, ``zeros_before`` ``(N, W + 1)``)."""
    n_words = vectors.shape[1]
    word = pos >> 6
    low = (torch.ones_like(pos) << (pos & (_WORD - 1))) - 1  # 0 when pos is a multiple of 64
    partial = vectors.view(-1).index_select(0, row * n_words + word.clamp(max=n_words - 1))
    return zeros_before.view(-1).index_select(0, row * (n_words + 1) + word) + _popcount(~partial & low)


def union_lcs_hits(
    preds: Tensor, pred_len: Tensor, refs: Tensor, ref_len: Tensor, sep_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Summary-level union-LCS hits of rouge-score's ``_summary_level_lcs``, sentences split at ``sep_id``.

    For each reference sentence, the union over candidate sentences of the reference positions on the LCS that
    rouge-score's ``_backtrack_norec`` reads out (a match goes diagonally; otherwise left only when that keeps a
    strictly longer LCS, else up); hits per token value are ``min(union positions, candidate count)``.

    Vectorised: one forward pass of the recurrence runs every (reference sentence, candidate sentence) pair at
    once (reference sentences are independent lanes of the bit vector; the vector restarts after each
    candidate separator) and keeps every intermediate vector. The read-out is a loop over path steps, at most
    ``max(len(ref sentence) + len(candidate sentence))``, advancing one walker per sentence pair of the whole
    batch each step (finished walkers are dropped every few steps; pairs without a common token get none); each
    step reads two bits of kept vectors. Memory: ``B * R * (L + 1) * ceil(L'/64)`` words of kept vectors, and a
    few integers per sentence pair that shares a token; the pairs are screened, and their walkers walked, about
    ``_PAIR_BLOCK`` at a time.

    Returns:
        ``(B, R)`` hits, ``(B,)`` candidate token counts and ``(B, R)`` reference token counts (separators
        excluded).
    """
    if _device.host_reads_are_free(preds.device):
        arrays = (_numpy(x) for x in (preds, pred_len, refs, ref_len))
        hits, pred_total, ref_total = _engine.kernels("lcs").union_lcs_hits(*arrays, sep_id)
        return torch.from_numpy(hits), torch.from_numpy(pred_total), torch.from_numpy(ref_total)
    n_sent, n_refs, width = refs.shape
    device = refs.device
    n_words = max(1, -(-width // _WORD))
    ref_pos = torch.arange(width, device=device)
    pred_pos = torch.arange(preds.shape[1], device=device)
    ref_inside = ref_pos < ref_len.unsqueeze(-1)
    pred_inside = pred_pos < pred_len.unsqueeze(-1)
    ref_keep = ref_inside & (refs != sep_id)
    pred_keep = pred_inside & (preds != sep_id)
    ids = match_ids(preds, pred_keep, refs, ref_keep)
    # a lane ends where the next position is a separator or the reference ends
    next_sep = torch.zeros_like(ref_keep)
    next_sep[..., :-1] = refs[..., 1:] == sep_id
    lane_top = ref_inside & (next_sep | (ref_pos == ref_len.unsqueeze(-1) - 1))
    steps = int(pred_len.max())
    history = _advance(
        ids, n_words, steps, lanes=pack_bits(lane_top, n_words), reset=pred_inside & ~pred_keep, keep=True
    )
    history = history.view(-1)

    ref_start, ref_size = _sentences(refs, ref_keep, sep_id)
    pred_start, pred_size = _sentences(preds, pred_keep, sep_id)
    # every (reference sentence, candidate sentence) pair of the same row is a candidate for a walker
    r_sent, r_ref, r_pos = ref_start.nonzero(as_tuple=True)
    p_sent, p_pos = pred_start.nonzero(as_tuple=True)
    r_size, p_size = ref_size[r_sent, r_ref, r_pos], pred_size[p_sent, p_pos]
    per_row = pred_start.sum(1)
    pairs_of = per_row[r_sent]  # candidate sentences paired with each reference sentence
    first_pred = (torch.cumsum(per_row, 0) - per_row)[r_sent]  # the first of them
    # a pair whose LCS is 0 marks nothing, so gets no walker (most pairs of unrelated sentences). Its LCS is the
    # number of zero bits of its lane in the vector after the candidate sentence's last token.
    ends = (p_sent.unsqueeze(1) * n_refs + torch.arange(n_refs, device=device)) * (steps + 1)
    ends = (ends + (p_pos + p_size).unsqueeze(1)).reshape(-1)
    end_vectors = history.view(-1, n_words).index_select(0, ends)
    zeros_before = torch.zeros((ends.numel(), n_words + 1), dtype=torch.int64, device=device)
    zeros_before[:, 1:] = torch.cumsum(_popcount(~end_vectors), -1)
    on_path = torch.zeros(n_sent * n_refs * width, dtype=torch.int64, device=device)
    flat_ids = (ids.refs.reshape(-1), ids.pred.reshape(-1))

    def walk(walker_ref: Tensor, walker_pred: Tensor) -> None:
        sent = r_sent[walker_ref]
        ref_row = sent * n_refs + r_ref[walker_ref]
        ref_begin, a = r_pos[walker_ref], r_size[walker_ref]
        pred_begin, c = p_pos[walker_pred], p_size[walker_pred]
        # walker state: the path's cell (a, c) in its pair's table, and fixed offsets (minus one, so that row a is
        # flat reference position ref_at + a and bit bit_at + a of its vectors, column c is flat candidate position
        # pred_at + c, and the vector after c candidate tokens is number snap + c + 1)
        walkers = torch.stack(
            [
                a,
                c,
                ref_row * width + ref_begin - 1,
                sent * preds.shape[1] + pred_begin - 1,
                ref_row * (steps + 1) + pred_begin - 1,
                ref_begin - 1,
            ]
        )
        _walk(walkers, history, n_words, flat_ids, on_path)

    # the pairs (quadratic in the sentences of a row) are screened a block of reference sentences at a time, and
    # those that share a token are walked once about _PAIR_BLOCK of them have gathered: every temporary stays
    # within a few blocks of pairs, and the walks are as few as the pairs to walk allow
    pending_ref: list[Tensor] = []
    pending_pred: list[Tensor] = []
    n_pending = 0
    for lo, hi in _blocks(pairs_of, _PAIR_BLOCK):
        counts = pairs_of[lo:hi]
        walker_ref = torch.repeat_interleave(torch.arange(lo, hi, device=device), counts)
        walker_pred = torch.arange(walker_ref.numel(), device=device)
        walker_pred += (first_pred[lo:hi] - (torch.cumsum(counts, 0) - counts))[walker_ref - lo]
        pair = walker_pred * n_refs + r_ref[walker_ref]
        lane_start = r_pos[walker_ref]
        lcs = _zeros_below(end_vectors, zeros_before, pair, lane_start + r_size[walker_ref])
        lcs -= _zeros_below(end_vectors, zeros_before, pair, lane_start)
        shared = (lcs > 0).nonzero().squeeze(1)
        del pair, lane_start, lcs
        pending_ref.append(walker_ref[shared])
        pending_pred.append(walker_pred[shared])
        n_pending += shared.numel()
        del walker_ref, walker_pred, shared
        if n_pending >= _PAIR_BLOCK:
            walk(torch.cat(pending_ref), torch.cat(pending_pred))
            pending_ref, pending_pred, n_pending = [], [], 0
    del end_vectors, zeros_before
    if n_pending:
        walk(torch.cat(pending_ref), torch.cat(pending_pred))
    union = (on_path > 0).view(n_sent, n_refs, width)
    n_ids = ids.n_ids
    union_count = torch.zeros(n_sent, n_refs, n_ids + 1, dtype=torch.int64, device=device)
    union_count.scatter_add_(-1, ids.refs, union.long())
    pred_count = torch.zeros(n_sent, n_ids + 1, dtype=torch.int64, device=device)
    pred_count.scatter_add_(-1, ids.pred, pred_keep.long())
    hits = torch.minimum(union_count[..., :n_ids], pred_count[:, None, :n_ids]).sum(-1)
    return hits, pred_keep.sum(-1), ref_keep.sum(-1)


def _walk(walkers: Tensor, history: Tensor, n_words: int, flat_ids: tuple[Tensor, Tensor], on_path: Tensor) -> None:
    """Walk rouge-score's backtrack of every walker to its table's edge, counting the matches on its path into
    ``on_path`` (per flat reference position).

    ``walkers`` is ``(6, N)``: the cell ``(a, c)`` and the offsets ``ref_at``, ``pred_at``, ``snap`` and ``bit_at``
    of ``union_lcs_hits``; ``history`` the flat kept vectors; ``flat_ids`` the flat reference and candidate ids.
    """
    flat_ref_ids, flat_pred_ids = flat_ids
    while walkers.shape[1]:
        a, c, ref_at, pred_at, snap, bit_at = walkers
        for _ in range(_BACKTRACK_COMPACT_EVERY):
            active = (a > 0) & (c > 0)
            # finished walkers keep reading valid positions and change nothing
            a_at, c_at = a.clamp(min=1), c.clamp(min=1)
            here = ref_at + a_at
            same = flat_ref_ids.index_select(0, here) == flat_pred_ids.index_select(0, pred_at + c_at)
            # rouge-score goes left when t[a][c-1] > t[a-1][c]. With D = t[a-1][c-1]: t[a][c-1] = D + 1 exactly
            # when bit P (row a) of the vector after c - 1 tokens is 0; then t[a][c] = D + 1 (it is at least
            # t[a][c-1] and at most D + 1), so t[a-1][c] = D exactly when bit P after c tokens is 0 as well.
            # Two bits decide, no prefix count is needed.
            bit = bit_at + a_at
            word = (snap + c_at) * n_words + (bit >> 6)
            both = history.index_select(0, word) | history.index_select(0, word + n_words)
            go_left = ~same & (((both >> (bit & (_WORD - 1))) & 1) == 0)
            on_path.index_add_(0, here, (active & same).long())
            a = a - (active & ~go_left).long()
            c = c - (active & (same | go_left)).long()
        walkers[0], walkers[1] = a, c
        walkers = walkers[:, ((a > 0) & (c > 0)).nonzero().squeeze(1)]


def _blocks(sizes: Tensor, block: int) -> list[tuple[int, int]]:
    """Consecutive ranges ``[lo, hi)`` of the items of ``sizes`` holding about ``block`` of their sizes each (at
    least one item each; the ranges cover every item, none when there are none)."""
    n_items = sizes.numel()
    total = int(sizes.sum()) if n_items else 0
    if total <= block:
        return [(0, n_items)] if n_items else []
    # the item at which each multiple of the block is passed starts a range
    ends = torch.cumsum(sizes, 0)
    cuts = torch.searchsorted(ends, torch.arange(block, total, block, device=sizes.device), right=True)
    bounds = sorted({0, n_items, *cuts.tolist()})
    return list(itertools.pairwise(bounds))
