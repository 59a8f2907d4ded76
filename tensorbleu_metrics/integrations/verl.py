"""Rewards for verl's reward loop from the token-ID metrics: a reward manager on token IDs, and ``compute_score``.

Two routes, both configured through verl's config:

- ``TokenIDRewardManager``, a verl reward manager (a subclass of verl's ``RewardManagerBase``) that scores each
  trajectory's response token IDs against its ground truth with BLEU, GLEU, ROUGE or chrF, never decoding:

  ```text
  reward.reward_manager.source=importlib
  reward.reward_manager.name=TokenIDRewardManager
  reward.reward_manager.module.path=pkg://tensorbleu_metrics.integrations.verl
  +reward.reward_kwargs.metric=bleu
  ```

- ``compute_score``, verl's string route (``reward.custom_reward_function``): chrF of the decoded response
  against text references (SacreBLEU's), or a token metric through a tokenizer named in ``reward_kwargs``.

verl is imported only when the manager class is first asked for (``from tensorbleu_metrics.integrations.verl import
TokenIDRewardManager``, or verl's own ``getattr`` on this module), so importing this module needs no verl.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import (
    bleu_from_stats,
    bleu_stats,
    chrf_from_stats,
    chrf_stats,
    counted_orders,
    gleu_from_stats,
    gleu_stats,
    rouge_score,
)
from tensorbleu_metrics.functional._scoring import checked_weights
from tensorbleu_metrics.integrations._convert import EOS, PAD, id_tuple, padded_array
from tensorbleu_metrics.integrations.trl import _sentence_bleu_defaults

__all__ = ["METRICS", "compute_score", "make_reward_manager"]

METRICS = ("bleu", "gleu", "rouge", "chrf")

# Options the metric functions take that the integration sets itself.
_RESERVED = ("preds", "target", "pad_id", "eos_id", "validate", "dtype", "rouge_keys")

# Cached tokenised references per manager: a dataset has finitely many, but a cap keeps an endless stream bounded.
_CACHE_LIMIT = 1 << 16


class _Scorer:
    """One metric with fixed options: ``scorer(preds, refs)`` gives ``{"score": s, <metric>_<sub-score>: ...}``
    for one hypothesis, always with the same keys (``self.keys``).

    ``preds`` is a ``(1, L)`` int64 tensor and ``refs`` a ``(1, R, W)`` one, each row ending in ``EOS`` and padded
    with ``PAD`` (the integrations' private IDs); for chrF on text, a list of one str and a list of one list of str.
    """

    def __init__(self, metric: str, options: Mapping[str, Any], *, text: bool = False) -> None:
        if metric not in METRICS:
            raise ValueError(f"`metric` must be one of {list(METRICS)}, got {metric!r}.")
        options = dict(options)
        for key in _RESERVED:
            if key in options:
                raise ValueError(
                    f"`{key}` is set by the verl integration itself (responses are cut at their EOS and padding "
                    f"is dropped before scoring); remove it from the {metric} options."
                )
        self.metric = metric
        if metric == "bleu":
            options = _sentence_bleu_defaults(options)
            checked = checked_weights(
                options.get("n_gram"),
                options.get("weights"),
                options.get("smoothing", "none"),
                options.get("smooth_value"),
                options.get("effective_order", False),
                options.get("auto_reweigh", False),
            )
            if checked.several:
                raise ValueError("`weights`: a reward is one score per response; give one weight tuple, not a list.")
            self.order = checked.order
            self.counted = counted_orders(checked.order, options.get("smoothing", "none"))
            subs = [f"bleu_precision_{n}" for n in range(1, self.order + 1)]
            subs += ["bleu_brevity_penalty", "bleu_hyp_len", "bleu_ref_len"]
        elif metric == "gleu":
            subs = ["gleu_matches", "gleu_total"]
        elif metric == "chrf":
            self.beta = options.get("beta", 2)
            self.eps_smoothing = options.get("eps_smoothing", False)
            subs = ["chrf_precision", "chrf_recall"]
        else:
            self.rouge_key = options.pop("rouge_key", "rougeL")
            self.measure = options.pop("measure", "fmeasure")
            if not isinstance(self.rouge_key, str):
                raise TypeError(f"`rouge_key` must be one ROUGE key (a str such as 'rougeL'), got {self.rouge_key!r}.")
            if self.measure not in ("fmeasure", "precision", "recall"):
                raise ValueError(f"`measure` must be 'fmeasure', 'precision' or 'recall', got {self.measure!r}.")
            options["rouge_keys"] = self.rouge_key
            subs = [f"{self.rouge_key}_{m}" for m in ("precision", "recall", "fmeasure")]
        self.options = options
        self.keys = ("score", *subs)
        # a one-token example now, so that bad options fail when the manager is built, not at the first rollout
        if text:
            self(["a"], [["a"]])
        else:
            one = torch.tensor([[3, EOS]])
            self(one, one.unsqueeze(1))

    def _bleu_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k != "n_gram"} | {"n_gram": self.order}

    def __call__(self, preds: Any, refs: Any) -> dict[str, float]:
        ids = {"pad_id": PAD, "eos_id": EOS, "validate": False} if isinstance(preds, Tensor) else {}
        opts = self.options
        if self.metric == "bleu":
            stats = bleu_stats(preds, refs, n_gram=self.counted, **ids)
            score = float(bleu_from_stats(stats, **self._bleu_kwargs(), dtype=torch.float64)[0])
            matches, totals = stats.matches[0].tolist(), stats.totals[0].tolist()
            hyp, ref = int(stats.pred_len[0]), int(stats.ref_len[0])
            out = {"score": score}
            for n in range(self.order):
                out[f"bleu_precision_{n + 1}"] = matches[n] / totals[n] if totals[n] else 0.0
            # SacreBLEU's brevity penalty: 1 for a hypothesis at least as long as its reference, 0 for an empty one
            out["bleu_brevity_penalty"] = 1.0 if hyp >= ref else (math.exp(1 - ref / hyp) if hyp else 0.0)
            out["bleu_hyp_len"], out["bleu_ref_len"] = float(hyp), float(ref)
            return out
        if self.metric == "gleu":
            stats = gleu_stats(preds, refs, **opts, **ids)
            score = float(gleu_from_stats(stats, dtype=torch.float64)[0])
            return {"score": score, "gleu_matches": float(stats.matches[0]), "gleu_total": float(stats.n_all[0])}
        if self.metric == "chrf":
            stats = chrf_stats(preds, refs, **opts, **ids)
            score = float(
                chrf_from_stats(stats, beta=self.beta, eps_smoothing=self.eps_smoothing, dtype=torch.float64)[0]
            )
            precision, recall = _chrf_averages(stats.hyp[0].tolist(), stats.ref[0].tolist(), stats.matches[0].tolist())
            return {"score": score, "chrf_precision": precision, "chrf_recall": recall}
        scores = rouge_score(preds, refs, **opts, **ids, dtype=torch.float64)
        key = self.rouge_key
        out = {f"{key}_{m}": float(scores[f"{key}_{m}"][0]) for m in ("precision", "recall", "fmeasure")}
        return {"score": out[f"{key}_{self.measure}"], **out}


def _chrf_averages(hyp: list[int], ref: list[int], matches: list[int]) -> tuple[float, float]:
    """chrF's precision and recall: the per-order ones averaged over the orders both sides have n-grams of (the two
    numbers whose F-beta is SacreBLEU's chrF without ``eps_smoothing``)."""
    orders = [i for i in range(len(hyp)) if hyp[i] > 0 and ref[i] > 0]
    if not orders:
        return 0.0, 0.0
    precision = sum(matches[i] / hyp[i] for i in orders) / len(orders)
    recall = sum(matches[i] / ref[i] for i in orders) / len(orders)
    return precision, recall


def _plain(value: Any) -> Any:
    """An OmegaConf node (or anything else) as plain Python containers."""
    try:
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - verl always brings omegaconf
        return value
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _reward_kwargs(config: Any) -> dict[str, Any]:
    """``config.reward.reward_kwargs`` as a dict (empty when the config has none)."""
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = reward.get("reward_kwargs") if reward is not None and hasattr(reward, "get") else None
    kwargs = _plain(kwargs) or {}
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"`reward.reward_kwargs` must be a mapping of options, got {type(kwargs).__name__}.")
    return dict(kwargs)


