"""Input rows to the engine's token layout: padding dropped, each row cut at its first eos, tokens moved to the front.

One compiled pass per token array does what the accelerators do with masks, cumulative sums and a scatter, and
finds a negative ID that is neither the padding nor the eos ID (an input error) on the way.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["align_rows"]


@numba.njit(nogil=True, cache=True)
def _align(x, valid_len, pad, eos, check, out, lengths):
    """Rows of ``x`` ``(N, L)`` into ``out``; returns the flat index of the first bad negative ID, or -1.

    ``valid_len`` (or ``None``: whole rows), ``pad`` and ``eos`` are each ``None`` or given.
    """
    n_rows, width = x.shape
    bad = -1
    for i in range(n_rows):
        if check and bad < 0:  # every value counts, also past a length or an eos, as on the accelerators
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
            out[i, n] = t
            n += 1
        lengths[i] = n
    return bad


def align_rows(
    x: np.ndarray, valid_len: np.ndarray | None, pad_id: int | None, eos_id: int | None, check: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """``x`` ``(..., L)`` int64 left-aligned: the tokens, their lengths ``(...)``, and the flat index of the first
    negative ID other than ``pad_id``/``eos_id`` (-1 if none, or when not ``check``ed).

    ``valid_len`` ``(...)``: only positions below it are tokens (None: all). Values past a length are unspecified.
    """
    n_rows = math.prod(x.shape[:-1])
    rows = np.ascontiguousarray(x).reshape(n_rows, x.shape[-1])
    valid = None if valid_len is None else np.ascontiguousarray(valid_len).reshape(n_rows)
    out = np.empty_like(rows)
    lengths = np.empty(n_rows, dtype=np.int64)
    bad = _align(rows, valid, pad_id, eos_id, check, out, lengths)
    return out.reshape(x.shape), lengths.reshape(x.shape[:-1]), int(bad)
