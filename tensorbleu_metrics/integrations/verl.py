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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.integrations._convert import (
    EOS,
    SPECIAL_IDS,
    id_tuple,
    padded_array,
    reference_list,
    stack_padded,
)
from tensorbleu_metrics.integrations._registry import REGISTRY, SET_BY_LAYER, offering

__all__ = ["METRICS", "compute_score", "make_reward_manager"]

METRICS = offering("sub_scores")

# Options the metric functions take that the integration sets itself.
_RESERVED = (*SET_BY_LAYER, "validate", "dtype", "rouge_keys")

# Cached tokenised references per manager: a dataset has finitely many, but a cap keeps an endless stream bounded.
_CACHE_LIMIT = 1 << 16


class _Scorer:
    """One metric with fixed options: ``scorer(preds, refs)`` gives ``{"score": s, <metric>_<sub-score>: ...}``
    for one hypothesis, always with the same keys (``self.keys``).

    ``preds`` is a ``(1, L)`` int64 tensor and ``refs`` a ``(1, R, W)`` one from the special-ID layer (each row
    ending in ``EOS``, padded with ``PAD``); for chrF on text, a list of one str and a list of one list of str.
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
        self.sub_scores = REGISTRY[metric].sub_scores(options)
        self.keys = self.sub_scores.keys
        # a one-token example now, so that bad options fail when the manager is built, not at the first rollout
        if text:
            self(["a"], [["a"]])
        else:
            one = torch.tensor([[3, EOS]])
            self(one, one.unsqueeze(1))

    def __call__(self, preds: Any, refs: Any) -> dict[str, float]:
        ids = {**SPECIAL_IDS, "validate": False} if isinstance(preds, Tensor) else {}
        return self.sub_scores(preds, refs, ids)


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


def _stack(rows: list[np.ndarray]) -> Tensor:
    """Reference rows (each ending in ``EOS``) as one ``(1, R, W)`` tensor padded with ``PAD``."""
    return torch.from_numpy(stack_padded([row[None] for row in rows])[None])


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
        refs = reference_list(ground_truth, "reward_model.ground_truth")
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
    refs = reference_list(ground_truth, "reward_model.ground_truth")
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
