"""A causal LM under ``Trainer``: ``preprocess_logits_for_metrics`` + ``make_compute_metrics(causal_lm=True)``.

A tiny Llama (built in code) whose logits are replaced by a rule — the true next token, or a known wrong one at
chosen positions — runs through the real ``Trainer.evaluate()`` loop. The logged BLEU must be 1.0 for the perfect
rule and equal NLTK on the completion tokens (predicted at t for t + 1, prompt and padding left out) for the
other, with evaluation batches of different widths (the Trainer pads them with ``-100``) and with
``eval_accumulation_steps``.
"""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import pytest
import torch

from tensorbleu_metrics.functional import corpus_bleu
from tensorbleu_metrics.integrations.transformers import make_compute_metrics, preprocess_logits_for_metrics

for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_key, "1")

PAD, EOS, BOS = 0, 1, 2
VOCAB = 24
BATCH = 3


def _examples() -> list[tuple[list[int], list[int]]]:
    """(prompt, completion) pairs; each evaluation batch of 3 has its own width, the last batch holds 2 rows."""
    rng = random.Random(0)
    widths = [(1, 3), (4, 9), (2, 6), (1, 2)]  # completion lengths per batch: short, long, middle, shortest
    out = []
    for batch, (low, high) in enumerate(widths):
        for _ in range(BATCH if batch < len(widths) - 1 else 2):
            prompt = [rng.randrange(3, VOCAB) for _ in range(rng.randint(1, 4))]
            out.append((prompt, [rng.randrange(3, VOCAB) for _ in range(rng.randint(low, high))]))
    return out


EXAMPLES = _examples()


def _row(prompt: list[int], completion: list[int]) -> tuple[list[int], list[int]]:
    """The usual causal-LM recipe: inputs BOS + prompt + completion + EOS, labels -100 on BOS and the prompt."""
    ids = [BOS, *prompt, *completion, EOS]
    return ids, [-100] * (1 + len(prompt)) + [*completion, EOS]


def _wrong(position: int, token: int) -> bool:
    """Where the imperfect rule guesses wrong: a fixed scatter of (position, true next token) pairs."""
    return (5 * token + position) % 4 == 0


def _wrong_token(token: int) -> int:
    return 3 + (token - 2) % (VOCAB - 3)  # never PAD, EOS or BOS, never the true token


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Right padding: input IDs with PAD, labels with -100."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([r["input_ids"] + [PAD] * (width - len(r["input_ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}


def _oracle_tokens(imperfect: bool) -> tuple[list[list[int]], list[list[int]]]:
    """The scored tokens of each example, from the examples alone: for each label position t + 1 that is a token,
    the rule's guess for it; both cut at the first EOS."""
    hyps, refs = [], []
    for prompt, completion in EXAMPLES:
        ids, labels = _row(prompt, completion)
        hyp = []
        for t in range(len(ids) - 1):
            if labels[t + 1] != -100:
                true = ids[t + 1]
                hyp.append(_wrong_token(true) if imperfect and _wrong(t, true) else true)
        hyps.append(hyp[: hyp.index(EOS)] if EOS in hyp else hyp)
        refs.append(list(completion))
    return hyps, refs


@pytest.fixture(scope="module")
def rule_model():
    """A 1-layer Llama whose logits put all mass on the rule's guess for the next input token."""
    pytest.importorskip("transformers")
    from transformers import LlamaConfig, LlamaForCausalLM

    class RuleLlama(LlamaForCausalLM):
        imperfect = False

        def forward(self, input_ids=None, labels=None, **kwargs):
            out = super().forward(input_ids=input_ids, labels=labels, **kwargs)
            true = torch.roll(input_ids, -1, dims=1)  # the next input token (the last column wraps: never scored)
            positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
            guess = true
            if self.imperfect:
                guess = torch.where(_wrong(positions, true), _wrong_token(true), true)
            out.logits = torch.nn.functional.one_hot(guess, VOCAB).to(out.logits.dtype) * 20.0
            return out

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        use_cache=False,
    )
    return RuleLlama(config).eval()


def _evaluate(model, tmp_path, *, imperfect: bool, accumulation: int | None, **metric_kwargs):
    """``Trainer.evaluate()`` with the ready preprocessing and ``causal_lm=True``; returns the logged metrics and
    the ``EvalPrediction`` the Trainer handed ``compute_metrics``."""
    from transformers import Trainer, TrainingArguments

    model.imperfect = imperfect
    data = [dict(zip(("input_ids", "labels"), _row(p, c), strict=True)) for p, c in EXAMPLES]
    compute_metrics = make_compute_metrics(pad_id=PAD, eos_id=EOS, causal_lm=True, **metric_kwargs)
    seen = []

    def recording(eval_pred):
        seen.append(eval_pred)
        return compute_metrics(eval_pred)

    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=BATCH,
        eval_accumulation_steps=accumulation,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=data,
        data_collator=collate,
        compute_metrics=recording,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
    )
    metrics = trainer.evaluate()
    assert len(seen) == 1
    return metrics, seen[0]


