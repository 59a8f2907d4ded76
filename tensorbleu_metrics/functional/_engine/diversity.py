"""Compiled kernels for the counts across the samples of a group: Self-BLEU's leave-one-out clipping, distinct-n.

Each group is one row of :func:`run_rows`. Its samples are laid end to end, each token given a dense id through the
thread's persistent direct map; n-gram ids are then built order by order by extending each (n-1)-gram id with its
next token: positions are bucketed by that token's id (a counting sort), and within a bucket a stamped table
indexed by the prefix id gives each distinct (prefix, token) pair the next free id. Only positions whose n-gram can
still matter go one order up: for Self-BLEU an n-gram held by at least two samples (one held by a single sample
clips to 0, and so does every longer n-gram starting there), for distinct-n an n-gram occurring at least twice (one
occurring once makes every longer n-gram starting there new, counted without building its id).

Cost: ``O(T + V)`` per order for a group of ``T`` tokens with ``V`` different tokens, no sort and no hashing.
Memory: the per-thread token map, plus about 72 bytes per token of the largest group of a block of rows (Self-BLEU;
about 44 for distinct-n), allocated once per call.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from tensorbleu_metrics.functional._engine import MAP_LIMIT, dense_tokens, run_rows, token_scratch

__all__ = ["distinct", "leave_one_out"]


@numba.njit(nogil=True, cache=True)
def _lay_out(preds, lengths, order, lo, hi, token_ids, token_stamps, stamp, tok, ends, sample):  # pragma: no cover
    """Samples ``order[lo:hi]`` end to end: dense token ids, each position's sample end and local sample index.

    Returns (tokens, different tokens).
    """
    t = 0
    v = 0
    for k in range(lo, hi):
        s = order[k]
        n = lengths[s]
        end = t + n
        for j in range(n):
            x = preds[s, j]
            if token_stamps[x] != stamp:
                token_stamps[x] = stamp
                token_ids[x] = v
                v += 1
            tok[t] = token_ids[x]
            ends[t] = end
            sample[t] = k - lo
            t += 1
    return t, v


@numba.njit(nogil=True, cache=True)
def _extend(
    n, alive, n_alive, tok, n_tokens, cur, by_token, bucket, prefix_stamp, prefix_map, stamp
):  # pragma: no cover
    """Order-``n`` ids at the ``alive`` positions from their (n-1)-gram ids in ``cur`` (overwritten).

    Returns (ids handed out, last stamp used).
    """
    # counting sort of the positions by their n-th token
    bucket[: n_tokens + 1] = 0
    for i in range(n_alive):
        bucket[tok[alive[i] + n - 1] + 1] += 1
    for b in range(n_tokens):
        bucket[b + 1] += bucket[b]
    for i in range(n_alive):
        p = alive[i]
        b = tok[p + n - 1]
        by_token[bucket[b]] = p
        bucket[b] += 1
    # within a bucket the prefix id alone names the n-gram: a fresh stamp per bucket
    n_ids = 0
    last_token = -1
    for i in range(n_alive):
        p = by_token[i]
        b = tok[p + n - 1]
        if b != last_token:
            last_token = b
            stamp += 1
        prefix = cur[p]
        if prefix_stamp[prefix] != stamp:
            prefix_stamp[prefix] = stamp
            prefix_map[prefix] = n_ids
            n_ids += 1
        cur[p] = prefix_map[prefix]
    return n_ids, stamp


@numba.njit(nogil=True, cache=True)
def _leave_one_out_rows(
    start, stop, preds, lengths, order, group_start, n_gram, matches, token_ids, token_stamps, stamp
):  # pragma: no cover
    """Self-BLEU's clipped matches of the samples of groups ``[start, stop)``. Returns the last token stamp used."""
    width = 0
    for g in range(start, stop):
        size = 0
        for k in range(group_start[g], group_start[g + 1]):
            size += lengths[order[k]]
        width = max(width, size)
    tok = np.empty(width, np.int32)
    ends = np.empty(width, np.int32)
    sample = np.empty(width, np.int32)
    cur = np.empty(width, np.int32)
    alive = np.empty(width, np.int32)
    by_token = np.empty(width, np.int32)
    bucket = np.empty(width + 1, np.int32)
    prefix_stamp = np.zeros(width, np.int64)
    prefix_map = np.empty(width, np.int32)
    # per n-gram id: the sample last seen holding it, its count there and the position index of its first
    # occurrence there; the largest count over samples, the second largest, how many samples hold the largest,
    # how many hold it at all
    last = np.empty(width, np.int32)
    count = np.empty(width, np.int32)
    first = np.empty(width, np.int32)
    top = np.empty(width, np.int32)
    second = np.empty(width, np.int32)
    n_top = np.empty(width, np.int32)
    holders = np.empty(width, np.int32)
    # at a sample's first occurrence of an n-gram, its count in that sample; 0 elsewhere
    own = np.empty(width, np.int32)
    local_stamp = 0
    for g in range(start, stop):
        lo = group_start[g]
        stamp += 1
        n_tokens, n_ids = _lay_out(
            preds, lengths, order, lo, group_start[g + 1], token_ids, token_stamps, stamp, tok, ends, sample
        )
        for i in range(n_tokens):
            alive[i] = i
            cur[i] = tok[i]
        n_alive = n_tokens
        for n in range(1, n_gram + 1):
            if n_alive == 0:
                break
            if n > 1:
                n_ids, local_stamp = _extend(
                    n, alive, n_alive, tok, n_tokens, cur, by_token, bucket, prefix_stamp, prefix_map, local_stamp
                )
            for j in range(n_ids):
                last[j] = -1
                top[j] = 0
                second[j] = 0
                n_top[j] = 0
                holders[j] = 0
            # the alive positions ascend, so each sample's come together: a sample's count of an n-gram is final
            # when the next sample holding it shows up, or at the end
            for i in range(n_alive):
                p = alive[i]
                j = cur[p]
                s = sample[p]
                own[i] = 0
                if last[j] != s:
                    if last[j] >= 0:
                        c = count[j]
                        own[first[j]] = c
                        holders[j] += 1
                        if c > top[j]:
                            second[j] = top[j]
                            top[j] = c
                            n_top[j] = 1
                        elif c == top[j]:
                            n_top[j] += 1
                        elif c > second[j]:
                            second[j] = c
                    last[j] = s
                    count[j] = 1
                    first[j] = i
                else:
                    count[j] += 1
            for j in range(n_ids):
                if last[j] >= 0:
                    c = count[j]
                    own[first[j]] = c
                    holders[j] += 1
                    if c > top[j]:
                        second[j] = top[j]
                        top[j] = c
                        n_top[j] = 1
                    elif c == top[j]:
                        n_top[j] += 1
                    elif c > second[j]:
                        second[j] = c
            # clip each sample's count against the largest among the others: the largest unless it alone holds it
            kept = 0
            for i in range(n_alive):
                p = alive[i]
                j = cur[p]
                c = own[i]
                if c > 0:
                    other = second[j] if c == top[j] and n_top[j] == 1 else top[j]
                    matches[order[lo + sample[p]], n - 1] += min(c, other)
                if holders[j] >= 2 and p + n < ends[p]:
                    alive[kept] = p
                    kept += 1
            n_alive = kept
    return stamp


