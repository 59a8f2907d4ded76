"""Clipped n-gram matches of a candidate against its references: compiled per-row kernels.

A row (one candidate and its references) is laid out as ``[0 | candidate | -1 | ref 0 | ref 1 ...]``. An n-gram of
the candidate is named by the position where it first ends in the candidate (1..lp), so ids need no counter.
Order 1's ids come first, in a pass of their own over the row (a reference token the candidate lacks gets 0), from
entries that hold ``row base + first position`` (entries of earlier rows lie at or below the base, so nothing is
cleared): where a call's token values all lie below half its tokens, a thread's persistent direct map indexed by
value; otherwise a per-row open-addressing table keyed by the value itself (any int64: nothing is renumbered), 4 to 8
slots per candidate token, kept per thread, whose few KB stay in the L1/L2 caches. A vocabulary-sized map costs a
cache miss per line it touches when the caches are cold (as they are between an application's calls), more than
hashing a small call's tokens; a large call touches most of its lines anyway, and reads it faster than it hashes.

Order n's id at a position comes from order n - 1's id p one position back (the prefix) and the position's token: the
first n-gram after the prefix's first occurrence ends at p + 1, so when the token at p + 1 is the position's
token the id is p + 1, read with one comparison and no table. Only a prefix followed in the candidate by several
different tokens needs more: the candidate's pass marks it (a bit per order in a byte per prefix) and enters its
other continuations in a small open-addressing table keyed by (order, prefix, token); a reference position looks
there only when its prefix is marked. A distinct n-gram of order n is either its prefix's first continuation or a key,
and every distinct (n - 1)-gram but the candidate's last has a first continuation: order n enters at most
``D_n - D_(n-1) + 1`` keys (D: the distinct n-grams of an order), and a group of consecutive orders at most lp.

Orders go in groups of four (BLEU's and GLEU's n-gram orders: one group), each group one forward pass over the
candidate and one over each reference, the four ids of the previous position held in registers; only a later group
reads the ids of the order before it from an array. The first group of four orders has loops of its own, without
tests on the group's size, and where the candidate marks no prefix its references' passes read neither the marks nor
the table. The last of several groups (chrF's orders 5 and 6) walks only the positions that can hold one of its
n-grams: an n-gram of order n ending at i holds the (n - 1)-gram ending at i - 1, so a reference position counts only
where that one is the candidate's, and a candidate position only where some reference has it (the previous group's
references mark those); the others could only add to slot 0 or meet zeros. Each pass first lists its live positions
without a branch, then walks the list. Counting is folded into the passes: the candidate's pass and each
reference's count their n-grams in planes of slots ``4 * id + order``; after a reference's pass, vectorised loops
over the planes add ``min(count_cand, count_ref)`` per order and keep the largest reference counts, which give
``min(count_cand, max_r count_r)`` after the last one. The n-grams a candidate lacks all fall into slot 0, whose
candidate count is 0. A row stops after the first group whose last order has no match.

Cost per row: O(tokens) per order, one map or token-table lookup per token, plus O(R lp) per group for the planes.
Memory: where it serves, the thread's map (its 8-byte stamps per vocabulary entry, kept between calls and shared with
the other kernels) and, in buffers each thread keeps between calls, 12 bytes per position of the widest row plus at
most 242 bytes per token of the longest candidate (48 for the three count planes, 64 for the continuation table, 128
for the token table, 1 for the marks, 1 for the reference marks).
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import uint64, uintp

from tensorbleu_metrics.functional._engine import MAP_LIMIT, NO_REF_LEN, get_cpu_threads, run_rows, token_scratch

__all__ = ["PairCounts", "align_rows", "count_pairs", "count_rows"]

# 2**64 / golden ratio: a multiplicative hash, its top bits the slot; unsigned (Numba's signed multiply may not
# overflow)
_HASH = np.uint64(11400714819323198485)
# the table's keys are ``table base + key`` with the base moving past every key at each group of orders; before it
# could overflow, the table is cleared and the base starts again at 0
_TABLE_RESET = np.int64(1) << 61
_NO_MAP = np.zeros(0, dtype=np.int64)


@numba.njit(nogil=True, cache=True)
def _find(table, table_base, key, shift, mask, value):
    """The value of ``key`` in the table (linear probing); a missing key gets ``value`` if it is > 0, else is 0."""
    full = table_base + key
    s = (uint64(key) * _HASH) >> shift
    while True:
        held = table[uintp(s), 0]
        if held == full:
            return table[uintp(s), 1]
        if held <= table_base:  # empty: keys of earlier groups lie at or below the base
            if value > 0:
                table[uintp(s), 0] = full
                table[uintp(s), 1] = value
            return value
        s = (s + uint64(1)) & mask


@numba.njit(nogil=True, cache=True)
def _candidate_ids(row, at, lp, tok, tokens, token_map, base, shift, mask):
    """Order 1's ids of the candidate (its tokens at ``row[at:]``) into ``tok[1:lp + 1]``: each token's first
    position, from the direct map if there is one, else from the token table, where the token is entered."""
    if token_map.size:
        for i in range(1, lp + 1):
            t = row[uintp(at + i - 1)]
            g = token_map[uintp(t)] - base
            g = i if g <= 0 else g  # entries of earlier rows lie at or below the base
            token_map[uintp(t)] = base + g
            tok[uintp(i)] = g
        return
    for i in range(1, lp + 1):
        t = row[uintp(at + i - 1)]
        s = (uint64(t) * _HASH) >> shift
        while (tokens[uintp(s + s + uint64(1))] > base) & (tokens[uintp(s + s)] != t):
            s = (s + uint64(1)) & mask
        g = tokens[uintp(s + s + uint64(1))] - base
        g = i if g <= 0 else g
        tokens[uintp(s + s)] = t
        tokens[uintp(s + s + uint64(1))] = base + g
        tok[uintp(i)] = g


@numba.njit(nogil=True, cache=True)
def _reference_ids(ref, at, lr, off, tok, tokens, token_map, base, shift, mask):
    """Order 1's ids of a reference (its tokens at ``ref[at:]``) into ``tok[off:off + lr]``: 0 for a token the
    candidate lacks."""
    if token_map.size:
        for i in range(lr):
            tok[uintp(off + i)] = max(token_map[uintp(ref[uintp(at + i)])] - base, 0)
        return
    for i in range(lr):
        t = ref[uintp(at + i)]
        s = (uint64(t) * _HASH) >> shift
        while (tokens[uintp(s + s + uint64(1))] > base) & (tokens[uintp(s + s)] != t):
            s = (s + uint64(1)) & mask
        tok[uintp(off + i)] = max(tokens[uintp(s + s + uint64(1))] - base, 0)


@numba.njit(nogil=True, cache=True)
def _candidate(lp, first, size, out, tok, cur, counts, marks, table, table_base, shift, mask, seen, live):
    """The candidate's pass (order 1's ids at ``tok[1:lp + 1]``) for a group of ``size`` orders: the group's last
    order's ids into ``out`` (``cur`` itself, or None for the last group), its counts, the marks and the table's new
    n-grams. Returns
    whether a prefix was marked. ``seen[p]``: the previous group's last-order n-gram ``p`` occurs in a reference."""
    span = lp + 1
    sq = span * span
    a0 = 0
    a1 = 0
    a2 = 0
    q = 0
    marked = False
    if first and size == 4:  # the first four orders (all of BLEU's and GLEU's): the same steps without the tests
        for i in range(1, lp + 1):
            g = tok[uintp(i)]
            counts[uintp(4 * g)] += 1
            c = a0 + (a0 > 0)
            if tok[uintp(c)] == g:
                x1 = c
            elif a0 > 0:
                marks[uintp(a0)] |= 2
                marked = True
                x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, i)
            else:
                x1 = 0
            counts[uintp(4 * x1 + 1)] += 1
            c = a1 + (a1 > 0)
            if tok[uintp(c)] == g:
                x2 = c
            elif a1 > 0:
                marks[uintp(a1)] |= 4
                marked = True
                x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, i)
            else:
                x2 = 0
            counts[uintp(4 * x2 + 2)] += 1
            c = a2 + (a2 > 0)
            if tok[uintp(c)] == g:
                x3 = c
            elif a2 > 0:
                marks[uintp(a2)] |= 8
                marked = True
                x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, i)
            else:
                x3 = 0
            counts[uintp(4 * x3 + 3)] += 1
            if out is not None:  # decided when compiling: a variant of the function for each
                out[uintp(i)] = x3
            a2 = x2
            a1 = x1
            a0 = g
        counts[0:4] = 0  # positions before an order's first n-gram
        return marked
    if not first and out is None:
        # the last group: an n-gram of its orders ending at i holds the (n0 - 1)-gram ending at i - 1; where no
        # reference has that one (``seen``), none has these, and their counts could only meet zeros: skipped
        n_live = 0
        for i in range(2, lp + 1):
            p = cur[uintp(i - 1)]
            live[uintp(n_live)] = i
            n_live += int((p != 0) & (seen[uintp(p)] != 0))
        previous = -2
        for t in range(n_live):
            i = live[uintp(t)]
            if i != previous + 1:  # the previous position was skipped: its ids count as missing
                a0 = 0
                a1 = 0
                a2 = 0
            previous = i
            g = tok[uintp(i)]
            p = cur[uintp(i - 1)]
            if tok[uintp(p + 1)] == g:
                x0 = p + 1
            else:
                marks[uintp(p)] |= 1
                marked = True
                x0 = _find(table, table_base, p * span + g, shift, mask, i)
            counts[uintp(4 * x0)] += 1
            if size > 1:
                c = a0 + (a0 > 0)
                if tok[uintp(c)] == g:
                    x1 = c
                elif a0 > 0:
                    marks[uintp(a0)] |= 2
                    marked = True
                    x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, i)
                else:
                    x1 = 0
                counts[uintp(4 * x1 + 1)] += 1
                if size > 2:
                    c = a1 + (a1 > 0)
                    if tok[uintp(c)] == g:
                        x2 = c
                    elif a1 > 0:
                        marks[uintp(a1)] |= 4
                        marked = True
                        x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, i)
                    else:
                        x2 = 0
                    counts[uintp(4 * x2 + 2)] += 1
                    if size > 3:
                        c = a2 + (a2 > 0)
                        if tok[uintp(c)] == g:
                            x3 = c
                        elif a2 > 0:
                            marks[uintp(a2)] |= 8
                            marked = True
                            x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, i)
                        else:
                            x3 = 0
                        counts[uintp(4 * x3 + 3)] += 1
                    a2 = x2
                a1 = x1
            a0 = x0
        counts[0:4] = 0  # positions before an order's first n-gram
        return marked
    for i in range(1, lp + 1):
        g = tok[uintp(i)]
        if first:
            x0 = g
        else:
            p = q
            q = cur[uintp(i)]
            c = p + (p > 0)
            if tok[uintp(c)] == g:
                x0 = c
            elif p > 0:
                marks[uintp(p)] |= 1
                marked = True
                x0 = _find(table, table_base, p * span + g, shift, mask, i)
            else:
                x0 = 0
        counts[uintp(4 * x0)] += 1
        last = x0
        if size > 1:
            c = a0 + (a0 > 0)
            if tok[uintp(c)] == g:
                x1 = c
            elif a0 > 0:
                marks[uintp(a0)] |= 2
                marked = True
                x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, i)
            else:
                x1 = 0
            counts[uintp(4 * x1 + 1)] += 1
            last = x1
            if size > 2:
                c = a1 + (a1 > 0)
                if tok[uintp(c)] == g:
                    x2 = c
                elif a1 > 0:
                    marks[uintp(a1)] |= 4
                    marked = True
                    x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, i)
                else:
                    x2 = 0
                counts[uintp(4 * x2 + 2)] += 1
                last = x2
                if size > 3:
                    c = a2 + (a2 > 0)
                    if tok[uintp(c)] == g:
                        x3 = c
                    elif a2 > 0:
                        marks[uintp(a2)] |= 8
                        marked = True
                        x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, i)
                    else:
                        x3 = 0
                    counts[uintp(4 * x3 + 3)] += 1
                    last = x3
                a2 = x2
            a1 = x1
        a0 = x0
        if out is not None:
            out[uintp(i)] = last
    counts[0:4] = 0  # positions before an order's first n-gram
    return marked


