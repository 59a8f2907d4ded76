"""chrF / chrF++ against SacreBLEU called here (text and token IDs), torchmetrics' ``CHRFScore`` and fastchrf where
their semantics agree; what only the ``TokenIDCHRF`` Metric does (its shared checks run over its specs in
``tests/test_metric_common.py`` and ``tests/test_metric_ddp.py``), the TRL reward and the ``compute_metrics`` entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from corpus_utils import FORMS, make_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_harness import HYPS, REFS, sacre_chrf
from sacrebleu.metrics import CHRF

from tensorbleu_metrics import TokenIDCHRF
from tensorbleu_metrics.functional import CHRFStats, chrf_from_stats, chrf_stats, corpus_chrf, sentence_chrf
from tensorbleu_metrics.functional.chrf import _whitespace_positions, _word_ids
from tensorbleu_metrics.integrations.transformers import make_compute_metrics
from tensorbleu_metrics.integrations.trl import TextReward, TokenIDReward, chrf_reward

F64 = torch.float64
EXACT = 1e-12

# letters with and without case (Latin, Cyrillic, Greek with its final sigma, CJK), a combining mark, emoji (one
# with a skin-tone modifier), İ (lowercases to two codepoints), every kind of whitespace SacreBLEU strips, ASCII
# punctuation (the word split's marks) and a non-ASCII one, NUL and a lone surrogate
ALPHABET = [
    *"abcAB", *"яЯж", *"ΣσΑ", *"日本語", "\u0301", "😀", "👍", "\U0001f3fd", "İ", *" \t\n\u3000\xa0\u2028\x1c\x85",
    *".,()\"'-!?", "«", "\x00", "\ud800",
]  # fmt: skip
TEXT = st.one_of(st.text(alphabet=ALPHABET, max_size=24), st.text(max_size=12))


OPTIONS = st.fixed_dictionaries(
    {
        "char_order": st.integers(0, 7),
        "word_order": st.integers(0, 3),
        "beta": st.integers(0, 3),
        "whitespace": st.booleans(),
        "eps_smoothing": st.booleans(),
        "lowercase": st.booleans(),
    }
).filter(lambda o: o["char_order"] + o["word_order"] > 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(TEXT, st.lists(TEXT, min_size=1, max_size=3)), min_size=1, max_size=4),
    OPTIONS,
)
def test_text_equals_sacrebleu(pairs, options):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    sentences, corpus = sacre_chrf(hyps, refs, **options)
    ours = sentence_chrf(hyps, refs, dtype=F64, **options)
    np.testing.assert_allclose(ours.numpy(), sentences, rtol=0, atol=EXACT)
    assert corpus_chrf(hyps, refs, dtype=F64, **options).item() == pytest.approx(corpus, rel=0, abs=EXACT)


@pytest.mark.parametrize("word_order", [0, 1, 2, 4])
def test_sentences_of_words_defaults(word_order):
    """Realistic sentences: words with punctuation at either end (SacreBLEU splits '(hi)' to '(hi' and ')'), several
    references of which some are absent (None) or empty."""
    rng = np.random.default_rng(word_order)
    words = ["the", "cat", "sat", "(hi)", "there,", "«quoted»", "'tis", "end.", "...", "-", "Москва", "東京", "e\u0301"]
    hyps = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(40)]
    refs = [[" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(rng.integers(1, 4))] for _ in hyps]
    refs[3] = [None, refs[3][0], None]
    refs[4] = ["", refs[4][0]]
    sentences, corpus = sacre_chrf(hyps, [[r for r in rs if r is not None] for rs in refs], word_order=word_order)
    ours = sentence_chrf(hyps, refs, word_order=word_order, dtype=F64)
    np.testing.assert_allclose(ours.numpy(), sentences, rtol=0, atol=EXACT)
    assert corpus_chrf(hyps, refs, word_order=word_order, dtype=F64).item() == pytest.approx(corpus, abs=EXACT)


@pytest.mark.parametrize("word_order", [0, 2])
def test_long_texts_of_many_symbols(word_order):
    """Long texts over hundreds of distinct characters and words, where the engine's per-order table from (n-gram,
    next symbol) to n-gram is hashed rather than direct; hypotheses sharing long stretches with a reference."""
    rng = np.random.default_rng(7 + word_order)
    chars = [chr(0x4E00 + i) for i in range(500)]
    words = ["".join(rng.choice(chars, rng.integers(1, 4))) for _ in range(600)]
    refs = [[" ".join(rng.choice(words, 400)) for _ in range(rng.integers(1, 3))] for _ in range(3)]
    hyps = [" ".join(rng.choice(words, 400)), refs[1][0][: len(refs[1][0]) // 2] + " " + words[0], refs[2][-1]]
    sentences, corpus = sacre_chrf(hyps, refs, word_order=word_order)
    ours = sentence_chrf(hyps, refs, word_order=word_order, dtype=F64)
    np.testing.assert_allclose(ours.numpy(), sentences, rtol=0, atol=EXACT)
    assert corpus_chrf(hyps, refs, word_order=word_order, dtype=F64).item() == pytest.approx(corpus, abs=EXACT)


def test_split_pieces_equal_whole_words():
    """A piece split off a word (a final or initial mark, or the rest of the word) is the same word as one standing
    alone: the engine hashes pieces in several ways, and equal words must meet."""
    hyps = ["ab- (c x. 'tis", "- ( c x .", "ab-- ((c", "a-b -a a- -"]
    refs = [["- ( c x .", "tis ' ab"], ["ab- (c x."], ["ab- - (c ("], ["- a a -"]]
    for word_order, char_order in ((1, 0), (2, 0), (2, 6)):
        sentences, _ = sacre_chrf(hyps, refs, word_order=word_order, char_order=char_order)
        ours = sentence_chrf(hyps, refs, word_order=word_order, char_order=char_order, dtype=F64)
        np.testing.assert_allclose(ours.numpy(), sentences, rtol=0, atol=EXACT)


def test_whitespace_is_str_isspace():
    codes = np.arange(0x110000, dtype=np.uint32)
    expected = [c for c in range(0x110000) if chr(c).isspace()]
    assert _whitespace_positions(codes).tolist() == expected


def test_word_split_is_sacrebleu():
    texts = ["(hi) there, «a» 'b' .. . (x ,y) -- a.b. !a?", "", "  ", "a", "日本語。 東京.", "(", "((a))"]
    ids, lengths = _word_ids(texts)
    remove = CHRF(word_order=2)._remove_punctuation
    words = [remove(t) for t in texts]
    assert lengths.tolist() == [len(w) for w in words]
    vocab: dict[str, int] = {}
    for word, i in zip([w for ws in words for w in ws], ids.tolist(), strict=True):
        assert vocab.setdefault(word, i) == i  # one id per distinct word
    assert len(set(vocab.values())) == len(vocab)


# ---------------------------------------------------------------- token IDs


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("char_order,beta,eps", [(6, 2, False), (1, 2, False), (3, 1, True), (4, 3, False)])
def test_token_ids_equal_sacrebleu_on_joined_ids(form, char_order, beta, eps):
    preds, refs = make_corpus(seed=char_order, n=30, max_refs=3, vocab=6, max_len=10)
    hyps = [" ".join(map(str, p)) for p in preds]
    texts = [[" ".join(map(str, r)) for r in rs] for rs in refs]
    sentences, corpus = sacre_chrf(hyps, texts, char_order=0, word_order=char_order, beta=beta, eps_smoothing=eps)
    options = {"char_order": char_order, "beta": beta, "eps_smoothing": eps, "dtype": F64}
    p, t = FORMS[form](preds, refs)
    pad = {"pad_id": 0} if form == "padded" else {}
    np.testing.assert_allclose(sentence_chrf(p, t, **pad, **options).numpy(), sentences, rtol=0, atol=EXACT)
    assert corpus_chrf(p, t, **pad, **options).item() == pytest.approx(corpus, abs=EXACT)


def test_token_ids_pad_and_eos():
    preds = torch.tensor([[5, 6, 7, 2, 9], [5, 0, 6, 0, 0]])
    target = torch.tensor([[5, 6, 8, 2, 7], [5, 6, 0, 0, 0]])
    ours = sentence_chrf(preds, target, pad_id=0, eos_id=2, char_order=3, dtype=F64)
    expected, _ = sacre_chrf(["5 6 7", "5 6"], [["5 6 8"], ["5 6"]], char_order=0, word_order=3)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=EXACT)


def test_accelerator_path_on_the_cpu(monkeypatch):
    """The torch sorted pass that accelerators run (forced on the CPU) gives the engine's statistics, text too."""
    from tensorbleu_metrics.functional import _device

    preds, refs = make_corpus(seed=4, n=25)
    p, t = FORMS["padded"](preds, refs)
    engine = chrf_stats(p, t, pad_id=0), chrf_stats(HYPS, REFS, word_order=2)
    monkeypatch.setattr(_device, "host_reads_are_free", lambda device: False)
    sorted_pass = chrf_stats(p, t, pad_id=0), chrf_stats(HYPS, REFS, word_order=2)
    for ours, theirs in zip(engine, sorted_pass, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.cuda
def test_token_ids_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    preds, refs = make_corpus(seed=3, n=20)
    p, t = FORMS["padded"](preds, refs)
    cpu = sentence_chrf(p, t, pad_id=0, dtype=F64)
    gpu = sentence_chrf(p.cuda(), t.cuda(), pad_id=0, dtype=F64)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=EXACT)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: sentence_chrf([[1, 2]], [[[1, 2]]], word_order=2), ValueError, "token IDs have no words"),
        (lambda: sentence_chrf([[1, 2]], [[[1, 2]]], lowercase=True), ValueError, "no case"),
        (lambda: sentence_chrf(["a"], ["a"], pad_id=0), ValueError, "apply to token IDs"),
        (lambda: sentence_chrf("abc", ["a"]), TypeError, "one str"),
        (lambda: sentence_chrf(["a", "b"], ["a"]), ValueError, "2 sentences"),
        (lambda: sentence_chrf(["a"], [[None]]), ValueError, "no reference"),
        (lambda: sentence_chrf(["a"], [[3]]), TypeError, r"target\[0\]\[0\]"),
        (lambda: sentence_chrf(["a", 3], ["a", "b"]), TypeError, r"preds\[1\]"),
        (lambda: sentence_chrf(["a"], ["a"], char_order=0), ValueError, "at least 1"),
        (lambda: sentence_chrf(["a"], ["a"], beta=-1), ValueError, "beta"),
        (lambda: sentence_chrf(["a"], ["a"], whitespace=1), TypeError, "whitespace"),
        (lambda: chrf_from_stats((torch.zeros(2), torch.zeros(2), torch.zeros(2))), TypeError, "CHRFStats"),
    ],
)
def test_errors_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_stats_and_from_stats():
    hyps, refs = ["the cat sat", "a dog", ""], [["the cat sat"], ["the dog", "a dog barked"], ["x"]]
    stats = chrf_stats(hyps, refs, word_order=2)
    assert isinstance(stats, CHRFStats) and stats.hyp.shape == (3, 8) and stats.hyp.dtype == torch.int64
    torch.testing.assert_close(chrf_from_stats(stats), sentence_chrf(hyps, refs, word_order=2))
    torch.testing.assert_close(chrf_from_stats(stats.sum()), corpus_chrf(hyps, refs, word_order=2))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 6),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_compiled_scores_equal_torch_scores(n_orders, rows, beta, eps, seed):
    """The CPU's compiled scorer and the accelerators' batched torch scorer (forced on the CPU) give the same bits,
    sentence and corpus, on statistics with empty orders on either side; int32 statistics too."""
    from tensorbleu_metrics.functional import _device

    rng = np.random.default_rng(seed)
    hyp = torch.from_numpy(rng.integers(0, 6, (rows, n_orders)) * (rng.random((rows, n_orders)) < 0.8))
    ref = torch.from_numpy(rng.integers(0, 6, (rows, n_orders)) * (rng.random((rows, n_orders)) < 0.8))
    matches = torch.minimum(hyp, ref) - torch.from_numpy(rng.integers(0, 2, (rows, n_orders))).clamp(max=hyp)
    stats = CHRFStats(hyp, ref, matches.clamp(min=0).int())
    options = {"beta": beta, "eps_smoothing": eps, "dtype": F64}
    compiled = chrf_from_stats(stats, **options), chrf_from_stats(stats.sum(), **options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_device, "host_reads_are_free", lambda device: False)
        batched = chrf_from_stats(stats, **options), chrf_from_stats(stats.sum(), **options)
    for ours, theirs in zip(compiled, batched, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


# ---------------------------------------------------------------- other implementations


def test_torchmetrics_chrf_is_eps_smoothing():
    """torchmetrics' CHRFScore averages per-order F scores (SacreBLEU's eps_smoothing=True) at the sentence level;
    its corpus score agrees where every sentence's references hold n-grams of every order."""
    from torchmetrics.functional.text import chrf_score

    rng = np.random.default_rng(5)
    words = ["the", "cat", "sat", "(hi)", "there,", "Москва", "東京", "catalogue", "x"]
    hyps = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(30)]
    refs = [[" ".join(rng.choice(words, rng.integers(4, 9))) + " dogmatic" for _ in range(2)] for _ in hyps]
    for word_order in (0, 2):
        corpus, sentences = chrf_score(hyps, refs, n_word_order=word_order, return_sentence_level_score=True)
        ours = sentence_chrf(hyps, refs, word_order=word_order, eps_smoothing=True, dtype=F64)
        np.testing.assert_allclose(ours.numpy(), sentences.double().numpy(), rtol=0, atol=1e-6)
        ours_corpus = corpus_chrf(hyps, refs, word_order=word_order, eps_smoothing=True, dtype=F64)
        assert ours_corpus.item() == pytest.approx(corpus.item(), abs=1e-6)


