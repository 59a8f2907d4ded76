"""Logging ``TokenIDROUGE`` (whose ``compute``/``forward`` return a dict) from a real Lightning run.

Lightning logs a ``Metric`` *object* only when its ``compute()`` returns a tensor, so ``self.log("rouge", metric)``
and ``self.log_dict(MetricCollection([... TokenIDROUGE ...]))`` stop with Lightning's ``ValueError``. What works,
as examples/README.md documents it, and is checked here on a tiny module trained and validated by
``lightning.pytorch.Trainer`` on the CPU with a CSV logger:

1. per step: ``self.log_dict(rouge(preds, target), batch_size=len(preds))``: each step logs its batch's values,
   and the epoch value (Lightning's batch-size-weighted mean) is the mean over every sentence, i.e. the metric's
   value;
2. at epoch end: ``update`` in the step, then ``self.log_dict(rouge.compute())`` and ``rouge.reset()`` in
   ``on_validation_epoch_end``;
3. a ``MetricCollection`` holding ``TokenIDROUGE``: ``update`` in the step, ``self.log_dict(collection.compute())``
   (flattened names, the collection's prefix) and ``reset()`` at epoch end.

Every logged value equals the metric computed directly on the same batches, which equals Google's rouge-score
(called here on the token IDs joined as words, up to the first EOS, without padding).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from rouge_score.rouge_scorer import RougeScorer  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchmetrics import MetricCollection  # noqa: E402

from tensorbleu_metrics import TokenIDBLEU, TokenIDROUGE  # noqa: E402
from tensorbleu_metrics.functional import corpus_bleu  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # a deprecation inside Lightning itself

PAD, EOS = 0, 2
KEYS = ("rouge1", "rouge2", "rougeL")
FIELDS = ("fmeasure", "precision", "recall")
NAMES = [f"{k}_{f}" for k in KEYS for f in FIELDS]
IDS = {"pad_id": PAD, "eos_id": EOS}
ATOL = 1e-6  # the metric returns float32 means; Lightning averages in float32


def _row(rng: random.Random, width: int, junk_after_eos: bool) -> list[int]:
    words = [rng.randrange(3, 12) for _ in range(rng.randint(1, width - 2))]
    tail = [rng.randrange(3, 12) if junk_after_eos else PAD for _ in range(width - len(words) - 1)]
    return [*words, EOS, *tail]


def _pairs(n: int, seed: int, width: int = 10) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(prediction, reference) rows ending in EOS; some predictions carry tokens after EOS, which do not count."""
    rng = random.Random(seed)
    return [(torch.tensor(_row(rng, width, i % 3 == 0)), torch.tensor(_row(rng, width, False))) for i in range(n)]


TRAIN = _pairs(8, seed=1)
VAL = _pairs(11, seed=2)  # batches of 4, 4 and 3 sentences: unequal, so the per-step way must weight by batch size


def _words(row: torch.Tensor) -> str:
    ids = row.tolist()
    ids = ids[: ids.index(EOS)] if EOS in ids else ids
    return " ".join(str(t) for t in ids if t != PAD)


def rouge_score_oracle(pairs) -> dict[str, float]:
    """Google rouge-score per sentence, averaged over the sentences."""
    scorer = RougeScorer(list(KEYS))
    scores = [scorer.score(_words(t), _words(p)) for p, t in pairs]
    return {f"{k}_{f}": sum(getattr(s[k], f) for s in scores) / len(scores) for k in KEYS for f in FIELDS}