@numba.njit(nogil=True, cache=True)
def _reference(
    lr, off, lp, first, size, out, tok, cur, counts, marks, marked, table, table_base, shift, mask, seen, live
):
    """A reference's pass (order 1's ids at ``tok[off:off + lr]``) for a group of ``size`` orders: its counts (in
    the plane after the candidate's) and, unless ``out`` is None (the last group), the group's last order's ids into
    ``out`` (``cur`` itself) and a mark in ``seen`` for each.
    Without a ``marked`` prefix in the candidate, the table is never read."""
    span = lp + 1
    sq = span * span
    plane = 4 * span
    a0 = 0
    a1 = 0
    a2 = 0
    q = 0
    if first and size == 4 and not marked:  # as below, every n-gram at its prefix's first continuation
        for i in range(lr):
            g = tok[uintp(off + i)]
            c = a0 + (a0 > 0)
            x1 = c * (tok[uintp(c)] == g)
            c = a1 + (a1 > 0)
            x2 = c * (tok[uintp(c)] == g)
            c = a2 + (a2 > 0)
            x3 = c * (tok[uintp(c)] == g)
            counts[uintp(plane + 4 * g)] += 1
            counts[uintp(plane + 4 * x1 + 1)] += 1
            counts[uintp(plane + 4 * x2 + 2)] += 1
            counts[uintp(plane + 4 * x3 + 3)] += 1
            if out is not None:
                out[uintp(off + i)] = x3
                seen[uintp(x3)] = 1
            a2 = x2
            a1 = x1
            a0 = g
        return
    if first and size == 4:  # the first four orders (all of BLEU's and GLEU's): the same steps without the tests
        for i in range(lr):
            g = tok[uintp(off + i)]
            counts[uintp(plane + 4 * g)] += 1
            c = a0 + (a0 > 0)
            x1 = c * (tok[uintp(c)] == g)
            if ((marks[uintp(a0)] & 2) != 0) & (x1 == 0):
                x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, 0)
            counts[uintp(plane + 4 * x1 + 1)] += 1
            c = a1 + (a1 > 0)
            x2 = c * (tok[uintp(c)] == g)
            if ((marks[uintp(a1)] & 4) != 0) & (x2 == 0):
                x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, 0)
            counts[uintp(plane + 4 * x2 + 2)] += 1
            c = a2 + (a2 > 0)
            x3 = c * (tok[uintp(c)] == g)
            if ((marks[uintp(a2)] & 8) != 0) & (x3 == 0):
                x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, 0)
            counts[uintp(plane + 4 * x3 + 3)] += 1
            if out is not None:
                out[uintp(off + i)] = x3
                seen[uintp(x3)] = 1
            a2 = x2
            a1 = x1
            a0 = g
        return
    if not first and out is None:
        # the last group: only a position whose (n0 - 1)-gram one position back is the candidate's (its id in ``cur``
        # is not 0) can hold one of the group's n-grams, which contain it; the others would count in slot 0 only.
        # Those positions first, branch-free, into ``live``; a run of them carries the previous position's ids.
        n_live = 0
        for i in range(1, lr):
            live[uintp(n_live)] = off + i
            n_live += int(cur[uintp(off + i - 1)] != 0)
        previous = -2
        for t in range(n_live):
            j = live[uintp(t)]
            if j != previous + 1:
                a0 = 0
                a1 = 0
                a2 = 0
            previous = j
            g = tok[uintp(j)]
            p = cur[uintp(j - 1)]
            x0 = (p + 1) * (tok[uintp(p + 1)] == g)
            if ((marks[uintp(p)] & 1) != 0) & (x0 == 0):
                x0 = _find(table, table_base, p * span + g, shift, mask, 0)
            counts[uintp(plane + 4 * x0)] += 1
            if size > 1:
                c = a0 + (a0 > 0)
                x1 = c * (tok[uintp(c)] == g)
                if ((marks[uintp(a0)] & 2) != 0) & (x1 == 0):
                    x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, 0)
                counts[uintp(plane + 4 * x1 + 1)] += 1
                if size > 2:
                    c = a1 + (a1 > 0)
                    x2 = c * (tok[uintp(c)] == g)
                    if ((marks[uintp(a1)] & 4) != 0) & (x2 == 0):
                        x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, 0)
                    counts[uintp(plane + 4 * x2 + 2)] += 1
                    if size > 3:
                        c = a2 + (a2 > 0)
                        x3 = c * (tok[uintp(c)] == g)
                        if ((marks[uintp(a2)] & 8) != 0) & (x3 == 0):
                            x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, 0)
                        counts[uintp(plane + 4 * x3 + 3)] += 1
                    a2 = x2
                a1 = x1
            a0 = x0
        return
    for i in range(lr):
        j = off + i
        g = tok[uintp(j)]
        if first:
            x0 = g
        else:
            p = q
            q = cur[uintp(j)]
            c = p + (p > 0)
            x0 = c * (tok[uintp(c)] == g)
            # both tested without a branch on the first: which positions miss is unpredictable
            if ((marks[uintp(p)] & 1) != 0) & (x0 == 0):
                x0 = _find(table, table_base, p * span + g, shift, mask, 0)
        counts[uintp(plane + 4 * x0)] += 1
        last = x0
        if size > 1:
            c = a0 + (a0 > 0)
            x1 = c * (tok[uintp(c)] == g)
            if ((marks[uintp(a0)] & 2) != 0) & (x1 == 0):
                x1 = _find(table, table_base, sq + a0 * span + g, shift, mask, 0)
            counts[uintp(plane + 4 * x1 + 1)] += 1
            last = x1
            if size > 2:
                c = a1 + (a1 > 0)
                x2 = c * (tok[uintp(c)] == g)
                if ((marks[uintp(a1)] & 4) != 0) & (x2 == 0):
                    x2 = _find(table, table_base, 2 * sq + a1 * span + g, shift, mask, 0)
                counts[uintp(plane + 4 * x2 + 2)] += 1
                last = x2
                if size > 3:
                    c = a2 + (a2 > 0)
                    x3 = c * (tok[uintp(c)] == g)
                    if ((marks[uintp(a2)] & 8) != 0) & (x3 == 0):
                        x3 = _find(table, table_base, 3 * sq + a2 * span + g, shift, mask, 0)
                    counts[uintp(plane + 4 * x3 + 3)] += 1
                    last = x3
                a2 = x2
            a1 = x1
        a0 = x0
        if out is not None:
            out[uintp(j)] = last
            seen[uintp(last)] = 1


