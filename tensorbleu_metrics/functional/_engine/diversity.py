"""Compiled kernels for the counts across the samples of a group: Self-BLEU's leave-one-out clipping, distinct-n.

Each group is one row of ``run_rows``. Its samples are laid end to end, each token given a dense id through the
thread's persistent direct map; n-gram ids are then built order by order by extending each (n-1)-gram id with its
next token: positions are bucketed by that token's id (a counting sort), and within a bucket a stamped table
indexed by the prefix id gives each distinct (prefix, token) pair the next free id. Only positions whose n-gram can
still matter go one order up: for Self-BLEU an n-gram held by at least two samples (one held by a single sample
clips to 0, and so does every longer n-gram starting there), for distinct-n an n-gram occurring at least twice (one
occurring once makes every longer n-gram starting there new, counted without building its id).

Self-BLEU then goes sample by sample: each sample's count of each of its n-grams is handed once to the n-gram's two
largest counts over samples (with multiplicity), and a sample's clip count is the largest, or the second largest
where the sample holds the largest. distinct-n counts the ids. The loops over positions are branch-free where
the branch would follow the data, and their array indices are cast to unsigned (they are never negative), which
spares each access Numba's handling of negative indices.

Cost: ``O(T + V)`` per order for a group of ``T`` tokens with ``V`` different tokens, no sort and no hashing.
Memory: the per-thread token map, plus 76 bytes per token of the largest group, in buffers each thread keeps
between calls (a fresh large array costs its page faults on every call) up to groups of ``KEEP_WIDTH`` tokens.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from numba import uintp

from tensorbleu_metrics.functional._engine import dense_tokens, run_rows, token_scratch

__all__ = ["distinct", "leave_one_out"]


# fields of the per-n-gram state (one 32-byte row per id, so that a position touches one cache line): the last
# sample seen holding the n-gram and its count there; the two largest counts over samples; its occurrences in the
# group
SEEN, COUNT, TOP, SECOND, OCCURRENCES = range(5)
STATE_FIELDS = 8


@numba.njit(nogil=True, cache=True, inline="always")
def _new_id(state, j):  # pragma: no cover
    j = uintp(j)
    state[j, SEEN] = -1
    state[j, COUNT] = 0
    state[j, TOP] = 0
    state[j, SECOND] = 0
    state[j, OCCURRENCES] = 1


@numba.njit(nogil=True, cache=True)
def _lay_out(
    preds, lengths, order, lo, hi, token_ids, token_stamps, stamp, tok, ends, sample, state
):  # pragma: no cover
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
            x = uintp(preds[uintp(s), uintp(j)])
            if token_stamps[x] != stamp:
                token_stamps[x] = stamp
                token_ids[x] = v
                _new_id(state, v)
                v += 1
            else:
                state[uintp(token_ids[x]), OCCURRENCES] += 1
            tok[uintp(t)] = token_ids[x]
            ends[uintp(t)] = end
            sample[uintp(t)] = k - lo
            t += 1
    return t, v


@numba.njit(nogil=True, cache=True)
def _extend(
    n, alive, n_alive, tok, n_types, cur, by_token, bucket, prefix_stamp, prefix_map, stamp, state
):  # pragma: no cover
    """Order-``n`` ids at the ``alive`` positions from their (n-1)-gram ids in ``cur`` (overwritten), each id's
    state reset and its occurrences counted.

    Returns (ids handed out, last prefix stamp used).
    """
    # counting sort of the positions by their n-th token
    bucket[: n_types + 1] = 0
    for i in range(n_alive):
        bucket[uintp(tok[uintp(alive[i] + n - 1)] + 1)] += 1
    for b in range(n_types):
        bucket[uintp(b + 1)] += bucket[uintp(b)]
    for i in range(n_alive):
        p = alive[i]
        b = uintp(tok[uintp(p + n - 1)])
        by_token[uintp(bucket[b])] = p
        bucket[b] += 1
    # within a bucket the prefix id alone names the n-gram: a fresh stamp per bucket
    n_ids = 0
    last_token = -1
    for i in range(n_alive):
        p = uintp(by_token[i])
        b = tok[uintp(p + n - 1)]
        if b != last_token:
            last_token = b
            stamp += 1
        prefix = uintp(cur[p])
        if prefix_stamp[prefix] != stamp:
            prefix_stamp[prefix] = stamp
            prefix_map[prefix] = n_ids
            _new_id(state, n_ids)
            n_ids += 1
        else:
            state[uintp(prefix_map[prefix]), OCCURRENCES] += 1
        cur[p] = prefix_map[prefix]
    return n_ids, stamp


@numba.njit(nogil=True, cache=True)
def _leave_one_out_rows(
    start,
    stop,
    preds,
    lengths,
    order,
    group_start,
    n_gram,
    matches,
    token_ids,
    token_stamps,
    stamp,
    work,
    state,
    prefix_stamp,
    local_stamp,
):  # pragma: no cover
    """Self-BLEU's clipped matches of the samples of groups ``[start, stop)``.

    ``work`` holds ``WORK_ROWS`` rows and ``state`` ``STATE_FIELDS`` columns, as wide (long) as the largest group
    plus one. Returns the last token stamp and the last prefix stamp used.
    """
    tok, ends, sample, cur, alive, by_token, bucket, prefix_map, own = (
        work[0],
        work[1],
        work[2],
        work[3],
        work[4],
        work[5],
        work[6],
        work[7],
        work[8],
    )
    # the positions whose n-gram occurs more than once (the others clip to 0): by_token, free between extensions
    live = by_token
    for g in range(start, stop):
        lo = group_start[g]
        stamp += 1
        n_tokens, n_types = _lay_out(
            preds, lengths, order, lo, group_start[g + 1], token_ids, token_stamps, stamp, tok, ends, sample, state
        )
        for i in range(n_tokens):
            alive[uintp(i)] = i
            cur[uintp(i)] = tok[uintp(i)]
        n_alive = n_tokens
        for n in range(1, n_gram + 1):
            if n_alive == 0:
                break
            if n > 1:
                _, local_stamp = _extend(
                    n, alive, n_alive, tok, n_types, cur, by_token, bucket, prefix_stamp, prefix_map, local_stamp, state
                )
            # branch-free below: which way each test goes is data, not a pattern the processor could predict
            n_live = 0
            for i in range(n_alive):
                p = alive[i]
                live[uintp(n_live)] = p
                n_live += state[uintp(cur[uintp(p)]), OCCURRENCES] >= 2
            # sample by sample (the live positions ascend): count its n-grams, then hand each count once to the
            # n-gram's two largest counts over samples (counted with multiplicity: the second equals the largest
            # where two samples hold it), kept at the sample's first occurrence in own (0 elsewhere)
            i = 0
            while i < n_live:
                s = sample[uintp(live[uintp(i)])]
                e = i
                while e < n_live and sample[uintp(live[uintp(e)])] == s:
                    j = uintp(cur[uintp(live[uintp(e)])])
                    state[j, COUNT] = state[j, COUNT] * (state[j, SEEN] == s) + 1
                    state[j, SEEN] = s
                    e += 1
                for q in range(i, e):
                    j = uintp(cur[uintp(live[uintp(q)])])
                    c = state[j, COUNT]
                    own[uintp(q)] = c
                    state[j, COUNT] = 0
                    top = state[j, TOP]
                    state[j, SECOND] = max(state[j, SECOND], min(c, top))
                    state[j, TOP] = max(top, c)
                i = e
            # clip each sample's count against the largest among the others: the second largest where it holds
            # the largest; n-grams held by one sample (second largest 0) go no further, as every longer one
            # starting there clips to 0. Summed per sample in a register, not in matches (a chain of stores)
            kept = 0
            i = 0
            while i < n_live:
                s = sample[uintp(live[uintp(i)])]
                total = 0
                while i < n_live and sample[uintp(live[uintp(i)])] == s:
                    p = live[uintp(i)]
                    j = uintp(cur[uintp(p)])
                    c = own[uintp(i)]
                    top = state[j, TOP]
                    second = state[j, SECOND]
                    total += min(c, second if c == top else top)
                    alive[uintp(kept)] = p
                    kept += (second > 0) & (p + n < ends[uintp(p)])
                    i += 1
                matches[order[lo + s], n - 1] += total
            n_alive = kept
    return stamp, local_stamp


@numba.njit(nogil=True, cache=True)
def _distinct_rows(
    start,
    stop,
    preds,
    lengths,
    order,
    group_start,
    n_gram,
    distinct,
    token_ids,
    token_stamps,
    stamp,
    work,
    state,
    prefix_stamp,
    local_stamp,
):  # pragma: no cover
    """distinct-n counts of groups ``[start, stop)``, orders 1..n_gram.

    ``work`` and ``state`` as for ``_leave_one_out_rows``. Returns the last token stamp and the last prefix
    stamp used.
    """
    tok, ends, sample, cur, alive, by_token, bucket, prefix_map = (
        work[0],
        work[1],
        work[2],
        work[3],
        work[4],
        work[5],
        work[6],
        work[7],
    )
    # n-grams counted without an id, as differences along the orders: +1 at the first order, -1 past the last
    unique = np.empty(n_gram + 2, np.int64)
    for g in range(start, stop):
        stamp += 1
        n_tokens, n_ids = _lay_out(
            preds,
            lengths,
            order,
            group_start[g],
            group_start[g + 1],
            token_ids,
            token_stamps,
            stamp,
            tok,
            ends,
            sample,
            state,
        )
        n_types = n_ids
        unique[:] = 0
        for i in range(n_tokens):
            alive[uintp(i)] = i
            cur[uintp(i)] = tok[uintp(i)]
        n_alive = n_tokens
        for n in range(1, n_gram + 1):
            if n_alive == 0:
                break
            if n > 1:
                n_ids, local_stamp = _extend(
                    n, alive, n_alive, tok, n_types, cur, by_token, bucket, prefix_stamp, prefix_map, local_stamp, state
                )
            distinct[g, n - 1] = n_ids
            if n == n_gram:
                break
            kept = 0
            for i in range(n_alive):
                p = alive[i]
                if p + n < ends[uintp(p)]:
                    if state[uintp(cur[uintp(p)]), OCCURRENCES] >= 2:
                        alive[uintp(kept)] = p
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
    return stamp, local_stamp


WORK_ROWS = 9


class _Work:
    """A thread's work buffers, kept between calls: nine int32 rows of positions, the per-n-gram state and the
    prefix table's stamps, each as long as the largest group plus one."""

    def __init__(self) -> None:
        self.rows = np.zeros((WORK_ROWS, 0), dtype=np.int32)
        self.state = np.zeros((0, STATE_FIELDS), dtype=np.int32)
        # stamps of the prefix table (never cleared, like the token map's)
        self.prefix_stamps = np.zeros(0, dtype=np.int64)
        self.stamp = 0

    def reserve(self, width: int) -> None:
        if self.rows.shape[1] < width:
            # grown geometrically up to the kept size: calls of slowly growing groups reallocate rarely
            width = max(width, min(2 * self.rows.shape[1], KEEP_WIDTH))
            self.rows = np.empty((WORK_ROWS, width), dtype=np.int32)
            self.state = np.empty((width, STATE_FIELDS), dtype=np.int32)
            self.prefix_stamps = np.zeros(width, dtype=np.int64)
            self.stamp = 0


