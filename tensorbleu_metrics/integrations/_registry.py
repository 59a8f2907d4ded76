"""The metrics the integrations offer, in one table: how each scores per sample, over an evaluation set and with
sub-scores, on arrays of the special-ID layer (``_convert``). TRL rewards, ``make_compute_metrics`` and verl read it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from tensorbleu_metrics.functional import (
    chrf_from_stats,
    chrf_stats,
    corpus_bleu,
    corpus_chrf,
    corpus_gleu,
    distinct_ngrams,
    gleu_from_stats,
    gleu_stats,
    rouge_score,
    self_bleu,
    sentence_bleu,
    sentence_chrf,
    sentence_gleu,
)
from tensorbleu_metrics.functional._counting import count_stats
from tensorbleu_metrics.functional._inputs import normalise_inputs, public_entry
from tensorbleu_metrics.functional._scoring import SACREBLEU_METHODS, bleu_options
from tensorbleu_metrics.integrations._convert import SPECIAL_IDS

# Arguments of the functional API that every integration sets itself (the arrays and the special-ID layer's IDs).
SET_BY_LAYER = ("preds", "target", "pad_id", "eos_id")
ROUGE_MEASURES = ("fmeasure", "precision", "recall")

# (B,) scores of cleaned (B, L) predictions against (B, R, W) references (or None) in groups (or None)
PerSample = Callable[[Tensor, "Tensor | None", "Tensor | None", Mapping[str, Any]], Tensor]
# named scalar scores of cleaned (N, L) predictions and (N, L') labels; the bool asks for sentence means too
EvalSet = Callable[[Tensor, Tensor, Mapping[str, Any], bool], dict[str, Tensor]]


class SubScores(Protocol):
    """One sample's score and the metric's sub-scores, always under the same ``keys`` (``"score"`` first)."""

    keys: tuple[str, ...]

    def __call__(self, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]: ...


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what each integration calls (``None`` where it does not offer the metric)."""

    per_sample: PerSample | None = None  # TRL rewards
    eval_set: EvalSet | None = None  # make_compute_metrics
    sub_scores: Callable[[dict[str, Any]], SubScores] | None = None  # verl: checked options -> scorer
    reward_defaults: Callable[[Mapping[str, Any]], dict[str, Any]] = dict  # a reward's options over the API's
    uses_reference: bool = True
    uses_groups: bool = False


