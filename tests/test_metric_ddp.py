"""``TokenIDBLEU`` under real ``torch.distributed``: gloo, 2 CPU processes from ``torch.multiprocessing``.

One spawn runs every scenario; each rank saves what it computed and the parent process checks it against
:mod:`tensorbleu_metrics.functional` on all the data (single process), NLTK and SacreBLEU.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from corpus_utils import FORMS, feed_and_compute, make_corpus, run_on_gloo
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu
from sacrebleu.metrics import BLEU

from tensorbleu_metrics import functional
from tensorbleu_metrics.bleu import TokenIDBLEU

WORLD_SIZE = 2
PAD = 0
ABS = 1e-6

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


CORPUS = make_corpus(seed=11, n=40, max_len=14)


# Each batch is (input form, first sentence, end); ranks list their batches in order. Rank 0's sentences come
# before rank 1's in the gathered sentence scores, so the expected order is "all rank 0 batches, then rank 1".
SCENARIOS: dict[str, dict] = {
    "uneven_ragged": {
        "kwargs": {"pad_id": PAD, "smoothing": "method1", "return_sentence_level_score": True},
        "batches": {0: [("padded", 0, 5), ("lists", 5, 12), ("tensors", 12, 13)], 1: [("padded", 13, 30)]},
    },
    "uneven_sacrebleu": {
        "kwargs": {"pad_id": PAD, "smoothing": "exp", "effective_order": True},
        "batches": {0: [("lists", 0, 3)], 1: [("padded", 3, 20), ("tensors", 20, 21), ("padded", 21, 40)]},
    },
    "empty_rank1_sentences": {
        "kwargs": {"smoothing": "method2", "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 7), ("padded", 7, 9)], 1: []},
    },
    "empty_rank0_sentences_k_weights": {
        "kwargs": {
            "weights": [(1.0, 0.0, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0), (0.25, 0.25, 0.25, 0.25)],
            "smoothing": "method3",
            "return_sentence_level_score": True,
        },
        "batches": {0: [], 1: [("tensors", 0, 10), ("lists", 10, 11)]},
    },
    "empty_rank1_compute_on_cpu": {
        "kwargs": {"smoothing": "floor", "return_sentence_level_score": True, "compute_on_cpu": True},
        "batches": {0: [("padded", 0, 6)], 1: []},
    },
    "all_ranks_empty": {
        "kwargs": {"return_sentence_level_score": True},
        "batches": {0: [], 1: []},
    },
    "method5_more_orders": {
        "kwargs": {"n_gram": 3, "smoothing": "method5", "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 9)], 1: [("tensors", 9, 12), ("lists", 12, 25)]},
    },
    "forward_then_continue": {
        "kwargs": {"smoothing": "method4", "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 4), ("padded", 4, 11)], 1: [("lists", 11, 12)]},
        "forward": True,
        # updated after the first compute(): compute() must have restored each rank's own (unsynced) state
        "after": {0: [("lists", 12, 14)], 1: [("padded", 14, 20), ("lists", 20, 22)]},
    },
    "local_only": {
        "kwargs": {"smoothing": "method1", "sync_on_compute": False},
        "batches": {0: [("lists", 0, 10)], 1: [("lists", 10, 13)]},
    },
    "dist_sync_on_step": {
        "kwargs": {"smoothing": "method1", "dist_sync_on_step": True, "return_sentence_level_score": True},
        "batches": {0: [("lists", 0, 3), ("padded", 3, 10)], 1: [("lists", 10, 15), ("tensors", 15, 16)]},
        "forward": True,
    },
}


def _batch(spec: tuple) -> tuple:
    form, start, end = spec
    preds, refs = CORPUS
    return FORMS[form](preds[start:end], refs[start:end])


def _run_scenario(rank: int, scenario: dict) -> dict:
    metric = TokenIDBLEU(**{"pad_id": PAD, **scenario["kwargs"]})
    batches = [_batch(b) for b in scenario["batches"][rank]]
    out = feed_and_compute(metric, batches, scenario.get("forward", False))
    out["compute_cached"] = metric.compute()
    out["local_pred_len"] = metric.pred_len.clone()  # unsynced again after compute()
    out["local_sentences"] = (
        len(metric.sentence_scores) if scenario["kwargs"].get("return_sentence_level_score") else None
    )
    if "after" in scenario:
        for b in scenario["after"][rank]:
            metric.update(*_batch(b))
        out["compute_after"] = metric.compute()
    return out


# ------------------------------------------------------------------------------------------------ oracles
def _indices(batches: dict, ranks=range(WORLD_SIZE)) -> list[int]:
    return [i for rank in ranks for _, start, end in batches.get(rank, []) for i in range(start, end)]


def _subset(idx: list[int]) -> tuple[list, list]:
    preds, refs = CORPUS
    return [preds[i] for i in idx], [refs[i] for i in idx]


def _nltk_corpus(preds, refs, kwargs: dict, weights=None) -> float:
    n_gram = kwargs.get("n_gram", 4)
    weights = weights or (1.0 / n_gram,) * n_gram
    fn = getattr(SmoothingFunction(), kwargs.get("smoothing", "method0"))
    return nltk_corpus_bleu(refs, preds, weights=weights, smoothing_function=fn)


def _sacre_corpus(preds, refs, kwargs: dict) -> float:
    bleu = BLEU(
        tokenize="none",
        smooth_method=kwargs.get("smoothing", "none"),
        smooth_value=kwargs.get("smooth_value"),
        max_ngram_order=kwargs.get("n_gram", 4),
        effective_order=kwargs.get("effective_order", False),
    )
    n_refs = max(map(len, refs))
    streams = [[" ".join(map(str, r[j])) if j < len(r) else None for r in refs] for j in range(n_refs)]
    return bleu.corpus_score([" ".join(map(str, p)) for p in preds], streams).score / 100


def _scoring_kwargs(kwargs: dict) -> dict:
    keys = (
        "n_gram",
        "weights",
        "smoothing",
        "smooth_value",
        "effective_order",
        "auto_reweigh",
        "pad_id",
        "eos_id",
    )
    return {k: v for k, v in kwargs.items() if k in keys}


def _check_against_oracles(name: str, kwargs: dict, idx: list[int], corpus: torch.Tensor) -> None:
    """The single-process functional result on the same sentences, and NLTK/SacreBLEU."""
    preds, refs = _subset(idx)
    if not idx:
        assert torch.equal(corpus, torch.zeros_like(corpus)), name
        return
    expected = functional.corpus_bleu(preds, refs, **{**_scoring_kwargs(kwargs), "pad_id": None})
    torch.testing.assert_close(corpus, expected, rtol=0, atol=ABS, msg=name)
    smoothing = kwargs.get("smoothing", "none")
    if smoothing in ("none", "floor", "add-k", "exp"):
        assert corpus.item() == pytest.approx(_sacre_corpus(preds, refs, kwargs), abs=ABS), name
    elif smoothing not in ("method5", "method6", "method7"):  # NLTK scores those on the last sentence only
        weight_sets = kwargs.get("weights")
        if weight_sets is not None and isinstance(weight_sets[0], tuple):
            for k, w in enumerate(weight_sets):
                assert corpus[k].item() == pytest.approx(_nltk_corpus(preds, refs, kwargs, w), abs=ABS), name
        else:
            assert corpus.item() == pytest.approx(_nltk_corpus(preds, refs, kwargs), abs=ABS), name
    else:
        assert len(idx) > 1  # corpus-wide statistics (documented deviation from NLTK)


def _expected_sentences(kwargs: dict, idx: list[int]) -> torch.Tensor:
    if not idx:
        weight_sets = kwargs.get("weights")
        return torch.zeros((len(weight_sets), 0) if weight_sets else (0,))
    preds, refs = _subset(idx)
    return functional.sentence_bleu(preds, refs, **{**_scoring_kwargs(kwargs), "pad_id": None})


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_gloo_two_processes(tmp_path: Path):
    start = time.perf_counter()
    results = run_on_gloo(_run_scenario, SCENARIOS, WORLD_SIZE, tmp_path)
    elapsed = time.perf_counter() - start
    print(f"2-process gloo run of {len(SCENARIOS)} scenarios: {elapsed:.1f}s")

    for name, scenario in SCENARIOS.items():
        kwargs, batches = scenario["kwargs"], scenario["batches"]
        sentence_level = kwargs.get("return_sentence_level_score", False)
        all_idx = _indices(batches)
        for rank in range(WORLD_SIZE):
            res = results[rank][name]
            value = res["compute"]
            corpus, sentences = value if sentence_level else (value, None)
            if kwargs.get("sync_on_compute", True):
                # every rank: corpus BLEU of all ranks' data == single process on everything == NLTK/SacreBLEU
                _check_against_oracles(name, kwargs, all_idx, corpus)
                if sentence_level:
                    torch.testing.assert_close(sentences, _expected_sentences(kwargs, all_idx), rtol=0, atol=0)
            else:
                _check_against_oracles(name, kwargs, _indices(batches, [rank]), corpus)
            cached = res["compute_cached"]
            for a, b in zip(
                value if sentence_level else (value,), cached if sentence_level else (cached,), strict=True
            ):
                assert torch.equal(a, b), name
            # after compute() each rank holds its own statistics again
            local = _subset(_indices(batches, [rank]))
            local_len = sum(map(len, local[0]))
            assert int(res["local_pred_len"]) == local_len, name
            if sentence_level:
                assert res["local_sentences"] == len(batches[rank]), name

        if scenario.get("forward"):
            for rank in range(WORLD_SIZE):
                for spec, batch_value in zip(batches[rank], results[rank][name]["batch_values"], strict=True):
                    if kwargs.get("dist_sync_on_step"):
                        # the batch value of a step is synced: all ranks' batches of that step together
                        step = batches[rank].index(spec)
                        idx = [i for r in range(WORLD_SIZE) for i in range(*batches[r][step][1:])]
                    else:
                        idx = list(range(spec[1], spec[2]))
                    corpus, sentences = batch_value if sentence_level else (batch_value, None)
                    _check_against_oracles(f"{name}/forward", kwargs, idx, corpus)
                    if sentence_level:
                        torch.testing.assert_close(sentences, _expected_sentences(kwargs, idx), rtol=0, atol=0)

        if "after" in scenario:
            both = {r: batches[r] + scenario["after"][r] for r in range(WORLD_SIZE)}
            idx = _indices(both)
            for rank in range(WORLD_SIZE):
                corpus, sentences = results[rank][name]["compute_after"]
                _check_against_oracles(f"{name}/after", kwargs, idx, corpus)
                torch.testing.assert_close(sentences, _expected_sentences(kwargs, idx), rtol=0, atol=0)


def test_nltk_sentence_oracle_for_ddp_data():
    # the single-process functional reference used above agrees with NLTK sentence by sentence
    preds, refs = CORPUS
    fn = SmoothingFunction().method1
    expected = [nltk_sentence_bleu(r, p, smoothing_function=fn) for p, r in zip(preds, refs, strict=True)]
    got = functional.sentence_bleu(preds, refs, smoothing="method1", dtype=torch.float64)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
