"""chrF on text: a compiled per-row kernel over the batch's codepoints (its scores: ``_engine/scoring.py``).

A row is a hypothesis and its references, slices of one UTF-32 codepoint array. Its characters (whitespace dropped
unless kept) become dense symbols through the thread's persistent direct map, the hypothesis's ``1..U`` first; a
reference character the hypothesis lacks becomes 0, which matches nothing. For chrF++ its words (``str.split`` with
SacreBLEU's punctuation rule) become symbols the same way, through a per-row table of word hashes in which a hash
hit counts only once the codepoints compare equal, so word identity is exact.

A symbol sequence is counted order by order. Each position holds the node of the n-gram starting there, numbered
``1..count`` within its order from the hypothesis's n-grams (0 on a reference's side: an n-gram the hypothesis
lacks, whose longer n-grams it lacks too). Order ``n``'s node follows from order ``n - 1``'s node at the same
position and the symbol ``n - 1`` further on, through a table indexed by ``node * (U + 1) + symbol``: direct (no
branch: an empty entry becomes a new node, or the dead node 0 for a reference) while it stays within a few entries
per codepoint of the row, else an open-addressing hash table. The positions of one order do not depend on each
other, so their lookups overlap. Each reference position adds one to ``min(hypothesis count, reference count)`` of
its node while its count stays within the hypothesis's; a table is cleared after each order through the entries
its nodes took.

Cost per row: ``K`` table lookups per position (hypothesis and references) for ``K`` orders, plus one pass over
the codepoints per symbol kind. Memory per call and thread: about 16 bytes per codepoint of the widest row (at
least 128 KiB) for the direct table, 8 for the symbols and their nodes, about 40 per codepoint of the longest
hypothesis for the counts and the hashed table, and the thread's direct map (12 bytes per codepoint value up to the
largest in the batch, kept between calls).
"""

from __future__ import annotations

import numba
import numpy as np

from tensorbleu_metrics.functional._engine import run_rows, token_scratch

__all__ = ["chrf_counts"]

# Fibonacci hashing's multiplier (2**64 / golden ratio): a slot is read from the top bits of a product. Hashes are
# uint64, whose products wrap; an int64 product that overflows is undefined to the compiler, which may then give two
# places in the code different values for one key
_MULT = np.uint64(0x9E3779B97F4A7C15)
_SEED = np.uint64(0x2545F4914F6CDD1D)  # a word's hash before its first codepoint
_U = np.uint64
# the whitespace tables cover the codepoints up to U+3000 and one beyond, which stands for every larger one
_BEYOND = np.uint32(0x3001)
_ONE = np.uint64(1)


@numba.njit(nogil=True, cache=True)
def _slot(key, shift):
    """The slot of a non-negative key (or a uint64 hash) in a table of ``2**(64 - shift)`` slots."""
    return np.int64((_U(key) * _MULT) >> _U(shift))


@numba.njit(nogil=True, cache=True)
def _probe(keys, key, shift, mask):
    """The slot of ``key`` in an open-addressing table of non-negative keys (-1: empty) probed linearly: where it
    is, or the empty slot where it would go."""
    s = _slot(key, shift)
    while keys[s] != key and keys[s] >= 0:
        s = (s + 1) & mask
    return s


@numba.njit(nogil=True, cache=True)
def _bits_for(n):
    """The smallest ``b >= 1`` with ``2**b >= 2 n``: a table of at most half load."""
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    return bits


@numba.njit(nogil=True, cache=True)
def _level_direct(sym, lh, ref_at, ref_len, n_refs, width, n, at, table, slot_of, hits, out):
    """Order ``n`` through a direct table indexed by ``(parent, symbol)``: returns its number of nodes and writes
    each reference's overlap into ``out``. Branch-free: a missing entry (0) makes a new node on the hypothesis's
    side and the dead node 0 on a reference's, whose row and column of the table stay 0. (Computed indices are
    cast to unsigned: they are never negative, and Numba then leaves out its negative-index handling.)"""
    count = 0
    for i in range(lh - n + 1):
        idx = _U(at[i] * width + sym[i + n - 1])
        v = table[idx]
        new = v == 0
        count += new
        v += new * count
        table[idx] = v
        slot_of[_U(v)] = idx
        at[i] = v
        hits[_U(2 * v)] = hits[_U(2 * v)] * (1 - new) + 1
    for k in range(n_refs):
        for v in range(count + 1):
            hits[2 * v + 1] = 0
        total = 0
        for j in range(ref_at[k], ref_at[k] + ref_len[k] - n + 1):
            i = _U(j)
            v = table[_U(at[i] * width + sym[i + _U(n - 1)])]
            at[i] = v
            h = _U(2 * v)
            c = hits[h + _ONE] + 1
            hits[h + _ONE] = c
            total += c <= hits[h]
        out[k] = total
    for v in range(1, count + 1):
        table[_U(slot_of[v])] = 0
    return count


