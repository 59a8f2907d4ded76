"""``TokenIDGLEU`` under real ``torch.distributed``: gloo, 2 CPU processes from ``torch.multiprocessing``.

One spawn runs every scenario; each rank saves what it computed and the parent checks it against NLTK's
``corpus_gleu``/``sentence_gleu`` on the sentences of all ranks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from corpus_utils import FORMS, feed_and_compute, make_corpus, run_on_gloo
from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu
from nltk.translate.gleu_score import sentence_gleu as nltk_sentence_gleu

from tensorbleu_metrics import TokenIDGLEU
from tensorbleu_metrics.functional import gleu_stats

WORLD_SIZE = 2
PAD = 0
ABS = 1e-6

CORPUS = make_corpus(seed=12, n=30, max_len=12)

# (input form, first sentence, end) per rank; rank 0's sentences come first in the gathered sentence scores
SCENARIOS: dict[str, dict] = {
    "uneven_sentences": {
        "kwargs": {"max_len": 3, "return_sentence_level_score": True},
        "batches": {0: [("padded", 0, 4), ("lists", 4, 11)], 1: [("tensors", 11, 30)]},
    },
    "idle_rank1_sentences": {
        "kwargs": {"min_len": 2, "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 7)], 1: []},
    },
    "idle_rank0_compute_on_cpu": {
        "kwargs": {"return_sentence_level_score": True, "compute_on_cpu": True},
        "batches": {0: [], 1: [("padded", 0, 1)]},
    },
    "all_idle": {"kwargs": {"return_sentence_level_score": True}, "batches": {0: [], 1: []}},
    "forward_sync_on_step": {
        "kwargs": {"dist_sync_on_step": True, "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 3), ("padded", 3, 9)], 1: [("lists", 9, 14), ("tensors", 14, 15)]},
        "forward": True,
    },
    "local_only": {
        "kwargs": {"sync_on_compute": False},
        "batches": {0: [("lists", 0, 10)], 1: [("lists", 10, 13)]},
    },
}


def _batch(spec: tuple) -> tuple:
    form, start, end = spec
    preds, refs = CORPUS
    return FORMS[form](preds[start:end], refs[start:end])


def _run_scenario(rank: int, scenario: dict) -> dict:
    metric = TokenIDGLEU(pad_id=PAD, **scenario["kwargs"])
    batches = [_batch(b) for b in scenario["batches"][rank]]
    out = feed_and_compute(metric, batches, scenario.get("forward", False))
    out["local_n_all"] = int(metric.n_all)  # unsynced again after compute()
    return out


def _expected(kwargs: dict, idx: list[int]) -> tuple[float, torch.Tensor]:
    preds, refs = CORPUS
    p, r = [preds[i] for i in idx], [refs[i] for i in idx]
    orders = (kwargs.get("min_len", 1), kwargs.get("max_len", 4))
    corpus = nltk_corpus_gleu(r, p, *orders) if idx else 0.0
    sentences = [nltk_sentence_gleu(refs_i, hyp, *orders) for hyp, refs_i in zip(p, r, strict=True)]
    return corpus, torch.tensor(sentences, dtype=torch.float32)


def _indices(batches: dict, ranks=range(WORLD_SIZE)) -> list[int]:
    return [i for rank in ranks for _, start, end in batches.get(rank, []) for i in range(start, end)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_gloo_two_processes(tmp_path: Path):
    results = run_on_gloo(_run_scenario, SCENARIOS, WORLD_SIZE, tmp_path)
    for name, scenario in SCENARIOS.items():
        kwargs, batches = scenario["kwargs"], scenario["batches"]
        sentence_level = kwargs.get("return_sentence_level_score", False)
        for rank in range(WORLD_SIZE):
            res = results[rank][name]
            synced = kwargs.get("sync_on_compute", True)
            idx = _indices(batches) if synced else _indices(batches, [rank])
            corpus, sentences = res["compute"] if sentence_level else (res["compute"], None)
            exp_corpus, exp_sentences = _expected(kwargs, idx)
            assert corpus.item() == pytest.approx(exp_corpus, abs=ABS), name
            if sentence_level:
                torch.testing.assert_close(sentences, exp_sentences, rtol=0, atol=ABS, msg=name)
            local = _indices(batches, [rank])
            assert res["local_n_all"] == sum(_expected_n_all(kwargs, i) for i in local), name
        if scenario.get("forward"):
            for rank in range(WORLD_SIZE):
                for step, value in enumerate(results[rank][name]["batch_values"]):
                    # with dist_sync_on_step a step's value covers that step's batches of all ranks
                    idx = [i for r in range(WORLD_SIZE) for i in range(*batches[r][step][1:])]
                    exp_corpus, exp_sentences = _expected(kwargs, idx)
                    assert value[0].item() == pytest.approx(exp_corpus, abs=ABS), name
                    torch.testing.assert_close(value[1], exp_sentences, rtol=0, atol=ABS, msg=name)


def _expected_n_all(kwargs: dict, i: int) -> int:
    preds, refs = CORPUS
    orders = {"min_len": kwargs.get("min_len", 1), "max_len": kwargs.get("max_len", 4)}
    return int(gleu_stats(preds[i : i + 1], refs[i : i + 1], **orders).n_all.sum())
