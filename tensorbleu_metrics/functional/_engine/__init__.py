"""The CPU engine: compiled per-row kernels over NumPy views of the normalised token layout.

Each kernel family lives in its own module of this package, written with Numba (``@njit(nogil=True, cache=True)``):
compiled once per machine into Numba's cache, loaded from there by every later process. ``ngrams`` turns input rows
into the token layout (padding dropped, rows cut at their eos) and counts a candidate's n-grams against its
references (BLEU, GLEU, ROUGE-N, chrF's character and word n-grams): from input rows to statistics in one call;
``diversity`` counts samples against their group (Self-BLEU, distinct-n); ``lcs`` runs ROUGE-L and ROUGE-Lsum;
``chrf`` reads and counts text for chrF; ``scoring`` turns statistics into BLEU, ROUGE, GLEU and chrF scores.

A kernel takes a range of rows ``[start, stop)`` and writes their results into preallocated
outputs, so a call runs on the calling thread alone by default (no thread pool whose every region waits for all its
threads, which collapses on a busy machine); ``set_cpu_threads`` lets a call split its rows over a few threads
that release the GIL.

Nothing here imports Numba at import time: the kernel modules load on a call's first use of the engine.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["NO_REF_LEN", "get_cpu_threads", "kernels", "run_rows", "set_cpu_threads", "token_scratch"]

# the largest token value a direct map covers (int32 ids and int64 stamps: 12 bytes a slot); larger or negative
# values are renumbered first (see dense_tokens)
MAP_LIMIT = 1 << 22
# the closest reference length of a sentence without a present reference (unvalidated input): a brevity penalty of 0
NO_REF_LEN = 2**32 - 1

_threads = 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()


def set_cpu_threads(n: int) -> None:
    """How many threads one call of a metric on CPU tensors may split its rows over (default 1).

    Each thread runs a compiled kernel over a block of rows without the GIL and without waiting on the others
    until its block is done, so a busy machine slows a call down by at most the share of cores taken from it.
    One thread (the default) is the right choice where several processes score at once (data-loader workers,
    reward workers); more help a lone process on an idle machine. Torch's own thread setting is not used.

    Example:
        >>> from tensorbleu_metrics.functional import get_cpu_threads, set_cpu_threads
        >>> set_cpu_threads(2)
        >>> get_cpu_threads()
        2
        >>> set_cpu_threads(1)
    """
    from tensorbleu_metrics.functional._inputs import check_int

    global _threads
    _threads = check_int(n, "n", minimum=1, maximum=1024)


def get_cpu_threads() -> int:
    """The number of threads set with ``set_cpu_threads`` (1 unless changed)."""
    return _threads


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < _threads:
            _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="tensorbleu-cpu")
        return _pool


def _blocks(cost: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous row ranges of about equal total ``cost`` (one per part, none empty)."""
    n_rows = cost.shape[0]
    parts = max(1, min(parts, n_rows))
    if parts == 1:
        return [(0, n_rows)]
    # one unit per row besides its cost: rows without tokens still take a little time, and all-zero costs split
    cumulative = np.cumsum(np.asarray(cost, dtype=np.float64) + 1.0)
    cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, parts) / parts, side="right")
    bounds = np.unique(np.concatenate(([0], cuts, [n_rows])))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def run_rows(kernel: Callable[..., Any], n_rows: int, cost: np.ndarray | None, *args: Any) -> list[Any]:
    """Run ``kernel(start, stop, *args)`` over ``[0, n_rows)``: on this thread, or in blocks over the set threads.

    ``kernel`` is a Python callable that takes this thread's scratch (``token_scratch``) and calls a compiled
    kernel on its rows; it must write only its rows' outputs. ``cost`` (``(n_rows,)``, e.g. tokens per row)
    balances the blocks. Returns the kernel's return values, one per block, in row order.
    """
    if _threads == 1 or n_rows < 2 or cost is None:
        return [kernel(0, n_rows, *args)]
    blocks = _blocks(np.asarray(cost), _threads)
    if len(blocks) == 1:
        return [kernel(0, n_rows, *args)]
    pool = _executor()
    futures = [pool.submit(kernel, start, stop, *args) for start, stop in blocks[1:]]
    first = kernel(*blocks[0], *args)  # the calling thread takes the first block
    return [first, *(future.result() for future in futures)]