def _with_ids(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` reading the special-ID layer's arrays: the one place the integrations pass ``pad_id``/``eos_id``."""
    return functools.partial(fn, **SPECIAL_IDS)


def sentence_bleu_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """SacreBLEU's sentence-level defaults (``exp`` smoothing, effective order): unsmoothed BLEU is 0 for most
    short completions, a flat reward. ``effective_order`` is SacreBLEU's option, so NLTK methods go without it."""
    smoothing = options.get("smoothing", "exp")
    effective = {"effective_order": True} if smoothing in SACREBLEU_METHODS else {}
    return {"smoothing": "exp", **effective, **options}


# ---- per sample (TRL rewards) ----


def _per_sample(fn: Callable[..., Tensor]) -> PerSample:
    scored = _with_ids(fn)
    return lambda preds, refs, groups, options: scored(preds, refs, **options)


def _rouge_per_sample(preds: Tensor, refs: Tensor | None, groups: Tensor | None, options: Mapping[str, Any]) -> Tensor:
    """One ROUGE key's precision, recall or F measure (the ``measure`` option) per completion."""
    options = dict(options)
    measure = options.pop("measure")
    return _with_ids(rouge_score)(preds, refs, **options)[f"{options['rouge_keys']}_{measure}"]


def _diversity_per_sample(
    preds: Tensor, refs: Tensor | None, groups: Tensor | None, options: Mapping[str, Any]
) -> Tensor:
    """1 - Self-BLEU: each completion against the other completions of its group; no reference needed."""
    return 1 - _with_ids(self_bleu)(preds, groups=groups, **options)


# ---- over an evaluation set (make_compute_metrics) ----


def _corpus_and_sentence(name: str, corpus: Callable[..., Tensor], sentence: Callable[..., Tensor]) -> EvalSet:
    """A metric with a corpus score and sentence scores: ``{name: corpus, name_sentence_mean: mean}``."""
    corpus, sentence = _with_ids(corpus), _with_ids(sentence)

    def scores(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
        out = {name: corpus(preds, target, **options)}
        if sentence_scores:
            out[f"{name}_sentence_mean"] = sentence(preds, target, **options).mean()
        return out

    return scores


def _rouge_eval_set(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """Mean F measure over the evaluation set of each ROUGE key (``rouge1``, ``rouge2``, ``rougeL`` by default)."""
    scores = _with_ids(rouge_score)(preds, target, **options)
    return {key.removesuffix("_fmeasure"): value.mean() for key, value in scores.items() if key.endswith("_fmeasure")}


def _self_bleu_eval_set(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """Self-BLEU of the whole evaluation set (each prediction against all the others); lower is more diverse."""
    return {"self_bleu": _with_ids(self_bleu)(preds, **options).mean()}


def _distinct_eval_set(preds: Tensor, target: Tensor, options: Mapping[str, Any], sentence_scores: bool = False):
    """distinct-n of the whole evaluation set (default n = 2)."""
    n = options.get("n_gram", 2)
    return {f"distinct_{n}": _with_ids(distinct_ngrams)(preds, **{"n_gram": n, **options})}


# ---- one sample with sub-scores (verl) ----


class _BLEUSubScores:
    """Sentence BLEU (SacreBLEU's sentence defaults), each order's precision, the brevity penalty and the lengths."""

    def __init__(self, options: dict[str, Any]) -> None:
        options = sentence_bleu_defaults(options)
        smoothing = options.get("smoothing", "none")
        checked = bleu_options(
            options.get("n_gram"),
            options.get("weights"),
            smoothing,
            options.get("smooth_value"),
            options.get("effective_order", False),
            options.get("auto_reweigh", False),
        )
        if checked.several:
            raise ValueError("`weights`: a reward is one score per response; give one weight tuple, not a list.")
        self.checked = checked
        self.order = checked.order
        subs = [f"bleu_precision_{n}" for n in range(1, self.order + 1)]
        self.keys = ("score", *subs, "bleu_brevity_penalty", "bleu_hyp_len", "bleu_ref_len")

    def __call__(self, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]:
        return _bleu_sample(self, preds, refs, ids)


@public_entry(engine_on_cpu=True)
def _bleu_sample(scorer: _BLEUSubScores, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]:
    """One sample's BLEU sub-scores in one public call (options checked once, plain floats out: nothing to copy)."""
    batch = normalise_inputs(preds, refs, ids.get("pad_id"), ids.get("eos_id"), ids.get("validate", True), layout=False)
    stats = count_stats(batch, scorer.checked.counted_orders)
    out = {"score": float(scorer.checked.score(stats, torch.float64)[0])}
    matches, totals = stats.matches[0].tolist(), stats.totals[0].tolist()
    hyp, ref = int(stats.pred_len[0]), int(stats.ref_len[0])
    for n in range(scorer.order):
        out[f"bleu_precision_{n + 1}"] = matches[n] / totals[n] if totals[n] else 0.0
    # SacreBLEU's brevity penalty: 1 for a hypothesis at least as long as its reference, 0 for an empty one
    out["bleu_brevity_penalty"] = 1.0 if hyp >= ref else (math.exp(1 - ref / hyp) if hyp else 0.0)
    out["bleu_hyp_len"], out["bleu_ref_len"] = float(hyp), float(ref)
    return out


class _GLEUSubScores:
    keys = ("score", "gleu_matches", "gleu_total")

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]:
        stats = gleu_stats(preds, refs, **self.options, **ids)
        score = float(gleu_from_stats(stats, dtype=torch.float64)[0])
        return {"score": score, "gleu_matches": float(stats.matches[0]), "gleu_total": float(stats.n_all[0])}


class _ChrFSubScores:
    keys = ("score", "chrf_precision", "chrf_recall")

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.beta = options.get("beta", 2)
        self.eps_smoothing = options.get("eps_smoothing", False)

    def __call__(self, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]:
        stats = chrf_stats(preds, refs, **self.options, **ids)
        score = chrf_from_stats(stats, beta=self.beta, eps_smoothing=self.eps_smoothing, dtype=torch.float64)
        precision, recall = _chrf_averages(stats.hyp[0].tolist(), stats.ref[0].tolist(), stats.matches[0].tolist())
        return {"score": float(score[0]), "chrf_precision": precision, "chrf_recall": recall}


def _chrf_averages(hyp: list[int], ref: list[int], matches: list[int]) -> tuple[float, float]:
    """chrF's precision and recall: the per-order ones averaged over the orders both sides have n-grams of (the two
    numbers whose F-beta is SacreBLEU's chrF without ``eps_smoothing``)."""
    orders = [i for i in range(len(hyp)) if hyp[i] > 0 and ref[i] > 0]
    if not orders:
        return 0.0, 0.0
    precision = sum(matches[i] / hyp[i] for i in orders) / len(orders)
    recall = sum(matches[i] / ref[i] for i in orders) / len(orders)
    return precision, recall


class _ROUGESubScores:
    """One ROUGE key (``rouge_key``, default ``rougeL``) as the score (its ``measure``), with its three measures."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.rouge_key = options.pop("rouge_key", "rougeL")
        self.measure = options.pop("measure", "fmeasure")
        if not isinstance(self.rouge_key, str):
            raise TypeError(f"`rouge_key` must be one ROUGE key (a str such as 'rougeL'), got {self.rouge_key!r}.")
        if self.measure not in ROUGE_MEASURES:
            raise ValueError(f"`measure` must be 'fmeasure', 'precision' or 'recall', got {self.measure!r}.")
        self.options = {**options, "rouge_keys": self.rouge_key}
        self.keys = ("score", *(f"{self.rouge_key}_{m}" for m in ("precision", "recall", "fmeasure")))

    def __call__(self, preds: Any, refs: Any, ids: Mapping[str, Any]) -> dict[str, float]:
        scores = rouge_score(preds, refs, **self.options, **ids, dtype=torch.float64)
        out = {key: float(scores[key][0]) for key in self.keys[1:]}
        return {"score": out[f"{self.rouge_key}_{self.measure}"], **out}


# One entry per metric; a new metric is one entry here (and a factory in the integration that offers it).
REGISTRY: dict[str, MetricSpec] = {
    "bleu": MetricSpec(
        per_sample=_per_sample(sentence_bleu),
        eval_set=_corpus_and_sentence("bleu", corpus_bleu, sentence_bleu),
        sub_scores=_BLEUSubScores,
        reward_defaults=sentence_bleu_defaults,
    ),
    "gleu": MetricSpec(
        per_sample=_per_sample(sentence_gleu),
        eval_set=_corpus_and_sentence("gleu", corpus_gleu, sentence_gleu),
        sub_scores=_GLEUSubScores,
    ),
    "rouge": MetricSpec(per_sample=_rouge_per_sample, eval_set=_rouge_eval_set, sub_scores=_ROUGESubScores),
    "chrf": MetricSpec(
        per_sample=_per_sample(sentence_chrf),
        eval_set=_corpus_and_sentence("chrf", corpus_chrf, sentence_chrf),
        sub_scores=_ChrFSubScores,
    ),
    "self_bleu": MetricSpec(eval_set=_self_bleu_eval_set, uses_reference=False),
    "distinct": MetricSpec(eval_set=_distinct_eval_set, uses_reference=False),
    # TRL's diversity bonus: 1 - Self-BLEU within the completions of one prompt
    "diversity": MetricSpec(per_sample=_diversity_per_sample, uses_reference=False, uses_groups=True),
}


def offering(role: str) -> tuple[str, ...]:
    """The names of the metrics with a ``role`` (``"per_sample"``, ``"eval_set"``, ``"sub_scores"``), in table
    order."""
    return tuple(name for name, spec in REGISTRY.items() if getattr(spec, role) is not None)
