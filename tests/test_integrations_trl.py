"""TRL rewards (``tensorbleu_metrics.integrations.trl``) called exactly as ``GRPOTrainer`` calls them.

The rewards must equal the functional API (itself tested against NLTK and SacreBLEU; one NLTK check is repeated
here) on the same token IDs with the EOS stripped, whatever the reference form; a 2-step ``GRPOTrainer`` run
checks the calling convention of the installed TRL.
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.functional import rouge_score, self_bleu, sentence_bleu, sentence_gleu
from tensorbleu_metrics.integrations.trl import (
    TokenIDReward,
    bleu_reward,
    diversity_reward,
    gleu_reward,
    rouge_reward,
)

ROOT = Path(__file__).resolve().parents[1]
EOS = 2
REWARD_OPTS = {"smoothing": "exp", "effective_order": True}  # the reward's default options


def trl_kwargs(n: int, **columns):
    """What GRPOTrainer passes besides prompts/completions/completion_ids: the columns and its own three."""
    return {**columns, "trainer_state": object(), "log_extra": lambda *a, **k: None, "log_metric": lambda *a: None}


def expected_bleu(completions, refs, **opts):
    """sentence_bleu on the ragged lists, cut at the first EOS (the EOS excluded)."""
    cut = [c[: c.index(EOS)] if EOS in c else c for c in completions]
    refs = [[r[: r.index(EOS)] if EOS in r else r for r in rs] for rs in refs]
    return sentence_bleu(cut, refs, dtype=torch.float64, **{**REWARD_OPTS, **opts}).tolist()


def test_called_as_grpo_trainer_calls_it():
    completion_ids = [[5, 6, 7, 8, 2], [5, 6, 9], [2], [9, 8, 7, 6, 5, 4, 3]]
    refs = [[5, 6, 7, 8], [5, 6, 7, 8, 9], [5, 6], [9, 8, 7, 6, 5, 3]]
    reward = bleu_reward(eos_token_id=EOS)
    out = reward(
        prompts=["a", "a", "b", "b"],
        completions=["x"] * 4,
        completion_ids=completion_ids,
        **trl_kwargs(4, reference=refs, other_column=[1, 2, 3, 4]),
    )
    assert isinstance(out, list) and all(type(x) is float for x in out)
    assert out == pytest.approx(expected_bleu(completion_ids, [[r] for r in refs]), abs=1e-6)
    assert out[0] == 1.0 and out[2] == 0.0  # EOS is not a token; an empty completion scores 0, not NaN


def test_matches_nltk_oracle(oracle):
    completion_ids = [[5, 6, 7, 8, 9, 2], [5, 6, 9, 10, 11, 12], [7, 7, 7, 2]]
    refs = [[[5, 6, 7, 8, 10]], [[5, 6, 9, 10, 12], [6, 9, 10, 11]], [[7, 7, 8]]]
    reward = bleu_reward("refs", eos_token_id=EOS, smoothing="method1", dtype=torch.float64)
    out = reward(prompts=None, completions=None, completion_ids=completion_ids, **trl_kwargs(3, refs=refs))
    for got, hyp, rs in zip(out, completion_ids, refs, strict=True):
        hyp = hyp[: hyp.index(EOS)] if EOS in hyp else hyp
        assert got == pytest.approx(oracle.nltk_sentence(hyp, rs, 4, "method1"), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.lists(st.integers(3, 9), max_size=8),  # completion tokens (no EOS)
            st.lists(st.lists(st.integers(3, 9), max_size=8), min_size=1, max_size=3),  # references
            st.booleans(),  # did it end with EOS (or hit the length limit)?
        ),
        min_size=1,
        max_size=6,
    ),
    n_gram=st.integers(1, 4),
)
def test_eos_present_or_absent_gives_the_same_reward(data, n_gram):
    """Property: the reward equals sentence_bleu of the EOS-free tokens; the trailing EOS changes nothing."""
    reward = bleu_reward(eos_token_id=EOS, n_gram=n_gram, dtype=torch.float64)
    tokens = [c for c, _, _ in data]
    refs = [rs for _, rs, _ in data]
    with_eos = [[*c, EOS] if ended else c for c, _, ended in data]
    kw = trl_kwargs(len(data), reference=refs)
    a = reward(prompts=None, completions=None, completion_ids=with_eos, **kw)
    b = reward(prompts=None, completions=None, completion_ids=tokens, **kw)
    assert a == b
    assert a == pytest.approx(expected_bleu(tokens, refs, n_gram=n_gram), abs=1e-12)
    # tokens after an EOS (not something TRL passes) are cut, as the functional API's eos_id does
    after = [[*c, EOS, 4, 5] for c in tokens]
    assert reward(prompts=None, completions=None, completion_ids=after, **kw) == a


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 2**63 - 1) | st.sampled_from([0, 1, EOS, 7]), max_size=7),
        min_size=1,
        max_size=5,
    )
)
def test_lists_equal_tensors_and_numpy_integers(rows):
    """Property: lists of ints (one NumPy conversion of the whole batch), tuples of NumPy integers and 1-D tensors
    (the per-sequence path) become the same padded rows."""
    import numpy as np

    from tensorbleu_metrics.integrations._convert import padded_array

    names = [f"row[{i}]" for i in range(len(rows))]
    expected = padded_array(rows, names, (EOS,))
    for other in ([tuple(np.int64(t) for t in r) for r in rows], [torch.tensor(r, dtype=torch.int64) for r in rows]):
        np.testing.assert_array_equal(padded_array(other, names, (EOS,)), expected)
    for row, out in zip(rows, expected, strict=True):
        end = row.index(EOS) if EOS in row else len(row)
        assert out[:end].tolist() == row[:end] and out[end] == -2 and (out[len(row) + 1 :] == -1).all()


def test_several_eos_ids():
    reward = bleu_reward(eos_token_id=[EOS, 3])
    kw = trl_kwargs(2, reference=[[5, 6, 7, 8], [5, 6, 7, 8]])
    out = reward(prompts=None, completions=None, completion_ids=[[5, 6, 7, 8, 3], [5, 6, 7, 8, 2]], **kw)
    assert out == [1.0, 1.0]


def test_references_as_strings_token_ids_and_several(tiny_tokenizer):
    tok = tiny_tokenizer
    texts = ["w1 w2 w3 w4", "w4 w3 w2", "w1 w1 w2 w2 w3"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    completion_ids = [[*ids[0], tok.eos_token_id], ids[1][:2], [*ids[2][:4], tok.eos_token_id]]
    base = dict(prompts=["p"] * 3, completions=["c"] * 3, completion_ids=completion_ids)
    from_ids = bleu_reward("ref", eos_token_id=tok.eos_token_id)(**base, **trl_kwargs(3, ref=ids))
    reward = bleu_reward("ref", tokenizer=tok)  # EOS taken from the tokenizer
    from_text = reward(**base, **trl_kwargs(3, ref=texts))
    assert from_text == from_ids == pytest.approx(expected_bleu_tok(completion_ids, [[i] for i in ids], tok))
    # several references per row, as strings, as ID lists, or mixed
    several = [[texts[0], texts[1]], [texts[1]], [texts[2], texts[0], texts[1]]]
    several_ids = [[tok(t, add_special_tokens=False)["input_ids"] for t in rs] for rs in several]
    mixed = [[several[0][0], several_ids[0][1]], several_ids[1], several[2]]
    want = expected_bleu_tok(completion_ids, several_ids, tok)
    for refs in (several, several_ids, mixed):
        assert reward(**base, **trl_kwargs(3, ref=refs)) == pytest.approx(want, abs=1e-6)


def expected_bleu_tok(completion_ids, refs, tok):
    eos = tok.eos_token_id
    cut = [c[: c.index(eos)] if eos in c else c for c in completion_ids]
    return sentence_bleu(cut, refs, **REWARD_OPTS).tolist()


def test_text_references_are_encoded_once(tiny_tokenizer):
    calls = []

    class CountingTokenizer:
        eos_token_id = tiny_tokenizer.eos_token_id

        def __call__(self, texts, **kwargs):
            calls.append((list(texts), kwargs))
            return tiny_tokenizer(texts, **kwargs)

    reward = bleu_reward(tokenizer=CountingTokenizer(), reference_prefix="")
    refs = ["w1 w2 w3", "w1 w2 w3", "w4 w5"]
    kw = dict(prompts=None, completions=None, completion_ids=[[4, 5, 6], [4, 5], [7, 8]])
    first = reward(**kw, **trl_kwargs(3, reference=refs))
    assert calls == [(["w1 w2 w3", "w4 w5"], {"add_special_tokens": False})]  # unique texts, one call
    assert reward(**kw, **trl_kwargs(3, reference=refs)) == first
    assert len(calls) == 1  # cached
    reward(**kw, **trl_kwargs(3, reference=["w4 w5", "w6", "w1 w2 w3"]))
    assert len(calls) == 2 and calls[1][0] == ["w6"]


def test_reference_prefix_is_prepended_before_encoding():
    seen = []

    def tokenizer(texts, add_special_tokens):
        seen.extend(texts)
        return {"input_ids": [[3 + len(t)] for t in texts]}

    reward = bleu_reward(tokenizer=tokenizer, eos_token_id=EOS, reference_prefix=" ")
    reward(prompts=None, completions=None, completion_ids=[[4]], reference=["ab"])
    assert seen == [" ab"]


def test_name_options_and_pickling():
    from trl.trainer.utils import get_callable_name

    reward = bleu_reward(eos_token_id=EOS, n_gram=2, smoothing="add-k", name="bleu2")
    assert get_callable_name(reward) == "bleu2" and reward.__name__ == "bleu2"
    assert get_callable_name(bleu_reward(eos_token_id=EOS)) == "bleu"
    completion_ids, refs = [[5, 6, 7, 2], [5, 9]], [[5, 6, 8], [5, 9, 9]]
    kw = trl_kwargs(2, reference=refs)
    out = reward(prompts=None, completions=None, completion_ids=completion_ids, **kw)
    assert out == pytest.approx(expected_bleu(completion_ids, [[r] for r in refs], n_gram=2, smoothing="add-k"))
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "bleu2"
    assert clone(prompts=None, completions=None, completion_ids=completion_ids, **kw) == out
    assert "bleu2" in repr(reward)


def test_empty_batch():
    assert bleu_reward(eos_token_id=EOS)(prompts=[], completions=[], completion_ids=[], reference=[]) == []


@pytest.mark.parametrize(
    ("make", "call", "error", "match"),
    [
        (dict(), dict(completion_ids=None, reference=[[1]]), ValueError, "completion_ids"),
        (dict(), dict(completion_ids=[[5]], answer=[[5]]), ValueError, r"column `reference`.*answer"),
        (dict(), dict(completion_ids=[[5], [6]], reference=[[5]]), ValueError, r"`reference` must hold one value"),
        (dict(), dict(completion_ids=[[5]], reference=["text"]), ValueError, "tokenizer"),
        (dict(), dict(completion_ids=[[5]], reference=[[]]), ValueError, r"`reference\[0\]` is empty"),
        (dict(), dict(completion_ids=[[5]], reference=[3.5]), TypeError, r"`reference\[0\]`"),
        (dict(), dict(completion_ids=[[5]], reference=[[[5], 7]]), TypeError, r"`reference\[0\]\[1\]`"),
        (dict(), dict(completion_ids=[[5, -3]], reference=[[5]]), ValueError, r"`completion_ids\[0\]`.*-3"),
        (dict(), dict(completion_ids=[[5], [5, 1.5]], reference=[[5], [5]]), TypeError, r"completion_ids\[1\]"),
        (dict(), dict(completion_ids=[[5]], reference=[[5, -1]]), ValueError, r"`reference\[0\]`.*-1"),
        (dict(), dict(completion_ids="5 6", reference=[[5]]), TypeError, "completion_ids"),
        # lists that NumPy would read as another kind of array take the per-sequence path and its errors
        (dict(), dict(completion_ids=[[True, False]], reference=[[5]]), TypeError, r"ids\[0\].*bool"),
        (dict(), dict(completion_ids=[[5, "6"]], reference=[[5]]), TypeError, r"completion_ids\[0\]"),
        (dict(), dict(completion_ids=[[5], [2**63]], reference=[[5], [5]]), ValueError, r"ids\[1\].*int64 range"),
        (dict(), dict(completion_ids=[[5], [[5, 6]]], reference=[[5], [5]]), TypeError, r"ids\[1\].*nested"),
        (dict(), dict(completion_ids=[[5, None]], reference=[[5]]), TypeError, r"completion_ids\[0\]"),
        (dict(), dict(completion_ids=[[5]], reference=[[5, 2**64]]), ValueError, r"`reference\[0\]`.*int64"),
    ],
)
def test_bad_calls_name_the_argument(make, call, error, match):
    reward = bleu_reward(eos_token_id=EOS, **make)
    with pytest.raises(error, match=match):
        reward(prompts=None, completions=None, **call)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(), ValueError, "eos_token_id"),  # no EOS known: it would count as a token
        (dict(eos_token_id=EOS, smoothing="nope"), ValueError, "smoothing"),
        (dict(eos_token_id=EOS, n_gram=0), ValueError, "n_gram"),
        (dict(eos_token_id=EOS, weights=[(1, 0, 0, 0), (0.5, 0.5, 0, 0)]), ValueError, "one score per completion"),
        (dict(eos_token_id=EOS, pad_id=0), ValueError, "pad_id"),
        (dict(eos_token_id=EOS, eos_id=2), ValueError, "eos_id"),
        # the functional API's name, without `eos_token_id`: the message says which name the rewards take
        (dict(eos_id=2), ValueError, r"`eos_id` is the functional API's name.*`eos_token_id`"),
        (dict(pad_id=0), ValueError, "`pad_id` is not needed"),
        (dict(eos_token_id="2"), TypeError, "eos_token_id"),
        (dict(eos_token_id=2**70), ValueError, r"`eos_token_id` must lie in the int64 range"),
        (dict(eos_token_id=[EOS, 2**64]), ValueError, r"`eos_token_id` must lie in the int64 range"),
        (dict(eos_token_id=[EOS, True]), TypeError, "eos_token_id"),
        (dict(eos_token_id=EOS, device="gpu"), ValueError, "`device` must name a torch device"),
        (dict(eos_token_id=EOS, device=[0]), TypeError, "`device`"),
        (dict(eos_token_id=EOS, device="meta"), ValueError, "`device` 'meta'"),
        pytest.param(
            dict(eos_token_id=EOS, device="cuda"),
            ValueError,
            "`device` 'cuda' cannot be used",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available"),
        ),
        (dict(eos_token_id=EOS, name=""), TypeError, "name"),
        (dict(eos_token_id=EOS, reference_column=None), TypeError, "reference_column"),
        (dict(eos_token_id=EOS, bogus=1), TypeError, "bogus"),
    ],
)
def test_bad_options_fail_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        bleu_reward(**kwargs)
    with pytest.raises(ValueError, match="metric"):
        TokenIDReward("nope", reference_column="reference", eos_token_id=EOS)


def test_numpy_integers_are_accepted_wherever_ints_are():
    import numpy as np

    completion_ids, refs = [[5, 6, 7, 2], [5, 9, 2]], [[5, 6, 8], [5, 9, 9]]
    kw = dict(prompts=["p", "p"], completions=None, completion_ids=completion_ids, **trl_kwargs(2, reference=refs))
    pairs = [
        (bleu_reward(eos_token_id=np.int64(EOS), n_gram=np.int64(2)), bleu_reward(eos_token_id=EOS, n_gram=2)),
        (gleu_reward(eos_token_id=[np.int32(EOS)], max_len=np.int64(3)), gleu_reward(eos_token_id=[EOS], max_len=3)),
        (rouge_reward(eos_token_id=np.uint8(EOS)), rouge_reward(eos_token_id=EOS)),
        (
            diversity_reward(eos_token_id=np.int16(EOS), n_gram=np.int64(2)),
            diversity_reward(eos_token_id=EOS, n_gram=2),
        ),
    ]
    for numpy_reward, int_reward in pairs:
        assert numpy_reward.eos_token_ids == (EOS,) and type(numpy_reward.eos_token_ids[0]) is int
        assert numpy_reward(**kw) == int_reward(**kw)
    # NumPy integers in the completions and the reference column
    numpy_kw = dict(
        kw,
        completion_ids=[[np.int64(t) for t in c] for c in completion_ids],
        reference=[[np.int32(t) for t in r] for r in refs],
    )
    assert bleu_reward(eos_token_id=EOS)(**numpy_kw) == bleu_reward(eos_token_id=EOS)(**kw)


def test_rouge_lsum_sep_id_is_checked_when_built():
    """A ``sep_id`` that is an EOS ID would be cut with the EOS (every rougeLsum score 0): refused, named."""
    import numpy as np

    for kwargs in (dict(eos_token_id=EOS, sep_id=EOS), dict(eos_token_id=[7, EOS], sep_id=np.int64(EOS))):
        with pytest.raises(ValueError, match=r"`sep_id` \(2\) is also an `eos_token_id`"):
            rouge_reward(rouge_key="rougeLsum", **kwargs)

    class Tokenizer:
        eos_token_id = 4

    with pytest.raises(ValueError, match="`sep_id`"):
        rouge_reward(rouge_key="rougeLsum", tokenizer=Tokenizer(), sep_id=4)
    with pytest.raises(ValueError, match="`sep_id` must be >= 0"):
        rouge_reward(rouge_key="rougeLsum", eos_token_id=EOS, sep_id=-1)
    with pytest.raises(TypeError, match="`sep_id`"):
        rouge_reward(rouge_key="rougeLsum", eos_token_id=EOS, sep_id="4")
    # a NumPy sep_id scores as the int does
    ids = dict(prompts=None, completions=None, completion_ids=[[5, 6, 4, 7, 8, 2]], reference=[[7, 8, 4, 5, 9]])
    a = rouge_reward(rouge_key="rougeLsum", eos_token_id=EOS, sep_id=np.int64(4))(**ids)
    assert a == rouge_reward(rouge_key="rougeLsum", eos_token_id=EOS, sep_id=4)(**ids)
    assert 0 < a[0] < 1


def _strip(seqs, eos=EOS):
    return [s[: s.index(eos)] if eos in s else s for s in seqs]


def test_gleu_reward_equals_nltk_and_the_functional_api():
    from nltk.translate.gleu_score import sentence_gleu as nltk_gleu

    completion_ids = [[5, 6, 7, 8, 9, 2], [5, 6, 9, 10, 11, 12], [7, 7, 7, 2], [2]]
    refs = [[[5, 6, 7, 8, 10]], [[5, 6, 9, 10, 12], [6, 9, 10, 11]], [[7, 7, 8]], [[4, 5]]]
    reward = gleu_reward("refs", eos_token_id=EOS, max_len=3, dtype=torch.float64)
    assert reward.__name__ == "gleu"
    out = reward(prompts=None, completions=None, completion_ids=completion_ids, **trl_kwargs(4, refs=refs))
    hyps = _strip(completion_ids)
    assert out == sentence_gleu(hyps, refs, max_len=3, dtype=torch.float64).tolist()
    for got, hyp, rs in zip(out, hyps, refs, strict=True):
        assert got == pytest.approx(nltk_gleu(rs, hyp, max_len=3), abs=1e-12)
    # the trailing EOS changes nothing
    assert reward(prompts=None, completions=None, completion_ids=hyps, **trl_kwargs(4, refs=refs)) == out


@pytest.mark.parametrize(("key", "measure"), [("rougeL", "fmeasure"), ("rouge2", "recall"), ("rouge1", "precision")])
def test_rouge_reward_equals_google_rouge_score(key, measure):
    from rouge_score.rouge_scorer import RougeScorer

    completion_ids = [[5, 6, 7, 8, 9, 2], [5, 6, 9, 10, 11, 12], [7, 7, 7, 2], [2]]
    refs = [[[5, 6, 7, 8, 10]], [[5, 6, 9, 10, 12], [6, 9, 10, 11]], [[7, 7, 8]], [[4, 5]]]
    reward = rouge_reward("refs", rouge_key=key, measure=measure, eos_token_id=EOS, dtype=torch.float64)
    assert reward.__name__ == key
    out = reward(prompts=None, completions=None, completion_ids=completion_ids, **trl_kwargs(4, refs=refs))
    hyps = _strip(completion_ids)
    want = rouge_score(hyps, refs, rouge_keys=key, dtype=torch.float64)[f"{key}_{measure}"]
    assert out == want.tolist()
    scorer = RougeScorer([key])
    for got, hyp, rs in zip(out, hyps, refs, strict=True):
        joined = [" ".join(map(str, r)) for r in rs]
        oracle = scorer.score_multi(joined, " ".join(map(str, hyp)))[key]
        assert got == pytest.approx(getattr(oracle, measure), abs=1e-12)


def test_rouge_reward_options():
    with pytest.raises(ValueError, match="measure"):
        rouge_reward(eos_token_id=EOS, measure="f1")
    with pytest.raises(TypeError, match="rouge_key"):
        rouge_reward(eos_token_id=EOS, rouge_key=["rouge1", "rouge2"])
    with pytest.raises(ValueError, match="rouge_keys"):
        rouge_reward(eos_token_id=EOS, rouge_keys="rouge1")
    with pytest.raises(ValueError, match="rouge"):
        rouge_reward(eos_token_id=EOS, rouge_key="rouge0")
    with pytest.raises(ValueError, match="sep_id"):
        rouge_reward(eos_token_id=EOS, rouge_key="rougeLsum")
    lsum = rouge_reward(eos_token_id=EOS, rouge_key="rougeLsum", sep_id=4)
    out = lsum(prompts=None, completions=None, completion_ids=[[5, 6, 4, 7, 8, 2]], reference=[[7, 8, 4, 5, 6]])
    assert out == [1.0]


def nltk_self_bleu(samples, groups):
    """Texygen's Self-BLEU, one sample at a time: NLTK sentence_bleu against the other samples of its group."""
    from nltk.translate.bleu_score import SmoothingFunction
    from nltk.translate.bleu_score import sentence_bleu as nltk_bleu

    out = []
    for i, (sample, g) in enumerate(zip(samples, groups, strict=True)):
        others = [s for j, (s, h) in enumerate(zip(samples, groups, strict=True)) if h == g and j != i]
        out.append(nltk_bleu(others, sample, smoothing_function=SmoothingFunction().method1) if others else 0.0)
    return out