@numba.njit(nogil=True, cache=True)
def _count_rows(
    start,
    stop,
    preds,
    pred_len,
    refs,
    ref_len,
    n_gram,
    group,
    matches,
    ref_matches,
    tokens,
    token_map,
    base,
    tok,
    cur,
    counts,
    marks,
    table,
    table_base,
    seen,
    live,
):
    """Rows ``[start, stop)`` into ``matches`` (B, N) and ``ref_matches`` (B, R, N).

    Orders go in groups of up to ``group`` (at most 4): one pass over the candidate and one over each reference
    per group, order m of the group reading order m - 1's id at the previous position from a register. The counts
    lie in three planes of ``4 * span`` slots, the candidate's, the current reference's and the largest so far,
    slot ``4 * id + m`` for order m of the group; all are 0 between rows. ``marks[p]`` bit m: the group's order m
    has a prefix ``p`` with several continuations. Array indices are cast to unsigned (they are never negative),
    which spares each access Python's wraparound. Order 1's ids come from ``token_map`` if it is not empty, else
    from the token table ``tokens``; ``base`` is theirs. Returns the last base and continuation table base used.
    """
    n_refs = refs.shape[1]
    flat_preds = preds.reshape(preds.size)  # rows as offsets: no view per row
    flat_refs = refs.reshape(refs.size)
    for b in range(start, stop):
        lp = pred_len[b]
        if lp == 0:
            continue
        span = lp + 1
        plane = 4 * span
        bits = 1
        while (1 << bits) < 2 * lp:
            bits += 1
        mask = uint64((1 << bits) - 1)
        shift = uint64(64 - bits)
        token_bits = bits + TOKEN_SPARE
        token_mask = uint64((1 << token_bits) - 1)
        token_shift = uint64(64 - token_bits)
        tok[0] = 0
        _candidate_ids(flat_preds, b * preds.shape[1], lp, tok, tokens, token_map, base, token_shift, token_mask)
        tok[lp + 1] = -1  # after the candidate: equal to no token, and to no missing one (0)
        off = lp + 2
        for k in range(n_refs):
            lr = ref_len[b, k]
            at = (b * n_refs + k) * refs.shape[2]
            _reference_ids(flat_refs, at, lr, off, tok, tokens, token_map, base, token_shift, token_mask)
            off += lr
        base += lp
        n0 = 1
        while n0 <= n_gram:
            size = min(group, n_gram - n0 + 1)
            more = n0 + size <= n_gram  # a later group reads this one's last order from ``cur``
            first = n0 == 1
            if table_base > _TABLE_RESET:
                table[:, 0] = 0
                table_base = 0
            marks[:span] = 0
            # the group's last order's ids go to ``cur`` only if a later group reads them: None (the last group)
            # compiles variants of the passes without those stores
            if more:
                marked = _candidate(
                    lp, first, size, cur, tok, cur, counts, marks, table, table_base, shift, mask, seen, live
                )  # fmt: skip
            else:
                marked = _candidate(
                    lp, first, size, None, tok, cur, counts, marks, table, table_base, shift, mask, seen, live
                )  # fmt: skip
            if more:
                seen[:span] = 0
            off = lp + 2
            for k in range(n_refs):
                lr = ref_len[b, k]
                if more:
                    _reference(
                        lr, off, lp, first, size, cur, tok, cur, counts, marks, marked, table, table_base, shift, mask,
                        seen, live,
                    )  # fmt: skip
                else:
                    _reference(
                        lr, off, lp, first, size, None, tok, cur, counts, marks, marked, table, table_base, shift,
                        mask, seen, live,
                    )  # fmt: skip
                off += lr
                h0, h1, h2, h3 = _overlap(counts, plane, n_refs == 1)
                ref_matches[b, k, n0 - 1] = h0
                if size > 1:
                    ref_matches[b, k, n0] = h1
                if size > 2:
                    ref_matches[b, k, n0 + 1] = h2
                if size > 3:
                    ref_matches[b, k, n0 + 2] = h3
            if n_refs == 1:
                for m in range(n0 - 1, n0 - 1 + size):
                    matches[b, m] = ref_matches[b, 0, m]
            else:
                h0, h1, h2, h3 = _clipped(counts, plane)
                matches[b, n0 - 1] = h0
                if size > 1:
                    matches[b, n0] = h1
                if size > 2:
                    matches[b, n0 + 1] = h2
                if size > 3:
                    matches[b, n0 + 2] = h3
            table_base += size * span * span
            n0 += size
            if matches[b, n0 - 2] == 0:
                break
    return base, table_base


