"""``compute_metrics`` for the Hugging Face ``Trainer``/``Seq2SeqTrainer`` from the token-ID metrics.

It turns the ``EvalPrediction``'s NumPy arrays (``-100`` and pad IDs, EOS) into one batched call of
:mod:`tensorbleu_metrics.functional` per metric; Transformers itself is never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor

from tensorbleu_metrics.functional import (
    corpus_bleu,
    corpus_gleu,
    distinct_ngrams,
    rouge_score,
    self_bleu,
    sentence_bleu,
    sentence_gleu,
)
from tensorbleu_metrics.integrations._convert import EOS, PAD, clean_array, id_tuple

__all__ = ["ComputeMetrics", "make_compute_metrics"]

# `label_ids` hold -100 where the loss is masked; the Trainer also pads predictions from different batches with it.
IGNORE_INDEX = -100


Scores = Callable[[Tensor, Tensor, Mapping[str, Any], bool], dict[str, Tensor]]


def _corpus_and_sentence(name: str, corpus: Callable[..., Tensor], sentence: Callable[..., Tensor]) -> Scores:
    """A metric with a corpus score and sentence scores: ``{name: corpus, name_sentence_mean: mean}``."""

    def scores(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
        out = {name: corpus(preds, target, pad_id=PAD, eos_id=EOS, **options)}
        if sentence_scores:
            out[f"{name}_sentence_mean"] = sentence(preds, target, pad_id=PAD, eos_id=EOS, **options).mean()
        return out

    return scores


def _rouge(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """Mean F measure over the evaluation set of each ROUGE key (``rouge1``, ``rouge2``, ``rougeL`` by default)."""
    scores = rouge_score(preds, target, pad_id=PAD, eos_id=EOS, **options)
    return {key.removesuffix("_fmeasure"): value.mean() for key, value in scores.items() if key.endswith("_fmeasure")}


def _self_bleu(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """Self-BLEU of the whole evaluation set (each prediction against all the others); lower is more diverse."""
    return {"self_bleu": self_bleu(preds, pad_id=PAD, eos_id=EOS, **options).mean()}


def _distinct(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """distinct-n of the whole evaluation set (default n = 2)."""
    n = options.get("n_gram", 2)
    return {f"distinct_{n}": distinct_ngrams(preds, pad_id=PAD, eos_id=EOS, **{"n_gram": n, **options})}


# One entry per metric: cleaned (N, L) predictions and (N, L') labels -> named scalar tensors.
_METRICS: dict[str, Scores] = {
    "bleu": _corpus_and_sentence("bleu", corpus_bleu, sentence_bleu),
    "gleu": _corpus_and_sentence("gleu", corpus_gleu, sentence_gleu),
    "rouge": _rouge,
    "self_bleu": _self_bleu,
    "distinct": _distinct,
}

_RESERVED = ("preds", "target", "pad_id", "eos_id")


class ComputeMetrics:
    """A ``compute_metrics`` callable: ``EvalPrediction`` -> ``{"bleu": ..., ...}``. Build it with
    :func:`make_compute_metrics`; instances are picklable."""

    def __init__(
        self,
        *,
        pad_id: int,
        eos_id: int | Sequence[int] | None = None,
        metrics: Sequence[str] = ("bleu",),
        ignore_ids: int | Sequence[int] | None = None,
        sentence_scores: bool = False,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if isinstance(pad_id, bool) or not isinstance(pad_id, int):
            raise TypeError(f"`pad_id` must be an int (the tokenizer's pad_token_id), got {pad_id!r}.")
        if isinstance(metrics, str):
            metrics = (metrics,)
        if not metrics:
            raise ValueError("`metrics` must name at least one metric.")
        for name in metrics:
            if name not in _METRICS:
                raise ValueError(f"`metrics` must be names among {sorted(_METRICS)}, got {name!r}.")
        options = dict(options or {})
        for name, opts in options.items():
            if name not in metrics:
                raise ValueError(f"`options` has an entry for {name!r}, which is not in `metrics` {tuple(metrics)}.")
            for key in _RESERVED:
                if key in opts:
                    raise ValueError(f"`options[{name!r}]` sets `{key}`: use `pad_id`, `eos_id` and `ignore_ids`.")
        if not isinstance(sentence_scores, bool):
            raise TypeError(f"`sentence_scores` must be a bool, got {sentence_scores!r}.")
        self.pad_id = pad_id
        self.eos_ids = id_tuple(eos_id, "eos_id")
        self.ignore_ids = tuple(dict.fromkeys((IGNORE_INDEX, pad_id, *id_tuple(ignore_ids, "ignore_ids"))))
        self.metrics = tuple(metrics)
        self.sentence_scores = sentence_scores
        self.options = {name: dict(options.get(name, {})) for name in self.metrics}
        self._check_options()

    def _check_options(self) -> None:
        """Score a one-token example now, so bad options fail when the trainer is built, not after evaluation."""
        example = [[3, self.eos_ids[0] if self.eos_ids else 4]]
        self(example, example)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(metrics={self.metrics}, pad_id={self.pad_id}, eos_id={self.eos_ids}, "
            f"ignore_ids={self.ignore_ids}, sentence_scores={self.sentence_scores}, options={self.options})"
        )

    def __call__(self, eval_pred: Any, label_ids: Any = None) -> dict[str, float]:
        """Corpus scores (and mean sentence scores) of generated token IDs against the labels.

        Args:
            eval_pred: a ``transformers.EvalPrediction`` (``predictions``, ``label_ids``), a
                ``(predictions, label_ids)`` pair, or the predictions themselves with ``label_ids`` given. If
                ``predictions`` is a tuple (a model with several outputs), its first item is used.
            label_ids: the labels, when ``eval_pred`` holds only the predictions.

        Returns:
            ``{name: corpus score}`` for each metric, plus ``{name + "_sentence_mean": ...}`` with
            ``sentence_scores=True``; the Trainer logs them with its ``eval_`` prefix.

        Raises:
            TypeError: float predictions (logits: generate, or take the argmax in ``preprocess_logits_for_metrics``).
            ValueError: no labels, arrays that are not ``(N, L)``, a different number of predictions and labels,
                negative IDs other than ``-100`` and the ignored IDs.
        """
        if label_ids is None:
            if hasattr(eval_pred, "predictions") and hasattr(eval_pred, "label_ids"):
                predictions, label_ids = eval_pred.predictions, eval_pred.label_ids
            elif isinstance(eval_pred, tuple) and len(eval_pred) == 2:
                predictions, label_ids = eval_pred
            else:
                raise TypeError(
                    "`eval_pred` must be an EvalPrediction or a (predictions, label_ids) pair, "
                    f"got {type(eval_pred).__name__}."
                )
        else:
            predictions = eval_pred
        if label_ids is None:
            raise ValueError("`label_ids` is None: the evaluation set needs labels (references) to score against.")
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        preds = clean_array(predictions, "predictions", self.ignore_ids, self.eos_ids)
        target = clean_array(label_ids, "label_ids", self.ignore_ids, self.eos_ids)
        if preds.shape[0] != target.shape[0]:
            raise ValueError(
                f"`predictions` has {preds.shape[0]} rows but `label_ids` has {target.shape[0]}: they must match."
            )
        out: dict[str, float] = {}
        for name in self.metrics:
            scores = _METRICS[name](preds, target, self.options[name], self.sentence_scores)
            out.update({key: float(value) for key, value in scores.items()})
        return out


def make_compute_metrics(
    *,
    pad_id: int,
    eos_id: int | Sequence[int] | None = None,
    metrics: Sequence[str] = ("bleu",),
    ignore_ids: int | Sequence[int] | None = None,
    sentence_scores: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> ComputeMetrics:
    """A ``compute_metrics`` function for ``Trainer``/``Seq2SeqTrainer`` scoring generated token IDs.

    Use it with ``Seq2SeqTrainingArguments(predict_with_generate=True)``: predictions are then token IDs, padded
    with ``-100`` between batches, and labels hold ``-100`` where the loss is masked and ``pad_id`` where the
    Trainer padded them to the generation length. Both are dropped, as are ``ignore_ids``; a sequence ends at
    its first ``eos_id``.

    Args:
        pad_id: the tokenizer's ``pad_token_id`` (also T5's decoder start token, dropped with it).
        eos_id: the ID (or IDs) ending a sequence; ``None`` when nothing follows the EOS but padding (EOS then
            only counts as a token if it is not in ``ignore_ids``).
        metrics: which scores: ``"bleu"``, ``"gleu"`` (corpus scores, and sentence means on request),
            ``"rouge"`` (the mean F measure of each key: ``"rouge1"``, ``"rouge2"``, ``"rougeL"`` unless
            ``options={"rouge": {"rouge_keys": ...}}`` says otherwise), and the
            diversity of the predictions themselves, ``"self_bleu"`` (mean Self-BLEU of each prediction against
            all others) and ``"distinct"`` (distinct-n, key ``"distinct_<n>"``, ``n_gram`` 2 by default).
        ignore_ids: more IDs dropped wherever they stand, e.g. BART's ``bos_token_id`` and its decoder start
            (``eos_token_id``; then leave ``eos_id=None``).
        sentence_scores: also return the mean sentence score of each metric (``"<name>_sentence_mean"``).
        options: per metric, options of its functional call, e.g. ``{"bleu": {"smoothing": "exp"}}`` (the
            same options serve the corpus and the sentence scores).

    Returns:
        A :class:`ComputeMetrics` callable returning ``dict[str, float]``.

    Raises:
        ValueError, TypeError: unknown metric names, options the functional API rejects (named).

    Example:
        >>> import numpy as np
        >>> compute_metrics = make_compute_metrics(pad_id=0, eos_id=1, sentence_scores=True)
        >>> predictions = np.array([[0, 5, 6, 7, 8, 1, 0], [0, 5, 6, 9, 1, -100, -100]])  # decoder start 0 first
        >>> label_ids = np.array([[5, 6, 7, 8, 1], [5, 6, 9, 8, 1]])
        >>> compute_metrics((predictions, label_ids))
        {'bleu': 0.8668..., 'bleu_sentence_mean': 0.5}
    """
    return ComputeMetrics(
        pad_id=pad_id,
        eos_id=eos_id,
        metrics=metrics,
        ignore_ids=ignore_ids,
        sentence_scores=sentence_scores,
        options=options,
    )