_local = threading.local()
# groups up to this many tokens use the thread's kept buffers; a larger one gets buffers of its own call, so that
# one huge call does not hold its memory afterwards
KEEP_WIDTH = 1 << 20


def _work(width: int) -> _Work:
    """This thread's ``_Work``, at least ``width`` wide."""
    if width > KEEP_WIDTH:
        work = _Work()
        work.reserve(width)
        return work
    work = getattr(_local, "work", None)
    if work is None:
        work = _local.work = _Work()
    work.reserve(width)
    return work


def _run(kernel: Any, preds: Any, lengths: Any, group: Any, n_groups: int, out: np.ndarray) -> None:
    """``kernel`` over the groups, in blocks of about equal token counts, writing into ``out``."""
    preds = np.ascontiguousarray(preds, dtype=np.int64)
    lengths = np.clip(np.asarray(lengths, dtype=np.int64), 0, preds.shape[1])
    (preds,), vocab_size = dense_tokens([preds], [lengths])
    if group is None:  # each sample its own group, in order (a few small calls fewer, which count at GRPO sizes)
        group_start = np.arange(n_groups + 1, dtype=np.int64)
        order, sizes = group_start[:-1], lengths
    else:
        group = np.asarray(group, dtype=np.int64)
        order = np.argsort(group, kind="stable")
        sizes = np.bincount(group, weights=lengths, minlength=n_groups).astype(np.int64)
        group_start = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(group, minlength=n_groups), out=group_start[1:])
    width = int(sizes.max()) + 1 if n_groups else 1
    n_gram = out.shape[1]

    def rows(start: int, stop: int) -> None:
        scratch = token_scratch(vocab_size)
        work = _work(width)
        scratch.stamp, work.stamp = kernel(
            start,
            stop,
            preds,
            lengths,
            order,
            group_start,
            n_gram,
            out,
            scratch.ids,
            scratch.stamps,
            scratch.stamp,
            work.rows,
            work.state,
            work.prefix_stamps,
            work.stamp,
        )

    run_rows(rows, n_groups, sizes)