@numba.njit(nogil=True, cache=True)
def _overlap(counts, plane, alone):
    """The current reference's overlap with the candidate, per order of the group; its counts go into the largest
    so far (or, ``alone``, the candidate's are cleared) and its own plane is cleared."""
    h0, h1, h2, h3 = _min_sums(counts, plane, plane)
    if alone:
        counts[: 2 * plane] = 0
    else:
        # a loop of its own: beside the sums above it would not vectorise
        for s in range(plane):
            counts[uintp(2 * plane + s)] = max(counts[uintp(2 * plane + s)], counts[uintp(plane + s)])
            counts[uintp(plane + s)] = 0
    return h0, h1, h2, h3


@numba.njit(nogil=True, cache=True)
def _min_sums(counts, plane, other):
    """``sum min(candidate, the plane at other)`` over the slots of each order of the group."""
    h0 = 0
    h1 = 0
    h2 = 0
    h3 = 0
    for s in range(0, plane, 4):
        h0 += min(counts[uintp(s)], counts[uintp(other + s)])
        h1 += min(counts[uintp(s + 1)], counts[uintp(other + s + 1)])
        h2 += min(counts[uintp(s + 2)], counts[uintp(other + s + 2)])
        h3 += min(counts[uintp(s + 3)], counts[uintp(other + s + 3)])
    return h0, h1, h2, h3


