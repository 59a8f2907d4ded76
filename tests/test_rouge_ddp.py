"""``TokenIDROUGE`` under real ``torch.distributed``: gloo, 2 CPU processes, uneven and empty shards.

Each rank saves what it computed; the parent checks it against rouge-score (called here) and the single-process
functional result on all the data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from corpus_utils import feed_and_compute, make_corpus, run_on_gloo
from test_rouge import ATOL32, SEP, rouge_oracle

from tensorbleu_metrics import TokenIDROUGE
from tensorbleu_metrics.functional import rouge_score

WORLD_SIZE = 2
KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
CORPUS = make_corpus(seed=12, n=30, max_len=12)

# rank -> list of (first sentence, end) batches; rank 0's sentences come first in gathered sentence scores
SCENARIOS: dict[str, dict] = {
    "uneven": {"kwargs": {}, "batches": {0: [(0, 3), (3, 11)], 1: [(11, 30)]}},
    "empty_rank1_sentences": {"kwargs": {"return_sentence_level_score": True}, "batches": {0: [(0, 7)], 1: []}},
    "empty_rank0_avg_sentences": {
        "kwargs": {"accumulate": "avg", "return_sentence_level_score": True},
        "batches": {0: [], 1: [(0, 5), (5, 9)]},
    },
    "forward_sentences": {
        "kwargs": {"return_sentence_level_score": True},
        "batches": {0: [(0, 4), (4, 6)], 1: [(6, 13)]},
        "forward": True,
    },
    "all_empty": {"kwargs": {"return_sentence_level_score": True}, "batches": {0: [], 1: []}},
}


def _run(rank: int, scenario: dict) -> dict:
    metric = TokenIDROUGE(rouge_keys=KEYS, sep_id=SEP, **scenario["kwargs"])
    preds, refs = CORPUS
    batches = [(preds[start:end], refs[start:end]) for start, end in scenario["batches"][rank]]
    out = feed_and_compute(metric, batches, scenario.get("forward", False))
    out["local_sentences"] = int(metric.n_sentences)  # each rank's own state again after compute()
    return out


def _indices(batches: dict) -> list[int]:
    return [i for rank in range(WORLD_SIZE) for start, end in batches[rank] for i in range(start, end)]


def _check(name: str, kwargs: dict, idx: list[int], value) -> None:
    sentence_level = kwargs.get("return_sentence_level_score", False)
    means, sentences = value if sentence_level else (value, None)
    accumulate = kwargs.get("accumulate", "best")
    preds, refs = CORPUS
    preds, refs = [preds[i] for i in idx], [refs[i] for i in idx]
    oracle = rouge_oracle(preds, refs, KEYS, accumulate)
    for field, values in oracle.items():
        expected = sum(values) / len(values) if values else 0.0
        assert abs(float(means[field]) - expected) < ATOL32, (name, field)
    if sentence_level:
        ours = rouge_score(preds, refs, rouge_keys=KEYS, sep_id=SEP, accumulate=accumulate) if idx else None
        for field in oracle:
            assert sentences[field].shape == (len(idx),), (name, field)
            if ours is not None:
                assert torch.equal(sentences[field], ours[field]), (name, field)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_gloo_two_processes(tmp_path: Path) -> None:
    results = run_on_gloo(_run, SCENARIOS, WORLD_SIZE, tmp_path)
    for name, scenario in SCENARIOS.items():
        batches = scenario["batches"]
        for rank in range(WORLD_SIZE):
            res = results[rank][name]
            _check(name, scenario["kwargs"], _indices(batches), res["compute"])
            assert res["local_sentences"] == sum(end - start for start, end in batches[rank]), name
            if scenario.get("forward"):  # each batch's own value, not synced
                for (start, end), value in zip(batches[rank], res["batch_values"], strict=True):
                    _check(f"{name}/forward", scenario["kwargs"], list(range(start, end)), value)
