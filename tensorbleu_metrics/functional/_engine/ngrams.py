"""Clipped n-gram matches of a candidate against its references: compiled per-row kernels.

A row (one candidate and its references) is laid out as ``[0 | candidate | 0 | ref 0 | 0 | ref 1 | 0 ...]``, each
position holding the id of the n-gram that ends there (0: none, and the separators keep n-grams inside their
sequence). Tokens get dense ids ``1..U`` through the thread's persistent direct map, the candidate's first; a
reference token the candidate lacks gets 0. Order n's id at a position comes from order n - 1's id one position
back (the prefix) and the position's token: the positions are bucketed once per row by their token's id (a
counting sort), and within a bucket each distinct prefix gets a new id through a stamped array indexed by the
prefix id (a bucket's stamp is derived from its token, so changing buckets costs no branch). Only the candidate's
n-grams get ids, so in each bucket the candidate's positions come first and the references only look theirs up.

Counting is folded into the same pass: the candidate's occurrences come before a reference's in their bucket, so
each reference occurrence adds one to ``min(count_cand, count_ref)`` and, when it raises the largest reference
count, to ``min(count_cand, max_r count_r)``. An n-gram no reference holds cannot be the prefix or the suffix of
one that a reference holds, so after each order the positions whose n-gram matched nothing leave the bucket list:
later orders touch only what can still match, and a row is done when nothing is left. Stamps (of the map and of
the buckets) replace clearing: a row clears only the counters of the ids it hands out.

Cost per row: O(tokens) for the map, the counting sort and order 1, then O(matching positions) per order. Memory:
the thread's map (12 bytes per vocabulary entry, kept between calls) and, per call and thread, about 20 bytes per
position of the widest row plus ``24 + 4 R`` bytes per token of the longest candidate (R references).
"""

from __future__ import annotations

import numba
import numpy as np

from tensorbleu_metrics.functional._engine import MAP_LIMIT, dense_tokens, run_rows, token_scratch

__all__ = ["count_pairs"]


