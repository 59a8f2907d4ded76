"""Reward functions for TRL's ``GRPOTrainer`` (and trainers that call rewards the same way) from the token-ID metrics.

Each reward translates TRL's calling convention (``completion_ids`` lists, dataset columns as keyword arguments)
into one batched call of ``tensorbleu_metrics.functional``; TRL itself is never imported.
"""

from __future__ import annotations

import json
import numbers
import struct
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import sentence_chrf
from tensorbleu_metrics.functional._engine import kernels
from tensorbleu_metrics.functional._inputs import check_int
from tensorbleu_metrics.integrations._convert import (
    EOS,
    PAD,
    _check_no_negative,
    _lists_to_padded,
    id_tuple,
    padded_array,
    reference_list,
    stack_padded,
)
from tensorbleu_metrics.integrations._registry import REGISTRY, ROUGE_MEASURES, SET_BY_LAYER, offering

__all__ = [
    "RepetitionPenaltyReward",
    "TextReward",
    "TokenIDReward",
    "bleu_reward",
    "chrf_reward",
    "diversity_reward",
    "gleu_reward",
    "repetition_penalty_reward",
    "rouge_reward",
]

# Options the reward sets itself: the caller's ID conventions go through the special-ID layer, groups are prompts.
_RESERVED = (*SET_BY_LAYER, "groups")
# the metrics offered as rewards on token IDs
_REWARDS = offering("per_sample")


def _reserved_message(key: str) -> str:
    """Why a functional-API option cannot be given to a reward, and what the reward takes instead."""
    if key == "eos_id":
        return (
            "`eos_id` is the functional API's name for the end-of-sequence ID; the rewards take `eos_token_id` "
            "(one ID or several, e.g. `eos_token_id=2`) or a `tokenizer` with an `eos_token_id`."
        )
    if key == "pad_id":
        return (
            "`pad_id` is not needed: completions and references are lists, which the reward pads itself; use "
            "`eos_token_id` to say which IDs end a sequence."
        )
    return (
        f"`{key}` is set by the reward itself (completion and reference IDs are cleaned before scoring, groups are "
        "the completions of one prompt); use `eos_token_id` to say which IDs end a sequence."
    )


# TRL's own keyword arguments, which are not dataset columns.
_TRL_ARGS = ("trainer_state", "log_extra", "log_metric", "environments")


def _reference_rows(columns: Mapping[str, Any], column: str, batch: int, reward: str) -> Sequence[Any]:
    """The reference column of a reward call, one value per completion, or a ``ValueError`` saying what is wrong."""
    if column not in columns:
        given = sorted(k for k in columns if k not in _TRL_ARGS)
        raise ValueError(
            f"the {reward!r} reward reads references from the dataset column `{column}`, which the "
            f"trainer did not pass (columns passed: {given}); set `reference_column`."
        )
    rows = columns[column]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) != batch:
        got = f"{len(rows)} values" if isinstance(rows, Sequence) else type(rows).__name__
        raise ValueError(f"column `{column}` must hold one value per completion ({batch}), got {got}.")
    return rows


def _prompt_keys(prompts: Sequence[Any] | None, batch: int) -> list[str]:
    """One hashable key per completion: completions of equal prompts share one, wherever they stand in the batch."""
    if prompts is None or isinstance(prompts, (str, bytes)) or len(prompts) != batch:
        got = "none" if prompts is None else f"{len(prompts)} values"
        raise ValueError(f"`prompts` must hold one prompt per completion ({batch}) to group them, got {got}.")
    # Conversational prompts are lists of dicts: a canonical JSON text makes them hashable.
    return [p if isinstance(p, str) else json.dumps(p, sort_keys=True, default=str) for p in prompts]