def test_fastchrf_equal():
    fastchrf = pytest.importorskip("fastchrf")
    rng = np.random.default_rng(6)
    words = ["the", "cat", "sat", "(hi)", "there,", "Москва", "東京", "x"]
    hyps = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(30)]
    refs = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in hyps]
    for eps in (False, True):
        theirs = fastchrf.pairwise_chrf([[h] for h in hyps], [[r] for r in refs], eps_smoothing=eps)
        ours = sentence_chrf(hyps, refs, eps_smoothing=eps, dtype=F64)
        np.testing.assert_allclose(ours.numpy(), [row[0][0] / 100 for row in theirs], rtol=0, atol=EXACT)


# ---------------------------------------------------------------- the Metric
# The checks every Metric shares run over TokenIDCHRF's specs (text and token IDs) in tests/test_metric_common.py and
# tests/test_metric_ddp.py.


def test_metric_states_and_token_id_words():
    assert TokenIDCHRF(word_order=2).hyp.shape == (8,)  # one sum per character and word n-gram order
    preds, refs = make_corpus(seed=9, n=12)
    with pytest.raises(ValueError, match="no words"):
        TokenIDCHRF(word_order=2).update(preds, refs)


# ---------------------------------------------------------------- integrations


def test_text_reward():
    reward = chrf_reward("translation", word_order=2, dtype=F64)
    assert isinstance(reward, TextReward) and reward.__name__ == "chrf"
    conversation = [[{"role": "assistant", "content": h}] for h in HYPS]
    scores = reward(prompts=None, completions=conversation, completion_ids=None, translation=REFS, trainer_state=None)
    np.testing.assert_allclose(scores, sacre_chrf(HYPS, REFS, word_order=2)[0], rtol=0, atol=EXACT)
    assert reward(prompts=None, completions=HYPS[:1], translation=["the cat sat on a mat"]) == scores[:1]
    import pickle

    assert pickle.loads(pickle.dumps(reward))(completions=HYPS, translation=REFS) == scores
    with pytest.raises(ValueError, match="`translation`"):
        reward(completions=HYPS)
    with pytest.raises(ValueError, match="applies to token IDs"):
        chrf_reward(eos_token_id=2)
    with pytest.raises(ValueError, match="`on`"):
        chrf_reward(on="bytes")
    with pytest.raises(ValueError, match="word_order"):
        chrf_reward(on="token_ids", eos_token_id=2, word_order=2)