@numba.njit(nogil=True, cache=True)
def _count_rows(start, stop, preds, pred_len, refs, ref_len, n_gram, matches, ref_matches, ids, stamps, stamp):
    """Rows ``[start, stop)`` into ``matches`` (B, N) and ``ref_matches`` (B, R, N); returns the last map stamp."""
    n_refs = refs.shape[1]
    # scratch sized once for the widest row and the longest candidate of the block
    width = 1
    longest = 0
    for b in range(start, stop):
        w = pred_len[b] + 2
        for k in range(n_refs):
            w += ref_len[b, k] + 1
        width = max(width, w)
        longest = max(longest, pred_len[b])
    order1 = np.zeros(width, dtype=np.int32)  # order-1 ids (tokens), kept for the buckets
    cur = np.zeros(width, dtype=np.int32)  # two arrays of n-gram ids, alternating order by order
    nxt = np.zeros(width, dtype=np.int32)
    bucket = np.empty(width, dtype=np.int32)  # positions that may still match, by token id then position
    bucket_src = np.empty(width, dtype=np.int32)  # their sequence: 0 candidate, k + 1 reference k
    slots = longest + 1  # ids of any order are 1..(candidate n-grams); 0 stands for no n-gram
    cand_count = np.zeros(slots, dtype=np.int32)
    best = np.zeros(slots, dtype=np.int32)  # the largest reference count so far
    ref_count = np.zeros(slots * n_refs, dtype=np.int32)  # [id * R + k]
    first = np.zeros(slots + 1, dtype=np.int32)  # counting sort: where each token's bucket starts
    marks = np.zeros(slots, dtype=np.int64)  # stamp of the bucket that last gave the prefix an id
    new_id = np.zeros(slots, dtype=np.int32)
    ref_hits = np.zeros(n_refs, dtype=np.int64)
    base = 0  # the stamps of the buckets: base + token id, base moving past every id at each order

    for b in range(start, stop):
        lp = pred_len[b]
        stamp += 1
        # ---- order 1: the candidate's tokens get ids 1..u in the persistent map, counted as they come ----
        u = 0
        for i in range(lp):
            t = preds[b, i]
            if stamps[t] != stamp:
                stamps[t] = stamp
                u += 1
                ids[t] = u
                cand_count[u] = 0
                best[u] = 0
                first[u] = 0
                for k in range(n_refs):
                    ref_count[u * n_refs + k] = 0
            g = ids[t]
            order1[i + 1] = g
            cand_count[g] += 1
        order1[0] = 0
        order1[lp + 1] = 0
        # slot 0 absorbs the reference tokens the candidate lacks (branch-free): it never counts as a match
        cand_count[0] = 0
        best[0] = 0
        first[0] = 0
        for k in range(n_refs):
            ref_count[k] = 0
        total = 0
        offset = lp + 2
        for k in range(n_refs):
            hits = 0
            for i in range(ref_len[b, k]):
                t = refs[b, k, i]
                g = ids[t] * (stamps[t] == stamp)
                order1[offset + i] = g
                first[g] += 1
                c = ref_count[g * n_refs + k] + 1
                ref_count[g * n_refs + k] = c
                below = c <= cand_count[g]
                hits += below
                if c > best[g]:
                    best[g] = c
                    total += below
            ref_hits[k] = hits
            order1[offset + ref_len[b, k]] = 0
            offset += ref_len[b, k] + 1
        matches[b, 0] = total
        for k in range(n_refs):
            ref_matches[b, k, 0] = ref_hits[k]
        if n_gram == 1 or total == 0:
            continue
        # tokens no reference holds leave the candidate; the rest are bucketed by token id (stable: candidate
        # first, then the references in order)
        for i in range(1, lp + 1):
            g = order1[i]
            g *= best[g] > 0
            order1[i] = g
            first[g] += 1
        pos = 0
        for g in range(1, u + 1):
            in_bucket = first[g]
            first[g] = pos
            pos += in_bucket
        size = pos
        for i in range(1, lp + 1):
            g = order1[i]
            if g > 0:
                bucket[first[g]] = i
                bucket_src[first[g]] = 0
                first[g] += 1
        offset = lp + 2
        for k in range(n_refs):
            for i in range(offset, offset + ref_len[b, k]):
                g = order1[i]
                if g > 0:
                    bucket[first[g]] = i
                    bucket_src[first[g]] = k + 1
                    first[g] += 1
            offset += ref_len[b, k] + 1
        row_width = offset
        cur[:row_width] = 0
        nxt[:row_width] = 0
        prev = order1
        # ---- orders 2..n_gram over the positions that may still match ----
        for n in range(2, n_gram + 1):
            out = cur if n % 2 == 0 else nxt
            u = 0
            total = 0
            ref_hits[:] = 0
            base += slots
            for e in range(size):
                j = bucket[e]
                key = base + order1[j]  # one stamp per bucket, without a branch on bucket changes
                p = prev[j - 1]
                g = 0
                if p > 0:
                    src = bucket_src[e]
                    if marks[p] == key:
                        g = new_id[p]
                    elif src == 0:
                        marks[p] = key
                        u += 1
                        new_id[p] = u
                        g = u
                        cand_count[u] = 0
                        best[u] = 0
                        for k in range(n_refs):
                            ref_count[u * n_refs + k] = 0
                    if g > 0:
                        if src == 0:
                            cand_count[g] += 1
                        else:
                            slot = g * n_refs + src - 1
                            c = ref_count[slot] + 1
                            ref_count[slot] = c
                            below = c <= cand_count[g]
                            ref_hits[src - 1] += below
                            if c > best[g]:
                                best[g] = c
                                total += below
                out[j] = g
            matches[b, n - 1] = total
            for k in range(n_refs):
                ref_matches[b, k, n - 1] = ref_hits[k]
            if n == n_gram or total == 0:
                break
            # the positions whose n-gram matched nothing leave the list; 0 in both arrays (this order's, read as
            # the prefix next, and the one the next order writes)
            kept = 0
            best[0] = 0
            for e in range(size):  # without branches: which positions leave is unpredictable
                j = bucket[e]
                g = out[j]
                keep = best[g] > 0
                bucket[kept] = j
                bucket_src[kept] = bucket_src[e]
                kept += keep
                out[j] = g * keep
                if n > 2:
                    prev[j] *= keep
            size = kept
            prev = out  # this order's ids are the next order's prefixes
    return stamp


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


def _block(start: int, stop: int, *args: object) -> int:
    """Run the kernel over rows ``[start, stop)`` with this thread's token map."""
    preds, pred_len, refs, ref_len, n_gram, matches, ref_matches, vocab = args
    scratch = token_scratch(vocab)
    scratch.stamp = _count_rows(
        start,
        stop,
        preds,
        pred_len,
        refs,
        ref_len,
        n_gram,
        matches,
        ref_matches,
        scratch.ids,
        scratch.stamps,
        scratch.stamp,
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
        # int32 positions, ids and counts within a row
        if int(cost.max()) + 2 * n_refs + 2 >= 2**31:
            raise ValueError("a candidate and its references hold 2**31 tokens or more")
        if low < 0 or high >= MAP_LIMIT:
            (preds, refs), vocab = dense_tokens([preds, refs], [pred_len, ref_len])
        else:
            vocab = high + 1
        run_rows(_block, n_rows, cost, preds, pred_len, refs, ref_len, n_gram, matches, ref_matches, vocab)
    return matches, ref_matches if per_reference else None