@numba.njit(nogil=True, cache=True)
def _distinct_rows(
    start, stop, preds, lengths, order, group_start, n_gram, distinct, token_ids, token_stamps, stamp
):  # pragma: no cover
    """distinct-n counts of groups ``[start, stop)``, orders 1..n_gram. Returns the last token stamp used."""
    width = 0
    for g in range(start, stop):
        size = 0
        for k in range(group_start[g], group_start[g + 1]):
            size += lengths[order[k]]
        width = max(width, size)
    tok = np.empty(width, np.int32)
    ends = np.empty(width, np.int32)
    sample = np.empty(width, np.int32)
    cur = np.empty(width, np.int32)
    alive = np.empty(width, np.int32)
    by_token = np.empty(width, np.int32)
    bucket = np.empty(width + 1, np.int32)
    prefix_stamp = np.zeros(width, np.int64)
    prefix_map = np.empty(width, np.int32)
    occurrences = np.empty(width, np.int32)
    # n-grams counted without an id, as differences along the orders: +1 at the first order, -1 past the last
    unique = np.empty(n_gram + 2, np.int64)
    local_stamp = 0
    for g in range(start, stop):
        stamp += 1
        n_tokens, n_ids = _lay_out(
            preds, lengths, order, group_start[g], group_start[g + 1], token_ids, token_stamps, stamp, tok, ends, sample
        )
        unique[:] = 0
        for i in range(n_tokens):
            alive[i] = i
            cur[i] = tok[i]
        n_alive = n_tokens
        for n in range(1, n_gram + 1):
            if n_alive == 0:
                break
            if n > 1:
                n_ids, local_stamp = _extend(
                    n, alive, n_alive, tok, n_tokens, cur, by_token, bucket, prefix_stamp, prefix_map, local_stamp
                )
            distinct[g, n - 1] = n_ids
            if n == n_gram:
                break
            occurrences[:n_ids] = 0
            for i in range(n_alive):
                occurrences[cur[alive[i]]] += 1
            kept = 0
            for i in range(n_alive):
                p = alive[i]
                if p + n < ends[p]:
                    if occurrences[cur[p]] >= 2:
                        alive[kept] = p
                        kept += 1
                    else:
                        # a single occurrence: every longer n-gram starting here is new, up to the sample's end
                        unique[n + 1] += 1
                        unique[min(n_gram, ends[p] - p) + 1] -= 1
            n_alive = kept
        running = 0
        for n in range(2, n_gram + 1):
            running += unique[n]
            distinct[g, n - 1] += running
    return stamp


