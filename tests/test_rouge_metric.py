"""What only ``TokenIDROUGE`` does in one process: its dict results beside another metric in a collection, and its
options. The checks every Metric shares (rouge-score and the functional over updates, failed updates, dtypes,
copies, plots, DDP) run over its spec in ``tests/test_metric_common.py`` and ``tests/test_metric_ddp.py``.
"""

from __future__ import annotations

import pytest
import torch
from metric_harness import ROUGE_SPEC
from test_rouge import ATOL32
from torchmetrics import MetricCollection

from tensorbleu_metrics import TokenIDBLEU, TokenIDROUGE
from tensorbleu_metrics.functional import rouge_score

CORPUS = ROUGE_SPEC.corpus


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
    ],
)
def test_bad_options_raise(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        TokenIDROUGE(**kwargs)