@numba.njit(nogil=True, cache=True)
def _clipped(counts, plane):
    """The candidate's counts clipped by the largest reference counts, per order of the group; all cleared."""
    h0, h1, h2, h3 = _min_sums(counts, plane, 2 * plane)
    counts[: 3 * plane] = 0
    return h0, h1, h2, h3


class _Work:
    """A thread's buffers, kept between calls: the ids of a row's positions (order 1 and the last order of a group),
    the count planes (all 0 between rows), the prefix marks, the continuation table (keys stamped by a base that
    moves on, never cleared) and the token table (slots ``[value, base + id]``, stamped the same way)."""

    def __init__(self) -> None:
        self.tok = np.zeros(0, dtype=np.int32)
        self.cur = np.zeros(0, dtype=np.int32)
        self.live = np.zeros(0, dtype=np.int32)
        self.counts = np.zeros(0, dtype=np.int32)
        self.marks = np.zeros(0, dtype=np.uint8)
        self.seen = np.zeros(0, dtype=np.uint8)
        self.table = np.zeros((0, 2), dtype=np.int64)
        self.table_base = 0
        self.tokens = np.zeros(0, dtype=np.int64)
        self.token_base = 0

    def reserve(self, width: int, longest: int) -> None:
        if self.tok.shape[0] < width:
            self.tok = np.empty(width, dtype=np.int32)
            self.cur = np.empty(width, dtype=np.int32)
            self.live = np.empty(width, dtype=np.int32)
        planes = 3 * 4 * (longest + 1)  # four orders' slots per id, whatever the group
        if self.counts.shape[0] < planes:
            self.counts = np.zeros(planes, dtype=np.int32)
        if self.marks.shape[0] < longest + 1:
            self.marks = np.empty(longest + 1, dtype=np.uint8)
            self.seen = np.empty(longest + 1, dtype=np.uint8)
        rows = 2
        while rows < 2 * longest:
            rows *= 2
        if self.table.shape[0] < rows:
            self.table = np.zeros((rows, 2), dtype=np.int64)
            self.table_base = 0
        if self.tokens.shape[0] < 2 * rows << TOKEN_SPARE:
            self.tokens = np.zeros(2 * rows << TOKEN_SPARE, dtype=np.int64)  # every entry empty for any base