def _references(value: Any) -> list[Any]:
    """A ground truth as a list of references, each a str or a token-ID list: one str, several str, one token-ID
    sequence, or several (lists, tuples, NumPy arrays as parquet columns give them, tensors)."""
    if isinstance(value, (np.ndarray, Tensor)):
        value = value.tolist()
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise TypeError(
            "`reward_model.ground_truth` must be a reference (a str or a list of token IDs) or a list of them, "
            f"got {type(value).__name__}."
        )
    if len(value) == 0:
        raise ValueError("`reward_model.ground_truth` is empty: give a reference (a str or a list of token IDs).")
    first = value[0]
    if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        return [list(value)]
    return [r.tolist() if isinstance(r, (np.ndarray, Tensor)) else r for r in value]


def _stack(rows: list[np.ndarray]) -> Tensor:
    """Reference rows (each ending in ``EOS``) as one ``(1, R, W)`` tensor padded with ``PAD``."""
    if len(rows) == 1:
        return torch.from_numpy(rows[0][None, None])
    out = np.full((1, len(rows), max(r.shape[0] for r in rows)), PAD, dtype=np.int64)
    for j, row in enumerate(rows):
        out[0, j, : row.shape[0]] = row
    return torch.from_numpy(out)


class _TokenIDCore:
    """What the manager does, without verl: options from ``reward_kwargs``, references as IDs (text tokenised once
    and cached), responses cut, scores. The manager class below adds verl's base class and ``run_single``."""

    def __init__(self, tokenizer: Any, reward_kwargs: Mapping[str, Any]) -> None:
        options = dict(reward_kwargs)
        metric = options.pop("metric", "bleu")
        eos = options.pop("eos_token_id", None)
        if eos is None and tokenizer is not None:
            eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_ids = id_tuple(eos, "eos_token_id")
        self.reference_prefix = options.pop("reference_prefix", "")
        if not isinstance(self.reference_prefix, str):
            raise TypeError(f"`reference_prefix` must be a str, got {self.reference_prefix!r}.")
        self.tokenizer = tokenizer
        self.scorer = _Scorer(metric, options)
        self._eos = np.asarray(self.eos_token_ids, dtype=np.int64)
        self._text: dict[str, np.ndarray] = {}  # text reference -> its IDs, then EOS
        self._refs: dict[Any, Tensor] = {}  # hashable ground truth -> the (1, R, W) reference tensor

    def reference(self, ground_truth: Any) -> Tensor:
        """The ``(1, R, W)`` reference tensor of a ground truth; text ones are tokenised once and cached."""
        key = ground_truth if isinstance(ground_truth, str) else None
        if key is not None and key in self._refs:
            return self._refs[key]
        refs = _references(ground_truth)
        rows = []
        for j, ref in enumerate(refs):
            if isinstance(ref, str):
                rows.append(self._encoded(ref))
            else:
                name = f"reward_model.ground_truth[{j}]" if len(refs) > 1 else "reward_model.ground_truth"
                rows.append(padded_array([ref], [name], self.eos_token_ids)[0])
        out = _stack(rows)
        if key is not None:
            if len(self._refs) >= _CACHE_LIMIT:
                self._refs.clear()
            self._refs[key] = out
        return out

    def _encoded(self, text: str) -> np.ndarray:
        row = self._text.get(text)
        if row is None:
            if self.tokenizer is None:
                raise ValueError("a text ground truth needs the manager's tokenizer, which verl did not pass.")
            ids = self.tokenizer(self.reference_prefix + text, add_special_tokens=False)["input_ids"]
            row = padded_array([list(ids)], ["reward_model.ground_truth"], self.eos_token_ids)[0]
            if len(self._text) >= _CACHE_LIMIT:
                self._text.clear()
            self._text[text] = row
        return row

    def response(self, ids: Tensor, valid: int) -> Tensor:
        """The ``(1, n + 1)`` hypothesis: the first ``valid`` IDs up to the first EOS, then ``EOS``."""
        row = ids[:valid].numpy()
        if self._eos.size:
            hits = (
                np.flatnonzero(np.isin(row, self._eos)) if self._eos.size > 1 else np.flatnonzero(row == self._eos[0])
            )
            if hits.size:
                row = row[: hits[0]]
        out = np.empty((1, row.shape[0] + 1), dtype=np.int64)
        out[0, :-1] = row
        out[0, -1] = EOS
        return torch.from_numpy(out)

    def score(self, data: Any) -> dict[str, Any]:
        """verl's ``run_single`` result for one trajectory (``DataProto``): its last row is the one scored."""
        responses = data.batch["responses"]
        if responses.dim() == 1:
            responses = responses.unsqueeze(0)
        width = responses.shape[-1]
        non_tensor = data.non_tensor_batch
        lengths = non_tensor.get("response_len")
        # the agent loop's own response lengths (a trajectory's rows are right-padded with 0, a real token), else the
        # trainer's batch layout, where the attention mask's response part marks the response's tokens
        valid = int(lengths[-1]) if lengths is not None else int(data.batch["attention_mask"][-1, -width:].sum())
        preds = self.response(responses[-1].cpu(), valid)
        ground_truth = non_tensor["reward_model"][-1]["ground_truth"]
        info = self.scorer(preds, self.reference(ground_truth))
        info["response_length"] = float(preds.shape[1] - 1)
        return {"reward_score": info["score"], "reward_extra_info": info}


