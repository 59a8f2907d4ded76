"""Clipped n-gram matches of a candidate against its references: compiled per-row kernels.

A row (one candidate and its references) is laid out as ``[0 | candidate | -1 | ref 0 | ref 1 ...]``, each position
holding an n-gram id of the order at hand. An n-gram of the candidate is named by the position where it first ends
in the candidate (1..lp), so ids need no counter: a token's id comes from the thread's persistent direct map, whose
entries hold ``row base + first position`` (entries from earlier rows lie at or below the base, so the map is never
cleared); a reference token the candidate lacks gets 0. Order n's id at a position comes from order n - 1's id p one
position back (the prefix) and the position's token: the first n-gram after the prefix's first occurrence ends at
p + 1, so when the token at p + 1 is the position's token the id is p + 1, read with one comparison and no table. Only
a prefix followed in the candidate by several different tokens needs more: the candidate's pass marks it (a stamped
array indexed by the prefix) and enters its other continuations in a small open-addressing table keyed by (prefix,
token); a reference position looks there only when its prefix is marked. Each order is one forward pass over the
candidate and one over each reference, without branches on the data outside that rare case.

Counting is folded into the same passes: the candidate's pass counts its n-grams first, then each reference
occurrence adds one to ``min(count_cand, count_ref)`` and, when it raises the largest reference count, to
``min(count_cand, max_r count_r)``; the n-grams a candidate lacks all fall into slot 0, whose candidate count stays 0.
A row stops at the first order without a match.

Cost per row: O(tokens) per order, one map lookup per token. Memory: the thread's map (its 8-byte stamps per
vocabulary entry, kept between calls and shared with the other kernels) and, in buffers each thread keeps between
calls, 8 bytes per position of the widest row plus at most ``80 + 4 R`` bytes per token of the longest candidate (R
references).
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from numba import uintp

from tensorbleu_metrics.functional._engine import MAP_LIMIT, dense_tokens, run_rows, token_scratch

__all__ = ["count_pairs"]

_HASH = np.int64(-7046029254386353131)  # 2**64 / golden ratio, as int64: a multiplicative hash
# the table's keys are ``table base + key`` with the base moving past every key at each order; before it could
# overflow, the table is cleared and the base starts again at 0
_TABLE_RESET = np.int64(1) << 61


@numba.njit(nogil=True, cache=True)
def _find(table, table_base, key, shift, mask, value):
    """The value of ``key`` in the table (linear probing); a missing key gets ``value`` if it is > 0, else is 0."""
    full = table_base + key
    s = ((key * _HASH) >> shift) & mask
    while True:
        held = table[uintp(s), 0]
        if held == full:
            return table[uintp(s), 1]
        if held <= table_base:  # empty: keys of earlier orders lie at or below the base
            if value > 0:
                table[uintp(s), 0] = full
                table[uintp(s), 1] = value
            return value
        s = (s + 1) & mask


@numba.njit(nogil=True, cache=True)
def _count_rows(
    start,
    stop,
    preds,
    pred_len,
    refs,
    ref_len,
    n_gram,
    matches,
    ref_matches,
    token_map,
    stamp,
    tok,
    cur,
    counts,
    marks,
    mark,
    table,
    table_base,
):
    """Rows ``[start, stop)`` into ``matches`` (B, N) and ``ref_matches`` (B, R, N).

    ``counts[id * (R + 2) + f]``: f = 0 the candidate's count, 1 the largest reference count, 2 + k reference k's.
    Array indices are cast to unsigned (they are never negative), which spares each access Python's wraparound.
    Returns the last map stamp, mark and table base used.
    """
    n_refs = refs.shape[1]
    width = n_refs + 2
    for b in range(start, stop):
        lp = pred_len[b]
        if lp == 0:
            continue
        base = stamp
        slots = (lp + 1) * width
        counts[:slots] = 0
        tok[0] = 0
        # ---- order 1: a token's id is its first position in the candidate ----
        row = preds[b]
        for i in range(1, lp + 1):
            t = row[uintp(i - 1)]
            g = token_map[uintp(t)] - base
            g = i if g <= 0 else g
            token_map[uintp(t)] = base + g
            tok[uintp(i)] = g
            cur[uintp(i)] = g
            counts[uintp(g * width)] += 1
        stamp = base + lp
        tok[lp + 1] = -1  # after the candidate: equal to no token, and to no missing one (0)
        total = 0
        off = lp + 2
        for k in range(n_refs):
            lr = ref_len[b, k]
            ref = refs[b, k]
            hits = 0
            for i in range(lr):
                g = max(token_map[uintp(ref[uintp(i)])] - base, 0)
                tok[uintp(off + i)] = g
                cur[uintp(off + i)] = g
                o = g * width
                seen = counts[uintp(o + 2 + k)] + 1
                counts[uintp(o + 2 + k)] = seen
                below = seen <= counts[uintp(o)]
                hits += below
                top = counts[uintp(o + 1)]
                total += below & (seen > top)
                counts[uintp(o + 1)] = max(top, seen)
            ref_matches[b, k, 0] = hits
            off += lr
        matches[b, 0] = total
        if n_gram == 1 or total == 0:
            continue
        # ---- orders 2..n_gram: the table holds at most lp keys, at most half full ----
        bits = 1
        while (1 << bits) < 2 * lp:
            bits += 1
        mask = (1 << bits) - 1
        shift = 64 - bits
        span = lp + 1  # key = prefix * span + token
        for n in range(2, n_gram + 1):
            if table_base > _TABLE_RESET:
                table[:, 0] = 0
                table_base = 0
            mark += 1
            counts[:slots] = 0
            prev = 0  # order n - 1's id one position back (0 before the first position)
            for i in range(1, lp + 1):
                p = prev
                prev = cur[uintp(i)]
                g = tok[uintp(i)]
                c = p + (p > 0)
                if tok[uintp(c)] == g:
                    ident = c
                elif p > 0:
                    marks[uintp(p)] = mark
                    ident = _find(table, table_base, p * span + g, shift, mask, i)
                else:
                    ident = 0
                cur[uintp(i)] = ident
                counts[uintp(ident * width)] += ident > 0
            total = 0
            off = lp + 2
            for k in range(n_refs):
                lr = ref_len[b, k]
                hits = 0
                prev = 0
                for j in range(off, off + lr):
                    p = prev
                    prev = cur[uintp(j)]
                    g = tok[uintp(j)]
                    c = p + (p > 0)
                    ident = c * (tok[uintp(c)] == g)
                    # both tested without a branch on the first: which positions miss is unpredictable
                    if (marks[uintp(p)] == mark) & (ident == 0):
                        ident = _find(table, table_base, p * span + g, shift, mask, 0)
                    cur[uintp(j)] = ident
                    o = ident * width
                    seen = counts[uintp(o + 2 + k)] + 1
                    counts[uintp(o + 2 + k)] = seen
                    below = seen <= counts[uintp(o)]
                    hits += below
                    if n_refs > 1:
                        top = counts[uintp(o + 1)]
                        total += below & (seen > top)
                        counts[uintp(o + 1)] = max(top, seen)
                    else:  # one reference: its count is the largest
                        total += below
                ref_matches[b, k, n - 1] = hits
                off += lr
            table_base += span * span
            matches[b, n - 1] = total
            if total == 0:
                break
    return stamp, mark, table_base


@numba.njit(nogil=True, cache=True)
def _scan(preds, pred_len, refs, ref_len):
    """The smallest and largest valid token (0, 0 without any), and each row's tokens (its cost)."""
    low = np.iinfo(np.int64).max
    high = np.iinfo(np.int64).min
    cost = np.empty(preds.shape[0], dtype=np.int64)
    for b in range(preds.shape[0]):
        n = pred_len[b]
        for i in range(n):
            low = min(low, preds[b, i])
            high = max(high, preds[b, i])
        for k in range(refs.shape[1]):
            n += ref_len[b, k]
            for i in range(ref_len[b, k]):
                low = min(low, refs[b, k, i])
                high = max(high, refs[b, k, i])
        cost[b] = n
    if low > high:
        return 0, 0, cost
    return low, high, cost