@numba.njit(nogil=True, cache=True)
def _level_hashed(sym, lh, ref_at, ref_len, n_refs, width, n, at, keys, vals, slot_of, hits, out):
    """``_level_direct`` through an open-addressing table of the keys ``parent * width + symbol`` (for rows whose
    direct table would be too large)."""
    bits = _bits_for(lh)
    mask = (1 << bits) - 1
    shift = 64 - bits
    count = 0
    for i in range(lh - n + 1):
        key = at[i] * width + sym[i + n - 1]
        s = _probe(keys, key, shift, mask)
        if keys[s] == key:
            v = vals[s]
        else:  # a new node, in the empty slot the probe stopped at
            count += 1
            v = count
            keys[s] = key
            vals[s] = v
            slot_of[v] = s
            hits[2 * v] = 0
        at[i] = v
        hits[2 * v] += 1
    for k in range(n_refs):
        for v in range(count + 1):
            hits[2 * v + 1] = 0
        total = 0
        for i in range(ref_at[k], ref_at[k] + ref_len[k] - n + 1):
            v = 0
            p = at[i]
            g = sym[i + n - 1]
            if p > 0 and g > 0:
                key = p * width + g
                s = _probe(keys, key, shift, mask)
                if keys[s] == key:
                    v = vals[s]
            at[i] = v
            c = hits[2 * v + 1] + 1
            hits[2 * v + 1] = c
            total += c <= hits[2 * v]
        out[k] = total
    for v in range(1, count + 1):
        keys[slot_of[v]] = -1
    return count


@numba.njit(nogil=True, cache=True)
def _count_orders(sym, lh, ref_at, ref_len, n_refs, alphabet, order, col, b, hyp_tot, ref_tot, matches, work):
    """Orders ``1..order`` of ``sym`` (the hypothesis at ``0..lh`` with symbols ``1..alphabet``, reference ``k`` at
    ``ref_at[k]`` with ``0..alphabet``) into columns ``col..col + order - 1`` of row ``b``'s outputs.

    Order by order, ``at[i]`` holds the node of the n-gram starting at ``i``, numbered ``1..count`` within its
    order (0: an n-gram the hypothesis lacks), and ``hits`` the hypothesis's and the current reference's count of
    each node."""
    at, table, keys, vals, slot_of, hits, out, direct_limit = work
    for n in range(order):
        hyp_tot[b, col + n] = max(lh - n, 0)
        for k in range(n_refs):
            ref_tot[b, k, col + n] = max(ref_len[k] - n, 0)
    if lh == 0:
        return
    width = alphabet + 1
    for g in range(width):
        hits[2 * g] = 0
    for i in range(lh):
        g = sym[i]
        at[i] = g
        hits[_U(2 * g)] += 1
    for k in range(n_refs):
        for g in range(width):
            hits[2 * g + 1] = 0
        total = 0
        for j in range(ref_at[k], ref_at[k] + ref_len[k]):
            i = _U(j)
            g = sym[i]
            at[i] = g
            h = _U(2 * g)
            c = hits[h + _ONE] + 1
            hits[h + _ONE] = c
            total += c <= hits[h]
        matches[b, k, col] = total
    count = alphabet
    for n in range(2, min(order, lh) + 1):
        if (count + 1) * width <= direct_limit:
            count = _level_direct(sym, lh, ref_at, ref_len, n_refs, width, n, at, table, slot_of, hits, out)
        else:
            count = _level_hashed(sym, lh, ref_at, ref_len, n_refs, width, n, at, keys, vals, slot_of, hits, out)
        for k in range(n_refs):
            matches[b, k, col + n - 1] = out[k]


@numba.njit(nogil=True, cache=True)
def _is_space(c, spaces):
    return spaces[min(c, _BEYOND)]


