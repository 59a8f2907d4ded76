"""Text references with a byte-level BPE tokenizer (GPT-2 style: a word inside a text carries its leading space,
"Ġword", a word at the start of a text does not).

The tokenizer is trained here with the ``tokenizers`` library on a few sentences and wrapped in
``transformers.PreTrainedTokenizerFast``; nothing is downloaded. A perfect completion's IDs are the ones a model
emits after its prompt: the prompt and the completion are encoded together and the prompt's IDs taken off. With the
rewards' defaults it must score 1.0 whatever the prompt's form (text, text ending in a space, a conversation).
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from tensorbleu_metrics.integrations.trl import bleu_reward, gleu_reward, rouge_reward

SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met on the mat",
    "what did the cat do? it sat on the mat",
    "reverse the words: mat the on sat cat the",
    "answer the question about the dog and the log",
]
REFERENCES = ["the cat sat on the mat", "a dog met the cat", "it sat on the log", "mat the on sat"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(SENTENCES * 20, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>")
    tok.chat_template = CHAT_TEMPLATE
    # the property the issue is about: a word encodes differently inside a text and at its start
    assert (
        tok("cat", add_special_tokens=False)["input_ids"] != tok("the cat", add_special_tokens=False)["input_ids"][1:]
    )
    return tok


def emitted(tok, prompt_text: str, completion_text: str) -> list[int]:
    """The IDs a model emits after ``prompt_text`` to write ``completion_text``, then EOS."""
    prompt = tok(prompt_text, add_special_tokens=False)["input_ids"]
    whole = tok(prompt_text + completion_text, add_special_tokens=False)["input_ids"]
    if whole[: len(prompt)] == prompt:
        completion = whole[len(prompt) :]
    else:  # the prompt ends inside a token of the whole text (a trailing space): the model continues the prompt
        completion = tok(completion_text, add_special_tokens=False)["input_ids"]
    assert tok.decode(prompt + completion) == prompt_text + completion_text
    return [*completion, tok.eos_token_id]


def _rewards(tok, **kwargs):
    return [
        bleu_reward("reference", tokenizer=tok, **kwargs),
        gleu_reward("reference", tokenizer=tok, **kwargs),
        rouge_reward("reference", rouge_key="rougeL", tokenizer=tok, **kwargs),
    ]


def _case(tok, form: str) -> tuple[list, list[list[int]]]:
    """Prompts of one form and the perfect completions a model emits after them."""
    questions = [f"question {i}: what comes next?" for i in range(len(REFERENCES))]
    if form == "text":
        return questions, [emitted(tok, q, " " + r) for q, r in zip(questions, REFERENCES, strict=True)]
    if form == "text_ending_in_space":
        prompts = [q + " " for q in questions]
        return prompts, [emitted(tok, p, r) for p, r in zip(prompts, REFERENCES, strict=True)]
    chats = [[{"role": "user", "content": q}] for q in questions]
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    return chats, [emitted(tok, t, r) for t, r in zip(texts, REFERENCES, strict=True)]


@pytest.mark.parametrize("form", ["text", "text_ending_in_space", "chat"])
def test_a_perfect_completion_scores_one_with_the_defaults(bpe, form):
    prompts, completion_ids = _case(bpe, form)
    for reward in _rewards(bpe):
        out = reward(prompts=prompts, completions=None, completion_ids=completion_ids, reference=REFERENCES)
        assert out == pytest.approx([1.0] * len(REFERENCES), abs=1e-6), reward.__name__


def test_text_prompts_with_the_old_default_prefix_do_not(bpe):
    """The trap the default avoids: the reference encoded from the start of a text lacks the first word's space."""
    prompts, completion_ids = _case(bpe, "text")
    for reward in _rewards(bpe, reference_prefix=""):
        out = reward(prompts=prompts, completions=None, completion_ids=completion_ids, reference=REFERENCES)
        assert all(x < 0.99 for x in out), (reward.__name__, out)


def test_the_prefix_follows_each_prompt_and_the_cache_keeps_both_forms(bpe):
    text_prompts, text_ids = _case(bpe, "text")
    chats, chat_ids = _case(bpe, "chat")
    reward = bleu_reward("reference", tokenizer=bpe)
    mixed = reward(
        prompts=[*text_prompts, *chats],
        completions=None,
        completion_ids=[*text_ids, *chat_ids],
        reference=REFERENCES * 2,
    )
    assert mixed == pytest.approx([1.0] * 2 * len(REFERENCES), abs=1e-6)
    assert set(reward._encoded) == {" " + r for r in REFERENCES} | set(REFERENCES)


def test_a_reference_starting_with_a_space_is_not_given_a_second(bpe):
    prompts, completion_ids = _case(bpe, "text")
    spaced = [" " + r for r in REFERENCES]
    out = bleu_reward("reference", tokenizer=bpe)(
        prompts=prompts, completions=None, completion_ids=completion_ids, reference=spaced
    )
    assert out == pytest.approx([1.0] * len(REFERENCES), abs=1e-6)


def test_word_level_and_explicit_prefixes_are_unchanged(bpe):
    """A tokenizer that encodes a word alike wherever it stands gets no prefix; an explicit prefix serves every
    row (the probe is not run)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from examples.grpo_trl import build_tokenizer

    word = build_tokenizer(8)
    reward = bleu_reward("reference", tokenizer=word)
    ids = word(["w1 w2 w3"], add_special_tokens=False)["input_ids"]
    assert reward(prompts=["w3 w2 w1 ="], completions=None, completion_ids=ids, reference=["w1 w2 w3"]) == [1.0]
    assert reward._word_start == ""

    seen = []

    def tokenizer(texts, add_special_tokens):
        seen.extend(texts)
        return bpe(texts, add_special_tokens=add_special_tokens)

    tokenizer.eos_token_id = bpe.eos_token_id
    explicit = bleu_reward("reference", tokenizer=tokenizer, reference_prefix="")
    explicit(prompts=["q:"], completions=None, completion_ids=[[5]], reference=["the cat"])
    assert seen == ["the cat"] and explicit._word_start is None


def test_an_unreadable_tokenizer_warns_once_and_encodes_as_is():
    """A tokenizer whose probe fits neither form: one warning naming `reference_prefix`, references unprefixed."""
    seen = []

    def opaque(texts, add_special_tokens):
        seen.extend(texts)
        return {"input_ids": [[len(t) + 3] for t in texts]}  # one ID per whole text

    reward = bleu_reward("reference", tokenizer=opaque, eos_token_id=2)
    with pytest.warns(UserWarning, match="reference_prefix"):
        reward(prompts=["q:"], completions=None, completion_ids=[[9]], reference=["abcdef"])
    assert "abcdef" in seen and " abcdef" not in seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reward(prompts=["q:"], completions=None, completion_ids=[[9]], reference=["xyz"])