def _nltk_bleu(hyps, refs) -> tuple[float, float]:
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
    from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns on sentences without a 4-gram match (their BLEU is 0)
        corpus = nltk_corpus_bleu([[r] for r in refs], hyps)
        sentences = [nltk_sentence_bleu([r], h) for h, r in zip(hyps, refs, strict=True)]
    return corpus, sum(sentences) / len(sentences)


@pytest.mark.parametrize("accumulation", [None, 2])
def test_perfect_causal_lm_scores_one(rule_model, tmp_path, accumulation):
    metrics, pred = _evaluate(
        rule_model,
        tmp_path,
        imperfect=False,
        accumulation=accumulation,
        metrics=("bleu", "gleu", "rouge"),
        sentence_scores=True,
        options={"bleu": {"effective_order": True}},  # completions shorter than 4 tokens: sentence BLEU 1, not 0
    )
    for key in ("bleu", "bleu_sentence_mean", "gleu", "gleu_sentence_mean", "rouge1", "rougeL"):
        assert metrics[f"eval_{key}"] == 1.0, key
    assert metrics["eval_rouge2"] == pytest.approx(
        9 / 11, abs=1e-6
    )  # two completions of one token have no bigram: rouge2 0 (rouge-score's)
    preds, labels = pred.predictions, pred.label_ids
    assert preds.shape == labels.shape and preds.shape[0] == len(EXAMPLES)
    assert np.issubdtype(preds.dtype, np.integer)  # token IDs were kept, not logits
    # batches of different widths: the Trainer padded the narrower ones with -100, predictions and labels alike
    padded = preds == -100
    assert padded.any() and (labels[padded] == -100).all()
    # the same arrays unshifted, with the prompt scored (the recipe this replaces), fall short of 1
    assert make_compute_metrics(pad_id=PAD, eos_id=EOS)(pred)["bleu"] < 0.9


@pytest.mark.parametrize("accumulation", [None, 2])
def test_imperfect_causal_lm_equals_nltk_on_the_completion(rule_model, tmp_path, accumulation):
    """NLTK's BLEU is ``smoothing="method0"`` (its precision of an order a hypothesis is too short for is 0/1)."""
    metrics, pred = _evaluate(
        rule_model,
        tmp_path,
        imperfect=True,
        accumulation=accumulation,
        sentence_scores=True,
        options={"bleu": {"smoothing": "method0"}},
    )
    hyps, refs = _oracle_tokens(imperfect=True)
    corpus, sentence_mean = _nltk_bleu(hyps, refs)
    assert 0.1 < corpus < 0.9  # a non-trivial comparison
    assert metrics["eval_bleu"] == pytest.approx(corpus, abs=1e-6)
    assert metrics["eval_bleu_sentence_mean"] == pytest.approx(sentence_mean, abs=1e-6)
    assert (pred.predictions == -100).any()  # the Trainer's padding between batches was there, and did not count


def test_imperfect_causal_lm_default_bleu_gleu_rouge(rule_model, tmp_path):
    """The default (SacreBLEU's) BLEU, GLEU and ROUGE against SacreBLEU, NLTK and rouge-score."""
    import sacrebleu
    from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu
    from rouge_score.rouge_scorer import RougeScorer

    metrics, _ = _evaluate(rule_model, tmp_path, imperfect=True, accumulation=None, metrics=("bleu", "gleu", "rouge"))
    hyps, refs = _oracle_tokens(imperfect=True)
    text = [" ".join(map(str, h)) for h in hyps], [" ".join(map(str, r)) for r in refs]
    want = sacrebleu.corpus_bleu(text[0], [text[1]], tokenize="none", smooth_method="none").score / 100
    assert metrics["eval_bleu"] == pytest.approx(want, abs=1e-6)
    assert metrics["eval_bleu"] == pytest.approx(float(corpus_bleu(hyps, [[r] for r in refs])), abs=1e-6)
    assert metrics["eval_gleu"] == pytest.approx(nltk_corpus_gleu([[r] for r in refs], hyps), abs=1e-6)
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"])
    scores = [scorer.score(r, h) for h, r in zip(*text, strict=True)]
    for key in ("rouge1", "rouge2", "rougeL"):
        want = sum(s[key].fmeasure for s in scores) / len(scores)
        assert metrics[f"eval_{key}"] == pytest.approx(want, abs=1e-6)


# the alignment on hand-made arrays


def _scored(cm, preds, labels):
    return cm((np.asarray(preds), np.asarray(labels)))


