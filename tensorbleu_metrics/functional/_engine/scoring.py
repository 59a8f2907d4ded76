"""Scores from sufficient statistics, row by row: the CPU engine's scorers (BLEU, ROUGE, GLEU's best reference,
chrF and its best reference).

The same formulas, in the same order of operations, as the batched torch code that accelerators run
(``functional._scoring`` for BLEU, ``functional.rouge``, ``functional.gleu``, ``functional.chrf``), written per
row: one compiled call scores a batch, where the batched form costs a few dozen tensor operations whatever the batch
size. Each BLEU smoothing method has a code (``functional._scoring.SMOOTHING``'s ``code``).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["best_reference", "bleu_rows", "f_scores", "gleu_best", "rouge_rows"]


_SACREBLEU_LOG_ZERO = -9999999999.0  # SacreBLEU's log of a zero precision
_NLTK_ZERO_PRECISION = np.finfo(np.float64).tiny  # NLTK method0's stand-in for a zero precision
_LOG_FLOAT_MAX = float(np.log(np.finfo(np.float64).max))
_TERM_CAP = 1e300


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _weighted_exp(w, log_p, n):
    """exp(sum_i w_i log p_i) without inf or NaN: a term 0 * inf is 0, terms are capped, overflow saturates."""
    total = 0.0
    for i in range(n):
        term = w[i] * log_p[i]
        if np.isnan(term):
            term = 0.0
        total += min(max(term, -_TERM_CAP), _TERM_CAP)
    return np.exp(min(total, _LOG_FLOAT_MAX))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def bleu_rows(
    matches, totals, denominators, pred_len, ref_len, weights, lengths, code, value, effective, reweigh, cap, out
):
    """Scores of rows of int64 statistics (``(M, S)`` orders, ``(M,)`` lengths) for each weight set ``(K, N)``, over
    orders ``1..N`` (``N <= S``), into ``out`` ``(K, M)`` (float32 or float64), capped at ``cap``.

    NLTK's method5 and method7 also read the raw 5-gram precision (column 4) past the last order.
    """
    n_rows = matches.shape[0]
    n = weights.shape[1]
    n_sets = weights.shape[0]
    p = np.empty(n)
    raw = np.empty(n)
    log_p = np.empty(n)
    alive = np.empty(n, dtype=np.bool_)
    w = np.empty(n)
    for r in range(n_rows):
        c = pred_len[r]
        bp = np.exp(min(1.0 - ref_len[r] / max(c, 1.0), 0.0))
        any_match = False
        for i in range(n):
            any_match = any_match or matches[r, i] > 0
        if code < 10:  # SacreBLEU
            live = True
            halvings = 0.0
            for i in range(n):
                m = matches[r, i]
                t = totals[r, i]
                if code == 2 and i > 0:
                    m += value
                    t += value
                live = live and t > 0
                alive[i] = live
                safe = t if t > 0 else 1.0  # totals are whole numbers but with add-k, whose bump may be below 1
                q = m / safe
                if m == 0 and live:
                    if code == 3:
                        halvings += 1.0
                        q = 1.0 / (2.0**halvings * safe)
                    elif code == 1:
                        q = value / safe
                if not live:
                    q = 0.0
                log_p[i] = max(np.log(q), _SACREBLEU_LOG_ZERO)
            for k in range(n_sets):
                scale = 1.0
                if effective:
                    full = 0.0
                    used = 0.0
                    for i in range(n):
                        full += weights[k, i]
                        used += weights[k, i] * alive[i]
                    scale = full / used if used > 0 else 0.0
                for i in range(n):
                    w[i] = weights[k, i] * alive[i] * scale if effective else weights[k, i]
                score = bp * _weighted_exp(w, log_p, n)
                out[k, r] = min(score, cap) if any_match else 0.0
            continue
        # NLTK
        method = code - 10
        for i in range(n):
            raw[i] = matches[r, i] / denominators[r, i]
            p[i] = raw[i]
        if method == 0:
            for i in range(n):
                if matches[r, i] == 0:
                    p[i] = _NLTK_ZERO_PRECISION
        elif method == 1:
            for i in range(n):
                if matches[r, i] == 0:
                    p[i] = value / denominators[r, i]
        elif method == 2:
            for i in range(1, n):
                p[i] = (matches[r, i] + 1.0) / (denominators[r, i] + 1.0)
        elif method == 3:
            k_zero = 0.0
            for i in range(n):
                if matches[r, i] == 0:
                    k_zero += 1.0
                    p[i] = 1.0 / (2.0**k_zero * denominators[r, i])
        elif method == 6:
            for i in range(2, n):
                before = p[i - 2]
                prior = 0.0 if before == 0 else p[i - 1] ** 2 / before
                p[i] = (matches[r, i] + value * prior) / (totals[r, i] + value)
        if method == 4 or method == 7:
            k_smoothed = 0.0
            log_len = np.log(c if c > 1 else 2.0)
            for i in range(n):
                if matches[r, i] == 0 and c > 1:
                    k_smoothed += 1.0
                    p[i] = 1.0 / (2.0**k_smoothed * value / log_len) / denominators[r, i]
        if method == 5 or method == 7:
            # each order averages its neighbours as they were; past the last order comes the 5-gram precision
            for i in range(n):
                raw[i] = p[i]
            previous = raw[0] + 1.0
            for i in range(n):
                following = raw[i + 1] if i + 1 < n else matches[r, 4] / denominators[r, 4]
                previous = (previous + raw[i] + following) / 3.0
                p[i] = previous
        for i in range(n):
            q = np.log(p[i])
            log_p[i] = 0.0 if (np.isnan(q) or q == -np.inf) else q  # NLTK leaves zero precisions out
        valid = matches[r, 0] > 0 and (method != 6 or matches[r, 2] > 0)
        for k in range(n_sets):
            for i in range(n):
                w[i] = weights[k, i]
            if reweigh and n >= 4 and lengths[k] == 4 and 0 < c < 4:
                default = True
                for i in range(4):
                    default = default and weights[k, i] == 0.25
                if default:  # NLTK re-weighs its default weights uniformly over a hypothesis shorter than 4
                    for i in range(n):
                        w[i] = 1.0 / c if i < c else 0.0
            out[k, r] = min(bp * _weighted_exp(w, log_p, n), cap) if valid else 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def rouge_rows(hits, pred_total, ref_total, present, best, out):
    """rouge-score's F, precision and recall of rows ``(B, R)`` of LCS or n-gram hits into ``out`` ``(3, B)``: of the
    present reference with the highest F (the first on ties) if ``best``, else averaged over the present ones.

    ``pred_total`` is ``(B, R)`` (broadcast by the caller); an absent reference counts nowhere.
    """
    n_rows, n_refs = hits.shape
    for b in range(n_rows):
        chosen = 0  # with no reference present (unvalidated input), the first, as the torch path reads it
        top = -1.0
        sums = (0.0, 0.0, 0.0)
        count = 0
        for k in range(n_refs):
            if present[b, k]:
                scores = _rouge_scores(hits[b, k], pred_total[b, k], ref_total[b, k])
                if scores[0] > top:
                    top = scores[0]
                    chosen = k
                sums = (sums[0] + scores[0], sums[1] + scores[1], sums[2] + scores[2])
                count += 1
        if best:
            sums = _rouge_scores(hits[b, chosen], pred_total[b, chosen], ref_total[b, chosen])
            count = 1
        for field in range(3):
            out[field, b] = sums[field] / count


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _rouge_scores(hits, pred_total, ref_total):
    """rouge-score's (F, precision, recall) of one reference's hits."""
    precision = hits / max(pred_total, 1)
    recall = hits / max(ref_total, 1)
    both = precision + recall
    return (2 * precision * recall / both if both > 0 else 0.0), precision, recall


@numba.njit(nogil=True, cache=True)
def gleu_best(tp, n_all, kept, matches, totals):
    """NLTK's choice of reference for GLEU: per row of ``(B, R)`` overlaps ``tp`` and n-gram counts ``n_all``, the
    kept reference with the highest ``tp / n_all`` (the first on ties), into ``matches``/``totals`` ``(B,)``; 0 and
    0 when no reference is kept."""
    for b in range(tp.shape[0]):
        top = -1.0
        matches[b] = 0
        totals[b] = 0
        for k in range(tp.shape[1]):
            if kept[b, k]:
                ratio = tp[b, k] / n_all[b, k]
                if ratio > top:
                    top = ratio
                    matches[b] = tp[b, k]
                    totals[b] = n_all[b, k]


# ---- chrF: SacreBLEU's F score of per-order statistics ----

# SacreBLEU's smoothing constant for an order with no n-gram on one side
_EPS = 1e-16


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _f_score(hyp, ref, matches, factor, eps_smoothing):
    """SacreBLEU's chrF in [0, 100] of one row of per-order statistics, with its operations in its order (so equal
    to the last bit, which its choice of the best reference compares)."""
    n_orders = hyp.shape[0]
    score = 0.0
    avg_prec = 0.0
    avg_rec = 0.0
    effective = 0
    for i in range(n_orders):
        prec = matches[i] / hyp[i] if hyp[i] > 0 else _EPS
        rec = matches[i] / ref[i] if ref[i] > 0 else _EPS
        denom = factor * prec + rec
        score += (1 + factor) * prec * rec / denom if denom > 0 else _EPS
        if hyp[i] > 0 and ref[i] > 0:
            avg_prec += prec
            avg_rec += rec
            effective += 1
    if eps_smoothing:
        return 100 * score / n_orders
    if effective > 0:
        avg_prec /= effective
        avg_rec /= effective
    if avg_prec + avg_rec != 0:
        return 100 * ((1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec))
    return 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def f_scores(hyp, ref, matches, factor, eps_smoothing):
    """SacreBLEU's chrF in [0, 100] of each row of ``(M, N)`` int64 statistics (``factor``: beta squared)."""
    out = np.empty(hyp.shape[0], dtype=np.float64)
    for m in range(hyp.shape[0]):
        out[m] = _f_score(hyp[m], ref[m], matches[m], factor, eps_smoothing)
    return out


