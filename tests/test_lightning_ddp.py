"""``TokenIDBLEU`` logged from a LightningModule under ``Trainer(strategy="ddp_spawn", devices=2)`` on CPU.

Lightning's DistributedSampler splits the validation set across the two processes; the logged value must be
the corpus BLEU of the *whole* set (NLTK / SacreBLEU oracles), which holds only if the ranks' statistics are
summed.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from sacrebleu.metrics import BLEU
from torch.utils.data import DataLoader, Dataset

from tensorbleu_metrics.bleu import TokenIDBLEU

pl = pytest.importorskip("lightning.pytorch")

PAD = 0
N_SENTENCES = 16  # divisible by world size (2) x batch size (4): DistributedSampler adds no duplicates
BATCH_SIZE = 4
MAX_LEN, MAX_REFS = 12, 2

pytestmark = pytest.mark.filterwarnings("ignore")  # Lightning's CPU / num_workers advice


def make_corpus(seed: int = 5, n: int = N_SENTENCES) -> tuple[list, list]:
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        hyp = [rng.randint(1, 9) for _ in range(rng.randint(2, MAX_LEN))]
        sentence_refs = []
        for _ in range(rng.randint(1, MAX_REFS)):
            ref = [t if rng.random() < 0.8 else rng.randint(1, 9) for t in hyp]
            sentence_refs.append(ref[: rng.randint(max(1, len(ref) - 2), len(ref))])
        preds.append(hyp)
        refs.append(sentence_refs)
    return preds, refs


class TokenIDValidationSet(Dataset):
    """Fixed-width padded items (index, candidate (L,), references (R, L)) the default collate can stack."""

    def __init__(self) -> None:
        self.preds, self.refs = make_corpus()

    def __len__(self) -> int:
        return len(self.preds)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        pred = torch.full((MAX_LEN,), PAD, dtype=torch.int64)
        pred[: len(self.preds[i])] = torch.tensor(self.preds[i])
        # an all-PAD row is an absent reference
        target = torch.full((MAX_REFS, MAX_LEN), PAD, dtype=torch.int64)
        for j, ref in enumerate(self.refs[i]):
            target[j, : len(ref)] = torch.tensor(ref)
        return i, pred, target


class BLEUModule(pl.LightningModule):
    """Logs two TokenIDBLEU objects: one fed with ``update``, one with ``forward``."""

    def __init__(self, seen_dir: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.bleu = TokenIDBLEU(pad_id=PAD, smoothing="method1")
        self.bleu_exp = TokenIDBLEU(pad_id=PAD, smoothing="exp")
        self.seen_dir = seen_dir

    def validation_step(self, batch, batch_idx):
        idx, preds, target = batch
        self.bleu.update(preds, target)
        # Lightning calls compute() (synced over the ranks) at the epoch's end, then reset()
        self.log("val/bleu", self.bleu)
        self.bleu_exp(preds, target)
        self.log("val/bleu_exp", self.bleu_exp)
        with open(Path(self.seen_dir) / f"rank{self.global_rank}.txt", "a") as f:
            f.write(" ".join(map(str, idx.tolist())) + "\n")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lightning_ddp_spawn_logs_exact_corpus_bleu(tmp_path: Path):
    seen_dir = tmp_path / "seen"
    seen_dir.mkdir()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(TokenIDValidationSet(), batch_size=BATCH_SIZE, shuffle=False)
    start = time.perf_counter()
    results = trainer.validate(BLEUModule(str(seen_dir)), dataloaders=loader, verbose=False)
    print(f"Lightning ddp_spawn validate: {time.perf_counter() - start:.1f}s")

    # both ranks ran, on disjoint halves covering the whole set
    seen = {rank: [int(i) for i in (seen_dir / f"rank{rank}.txt").read_text().split()] for rank in range(2)}
    assert len(seen[0]) == len(seen[1]) == N_SENTENCES // 2
    assert sorted(seen[0] + seen[1]) == list(range(N_SENTENCES))

    preds, refs = make_corpus()
    nltk_value = nltk_corpus_bleu(refs, preds, smoothing_function=SmoothingFunction().method1)
    streams = [[" ".join(map(str, r[j])) if j < len(r) else None for r in refs] for j in range(MAX_REFS)]
    hyps = [" ".join(map(str, p)) for p in preds]
    sacre_value = BLEU(tokenize="none").corpus_score(hyps, streams).score / 100
    assert results[0]["val/bleu"] == pytest.approx(nltk_value, abs=1e-6)
    assert float(trainer.callback_metrics["val/bleu"]) == pytest.approx(nltk_value, abs=1e-6)
    assert results[0]["val/bleu_exp"] == pytest.approx(sacre_value, abs=1e-6)
    assert float(trainer.callback_metrics["val/bleu_exp"]) == pytest.approx(sacre_value, abs=1e-6)

    # ... and it is not what either rank alone would give
    for rank in range(2):
        half = seen[rank]
        alone = nltk_corpus_bleu(
            [refs[i] for i in half], [preds[i] for i in half], smoothing_function=SmoothingFunction().method1
        )
        assert alone != pytest.approx(nltk_value, abs=1e-6)