@numba.njit(nogil=True, cache=True)
def _rows(
    start,
    stop,
    codes,
    text_at,
    ref_first,
    batch,
    char_order,
    word_order,
    dropped,
    spaces,
    marks,
    hyp_tot,
    ref_tot,
    matches,
    ids,
    stamps,
    stamp,
):
    """Rows ``[start, stop)`` into the outputs; returns the last stamp of the direct map."""
    n_refs_max = ref_tot.shape[1]
    # scratch sized once for the block's longest hypothesis and widest row
    longest = 1
    width = 1
    for b in range(start, stop):
        longest = max(longest, text_at[b + 1] - text_at[b])
        w = text_at[b + 1] - text_at[b]
        for t in range(batch + ref_first[b], batch + ref_first[b + 1]):
            w += text_at[t + 1] - text_at[t]
        width = max(width, w)
    sym = np.zeros(width, dtype=np.int32)
    # per order: each position's node, the nodes' counts, and the table from (parent, symbol) to node, direct
    # while it stays within a few entries per codepoint of the row, else hashed
    direct_limit = max(1 << 15, 4 * width)
    bits = _bits_for(longest)
    work = (
        np.zeros(width, dtype=np.int32),
        np.zeros(direct_limit, dtype=np.int32),
        np.full(1 << bits, -1, dtype=np.int64),
        np.zeros(1 << bits, dtype=np.int32),
        np.zeros(longest + 1, dtype=np.int32),
        np.zeros(2 * longest + 2, dtype=np.int32),
        np.zeros(n_refs_max, dtype=np.int64),
        direct_limit,
    )
    ref_at = np.zeros(n_refs_max, dtype=np.int64)
    ref_len = np.zeros(n_refs_max, dtype=np.int64)
    # words: a table of the hypothesis's word hashes, with each word's id, first codepoint and length
    word_cap = 1 << _bits_for(longest) if word_order else 1
    word_hash = np.zeros(word_cap, dtype=np.uint64)
    word_id = np.zeros(word_cap, dtype=np.int32)  # 0: empty slot
    word_at = np.zeros(word_cap, dtype=np.int64)
    word_len = np.zeros(word_cap, dtype=np.int64)
    word_slot = np.zeros(longest + 1, dtype=np.int32)

    for b in range(start, stop):
        n_refs = ref_first[b + 1] - ref_first[b]
        first_ref = batch + ref_first[b]
        # ---- characters: the hypothesis's get ids 1..u in the direct map, a reference's the same or 0 ----
        if char_order:
            stamp += 1
            u = 0
            lh = 0
            for i in range(text_at[b], text_at[b + 1]):
                c = codes[_U(i)]
                keep = not dropped[min(c, _BEYOND)]  # without a branch: whitespace comes unpredictably
                if stamps[c] != stamp and keep:
                    stamps[c] = stamp
                    u += 1
                    ids[c] = u
                sym[_U(lh)] = ids[c]
                lh += keep
            pos = lh
            for k in range(n_refs):
                t = first_ref + k
                ref_at[k] = pos
                for i in range(text_at[t], text_at[t + 1]):
                    c = codes[_U(i)]
                    sym[_U(pos)] = ids[c] * (stamps[c] == stamp)
                    pos += not dropped[min(c, _BEYOND)]
                ref_len[k] = pos - ref_at[k]
            _count_orders(
                sym, lh, ref_at, ref_len, n_refs, u, char_order, 0, b, hyp_tot, ref_tot, matches, work
            )  # fmt: skip
        if word_order == 0:
            continue
        # ---- words: pieces of the whitespace-separated runs, ids through the row's table of word hashes ----
        bits = _bits_for(text_at[b + 1] - text_at[b])
        mask = (1 << bits) - 1
        shift = 64 - bits
        u = 0
        pos = 0
        lh = 0
        for k in range(n_refs + 1):
            t = b if k == 0 else first_ref + k - 1
            if k > 0:
                ref_at[k - 1] = pos
            i = text_at[t]
            end = text_at[t + 1]
            while i < end:
                if _is_space(codes[_U(i)], spaces):
                    i += 1
                    continue
                # a word: its hash codepoint by codepoint, and the hash before its last codepoint
                h = _SEED
                before = _SEED
                j = i
                while j < end:
                    c = codes[_U(j)]
                    if _is_space(c, spaces):
                        break
                    before = h
                    h = (h ^ _U(c)) * _MULT
                    j += 1
                # SacreBLEU's rule: a word of 2+ characters loses a final ASCII mark to a piece of its own, or
                # else an initial one
                pieces = 1
                last = codes[_U(j - 1)]
                head = codes[_U(i)]
                if j - i > 1 and last < 128 and marks[last]:
                    pieces = 2
                    cut = j - 1
                    first_hash = before
                    second_hash = (_SEED ^ _U(last)) * _MULT
                elif j - i > 1 and head < 128 and marks[head]:
                    pieces = 2
                    cut = i + 1
                    first_hash = (_SEED ^ _U(head)) * _MULT
                    second_hash = _SEED
                    for q in range(i + 1, j):
                        second_hash = (second_hash ^ _U(codes[_U(q)])) * _MULT
                else:
                    cut = j
                    first_hash = h
                    second_hash = h
                for piece in range(pieces):
                    a = i if piece == 0 else cut
                    e = cut if piece == 0 else j
                    h = first_hash if piece == 0 else second_hash
                    s = _slot(h, shift)
                    g = 0
                    while True:
                        known = word_id[s]
                        if known == 0:
                            if k == 0:  # a new word of the hypothesis
                                u += 1
                                word_id[s] = u
                                word_hash[s] = h
                                word_at[s] = a
                                word_len[s] = e - a
                                word_slot[u] = s
                                g = u
                            break
                        if word_hash[s] == h and word_len[s] == e - a:
                            same = True
                            other = word_at[s]
                            for q in range(e - a):
                                if codes[_U(a + q)] != codes[_U(other + q)]:
                                    same = False
                                    break
                            if same:
                                g = known
                                break
                        s = (s + 1) & mask
                    sym[_U(pos)] = g
                    pos += 1
                i = j
            if k == 0:
                lh = pos
            else:
                ref_len[k - 1] = pos - ref_at[k - 1]
        _count_orders(
            sym, lh, ref_at, ref_len, n_refs, u, word_order, char_order, b, hyp_tot, ref_tot, matches, work
        )  # fmt: skip
        for g in range(1, u + 1):
            word_id[word_slot[g]] = 0
    return stamp