_MANAGER_DOC = """A verl reward manager scoring response token IDs with a metric of the family, never decoding.

    verl builds it as it builds every manager (``cls(config=, tokenizer=, compute_score=, reward_router_address=,
    reward_model_tokenizer=)``) from ``reward.reward_manager.source=importlib``, ``name=TokenIDRewardManager``,
    ``module.path=pkg://tensorbleu_metrics.integrations.verl``. Options come from ``reward.reward_kwargs``:

    - ``metric``: ``"bleu"`` (default; SacreBLEU's sentence defaults, ``exp`` smoothing and effective order),
      ``"gleu"``, ``"rouge"`` (``rouge_key``, default ``"rougeL"``; ``measure``, default ``"fmeasure"``) or
      ``"chrf"`` (each token ID one symbol); every other key is an option of the metric's functional API
      (``n_gram``, ``smoothing``, ``max_len``, ``char_order``, ``beta``, ``accumulate``, ...).
    - ``eos_token_id``: one ID or several that end a response (default: the tokenizer's).
    - ``reference_prefix``: text put before a text ground truth when it is tokenised (default ``""``; ``" "`` for a
      byte-level BPE model continuing a plain-text prompt, whose first word carries a leading space).

    ``reward_model.ground_truth`` is a str (tokenised once with the tokenizer, no special tokens, cached), a list
    of token IDs, or a list of several references. Each trajectory's last row is scored, cut at its length
    (``response_len``, else the attention mask) and at its first EOS. ``run_single`` returns
    ``{"reward_score": float, "reward_extra_info": {"score", <the metric's sub-scores>, "response_length"}}``, the
    same keys for every sample.
    """