class RougeLogging(L.LightningModule):
    """A stand-in model (its "predictions" are the batch's first tensor) logging ROUGE in the three ways."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)  # something for the optimiser to train
        self.train_rouge = TokenIDROUGE(rouge_keys=KEYS, **IDS)
        self.val_rouge_step = TokenIDROUGE(rouge_keys=KEYS, **IDS)
        self.val_rouge = TokenIDROUGE(rouge_keys=KEYS, **IDS)
        self.val_metrics = MetricCollection(
            {"rouge": TokenIDROUGE(rouge_keys=KEYS, **IDS), "bleu": TokenIDBLEU(**IDS)}, prefix="val_all/"
        )

    def training_step(self, batch, batch_idx):
        preds, target = batch
        # 1. the batch's values, one row per step in the logger
        self.log_dict({f"train/{k}": v for k, v in self.train_rouge(preds, target).items()}, batch_size=len(preds))
        return self.layer(torch.ones(1, 1)).sum()

    def validation_step(self, batch, batch_idx):
        preds, target = batch
        # 1. per step: the epoch value is the batch-size-weighted mean of the batch values
        values = self.val_rouge_step(preds, target)
        self.log_dict({f"val_step/{k}": v for k, v in values.items()}, batch_size=len(preds))
        # 2. and 3. accumulate; logged at epoch end
        self.val_rouge.update(preds, target)
        self.val_metrics.update(preds, target)

    def on_validation_epoch_end(self) -> None:
        # compute() already gathers every process's sums under DDP: sync_dist=True only averages equal values
        self.log_dict({f"val/{k}": v for k, v in self.val_rouge.compute().items()}, sync_dist=True)
        self.val_rouge.reset()
        self.log_dict(self.val_metrics.compute(), sync_dist=True)
        self.val_metrics.reset()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(log_dir: Path, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(str(log_dir), name="rouge"),
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def _loaders() -> tuple[DataLoader, DataLoader]:
    return DataLoader(TRAIN, batch_size=4), DataLoader(VAL, batch_size=4)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    model = RougeLogging()
    trainer = _trainer(tmp_path_factory.mktemp("logs"), max_epochs=1, limit_train_batches=2)
    trainer.fit(model, *_loaders())
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return trainer, rows


def test_metric_direct_equals_rouge_score():
    direct = TokenIDROUGE(rouge_keys=KEYS, **IDS)
    for start in range(0, len(VAL), 4):
        preds, target = (torch.stack(x) for x in zip(*VAL[start : start + 4], strict=True))
        direct.update(preds, target)
    got = direct.compute()
    expected = rouge_score_oracle(VAL)
    assert set(got) == set(NAMES)
    for name in NAMES:
        assert float(got[name]) == pytest.approx(expected[name], abs=ATOL), name
    assert 0.1 < expected["rougeL_fmeasure"] < 0.9  # neither trivial nor perfect


@pytest.mark.parametrize("prefix", ["val_step/", "val/", "val_all/"])
def test_logged_epoch_values_equal_the_metric(fitted, prefix):
    trainer, rows = fitted
    expected = rouge_score_oracle(VAL)
    (val_row,) = [r for r in rows if r.get(f"{prefix}rougeL_fmeasure")]  # one validation epoch
    for name in NAMES:
        assert float(trainer.callback_metrics[prefix + name]) == pytest.approx(expected[name], abs=ATOL), name
        assert float(val_row[prefix + name]) == pytest.approx(expected[name], abs=ATOL), name


def test_collection_logs_bleu_beside_rouge(fitted):
    trainer, _ = fitted
    preds, target = (list(x) for x in zip(*VAL, strict=True))
    assert float(trainer.callback_metrics["val_all/bleu"]) == pytest.approx(float(corpus_bleu(preds, target, **IDS)))


def test_logged_step_values_equal_each_batch(fitted):
    _, rows = fitted
    train_rows = [r for r in rows if r.get("train/rougeL_fmeasure")]
    assert [int(r["step"]) for r in train_rows] == [0, 1]
    for row, start in zip(train_rows, (0, 4), strict=True):
        expected = rouge_score_oracle(TRAIN[start : start + 4])
        for name in NAMES:
            assert float(row[f"train/{name}"]) == pytest.approx(expected[name], abs=ATOL), name


def test_validate_alone_logs_the_same(tmp_path):
    """``trainer.validate`` returns (and logs) the same values as the run inside ``fit``."""
    (result,) = _trainer(tmp_path, limit_val_batches=3).validate(RougeLogging(), _loaders()[1], verbose=False)
    expected = rouge_score_oracle(VAL)
    for prefix in ("val_step/", "val/", "val_all/"):
        for name in NAMES:
            assert result[prefix + name] == pytest.approx(expected[name], abs=ATOL), prefix + name


class _LogsTheObject(RougeLogging):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def validation_step(self, batch, batch_idx):
        preds, target = batch
        if self.how == "log":
            self.val_rouge.update(preds, target)
            self.log("val/rouge", self.val_rouge)
        else:
            self.val_metrics.update(preds, target)
            self.log_dict(self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        pass


@pytest.mark.parametrize("how", ["log", "log_dict"])
def test_logging_the_object_is_refused_by_lightning(tmp_path, how):
    """What the README says does not work: Lightning computes a logged Metric object and wants a tensor."""
    with pytest.raises(ValueError, match=r"\.compute\(\)` return of the metric logged as .* must be a tensor"):
        _trainer(tmp_path, limit_val_batches=1).validate(_LogsTheObject(how), _loaders()[1], verbose=False)