@numba.njit(nogil=True, cache=True, error_model="numpy")
def best_reference(hyp, ref, matches, present, factor, eps_smoothing):
    """Each row's statistics against its best present reference, as SacreBLEU picks it: the highest chrF, the first
    on ties, with no hypothesis n-gram counted for an order the reference has none of. ``hyp`` ``(B, N)``, ``ref``
    and ``matches`` ``(B, R, N)`` int64, ``present`` ``(B, R)`` bool; returns three ``(B, N)`` int64 arrays."""
    batch, n_refs, n_orders = ref.shape
    out_hyp = np.zeros((batch, n_orders), dtype=np.int64)
    out_ref = np.zeros((batch, n_orders), dtype=np.int64)
    out_matches = np.zeros((batch, n_orders), dtype=np.int64)
    row = np.zeros(n_orders, dtype=np.int64)
    for b in range(batch):
        best = -1.0
        kept = 0
        for k in range(n_refs):
            if not present[b, k]:
                continue
            for i in range(n_orders):
                row[i] = hyp[b, i] if ref[b, k, i] > 0 else 0
            f = _f_score(row, ref[b, k], matches[b, k], factor, eps_smoothing)
            if f > best:
                best = f
                kept = k
        for i in range(n_orders):
            out_hyp[b, i] = hyp[b, i] if ref[b, kept, i] > 0 else 0
            out_ref[b, i] = ref[b, kept, i]
            out_matches[b, i] = matches[b, kept, i]
    return out_hyp, out_ref, out_matches