@functools.cache
def _manager_class() -> type:
    """The manager class, built on first use so that verl is imported only then."""
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

    class TokenIDRewardManager(RewardManagerBase):
        __doc__ = _MANAGER_DOC

        def __init__(
            self,
            config: Any,
            tokenizer: Any,
            compute_score: Any = None,
            reward_router_address: str | None = None,
            reward_model_tokenizer: Any = None,
        ) -> None:
            super().__init__(config, tokenizer, compute_score)
            self.reward_router_address = reward_router_address
            self.reward_model_tokenizer = reward_model_tokenizer
            self.core = _TokenIDCore(tokenizer, _reward_kwargs(config))

        async def run_single(self, data: Any) -> dict:
            # the scoring is one compiled call on small arrays: running it inline beats an executor round trip
            return self.core.score(data)

    TokenIDRewardManager.__module__ = __name__
    TokenIDRewardManager.__qualname__ = "TokenIDRewardManager"
    return TokenIDRewardManager


def make_reward_manager() -> type:
    """The ``TokenIDRewardManager`` class (imports verl); the same class as the module attribute."""
    return _manager_class()


def __getattr__(name: str) -> Any:
    # verl resolves `reward.reward_manager.name` with getattr on this module: the class is built then, with verl
    if name == "TokenIDRewardManager":
        return _manager_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=8)