class _Work:
    """A thread's buffers, kept between calls: the ids of a row's positions (order 1 and the current order), the
    counts per candidate n-gram, the prefix marks and the continuation table (both stamped, never cleared)."""

    def __init__(self) -> None:
        self.tok = np.zeros(0, dtype=np.int32)
        self.cur = np.zeros(0, dtype=np.int32)
        self.counts = np.zeros(0, dtype=np.int32)
        self.marks = np.zeros(0, dtype=np.int64)
        self.mark = 0
        self.table = np.zeros((0, 2), dtype=np.int64)
        self.table_base = 0

    def reserve(self, width: int, longest: int, n_refs: int) -> None:
        if self.tok.shape[0] < width:
            size = max(width, 2 * self.tok.shape[0])
            self.tok = np.empty(size, dtype=np.int32)
            self.cur = np.empty(size, dtype=np.int32)
        if self.counts.shape[0] < (longest + 1) * (n_refs + 2):
            self.counts = np.empty(max((longest + 1) * (n_refs + 2), 2 * self.counts.shape[0]), dtype=np.int32)
        if self.marks.shape[0] < longest + 1:
            self.marks = np.zeros(max(longest + 1, 2 * self.marks.shape[0]), dtype=np.int64)
            self.mark = 0
        rows = 2
        while rows < 2 * longest:
            rows *= 2
        if self.table.shape[0] < rows:
            self.table = np.zeros((rows, 2), dtype=np.int64)
            self.table_base = 0


