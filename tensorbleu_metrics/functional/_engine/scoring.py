"""BLEU from sufficient statistics, row by row: the CPU engine's scorer.

The same formulas as the batched torch scorer of ``functional._scoring`` (which accelerators run), written per
row and per order: one compiled call scores a batch, where the batched form costs a few dozen tensor operations
whatever the batch size. Each smoothing method has a code (``METHOD_CODES``); the statistics arrive as float64.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["METHOD_CODES", "bleu_rows"]

METHOD_CODES = {
    "none": 0,
    "floor": 1,
    "add-k": 2,
    "exp": 3,
    **{f"method{i}": 10 + i for i in range(8)},
}

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
def bleu_rows(matches, totals, denominators, pred_len, ref_len, weights, lengths, code, value, effective, reweigh, out):
    """Scores of rows of int64 statistics (``(M, S)`` orders, ``(M,)`` lengths) for each weight set ``(K, N)``, over
    orders ``1..N`` (``N <= S``), into ``out`` ``(K, M)``.

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
                out[k, r] = score if any_match else 0.0
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
            out[k, r] = bp * _weighted_exp(w, log_p, n) if valid else 0.0