def _dense_preds(preds: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """``preds`` with token values a direct map covers, and the map size (values past a length are no tokens)."""
    if preds.size:
        low, high = int(preds.min()), int(preds.max())
        if low >= 0 and high < MAP_LIMIT:
            return preds, high + 1
    # only the tokens decide whether they are renumbered: the padding is set to 0
    valid = np.arange(preds.shape[1]) < lengths[:, None]
    (tokens,), vocab_size = dense_tokens([preds[valid]])
    out = np.zeros_like(preds)
    out[valid] = tokens
    return out, vocab_size


def _run(kernel: Any, preds: Any, lengths: Any, group: Any, n_groups: int, out: np.ndarray) -> None:
    """``kernel`` over the groups, in blocks of about equal token counts, writing into ``out``."""
    preds = np.ascontiguousarray(preds, dtype=np.int64)
    lengths = np.clip(np.asarray(lengths, dtype=np.int64), 0, preds.shape[1])
    group = np.asarray(group, dtype=np.int64)
    preds, vocab_size = _dense_preds(preds, lengths)
    order = np.argsort(group, kind="stable")
    group_start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=group_start[1:])
    n_gram = out.shape[1]

    def rows(start: int, stop: int) -> None:
        scratch = token_scratch(vocab_size)
        scratch.stamp = kernel(
            start, stop, preds, lengths, order, group_start, n_gram, out, scratch.ids, scratch.stamps, scratch.stamp
        )

    run_rows(rows, n_groups, np.bincount(group, weights=lengths, minlength=n_groups))


def leave_one_out(preds: np.ndarray, lengths: np.ndarray, group: np.ndarray, n_groups: int, n_gram: int) -> np.ndarray:
    """Self-BLEU's clipped matches: ``(B, n_gram)`` int64.

    ``preds`` ``(B, L)`` holds left-aligned samples, valid below ``lengths`` ``(B,)``; ``group`` ``(B,)`` their group
    ids in ``0..n_groups-1``. For sample ``s`` and order ``n``: the sum over its different n-grams ``g`` of
    ``min(count_s(g), max over the other samples t of its group of count_t(g))`` (0 for a sample alone).
    """
    matches = np.zeros((preds.shape[0], n_gram), dtype=np.int64)
    _run(_leave_one_out_rows, preds, lengths, group, n_groups, matches)
    return matches


def distinct(preds: np.ndarray, lengths: np.ndarray, group: np.ndarray, n_groups: int, n_gram: int) -> np.ndarray:
    """distinct-n counts: ``(n_groups, n_gram)`` int64, the number of different n-grams of each order over all
    samples of each group together (n-grams never span two samples)."""
    counts = np.zeros((n_groups, n_gram), dtype=np.int64)
    _run(_distinct_rows, preds, lengths, group, n_groups, counts)
    return counts
