"""``integrations.verl`` through verl's own classes: ``DataProto``, the reward-loop worker that loads and calls
reward managers, verl's Hydra config and its custom-reward-function loading. No Ray cluster: the worker is the plain
class that verl wraps as a Ray actor.

The scores must equal the functional API on the same token IDs (and SacreBLEU's chrF on the string route).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

verl = pytest.importorskip("verl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker, migrate_legacy_reward_impl  # noqa: E402
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase  # noqa: E402

from tensorbleu_metrics.functional import rouge_score, sentence_bleu, sentence_chrf, sentence_gleu  # noqa: E402
from tensorbleu_metrics.integrations import verl as tverl  # noqa: E402

MODULE = "pkg://tensorbleu_metrics.integrations.verl"
PAD, UNK, EOS = 0, 1, 2
WORDS = [f"w{i}" for i in range(500)]


def _word_id(word: str) -> int:
    return 3 + int(word[1:])


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A word-level tokenizer built here and saved to a directory, which verl's worker loads (no download)."""
    path = tmp_path_factory.mktemp("tok")
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[EOS]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")
    tok.save_pretrained(path)
    return str(path)


def _config(tokenizer_dir: str, manager_kwargs: dict, **custom_fn: object) -> object:
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": tokenizer_dir, "tokenizer_path": None}},
            "reward": {
                "reward_model": {"enable": False},
                "custom_reward_function": {"path": None, "name": "compute_score", **custom_fn},
                "reward_kwargs": manager_kwargs,
                "sandbox_fusion": {"url": None},
                "reward_manager": {"source": "importlib", "name": "TokenIDRewardManager", "module": {"path": MODULE}},
            },
        }
    )


def _worker(tokenizer_dir: str, **reward_kwargs: object) -> RewardLoopWorker:
    return RewardLoopWorker(_config(tokenizer_dir, reward_kwargs))


def _batch(responses: list[list[int]], ground_truths: list[object], mask: list[list[int]] | None = None) -> DataProto:
    """A batch in the trainer's layout: responses right-padded with PAD, the attention mask marking their tokens."""
    width = max(len(r) for r in responses)
    ids = torch.full((len(responses), width), PAD, dtype=torch.long)
    att = torch.zeros((len(responses), 3 + width), dtype=torch.long)
    att[:, :3] = 1
    for i, r in enumerate(responses):
        ids[i, : len(r)] = torch.tensor(r)
        att[i, 3 : 3 + len(r)] = 1
    if mask is not None:
        att = torch.tensor(mask)
    return DataProto.from_dict(
        tensors={"prompts": torch.full((len(responses), 3), 7), "responses": ids, "attention_mask": att},
        non_tensors={
            "data_source": np.array(["mt"] * len(responses), dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in ground_truths], dtype=object),
        },
    )


def _scores(worker: RewardLoopWorker, data: DataProto) -> list[dict]:
    # on the worker's own event loop, as its Ray actor runs it (verl's managers keep the loop they were built in)
    return worker.loop.run_until_complete(worker.compute_score_batch(data))


def _random_case(rng: np.random.Generator, n: int) -> tuple[list[list[int]], list[str], list[list[int]]]:
    """Responses (some ending in EOS), text references and the references' IDs."""
    responses, texts, ref_ids = [], [], []
    for i in range(n):
        ref = [_word_id(w) for w in rng.choice(WORDS[:30], size=int(rng.integers(1, 12)))]
        hyp = [int(x) for x in rng.choice([*ref, _word_id("w40")], size=int(rng.integers(0, 14)))]
        responses.append([*hyp, EOS] if i % 2 else hyp)
        texts.append(" ".join(WORDS[t - 3] for t in ref))
        ref_ids.append(ref)
    return responses, texts, ref_ids


def _cut(r: list[int]) -> list[int]:
    return r[: r.index(EOS)] if EOS in r else r


