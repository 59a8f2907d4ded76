"""``make_compute_metrics`` on real ``EvalPrediction`` objects from a tiny offline ``Seq2SeqTrainer.evaluate()``.

Its scores must equal the functional API (itself tested against the oracles) on the cleaned sequences: ``-100``
and pad IDs dropped, each sequence cut at its first EOS.
"""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from tensorbleu_metrics.functional import (
    corpus_bleu,
    corpus_gleu,
    distinct_ngrams,
    rouge_score,
    self_bleu,
    sentence_bleu,
    sentence_gleu,
)
from tensorbleu_metrics.integrations.transformers import ComputeMetrics, make_compute_metrics

for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_key, "1")

PAD, EOS = 0, 1  # T5's convention: the decoder starts with PAD


def clean(rows, drop=(-100, PAD), eos=EOS):
    """The reference cleaning, one Python row at a time."""
    out = []
    for row in np.asarray(rows).tolist():
        row = [t for t in row if t not in drop]
        out.append(row[: row.index(eos)] if eos in row else row)
    return out


def expected(preds, labels, **opts):
    p, t = clean(preds), [[r] for r in clean(labels)]
    return float(corpus_bleu(p, t, **opts)), float(sentence_bleu(p, t, **opts).mean())


@pytest.fixture(scope="module")
def seq2seq_eval(tmp_path_factory):
    """A 1-layer T5 trained briefly to copy digit strings, then evaluated with generation; records what the
    Trainer hands to ``compute_metrics``."""
    transformers = pytest.importorskip("transformers")
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, T5Config, T5ForConditionalGeneration

    rng = random.Random(0)

    def example():
        src = [rng.randrange(2, 12) for _ in range(rng.randint(2, 5))]
        return {"input_ids": src, "labels": [*src, EOS]}

    train, evals = [example() for _ in range(256)], [example() for _ in range(24)]

    def collate(rows):
        width = max(len(r["input_ids"]) for r in rows)
        lwidth = max(len(r["labels"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [PAD] * (width - len(r["input_ids"])) for r in rows])
        labels = torch.tensor([r["labels"] + [-100] * (lwidth - len(r["labels"])) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=12,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=4,
        dropout_rate=0.0,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
    )
    model = T5ForConditionalGeneration(config)
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("seq2seq")),
        per_device_train_batch_size=32,
        per_device_eval_batch_size=5,  # uneven batches: the Trainer pads and concatenates them
        max_steps=60,
        learning_rate=1e-2,
        predict_with_generate=True,
        generation_max_length=9,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    compute_metrics = make_compute_metrics(pad_id=PAD, eos_id=EOS, sentence_scores=True)
    seen = []

    def recording(eval_pred):
        seen.append(eval_pred)
        return compute_metrics(eval_pred)

    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        data_collator=collate,
        compute_metrics=recording,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert len(seen) == 1
    assert isinstance(seen[0], transformers.EvalPrediction)
    return metrics, seen[0]


def test_evaluate_logs_corpus_bleu_of_the_cleaned_sequences(seq2seq_eval):
    metrics, pred = seq2seq_eval
    preds, labels = pred.predictions, pred.label_ids
    assert preds.shape[0] == labels.shape[0] == 24
    assert (labels == PAD).any() and (labels == EOS).any()  # padded to the generation length with pad_token_id
    assert (preds[:, 0] == PAD).all()  # the decoder start token
    bleu, sent = expected(preds, labels)
    assert 0.05 < bleu < 1  # the model has learnt something, not everything: a non-trivial comparison
    assert metrics["eval_bleu"] == pytest.approx(bleu, abs=1e-6)
    assert metrics["eval_bleu_sentence_mean"] == pytest.approx(sent, abs=1e-6)


def test_options_and_labels_with_minus_100_on_real_predictions(seq2seq_eval):
    _, pred = seq2seq_eval
    preds, labels = pred.predictions, pred.label_ids
    opts = {"n_gram": 2, "smoothing": "exp", "effective_order": True}
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS, sentence_scores=True, options={"bleu": opts})
    bleu, sent = expected(preds, labels, **opts)
    assert cm(pred) == pytest.approx({"bleu": bleu, "bleu_sentence_mean": sent}, abs=1e-6)
    # the Trainer pads between batches with -100: same scores with the pad IDs turned into -100
    masked = np.where(labels == PAD, -100, labels), np.where(preds == PAD, -100, preds)
    assert cm((masked[1], masked[0])) == pytest.approx(cm(pred), abs=1e-7)
    # and with extra -100 columns, and the labels as a separate argument
    wider = np.pad(preds, ((0, 0), (0, 3)), constant_values=-100)
    assert cm(wider, labels) == pytest.approx(cm(pred), abs=1e-7)