def test_token_id_reward():
    reward = chrf_reward(on="token_ids", eos_token_id=2, char_order=3, dtype=F64)
    assert isinstance(reward, TokenIDReward)
    scores = reward(completion_ids=[[5, 6, 7, 2, 9], [5, 9]], reference=[[[5, 6, 8], [5, 6, 7]], [5, 6, 7]])
    expected = sacre_chrf(["5 6 7", "5 9"], [["5 6 8", "5 6 7"], ["5 6 7"]], char_order=0, word_order=3)[0]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=EXACT)


def test_compute_metrics_entry():
    compute = make_compute_metrics(pad_id=0, eos_id=1, metrics=("bleu", "chrf"), sentence_scores=True)
    predictions = np.array([[5, 6, 7, 8, 1, 0], [5, 6, 9, 1, -100, -100]])
    label_ids = np.array([[5, 6, 7, 8, 1], [5, 6, 9, 8, 1]])
    out = compute((predictions, label_ids))
    sentences, corpus = sacre_chrf(["5 6 7 8", "5 6 9"], [["5 6 7 8"], ["5 6 9 8"]], char_order=0, word_order=6)
    assert out["chrf"] == pytest.approx(corpus, abs=1e-6)
    assert out["chrf_sentence_mean"] == pytest.approx(np.mean(sentences), abs=1e-6)
    orders = make_compute_metrics(pad_id=0, metrics="chrf", options={"chrf": {"char_order": 2}})
    assert orders((predictions, label_ids))["chrf"] == pytest.approx(
        sacre_chrf(["5 6 7 8 1", "5 6 9 1"], [["5 6 7 8 1"], ["5 6 9 8 1"]], char_order=0, word_order=2)[1], abs=1e-6
    )