def _functional(metric: str, hyp: list[int], ref: list[list[int]], **options: object) -> float:
    preds = [torch.tensor(hyp, dtype=torch.long)]
    target = [[torch.tensor(x, dtype=torch.long) for x in ref]]
    if metric == "bleu":
        return float(sentence_bleu(preds, target, dtype=torch.float64, **options)[0])
    if metric == "gleu":
        return float(sentence_gleu(preds, target, dtype=torch.float64, **options)[0])
    if metric == "chrf":
        return float(sentence_chrf(preds, target, dtype=torch.float64, **options)[0])
    key = options.pop("rouge_key", "rougeL")
    measure = options.pop("measure", "fmeasure")
    return float(rouge_score(preds, target, rouge_keys=key, dtype=torch.float64, **options)[f"{key}_{measure}"][0])


def test_import_is_lazy() -> None:
    code = (
        "import sys, tensorbleu_metrics.integrations.verl as v; assert 'verl' not in sys.modules; "
        "v.TokenIDRewardManager; assert 'verl' in sys.modules"
    )
    assert os.system(f'{sys.executable} -c "{code}"') == 0


def test_manager_loaded_by_verl(tokenizer_dir: str) -> None:
    worker = _worker(tokenizer_dir)
    manager = worker.reward_manager
    assert isinstance(manager, RewardManagerBase)
    assert type(manager) is tverl.TokenIDRewardManager
    assert manager.core.eos_token_ids == (EOS,)  # the tokenizer's, as verl loaded it


@pytest.mark.parametrize(
    ("metric", "options", "functional_options"),
    [
        ("bleu", {}, {"smoothing": "exp", "effective_order": True}),
        ("bleu", {"smoothing": "floor", "n_gram": 2}, {"smoothing": "floor", "n_gram": 2, "effective_order": True}),
        ("bleu", {"smoothing": "method3"}, {"smoothing": "method3"}),
        ("gleu", {"max_len": 3}, {"max_len": 3}),
        ("chrf", {"char_order": 4, "beta": 1}, {"char_order": 4, "beta": 1}),
        ("rouge", {"rouge_key": "rouge2", "measure": "recall"}, {"rouge_key": "rouge2", "measure": "recall"}),
        ("rouge", {}, {}),
    ],
)
def test_equals_functional_on_the_same_ids(
    tokenizer_dir: str, metric: str, options: dict, functional_options: dict
) -> None:
    rng = np.random.default_rng(len(str(options)) + len(metric))
    responses, texts, ref_ids = _random_case(rng, 12)
    worker = _worker(tokenizer_dir, metric=metric, **options)
    out = _scores(worker, _batch(responses, texts))
    keys = {tuple(o["reward_extra_info"]) for o in out}
    assert len(keys) == 1, "the same extra keys for every sample (verl raises a KeyError otherwise)"
    for o, hyp, ref in zip(out, responses, ref_ids, strict=True):
        expected = _functional(metric, _cut(hyp), [ref], **dict(functional_options))
        assert o["reward_score"] == pytest.approx(expected, abs=1e-12)
        assert isinstance(o["reward_score"], float)
        assert o["reward_extra_info"]["score"] == o["reward_score"]
        assert o["reward_extra_info"]["response_length"] == len(_cut(hyp))
    # token-ID ground truths give the same scores as the text ones they encode
    again = _scores(worker, _batch(responses, ref_ids))
    assert [o["reward_score"] for o in again] == [o["reward_score"] for o in out]


def test_sub_scores(tokenizer_dir: str) -> None:
    hyp, ref = [_word_id(w) for w in ["w1", "w2", "w3", "w9"]], "w1 w2 w3 w4 w5"
    bleu = _scores(_worker(tokenizer_dir, metric="bleu"), _batch([hyp], [ref]))[0]["reward_extra_info"]
    assert [bleu[f"bleu_precision_{n}"] for n in range(1, 5)] == [3 / 4, 2 / 3, 1 / 2, 0.0]
    assert (bleu["bleu_hyp_len"], bleu["bleu_ref_len"]) == (4.0, 5.0)
    assert bleu["bleu_brevity_penalty"] == pytest.approx(np.exp(1 - 5 / 4))
    chrf = _scores(_worker(tokenizer_dir, metric="chrf", char_order=3), _batch([hyp], [ref]))[0]["reward_extra_info"]
    p, r = chrf["chrf_precision"], chrf["chrf_recall"]
    assert chrf["score"] == pytest.approx(5 * p * r / (4 * p + r), abs=1e-12)  # their F2 is chrF
    rouge = _scores(_worker(tokenizer_dir, metric="rouge"), _batch([hyp], [ref]))[0]["reward_extra_info"]
    assert (rouge["rougeL_precision"], rouge["rougeL_recall"]) == pytest.approx((3 / 4, 3 / 5))
    gleu = _scores(_worker(tokenizer_dir, metric="gleu"), _batch([hyp], [ref]))[0]["reward_extra_info"]
    assert gleu["score"] == gleu["gleu_matches"] / gleu["gleu_total"]