def chrf_counts(
    codes: np.ndarray,
    text_at: np.ndarray,
    ref_first: np.ndarray,
    n_refs: int,
    char_order: int,
    word_order: int,
    whitespace: bool,
    spaces: np.ndarray,
    marks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chrF's n-gram counts of ``B`` rows of texts held as one codepoint array.

    ``codes`` (uint32) holds the texts end to end, text ``t`` at ``text_at[t]:text_at[t + 1]``: the ``B``
    hypotheses first, then the references, row ``b``'s at texts ``B + ref_first[b] .. B + ref_first[b + 1] - 1``
    (``ref_first`` of ``B + 1`` entries: 1 to ``n_refs`` references per row). ``spaces`` (bool, U+0000 to U+3001,
    the last standing for every larger codepoint) marks the whitespace, dropped from the characters unless
    ``whitespace`` and always separating words; ``marks`` (bool, ASCII) SacreBLEU's punctuation. Returns, per order
    (characters ``1..char_order``, then words ``1..word_order``), the hypothesis's n-grams ``(B, N)``, each
    reference's ``(B, n_refs, N)`` (0 where absent) and their clipped overlaps ``(B, n_refs, N)``, int64. Rows are
    split over the threads of ``set_cpu_threads``.
    """
    batch = ref_first.shape[0] - 1
    n_orders = char_order + word_order
    hyp_tot = np.zeros((batch, n_orders), dtype=np.int64)
    ref_tot = np.zeros((batch, n_refs, n_orders), dtype=np.int64)
    matches = np.zeros((batch, n_refs, n_orders), dtype=np.int64)
    if batch == 0:
        return hyp_tot, ref_tot, matches
    lengths = np.diff(text_at)
    cost = lengths[:batch] + np.add.reduceat(lengths[batch:], ref_first[:-1])
    # int32 symbols, nodes and counts within a row
    if int(cost.max()) >= 2**31:
        raise ValueError("a hypothesis and its references hold 2**31 codepoints or more")
    vocab = int(codes.max()) + 1 if codes.size else 1
    dropped = np.zeros_like(spaces) if whitespace else spaces
    args = (codes, text_at, ref_first, batch, char_order, word_order, dropped, spaces, marks)

    def block(start: int, stop: int) -> int:
        scratch = token_scratch(vocab)
        scratch.stamp = _rows(start, stop, *args, hyp_tot, ref_tot, matches, scratch.ids, scratch.stamps, scratch.stamp)
        return stop - start

    run_rows(block, batch, cost)
    return hyp_tot, ref_tot, matches