def test_diversity_groups_completions_by_prompt_not_by_position():
    rng = random.Random(0)
    prompts = ["a", "b", "c"] * 3 + ["d"]  # interleaved groups, and a prompt with a single completion
    rng.shuffle(prompts)
    completion_ids = [
        [rng.randrange(3, 8) for _ in range(rng.randint(3, 7))] + [EOS] * rng.randint(0, 1) for _ in prompts
    ]
    reward = diversity_reward(eos_token_id=EOS, dtype=torch.float64)
    assert reward.__name__ == "diversity" and reward.reference_column is None
    out = reward(prompts=prompts, completions=None, completion_ids=completion_ids, **trl_kwargs(10, reference=[1] * 10))
    samples = _strip(completion_ids)
    want = [1 - x for x in nltk_self_bleu(samples, prompts)]
    assert out == pytest.approx(want, abs=1e-12)
    group_ids = torch.tensor([sorted(set(prompts)).index(p) for p in prompts])
    assert out == pytest.approx((1 - self_bleu(samples, groups=group_ids, dtype=torch.float64)).tolist(), abs=1e-15)
    assert out[prompts.index("d")] == 1.0  # alone in its group
    # conversational prompts (lists of messages) group the same way
    chats = [[{"role": "user", "content": p}] for p in prompts]
    assert reward(prompts=chats, completions=None, completion_ids=completion_ids) == out
    with pytest.raises(ValueError, match="prompts"):
        reward(prompts=None, completions=None, completion_ids=completion_ids)
    with pytest.raises(ValueError, match="smoothing"):
        diversity_reward(eos_token_id=EOS, smoothing="nope")