def leave_one_out(preds: np.ndarray, lengths: np.ndarray, group: np.ndarray, n_groups: int, n_gram: int) -> np.ndarray:
    """Self-BLEU's clipped matches: ``(B, n_gram)`` int64.

    ``preds`` ``(B, L)`` holds left-aligned samples, valid below ``lengths`` ``(B,)``; ``group`` ``(B,)`` their group
    ids in ``0..n_groups-1``. For sample ``s`` and order ``n``: the sum over its different n-grams ``g`` of
    ``min(count_s(g), max over the other samples t of its group of count_t(g))`` (0 for a sample alone).
    """
    matches = np.zeros((preds.shape[0], n_gram), dtype=np.int64)
    _run(_leave_one_out_rows, preds, lengths, group, n_groups, matches)
    return matches


def distinct(
    preds: np.ndarray, lengths: np.ndarray, group: np.ndarray | None, n_groups: int, n_gram: int
) -> np.ndarray:
    """distinct-n counts: ``(n_groups, n_gram)`` int64, the number of different n-grams of each order over all
    samples of each group together (n-grams never span two samples). ``group`` ``None``: each sample is its own
    group (``n_groups`` samples)."""
    counts = np.zeros((n_groups, n_gram), dtype=np.int64)
    _run(_distinct_rows, preds, lengths, group, n_groups, counts)
    return counts