def test_shift_and_mask_by_hand():
    """Row 0: prompt 7 7, completion 5 6 7 8; row 1 left-padded with PAD in the inputs, -100 in the labels;
    row 2: the Trainer's -100 padding after a narrower batch; row 3: no completion at all."""
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS, causal_lm=True)
    labels = [
        [-100, -100, -100, 5, 6, 7, 8, EOS],
        [-100, -100, -100, -100, 9, 10, 11, EOS],
        [-100, -100, 12, 13, EOS, -100, -100, -100],
        [-100, -100, -100, -100, -100, -100, -100, -100],
    ]
    preds = [
        [4, 4, 5, 6, 7, 8, EOS, 3],  # perfect: position t holds label t + 1
        [3, 3, 3, 9, 10, 11, EOS, 3],
        [4, 12, 13, EOS, 3, -100, -100, -100],  # -100: predictions padded between batches too
        [4, 4, 4, 4, 4, 4, 4, 4],
    ]
    want = float(
        corpus_bleu([[5, 6, 7, 8], [9, 10, 11], [12, 13], []], [[[5, 6, 7, 8]], [[9, 10, 11]], [[12, 13]], [[]]])
    )
    assert _scored(cm, preds, labels) == pytest.approx({"bleu": want}, abs=1e-7)
    assert want > 0.9
    # one wrong guess, in row 1 (10 -> 3): the same as the functional API on the aligned tokens
    preds[1][4] = 3
    want = float(
        corpus_bleu([[5, 6, 7, 8], [9, 3, 11], [12, 13], []], [[[5, 6, 7, 8]], [[9, 10, 11]], [[12, 13]], [[]]])
    )
    assert _scored(cm, preds, labels) == pytest.approx({"bleu": want}, abs=1e-7)
    # a guess at a -100 label (the prompt, padding) never counts
    preds[0][:2] = [EOS, 20]
    preds[2][-4:] = [20, 21, 22, 23]
    assert _scored(cm, preds, labels) == pytest.approx({"bleu": want}, abs=1e-7)


def test_narrower_arrays_and_tensors():
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS, causal_lm=True)
    labels = np.array([[-100, 5, 6, 7, 8, -100, -100]])
    preds = np.array([[5, 6, 7, 8, 3]])  # narrower than the labels: the missing columns are never scored
    assert cm((preds, labels)) == {"bleu": 1.0}
    assert cm((torch.from_numpy(preds), torch.from_numpy(labels))) == {"bleu": 1.0}
    assert cm((preds.astype(np.int32), labels[:, :5])) == {"bleu": 1.0}
    # a single column: nothing to score, no error
    assert make_compute_metrics(pad_id=PAD, causal_lm=True)((np.array([[5]]), np.array([[5]])))["bleu"] == 0.0


def test_pad_and_eos_rules_in_causal_mode():
    # pad_id in the labels is masked like -100; EOS ends both sequences
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS, causal_lm=True)
    labels = np.array([[-100, -100, 5, 6, 7, 8, EOS, PAD, PAD]])
    preds = np.array([[4, 5, 6, 7, 8, EOS, 9, 9, 9]])
    assert cm((preds, labels)) == {"bleu": 1.0}
    # a tokenizer whose pad token is its EOS (as many Llama setups): EOS is then dropped wherever it stands
    same = make_compute_metrics(pad_id=EOS, eos_id=EOS, causal_lm=True)
    assert same((preds, np.where(labels == PAD, -100, labels))) == {"bleu": 1.0}
    # without causal_lm the same arrays are misaligned by one
    assert make_compute_metrics(pad_id=PAD, eos_id=EOS)((preds, labels))["bleu"] < 1.0


def test_preprocess_logits_for_metrics():
    logits = torch.randn(2, 5, 11, generator=torch.Generator().manual_seed(0))
    ids = preprocess_logits_for_metrics(logits, torch.zeros(2, 5, dtype=torch.long))
    assert ids.dtype == torch.int32 and ids.shape == (2, 5)
    assert torch.equal(ids.long(), logits.argmax(-1))
    assert torch.equal(preprocess_logits_for_metrics((logits, torch.zeros(3)), None), ids)  # several outputs
    assert preprocess_logits_for_metrics(ids, None) is ids  # already token IDs
    with pytest.raises(TypeError, match="logits"):
        preprocess_logits_for_metrics(logits.numpy(), None)
    with pytest.raises(ValueError, match="logits"):
        preprocess_logits_for_metrics((), None)


def test_logits_given_to_compute_metrics_say_what_to_use():
    cm = make_compute_metrics(pad_id=PAD, causal_lm=True)
    with pytest.raises(TypeError, match=r"preprocess_logits_for_metrics.*causal_lm=True"):
        cm((np.zeros((1, 3, 5), dtype=np.float32), np.ones((1, 3), dtype=np.int64)))
    with pytest.raises(TypeError, match="predict_with_generate"):
        cm((torch.zeros(1, 3, 5), torch.ones(1, 3, dtype=torch.long)))


def test_causal_lm_must_be_a_bool():
    with pytest.raises(TypeError, match="causal_lm"):
        make_compute_metrics(pad_id=PAD, causal_lm=1)
    assert "causal_lm=True" in repr(make_compute_metrics(pad_id=PAD, causal_lm=np.bool_(True)))