_local = threading.local()
# rows up to this many tokens use the thread's kept buffers; a larger call gets buffers of its own, so that one
# huge call does not hold its memory afterwards
KEEP_WIDTH = 1 << 20


def _work(width: int, longest: int, n_refs: int) -> _Work:
    """This thread's ``_Work``, large enough for the rows."""
    if width > KEEP_WIDTH:
        work = _Work()
    else:
        work = getattr(_local, "work", None)
        if work is None:
            work = _local.work = _Work()
    work.reserve(width, longest, n_refs)
    return work


def _block(start: int, stop: int, *args: Any) -> int:
    """Run the kernel over rows ``[start, stop)`` with this thread's token map and buffers."""
    preds, pred_len, refs, ref_len, n_gram, matches, ref_matches, vocab, width, longest = args
    scratch = token_scratch(vocab)
    work = _work(width, longest, refs.shape[1])
    # the map's entries stay at or below ``scratch.stamp`` (each row's base): the other kernels' fresh stamps
    # (stamp + 1, ...) never equal one of them, and theirs never look valid here
    scratch.stamp, work.mark, work.table_base = _count_rows(
        start,
        stop,
        preds,
        pred_len,
        refs,
        ref_len,
        n_gram,
        matches,
        ref_matches,
        scratch.stamps,
        scratch.stamp,
        work.tok,
        work.cur,
        work.counts,
        work.marks,
        work.mark,
        work.table,
        work.table_base,
    )
    return stop - start


def count_pairs(
    preds: np.ndarray, pred_len: np.ndarray, refs: np.ndarray, ref_len: np.ndarray, n_gram: int, per_reference: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clipped n-gram matches of each candidate against its references, orders 1..``n_gram``.

    ``preds`` (B, L) int64 holds left-aligned tokens valid below ``pred_len`` (B,); ``refs`` (B, R, L') int64
    valid below ``ref_len`` (B, R) (0 for an absent reference). Returns ``matches`` (B, n_gram) int64: for order n
    (column n - 1), the sum over the candidate's distinct n-grams g of ``min(count_cand(g), max_r count_r(g))``
    (BLEU's clipping); and, if ``per_reference``, ``ref_matches`` (B, R, n_gram) int64, the sum over g of
    ``min(count_cand(g), count_r(g))`` for each reference alone (GLEU's and ROUGE-N's overlap), else None.

    Values past a length are never read; any int64 token values are accepted (huge or negative ones are
    renumbered first). Rows are split over the threads of ``set_cpu_threads``.
    """
    preds = np.ascontiguousarray(preds, dtype=np.int64)
    refs = np.ascontiguousarray(refs, dtype=np.int64)
    pred_len = np.ascontiguousarray(pred_len, dtype=np.int64)
    ref_len = np.ascontiguousarray(ref_len, dtype=np.int64)
    n_rows, n_refs = refs.shape[:2]
    matches = np.zeros((n_rows, n_gram), dtype=np.int64)
    ref_matches = np.zeros((n_rows, n_refs, n_gram), dtype=np.int64)
    if n_rows and n_refs and n_gram:
        low, high, cost = _scan(preds, pred_len, refs, ref_len)
        longest = int(pred_len.max())
        width = int((cost - pred_len).max()) + longest + 2  # a bound on a row's candidate, references, separators
        # int32 positions, ids and counts within a row
        if width >= 2**31:
            raise ValueError("a candidate and its references hold 2**31 tokens or more")
        if low < 0 or high >= MAP_LIMIT:
            (preds, refs), vocab = dense_tokens([preds, refs], [pred_len, ref_len])
        else:
            vocab = high + 1
        args = (preds, pred_len, refs, ref_len, n_gram, matches, ref_matches, vocab, width, longest)
        run_rows(_block, n_rows, cost, *args)
    return matches, ref_matches if per_reference else None
