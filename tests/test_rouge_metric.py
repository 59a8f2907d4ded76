"""``TokenIDROUGE`` in one process: means of rouge-score's sentence scores (called here), state handling, plots."""

from __future__ import annotations

import pytest
import torch
from corpus_utils import make_corpus, padded
from test_rouge import ATOL32, SEP, rouge_oracle
from torchmetrics import MetricCollection

from tensorbleu_metrics import TokenIDBLEU, TokenIDROUGE
from tensorbleu_metrics.functional import rouge_score

PAD = 0
KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
CORPUS = make_corpus(seed=21, n=24, max_len=14)

pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method of metric:UserWarning")


def _means(preds: list, refs: list, accumulate: str = "best") -> dict[str, float]:
    per_sentence = rouge_oracle(preds, refs, KEYS, accumulate)
    return {name: sum(values) / len(values) for name, values in per_sentence.items()}


def _assert_close(got: dict[str, torch.Tensor], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == torch.float32 and got[name].shape == ()
        assert abs(float(got[name]) - value) < ATOL32, name


@pytest.mark.parametrize("accumulate", ["best", "avg"])
def test_mean_over_updates_matches_rouge_score(accumulate: str) -> None:
    preds, refs = CORPUS  # token IDs 1..8: SEP (1) splits sentences
    metric = TokenIDROUGE(rouge_keys=KEYS, accumulate=accumulate, sep_id=SEP, pad_id=PAD)
    metric.update(*padded(preds[:7], refs[:7]))
    metric.update(preds[7:15], refs[7:15])
    metric.update([torch.tensor(p) for p in preds[15:]], [[torch.tensor(r) for r in rs] for rs in refs[15:]])
    _assert_close(metric.compute(), _means(preds, refs, accumulate))
    metric.reset()
    assert all(float(v) == 0 for v in metric.compute().values())


def test_forward_returns_the_batch_and_accumulates() -> None:
    preds, refs = CORPUS
    metric = TokenIDROUGE(rouge_keys=KEYS, sep_id=SEP, return_sentence_level_score=True)
    batch_means, batch_sentences = metric(preds[:10], refs[:10])
    _assert_close(batch_means, _means(preds[:10], refs[:10]))
    assert batch_sentences["rougeL_fmeasure"].shape == (10,)
    metric(preds[10:], refs[10:])
    means, sentences = metric.compute()
    _assert_close(means, _means(preds, refs))
    expected = rouge_score(preds, refs, rouge_keys=KEYS, sep_id=SEP)
    for name, value in expected.items():
        assert torch.equal(sentences[name], value), name


def test_bad_batch_leaves_the_state_unchanged() -> None:
    preds, refs = CORPUS
    metric = TokenIDROUGE(rouge_keys=KEYS, sep_id=SEP, return_sentence_level_score=True)
    metric.update(preds[:5], refs[:5])
    before = metric.compute()
    for bad in ((preds[:2], refs[:3]), ([[2, -5]], [[[2]]]), (torch.ones(2, 3), torch.ones(2, 3))):
        with pytest.raises((ValueError, TypeError)):
            metric.update(*bad)
        with pytest.raises((ValueError, TypeError)):
            metric(*bad)
    after = metric.compute()
    for a, b in zip(before, after, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert int(metric.n_sentences) == 5 and len(metric.sentence_scores) == 1


def test_states_keep_their_dtype_under_half() -> None:
    preds, refs = CORPUS
    metric = TokenIDROUGE(rouge_keys=("rouge1", "rougeL"))
    metric.update(preds, refs)
    expected = metric.compute()
    module = torch.nn.ModuleDict({"m": metric}).half()
    assert module["m"].score_sum.dtype == torch.float64 and module["m"].n_sentences.dtype == torch.int64
    module["m"].set_dtype(torch.bfloat16)
    assert module["m"].score_sum.dtype == torch.float64
    got = module["m"].compute()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_in_a_metric_collection_beside_bleu() -> None:
    preds, refs = CORPUS
    collection = MetricCollection({"bleu": TokenIDBLEU(), "rouge": TokenIDROUGE(rouge_keys=("rougeL",))})
    collection.update(preds, refs)
    out = collection.compute()
    assert set(out) == {"bleu", "rougeL_fmeasure", "rougeL_precision", "rougeL_recall"}
    ours = rouge_score(preds, refs, rouge_keys="rougeL", dtype=torch.float64)["rougeL_fmeasure"].mean()
    assert abs(float(out["rougeL_fmeasure"]) - float(ours)) < ATOL32


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rouge_keys": "rougeX"}, ValueError),
        ({"rouge_keys": "rougeLsum"}, ValueError),
        ({"accumulate": "mean"}, ValueError),
        ({"sep_id": 1.0}, TypeError),
        ({"sep_id": 3, "eos_id": 3}, ValueError),
        ({"pad_id": "0"}, TypeError),
        ({"return_sentence_level_score": 1}, TypeError),
    ],
)
def test_bad_options_raise(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        TokenIDROUGE(**kwargs)


def test_plot() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    preds, refs = CORPUS
    metric = TokenIDROUGE(rouge_keys=("rouge1", "rougeL"), return_sentence_level_score=True)
    values = [metric(preds[i : i + 4], refs[i : i + 4]) for i in range(0, 12, 4)]
    fig, _ = metric.plot(values)
    assert fig is not None
    fig, _ = metric.plot()
    assert fig is not None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA device tests skipped: no GPU")
def test_cuda_matches_cpu() -> None:
    preds, refs = CORPUS
    p, t = padded(preds, refs)
    cpu = TokenIDROUGE(rouge_keys=KEYS, sep_id=SEP, pad_id=PAD)
    gpu = TokenIDROUGE(rouge_keys=KEYS, sep_id=SEP, pad_id=PAD).cuda()
    cpu.update(p, t)
    gpu.update(p.cuda(), t.cuda())
    expected, got = cpu.compute(), gpu.compute()
    assert all(torch.equal(got[k].cpu(), expected[k]) for k in expected)