_local = threading.local()
# rows up to this many tokens use the thread's kept buffers; a larger call gets buffers of its own, so that one
# huge call does not hold its memory afterwards
KEEP_WIDTH = 1 << 20
# orders counted in one pass (the kernel keeps at most this many ids in registers)
GROUP = 4
# the token table has 2**TOKEN_SPARE times the continuation table's slots (4 lp to 8 lp: few probes)
TOKEN_SPARE = 1
# the direct map serves a call whose token values lie below its tokens / DIRECT_SHARE
DIRECT_SHARE = 2


def _work(width: int, longest: int) -> _Work:
    """This thread's ``_Work``, large enough for the rows."""
    if width > KEEP_WIDTH:
        work = _Work()
    else:
        work = getattr(_local, "work", None)
        if work is None:
            work = _local.work = _Work()
    work.reserve(width, longest)
    return work


@numba.njit(nogil=True, cache=True)
def _align(x, valid_len, first, last, pad, eos, check, out, lengths):
    """Rows ``[first, last)`` of ``x`` ``(N, L)`` laid out: padding dropped, each row cut at its first eos, only
    positions below ``valid_len`` (or ``None``: whole rows) read; their lengths into ``lengths``.

    Rows whose tokens already stand first (right padding, an eos cut, or nothing to drop) are their own layout and
    nothing is copied; otherwise every row goes into the same row of ``out``. Returns the flat index in ``x`` of the
    first negative ID that is neither ``pad`` nor ``eos`` if ``check`` (else, or if there is none, -1; every value
    counts, also past a length or an eos, as on the accelerators), and whether the rows are their own layout.
    """
    width = x.shape[1]
    bad = -1
    in_place = True
    for i in range(first, last):
        if check and bad < 0:
            for j in range(width):
                t = x[i, j]
                if t < 0 and not (pad is not None and t == pad) and not (eos is not None and t == eos):
                    bad = i * width + j
                    break
        stop = width if valid_len is None else valid_len[i]
        n = 0
        for j in range(stop):
            t = x[i, j]
            if eos is not None and t == eos:
                break
            if pad is not None and t == pad:
                continue
            in_place &= n == j  # no padding dropped before this token
            n += 1
        lengths[i] = n
    if not in_place:
        for i in range(first, last):
            stop = width if valid_len is None else valid_len[i]
            n = 0
            for j in range(stop):
                t = x[i, j]
                if eos is not None and t == eos:
                    break
                if pad is not None and t == pad:
                    continue
                out[i, n] = t
                n += 1
    return bad, in_place