def _group_ids(keys: Sequence[str]) -> Tensor:
    """One group id per completion, numbered by first appearance of its prompt's key."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(k, len(ids)) for k in keys], dtype=torch.int64)


def _world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group; ``(0, 1)`` when ``torch.distributed`` is not in use."""
    dist = torch.distributed
    if not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` that can hold tensors in this process, or an error naming ``device``."""
    if device is None:
        return torch.device("cpu")
    try:
        out = torch.device(device)
    except (TypeError, RuntimeError) as err:
        raise (TypeError if isinstance(err, TypeError) else ValueError)(
            f"`device` must name a torch device (e.g. 'cpu', 'cuda', model.device), got {device!r}."
        ) from err
    if out.type == "meta":
        raise ValueError("`device` 'meta' holds no values: scores need a real device such as 'cpu' or 'cuda'.")
    try:
        torch.empty(0, device=out)  # the first allocation is where a missing backend or GPU shows
    except (AssertionError, RuntimeError, NotImplementedError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"`device` {device!r} cannot be used in this process ({first_line}).") from err
    return out


class TokenIDReward:
    """A reward function for ``GRPOTrainer(reward_funcs=[...])``: one metric of each completion's token IDs.

    Build it with a factory such as ``bleu_reward``. Called as TRL calls reward functions
    (``reward(prompts=..., completions=..., completion_ids=..., **columns)``), it returns one float per completion.
    Instances are picklable; ``__name__`` is the name TRL logs the reward under (``rewards/<name>/mean``).
    """

    def __init__(
        self,
        metric: str,
        *,
        reference_column: str | None,
        tokenizer: Any = None,
        eos_token_id: int | Sequence[int] | None = None,
        device: str | torch.device | None = None,
        name: str | None = None,
        reference_prefix: str | None = None,
        gather_groups: bool = True,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if metric not in _REWARDS:
            raise ValueError(f"`metric` must be one of {sorted(_REWARDS)}, got {metric!r}.")
        spec = REGISTRY[metric]
        for key in _RESERVED:  # before the EOS check, whose message would hide a misnamed option
            if options and key in options:
                raise ValueError(_reserved_message(key))
        if spec.uses_reference and (not isinstance(reference_column, str) or not reference_column):
            raise TypeError(f"`reference_column` must be a column name (a non-empty str), got {reference_column!r}.")
        if reference_prefix is not None and not isinstance(reference_prefix, str):
            raise TypeError(f"`reference_prefix` must be a str or None (chosen per row), got {reference_prefix!r}.")
        if not isinstance(gather_groups, bool):
            raise TypeError(f"`gather_groups` must be a bool, got {gather_groups!r}.")
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None)
        if eos_token_id is None:
            raise ValueError(
                "`eos_token_id` is needed (or a `tokenizer` with an `eos_token_id`): TRL keeps the EOS token in "
                "`completion_ids`, and it must not count as a token. Pass `eos_token_id=()` if there is none."
            )
        self.metric = metric
        self.reference_column = reference_column if spec.uses_reference else None
        self.tokenizer = tokenizer
        self.eos_token_ids = id_tuple(eos_token_id, "eos_token_id")
        self.device = _check_device(device)
        self.reference_prefix = reference_prefix
        self.gather_groups = gather_groups
        self.options = spec.reward_defaults(dict(options or {}))
        self.__name__ = metric if name is None else name
        if not isinstance(self.__name__, str) or not self.__name__:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}.")
        self._encoded: dict[str, tuple[int, ...]] = {}
        self._word_start: str | None = None  # the tokenizer's word-start prefix, probed at the first text reference
        self._check_options()

    def _check_options(self) -> None:
        """Score a one-token example now, so bad options fail when the reward is built, not at training step 1."""
        preds = torch.tensor([[3, EOS]], device=self.device)
        out = self._score(preds, preds.unsqueeze(1), torch.zeros(1, dtype=torch.int64, device=self.device))
        if out.shape != (1,):
            raise ValueError(
                f"the {self.metric} options {self.options} give scores of shape {tuple(out.shape)} per batch of 1: "
                "a reward needs one score per completion (e.g. one weight tuple, not a list)."
            )

    def _score(self, preds: Tensor, refs: Tensor | None, groups: Tensor | None) -> Tensor:
        return REGISTRY[self.metric].per_sample(preds, refs, groups, self.options)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # TRL's asynchronous GRPO unpickles rewards in a child with CUDA_VISIBLE_DEVICES="": a reward built for a
        # GPU scores there on the CPU (the same values) instead of failing at its first call
        try:
            _check_device(self.device)
        except ValueError as err:
            warnings.warn(
                f"the {self.__name__!r} reward was built for device {str(self.device)!r}, which this process "
                f"cannot use ({str(err.__cause__ or err).strip().splitlines()[0]}): it scores on the CPU.",
                UserWarning,
                stacklevel=2,
            )
            self.device = torch.device("cpu")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(metric={self.metric!r}, name={self.__name__!r}, "
            f"reference_column={self.reference_column!r}, eos_token_id={self.eos_token_ids}, "
            f"device={str(self.device)!r}, reference_prefix={self.reference_prefix!r}, options={self.options})"
        )

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """Score a batch of completions.

        Args:
            prompts: one prompt per completion (text or a conversation); completions of the same prompt form a
                group for the diversity rewards, and a text prompt's end decides the automatic reference prefix.
            completions: the decoded completions (unused: scores are computed on ``completion_ids``).
            completion_ids: one list of token IDs per completion, as TRL passes them (cut after the first EOS,
                the EOS kept; no EOS when the length limit was hit).
            **kwargs: the dataset's other columns, one value per completion (the reference column among them),
                and TRL's ``trainer_state``, ``log_extra``, ``log_metric``, which are ignored.

        Returns:
            One float per completion, in order.

        Raises:
            ValueError: ``completion_ids`` missing, the reference column missing or of the wrong length, an empty
                list of references, negative token IDs, string references without a ``tokenizer``.
            TypeError: token IDs that are not ints, references that are neither strings nor token-ID lists.
            RuntimeError: with ``torch.distributed`` in use, a group reward that failed on another rank.
        """
        if REGISTRY[self.metric].uses_groups and self.gather_groups:
            rank, world = _world()
            if world > 1:
                return self._gathered(rank, world, prompts, completion_ids, kwargs)
        preds, refs, keys = self._local_arrays(prompts, completion_ids, kwargs)
        if len(preds) == 0:
            return []
        return self._score_arrays(preds, refs, keys).tolist()

    def _local_arrays(
        self, prompts: Sequence[Any] | None, completion_ids: Any, columns: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        """This call's completions ``(B, W)``, references ``(B, R, W')`` (or None) and prompt keys (or None)."""
        if completion_ids is None:
            raise ValueError(
                f"the {self.__name__!r} reward needs `completion_ids` (the completions' token IDs), which "
                "GRPOTrainer passes; got none."
            )
        if isinstance(completion_ids, (str, bytes)) or not isinstance(completion_ids, Sequence):
            raise TypeError(f"`completion_ids` must be a list of token-ID lists, got {type(completion_ids).__name__}.")
        batch = len(completion_ids)
        spec = REGISTRY[self.metric]
        keys = _prompt_keys(prompts, batch) if spec.uses_groups else None
        if batch == 0:
            refs = np.full((0, 1, 1), PAD, dtype=np.int64) if self.reference_column is not None else None
            return np.full((0, 1), PAD, dtype=np.int64), refs, keys
        names = [f"completion_ids[{i}]" for i in range(batch)]
        preds = padded_array(completion_ids, names, self.eos_token_ids)
        refs = None if self.reference_column is None else self._references(columns, batch, prompts)
        return preds, refs, keys

    def _score_arrays(self, preds: np.ndarray, refs: np.ndarray | None, keys: list[str] | None) -> Tensor:
        """The scores of whole arrays, computed on ``self.device``."""
        groups = None if keys is None else _group_ids(keys).to(self.device)
        ref_t = None if refs is None else torch.from_numpy(refs).to(self.device)
        return self._score(torch.from_numpy(preds).to(self.device), ref_t, groups)

    def _gathered(
        self, rank: int, world: int, prompts: Sequence[Any] | None, completion_ids: Any, columns: Mapping[str, Any]
    ) -> list[float]:
        """A group reward under ``torch.distributed``: TRL spreads the completions of one prompt over the ranks, so
        every rank gathers all of them, scores the whole batch (as one process would) and keeps its own rows."""
        try:
            payload: Any = self._local_arrays(prompts, completion_ids, columns)
            error: Exception | None = None
        except Exception as err:  # every rank must still join the gather, or the others would wait forever
            payload, error = f"{type(err).__name__}: {err}", err
        parts: list[Any] = [None] * world
        torch.distributed.all_gather_object(parts, payload)
        failed = [r for r, part in enumerate(parts) if isinstance(part, str)]
        if error is not None:
            raise error
        if failed:
            raise RuntimeError(f"the {self.__name__!r} reward failed on rank {failed[0]}: {parts[failed[0]]}")
        sizes = [len(part[0]) for part in parts]
        if sum(sizes) == 0:
            return []
        preds = stack_padded([part[0] for part in parts])
        refs = None if parts[0][1] is None else stack_padded([part[1] for part in parts])
        keys = None if parts[0][2] is None else [k for part in parts for k in part[2]]
        start = sum(sizes[:rank])
        return self._score_arrays(preds, refs, keys)[start : start + sizes[rank]].tolist()

    def _references(self, columns: Mapping[str, Any], batch: int, prompts: Sequence[Any] | None) -> np.ndarray:
        """The reference column as a ``(B, R, W)`` array: text encoded once (cached), several references allowed."""
        column = self.reference_column
        rows = _reference_rows(columns, column, batch, self.__name__)
        per_row = [reference_list(value, f"{column}[{i}]") for i, value in enumerate(rows)]
        if any(isinstance(r, str) for refs in per_row for r in refs):
            prefixes = self._prefixes(prompts, batch, column)
            per_row = [
                [self._prefixed(prefix, r) if isinstance(r, str) else r for r in refs]
                for prefix, refs in zip(prefixes, per_row, strict=True)
            ]
            self._encode_new([r for refs in per_row for r in refs if isinstance(r, str)], column)
        seqs: list[Any] = []
        names: list[str] = []
        owners: list[int] = []
        slots: list[int] = []
        for i, refs in enumerate(per_row):
            for j, ref in enumerate(refs):
                seqs.append(self._encoded[ref] if isinstance(ref, str) else ref)
                names.append(f"{column}[{i}][{j}]" if len(refs) > 1 else f"{column}[{i}]")
                owners.append(i)
                slots.append(j)
        flat = padded_array(seqs, names, self.eos_token_ids)
        n_refs = max(slots) + 1
        if n_refs == 1:
            return flat[:, None]  # one reference per row (the common case): nothing to place
        out = np.full((batch, n_refs, flat.shape[1]), PAD, dtype=np.int64)
        out[owners, slots] = flat
        return out

    @staticmethod
    def _prefixed(prefix: str, text: str) -> str:
        """The text the tokenizer encodes: a reference that starts with whitespace already has its word start."""
        return text if not prefix or text[:1].isspace() else prefix + text

    def _prefixes(self, prompts: Sequence[Any] | None, batch: int, column: str) -> list[str]:
        """The text put before each row's string references.

        An explicit ``reference_prefix`` serves every row. Otherwise a completion is encoded as the model emits it:
        after a text prompt that does not end in whitespace its first word carries the tokenizer's word-start
        marker (a leading space for byte-level BPE); after a conversation (the chat template ends the prompt with a
        new line or a special token), after whitespace, or from the start of the text, it does not.
        """
        if self.reference_prefix is not None:
            return [self.reference_prefix] * batch
        word_start = self._tokenizer_word_start(column)
        if not word_start:
            return [""] * batch
        if prompts is None or isinstance(prompts, (str, bytes)) or len(prompts) != batch:
            return [word_start] * batch  # no prompts to read: assume completions continue a text prompt
        return [word_start if isinstance(p, str) and p and not p[-1].isspace() else "" for p in prompts]

    def _tokenizer_word_start(self, column: str) -> str:
        """``" "`` when the tokenizer encodes a word inside a text as it encodes that word after a space at the
        start of a text (byte-level BPE: "a b" ends in "Ġb", "b" alone is "b"), ``""`` when a word encodes alike
        wherever it stands (SentencePiece, word-level); probed once with the tokenizer itself."""
        if self._word_start is not None:
            return self._word_start
        if self.tokenizer is None:
            self._missing_tokenizer(column)
        both, first, alone, spaced = (
            list(ids) for ids in self.tokenizer(["a b", "a", "b", " b"], add_special_tokens=False)["input_ids"]
        )
        tail = both[len(first) :] if both[: len(first)] == first else None
        if tail == alone:
            self._word_start = ""
        elif tail == spaced:
            self._word_start = " "
        else:
            self._word_start = ""
            warnings.warn(
                f"the {self.__name__!r} reward cannot tell how this tokenizer encodes a word inside a text ('a b' "
                "does not end in the IDs of 'b' or ' b'): text references are encoded as they are, which may not "
                "match the completions' tokens. Pass `reference_prefix` (e.g. ' ') or token-ID references.",
                UserWarning,
                stacklevel=6,
            )
        return self._word_start

    def _missing_tokenizer(self, column: str) -> None:
        raise ValueError(
            f"column `{column}` holds text references: pass the `tokenizer` that produced the completions "
            "(or store token-ID lists in the column)."
        )

    def _encode_new(self, texts: list[str], column: str) -> None:
        """Tokenize the texts (their prefix included) not seen before in one call, without special tokens, and keep
        their IDs."""
        new = list(dict.fromkeys(t for t in texts if t not in self._encoded))
        if not new:
            return
        if self.tokenizer is None:
            self._missing_tokenizer(column)
        encoded = self.tokenizer(new, add_special_tokens=False)["input_ids"]
        for text, ids in zip(new, encoded, strict=True):
            self._encoded[text] = tuple(ids)


def bleu_reward(
    reference_column: str = "reference",
    *,
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    device: str | torch.device | None = None,
    name: str = "bleu",
    reference_prefix: str | None = None,
    **bleu_options: Any,
) -> TokenIDReward:
    """Sentence BLEU of each completion's token IDs against the references in a dataset column, as a GRPO reward.

    Args:
        reference_column: the dataset column holding the references: a token-ID list (used as it is), a string
            (encoded once with ``tokenizer``, without special tokens, and cached), or a list of either for several
            references.
        tokenizer: the tokenizer of the policy; needed for string references. Its ``eos_token_id`` is the default
            end of sequence.
        eos_token_id: the ID (or IDs) ending a sequence; TRL keeps it in ``completion_ids``, so it is stripped (with
            anything after it, in completions and references alike). TRL stops at the tokenizer's EOS and at
            those of ``model.generation_config.eos_token_id``: pass them all when they differ. ``()`` for none.
        device: where the scores are computed (``"cpu"`` by default; e.g. ``model.device``).
        name: the reward's ``__name__``, which TRL logs as ``rewards/<name>/mean``.
        reference_prefix: text put before each string reference before encoding, so that it encodes as the
            completion does. ``None`` (default) chooses per row: the tokenizer's word-start marker (``" "`` for
            byte-level BPE such as GPT-2, Llama 3 or Qwen, found once by encoding a probe text both ways) after a
            text prompt that does not end in whitespace, where a model's first word carries it; ``""`` after a
            conversation (the chat template ends the prompt on a new line or a special token), after whitespace,
            and for tokenizers that encode a word alike wherever it stands (SentencePiece, word-level). A perfect
            completion then scores 1.0. A str serves every row as it is.
        **bleu_options: options of ``tensorbleu_metrics.functional.sentence_bleu`` (``n_gram``, ``weights``,
            ``smoothing``, ``smooth_value``, ``effective_order``, ``auto_reweigh``, ``dtype``).

    Defaults: the reward uses ``smoothing="exp"`` and, with SacreBLEU's smoothing methods,
    ``effective_order=True`` (SacreBLEU's sentence BLEU), since unsmoothed BLEU is 0 for most short completions.
    ``make_compute_metrics(sentence_scores=True)`` in ``tensorbleu_metrics.integrations.transformers`` keeps
    ``tensorbleu_metrics.functional.sentence_bleu``'s own default, no smoothing (``smoothing="none"``), unless
    its ``options`` say otherwise.

    Returns:
        A ``TokenIDReward`` for ``GRPOTrainer(reward_funcs=[...])``.

    Raises:
        ValueError, TypeError: no EOS ID known, an ``eos_token_id`` outside the int64 range, a ``device`` this
            process cannot use, or options the functional API rejects (each named).

    Example:
        >>> reward = bleu_reward(eos_token_id=2)
        >>> reward(
        ...     prompts=["p", "p"],
        ...     completions=["a b c d", "a b x"],
        ...     completion_ids=[[5, 6, 7, 8, 2], [5, 6, 9]],  # the first ended with EOS (2), the second was cut
        ...     reference=[[5, 6, 7, 8], [5, 6, 7, 8]],
        ...     trainer_state=None,
        ... )
        [1.0, 0.3943...]
    """
    return TokenIDReward(
        "bleu",
        reference_column=reference_column,
        tokenizer=tokenizer,
        eos_token_id=eos_token_id,
        device=device,
        name=name,
        reference_prefix=reference_prefix,
        options=bleu_options,
    )


def gleu_reward(
    reference_column: str = "reference",
    *,
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    device: str | torch.device | None = None,
    name: str = "gleu",
    reference_prefix: str | None = None,
    **gleu_options: Any,
) -> TokenIDReward:
    """Sentence GLEU (NLTK's ``sentence_gleu``) of each completion's token IDs against a dataset column.

    GLEU needs no smoothing and penalises completions that are too long as well as too short: a common per-sentence
    RL reward. Takes the arguments of ``bleu_reward``; ``**gleu_options`` go to
    ``tensorbleu_metrics.functional.sentence_gleu`` (``min_len``, ``max_len``, ``dtype``).

    Example:
        >>> reward = gleu_reward("answer", eos_token_id=2)
        >>> reward(prompts=["p", "p"], completions=None, completion_ids=[[5, 6, 7, 2], [5, 6]], answer=[[5, 6, 7]] * 2)
        [1.0, 0.5]
    """
    return TokenIDReward(
        "gleu",
        reference_column=reference_column,
        tokenizer=tokenizer,
        eos_token_id=eos_token_id,
        device=device,
        name=name,
        reference_prefix=reference_prefix,
        options=gleu_options,
    )


def rouge_reward(
    reference_column: str = "reference",
    *,
    rouge_key: str = "rougeL",
    measure: str = "fmeasure",
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    device: str | torch.device | None = None,
    name: str | None = None,
    reference_prefix: str | None = None,
    **rouge_options: Any,
) -> TokenIDReward:
    """One ROUGE score (Google's ``rouge_score`` semantics) of each completion's token IDs against a dataset column.

    Takes the arguments of ``bleu_reward``, and:

    Args:
        rouge_key: which ROUGE: ``"rouge1"`` .. ``"rouge9"``, ``"rougeL"``, ``"rougeLsum"`` (needs ``sep_id``).
        measure: ``"fmeasure"``, ``"precision"`` or ``"recall"``.
        name: the reward's ``__name__``; default ``rouge_key``.
        **rouge_options: options of ``tensorbleu_metrics.functional.rouge_score`` (``accumulate`` over
            several references, ``sep_id``, ``dtype``); ``sep_id`` must be a token ID other than the EOS IDs.

    Example:
        >>> reward = rouge_reward(eos_token_id=2)
        >>> reward(prompts=None, completions=None, completion_ids=[[5, 6, 7, 8, 2], [5, 7]], reference=[[5, 6, 8]] * 2)
        [0.857..., 0.4...]
    """
    if not isinstance(rouge_key, str):
        raise TypeError(f"`rouge_key` must be one ROUGE key (a str such as 'rougeL'), got {rouge_key!r}.")
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"`measure` must be 'fmeasure', 'precision' or 'recall', got {measure!r}.")
    if "rouge_keys" in rouge_options:
        raise ValueError("`rouge_keys`: a reward is one score per completion; name one key with `rouge_key`.")
    sep_id = check_int(rouge_options.get("sep_id"), "sep_id", minimum=0, allow_none=True, what=" (a token ID)")
    if sep_id is not None:
        rouge_options["sep_id"] = sep_id
        eos_ids = id_tuple(
            getattr(tokenizer, "eos_token_id", None) if eos_token_id is None else eos_token_id, "eos_token_id"
        )
        if sep_id in eos_ids:
            raise ValueError(
                f"`sep_id` ({sep_id}) is also an `eos_token_id`: the reward ends every sequence at its EOS, so no "
                "sentence break would be left; pass the ID of the token between sentences (e.g. a newline's)."
            )
    return TokenIDReward(
        "rouge",
        reference_column=reference_column,
        tokenizer=tokenizer,
        eos_token_id=eos_token_id,
        device=device,
        name=rouge_key if name is None else name,
        reference_prefix=reference_prefix,
        options={"rouge_keys": rouge_key, "measure": measure, **rouge_options},
    )


def diversity_reward(
    *,
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    device: str | torch.device | None = None,
    name: str = "diversity",
    gather_groups: bool = True,
    **self_bleu_options: Any,
) -> TokenIDReward:
    """1 - Self-BLEU of each completion against the *other* completions of the same prompt: a diversity bonus.

    Completions are grouped by equal ``prompts`` (not by position, so any batch order works); all groups are scored
    in one ``tensorbleu_metrics.functional.self_bleu`` call. A completion that is a copy of another in its group
    gets 0, one sharing no n-gram with the others about 1; a completion alone in its group gets 1. Weigh it against
    the main reward with ``GRPOConfig.reward_weights``.

    Several processes: TRL's sampler spreads the ``num_generations`` completions of one prompt over the processes
    and calls the reward on each process's slice. When ``torch.distributed`` is initialised with more than one
    process, the reward gathers every process's completions and prompts (``all_gather_object``; local batches may
    differ in size, even be empty), scores the whole batch and returns the local values: exactly what one process
    scoring all completions gives. Every process must then call it at the same time, as ``GRPOTrainer`` does; pass
    ``gather_groups=False`` to score each call on its own (e.g. a call on one process only). Groups are equal
    prompts: TRL's groups are runs of ``num_generations`` completions of one dataset row, so two rows with the same
    prompt form one larger group here.

    Args:
        tokenizer: only for its ``eos_token_id``.
        eos_token_id: the ID (or IDs) ending a completion, stripped as in ``bleu_reward``.
        device: where the scores are computed.
        name: the reward's ``__name__`` (logged as ``rewards/<name>/mean``).
        gather_groups: with ``torch.distributed`` in use, score the completions of all processes together (see
            above); ``False``: only the completions of each call.
        **self_bleu_options: options of ``tensorbleu_metrics.functional.self_bleu`` (default
            ``smoothing="method1"``, the usual Self-BLEU).

    Example:
        >>> reward = diversity_reward(eos_token_id=2)
        >>> reward(
        ...     prompts=["p", "q", "p", "q"],
        ...     completions=None,
        ...     completion_ids=[[5, 6, 7, 8, 2], [5, 6, 7, 8], [5, 6, 7, 8, 2], [9, 10, 11, 12]],
        ... )
        [0.0, 1.0, 0.0, 1.0]
    """
    return TokenIDReward(
        "diversity",
        reference_column=None,
        tokenizer=tokenizer,
        eos_token_id=eos_token_id,
        device=device,
        name=name,
        gather_groups=gather_groups,
        options=self_bleu_options,
    )


def _completion_text(completion: Any, name: str) -> str:
    """A completion as text: a str, or a conversation's (a list of messages) last message content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
    raise TypeError(
        f"`{name}` must be a str or a conversation (a list of messages whose last has a str 'content'), "
        f"got {type(completion).__name__}."
    )


class TextReward:
    """A reward function for ``GRPOTrainer(reward_funcs=[...])`` scoring the decoded completions as text.

    Build it with ``chrf_reward`` (``on="text"``). Called as TRL calls reward functions, it scores
    ``completions`` (strings, or conversations: the last message's content) against the text references of a
    dataset column in one batched call, and returns one float per completion. Instances are picklable;
    ``__name__`` is the name TRL logs the reward under.
    """

    def __init__(
        self, metric: str, *, reference_column: str, name: str | None = None, options: Mapping[str, Any] | None = None
    ) -> None:
        if metric != "chrf":
            raise ValueError(f"`metric` must be 'chrf' (the text metric), got {metric!r}.")
        if not isinstance(reference_column, str) or not reference_column:
            raise TypeError(f"`reference_column` must be a column name (a non-empty str), got {reference_column!r}.")
        for key in SET_BY_LAYER:
            if options and key in options:
                raise ValueError(f"`{key}` is set by the reward itself (completions and references are text).")
        self.metric = metric
        self.reference_column = reference_column
        self.options = dict(options or {})
        self.__name__ = metric if name is None else name
        if not isinstance(self.__name__, str) or not self.__name__:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}.")
        sentence_chrf(["a"], ["a"], **self.options)  # bad options fail when the reward is built

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(metric={self.metric!r}, name={self.__name__!r}, "
            f"reference_column={self.reference_column!r}, options={self.options})"
        )

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """Score a batch of completions' text against the reference column (a str, or a list of str per row).

        Raises:
            ValueError: ``completions`` or the reference column missing, or of the wrong length.
            TypeError: completions or references that are not text.
        """
        if completions is None:
            raise ValueError(f"the {self.__name__!r} reward scores text: it needs `completions`, got none.")
        if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
            raise TypeError(f"`completions` must be a list of completions, got {type(completions).__name__}.")
        if len(completions) == 0:
            return []
        refs = _reference_rows(kwargs, self.reference_column, len(completions), self.__name__)
        texts = [_completion_text(c, f"completions[{i}]") for i, c in enumerate(completions)]
        return sentence_chrf(texts, list(refs), **self.options).tolist()


def chrf_reward(
    reference_column: str = "reference",
    *,
    on: str = "text",
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    device: str | torch.device | None = None,
    name: str = "chrf",
    reference_prefix: str | None = None,
    **chrf_options: Any,
) -> TextReward | TokenIDReward:
    """Sentence chrF (SacreBLEU's, in [0, 1]) of each completion against a dataset column, as a GRPO reward.

    Args:
        reference_column: the dataset column holding the references (a str, or a list of str for several; with
            ``on="token_ids"`` also token-ID lists, as ``bleu_reward`` takes them).
        on: ``"text"``: the decoded ``completions`` (a conversation's last message) against text references,
            chrF and chrF++ as SacreBLEU computes them (the usual MT reward); ``"token_ids"``: ``completion_ids``
            against token-ID (or tokenized text) references, each ID one symbol.
        tokenizer, eos_token_id, device, reference_prefix: as ``bleu_reward``; ``on="token_ids"`` only.
        name: the reward's ``__name__``, which TRL logs as ``rewards/<name>/mean``.
        **chrf_options: options of ``tensorbleu_metrics.functional.sentence_chrf`` (``char_order``,
            ``word_order`` (2: chrF++; text only), ``beta``, ``whitespace``, ``eps_smoothing``, ``lowercase``,
            ``dtype``).

    Returns:
        A ``TextReward`` (``on="text"``) or a ``TokenIDReward``.

    Raises:
        ValueError, TypeError: an unknown ``on``, token-ID options with ``on="text"``, or options the functional
            API rejects (each named).

    Example:
        >>> reward = chrf_reward("translation", word_order=2)  # chrF++ of the text
        >>> reward(prompts=None, completions=["the cat sat", "a dog"], translation=["the cat sat", "the dog"])
        [1.0, 0.2936...]
        >>> ids = chrf_reward(on="token_ids", eos_token_id=2, char_order=2)
        >>> ids(prompts=None, completions=None, completion_ids=[[5, 6, 7, 2], [5, 9]], reference=[[5, 6, 7]] * 2)
        [1.0, 0.1785...]
    """
    if on == "text":
        unused = {"tokenizer": tokenizer, "eos_token_id": eos_token_id, "device": device}
        unused["reference_prefix"] = reference_prefix
        given = [key for key, value in unused.items() if value is not None]
        if given:
            raise ValueError(
                f"`{given[0]}` applies to token IDs; a text chrF reward scores the decoded completions "
                "(pass on='token_ids' to score completion_ids)."
            )
        return TextReward("chrf", reference_column=reference_column, name=name, options=chrf_options)
    if on != "token_ids":
        raise ValueError(f"`on` must be 'text' or 'token_ids', got {on!r}.")
    return TokenIDReward(
        "chrf",
        reference_column=reference_column,
        tokenizer=tokenizer,
        eos_token_id=eos_token_id,
        device=device,
        name=name,
        reference_prefix=reference_prefix,
        options=chrf_options,
    )


def _packed_ids(completion_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(B, W)`` int64 tokens (zero past each length) and the ``(B,)`` lengths, written row by row into one buffer
    with ``struct`` (the fastest way to read Python ints); ``None`` for anything but sequences of non-negative
    int64 IDs, which the validating conversion then takes."""
    try:
        lengths = np.fromiter(map(len, completion_ids), dtype=np.int64, count=len(completion_ids))
        width = max(int(lengths.max()), 1)
        out = np.zeros((len(completion_ids), width), dtype=np.int64)
        for row, (ids, n) in enumerate(zip(completion_ids, lengths.tolist(), strict=True)):
            struct.pack_into(f"{n}q", out, row * width * 8, *ids)
    except (struct.error, TypeError, OverflowError):
        return None
    return None if int(out.min()) < 0 else (out, lengths)


def _validated_ids(completion_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The slower conversion of ``_packed_ids``, with errors naming the completion at fault."""
    names = [f"completion_ids[{i}]" for i in range(len(completion_ids))]
    tokens, lengths = _lists_to_padded(completion_ids, names)
    _check_no_negative(tokens, np.zeros(tokens.shape, dtype=bool), "completion_ids", names)
    return tokens, lengths


class RepetitionPenaltyReward:
    """TRL's repetition penalty computed on the counting engine: ``(1 - unique / total n-grams) * max_penalty``.

    Build it with ``repetition_penalty_reward``. Called as TRL calls reward functions, it returns one float
    per completion, equal to ``trl.rewards.get_repetition_penalty_reward(ngram_size, max_penalty)`` on the same
    ``completion_ids``. Instances are picklable; ``__name__`` is the name TRL logs the reward under.
    """

    def __init__(self, ngram_size: int = 3, max_penalty: float = -1.0, *, name: str = "repetition_penalty_reward"):
        self.ngram_size = check_int(ngram_size, "ngram_size", minimum=1)
        if isinstance(max_penalty, bool) or not isinstance(max_penalty, numbers.Real):
            raise TypeError(f"`max_penalty` must be a real number (<= 0), got {max_penalty!r}.")
        if max_penalty > 0:
            raise ValueError(
                f"`max_penalty` must not be positive (the most negative reward, for a fully repetitive completion), "
                f"got {max_penalty}."
            )
        self.max_penalty = float(max_penalty)
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}.")
        self.__name__ = name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ngram_size={self.ngram_size}, max_penalty={self.max_penalty}, "
            f"name={self.__name__!r})"
        )

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """Penalise each completion's repeated n-grams.

        Args:
            prompts, completions: unused (the penalty reads ``completion_ids``).
            completion_ids: one list of token IDs per completion, as TRL passes them. Every ID counts, the EOS
                kept by TRL included, as in TRL's function.
            **kwargs: the dataset's columns and TRL's own arguments, ignored.

        Returns:
            One float per completion in ``[max_penalty, 0]``: ``0.0`` for a completion without a repeated n-gram
            or with fewer than ``ngram_size`` tokens (an empty one included).

        Raises:
            ValueError: ``completion_ids`` missing, negative token IDs.
            TypeError: token IDs that are not ints.
        """
        if completion_ids is None:
            raise ValueError(
                f"the {self.__name__!r} reward needs `completion_ids` (the completions' token IDs), which "
                "GRPOTrainer passes; got none."
            )
        if isinstance(completion_ids, (str, bytes)) or not isinstance(completion_ids, Sequence):
            raise TypeError(f"`completion_ids` must be a list of token-ID lists, got {type(completion_ids).__name__}.")
        if len(completion_ids) == 0:
            return []
        packed = _packed_ids(completion_ids)
        tokens, lengths = packed if packed is not None else _validated_ids(completion_ids)
        # the compiled distinct-n kernel on the NumPy arrays, each completion its own group, no tensor on the way
        n = self.ngram_size
        unique = kernels("diversity").distinct(tokens, lengths, None, len(lengths), n)[:, n - 1]
        total = lengths - (n - 1)
        # as TRL: 0.0 for completions shorter than ngram_size, and 0.0 (never -0.0) where nothing repeats; the
        # float64 division of two ints is Python's
        scaling = np.where(total > 0, 1.0 - unique / np.maximum(total, 1), 0.0)
        return np.where(scaling != 0, scaling * self.max_penalty, 0.0).tolist()


def repetition_penalty_reward(
    ngram_size: int = 3, max_penalty: float = -1.0, *, name: str = "repetition_penalty_reward"
) -> RepetitionPenaltyReward:
    """TRL's repetition penalty (``trl.rewards.get_repetition_penalty_reward``) on the counting engine, one batched
    call for all completions instead of a Python loop over them.

    The reward of a completion is ``(1 - unique / total) * max_penalty`` over its token n-grams of order
    ``ngram_size``, ``0.0`` when no n-gram repeats and for completions shorter than ``ngram_size`` tokens; every
    token counts, the EOS that TRL keeps in ``completion_ids`` included. The values equal TRL's function on the
    same ``completion_ids``.

    Args:
        ngram_size: the n-gram order (>= 1; TRL's function fails at its first call for 0).
        max_penalty: the reward of a completion whose n-grams all repeat its first; must not be positive.
        name: the reward's ``__name__`` (logged as ``rewards/<name>/mean``); TRL's by default, so logs keep their
            keys when one replaces the other.

    Returns:
        A ``RepetitionPenaltyReward`` for ``GRPOTrainer(reward_funcs=[...])``.

    Raises:
        ValueError: ``ngram_size < 1`` or a positive ``max_penalty``.
        TypeError: a non-integer ``ngram_size``, a ``max_penalty`` that is not a real number.

    Example:
        >>> reward = repetition_penalty_reward(ngram_size=2)
        >>> reward(completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5], [7]])
        [0.0, -0.75, 0.0]
    """
    return RepetitionPenaltyReward(ngram_size, max_penalty, name=name)
