"""From sufficient statistics to BLEU: brevity penalty, smoothing (SacreBLEU's and NLTK's), weighted means.

Every smoothing method is one vectorised function over the statistics; loops run over n-gram orders only.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine
from tensorbleu_metrics.functional._counting import BLEUStats
from tensorbleu_metrics.functional._inputs import check_int, check_stats, in_dtype, public_entry

# NLTK's method5 (and method7 through it) always mixes in the 5-gram precision
_NEXT_ORDER = 5
# SacreBLEU's log of a zero precision, and NLTK method0's stand-in for one
_SACREBLEU_LOG_ZERO = -9999999999.0
_NLTK_ZERO_PRECISION = sys.float_info.min
# exp() of more than this overflows float64: a score's log is capped there, so a score is never inf (NLTK raises
# OverflowError). Each weighted log precision is capped at +-_TERM_CAP so that huge weights cannot add -inf to
# +inf (whose sum would be NaN); exp() of the sum is 0 or saturates either way.
_LOG_FLOAT_MAX = math.log(sys.float_info.max)
_TERM_CAP = 1e300
# method4/method7 divide by k: the smoothed count ln(len) / (2**i * k) must be a finite float for every int64
# length (ln(2**63) / (2 * k)), also after method7 averages three of them ((a + b + c) / 3): that needs
# k >= 3 * ln(2**63) / (2 * max float); k = 0 is a division by zero (NLTK raises)
_MIN_K = 1.5 * math.log(2.0**63) / sys.float_info.max


class _Counts(NamedTuple):
    """Statistics as float64, the first ``n_gram`` orders, with the batch shape of the input."""

    matches: Tensor
    totals: Tensor
    denominators: Tensor  # NLTK's max(1, totals), summed over sentences for a corpus
    pred_len: Tensor
    ref_len: Tensor


def counted_orders(n_gram: int, smoothing: str) -> int:
    """How many n-gram orders the statistics must hold to score with ``smoothing``.

    Args:
        n_gram: the BLEU order.
        smoothing: the smoothing method's name.

    Example:
        >>> counted_orders(2, "method5")
        5
        >>> counted_orders(4, "exp")
        4
    """
    return max(n_gram, _NEXT_ORDER) if SMOOTHING[smoothing].next_order else n_gram


class WeightSets(NamedTuple):
    """Validated weights: one row per weight set, zero-padded to the longest set (the BLEU order of the call)."""

    matrix: Tensor  # (K, order) float64 on the CPU
    several: bool  # a list of weight sets was given (results get a leading K dimension)
    lengths: Tensor  # (K,) int64: how many weights each set has (its own BLEU order)
    # matrix and lengths as NumPy arrays of their own: a view would dangle once torch moves the tensors' storage
    # (share_memory_ when a Metric is pickled for spawned processes)
    host: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, matrix: Tensor, several: bool, lengths: Tensor) -> WeightSets:
        return cls(matrix, several, lengths, (matrix.numpy().copy(), lengths.numpy().copy()))

    @property
    def order(self) -> int:
        """The highest n-gram order any weight set uses."""
        return int(self.matrix.shape[1])


def _is_row(item: Any) -> bool:
    """Whether an item of a weight list is itself a weight set (a sequence, 1-D tensor or 1-D array)."""
    if isinstance(item, (Tensor, np.ndarray)):
        return item.ndim >= 1
    return isinstance(item, Sequence) and not isinstance(item, (str, bytes))


def _check_weight_tensor(weights: Tensor, what: str) -> None:
    if weights.device.type == "meta":
        raise ValueError(f"`{what}` is a tensor on the 'meta' device, which holds no values.")
    if weights.layout != torch.strided:
        raise TypeError(f"`{what}` must be a dense tensor, got layout {weights.layout}.")
    if weights.is_complex():
        raise TypeError(f"`{what}` must hold real numbers, got a {weights.dtype} tensor.")


def _weight_rows(weights: Any) -> tuple[list[Tensor], bool]:
    """The weight sets as 1-D float64 CPU tensors, and whether a list of sets was given."""
    bad_type = TypeError(f"`weights` must be a sequence of numbers or of weight tuples, got {weights!r}.")
    if isinstance(weights, np.ndarray) and weights.dtype != object:
        try:
            weights = torch.from_numpy(np.asarray(weights, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise bad_type from err
    if isinstance(weights, Tensor):
        _check_weight_tensor(weights, "weights")
        if weights.dim() not in (1, 2):
            raise ValueError(f"`weights` must be 1-D or 2-D, got a tensor of shape {tuple(weights.shape)}.")
        if weights.numel() == 0:
            raise ValueError(f"`weights` must not be empty, got a tensor of shape {tuple(weights.shape)}.")
        matrix = weights.detach().to("cpu", torch.float64)
        return list(matrix.reshape(-1, matrix.shape[-1]).unbind(0)), matrix.dim() == 2
    if not (_is_row(weights) or isinstance(weights, np.ndarray)):
        raise bad_type
    if len(weights) == 0:
        raise ValueError("`weights` must not be empty.")
    several = all(_is_row(w) for w in weights)
    rows = []
    for row in list(weights) if several else [weights]:
        if isinstance(row, Tensor):
            _check_weight_tensor(row, "weights")
            if row.dim() != 1:
                raise ValueError(f"each weight tuple must be 1-D, got a tensor of shape {tuple(row.shape)}.")
        try:
            rows.append(torch.tensor([float(x) for x in row], dtype=torch.float64))
        except (TypeError, ValueError, RuntimeError) as err:
            raise bad_type from err
    return rows, several


@functools.lru_cache(maxsize=16)
def _uniform_weights(order: int) -> WeightSets:
    """Equal weights 1/order for orders 1..order (kept between calls; callers only read them)."""
    return WeightSets.of(
        torch.full((1, order), 1.0 / order, dtype=torch.float64), False, torch.tensor([order], dtype=torch.int64)
    )


def _weights_matrix(weights: Any, n_gram: int | None) -> WeightSets:
    """Validate the weights against ``n_gram`` (``None``: the longest weight set decides, 4 without weights)."""
    if weights is None:
        return _uniform_weights(4 if n_gram is None else n_gram)
    rows, several = _weight_rows(weights)
    lengths = [row.numel() for row in rows]
    if min(lengths) == 0:
        raise ValueError(f"`weights` must not hold an empty weight tuple, got {weights!r}.")
    order = max(lengths)
    if n_gram is not None and not several and order != n_gram:
        raise ValueError(f"`weights` must give one weight per n-gram order (n_gram={n_gram}), got {weights!r}.")
    if n_gram is not None and order > n_gram:
        k = lengths.index(order)
        raise ValueError(
            f"`weights[{k}]` has {order} weights, more than n_gram={n_gram}: a weight tuple's length is its BLEU "
            "order; leave `n_gram` out to take the longest tuple's length."
        )
    if n_gram is not None and order < n_gram:
        raise ValueError(
            f"`weights`: the longest weight tuple has {order} weights but n_gram={n_gram}; a weight tuple's length "
            "is its BLEU order: leave `n_gram` out or make it the longest tuple's length."
        )
    matrix = torch.zeros(len(rows), order, dtype=torch.float64)
    for k, row in enumerate(rows):
        matrix[k, : row.numel()] = row
    if not bool(torch.isfinite(matrix).all()) or bool((matrix < 0).any()):
        raise ValueError(f"`weights` must be finite and non-negative, got {weights!r}.")
    return WeightSets.of(matrix, several, torch.tensor(lengths, dtype=torch.int64))


def _check_smooth_value(smoothing: str, smooth_value: Any) -> None:
    if smooth_value is None:
        return
    valid = SMOOTHING[smoothing].valid
    if valid is None:
        raise ValueError(f"`smooth_value` has no meaning for `smoothing={smoothing!r}`; leave it None.")
    if isinstance(smooth_value, (bool, np.bool_)) or not isinstance(smooth_value, numbers.Real):
        raise TypeError(f"`smooth_value` must be a number, got {smooth_value!r}.")
    low, inclusive, meaning = valid
    value = float(smooth_value)
    if not math.isfinite(value) or value < low or (value == low and not inclusive):
        low_text = repr(low) if low else "0"  # the exact bound: a value printed rounded may lie below it
        bound = f"[{low_text}, inf)" if inclusive else f"({low_text}, inf)"
        raise ValueError(
            f"`smooth_value` ({meaning}) for `smoothing={smoothing!r}` must be a finite number in {bound}, "
            f"got {smooth_value!r}."
        )


def check_bleu_options(
    n_gram: int | None = None,
    weights: Any = None,
    smoothing: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    auto_reweigh: bool = False,
) -> int:
    """Validate the scoring options, raising ``ValueError``/``TypeError`` that names the bad argument.

    Returns:
        The BLEU order of the call: ``n_gram``, or when it is ``None`` the length of the longest weight tuple
        (4 without weights).

    Example:
        >>> check_bleu_options(smoothing="exp")
        4
        >>> check_bleu_options(weights=[(0.5, 0.5), (1 / 3, 1 / 3, 1 / 3)], smoothing="method5")
        3
        >>> check_bleu_options(n_gram=2, smoothing="method6")
        Traceback (most recent call last):
        ...
        ValueError: `smoothing='method6'` needs `n_gram` >= 3: it interpolates from the trigram precision on.
        >>> check_bleu_options(smoothing="method4", smooth_value=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `smooth_value` (NLTK's k) for ... must be ... in [3.643692424065002e-307, inf), got 0.
    """
    return bleu_options(n_gram, weights, smoothing, smooth_value, effective_order, auto_reweigh).order


class BLEUOptions(NamedTuple):
    """BLEU's scoring options, validated once by ``bleu_options``; ``score`` scores statistics on any device."""

    weights: WeightSets
    smoothing: str
    value: float  # the smoothing's parameter: the given one, else its default (0.0 for a method without one)
    effective_order: bool
    auto_reweigh: bool
    # the CPU engine's scorer arguments after the statistics: weights and lengths as NumPy arrays, the method's
    # code, value, effective_order, auto_reweigh (built once, so a call converts nothing)
    engine_args: tuple[Any, ...] = ()

    @property
    def order(self) -> int:
        """The BLEU order: the longest weight set's length."""
        return self.weights.order

    @property
    def several(self) -> bool:
        """Whether a list of weight sets was given (scores get a leading weight-set dimension)."""
        return self.weights.several

    @property
    def counted_orders(self) -> int:
        """How many n-gram orders the statistics must hold (``counted_orders``)."""
        return counted_orders(self.order, self.smoothing)

    def score(self, stats: BLEUStats, dtype: torch.dtype) -> Tensor | np.ndarray:
        """Scores of ``stats`` (holding at least ``counted_orders`` orders) in ``dtype``, with the stats' batch
        shape, after a weight-set dimension when several sets were given.

        Smoothing runs once over all ``order`` orders; each weight set then weighs the first orders, as many as it
        has weights (NLTK's semantics for weight tuples of different lengths). On the CPU the engine's compiled
        scorer runs row by row and the scores come as a NumPy array (a tensor for half precisions), which the public
        functions return as a tensor; elsewhere batched torch operations.
        """
        if not isinstance(stats.matches, Tensor) or _device.host_reads_are_free(stats.matches.device):
            score = _host_scores(stats, self, dtype)
        else:
            # a score above the result dtype's range (only with huge weights on precisions above 1) saturates
            score = _torch_scores(stats, self).clamp(max=torch.finfo(dtype).max).to(dtype)
        return score if self.several else score[0, ...]


def bleu_options(
    n_gram: int | None,
    weights: Any,
    smoothing: str,
    smooth_value: float | None,
    effective_order: bool,
    auto_reweigh: bool,
) -> BLEUOptions:
    """Validate the scoring options (see ``check_bleu_options``) into a ``BLEUOptions``."""
    n_gram = check_int(n_gram, "n_gram", minimum=1, allow_none=True)
    if not isinstance(smoothing, str) or smoothing not in SMOOTHING:
        raise ValueError(f"`smoothing` must be one of {', '.join(SMOOTHING_METHODS)}; got {smoothing!r}.")
    _check_smooth_value(smoothing, smooth_value)
    if not isinstance(effective_order, bool):
        raise TypeError(f"`effective_order` must be a bool, got {effective_order!r}.")
    if not isinstance(auto_reweigh, bool):
        raise TypeError(f"`auto_reweigh` must be a bool, got {auto_reweigh!r}.")
    if effective_order and smoothing not in SACREBLEU_METHODS:
        raise ValueError(
            f"`effective_order` is SacreBLEU's option; use it with smoothing in {SACREBLEU_METHODS}, not {smoothing!r}."
        )
    if auto_reweigh and smoothing not in NLTK_METHODS:
        raise ValueError(
            f"`auto_reweigh` is NLTK's option; use it with smoothing 'method0'..'method7', not {smoothing!r}."
        )
    checked = _weights_matrix(weights, n_gram)
    if smoothing == "method6" and checked.order < 3:
        raise ValueError("`smoothing='method6'` needs `n_gram` >= 3: it interpolates from the trigram precision on.")
    value = SMOOTHING[smoothing].default if smooth_value is None else float(smooth_value)
    value = value or 0.0
    engine_args = (
        *checked.host,
        SMOOTHING[smoothing].code,
        value,
        effective_order,
        auto_reweigh,
    )
    return BLEUOptions(checked, smoothing, value, effective_order, auto_reweigh, engine_args)


def _brevity_penalty(pred_len: Tensor, ref_len: Tensor) -> Tensor:
    """exp(1 - r/c) for c <= r, else 1. An empty candidate (c = 0) has no matches: every caller scores it 0."""
    # exp(min(0, x)) is exactly 1 where x >= 0 (exp(0) == 1): no comparison and select (each a kernel launch)
    return torch.exp((1.0 - ref_len / pred_len.clamp(min=1)).clamp_(max=0.0))


# ---- SacreBLEU ----


def _sacrebleu_score(counts: _Counts, weights: Tensor, method: str, value: float, effective_order: bool) -> Tensor:
    matches, totals = counts.matches, counts.totals
    n_gram = matches.shape[-1]
    if method == "add-k":
        # SacreBLEU adds k to the matches and totals of every order above unigrams
        bump = torch.zeros(n_gram, dtype=torch.float64, device=matches.device)
        bump[1:] = value
        matches, totals = matches + bump, totals + bump
    # orders from the first one without candidate n-grams on are dropped (SacreBLEU stops there)
    alive = totals.cummin(-1).values > 0
    # totals are whole numbers but with add-k, whose bump can leave one in (0, 1)
    safe_totals = torch.where(totals > 0, totals, 1.0) if method == "add-k" else totals.clamp(min=1.0)
    precision = matches / safe_totals
    if method in ("exp", "floor"):
        no_match = (matches == 0) & alive
        if method == "exp":
            halvings = torch.cumsum(no_match, dim=-1, dtype=torch.float64)
            precision = torch.where(no_match, 1.0 / (torch.pow(2.0, halvings) * safe_totals), precision)
        else:
            precision = torch.where(no_match, value / safe_totals, precision)
    precision = torch.where(alive, precision, 0.0)
    # precisions are finite and >= 0: the log of 0 (-inf) becomes SacreBLEU's stand-in, every other log is above it
    log_p = torch.log(precision).clamp_(min=_SACREBLEU_LOG_ZERO)
    weights = weights.view(weights.shape[0], *([1] * (matches.dim() - 1)), n_gram)
    if effective_order:
        # the mean runs over the orders up to the last one with candidate n-grams; weights are renormalised
        used = weights * alive
        used_sum = used.sum(-1, keepdim=True)
        scale = torch.where(used_sum > 0, weights.sum(-1, keepdim=True) / torch.where(used_sum > 0, used_sum, 1.0), 0.0)
        weights = used * scale
    score = _brevity_penalty(counts.pred_len, counts.ref_len) * _exp_weighted_sum(weights, log_p)
    return torch.where((counts.matches > 0).any(-1), score, 0.0)


def _exp_weighted_sum(weights: Tensor, log_p: Tensor) -> Tensor:
    """exp(sum_n w_n log p_n), never inf or NaN: an order with weight 0 adds nothing (as NLTK's ``zip`` over a
    shorter weight tuple never looks at it), and overflow saturates at the largest float64."""
    # log_p holds no NaN, so a NaN term is a weight of 0 times an infinite log: 0 (a masked select costs two ops)
    terms = torch.mul(weights, log_p).nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
    return torch.exp(terms.clamp_(-_TERM_CAP, _TERM_CAP).sum(-1).clamp_(max=_LOG_FLOAT_MAX))


# ---- NLTK ----


def _nltk_method0(p: Tensor, counts: _Counts, value: float) -> Tensor:
    return torch.where(counts.matches > 0, p, _NLTK_ZERO_PRECISION)


def _nltk_method1(p: Tensor, counts: _Counts, value: float) -> Tensor:
    return torch.where(counts.matches == 0, (counts.matches + value) / counts.denominators, p)


def _nltk_method2(p: Tensor, counts: _Counts, value: float) -> Tensor:
    plus_one = (counts.matches + 1) / (counts.denominators + 1)
    return torch.cat([p[..., :1], plus_one[..., 1:]], dim=-1)


def _nltk_method3(p: Tensor, counts: _Counts, value: float) -> Tensor:
    zero = counts.matches == 0
    k = torch.cumsum(zero.to(torch.float64), dim=-1)
    return torch.where(zero, 1.0 / (torch.pow(2.0, k) * counts.denominators), p)


def _nltk_method4(p: Tensor, counts: _Counts, value: float) -> Tensor:
    hyp_len = counts.pred_len.unsqueeze(-1)
    smoothed = (counts.matches == 0) & (hyp_len > 1)
    k = torch.cumsum(smoothed.to(torch.float64), dim=-1)
    log_len = torch.log(torch.where(hyp_len > 1, hyp_len, 2.0))
    numerator = 1.0 / (torch.pow(2.0, k) * value / log_len)
    return torch.where(smoothed, numerator / counts.denominators, p)


def _nltk_method5(p: Tensor, counts: _Counts, value: float, next_order: Tensor) -> Tensor:
    # each order averages its neighbours; the order after the last one is always the 5-gram (NLTK's rule)
    following = torch.cat([p[..., 1:], next_order.unsqueeze(-1)], dim=-1)
    previous = p[..., 0] + 1.0
    out = []
    for i in range(p.shape[-1]):
        previous = (previous + p[..., i] + following[..., i]) / 3.0
        out.append(previous)
    return torch.stack(out, dim=-1)


def _nltk_method6(p: Tensor, counts: _Counts, value: float) -> Tensor:
    # interpolates with the prior p_{n-1}^2 / p_{n-2} from the trigram on, updating in place as NLTK does
    cols = list(p.unbind(-1))
    for i in range(2, len(cols)):
        before = cols[i - 2]
        prior = torch.where(before == 0, 0.0, cols[i - 1] ** 2 / torch.where(before == 0, 1.0, before))
        cols[i] = (counts.matches[..., i] + value * prior) / (counts.totals[..., i] + value)
    return torch.stack(cols, dim=-1)


class Smoothing(NamedTuple):
    """One smoothing method: whose it is, what its ``smooth_value`` means, and how each engine applies it."""

    family: str  # "sacrebleu" or "nltk"
    code: int  # the method's number in the CPU engine's scorer (``_engine.scoring.bleu_rows``)
    default: float | None  # the smooth_value used when none is given (None: the method takes none)
    # the valid smooth_value: (lowest value, whether the lowest value itself is allowed, what it is); every range
    # is open upwards to any finite number
    valid: tuple[float, bool, str] | None
    precisions: Callable[..., Tensor] | None  # NLTK's smoothing of the precisions on accelerators (torch)
    next_order: bool = False  # mixes in the 5-gram precision whatever the BLEU order (NLTK's method5, method7)


# floor, add-k and method1 add a count (>= 0) to a zero count or to every count; method6 divides by (l + alpha),
# where l, the number of n-grams of an order, may be 0
SMOOTHING: dict[str, Smoothing] = {
    "none": Smoothing("sacrebleu", 0, None, None, None),
    "floor": Smoothing("sacrebleu", 1, 0.1, (0.0, True, "SacreBLEU's floor count"), None),
    "add-k": Smoothing("sacrebleu", 2, 1.0, (0.0, True, "SacreBLEU's k"), None),
    "exp": Smoothing("sacrebleu", 3, None, None, None),
    "method0": Smoothing("nltk", 10, None, None, _nltk_method0),
    "method1": Smoothing("nltk", 11, 0.1, (0.0, True, "NLTK's epsilon"), _nltk_method1),
    "method2": Smoothing("nltk", 12, None, None, _nltk_method2),
    "method3": Smoothing("nltk", 13, None, None, _nltk_method3),
    "method4": Smoothing("nltk", 14, 5.0, (_MIN_K, True, "NLTK's k"), _nltk_method4),
    "method5": Smoothing("nltk", 15, None, None, None, next_order=True),
    "method6": Smoothing("nltk", 16, 5.0, (0.0, False, "NLTK's alpha"), _nltk_method6),
    "method7": Smoothing("nltk", 17, 5.0, (_MIN_K, True, "NLTK's k"), None, next_order=True),
}
SACREBLEU_METHODS = tuple(name for name, row in SMOOTHING.items() if row.family == "sacrebleu")
NLTK_METHODS = tuple(name for name, row in SMOOTHING.items() if row.family == "nltk")
SMOOTHING_METHODS: tuple[str, ...] = tuple(SMOOTHING)


def _nltk_score(
    counts: _Counts,
    next_order: Tensor | None,
    weights: Tensor,
    lengths: Tensor,
    method: str,
    value: float,
    auto_reweigh: bool,
) -> Tensor:
    p = counts.matches / counts.denominators
    smooth = SMOOTHING[method].precisions
    if smooth is not None:
        p = smooth(p, counts, value)
    else:
        assert next_order is not None
        if method == "method7":
            p = _nltk_method4(p, counts, value)
        p = _nltk_method5(p, counts, value, next_order)
    n_gram = p.shape[-1]
    shape = (weights.shape[0], *([1] * (p.dim() - 1)), n_gram)
    weights = weights.view(shape)
    if auto_reweigh and n_gram >= 4:
        # NLTK re-weighs only a set of four 0.25 weights, uniformly over the hypothesis length when it is < 4
        # (the other orders' smoothed precisions stay those of the whole call)
        hyp_len = counts.pred_len.unsqueeze(-1)
        is_default = (weights[..., :4] == 0.25).all(-1, keepdim=True) & (lengths.view(shape[:-1]) == 4).unsqueeze(-1)
        orders = torch.arange(n_gram, device=p.device)
        short = is_default & (hyp_len < 4) & (hyp_len > 0)
        reweighed = torch.where(orders < hyp_len, 1.0 / hyp_len.clamp(min=1), 0.0)
        weights = torch.where(short, reweighed, weights)
    # NLTK leaves zero precisions out of the sum (log 0 = -inf becomes 0; so does NaN, which p > 0 excludes too)
    log_p = torch.log(p).nan_to_num_(nan=0.0, posinf=math.inf, neginf=0.0)
    score = _brevity_penalty(counts.pred_len, counts.ref_len) * _exp_weighted_sum(weights, log_p)
    valid = counts.matches[..., 0] > 0
    if method == "method6":
        # NLTK raises when the trigram precision is zero; that sentence scores 0 here
        valid = valid & (counts.matches[..., 2] > 0)
    return torch.where(valid, score, 0.0)


@public_entry
def bleu_from_stats(
    stats: BLEUStats,
    *,
    n_gram: int | None = None,
    weights: Any = None,
    smoothing: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    auto_reweigh: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """BLEU from sufficient statistics: per sentence for per-sentence stats, one score for summed stats.

    Args:
        stats: ``BLEUStats`` with at least ``counted_orders(n_gram, smoothing)`` orders.
        n_gram: the BLEU order; ``None``: the longest weight tuple's length, 4 without weights.
        weights: one weight per order (default uniform), or a list of weight tuples (of any lengths: each
            tuple's length is its BLEU order) for one score per set.
        smoothing: ``"none"``, ``"floor"``, ``"add-k"``, ``"exp"`` (SacreBLEU) or ``"method0"``..``"method7"`` (NLTK).
        smooth_value: the smoothing's parameter (SacreBLEU floor/add-k value; NLTK epsilon, k or alpha).
        effective_order: SacreBLEU's option: average only the orders the candidate has n-grams of.
        auto_reweigh: NLTK's option: uniform weights over the hypothesis length when it is shorter than 4.
        dtype: the floating dtype of the result (computed in float64).

    Returns:
        Scores with the stats' batch shape, with a leading weight-set dimension for a list of weights: in [0, 1],
        except that NLTK's method5 and method7 and large smoothing values can give more (as in NLTK).

    Example:
        >>> import torch
        >>> stats = BLEUStats(
        ...     matches=torch.tensor([[5, 3]]), totals=torch.tensor([[6, 5]]), clamped_totals=torch.tensor([[6, 5]]),
        ...     pred_len=torch.tensor([6]), ref_len=torch.tensor([6]))
        >>> bleu_from_stats(stats, n_gram=2, dtype=torch.float64)
        tensor([0.7071], dtype=torch.float64)
    """
    check_stats(stats, BLEUStats)
    options = bleu_options(n_gram, weights, smoothing, smooth_value, effective_order, auto_reweigh)
    if stats.n_gram < options.counted_orders:
        raise ValueError(
            f"`stats` holds {stats.n_gram} n-gram orders but smoothing={smoothing!r} with n_gram={options.order} "
            f"needs {options.counted_orders}; count them with `bleu_stats(..., n_gram={options.counted_orders})`."
        )
    return options.score(stats, dtype)


@public_entry
def score_with(options: BLEUOptions, stats: BLEUStats, dtype: torch.dtype) -> Tensor:
    """``options.score(stats, dtype)`` as a public entry point (inference mode, one thread, never traced), for the
    Metric classes, which validate their options once."""
    return options.score(stats, dtype)


def _torch_scores(stats: BLEUStats, options: BLEUOptions) -> Tensor:
    """float64 scores ``(K, ...)`` from batched torch operations (accelerators)."""
    n_gram = options.order
    device = stats.matches.device
    weight_matrix = _device.on_device(options.weights.matrix, device)
    f64 = torch.float64
    # every statistic converted in one operation (each is a kernel launch on a GPU)
    fields = [stats.matches[..., :n_gram], stats.totals[..., :n_gram], stats.clamped_totals[..., :n_gram]]
    fields += [stats.pred_len.unsqueeze(-1), stats.ref_len.unsqueeze(-1)]
    as_f64 = torch.cat(fields, dim=-1).to(f64)
    orders = as_f64[..., : 3 * n_gram].unflatten(-1, (3, n_gram)).unbind(-2)
    counts = _Counts(*orders, as_f64[..., 3 * n_gram], as_f64[..., 3 * n_gram + 1])
    smoothing, value = options.smoothing, options.value
    if smoothing in SACREBLEU_METHODS:
        return _sacrebleu_score(counts, weight_matrix, smoothing, value, options.effective_order)
    next_order = None
    if SMOOTHING[smoothing].next_order:
        next_order = stats.matches[..., _NEXT_ORDER - 1].to(f64) / stats.clamped_totals[..., _NEXT_ORDER - 1]
    lengths = _device.on_device(options.weights.lengths, device)
    return _nltk_score(counts, next_order, weight_matrix, lengths, smoothing, value, options.auto_reweigh)


@functools.lru_cache(maxsize=8)
def _dtype_max(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max)


def _host_scores(stats: BLEUStats, options: BLEUOptions, dtype: torch.dtype) -> np.ndarray | Tensor:
    """Scores ``(K, ...)`` in ``dtype`` from the CPU engine's compiled scorer, as a NumPy array (half precisions: a
    tensor). ``stats``: CPU tensors or NumPy arrays (the engine's own, ``(B, N)`` and ``(B,)``, used as they are)."""
    shape = stats.pred_len.shape
    fields = list(stats)
    if not (len(shape) == 1 and all(type(x) is np.ndarray for x in fields)):
        n_rows = math.prod(shape)
        fields = [x.numpy() if isinstance(x, Tensor) else np.asarray(x) for x in fields]
        fields = [np.ascontiguousarray(x, dtype=np.int64).reshape(n_rows, -1) for x in fields[:3]] + [
            np.ascontiguousarray(x, dtype=np.int64).reshape(n_rows) for x in fields[3:]
        ]
    # float32 straight from the scorer; other dtypes from float64 (half precisions round as on accelerators)
    out = np.empty(
        (options.weights.matrix.shape[0], fields[3].shape[0]),
        dtype=np.float32 if dtype == torch.float32 else np.float64,
    )
    # a score above the result dtype's range (only with huge weights on precisions above 1) saturates
    _engine.kernels("scoring").bleu_rows(*fields, *options.engine_args, _dtype_max(dtype), out)
    return in_dtype(out if len(shape) == 1 else out.reshape(out.shape[0], *shape), dtype)
