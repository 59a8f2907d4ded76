"""``TokenIDGLEU``: a ``torchmetrics.Metric`` accumulating exact corpus GLEU over token-ID batches.

Two int64 sums (NLTK's ``tp`` and ``n_all`` of each sentence's best reference) make the corpus score exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities.imports import _MATPLOTLIB_AVAILABLE

from tensorbleu_metrics import functional
from tensorbleu_metrics._metric_base import _TokenIDMetric

if not _MATPLOTLIB_AVAILABLE:
    __doctest_skip__ = ["TokenIDGLEU.plot"]

__all__ = ["TokenIDGLEU"]


class TokenIDGLEU(_TokenIDMetric):
    """Corpus GLEU (Google BLEU) over batches of token IDs, accumulated exactly across batches and processes.

    Each ``update`` reduces its batch with ``tensorbleu_metrics.functional.gleu_stats`` to, per sentence,
    the n-grams shared with its best reference and ``n_all``, and adds their sums to int64 states reduced with
    ``"sum"``. ``compute`` returns ``matches / n_all`` of everything seen (0 before any n-gram), which is
    exactly NLTK's ``corpus_gleu`` of all sentences seen, on every process (under DDP the sums of all ranks are
    added first).

    Inputs of ``update``/``forward`` are those of ``tensorbleu_metrics.TokenIDBLEU``. ``forward`` returns the
    value of the current batch only and adds the batch to the accumulated state. States stay int64 (and float64
    for sentence scores) whatever ``.half()``/``.to(dtype)`` does to the metric; a failing ``update``/``forward``
    leaves them as they were.

    Args:
        min_len: The lowest n-gram order.
        max_len: The highest n-gram order.
        pad_id: Token ID ignored wherever it appears (may be negative, e.g. ``-100``).
        eos_id: Token ID ending a sequence at its first occurrence (excluded).
        return_sentence_level_score: Also return the GLEU of every sentence seen, in update order (under DDP rank
            0's sentences first), kept in a float64 state that grows with the number of sentences.
        validate: Check the token values of every batch (negative IDs, sentences without a reference: one host
            synchronisation per ``update`` on an accelerator); ``False`` trusts them, as the functional API's
            ``validate=False``.
        kwargs: Additional keyword arguments of ``torchmetrics.Metric``.

    Raises:
        ValueError, TypeError: If an option is invalid.

    Example:
        >>> import torch
        >>> from tensorbleu_metrics import TokenIDGLEU
        >>> gleu = TokenIDGLEU(pad_id=0)
        >>> preds = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
        >>> target = torch.tensor([[5, 6, 7, 8, 9, 11], [11, 12, 13, 14, 15, 0]])
        >>> gleu(preds, target)  # GLEU of this batch
        tensor(0.7500)
        >>> gleu.update([[1, 2, 3, 4, 5]], [[[1, 2, 3, 4, 5], [1, 2, 3]]])  # ragged lists, two references
        >>> gleu.compute()  # corpus GLEU of the three sentences
        tensor(0.8261)

        Per-sentence scores as well:

        >>> gleu = TokenIDGLEU(pad_id=0, return_sentence_level_score=True)
        >>> gleu.update(preds, target)
        >>> corpus, sentences = gleu.compute()
        >>> sentences
        tensor([0.7778, 0.7143])

    """

    higher_is_better: bool = True
    plot_lower_bound: float = 0.0
    plot_upper_bound: float = 1.0

    matches: Tensor
    n_all: Tensor
    sentence_scores: list[Tensor]

    def __init__(
        self,
        min_len: int = 1,
        max_len: int = 4,
        pad_id: int | None = None,
        eos_id: int | None = None,
        return_sentence_level_score: bool = False,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_len, self.max_len = functional.check_gleu_options(min_len, max_len)
        self._set_token_options(pad_id, eos_id, return_sentence_level_score, validate)
        self._declare_options(min_len=self.min_len, max_len=self.max_len, **self._token_option_values)
        for name in functional.GLEUStats._fields:
            self._add_sum_state(name)
        if return_sentence_level_score:
            self._add_list_state("sentence_scores", (), torch.float64)

    def _restore_shapes(self, value: Any) -> Any:
        """Undo torchmetrics' squeezing of one-element results: sentence scores stay ``(S,)``."""
        if isinstance(value, tuple) and len(value) == 2:
            return value[0], value[1].reshape(-1)
        return value

    def update(self, preds: Any, target: Any) -> None:
        """Add the GLEU statistics (and, if requested, the sentence scores) of a batch."""
        stats = functional.gleu_stats(preds, target, min_len=self.min_len, max_len=self.max_len, **self._token_options)
        batch = stats.sum()
        device = self.matches.device
        for name in functional.GLEUStats._fields:
            setattr(self, name, getattr(self, name) + getattr(batch, name).to(device))
        if self.return_sentence_level_score:
            self.sentence_scores.append(functional.gleu_from_stats(stats, dtype=torch.float64).to(device))

    def compute(self) -> Tensor | tuple[Tensor, Tensor]:
        """Corpus GLEU of everything seen, and the sentence scores if ``return_sentence_level_score``."""
        corpus = functional.gleu_from_stats(functional.GLEUStats(self.matches, self.n_all), dtype=torch.float32)
        if not self.return_sentence_level_score:
            return corpus
        return corpus, self._cat_list_state("sentence_scores").to(torch.float32)