@numba.njit(nogil=True, cache=True)
def _rows(
    start,
    stop,
    preds,
    pred_valid,
    refs,
    ref_valid,
    present,
    present_rule,
    pad,
    eos,
    check,
    n_gram,
    matches,
    ref_matches,
    totals,
    clamped,
    pred_len,
    ref_len,
    closest,
    aligned_preds,
    aligned_refs,
    token_map,
):
    """Rows ``[start, stop)`` from their input rows to everything but their matches, in one call: the layout (into
    ``aligned_preds``/``aligned_refs``), the present references, totals, the closest reference lengths, and the
    choice of token ids for ``_count_rows`` (called apart: inlined here, it runs slower).

    ``aligned_*`` receive the rows that ``_align`` must copy. ``present_rule``: 0 ``present`` is given, 1 every
    reference is present, 2 a reference is present unless all its positions are ``pad``. Returns the first bad
    negative ID's flat index in ``preds`` and in ``refs`` (-1: none), the first row without a present reference (-1:
    none; looked for only if ``check``), the token map size the call would use were ``token_map`` that large (0:
    none), whether it uses ``token_map``, and whether the candidates and the references are their own layout (else
    ``aligned_*`` hold it).
    """
    n_refs = refs.shape[1]
    width = refs.shape[2]
    bad_pred, preds_in_place = _align(preds, pred_valid, start, stop, pad, eos, check, aligned_preds, pred_len)
    flat_refs = refs.reshape(refs.shape[0] * n_refs, width)
    flat_aligned = aligned_refs.reshape(refs.shape[0] * n_refs, width)
    flat_len = ref_len.reshape(ref_len.size)
    first, last = start * n_refs, stop * n_refs
    if ref_valid is None:
        bad_ref, refs_in_place = _align(flat_refs, None, first, last, pad, eos, check, flat_aligned, flat_len)
    else:
        flat_valid = ref_valid.reshape(ref_valid.size)
        bad_ref, refs_in_place = _align(flat_refs, flat_valid, first, last, pad, eos, check, flat_aligned, flat_len)
    laid_preds = preds if preds_in_place else aligned_preds
    laid_refs = refs if refs_in_place else aligned_refs
    # the present references, the smallest and largest token and how many there are
    no_ref = -1
    low = np.iinfo(np.int64).max
    high = np.iinfo(np.int64).min
    total = 0
    for b in range(start, stop):
        for i in range(pred_len[b]):
            low = min(low, laid_preds[b, i])
            high = max(high, laid_preds[b, i])
        total += pred_len[b]
        found = False
        for k in range(n_refs):
            if present_rule == 1:
                present[b, k] = True
            elif present_rule == 2:
                some = False
                if pad is not None:
                    for j in range(width):
                        if refs[b, k, j] != pad:
                            some = True
                            break
                present[b, k] = some
            if not present[b, k]:
                ref_len[b, k] = 0
                continue
            found = True
            for i in range(ref_len[b, k]):
                low = min(low, laid_refs[b, k, i])
                high = max(high, laid_refs[b, k, i])
            total += ref_len[b, k]
        if check and not found and no_ref < 0:
            no_ref = b
    # ids from the direct map where the call's tokens touch most of it (its cache misses, where the caches are cold,
    # then cost less than hashing every token), else from the token table
    wanted = 0
    use_map = low >= 0 and high < min(total // DIRECT_SHARE, MAP_LIMIT)
    if use_map and high >= token_map.size:
        wanted = high + 1
        use_map = False
    for b in range(start, stop):
        for m in range(n_gram):
            totals[b, m] = max(pred_len[b] - m, 0)
            clamped[b, m] = max(pred_len[b] - m, 1)
        # the present reference closest in length, the shorter on ties; none: a brevity penalty of 0
        best = NO_REF_LEN
        distance = NO_REF_LEN
        for k in range(n_refs):
            if present[b, k]:
                d = abs(ref_len[b, k] - pred_len[b])
                if d < distance or (d == distance and ref_len[b, k] < best):
                    best = ref_len[b, k]
                    distance = d
        closest[b] = best
    return bad_pred, bad_ref, no_ref, wanted, use_map, preds_in_place, refs_in_place


class PairCounts(NamedTuple):
    """What ``count_rows`` returns: NumPy int64 arrays (``present`` bool)."""

    matches: np.ndarray  # (B, N) clipped matches
    ref_matches: np.ndarray  # (B, R, N) overlaps with each reference alone
    totals: np.ndarray  # (B, N) candidate n-grams per order
    clamped_totals: np.ndarray  # (B, N) max(totals, 1)
    pred_len: np.ndarray  # (B,) candidate lengths
    closest_ref_len: np.ndarray  # (B,) closest present reference length (NO_REF_LEN: none)
    ref_len: np.ndarray  # (B, R) reference lengths, 0 for absent ones
    present: np.ndarray  # (B, R) which references are present
    bad_pred: int  # flat index in ``preds`` of the first negative ID other than pad/eos, or -1
    bad_ref: int  # the same in ``refs``
    no_ref: int  # the first sentence without a present reference, or -1


def _block(start: int, stop: int, *args: Any) -> tuple[int, int, int]:
    """Run ``_rows`` over rows ``[start, stop)`` with this thread's token map and buffers; returns the bad indices."""
    inputs, outputs, n_gram, group, width, longest = args
    work = _work(width, longest)
    scratch = token_scratch(0)
    found = _rows(start, stop, *inputs, n_gram, *outputs, scratch.stamps)
    bad_pred, bad_ref, no_ref, wanted, use_map, preds_in_place, refs_in_place = found
    matches, ref_matches, _, _, pred_len, ref_len, _, aligned_preds, aligned_refs = outputs
    # the rows as laid out: the inputs themselves where nothing had to move
    laid_preds = inputs[0] if preds_in_place else aligned_preds
    laid_refs = inputs[2] if refs_in_place else aligned_refs
    token_map, base = (scratch.stamps, scratch.stamp) if use_map else (_NO_MAP, work.token_base)
    base, work.table_base = _count_rows(
        start, stop, laid_preds, pred_len, laid_refs, ref_len, n_gram, group, matches, ref_matches,
        work.tokens, token_map, base, work.tok, work.cur, work.counts, work.marks, work.table, work.table_base,
        work.seen, work.live,
    )  # fmt: skip
    if use_map:
        scratch.stamp = base
    else:
        work.token_base = base
    if wanted:
        token_scratch(wanted)  # the map grows for the next call; this one used the token table
    return bad_pred, bad_ref, no_ref


def count_rows(
    preds: np.ndarray,
    pred_valid: np.ndarray | None,
    refs: np.ndarray,
    ref_valid: np.ndarray | None,
    present: np.ndarray | None,
    padding_absent: bool,
    pad_id: int | None,
    eos_id: int | None,
    check: bool,
    n_gram: int,
) -> PairCounts:
    """Every sentence's n-gram statistics against its references, orders 1..``n_gram``, from its input rows.

    ``preds`` (B, L) and ``refs`` (B, R, L') int64 rows as given (padding and eos in place), read below
    ``pred_valid`` (B,) / ``ref_valid`` (B, R) if given; ``present`` (B, R) bool, or None: every reference is present,
    except, with ``padding_absent``, one whose positions are all ``pad_id``. ``check``: find
    negative IDs other than ``pad_id``/``eos_id`` and sentences without a present reference (reported, not raised).

    ``matches`` (column n - 1 for order n): the sum over the candidate's distinct n-grams g of
    ``min(count_cand(g), max_r count_r(g))`` (BLEU's clipping); ``ref_matches``: ``min(count_cand(g), count_r(g))``
    summed for each reference alone (GLEU's and ROUGE-N's overlap). Any int64 token values are accepted. Rows are
    split over the threads of ``set_cpu_threads``.
    """
    n_rows, n_refs, ref_width = refs.shape
    width = preds.shape[1] + n_refs * ref_width + 2  # a row's candidate, references and separators
    if width >= 2**31:  # int32 positions, ids and counts within a row
        raise ValueError("a candidate and its references hold 2**31 tokens or more")
    rule = 0 if present is not None else 2 if padding_absent and pad_id is not None else 1
    present = np.empty((n_rows, n_refs), dtype=np.bool_) if present is None else np.ascontiguousarray(present)
    inputs = (
        np.ascontiguousarray(preds, dtype=np.int64),
        None if pred_valid is None else np.ascontiguousarray(pred_valid, dtype=np.int64),
        np.ascontiguousarray(refs, dtype=np.int64),
        None if ref_valid is None else np.ascontiguousarray(ref_valid, dtype=np.int64),
        present,
        rule,
        pad_id,
        eos_id,
        check,
    )
    shape = (n_rows, n_gram)
    out = PairCounts(
        np.zeros(shape, dtype=np.int64),
        np.zeros((n_rows, n_refs, n_gram), dtype=np.int64),
        np.empty(shape, dtype=np.int64),
        np.empty(shape, dtype=np.int64),
        np.empty(n_rows, dtype=np.int64),
        np.empty(n_rows, dtype=np.int64),
        np.empty((n_rows, n_refs), dtype=np.int64),
        present,
        -1,
        -1,
        -1,
    )
    # a group's keys (below group * (longest + 1)**2) stay below 2**62
    longest = preds.shape[1]
    group = GROUP if longest < 1 << 29 else 1
    # room for the layout of rows whose tokens do not already stand first (written only then)
    aligned = (np.empty(preds.shape, dtype=np.int64), np.empty(refs.shape, dtype=np.int64))
    outputs = (out.matches, out.ref_matches, out.totals, out.clamped_totals, out.pred_len, out.ref_len,
               out.closest_ref_len, *aligned)  # fmt: skip
    if n_rows and n_refs:
        cost = None if get_cpu_threads() == 1 else np.full(n_rows, width)
        found = run_rows(_block, n_rows, cost, inputs, outputs, n_gram, group, width, longest)
        # the first of each kind in row order (blocks come in row order)
        firsts = [next((f[i] for f in found if f[i] >= 0), -1) for i in range(3)]
        out = out._replace(bad_pred=firsts[0], bad_ref=firsts[1], no_ref=firsts[2])
    return out


def count_pairs(
    preds: np.ndarray, pred_len: np.ndarray, refs: np.ndarray, ref_len: np.ndarray, n_gram: int, per_reference: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clipped n-gram matches of left-aligned candidates against their references (``count_rows`` on tokens valid
    below ``pred_len`` (B,) and ``ref_len`` (B, R), 0 for an absent reference): ``matches`` (B, n_gram) and, if
    ``per_reference``, ``ref_matches`` (B, R, n_gram), else None. Values past a length are never read."""
    counted = count_rows(preds, pred_len, refs, ref_len, None, False, None, None, False, n_gram)
    return counted.matches, counted.ref_matches if per_reference else None


def align_rows(
    x: np.ndarray, valid_len: np.ndarray | None, pad_id: int | None, eos_id: int | None, check: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """``x`` ``(..., L)`` int64 left-aligned: the tokens (``x`` itself where they already stand first), their lengths
    ``(...)``, and the flat index of the first negative ID other than ``pad_id``/``eos_id`` (-1 if none, or when not
    ``check``ed).

    ``valid_len`` ``(...)``: only positions below it are tokens (None: all). Values past a length are unspecified.
    """
    n_rows = math.prod(x.shape[:-1])
    rows = np.ascontiguousarray(x).reshape(n_rows, x.shape[-1])
    valid = None if valid_len is None else np.ascontiguousarray(valid_len).reshape(n_rows)
    out = np.empty_like(rows)
    lengths = np.empty(n_rows, dtype=np.int64)
    bad, in_place = _align(rows, valid, 0, n_rows, pad_id, eos_id, check, out, lengths)
    tokens = (rows if in_place else out).reshape(x.shape)
    return tokens, lengths.reshape(x.shape[:-1]), int(bad)
