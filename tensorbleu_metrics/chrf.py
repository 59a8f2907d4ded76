"""``TokenIDCHRF``: a ``torchmetrics.Metric`` accumulating exact corpus chrF / chrF++ over text or token IDs.

Three int64 sums per n-gram order (hypothesis n-grams, reference n-grams, matches of each sentence's best
reference) make the corpus score exactly SacreBLEU's ``corpus_score`` of all sentences seen.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities.imports import _MATPLOTLIB_AVAILABLE

from tensorbleu_metrics import functional
from tensorbleu_metrics._metric_base import _TokenIDMetric

if not _MATPLOTLIB_AVAILABLE:
    __doctest_skip__ = ["TokenIDCHRF.plot"]

__all__ = ["TokenIDCHRF"]


class TokenIDCHRF(_TokenIDMetric):
    """Corpus chrF (``word_order=2``: chrF++) over batches of text or token IDs, accumulated exactly across batches
    and processes.

    Each ``update`` reduces its batch with ``tensorbleu_metrics.functional.chrf_stats`` to, per sentence and
    n-gram order, the hypothesis n-grams, the best reference's n-grams and their matches, and adds their sums to
    ``(char_order + word_order,)`` int64 states reduced with ``"sum"``. ``compute`` returns the chrF of everything
    seen in [0, 1] (SacreBLEU's ``corpus_score`` / 100; 0 before any n-gram), on every process (under DDP the sums
    of all ranks are added first).

    ``update(preds, target)`` takes text (a sequence of ``str``, with one ``str`` or a sequence of ``str`` per
    sentence as references) or token IDs in the forms of ``tensorbleu_metrics.TokenIDBLEU`` (then each ID is a
    symbol and ``word_order`` must be 0). ``forward`` returns the value of the current batch only and adds the
    batch to the accumulated state. States stay int64 (and float64 for sentence scores) whatever
    ``.half()``/``.to(dtype)`` does to the metric; a failing ``update``/``forward`` leaves them as they were.

    Args:
        char_order: The highest character n-gram order (token n-gram order on token IDs).
        word_order: The highest word n-gram order (2: chrF++); text only.
        beta: The weight of recall against precision.
        whitespace: Keep whitespace in the character n-grams.
        eps_smoothing: SacreBLEU's ``eps_smoothing`` (see ``tensorbleu_metrics.functional.chrf_stats``).
        lowercase: Lowercase the texts first; text only.
        pad_id: Token ID ignored wherever it appears (token IDs only).
        eos_id: Token ID ending a sequence at its first occurrence (excluded; token IDs only).
        return_sentence_level_score: Also return the chrF of every sentence seen, in update order (under DDP rank
            0's sentences first), kept in a float64 state that grows with the number of sentences.
        validate: Check the token values of every batch, as ``tensorbleu_metrics.TokenIDBLEU`` does.
        kwargs: Additional keyword arguments of ``torchmetrics.Metric``.

    Raises:
        ValueError, TypeError: If an option is invalid.

    Example:
        >>> from tensorbleu_metrics import TokenIDCHRF
        >>> chrf = TokenIDCHRF(word_order=2)  # chrF++
        >>> chrf(["the cat sat on the mat"], ["the cat sat on a mat"])  # chrF++ of this batch
        tensor(0.7203)
        >>> chrf.update(["a dog"], [["the dog", "a dog barked"]])  # several references
        >>> chrf.compute()  # corpus chrF++ of the two sentences
        tensor(0.5927)

        On token IDs:

        >>> import torch
        >>> chrf = TokenIDCHRF(char_order=4, pad_id=0, return_sentence_level_score=True)
        >>> chrf.update(torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), torch.tensor([[5, 6, 7, 9], [9, 10, 11, 0]]))
        >>> corpus, sentences = chrf.compute()
        >>> sentences
        tensor([0.4792, 0.6364])
    """

    higher_is_better: bool = True
    plot_lower_bound: float = 0.0
    plot_upper_bound: float = 1.0

    hyp: Tensor
    ref: Tensor
    matches: Tensor
    sentence_scores: list[Tensor]

    def __init__(
        self,
        char_order: int = 6,
        word_order: int = 0,
        beta: int = 2,
        whitespace: bool = False,
        eps_smoothing: bool = False,
        lowercase: bool = False,
        pad_id: int | None = None,
        eos_id: int | None = None,
        return_sentence_level_score: bool = False,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.char_order, self.word_order, self.beta = functional.check_chrf_options(
            char_order, word_order, beta, whitespace, eps_smoothing
        )
        if not isinstance(lowercase, bool):
            raise TypeError(f"`lowercase` must be a bool, got {lowercase!r}.")
        self.whitespace, self.eps_smoothing, self.lowercase = whitespace, eps_smoothing, lowercase
        self._set_token_options(pad_id, eos_id, return_sentence_level_score, validate)
        self._declare_options(
            char_order=self.char_order,
            word_order=self.word_order,
            beta=self.beta,
            whitespace=whitespace,
            eps_smoothing=eps_smoothing,
            lowercase=lowercase,
            **self._token_option_values,
        )
        for name in functional.CHRFStats._fields:
            self._add_sum_state(name, (self.char_order + self.word_order,))
        if return_sentence_level_score:
            self._add_list_state("sentence_scores", (), torch.float64)

    def _restore_shapes(self, value: Any) -> Any:
        """Undo torchmetrics' squeezing of one-element results: sentence scores stay ``(S,)``."""
        if isinstance(value, tuple) and len(value) == 2:
            return value[0], value[1].reshape(-1)
        return value

    def update(self, preds: Any, target: Any) -> None:
        """Add the chrF statistics (and, if requested, the sentence scores) of a batch."""
        options = {"beta": self.beta, "eps_smoothing": self.eps_smoothing}
        stats = functional.chrf_stats(
            preds,
            target,
            char_order=self.char_order,
            word_order=self.word_order,
            whitespace=self.whitespace,
            lowercase=self.lowercase,
            **options,
            **self._token_options,
        )
        batch = stats.sum()
        device = self.matches.device
        for name in functional.CHRFStats._fields:
            setattr(self, name, getattr(self, name) + getattr(batch, name).to(device))
        if self.return_sentence_level_score:
            self.sentence_scores.append(functional.chrf_from_stats(stats, dtype=torch.float64, **options).to(device))

    def compute(self) -> Tensor | tuple[Tensor, Tensor]:
        """Corpus chrF of everything seen, and the sentence scores if ``return_sentence_level_score``."""
        stats = functional.CHRFStats(self.hyp, self.ref, self.matches)
        corpus = functional.chrf_from_stats(stats, beta=self.beta, eps_smoothing=self.eps_smoothing)
        if not self.return_sentence_level_score:
            return corpus
        return corpus, self._cat_list_state("sentence_scores").to(torch.float32)