def _tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


_text_scorers: dict[str, _Scorer] = {}


def _scorer_for(metric: str, options: dict[str, Any], text: bool) -> _Scorer:
    key = json.dumps([metric, options, text], sort_keys=True, default=repr)
    scorer = _text_scorers.get(key)
    if scorer is None:
        scorer = _text_scorers[key] = _Scorer(metric, options, text=text)
    return scorer


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """verl's string-route reward: the decoded response against its ground truth, as a dict with ``"score"``.

    Set ``reward.custom_reward_function.path=pkg://tensorbleu_metrics.integrations.verl`` (name
    ``compute_score``); ``reward.custom_reward_function.reward_kwargs`` reach it as keyword arguments:

    - ``metric``: ``"chrf"`` (default): SacreBLEU's sentence chrF of the text (``word_order=2``: chrF++) in [0, 1];
      ``"bleu"``, ``"gleu"`` or ``"rouge"``: on token IDs, both sides encoded (no special tokens) with the
      tokenizer named by ``tokenizer`` (a Hugging Face name or local directory, loaded once).
    - every other key is an option of the metric, as for ``TokenIDRewardManager``.

    ``ground_truth`` is a str or a list of str (several references). The result holds ``"score"`` and the metric's
    sub-scores, the same keys for every call with the same options.
    """
    options = dict(reward_kwargs)
    # keys verl adds for reward-model routes, which a metric does not use
    options.pop("reward_router_address", None)
    options.pop("reward_model_tokenizer", None)
    metric = options.pop("metric", "chrf")
    tokenizer_name = options.pop("tokenizer", None)
    refs = _references(ground_truth)
    if not isinstance(solution_str, str):
        raise TypeError(f"`solution_str` must be a str, got {type(solution_str).__name__}.")
    if metric == "chrf" and tokenizer_name is None:
        if not all(isinstance(r, str) for r in refs):
            raise TypeError("chrF on text needs text references; name a `tokenizer` to score token-ID ones.")
        return _scorer_for("chrf", options, True)([solution_str], [refs])
    if tokenizer_name is None:
        raise ValueError(
            f"`metric={metric!r}` scores token IDs: name the tokenizer in reward_kwargs (`tokenizer`, a Hugging "
            "Face name or directory), or use the TokenIDRewardManager, which scores the response IDs directly."
        )
    tokenizer = _tokenizer(str(tokenizer_name))
    scorer = _scorer_for(metric, options, False)
    encoded = tokenizer([solution_str, *[r for r in refs if isinstance(r, str)]], add_special_tokens=False)
    ids = iter(encoded["input_ids"])
    hyp = next(ids)
    rows = [padded_array([list(next(ids)) if isinstance(r, str) else r], ["ground_truth"], ())[0] for r in refs]
    preds = padded_array([list(hyp)], ["solution_str"], ())
    return scorer(torch.from_numpy(preds), _stack(rows))
