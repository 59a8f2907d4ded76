"""Compiled kernels for longest common subsequences: ROUGE-L's LCS lengths and ROUGE-Lsum's union-LCS hits.

Each candidate row takes a fresh stamp of the thread's direct token map and names its tokens ``0..K-1``; reference
tokens absent from the candidate get the id ``K``, which matches nothing. The LCS of a pair is bit-parallel
(Allison–Dix / Hyyrö): one sequence is a bit vector ``V`` (bit ``p`` for position ``p``), and each token of the other,
with match mask ``M`` (the positions holding that token), updates ``V <- (V + (V & M)) | (V & ~M)``; afterwards the
zero bits of ``V`` below position ``i`` count the LCS with the prefix of length ``i``. ROUGE-L runs the vector a
group of up to 4 words (256 positions) at a time over all the steps, the carries between the group's words in
registers and one carry per step passed on to the next group; a group needs only its own match masks (4 words per
token id, set from its positions and cleared after). A single-word vector runs a branch-free loop without carries,
and the side with fewer word steps is the one that steps. The loops' array indices are cast to unsigned (they are
never negative), which spares each access Numba's handling of negative indices.

ROUGE-Lsum walks rouge-score's ``_backtrack_norec`` for every (reference sentence, candidate sentence) pair of a row
back from its table's corner, reading two bits of the kept vectors per step: at a mismatch in row ``a`` and column
``c``, rouge-score goes left exactly when bit ``a - 1`` is 0 in both the vector after ``c - 1`` and after ``c``
candidate tokens. A walk stops once it has met as many matches as the pair's LCS; pairs without a common token are
never run: the candidate's sentences fall into 64 groups of consecutive ones, each token id knows the groups that
hold it, and a reference sentence runs only over the groups its tokens meet. A reference sentence of one word runs
over a group's whole stretch of the candidate in one loop (the vector restarts after each separator); a longer one
runs each candidate sentence one word at a time and keeps its vectors a block of candidate steps at a time when
they are many: one vector per block (a checkpoint) in the forward pass, each block recomputed from its checkpoint
when the walk enters it, so a pair costs at most two forward passes. The reference positions met on the paths of a
reference form its union; the hits per token value are ``min(union positions, candidate count)``.

Cost: ``min(L * ceil(L' / 64), L' * ceil(L / 64))`` word steps per ROUGE-L pair of lengths ``L`` and ``L'``; for
ROUGE-Lsum at most ``len(c) * ceil(len(s) / 64)`` per sentence pair ``(s, c)`` that shares a token group, twice for
long pairs, plus the walks (at most ``len(s) + len(c)`` steps each). Memory: the per-thread token map, a few integers
per token of the longest row, and for ROUGE-Lsum the kept vectors of one sentence pair or candidate stretch: all of
them up to ``_HISTORY_WORDS`` words, else about ``2 * sqrt(len(c)) * ceil(len(s) / 64)`` words; never a table of
the pairs' cells.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import uintp

from tensorbleu_metrics.functional._engine import dense_tokens, get_cpu_threads, run_rows, token_scratch

__all__ = ["lcs_lengths", "union_lcs_hits"]

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZERO = np.uint64(0)
# the kept vectors of one ROUGE-Lsum sentence pair up to this many words, in blocks of candidate steps beyond
_HISTORY_WORDS = 1 << 15


@numba.njit(nogil=True, cache=True)
def _popcount(x):  # pragma: no cover
    """Set bits of a uint64 (SWAR)."""
    x = x - ((x >> _ONE) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(nogil=True, cache=True)
def _low_bits(n):  # pragma: no cover
    """A word with its ``n`` lowest bits set (``0 <= n <= 64``)."""
    if n >= 64:
        return _ALL
    return (_ONE << np.uint64(n)) - _ONE


@numba.njit(nogil=True, cache=True)
def _set_masks(mask, bit_ids, at, lo, hi):  # pragma: no cover
    """Or the bits of positions ``lo..hi-1`` (one word's) into the masks of their ids."""
    for p in range(lo, hi):
        mask[bit_ids[uintp(at + p)]] |= _ONE << np.uint64(p & 63)


@numba.njit(nogil=True, cache=True)
def _clear_masks(mask, bit_ids, at, lo, hi):  # pragma: no cover
    """Zero the masks that ``_set_masks`` touched (the table is all zero between uses)."""
    for p in range(lo, hi):
        mask[bit_ids[uintp(at + p)]] = 0


@numba.njit(nogil=True, cache=True)
def _zeros_in(v, word, n_bits):  # pragma: no cover
    """Zero bits of ``v``, word ``word`` of a vector, at positions below ``n_bits``."""
    return _popcount(~v & _low_bits(min(64, max(0, n_bits - (word << 6)))))


@numba.njit(nogil=True, cache=True)
def _set_group(mask, bit_ids, first, n_group, n_bits):  # pragma: no cover
    """Match masks of words ``first..first + n_group - 1``, ``n_group`` words per id (``mask[id * n_group + w]``)."""
    for p in range((first << 6), min((first + n_group) << 6, n_bits)):
        mask[uintp(bit_ids[uintp(p)] * n_group + (p >> 6) - first)] |= _ONE << np.uint64(p & 63)


@numba.njit(nogil=True, cache=True)
def _clear_group(mask, bit_ids, first, n_group, n_bits):  # pragma: no cover
    """Zero the masks that ``_set_group`` touched (the table is all zero between uses)."""
    for p in range((first << 6), min((first + n_group) << 6, n_bits)):
        mask[uintp(bit_ids[uintp(p)] * n_group + (p >> 6) - first)] = 0


@numba.njit(nogil=True, cache=True)
def _add(v, m, c):  # pragma: no cover
    """One word of a step: the new word and its carry out, from the word, its match mask and the carry in."""
    u = v & m
    s = v + u
    t = s + c
    # the carry out: the word's own sum overflowed, or the carry in wrapped an all-ones sum
    return t | (v - u), np.uint64((s < v) | (t < s))  # v - u is v & ~m, as u lies inside v


@numba.njit(nogil=True, cache=True)
def _run1(step_ids, n_steps, mask, carry):  # pragma: no cover
    """One word over every step, with carries in and out through ``carry``."""
    v = _ALL
    for j in range(n_steps):
        v, carry[uintp(j)] = _add(v, mask[step_ids[uintp(j)]], carry[uintp(j)])
    return v


@numba.njit(nogil=True, cache=True)
def _run2(step_ids, n_steps, mask, carry, alone):  # pragma: no cover
    """Two words over every step (the carry between them in a register); ``alone``: the whole vector, no carries in
    or out."""
    v0 = v1 = _ALL
    if alone:
        for j in range(n_steps):
            at = uintp(step_ids[uintp(j)]) * uintp(2)
            v0, c = _add(v0, mask[at], _ZERO)
            u = v1 & mask[at + uintp(1)]
            v1 = (v1 + u + c) | (v1 - u)
        return v0, v1
    for j in range(n_steps):
        at = uintp(step_ids[uintp(j)]) * uintp(2)
        v0, c = _add(v0, mask[at], carry[uintp(j)])
        v1, carry[uintp(j)] = _add(v1, mask[at + uintp(1)], c)
    return v0, v1


@numba.njit(nogil=True, cache=True)
def _run4(step_ids, n_steps, mask, carry, alone):  # pragma: no cover
    """Four words over every step (the carries between them in registers); ``alone``: the whole vector, no carries
    in or out."""
    v0 = v1 = v2 = v3 = _ALL
    if alone:
        for j in range(n_steps):
            at = uintp(step_ids[uintp(j)]) * uintp(4)
            v0, c = _add(v0, mask[at], _ZERO)
            v1, c = _add(v1, mask[at + uintp(1)], c)
            v2, c = _add(v2, mask[at + uintp(2)], c)
            u = v3 & mask[at + uintp(3)]
            v3 = (v3 + u + c) | (v3 - u)  # the top word's carry out is dropped
        return v0, v1, v2, v3
    for j in range(n_steps):
        at = uintp(step_ids[uintp(j)]) * uintp(4)
        v0, c = _add(v0, mask[at], carry[uintp(j)])
        v1, c = _add(v1, mask[at + uintp(1)], c)
        v2, c = _add(v2, mask[at + uintp(2)], c)
        v3, carry[uintp(j)] = _add(v3, mask[at + uintp(3)], c)
    return v0, v1, v2, v3


@numba.njit(nogil=True, cache=True)
def _pair_length(step_ids, n_steps, bit_ids, n_bits, mask, carry):  # pragma: no cover
    """LCS length of ``step_ids[:n_steps]`` and ``bit_ids[:n_bits]``, a group of up to 4 words at a time."""
    if n_steps == 0 or n_bits == 0:
        return 0
    n_words = (n_bits + 63) >> 6
    if n_words == 1:
        _set_group(mask, bit_ids, 0, 1, n_bits)
        v = _ALL
        for j in range(n_steps):
            u = v & mask[step_ids[uintp(j)]]
            v = (v + u) | (v - u)
        _clear_group(mask, bit_ids, 0, 1, n_bits)
        return _zeros_in(v, 0, n_bits)
    alone = n_words <= 4  # a single group: no carries between groups
    if not alone:
        carry[:n_steps] = 0
    total = 0
    first = 0
    while first < n_words:
        # groups of 4 words (a group of 3 runs as 4: the word past the end holds no match and counts nothing)
        n_group = 4 if n_words - first >= 3 else n_words - first
        _set_group(mask, bit_ids, first, n_group, n_bits)
        if n_group == 4:
            v0, v1, v2, v3 = _run4(step_ids, n_steps, mask, carry, alone)
            total += _zeros_in(v0, first, n_bits) + _zeros_in(v1, first + 1, n_bits)
            total += _zeros_in(v2, first + 2, n_bits) + _zeros_in(v3, first + 3, n_bits)
        elif n_group == 2:
            v0, v1 = _run2(step_ids, n_steps, mask, carry, alone)
            total += _zeros_in(v0, first, n_bits) + _zeros_in(v1, first + 1, n_bits)
        else:
            total += _zeros_in(_run1(step_ids, n_steps, mask, carry), first, n_bits)
        _clear_group(mask, bit_ids, first, n_group, n_bits)
        first += n_group
    return total


@numba.njit(nogil=True, cache=True)
def _lcs_rows(
    start, stop, preds, pred_len, refs, ref_len, token_ids, token_stamps, stamp, out, pid, rid, mask, carry
):  # pragma: no cover
    """LCS lengths of rows ``start..stop-1`` into ``out``. Returns the last stamp used."""
    n_refs = refs.shape[1]
    for b in range(start, stop):
        stamp += 1
        n_pred = min(max(pred_len[b], 0), preds.shape[1])
        row = preds[b]
        k = 0
        for j in range(n_pred):
            x = np.uint64(row[uintp(j)])  # token values are map indices, never negative
            if token_stamps[x] != stamp:
                token_stamps[x] = stamp
                token_ids[x] = k
                pid[uintp(j)] = k
                k += 1
            else:
                pid[uintp(j)] = token_ids[x]
        for r in range(n_refs):
            n_ref = min(max(ref_len[b, r], 0), refs.shape[2])
            ref = refs[b, r]
            for p in range(n_ref):
                x = np.uint64(ref[uintp(p)])
                rid[uintp(p)] = token_ids[x] if token_stamps[x] == stamp else k
            # the side with fewer word steps runs over the other's words (the id k never appears on the candidate
            # side, so its mask stays empty when the reference is the step side)
            if n_pred * ((n_ref + 63) >> 6) <= n_ref * ((n_pred + 63) >> 6):
                out[b, r] = _pair_length(pid, n_pred, rid, n_ref, mask, carry)
            else:
                out[b, r] = _pair_length(rid, n_ref, pid, n_pred, mask, carry)
    return stamp


@numba.njit(nogil=True, cache=True)
def _isqrt(n):  # pragma: no cover
    """``floor(sqrt(n))`` of an integer ``n >= 0``."""
    r = np.int64(math.sqrt(n))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


@numba.njit(nogil=True, cache=True)
def _block_size(n_steps, n_words, budget):  # pragma: no cover
    """Candidate steps per block of kept vectors: all of them within ``budget`` words, else about their root."""
    if (n_steps + 1) * n_words <= budget:
        return max(n_steps, 1)
    size = max(_isqrt(n_steps) + 1, budget // n_words - 1)
    return max(1, min(size, n_steps))


@numba.njit(nogil=True, cache=True)
def _forward(pid, s0, n_steps, rid, r0, n_bits, n_words, init, init_at, hist, mask, carry):  # pragma: no cover
    """Vectors before and after each of the steps ``pid[s0:s0 + n_steps]`` over the sentence ``rid[r0:r0 + n_bits]``,
    from ``init[init_at:init_at + n_words]``, into rows ``0..n_steps`` of ``hist`` (``n_words`` words a row)."""
    carry[:n_steps] = 0
    for w in range(n_words):
        lo = w << 6
        hi = min(lo + 64, n_bits)
        _set_masks(mask, rid, r0, lo, hi)
        v = init[init_at + w]
        hist[w] = v
        for j in range(n_steps):
            v, carry[uintp(j)] = _add(v, mask[pid[uintp(s0 + j)]], carry[uintp(j)])
            hist[uintp((j + 1) * n_words + w)] = v
        _clear_masks(mask, rid, r0, lo, hi)


@numba.njit(nogil=True, cache=True)
def _walk(pid, c0, rid, r0, a, c, found, lcs, hist, h0, base, n_words, on_path):  # pragma: no cover
    """rouge-score's backtrack from the cell ``(a, c)`` of the table of the reference sentence at ``rid[r0:]`` and
    the candidate sentence at ``pid[c0:]``, marking ``on_path`` at its matches, until it has met ``lcs`` matches or
    column ``base``. The vector after ``c`` candidate tokens is at ``hist[h0 + (c - base) * n_words:]``.

    Returns the cell and the matches met.
    """
    while found < lcs and c > base:
        if rid[uintp(r0 + a - 1)] == pid[uintp(c0 + c - 1)]:
            on_path[uintp(r0 + a - 1)] = 1
            found += 1
            a -= 1
            c -= 1
        else:
            # rouge-score goes left when t[a][c-1] > t[a-1][c]. With D = t[a-1][c-1]: t[a][c-1] = D + 1 exactly when
            # bit a-1 is 0 after c-1 tokens, and then t[a][c] = D + 1, so t[a-1][c] = D exactly when bit a-1 is 0
            # after c tokens as well
            bit = a - 1
            at = h0 + (c - base) * n_words + (bit >> 6)
            if ((hist[uintp(at - n_words)] | hist[uintp(at)]) >> np.uint64(bit & 63)) & _ONE:
                a -= 1
            else:
                c -= 1
    return a, c, found


@numba.njit(nogil=True, cache=True)
def _union_pair(pid, c0, n_c, rid, r0, n_r, mask, hist, ckpt, carry, on_path, budget):  # pragma: no cover
    """Mark ``on_path`` at the reference positions of rouge-score's backtracked LCS of the reference sentence
    ``rid[r0:r0 + n_r]`` (more than one word) and the candidate sentence ``pid[c0:c0 + n_c]``, a block of kept
    vectors at a time."""
    n_words = (n_r + 63) >> 6
    size = _block_size(n_c, n_words, budget)
    n_blocks = (n_c + size - 1) // size
    for w in range(n_words):
        ckpt[w] = _ALL
    for k in range(n_blocks):
        j0 = k * size
        steps = min(n_c, j0 + size) - j0
        _forward(pid, c0 + j0, steps, rid, r0, n_r, n_words, ckpt, k * n_words, hist, mask, carry)
        for w in range(n_words):
            ckpt[(k + 1) * n_words + w] = hist[steps * n_words + w]
    # the pair's LCS: zero bits of the last vector inside the sentence
    lcs = 0
    for w in range(n_words):
        lcs += _zeros_in(ckpt[n_blocks * n_words + w], w, n_r)
    k = n_blocks - 1
    base = k * size  # hist holds the vectors after base..base + size steps: the last block's
    a = n_r
    c = n_c
    found = 0
    while found < lcs:  # past the last match the walk marks nothing
        if c == base:  # the next step reads the vector before base: the block below, from its checkpoint
            k -= 1
            base = k * size
            _forward(pid, c0 + base, size, rid, r0, n_r, n_words, ckpt, k * n_words, hist, mask, carry)
        a, c, found = _walk(pid, c0, rid, r0, a, c, found, lcs, hist, 0, base, n_words, on_path)


@numba.njit(nogil=True, cache=True)
def _union_rows(
    start,
    stop,
    preds,
    pred_len,
    refs,
    ref_len,
    sep,
    token_ids,
    token_stamps,
    stamp,
    hits,
    pred_total,
    ref_total,
    pid,
    reset,
    rid,
    sent_at,
    sent_len,
    pred_count,
    union_count,
    groups,
    on_path,
    mask,
    hist,
    ckpt,
    carry,
    budget,
):  # pragma: no cover
    """ROUGE-Lsum hits and token counts of rows ``start..stop-1``. Returns the last stamp used."""
    n_refs = refs.shape[1]
    pred_width = preds.shape[1]
    blank = pred_width + 1  # the id of a candidate separator: above every id, its mask is never set
    for b in range(start, stop):
        stamp += 1
        n_pred = min(max(pred_len[b], 0), pred_width)
        row = preds[b]
        k = 0
        tokens = 0
        n_sent = 0
        inside = False
        # candidate ids, counts and sentences (non-empty runs between separators, at sent_at/sent_len[0:n_sent])
        for j in range(n_pred):
            x = row[j]
            if x == sep:
                pid[j] = blank
                reset[j] = _ALL
                inside = False
                continue
            reset[j] = 0
            x = np.uint64(x)  # token values are map indices, never negative
            if token_stamps[x] != stamp:
                token_stamps[x] = stamp
                token_ids[x] = k
                pred_count[k] = 0
                groups[k] = 0
                i = k
                k += 1
            else:
                i = token_ids[x]
            pid[j] = i
            pred_count[i] += 1
            tokens += 1
            if not inside:
                sent_at[n_sent] = j
                sent_len[n_sent] = 0
                n_sent += 1
                inside = True
            sent_len[n_sent - 1] += 1
        pred_total[b] = tokens
        # the candidate sentences in 64 groups of consecutive ones: bit g of groups[i] says that a sentence of group
        # g holds the id i; a reference sentence meets only the groups whose bits its tokens set
        per_group = max(1, (n_sent + 63) >> 6)
        for t in range(n_sent):
            bit = _ONE << np.uint64(t // per_group)
            for j in range(sent_at[t], sent_at[t] + sent_len[t]):
                groups[pid[j]] |= bit
        groups[k] = 0  # the id of the tokens the candidate lacks
        for r in range(n_refs):
            n_ref = min(max(ref_len[b, r], 0), refs.shape[2])
            ref = refs[b, r]
            tokens = 0
            for p in range(n_ref):
                x = ref[p]
                # the separator never has an id in this row: it gets k, like every token the candidate lacks
                rid[p] = token_ids[np.uint64(x)] if token_stamps[np.uint64(x)] == stamp else k
                on_path[p] = 0
                tokens += x != sep
            ref_total[b, r] = tokens
            p = 0
            while p < n_ref:
                if ref[p] == sep:
                    p += 1
                    continue
                lo = p
                met = _ZERO
                while p < n_ref and ref[p] != sep:
                    met |= groups[rid[p]]
                    p += 1
                n_r = p - lo
                one_word = n_r <= 64
                if one_word:
                    _set_masks(mask, rid, lo, 0, n_r)
                while met:  # each group of candidate sentences that shares a token with this one
                    low = met & (~met + _ONE)
                    met ^= low
                    first = _popcount(low - _ONE) * per_group
                    last = min(n_sent, first + per_group)
                    if not one_word:
                        for t in range(first, last):
                            _union_pair(
                                pid, sent_at[t], sent_len[t], rid, lo, n_r, mask, hist, ckpt, carry, on_path, budget
                            )
                        continue
                    # a one-word sentence runs over the group's stretch of the candidate at once, restarting after
                    # each separator
                    j0 = sent_at[first]
                    v = _ALL
                    hist[j0] = v
                    for j in range(j0, sent_at[last - 1] + sent_len[last - 1]):
                        u = v & mask[pid[uintp(j)]]
                        v = ((v + u) | (v - u)) | reset[uintp(j)]
                        hist[uintp(j + 1)] = v
                    for t in range(first, last):
                        c0 = sent_at[t]
                        lcs = _zeros_in(hist[c0 + sent_len[t]], 0, n_r)
                        if lcs:
                            _walk(pid, c0, rid, lo, n_r, sent_len[t], 0, lcs, hist, c0, 0, 1, on_path)
                if one_word:
                    _clear_masks(mask, rid, lo, 0, n_r)
            # each value of the union counts at most as often as the candidate holds it
            h = 0
            for p in range(n_ref):
                if on_path[p]:
                    i = rid[p]
                    union_count[i] += 1
                    h += union_count[i] <= pred_count[i]
            for p in range(n_ref):
                if on_path[p]:
                    union_count[rid[p]] = 0
            hits[b, r] = h
    return stamp


def _inputs(preds, pred_len, refs, ref_len, extra=()):
    """Contiguous int64 arrays, the token values a direct map covers (the kernels clip the lengths to the widths)."""
    preds = np.ascontiguousarray(preds, dtype=np.int64)
    refs = np.ascontiguousarray(refs, dtype=np.int64)
    pred_len = np.ascontiguousarray(pred_len, dtype=np.int64)
    ref_len = np.ascontiguousarray(ref_len, dtype=np.int64)
    arrays, vocab = dense_tokens([preds, refs, *extra])
    return arrays, pred_len, ref_len, vocab


def _cost(pred_len: np.ndarray, ref_len: np.ndarray) -> np.ndarray | None:
    """Word steps per row, to balance the rows over threads (none with one thread)."""
    if get_cpu_threads() == 1:
        return None
    pred_len = np.maximum(pred_len, 0)
    ref_len = np.maximum(ref_len, 0)
    return pred_len * ((ref_len + 63) // 64 + 1).sum(1) + ref_len.sum(1)


def lcs_lengths(preds: np.ndarray, pred_len: np.ndarray, refs: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    """LCS length of every candidate with each of its references.

    Args:
        preds: ``(B, L)`` left-aligned tokens, valid below ``pred_len`` ``(B,)``.
        pred_len: candidate lengths.
        refs: ``(B, R, L')`` left-aligned tokens, valid below ``ref_len`` ``(B, R)``.
        ref_len: reference lengths (0 for absent references).

    Returns:
        ``(B, R)`` int64 LCS lengths.
    """
    n_sent, n_refs, width = np.shape(refs)
    out = np.zeros((n_sent, n_refs), dtype=np.int64)
    if n_sent == 0 or n_refs == 0:
        return out
    (preds, refs), pred_len, ref_len, vocab = _inputs(preds, pred_len, refs, ref_len)
    pred_width = preds.shape[1]
    longest = max(pred_width, width)
    cost = _cost(pred_len, ref_len)

    def block(start: int, stop: int) -> None:
        scratch = token_scratch(vocab)
        pid = np.empty(pred_width, dtype=np.uint32)
        rid = np.empty(width, dtype=np.uint32)
        mask = np.zeros(4 * (longest + 1), dtype=np.uint64)
        carry = np.empty(longest, dtype=np.uint64)
        scratch.stamp = _lcs_rows(
            start, stop, preds, pred_len, refs, ref_len, scratch.ids, scratch.stamps, scratch.stamp, out, pid, rid,
            mask, carry,
        )  # fmt: skip

    run_rows(block, n_sent, cost)
    return out


def union_lcs_hits(
    preds: np.ndarray, pred_len: np.ndarray, refs: np.ndarray, ref_len: np.ndarray, sep_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summary-level union-LCS hits of rouge-score's ``_summary_level_lcs``, sentences split at ``sep_id``.

    Args:
        preds, pred_len, refs, ref_len: as ``lcs_lengths``.
        sep_id: the token that ends a sentence (never a token itself).

    Returns:
        ``(B, R)`` hits, ``(B,)`` candidate token counts and ``(B, R)`` reference token counts (separators
        excluded), all int64.
    """
    n_sent, n_refs, width = np.shape(refs)
    hits = np.zeros((n_sent, n_refs), dtype=np.int64)
    pred_total = np.zeros(n_sent, dtype=np.int64)
    ref_total = np.zeros((n_sent, n_refs), dtype=np.int64)
    if n_sent == 0:
        return hits, pred_total, ref_total
    (preds, refs, sep), pred_len, ref_len, vocab = _inputs(
        preds, pred_len, refs, ref_len, (np.array([sep_id], dtype=np.int64),)
    )
    pred_width = preds.shape[1]
    max_words = max(1, (width + 63) // 64)
    root = math.isqrt(pred_width) + 2
    # a multi-word sentence pair's block (see _block_size), or the one-word pass over a whole candidate
    hist_words = max(min((pred_width + 1) * max_words, max(_HISTORY_WORDS, root * max_words)), pred_width) + max_words
    ckpt_words = (root + 2) * max_words
    cost = _cost(pred_len, ref_len)

    def block(start: int, stop: int) -> None:
        scratch = token_scratch(vocab)
        pid = np.empty(pred_width, dtype=np.uint32)
        reset = np.empty(pred_width, dtype=np.uint64)
        rid = np.empty(width, dtype=np.uint32)
        sent_at = np.empty(pred_width, dtype=np.int64)
        sent_len = np.empty(pred_width, dtype=np.int64)
        pred_count = np.zeros(pred_width + 1, dtype=np.int64)
        union_count = np.zeros(pred_width + 1, dtype=np.int64)
        groups = np.empty(pred_width + 1, dtype=np.uint64)
        on_path = np.zeros(width, dtype=np.uint8)
        mask = np.zeros(pred_width + 2, dtype=np.uint64)
        hist = np.empty(hist_words, dtype=np.uint64)
        ckpt = np.empty(ckpt_words, dtype=np.uint64)
        carry = np.empty(pred_width, dtype=np.uint64)
        scratch.stamp = _union_rows(
            start, stop, preds, pred_len, refs, ref_len, int(sep[0]), scratch.ids, scratch.stamps, scratch.stamp,
            hits, pred_total, ref_total, pid, reset, rid, sent_at, sent_len, pred_count, union_count, groups, on_path,
            mask, hist, ckpt, carry, _HISTORY_WORDS,
        )  # fmt: skip

    run_rows(block, n_sent, cost)
    return hits, pred_total, ref_total
