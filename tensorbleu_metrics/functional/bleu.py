"""Public token-ID BLEU functions: per-sentence statistics, sentence BLEU and corpus BLEU.

All three run the same path: inputs -> left-aligned tokens -> clipped n-gram counts -> ``BLEUStats`` -> score.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tensorbleu_metrics.functional._counting import BLEUStats, count_stats
from tensorbleu_metrics.functional._inputs import check_dtype, check_int, normalise_inputs, public_entry
from tensorbleu_metrics.functional._scoring import bleu_options


@public_entry(engine_on_cpu=True)
def bleu_stats(
    preds: Any,
    target: Any,
    *,
    n_gram: int = 4,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
) -> BLEUStats:
    """Per-sentence sufficient statistics of BLEU.

    Args:
        preds: candidates: an integer tensor ``(B, L)`` or a sequence of ``B`` token sequences (1-D tensors or
            lists of ints) of any lengths.
        target: references: an integer tensor ``(B, L')`` with one reference each, ``(B, R, L')`` with up to
            ``R`` each (an all-padding row is an absent reference), or a sequence of ``B`` sequences of
            references (ragged).
        n_gram: the highest n-gram order counted.
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sequence (excluded from it).
        validate: check the token values (no negative IDs other than ``pad_id``/``eos_id``, a reference for
            every sentence), one host synchronisation. ``False`` trusts them: for tensors that are known to be
            valid, on CUDA. Invalid values then give meaningless scores instead of an error.

    Returns:
        ``BLEUStats`` with ``matches``/``totals``/``clamped_totals`` of shape ``(B, n_gram)`` and
        ``pred_len``/``ref_len`` of shape ``(B,)``, on the input's device. ``stats.sum()`` gives the corpus.

    Raises:
        TypeError: non-integer token tensors or malformed sequences.
        ValueError: negative IDs other than ``pad_id``/``eos_id``, mismatched or empty batches, a sentence
            without a reference, ``n_gram < 1``, tensors of the wrong rank.

    Example:
        >>> import torch
        >>> stats = bleu_stats(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1, 2, 3, 5, 0]]), n_gram=2, pad_id=0)
        >>> stats.matches, stats.totals, stats.pred_len, stats.ref_len
        (tensor([[3, 2]]), tensor([[4, 3]]), tensor([4]), tensor([4]))
    """
    n_gram = check_int(n_gram, "n_gram", minimum=1)
    return count_stats(normalise_inputs(preds, target, pad_id, eos_id, validate, layout=False), n_gram)


def _bleu(
    preds: Any,
    target: Any,
    per_sentence: bool,
    *,
    n_gram: int | None,
    weights: Any,
    smoothing: str,
    smooth_value: float | None,
    effective_order: bool,
    auto_reweigh: bool,
    pad_id: int | None,
    eos_id: int | None,
    validate: bool,
    dtype: torch.dtype,
) -> Tensor:
    """Sentence or corpus BLEU: the per-sentence statistics scored row by row, or their sum."""
    check_dtype(dtype)
    options = bleu_options(n_gram, weights, smoothing, smooth_value, effective_order, auto_reweigh)
    # counted once, for the highest order any weight set (or the smoothing) needs
    stats = count_stats(normalise_inputs(preds, target, pad_id, eos_id, validate, layout=False), options.counted_orders)
    return options.score(stats if per_sentence else stats.sum(), dtype)


@public_entry(engine_on_cpu=True)
def sentence_bleu(
    preds: Any,
    target: Any,
    *,
    n_gram: int | None = None,
    weights: Any = None,
    smoothing: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    auto_reweigh: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """BLEU of each candidate against its references.

    Args:
        preds: candidates, as in ``bleu_stats``.
        target: references, as in ``bleu_stats``.
        n_gram: the BLEU order; ``None`` (the default): the length of the longest weight tuple, 4 without weights.
        weights: one weight per order (default uniform ``1/n_gram``), or a list of weight tuples for one score
            per set. Tuples may differ in length (as in NLTK): each tuple's length is its BLEU order, the
            smoothing runs once over the longest order and each tuple weighs its first orders. A 1-D/2-D tensor
            or NumPy array works too.
        smoothing: ``"none"``, ``"floor"``, ``"add-k"``, ``"exp"`` (SacreBLEU's) or ``"method0"``..``"method7"``
            (NLTK's ``SmoothingFunction``).
        smooth_value: the smoothing's parameter: SacreBLEU's floor (0.1) or add-k (1) value; NLTK's epsilon
            (method1, 0.1), k (method4/7, 5) or alpha (method6, 5). Valid: floor, add-k, epsilon >= 0;
            k >= 1.5 ln(2**63) / max float, about 3.6437e-307 (k = 0 divides by zero); alpha > 0.
        effective_order: with SacreBLEU methods, average only the orders the candidate has n-grams of.
        auto_reweigh: with NLTK methods, uniform weights over the hypothesis length when it is below 4 and the
            weights are the default ``(0.25,) * 4``.
        pad_id: a token ID ignored wherever it stands.
        eos_id: a token ID that ends a sequence.
        validate: check the token values (no negative IDs other than ``pad_id``/``eos_id``, a reference for
            every sentence), one host synchronisation. ``False`` trusts them: for tensors that are known to be
            valid, on CUDA. Invalid values then give meaningless scores instead of an error.
        dtype: floating dtype of the result (always computed in float64).

    Returns:
        ``(B,)`` scores on the input's device; ``(K, B)`` for a list of ``K`` weight tuples. Scores lie in [0, 1]
        except with NLTK's method5/method7 or large smoothing values, which can give more (as in NLTK).

    Raises:
        TypeError, ValueError: as ``bleu_stats``, and for unknown ``smoothing``, ``weights`` of the wrong
            length, or options that do not go together.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]])
        >>> target = torch.tensor([[1, 2, 3, 4, 5, 7], [7, 8, 9, 10, 0, 0]])
        >>> sentence_bleu(preds, target, pad_id=0, smoothing="exp", effective_order=True, dtype=torch.float64)
        tensor([0.7598, 0.7165], dtype=torch.float64)
    """
    return _bleu(
        preds,
        target,
        per_sentence=True,
        n_gram=n_gram,
        weights=weights,
        smoothing=smoothing,
        smooth_value=smooth_value,
        effective_order=effective_order,
        auto_reweigh=auto_reweigh,
        pad_id=pad_id,
        eos_id=eos_id,
        validate=validate,
        dtype=dtype,
    )


@public_entry(engine_on_cpu=True)
def corpus_bleu(
    preds: Any,
    target: Any,
    *,
    n_gram: int | None = None,
    weights: Any = None,
    smoothing: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    auto_reweigh: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """BLEU of the whole batch as one corpus: the score of the summed sentence statistics.

    Takes the arguments of ``sentence_bleu``. NLTK's ``corpus_bleu`` hands smoothing methods 5, 6 and 7 only
    the last sentence pair; here they use corpus-wide statistics.

    Returns:
        A scalar (in [0, 1] but for the smoothings that can exceed 1, see ``sentence_bleu``); ``(K,)`` for
        a list of ``K`` weight tuples.

    Example:
        >>> import torch
        >>> preds = [[1, 2, 3, 4, 5, 6], [7, 8, 9]]
        >>> target = [[[1, 2, 3, 4, 5, 7]], [[7, 8, 9, 10], [7, 8]]]
        >>> corpus_bleu(preds, target, dtype=torch.float64)
        tensor(0.7984, dtype=torch.float64)
        >>> corpus_bleu(preds, target, weights=[(0.5, 0.5), (1 / 3, 1 / 3, 1 / 3)], dtype=torch.float64)  # BLEU-2, -3
        tensor([0.8729, 0.8479], dtype=torch.float64)
    """
    return _bleu(
        preds,
        target,
        per_sentence=False,
        n_gram=n_gram,
        weights=weights,
        smoothing=smoothing,
        smooth_value=smooth_value,
        effective_order=effective_order,
        auto_reweigh=auto_reweigh,
        pad_id=pad_id,
        eos_id=eos_id,
        validate=validate,
        dtype=dtype,
    )