def test_eos_padding_and_several_references(tokenizer_dir: str) -> None:
    worker = _worker(tokenizer_dir, metric="bleu", eos_token_id=[EOS, _word_id("w99")])
    ref = [_word_id(w) for w in ["w1", "w2", "w3", "w4", "w5", "w6"]]
    text = "w1 w2 w3 w4 w5 w6"
    cut = ref[:4]
    expected = _functional("bleu", cut, [ref], smoothing="exp", effective_order=True)
    rows = [
        [*cut, EOS, 5, 6, 7],  # tokens after EOS are not scored
        [*cut, _word_id("w99"), 5],  # a second EOS ID
        cut,  # right-padded with PAD by the batch, outside the attention mask
    ]
    out = _scores(worker, _batch(rows, [text] * 3))
    assert [o["reward_score"] for o in out] == [expected] * 3
    # padding inside the attention mask is a real token (ID 0 may be a word): only the mask and EOS cut
    masked = _batch([[*cut, PAD, PAD]], [text], mask=[[1] * 3 + [1] * 6])
    assert _scores(worker, masked)[0]["reward_extra_info"]["response_length"] == 6
    # several references, text or IDs
    other = "w1 w2 w3 w4"
    both = _functional("bleu", cut, [ref, cut], smoothing="exp", effective_order=True)
    for gt in ([text, other], np.array([text, other], dtype=object), [ref, cut]):
        assert _scores(worker, _batch([cut], [gt]))[0]["reward_score"] == both == 1.0
    assert worker.reward_manager.core._text.keys() >= {text, other}  # tokenised once, cached


def test_multi_output_trajectory(tokenizer_dir: str) -> None:
    """A trajectory with several outputs, as verl's agent loop sends it: rows right-padded with 0 (a real token),
    an attention mask over prompt and response, ``response_len``; the last row is scored."""
    worker = _worker(tokenizer_dir, metric="gleu")
    ref = "w1 w2 w3 w4"
    first, last = (
        [_word_id(w) for w in ["w5", "w6", "w7", "w8", "w9", "w1", "w2"]],
        [_word_id("w1"), _word_id("w2"), EOS],
    )
    prompts = [[7, 7, 7, 7], [7, 7]]
    rows = [first, last]
    width = max(map(len, rows))
    responses = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    seq = [p + r for p, r in zip(prompts, rows, strict=True)]
    total = max(map(len, seq))
    data = DataProto.from_dict(
        tensors={
            "prompts": torch.tensor([p + [0] * (4 - len(p)) for p in prompts]),
            "responses": responses,
            "attention_mask": torch.tensor([[1] * len(s) + [0] * (total - len(s)) for s in seq]),
        },
        non_tensors={
            "data_source": np.array(["mt"] * 2, dtype=object),
            "reward_model": np.array([{"ground_truth": ref}] * 2, dtype=object),
            "response_len": np.array([len(first), len(last)]),
            "__num_turns__": np.array([2, 2]),
        },
    )
    out = worker.loop.run_until_complete(worker.compute_score(data))
    expected = _functional("gleu", last[:2], [[_word_id(w) for w in ref.split()]])
    assert out["reward_score"] == expected
    assert out["reward_extra_info"]["response_length"] == 2


