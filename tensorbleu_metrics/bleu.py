"""``TokenIDBLEU``: a ``torchmetrics.Metric`` accumulating exact corpus BLEU over token-ID batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities.imports import _MATPLOTLIB_AVAILABLE
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from tensorbleu_metrics import functional
from tensorbleu_metrics._metric_base import _TokenIDMetric
from tensorbleu_metrics.functional._scoring import bleu_options, score_with

if not _MATPLOTLIB_AVAILABLE:
    __doctest_skip__ = ["TokenIDBLEU.plot"]

__all__ = ["TokenIDBLEU"]

_STAT_STATES = functional.BLEUStats._fields  # the states are named after the statistics


class TokenIDBLEU(_TokenIDMetric):
    """Corpus BLEU over batches of token IDs, accumulated exactly across batches and processes.

    Each ``update`` reduces its batch to BLEU's sufficient statistics (clipped n-gram matches, n-gram totals,
    candidate and closest-reference lengths) with ``tensorbleu_metrics.functional.bleu_stats`` and adds
    them to integer states reduced with ``"sum"``. ``compute`` scores the accumulated statistics with
    ``tensorbleu_metrics.functional.bleu_from_stats``, so the result is exactly
    ``tensorbleu_metrics.functional.corpus_bleu`` of everything seen, on every process (under DDP the
    statistics of all ranks are summed first) — not an average of per-batch scores.

    As input to ``forward`` and ``update`` the metric accepts every form the functional API accepts:

    - ``preds``: an integer tensor ``(B, L)``, or a sequence of ``B`` token sequences (1-D integer tensors or
      lists of ints, of any lengths).
    - ``target``: an integer tensor ``(B, L')`` (one reference each), ``(B, R, L')`` (up to ``R`` references
      each; a row that is all ``pad_id`` is an absent reference), or a sequence of ``B`` sequences of
      references.

    As output of ``forward`` and ``compute`` the metric returns:

    - the corpus BLEU as a float32 tensor: a scalar, or ``(K,)`` when ``weights`` is a list of ``K`` weight
      tuples;
    - with ``return_sentence_level_score=True``, a tuple ``(corpus_score, sentence_scores)`` where
      ``sentence_scores`` holds the BLEU of every sentence seen (``(S,)``, or ``(K, S)`` for ``K`` weight
      tuples), in update order; under DDP the sentences of rank 0 come first, then rank 1, and so on.

    ``forward`` returns the value for the current batch only and adds the batch to the accumulated state.

    Metric states are always ``int64`` (statistics) and ``float64`` (sentence scores) and only ever change
    device: ``.half()``, ``.to(torch.bfloat16)`` or ``set_dtype(...)`` on the metric or on a model holding it
    leave them untouched, so a float16/bfloat16 model cannot round the counts. Like every torchmetrics metric,
    the states are not saved in ``state_dict()`` unless ``metric.persistent(True)`` is called.

    Args:
        n_gram: Maximum n-gram order ``N`` (>= 1); ``None``: the longest weight tuple's length, 4 without
            weights.
        weights: Weights of the ``N`` log precisions (uniform ``1/N`` when ``None``), or a list of ``K``
            weight tuples to get ``K`` scores at once (tuples of different lengths as in NLTK: each tuple's
            length is its BLEU order). Tensors and NumPy arrays work too.
        smoothing: One of ``tensorbleu_metrics.functional.SMOOTHING_METHODS``: SacreBLEU's ``"none"``,
            ``"floor"``, ``"add-k"``, ``"exp"`` or NLTK's ``"method0"`` … ``"method7"``.
        smooth_value: The smoothing's parameter: SacreBLEU's ``"floor"`` (default 0.1) and ``"add-k"`` (default 1)
            values, NLTK's epsilon (``"method1"``, 0.1), k (``"method4"``/``"method7"``, 5) or alpha
            (``"method6"``, 5); see ``tensorbleu_metrics.functional.sentence_bleu`` for the valid ranges.
        effective_order: SacreBLEU's effective order (SacreBLEU methods only).
        auto_reweigh: NLTK's ``auto_reweigh`` (NLTK methods only).
        pad_id: Token ID ignored wherever it appears (may be negative, e.g. ``-100``).
        eos_id: Token ID ending a sequence at its first occurrence (excluded).
        return_sentence_level_score: Also return the BLEU of every sentence seen (kept in a float64 state that
            grows with the number of sentences).
        validate: Check the token values of every batch (negative IDs, sentences without a reference: one host
            synchronisation per ``update`` on an accelerator); ``False`` trusts them, as the functional API's
            ``validate=False``.
        kwargs: Additional keyword arguments of ``torchmetrics.Metric`` (``sync_on_compute``,
            ``dist_sync_on_step``, ``process_group``, ``compute_on_cpu``, ...).

    Raises:
        ValueError: If an option is invalid (see ``tensorbleu_metrics.functional.check_bleu_options``).
        TypeError: If an option has the wrong type.

    Example:
        >>> import torch
        >>> from tensorbleu_metrics.bleu import TokenIDBLEU
        >>> bleu = TokenIDBLEU(pad_id=0)
        >>> preds = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
        >>> target = torch.tensor([[5, 6, 7, 8, 9, 11], [11, 12, 13, 14, 15, 0]])
        >>> bleu(preds, target)  # BLEU of this batch
        tensor(0.7579)
        >>> bleu.update([[1, 2, 3, 4, 5]], [[[1, 2, 3, 4, 5], [1, 2, 3]]])  # ragged lists, two references
        >>> bleu.compute()  # corpus BLEU of the three sentences
        tensor(0.8347)

        Per-sentence scores as well:

        >>> bleu = TokenIDBLEU(pad_id=0, smoothing="method1", return_sentence_level_score=True)
        >>> bleu.update(preds, target)
        >>> corpus, sentences = bleu.compute()
        >>> sentences
        tensor([0.7598, 0.7788])

    """

    higher_is_better: bool = True
    plot_lower_bound: float = 0.0
    plot_upper_bound: float = 1.0

    matches: Tensor
    totals: Tensor
    clamped_totals: Tensor
    pred_len: Tensor
    ref_len: Tensor
    sentence_scores: list[Tensor]

    def __init__(
        self,
        n_gram: int | None = None,
        weights: Sequence[float] | Sequence[Sequence[float]] | None = None,
        smoothing: str = "none",
        smooth_value: float | None = None,
        effective_order: bool = False,
        auto_reweigh: bool = False,
        pad_id: int | None = None,
        eos_id: int | None = None,
        return_sentence_level_score: bool = False,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # the BLEU order: n_gram, or the longest weight tuple's length (4 without weights)
        self._bleu_options = bleu_options(n_gram, weights, smoothing, smooth_value, effective_order, auto_reweigh)
        n_gram = self._bleu_options.order
        self._set_token_options(pad_id, eos_id, return_sentence_level_score, validate)
        self.n_gram = n_gram
        self.weights = weights
        self.smoothing = smoothing
        self.smooth_value = smooth_value
        self.effective_order = effective_order
        self.auto_reweigh = auto_reweigh
        self._declare_options(
            n_gram=n_gram,
            weights=weights,
            smoothing=smoothing,
            smooth_value=smooth_value,
            effective_order=effective_order,
            auto_reweigh=auto_reweigh,
            **self._token_option_values,
        )
        # Orders whose statistics are kept: more than ``n_gram`` for smoothings that look at higher orders.
        self._counted_orders = self._bleu_options.counted_orders

        n = self._counted_orders
        for name in ("matches", "totals", "clamped_totals"):
            self._add_sum_state(name, (n,))
        for name in ("pred_len", "ref_len"):
            self._add_sum_state(name)
        # () for one weight set, (K,) for K of them: the shape of a corpus score
        zero = torch.zeros(n, dtype=torch.int64)
        zero_stats = functional.BLEUStats(zero, zero, zero, zero[0], zero[0])
        self._score_shape = tuple(self._score(zero_stats, torch.float64).shape)
        if return_sentence_level_score:
            # float64 scores, one tensor per update: (B,), or (B, K) for K weight tuples ("cat" runs on dim 0)
            self._add_list_state("sentence_scores", self._score_shape, torch.float64)

    # ------------------------------------------------------------------ scoring
    def _score(self, stats: functional.BLEUStats, dtype: torch.dtype) -> Tensor:
        return score_with(self._bleu_options, stats, dtype)

    def _state_stats(self) -> functional.BLEUStats:
        return functional.BLEUStats(*(getattr(self, name) for name in _STAT_STATES))

    def _restore_shapes(self, value: Any) -> Any:
        """Undo torchmetrics' squeezing of one-element results: ``(K,)``, ``(K, S)`` and ``(S,)`` stay so."""
        if self.return_sentence_level_score and isinstance(value, tuple) and len(value) == 2:
            corpus, sentences = value
            sentences = sentences.reshape(*self._score_shape, -1)
            return corpus.reshape(self._score_shape), sentences
        if isinstance(value, Tensor):
            return value.reshape(self._score_shape)
        return value

    # ------------------------------------------------------------------ Metric API
    def update(self, preds: Any, target: Any) -> None:
        """Add the sufficient statistics (and, if requested, the sentence scores) of a batch.

        Everything is computed before any state is touched, so an invalid batch raises the functional API's
        error and leaves the metric exactly as it was.
        """
        stats = functional.bleu_stats(preds, target, n_gram=self._counted_orders, **self._token_options)
        batch = stats.sum()
        scores = None
        if self.return_sentence_level_score:
            scores = self._score(stats, torch.float64)
            if scores.ndim == 2:  # (K, B) -> (B, K): the batch dimension first for "cat"
                scores = scores.T.contiguous()
        device = self.matches.device
        for name in _STAT_STATES:
            setattr(self, name, getattr(self, name) + getattr(batch, name).to(device=device, dtype=torch.int64))
        if scores is not None:
            self.sentence_scores.append(scores.to(device))

    def compute(self) -> Tensor | tuple[Tensor, Tensor]:
        """Corpus BLEU of everything seen, and the sentence scores if ``return_sentence_level_score``."""
        corpus = self._score(self._state_stats(), torch.float32)
        if not self.return_sentence_level_score:
            return corpus
        cat = self._cat_list_state("sentence_scores")
        if cat.ndim == 2:  # (S, K) -> (K, S), the functional layout
            cat = cat.T
        return corpus, cat.to(torch.float32)

    def plot(self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None) -> _PLOT_OUT_TYPE:
        """Plot a single or multiple values from the metric.

        Args:
            val: A result of ``forward``/``compute`` or a list of them (with ``return_sentence_level_score``
                the corpus scores are plotted). If ``None``, ``compute()`` is called and its result plotted.
            ax: A matplotlib axis to draw on; a new figure is made when ``None``.

        Returns:
            Figure and Axes object

        Raises:
            ModuleNotFoundError: If ``matplotlib`` is not installed.

        Example:
            >>> import torch
            >>> from tensorbleu_metrics.bleu import TokenIDBLEU
            >>> metric = TokenIDBLEU(smoothing="method1")
            >>> preds = torch.tensor([[1, 2, 3, 4, 5]])
            >>> values = [metric(preds, torch.tensor([[1, 2, 3, 4, k]])) for k in (5, 6)]
            >>> fig_, ax_ = metric.plot(values)

        """
        return super().plot(val, ax)