def test_gleu_and_diversity_on_real_predictions(seq2seq_eval):
    from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu

    _, pred = seq2seq_eval
    cm = make_compute_metrics(
        pad_id=PAD,
        eos_id=EOS,
        metrics=("bleu", "gleu", "self_bleu", "distinct"),
        sentence_scores=True,
        options={"distinct": {"n_gram": 1}},
    )
    got = cm(pred)
    p, t = clean(pred.predictions), [[r] for r in clean(pred.label_ids)]
    assert set(got) == {"bleu", "bleu_sentence_mean", "gleu", "gleu_sentence_mean", "self_bleu", "distinct_1"}
    assert got["gleu"] == pytest.approx(float(corpus_gleu(p, t)), abs=1e-6)
    assert got["gleu"] == pytest.approx(nltk_corpus_gleu(t, p), abs=1e-6)
    assert got["gleu_sentence_mean"] == pytest.approx(float(sentence_gleu(p, t).mean()), abs=1e-6)
    assert got["self_bleu"] == pytest.approx(float(self_bleu(p).mean()), abs=1e-6)
    assert got["distinct_1"] == pytest.approx(len({x for s in p for x in s}) / sum(map(len, p)), abs=1e-6)
    assert got["distinct_1"] == pytest.approx(float(distinct_ngrams(p, n_gram=1)), abs=1e-6)
    assert make_compute_metrics(pad_id=PAD, eos_id=EOS, metrics="distinct")(pred) == pytest.approx(
        {"distinct_2": float(distinct_ngrams(p, n_gram=2))}, abs=1e-6
    )


def test_rouge_on_real_predictions(seq2seq_eval):
    from rouge_score.rouge_scorer import RougeScorer

    _, pred = seq2seq_eval
    got = make_compute_metrics(pad_id=PAD, eos_id=EOS, metrics="rouge")(pred)
    p, t = clean(pred.predictions), [[r] for r in clean(pred.label_ids)]
    assert set(got) == {"rouge1", "rouge2", "rougeL"}
    want = rouge_score(p, t)
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"])
    oracle = [scorer.score(" ".join(map(str, r[0])), " ".join(map(str, h))) for h, r in zip(p, t, strict=True)]
    for key in got:
        assert got[key] == pytest.approx(float(want[f"{key}_fmeasure"].mean()), abs=1e-6)
        assert got[key] == pytest.approx(sum(o[key].fmeasure for o in oracle) / len(oracle), abs=1e-6)
    one = make_compute_metrics(pad_id=PAD, eos_id=EOS, metrics="rouge", options={"rouge": {"rouge_keys": "rouge2"}})
    assert one(pred) == pytest.approx({"rouge2": got["rouge2"]}, abs=1e-7)


def test_tokens_after_eos_are_ignored_and_eos_is_not_a_token():
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS)
    labels = np.array([[5, 6, 7, 8, EOS, -100], [5, 6, 7, 9, 10, EOS]])
    preds = np.array([[PAD, 5, 6, 7, 8, EOS, 3, 3], [PAD, 5, 6, 7, 9, 10, EOS, PAD]])
    assert cm((preds, labels)) == {"bleu": 1.0}
    no_eos = make_compute_metrics(pad_id=PAD)  # without eos_id, EOS is a token like any other
    want = corpus_bleu([[5, 6, 7, 8, EOS], [5, 6, 7, 9, 10]], [[[5, 6, 7, 8, EOS]], [[5, 6, 7, 9, 10, EOS]]])
    assert no_eos((preds[:, :6], labels)) == pytest.approx({"bleu": float(want)}, abs=1e-7)


def test_ignore_ids_for_bart_like_models():
    """BART starts decoding with EOS (2) then BOS (0): ignoring both, EOS need not end the sequence."""
    cm = make_compute_metrics(pad_id=1, ignore_ids=[0, 2])
    preds = np.array([[2, 0, 5, 6, 7, 8, 2, 1], [2, 0, 5, 6, 9, 2, 1, 1]])
    labels = np.array([[0, 5, 6, 7, 8, 2], [0, 5, 6, 9, 9, 2]])
    got = cm((preds, labels))
    want = float(corpus_bleu([[5, 6, 7, 8], [5, 6, 9]], [[[5, 6, 7, 8]], [[5, 6, 9, 9]]]))
    assert got == pytest.approx({"bleu": want}, abs=1e-7)


def test_tuple_predictions_and_torch_tensors():
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS)
    preds = np.array([[5, 6, 7, 8, EOS]])
    labels = np.array([[5, 6, 7, 8, EOS]])
    assert cm(((preds, np.zeros((1, 3))), labels)) == {"bleu": 1.0}
    assert cm((torch.from_numpy(preds), torch.from_numpy(labels))) == {"bleu": 1.0}