def test_no_eos_when_asked():
    reward = bleu_reward(eos_token_id=())  # explicitly none: every ID counts
    out = reward(prompts=None, completions=None, completion_ids=[[5, 6, 2]], reference=[[5, 6, 2]])
    assert out == [1.0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_reward_on_cuda_equals_cpu(tiny_tokenizer):
    refs = ["w1 w2 w3 w4", "w3 w2 w1", "w5 w6"]
    kw = dict(prompts=None, completions=None, completion_ids=[[4, 5, 6, 2], [6, 5], [8, 9, 10, 2]])
    cpu = bleu_reward(tokenizer=tiny_tokenizer)(**kw, reference=refs)
    cuda = bleu_reward(tokenizer=tiny_tokenizer, device="cuda")(**kw, reference=refs)
    assert cuda == pytest.approx(cpu, abs=1e-6)


def test_importing_the_package_imports_neither_trl_nor_transformers():
    code = textwrap.dedent(
        """
        import sys
        import torchmetrics  # torchmetrics itself may import parts of transformers when it is installed
        before = set(sys.modules)
        import tensorbleu_metrics
        import tensorbleu_metrics.integrations
        from tensorbleu_metrics.integrations import trl, transformers
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        assert not new & {"trl", "transformers", "datasets", "accelerate"}, new
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)


# ----------------------------------------------------------------------------------------------------------
# a real GRPOTrainer run
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer():
    pytest.importorskip("transformers")
    pytest.importorskip("trl")  # the example that builds it imports TRL
    sys.path.insert(0, str(ROOT))
    from examples.grpo_trl import build_tokenizer

    return build_tokenizer(12)


@pytest.fixture(scope="module")
def grpo_run(tiny_tokenizer, tmp_path_factory):
    """Two GRPO steps of a tiny Llama with the library's reward, recording every call TRL makes."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    from examples.grpo_trl import build_policy, make_rows

    tok = tiny_tokenizer
    rows = make_rows(32, 12, 3, 5, seed=0)
    for i, row in enumerate(rows):  # a second column form: token-ID references in half of the rows
        row["reference_ids"] = tok(row["reference"], add_special_tokens=False)["input_ids"]
        row["extra"] = i
    reward = bleu_reward("reference", tokenizer=tok)
    calls = []

    class Recorder:
        __name__ = "bleu"

        def __call__(self, **kwargs):
            out = reward(**kwargs)
            calls.append({**kwargs, "out": out})
            return out

    others = [gleu_reward("reference_ids", tokenizer=tok), diversity_reward(tokenizer=tok)]

    args = trl.GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("grpo")),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=6,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=build_policy(len(tok), 32, 1, 2, seed=0),
        processing_class=tok,
        reward_funcs=[Recorder(), *others],
        args=args,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    return trainer, calls


@pytest.mark.filterwarnings("ignore::FutureWarning")  # deprecations inside TRL/Transformers
def test_grpo_trainer_runs_with_the_reward(grpo_run, tiny_tokenizer):
    trainer, calls = grpo_run
    assert len(calls) == 2
    logged = [h for h in trainer.state.log_history if "rewards/bleu/mean" in h]
    assert len(logged) == 2
    eos = tiny_tokenizer.eos_token_id
    for call, log in zip(calls, logged, strict=True):
        ids, out = call["completion_ids"], call["out"]
        assert len(out) == len(ids) == 8 and all(0.0 <= x <= 1.0 for x in out)
        assert {"reference", "reference_ids", "extra", "trainer_state", "log_metric"} <= set(call)
        # TRL's convention, as the reward assumes it: EOS kept and last, or no EOS at the length limit
        for c in ids:
            assert (c[-1] == eos and eos not in c[:-1]) or (eos not in c and len(c) == 6)
        # groups of num_generations completions of one prompt are adjacent
        assert call["prompts"][:4] == [call["prompts"][0]] * 4
        assert out == pytest.approx(expected_bleu_tok(ids, [[r] for r in call["reference_ids"]], tiny_tokenizer))
        assert log["rewards/bleu/mean"] == pytest.approx(sum(out) / len(out), abs=1e-5)
        # the other rewards ran on the same completions in the same step
        cut = _strip(ids, eos)
        gleu = sentence_gleu(cut, [[r] for r in call["reference_ids"]])
        assert log["rewards/gleu/mean"] == pytest.approx(float(gleu.mean()), abs=1e-5)
        groups = torch.tensor([call["prompts"].index(p) for p in call["prompts"]])
        diversity = 1 - self_bleu(cut, groups=groups)
        assert log["rewards/diversity/mean"] == pytest.approx(float(diversity.mean()), abs=1e-5)
