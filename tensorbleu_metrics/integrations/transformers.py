"""``compute_metrics`` for the Hugging Face ``Trainer``/``Seq2SeqTrainer`` from the token-ID metrics.

It turns the ``EvalPrediction``'s NumPy arrays (``-100`` and pad IDs, EOS) into one batched call of
``tensorbleu_metrics.functional`` per metric; Transformers itself is never imported. For a causal LM under the
plain ``Trainer``, ``preprocess_logits_for_metrics`` keeps the argmax token IDs instead of the logits and
``make_compute_metrics(causal_lm=True)`` scores the prediction at position t against the label at t + 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional._inputs import check_int
from tensorbleu_metrics.integrations._convert import PAD, clean_array, id_tuple
from tensorbleu_metrics.integrations._registry import REGISTRY, SET_BY_LAYER, offering

__all__ = ["ComputeMetrics", "make_compute_metrics", "preprocess_logits_for_metrics"]

# `label_ids` hold -100 where the loss is masked; the Trainer also pads predictions from different batches with it.
IGNORE_INDEX = -100


# the metrics offered over an evaluation set
_METRICS = offering("eval_set")


def preprocess_logits_for_metrics(logits: Any, labels: Any = None) -> Tensor:
    """A ``preprocess_logits_for_metrics`` for ``Trainer``: the argmax token ID at each position, not the logits.

    The Trainer keeps what this returns for the whole evaluation set, so a ``(B, L)`` integer tensor per batch
    stands in for the ``(B, L, V)`` float logits. The IDs are not shifted: the ID at position t is the model's
    guess for the token at t + 1, which ``make_compute_metrics(causal_lm=True)`` lines up with the labels.

    Args:
        logits: the model's ``(B, L, V)`` logits, or a tuple/list whose first item they are (a model returning
            several outputs). Integer IDs pass through unchanged.
        labels: the batch's labels, which the Trainer passes too; unused.

    Returns:
        ``(B, L)`` int32 token IDs (int64 for a vocabulary past the int32 range), on the logits' device.

    Example:
        >>> import torch
        >>> preprocess_logits_for_metrics(torch.tensor([[[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]]]), None)
        tensor([[1, 0]], dtype=torch.int32)
    """
    if isinstance(logits, (tuple, list)):
        if not logits:
            raise ValueError("`logits` is an empty tuple: the model returned no logits.")
        logits = logits[0]
    if not isinstance(logits, Tensor):
        raise TypeError(f"`logits` must be a tensor (or a tuple whose first item is one), got {type(logits).__name__}.")
    if not (logits.is_floating_point() or logits.is_complex()):
        return logits
    if logits.dim() < 1:
        raise ValueError("`logits` must have a vocabulary dimension last, got a 0-d tensor.")
    ids = logits.argmax(dim=-1)
    # int32 halves what the Trainer accumulates; every real vocabulary fits it
    return ids.to(torch.int32) if logits.shape[-1] <= torch.iinfo(torch.int32).max else ids


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {value!r}.")
    return bool(value)


def _is_float_array(x: Any) -> bool:
    """Whether ``x`` is a tensor or array of float (or complex) values, without converting it."""
    if isinstance(x, Tensor):
        return x.is_floating_point() or x.is_complex()
    dtype = getattr(x, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind in "fc"


def _causal_alignment(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Cleaned ``(N, L)`` argmax predictions and labels of a causal LM -> the scored tokens of each row, left-aligned.

    The prediction at column t is the guess for the label at t + 1; only columns whose label is a token (not
    ``PAD``: ``-100``, ``pad_id`` or an ignored ID) are kept, in order, in both. Any padding the Trainer added
    between batches is ``-100`` on the right of both arrays, so it is never kept.
    """
    width = max(preds.shape[1], target.shape[1])
    # right-pad the narrower array: columns line up from the left, as the Trainer pads on the right
    preds = torch.nn.functional.pad(preds, (0, width - preds.shape[1]), value=PAD)
    target = torch.nn.functional.pad(target, (0, width - target.shape[1]), value=PAD)
    keep = target[:, 1:] != PAD
    n_rows = keep.shape[0]
    lengths = keep.sum(dim=1)
    out_width = max(int(lengths.max()) if n_rows else 0, 1)
    rows = torch.arange(n_rows).unsqueeze(1).expand_as(keep)[keep]
    cols = (keep.cumsum(dim=1) - 1)[keep]
    out_preds = torch.full((n_rows, out_width), PAD, dtype=torch.int64)
    out_target = torch.full((n_rows, out_width), PAD, dtype=torch.int64)
    out_preds[rows, cols] = preds[:, :-1][keep]
    out_target[rows, cols] = target[:, 1:][keep]
    return out_preds, out_target