def test_picklable_and_repr():
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS, options={"bleu": {"n_gram": 2}})
    clone = pickle.loads(pickle.dumps(cm))
    assert isinstance(clone, ComputeMetrics) and "n_gram" in repr(clone)
    x = np.array([[5, 6, 7, EOS]])
    assert clone((x, x)) == cm((x, x)) == {"bleu": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(pad_id=None), TypeError, "pad_id"),
        (dict(pad_id=0, metrics=("bleu", "nope")), ValueError, "metrics"),
        (dict(pad_id=0, metrics=()), ValueError, "metrics"),
        (dict(pad_id=0, options={"bleu": {"smoothing": "nope"}}), ValueError, "smoothing"),
        (dict(pad_id=0, options={"bleu": {"pad_id": 3}}), ValueError, "pad_id"),
        (dict(pad_id=0, options={"rouge": {}}), ValueError, "options"),
        (dict(pad_id=0, eos_id="1"), TypeError, "eos_id"),
        (dict(pad_id=0, sentence_scores=1), TypeError, "sentence_scores"),
        (dict(pad_id=0, options={"bleu": 5}), TypeError, r"`options\['bleu'\]` must be a mapping of keyword arguments"),
        (dict(pad_id=0, options={"bleu": ["n_gram"]}), TypeError, r"`options\['bleu'\]` must be a mapping"),
        (dict(pad_id=0, options={"bleu": {2: 1}}), TypeError, r"`options\['bleu'\]` must have keyword names"),
        (dict(pad_id=0, options=[("bleu", {})]), TypeError, "`options` must be a mapping"),
        (dict(pad_id=True), TypeError, "pad_id"),
        (dict(pad_id=np.float64(0)), TypeError, "pad_id"),
        (dict(pad_id=2**70), ValueError, "pad_id"),
        (dict(pad_id=0, eos_id=[1, 2**70]), ValueError, "eos_id"),
        (dict(pad_id=0, eos_id=np.float32(1)), TypeError, "eos_id"),
        (dict(pad_id=0, ignore_ids=[np.bool_(True)]), TypeError, "ignore_ids"),
    ],
)
def test_bad_options_fail_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_compute_metrics(**kwargs)


def test_numpy_and_tensor_integers_are_ints():
    """``pad_id``, ``eos_id`` and ``ignore_ids`` as NumPy integers (a tokenizer's or a config's) or 0-d tensors."""
    preds = np.array([[PAD, 5, 6, 7, 8, EOS, 3], [PAD, 5, 6, 9, 4, EOS, PAD]])
    labels = np.array([[5, 6, 7, 8, EOS], [5, 6, 9, 8, EOS]])
    want = make_compute_metrics(pad_id=PAD, eos_id=EOS, ignore_ids=[4])((preds, labels))
    for kwargs in (
        dict(pad_id=np.int64(PAD), eos_id=np.int32(EOS), ignore_ids=np.array([4])),
        dict(pad_id=np.uint8(PAD), eos_id=[np.int64(EOS)], ignore_ids=np.int16(4)),
        dict(pad_id=torch.tensor(PAD), eos_id=torch.tensor([EOS]), ignore_ids=(torch.tensor(4),)),
    ):
        cm = make_compute_metrics(**kwargs)
        assert cm((preds, labels)) == want
        assert type(cm.pad_id) is int and all(type(i) is int for i in (*cm.eos_ids, *cm.ignore_ids))
        assert repr(cm) == repr(make_compute_metrics(pad_id=PAD, eos_id=EOS, ignore_ids=[4]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        ((np.zeros((2, 4, 9), dtype=np.float32), np.ones((2, 4), dtype=np.int64)), TypeError, "predict_with_generate"),
        ((np.ones((2, 4), dtype=np.int64), None), ValueError, "label_ids"),
        ((np.ones((2, 4), dtype=np.int64), np.ones((3, 4), dtype=np.int64)), ValueError, "rows"),
        ((np.ones((2,), dtype=np.int64), np.ones((2, 4), dtype=np.int64)), ValueError, "predictions"),
        ((np.array([[5, -7]]), np.array([[5, 6]])), ValueError, r"`predictions` \(row 0\).*-7"),
        ((np.array([[5, 6]]), np.array([[5, -1]])), ValueError, r"`label_ids`.*-1"),
        ("text", TypeError, "eval_pred"),
    ],
)
def test_bad_eval_predictions_name_the_argument(call, error, match):
    cm = make_compute_metrics(pad_id=PAD, eos_id=EOS)
    with pytest.raises(error, match=match):
        cm(call)
