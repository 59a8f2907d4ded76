"""The metrics inside ``torch.compile``: every public function is a graph break and runs eagerly, so a compiled
training step or module gives the values the same code gives uncompiled (and those equal NLTK's)."""

from __future__ import annotations

import pytest
import torch
from conftest import nltk_corpus, nltk_sentence

from tensorbleu_metrics import TokenIDBLEU, TokenIDGLEU, TokenIDROUGE
from tensorbleu_metrics import functional as F

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

_CALLS = {
    "sentence_bleu": lambda p, r: F.sentence_bleu(p, r, smoothing="method1"),
    "corpus_bleu": lambda p, r: F.corpus_bleu(p, r).reshape(1),
    "bleu_stats": lambda p, r: F.bleu_stats(p, r).matches.sum(-1).to(torch.float32),
    "sentence_gleu": lambda p, r: F.sentence_gleu(p, r),
    "rouge_score": lambda p, r: F.rouge_score(p, r, rouge_keys="rougeL")["rougeL_fmeasure"],
    "self_bleu": lambda p, r: F.self_bleu(p, groups=torch.arange(p.shape[0]) // 2),
    "distinct_ngrams": lambda p, r: F.distinct_ngrams(p).reshape(1),
}


def _batches():
    generator = torch.Generator().manual_seed(0)
    # lengths change between calls: the compiled step must not be guarded on the metric's shapes
    return [
        (torch.randint(1, 6, (4, length), generator=generator), torch.randint(1, 6, (4, 6), generator=generator))
        for length in (5, 7, 7, 9)
    ]


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("name", sorted(_CALLS))
def test_compiled_training_step_equals_eager(name, backend):
    torch._dynamo.reset()
    call = _CALLS[name]

    def step(model, x, preds, target):
        reward = call(preds, target)
        loss = (model(x).squeeze(-1)[: reward.shape[0]] * reward).sum()
        loss.backward()
        return loss.detach(), reward

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    compiled = torch.compile(step, backend=backend)
    for preds, target in _batches():
        x = torch.randn(4, 3)
        model.zero_grad()
        loss_c, reward_c = compiled(model, x, preds, target)
        grad_c = model.weight.grad.clone()
        model.zero_grad()
        loss_e, reward_e = step(model, x, preds, target)
        torch.testing.assert_close(reward_c, reward_e, rtol=0, atol=0)
        torch.testing.assert_close(loss_c, loss_e)
        torch.testing.assert_close(grad_c, model.weight.grad)


def test_compiled_rewards_equal_nltk():
    torch._dynamo.reset()
    compiled = torch.compile(lambda p, r: F.sentence_bleu(p, r, smoothing="method1", dtype=torch.float64))
    for preds, target in _batches():
        got = compiled(preds, target)
        expected = [nltk_sentence(p.tolist(), [r.tolist()], 4, "method1") for p, r in zip(preds, target, strict=True)]
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


class _Model(torch.nn.Module):
    """A module that updates its metrics in ``forward``, as a Lightning ``validation_step`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.bleu = TokenIDBLEU(smoothing="method1")
        self.gleu = TokenIDGLEU()
        self.rouge = TokenIDROUGE(rouge_keys="rougeL")

    def forward(self, x, preds, target):
        self.bleu.update(preds, target)
        self.gleu.update(preds, target)
        self.rouge.update(preds, target)
        return self.linear(x).sum()


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_metric_update_inside_a_compiled_module(backend):
    torch._dynamo.reset()
    eager = _Model()
    compiled = torch.compile(_Model(), backend=backend)
    compiled._orig_mod.load_state_dict(eager.state_dict())
    hyps, refs = [], []
    for preds, target in _batches():
        x = torch.randn(2, 3)
        torch.testing.assert_close(compiled(x, preds, target), eager(x, preds, target))
        hyps += preds.tolist()
        refs += [[r] for r in target.tolist()]
    for name in ("bleu", "gleu", "rouge"):
        got, expected = getattr(compiled, name).compute(), getattr(eager, name).compute()
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert compiled.bleu.compute().item() == pytest.approx(nltk_corpus(hyps, refs, 4, "method1"), abs=1e-6)