class ComputeMetrics:
    """A ``compute_metrics`` callable: ``EvalPrediction`` -> ``{"bleu": ..., ...}``. Build it with
    ``make_compute_metrics``; instances are picklable."""

    def __init__(
        self,
        *,
        pad_id: int,
        eos_id: int | Sequence[int] | None = None,
        metrics: Sequence[str] = ("bleu",),
        ignore_ids: int | Sequence[int] | None = None,
        sentence_scores: bool = False,
        causal_lm: bool = False,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        pad_id = check_int(pad_id, "pad_id", what=" (the tokenizer's pad_token_id)")
        if isinstance(metrics, str):
            metrics = (metrics,)
        if not metrics:
            raise ValueError("`metrics` must name at least one metric.")
        for name in metrics:
            if name not in _METRICS:
                raise ValueError(f"`metrics` must be names among {sorted(_METRICS)}, got {name!r}.")
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise TypeError(
                "`options` must be a mapping {metric name: {keyword: value}}, e.g. {'bleu': {'n_gram': 2}}, "
                f"got {options!r}."
            )
        for name, opts in options.items():
            if name not in metrics:
                raise ValueError(f"`options` has an entry for {name!r}, which is not in `metrics` {tuple(metrics)}.")
            if not isinstance(opts, Mapping):
                raise TypeError(
                    f"`options[{name!r}]` must be a mapping of keyword arguments for the {name} functional call, "
                    f"e.g. {{'n_gram': 2}}, got {opts!r}."
                )
            for key in opts:
                if not isinstance(key, str):
                    raise TypeError(f"`options[{name!r}]` must have keyword names (str) as keys, got {key!r}.")
                if key in SET_BY_LAYER:
                    raise ValueError(f"`options[{name!r}]` sets `{key}`: use `pad_id`, `eos_id` and `ignore_ids`.")
        self.pad_id = pad_id
        self.eos_ids = id_tuple(eos_id, "eos_id")
        self.ignore_ids = tuple(dict.fromkeys((IGNORE_INDEX, pad_id, *id_tuple(ignore_ids, "ignore_ids"))))
        self.metrics = tuple(metrics)
        self.sentence_scores = _check_bool(sentence_scores, "sentence_scores")
        self.causal_lm = _check_bool(causal_lm, "causal_lm")
        self.options = {name: dict(options.get(name, {})) for name in self.metrics}
        self._check_options()

    def _check_options(self) -> None:
        """Score a one-token example now, so bad options fail when the trainer is built, not after evaluation."""
        example = [[3, self.eos_ids[0] if self.eos_ids else 4]]
        self._score(*(clean_array(example, name, self.ignore_ids, self.eos_ids) for name in ("preds", "target")))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(metrics={self.metrics}, pad_id={self.pad_id}, eos_id={self.eos_ids}, "
            f"ignore_ids={self.ignore_ids}, sentence_scores={self.sentence_scores}, causal_lm={self.causal_lm}, "
            f"options={self.options})"
        )

    def __call__(self, eval_pred: Any, label_ids: Any = None) -> dict[str, float]:
        """Corpus scores (and mean sentence scores) of predicted token IDs against the labels.

        Args:
            eval_pred: a ``transformers.EvalPrediction`` (``predictions``, ``label_ids``), a
                ``(predictions, label_ids)`` pair, or the predictions themselves with ``label_ids`` given. If
                ``predictions`` is a tuple (a model with several outputs), its first item is used.
            label_ids: the labels, when ``eval_pred`` holds only the predictions.

        Returns:
            ``{name: corpus score}`` for each metric, plus ``{name + "_sentence_mean": ...}`` with
            ``sentence_scores=True``; the Trainer logs them with its ``eval_`` prefix.

        Raises:
            TypeError: float predictions (logits: generate, or use ``preprocess_logits_for_metrics``).
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
        if _is_float_array(predictions):
            raise TypeError(
                f"`predictions` must hold integer token IDs, got {predictions.dtype} values (logits?): generate "
                "token IDs (`predict_with_generate=True` in `Seq2SeqTrainingArguments`), or for a causal LM under "
                "`Trainer` pass `preprocess_logits_for_metrics=tensorbleu_metrics.integrations.transformers."
                "preprocess_logits_for_metrics` and build this with `causal_lm=True`."
            )
        preds = clean_array(predictions, "predictions", self.ignore_ids, self.eos_ids)
        target = clean_array(label_ids, "label_ids", self.ignore_ids, self.eos_ids)
        if preds.shape[0] != target.shape[0]:
            raise ValueError(
                f"`predictions` has {preds.shape[0]} rows but `label_ids` has {target.shape[0]}: they must match."
            )
        if self.causal_lm:
            preds, target = _causal_alignment(preds, target)
        return self._score(preds, target)

    def _score(self, preds: Tensor, target: Tensor) -> dict[str, float]:
        """Every metric on cleaned ``(N, L)`` predictions and labels."""
        out: dict[str, float] = {}
        for name in self.metrics:
            scores = REGISTRY[name].eval_set(preds, target, self.options[name], self.sentence_scores)
            out.update({key: float(value) for key, value in scores.items()})
        return out


def make_compute_metrics(
    *,
    pad_id: int,
    eos_id: int | Sequence[int] | None = None,
    metrics: Sequence[str] = ("bleu",),
    ignore_ids: int | Sequence[int] | None = None,
    sentence_scores: bool = False,
    causal_lm: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> ComputeMetrics:
    """A ``compute_metrics`` function for ``Trainer``/``Seq2SeqTrainer`` scoring predicted token IDs.

    Use it with ``Seq2SeqTrainingArguments(predict_with_generate=True)``: predictions are then token IDs, padded
    with ``-100`` between batches, and labels hold ``-100`` where the loss is masked and ``pad_id`` where the
    Trainer padded them to the generation length. Both are dropped, as are ``ignore_ids``; a sequence ends at
    its first ``eos_id``.

    For a causal LM under the plain ``Trainer`` (teacher-forced next-token predictions, no generation), pass
    ``preprocess_logits_for_metrics=preprocess_logits_for_metrics`` to the Trainer and ``causal_lm=True`` here.

    Args:
        pad_id: the tokenizer's ``pad_token_id`` (also T5's decoder start token, dropped with it). A Python or
            NumPy integer.
        eos_id: the ID (or IDs) ending a sequence; ``None`` when nothing follows the EOS but padding (EOS then
            only counts as a token if it is not in ``ignore_ids``).
        metrics: which scores: ``"bleu"``, ``"gleu"``, ``"chrf"`` (corpus scores, and sentence means on request;
            chrF on token IDs, each ID one symbol, ``char_order`` 6 unless ``options`` say otherwise),
            ``"rouge"`` (the mean F measure of each key: ``"rouge1"``, ``"rouge2"``, ``"rougeL"`` unless
            ``options={"rouge": {"rouge_keys": ...}}`` says otherwise), and the
            diversity of the predictions themselves, ``"self_bleu"`` (mean Self-BLEU of each prediction against
            all others) and ``"distinct"`` (distinct-n, key ``"distinct_<n>"``, ``n_gram`` 2 by default).
        ignore_ids: more IDs dropped wherever they stand, e.g. BART's ``bos_token_id`` and its decoder start
            (``eos_token_id``; then leave ``eos_id=None``).
        sentence_scores: also return the mean sentence score of each metric (``"<name>_sentence_mean"``).
        causal_lm: the predictions are a causal LM's argmax at every input position (from
            ``preprocess_logits_for_metrics``), aligned with the labels as the Trainer passes them (the
            inputs themselves, ``-100`` on the prompt and padding). Each row's prediction at position t is scored
            against its label at t + 1, and only positions whose label is a token (not ``-100``, ``pad_id`` or
            one of ``ignore_ids``) are kept: the completion is scored, the prompt and all padding (the batch's and
            the Trainer's between batches) never are. Then EOS ends a sequence as usual.
        options: per metric, options of its functional call, e.g. ``{"bleu": {"smoothing": "exp"}}`` (the
            same options serve the corpus and the sentence scores).

    Returns:
        A ``ComputeMetrics`` callable returning ``dict[str, float]``.

    Raises:
        ValueError, TypeError: unknown metric names, options that are not a mapping of keyword arguments per
            metric, options the functional API rejects (named).

    Example:
        >>> import numpy as np
        >>> compute_metrics = make_compute_metrics(pad_id=0, eos_id=1, sentence_scores=True)
        >>> predictions = np.array([[0, 5, 6, 7, 8, 1, 0], [0, 5, 6, 9, 1, -100, -100]])  # decoder start 0 first
        >>> label_ids = np.array([[5, 6, 7, 8, 1], [5, 6, 9, 8, 1]])
        >>> compute_metrics((predictions, label_ids))
        {'bleu': 0.8668..., 'bleu_sentence_mean': 0.5}

        A causal LM: labels are the inputs with ``-100`` on the prompt (here 7 7), predictions the argmax at each
        input position (the last, after EOS, is never scored):

        >>> causal = make_compute_metrics(pad_id=0, eos_id=1, causal_lm=True)
        >>> label_ids = np.array([[-100, -100, 5, 6, 7, 8, 1]])
        >>> predictions = np.array([[9, 5, 6, 7, 8, 1, 3]])
        >>> causal((predictions, label_ids))
        {'bleu': 1.0}
    """
    return ComputeMetrics(
        pad_id=pad_id,
        eos_id=eos_id,
        metrics=metrics,
        ignore_ids=ignore_ids,
        sentence_scores=sentence_scores,
        causal_lm=causal_lm,
        options=options,
    )