def test_verl_hydra_config(tokenizer_dir: str) -> None:
    """verl's own trainer config, composed by Hydra with command-line overrides, loads the manager."""
    pytest.importorskip("hydra")
    import verl.trainer.config as verl_config
    from hydra import compose, initialize_config_dir

    overrides = [
        "reward.reward_manager.source=importlib",
        "reward.reward_manager.name=TokenIDRewardManager",
        f"reward.reward_manager.module.path={MODULE}",
        "+reward.reward_kwargs.metric=chrf",
        "+reward.reward_kwargs.char_order=3",
        f"actor_rollout_ref.model.path={tokenizer_dir}",
    ]
    with initialize_config_dir(config_dir=os.path.dirname(verl_config.__file__), version_base=None):
        config = compose(config_name="ppo_trainer", overrides=overrides)
    worker = RewardLoopWorker(migrate_legacy_reward_impl(config))
    hyp = [_word_id(w) for w in ["w1", "w2", "w3", "w9"]]
    out = _scores(worker, _batch([[*hyp, EOS]], ["w1 w2 w3 w4"]))[0]
    assert out["reward_score"] == _functional(
        "chrf", hyp, [[_word_id(w) for w in ["w1", "w2", "w3", "w4"]]], char_order=3
    )


def test_bad_options_fail_when_built(tokenizer_dir: str) -> None:
    with pytest.raises(ValueError, match="metric"):
        _worker(tokenizer_dir, metric="meteor")
    with pytest.raises(ValueError, match="smoothing"):
        _worker(tokenizer_dir, metric="bleu", smoothing="nope")
    with pytest.raises(ValueError, match="eos_id"):
        _worker(tokenizer_dir, metric="bleu", eos_id=2)


def test_compute_score_string_route(tokenizer_dir: str) -> None:
    """``compute_score`` loaded by verl's custom-reward-function code and called by verl's naive manager."""
    sacrebleu = pytest.importorskip("sacrebleu")
    config = _config(tokenizer_dir, {}, path=MODULE, reward_kwargs={"word_order": 2})
    config.reward.reward_manager = {"source": "register", "name": "naive", "module": {"path": None}}
    worker = RewardLoopWorker(config)
    tok = worker.input_tokenizer
    texts = ["w1 w2 w3", "w4 w5", "w1 w3 w2 w7 w8"]
    refs = ["w1 w2 w3 w4", ["w5 w4", "w4 w5 w6"], "w9"]
    responses = [tok(t, add_special_tokens=False)["input_ids"] + [EOS] for t in texts]
    out = _scores(worker, _batch(responses, refs))
    chrf = sacrebleu.CHRF(word_order=2)
    for o, t, r in zip(out, texts, refs, strict=True):
        expected = chrf.sentence_score(t, [r] if isinstance(r, str) else r).score / 100
        assert o["reward_score"] == pytest.approx(expected, abs=1e-12)
    assert len({tuple(o["reward_extra_info"]) for o in out}) == 1
    # token metrics through a tokenizer named in reward_kwargs
    got = tverl.compute_score("mt", "w1 w2 w3", "w1 w2 w3 w4", metric="rouge", tokenizer=tokenizer_dir)
    ids = [_word_id(w) for w in ["w1", "w2", "w3"]]
    assert got["score"] == _functional("rouge", ids, [[*ids, _word_id("w4")]])
    with pytest.raises(ValueError, match="tokenizer"):
        tverl.compute_score("mt", "w1", "w1", metric="bleu")


def test_per_sample_time(tokenizer_dir: str) -> None:
    """One 256-token sample through ``run_single``, warm; printed, not asserted (shared CI machines)."""
    rng = np.random.default_rng(0)
    hyp = [int(x) for x in rng.integers(3, 503, 256)]
    ref = " ".join(WORDS[int(x)] for x in rng.integers(0, 500, 250))
    data = _batch([hyp], [ref])
    for metric in ("bleu", "chrf"):
        worker = _worker(tokenizer_dir, metric=metric)
        manager = worker.reward_manager

        async def run(n: int, manager: RewardManagerBase = manager) -> float:
            for _ in range(20):
                await manager.run_single(data)
            start = time.perf_counter()
            for _ in range(n):
                await manager.run_single(data)
            return (time.perf_counter() - start) / n

        per_sample = worker.loop.run_until_complete(run(300))
        print(f"\nverl run_single, {metric}, one 256-token sample, warm: {per_sample * 1e6:.0f} us")
