"""The TRL rewards where TRL's asynchronous GRPO runs them.

``AsyncRolloutWorker`` pickles the reward functions into a spawned child with ``CUDA_VISIBLE_DEVICES=""`` and, in
its asyncio loop, runs every synchronous reward of a group at once through ``asyncio.to_thread``. Here one spawned
child unpickles every reward of :mod:`tensorbleu_metrics.integrations.trl` and scores a batch directly and through
``asyncio.gather(asyncio.to_thread(...))``, and the parent checks the values equal its own; threads in the parent
call rewards sharing one tokenizer at once, on new texts every round.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import random
import warnings
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

from tensorbleu_metrics.integrations.trl import (
    bleu_reward,
    chrf_reward,
    diversity_reward,
    gleu_reward,
    repetition_penalty_reward,
    rouge_reward,
)

N_WORDS = 20
EOS_ID = 2


def build_tokenizer():
    """A word-level fast tokenizer over ``w0 .. w19`` and the specials ``[PAD]=0, [UNK]=1, [EOS]=2``."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[EOS]", *(f"w{i}" for i in range(N_WORDS))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


def build_rewards(tokenizer):
    """One reward of every kind the module builds, text references (encoded by the shared tokenizer) included."""
    return [
        bleu_reward("reference_ids", eos_token_id=EOS_ID),
        bleu_reward("reference", tokenizer=tokenizer, name="bleu_text"),
        gleu_reward("reference", tokenizer=tokenizer),
        rouge_reward("reference", tokenizer=tokenizer),
        rouge_reward("reference_ids", rouge_key="rouge2", measure="recall", eos_token_id=EOS_ID),
        diversity_reward(eos_token_id=EOS_ID),
        chrf_reward("reference", name="chrf_text"),
        chrf_reward("reference", on="token_ids", tokenizer=tokenizer, name="chrf_ids"),
        repetition_penalty_reward(ngram_size=2, max_penalty=-0.5),
    ]


def make_batch(seed, n_prompts=3, n_generations=4):
    """The keyword arguments TRL's async worker passes for a few groups: completions, prompts, completion_ids and
    the dataset columns (a text reference and its IDs); references are new words sequences every seed."""
    rng = random.Random(seed)
    kwargs = {"prompts": [], "completions": [], "completion_ids": [], "reference": [], "reference_ids": []}
    for p in range(n_prompts):
        ref_ids = [3 + rng.randrange(N_WORDS) for _ in range(rng.randrange(1, 12))]
        for _ in range(n_generations):
            ids = [3 + rng.randrange(N_WORDS) for _ in range(rng.randrange(0, 14))]
            if rng.random() < 0.3:
                ids = (ids[:2] * 6)[: len(ids)]  # a looping completion
            kwargs["prompts"].append(f"prompt {seed} {p}")
            kwargs["completions"].append(" ".join(f"w{t - 3}" for t in ids))
            kwargs["completion_ids"].append(ids + [EOS_ID] * rng.randrange(2))
            kwargs["reference"].append(" ".join(f"w{t - 3}" for t in ref_ids))
            kwargs["reference_ids"].append(ref_ids)
    return kwargs


def score_all(rewards, kwargs):
    return {reward.__name__: reward(**kwargs) for reward in rewards}


async def score_in_threads(rewards, kwargs):
    """As ``_AsyncRolloutLoop._score_group`` does: every synchronous reward at once, each in a worker thread."""
    results = await asyncio.gather(*(asyncio.to_thread(reward, **kwargs) for reward in rewards))
    return {reward.__name__: result for reward, result in zip(rewards, results, strict=True)}


def score_in_child(payload, batches):
    """Runs in the spawned child: unpickle the rewards, score each batch directly and through threads."""
    rewards = pickle.loads(payload)
    direct = [score_all(rewards, kwargs) for kwargs in batches]
    threaded = [asyncio.run(score_in_threads(rewards, kwargs)) for kwargs in batches]
    return os.environ.get("CUDA_VISIBLE_DEVICES"), torch.cuda.is_available(), direct, threaded


def test_rewards_score_alike_in_a_spawned_cuda_less_child(monkeypatch):
    rewards = build_rewards(build_tokenizer())
    batches = [make_batch(seed) for seed in range(3)]
    expected = [score_all(rewards, kwargs) for kwargs in batches]
    assert len(expected[0]) == len(rewards)  # every reward has its own name
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what TRL's child runs with, inherited by the spawned process
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        cuda_env, cuda, direct, threaded = pool.submit(score_in_child, pickle.dumps(rewards), batches).result(120)
    assert cuda_env == "" and not cuda
    assert direct == expected
    assert threaded == expected


def test_rewards_called_at_once_from_threads():
    """Rewards sharing a tokenizer, called at once from worker threads on new texts each round, as fresh copies
    called one after another score them."""
    rewards = build_rewards(build_tokenizer())
    batches = [make_batch(seed) for seed in range(10, 22)]

    async def rounds():
        return [await score_in_threads(rewards, kwargs) for kwargs in batches]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning raised in a thread would otherwise pass unseen
        got = asyncio.run(rounds())
    fresh = pickle.loads(pickle.dumps(build_rewards(build_tokenizer())))
    assert got == [score_all(fresh, kwargs) for kwargs in batches]


def test_reward_pickled_for_a_device_this_process_lacks_scores_on_the_cpu():
    """A reward built for a GPU (e.g. ``device=model.device``) and unpickled in TRL's CUDA-less child scores on
    the CPU (equal values), with a warning, instead of failing at its first call."""
    reward = bleu_reward("reference_ids", eos_token_id=EOS_ID)
    kwargs = make_batch(0)
    expected = reward(**kwargs)
    if torch.cuda.is_available():
        pytest.skip("this process has a GPU: the reward would keep it")
    reward.device = torch.device("cuda")  # as if built where a GPU was visible
    with pytest.warns(UserWarning, match="CPU"):
        clone = pickle.loads(pickle.dumps(reward))
    assert clone.device == torch.device("cpu")
    assert clone(**kwargs) == expected