class TokenScratch:
    """A thread's persistent direct map from token value to a dense per-row id, never cleared.

    ``ids[t]`` is valid for the current row only where ``stamps[t] == stamp``; a kernel takes a fresh stamp per
    row (``stamp + 1``, ``stamp + 2``, ...) and returns the last one it used, which the caller stores back in
    ``stamp``. Stamps are int64: they never wrap.
    """

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int32)
        self.stamps = np.zeros(0, dtype=np.int64)
        self.stamp = 0

    def reserve(self, size: int) -> None:
        if self.ids.shape[0] < size:
            size = max(size, 2 * self.ids.shape[0], 1 << 16)
            self.ids = np.zeros(size, dtype=np.int32)
            self.stamps = np.zeros(size, dtype=np.int64)  # every stamp handed out is above 0
            self.stamp = 0


def token_scratch(vocab_size: int) -> TokenScratch:
    """This thread's ``TokenScratch``, covering token values ``0..vocab_size - 1``."""
    scratch = getattr(_local, "scratch", None)
    if scratch is None:
        scratch = _local.scratch = TokenScratch()
    scratch.reserve(vocab_size)
    return scratch


def _map_size(arrays: Sequence[np.ndarray]) -> int | None:
    """``max + 1`` of the arrays where every value lies in ``[0, MAP_LIMIT)`` (1 when empty), else None."""
    nonempty = [a for a in arrays if a.size]
    if not nonempty:
        return 1
    low = min(int(a.min()) for a in nonempty)
    high = max(int(a.max()) for a in nonempty)
    return high + 1 if low >= 0 and high < MAP_LIMIT else None


def dense_tokens(
    arrays: Sequence[np.ndarray], lengths: Sequence[np.ndarray] | None = None
) -> tuple[list[np.ndarray], int]:
    """The token arrays with values a direct map covers, and the map size they need.

    Arrays whose values lie in ``[0, MAP_LIMIT)`` come back as they are (``vocab_size = max + 1``); otherwise all
    are renumbered together by rank among their values (an order-preserving bijection: equal tokens stay equal),
    so huge, negative or unvalidated IDs never index outside a map. With ``lengths`` (``arrays[k]`` left-aligned,
    valid below ``lengths[k]`` along its last axis) only the valid positions decide: the padding is set to 0 first,
    so it never forces or widens a renumbering.
    """
    size = _map_size(arrays)
    if size is not None:
        return list(arrays), size
    if lengths is not None:
        arrays = [np.where(np.arange(a.shape[-1]) < n[..., None], a, 0) for a, n in zip(arrays, lengths, strict=True)]
        size = _map_size(arrays)
        if size is not None:
            return arrays, size
    values, inverse = np.unique(np.concatenate([a.reshape(-1) for a in arrays]), return_inverse=True)
    out, offset = [], 0
    for a in arrays:
        out.append(inverse[offset : offset + a.size].reshape(a.shape).astype(np.int64, copy=False))
        offset += a.size
    return out, int(values.shape[0])


_MODULES = ("ngrams", "diversity", "lcs", "scoring", "chrf")


_loaded: dict[str, ModuleType] = {}


def kernels(name: str) -> ModuleType:
    """The kernel module ``name`` of this package, imported (with Numba) on first use."""
    module = _loaded.get(name)
    if module is None:
        if name not in _MODULES:
            raise KeyError(name)
        with _collector_paused():
            if not _loaded:  # the engine's first use in this process
                importlib.import_module(f"{__name__}._numba").start()
            module = _loaded[name] = importlib.import_module(f"{__name__}.{name}")
    return module


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back on after it unless it was off already.

    Numba's start creates a few hundred thousand objects; with the collector on, each threshold crossing walks
    them again, and the full collections among them walk every object of the process (torch's included), which
    costs more than Numba's start itself. Paused, the young ones are walked once, at the first collection after.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
