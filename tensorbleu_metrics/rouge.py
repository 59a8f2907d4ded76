"""``TokenIDROUGE``: a ``torchmetrics.Metric`` averaging exact token-ID ROUGE scores over batches.

The corpus value is the mean of the sentence scores, as torchmetrics' ``ROUGEScore`` reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities.imports import _MATPLOTLIB_AVAILABLE
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from tensorbleu_metrics._metric_base import _TokenIDMetric
from tensorbleu_metrics.functional.rouge import SCORE_FIELDS, check_rouge_options, rouge_score

if not _MATPLOTLIB_AVAILABLE:
    __doctest_skip__ = ["TokenIDROUGE.plot"]

__all__ = ["TokenIDROUGE"]


class TokenIDROUGE(_TokenIDMetric):
    """Mean ROUGE-N / ROUGE-L / ROUGE-Lsum of the sentences seen, on token IDs.

    Each ``update`` scores its batch with ``tensorbleu_metrics.functional.rouge_score`` (Google rouge-score's
    values on the IDs as words) and adds, per key, the sums of the sentence precisions, recalls and F-measures
    (float64) and the number of sentences (int64) to states reduced with ``"sum"``. ``compute`` returns their
    means, as torchmetrics' ``ROUGEScore`` does: under DDP the sums of all processes are added first.
    ``forward`` returns the value of its batch alone and adds the batch to the state.

    States keep their dtypes (float64 sums, int64 count) whatever ``.half()``/``.to(dtype)`` does, and a failing
    ``update``/``forward`` changes nothing (the guarantees of the project's private metric base).

    ``preds``/``target`` take every form the functional API takes: ``(B, L)`` tensors or ragged sequences;
    ``(B, L')``, ``(B, R, L')`` (an all-padding row is an absent reference) or ragged references.

    Args:
        rouge_keys: a key or keys from ``rouge1``..``rouge9``, ``rougeL``, ``rougeLsum``.
        accumulate: with several references, ``"best"`` (the reference with the highest F, per key) or ``"avg"``.
        sep_id: the sentence-end token ID; required for ``rougeLsum``, never a token for any key.
        pad_id: token ID ignored wherever it appears.
        eos_id: token ID ending a sequence at its first occurrence (excluded).
        return_sentence_level_score: also return every sentence's scores (a float64 state growing with the
            number of sentences): ``compute`` then returns ``(means, sentence_scores)``, two dicts with the same
            keys, the second holding ``(S,)`` tensors in update order (under DDP rank 0's sentences first).
        validate: check the token values of every batch (negative IDs, sentences without a reference: one host
            synchronisation per ``update`` on an accelerator); ``False`` trusts them, as the functional API's
            ``validate=False``.
        kwargs: additional keyword arguments of ``torchmetrics.Metric`` (``sync_on_compute``,
            ``dist_sync_on_step``, ``process_group``, ``compute_on_cpu``, ...).

    Raises:
        ValueError, TypeError: invalid options (see ``tensorbleu_metrics.functional.rouge_score``).

    Example:
        >>> import torch
        >>> from tensorbleu_metrics import TokenIDROUGE
        >>> rouge = TokenIDROUGE(rouge_keys=("rouge1", "rougeL"), pad_id=0)
        >>> preds = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
        >>> target = torch.tensor([[5, 7, 6, 8], [9, 10, 12, 0]])
        >>> rouge(preds, target)["rougeL_fmeasure"]  # this batch: mean of 0.75 and 0.6667
        tensor(0.7083)
        >>> rouge.update([[1, 2, 3]], [[[1, 2, 3], [4]]])  # ragged lists, two references
        >>> rouge.compute()["rougeL_fmeasure"]  # the three sentences
        tensor(0.8056)
    """

    higher_is_better: bool = True
    plot_lower_bound: float = 0.0
    plot_upper_bound: float = 1.0

    score_sum: Tensor
    n_sentences: Tensor
    sentence_scores: list[Tensor]

    def __init__(
        self,
        rouge_keys: str | Sequence[str] = ("rouge1", "rouge2", "rougeL"),
        accumulate: str = "best",
        sep_id: int | None = None,
        pad_id: int | None = None,
        eos_id: int | None = None,
        return_sentence_level_score: bool = False,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rouge_keys, sep_id = check_rouge_options(rouge_keys, accumulate, sep_id)
        self._set_token_options(pad_id, eos_id, return_sentence_level_score, validate)
        if sep_id is not None and sep_id in (self.pad_id, self.eos_id):
            raise ValueError(f"`sep_id` ({sep_id}) must differ from `pad_id` and `eos_id`.")
        self.accumulate = accumulate
        self.sep_id = sep_id
        self._declare_options(
            rouge_keys=self.rouge_keys, accumulate=accumulate, sep_id=sep_id, **self._token_option_values
        )
        # one row per key, one column per field of SCORE_FIELDS
        self._names = [f"{key}_{field}" for key in self.rouge_keys for field in SCORE_FIELDS]
        self._add_sum_state("score_sum", (len(self._names),), torch.float64)
        self._add_sum_state("n_sentences")
        if return_sentence_level_score:
            self._add_list_state("sentence_scores", (len(self._names),), torch.float64)  # (B, keys * fields)

    def _batch_scores(self, preds: Any, target: Any) -> Tensor:
        """``(B, keys * fields)`` float64 sentence scores of a batch."""
        scores = rouge_score(
            preds,
            target,
            rouge_keys=self.rouge_keys,
            accumulate=self.accumulate,
            sep_id=self.sep_id,
            dtype=torch.float64,
            **self._token_options,
        )
        return torch.stack([scores[name] for name in self._names], 1)

    def _restore_shapes(self, value: Any) -> Any:
        """Undo torchmetrics' squeezing of one-element results: sentence scores stay ``(S,)``."""
        if isinstance(value, tuple) and len(value) == 2:
            return value[0], {name: v.reshape(-1) for name, v in value[1].items()}
        return value

    def update(self, preds: Any, target: Any) -> None:
        """Add the sentence scores of a batch (an invalid batch raises and changes nothing)."""
        scores = self._batch_scores(preds, target)
        device = self.score_sum.device
        self.score_sum = self.score_sum + scores.sum(0).to(device)
        self.n_sentences = self.n_sentences + scores.shape[0]
        if self.return_sentence_level_score:
            self.sentence_scores.append(scores.to(device))

    def compute(self) -> dict[str, Tensor] | tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Mean score per key and field (0 before any sentence), and the sentence scores if asked for."""
        means = (self.score_sum / self.n_sentences.clamp(min=1)).to(torch.float32)
        corpus = {name: means[i] for i, name in enumerate(self._names)}
        if not self.return_sentence_level_score:
            return corpus
        cat = self._cat_list_state("sentence_scores").reshape(-1, len(self._names)).to(torch.float32)
        return corpus, {name: cat[:, i] for i, name in enumerate(self._names)}

    def plot(
        self, val: dict[str, Tensor] | Sequence[dict[str, Tensor]] | None = None, ax: _AX_TYPE | None = None
    ) -> _PLOT_OUT_TYPE:
        """Plot the mean scores of one or several results of ``forward``/``compute``.

        Args:
            val: a result (dict of scalars) or a list of them; with ``return_sentence_level_score`` the means are
                plotted. If ``None``, ``compute()`` is called and its result plotted.
            ax: a matplotlib axis to draw on; a new figure is made when ``None``.

        Returns:
            Figure and Axes object

        Raises:
            ModuleNotFoundError: If ``matplotlib`` is not installed.

        Example:
            >>> import torch
            >>> from tensorbleu_metrics import TokenIDROUGE
            >>> metric = TokenIDROUGE(rouge_keys="rougeL")
            >>> values = [metric(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, k]])) for k in (3, 4)]
            >>> fig_, ax_ = metric.plot(values)
        """
        return super().plot(val, ax)
