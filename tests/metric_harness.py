"""One harness for every ``Metric`` class of the package: a spec per metric (its class and options, the functional
result it must equal, the real oracle called here, its batches) and the checks they all share.

``tests/test_metric_common.py`` runs the single-process checks over every spec, ``tests/test_metric_ddp.py`` the
2-rank gloo ones, all specs in one spawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from corpus_utils import FORMS, feed_and_compute, make_corpus
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu
from nltk.translate.gleu_score import corpus_gleu as nltk_corpus_gleu
from nltk.translate.gleu_score import sentence_gleu as nltk_sentence_gleu
from sacrebleu.metrics import BLEU, CHRF
from test_rouge import SEP, rouge_oracle
from torch import Tensor

from tensorbleu_metrics import TokenIDBLEU, TokenIDCHRF, TokenIDGLEU, TokenIDROUGE, functional

ABS = 1e-6  # the metrics return float32
BIG = 2**40 + 1  # past float16's range and float32's integer precision
WORLD_SIZE = 2
F64 = torch.float64

# options that say how the metric runs, not what it scores: left out of the functional and oracle calls
RUN_OPTIONS = frozenset(
    {"pad_id", "eos_id", "validate", "return_sentence_level_score", "sync_on_compute", "dist_sync_on_step"}
    | {"compute_on_cpu"}
)

# bad token-ID batches: (preds, target, error, match); every token-ID metric rejects them alike
TOKEN_BAD_INPUTS = [
    pytest.param(torch.tensor([[1.0, 2.0]]), torch.tensor([[1, 2]]), TypeError, "preds", id="float-preds"),
    pytest.param(torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]]), TypeError, "target", id="float-target"),
    pytest.param(torch.tensor([[1, -3]]), torch.tensor([[1, 2]]), ValueError, "negative", id="negative-id"),
    pytest.param(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2]]), ValueError, "must match", id="batch"),
    pytest.param([], [], ValueError, "empty", id="empty-batch"),
    pytest.param([[1, 2]], [[]], ValueError, "no reference", id="no-reference"),
    pytest.param(torch.zeros(1, 1, 1, 2, dtype=torch.long), torch.tensor([[1, 2]]), ValueError, "preds", id="4d"),
]
TEXT_BAD_INPUTS = [
    pytest.param(["a"], [[None]], ValueError, "no reference", id="none-reference"),
    pytest.param(["a", "b"], [["a"]], ValueError, "must match", id="batch"),
    pytest.param([], [], ValueError, "empty", id="empty-batch"),
    pytest.param(["a"], [[3]], TypeError, "must be a str", id="int-reference"),
]


@dataclass(frozen=True)
class MetricSpec:
    """What the shared checks need to know of one ``Metric`` class.

    ``functional(preds, refs, scoring, sentences)`` and ``oracle(...)`` return a result in the form of
    :func:`flat` (the oracle as floats or lists; ``None`` where no oracle applies) for ragged ``preds``/``refs``;
    ``scoring`` holds the options of :func:`split`. ``sum_states(metric, preds, refs)`` gives the exact int64 sum
    states after updates on those sentences. ``ddp`` holds gloo scenarios: per rank, ``(form, start, end)``
    batches of ``corpus``.
    """

    name: str
    metric_class: type
    corpus: tuple[list, list]
    functional: Callable[[list, list, dict, bool], dict[str, Tensor]]
    oracle: Callable[[list, list, dict, bool], dict[str, Any] | None]
    sum_states: Callable[[Any, list, list], dict[str, Tensor]]
    variants: dict[str, dict]
    other_options: dict  # one option whose value makes the states count something else
    ddp: dict[str, dict]
    base: dict = field(default_factory=lambda: {"pad_id": 0})
    forms: dict[str, Callable] = field(default_factory=lambda: dict(FORMS))
    bad_inputs: list = field(default_factory=lambda: TOKEN_BAD_INPUTS)
    sizes: tuple[int, ...] = (1, 1, 5, 9, 7)  # the batches of an accumulation: one-sentence ones first

    @property
    def token_ids(self) -> bool:
        return "padded" in self.forms

    def make(self, **options: Any) -> Any:
        return self.metric_class(**{**self.base, **options})

    def batch(self, form: str, start: int, end: int, device: Any = "cpu") -> tuple:
        preds, refs = self.corpus
        return to_device(self.forms[form](preds[start:end], refs[start:end]), device)

    def subset(self, idx: list[int]) -> tuple[list, list]:
        preds, refs = self.corpus
        return [preds[i] for i in idx], [refs[i] for i in idx]

    def chunks(self) -> Iterator[tuple[str, int, int]]:
        """The accumulation's batches as ``(form, start, end)``, cycling through the input forms."""
        forms, start = list(self.forms), 0
        for step, size in enumerate(self.sizes):
            yield forms[step % len(forms)], start, start + size
            start += size


def to_device(value: Any, device: Any) -> Any:
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def split(spec: MetricSpec, options: dict) -> tuple[dict, bool]:
    """The scoring options of a metric built with ``options``, and whether it returns sentence scores."""
    options = {**spec.base, **options}
    scoring = {k: v for k, v in options.items() if k not in RUN_OPTIONS}
    return scoring, bool(options.get("return_sentence_level_score", False))


# ------------------------------------------------------------------------------------------------ results
def flat(result: Any) -> dict[str, Tensor]:
    """A ``forward``/``compute`` result as ``{"corpus[/key]": ..., "sentences[/key]": ...}``."""
    parts = zip(("corpus", "sentences"), result, strict=True) if isinstance(result, tuple) else [("corpus", result)]
    out: dict[str, Tensor] = {}
    for part, value in parts:
        if isinstance(value, dict):
            out.update({f"{part}/{key}": v for key, v in value.items()})
        else:
            out[part] = value
    return out


def expected(spec: MetricSpec, idx: list[int], options: dict) -> dict[str, Tensor]:
    """The functional result on sentences ``idx`` (zeros, and no sentence scores, for none)."""
    scoring, sentences = split(spec, options)
    if idx:
        return spec.functional(*spec.subset(idx), scoring, sentences)
    shapes = spec.functional(*spec.subset([0]), scoring, sentences)
    return {
        key: torch.zeros((*v.shape[:-1], 0) if key.startswith("sentences") else v.shape, dtype=torch.float32)
        for key, v in shapes.items()
    }


def assert_matches(spec: MetricSpec, result: Any, idx: list[int] | range, options: dict, msg: str = "") -> None:
    """``result`` is float32 and equals the functional result on sentences ``idx`` (corpus values within ABS,
    sentence scores exactly) and the oracle (within ABS)."""
    idx = list(idx)
    got, want = flat(result), expected(spec, idx, options)
    assert got.keys() == want.keys(), msg
    for key, value in want.items():
        assert got[key].dtype == torch.float32, (msg, key)
        atol = 0.0 if key.startswith("sentences") else ABS
        torch.testing.assert_close(got[key].cpu(), value.to(torch.float32), rtol=0, atol=atol, msg=f"{msg} {key}")
    oracle = spec.oracle(*spec.subset(idx), *split(spec, options)) if idx else None
    for key, value in (oracle or {}).items():
        ours = got[key].cpu().to(F64)
        torch.testing.assert_close(ours, torch.tensor(value, dtype=F64).reshape(ours.shape), rtol=0, atol=ABS)


def snapshot(metric: Any) -> dict[str, Any]:
    """A deep copy of every state, for before/after comparisons."""
    return {k: [x.clone() for x in v] if isinstance(v, list) else v.clone() for k, v in metric.metric_state.items()}


def assert_same_states(a: dict, b: dict, msg: str = "") -> None:
    assert a.keys() == b.keys(), msg
    for key in a:
        x, y = (a[key], b[key]) if isinstance(a[key], list) else ([a[key]], [b[key]])
        assert isinstance(y, list) and len(x) == len(y), (msg, key)
        for u, v in zip(x, y, strict=True):
            assert u.dtype == v.dtype and torch.equal(u.cpu(), v.cpu()), (msg, key)


def assert_same_result(a: Any, b: Any) -> None:
    a, b = flat(a), flat(b)
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def fed(spec: MetricSpec, batches: list[tuple[str, int, int]], **options: Any) -> Any:
    """A metric updated with ``batches`` in one process."""
    metric = spec.make(**options)
    for batch in batches:
        metric.update(*spec.batch(*batch))
    return metric


# ------------------------------------------------------------------------------------------------ BLEU
SACRE_METHODS = ("none", "floor", "add-k", "exp")


def _join(ids: Any) -> str:
    return ids if isinstance(ids, str) else " ".join(map(str, ids))


def _streams(refs: list) -> list[list]:
    """References per sentence as SacreBLEU's reference streams (``None`` where a sentence has fewer)."""
    return [[_join(r[j]) if j < len(r) else None for r in refs] for j in range(max(map(len, refs)))]


def _bleu_functional(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Tensor]:
    out = {"corpus": functional.corpus_bleu(preds, refs, **scoring)}
    if sentences:
        out["sentences"] = functional.sentence_bleu(preds, refs, **scoring, dtype=F64)
    return out


def _bleu_oracle(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Any] | None:
    """SacreBLEU for its methods, NLTK for its own (method5-7 on one sentence only: NLTK's corpus score of those
    looks at the last sentence alone, a documented deviation)."""
    smoothing, n_gram = scoring.get("smoothing", "none"), scoring.get("n_gram") or 4
    if smoothing in SACRE_METHODS:
        bleu = BLEU(
            tokenize="none",
            smooth_method=smoothing,
            smooth_value=scoring.get("smooth_value"),
            max_ngram_order=n_gram,
            effective_order=scoring.get("effective_order", False),
        )
        out: dict[str, Any] = {"corpus": bleu.corpus_score([_join(p) for p in preds], _streams(refs)).score / 100}
        if sentences:
            pairs = zip(preds, refs, strict=True)
            out["sentences"] = [bleu.sentence_score(_join(p), [_join(x) for x in r]).score / 100 for p, r in pairs]
        return out
    if smoothing in ("method5", "method6", "method7") and len(preds) > 1:
        return None
    weights = scoring.get("weights")
    several = weights is not None and isinstance(weights[0], (tuple, list))
    kwargs = {"smoothing_function": getattr(SmoothingFunction(), smoothing)}
    kwargs["auto_reweigh"] = scoring.get("auto_reweigh", False)
    corpus, sentence_rows = [], []
    for w in weights if several else [weights or (1.0 / n_gram,) * n_gram]:
        try:
            corpus.append(nltk_corpus_bleu(refs, preds, weights=tuple(w), **kwargs))
        except AssertionError:  # NLTK's method6 without a bigram match; tests/test_functional_parity.py has ours
            assert smoothing == "method6"
            return None
        pairs = zip(preds, refs, strict=True)
        sentence_rows.append([nltk_sentence_bleu(r, p, weights=tuple(w), **kwargs) for p, r in pairs])
    out = {"corpus": corpus if several else corpus[0]}
    if sentences:
        out["sentences"] = sentence_rows if several else sentence_rows[0]
    return out


def _bleu_sums(metric: Any, preds: list, refs: list) -> dict[str, Tensor]:
    return functional.bleu_stats(preds, refs, n_gram=metric._counted_orders).sum()._asdict()


BLEU_SPEC = MetricSpec(
    name="bleu",
    metric_class=TokenIDBLEU,
    corpus=make_corpus(seed=11, n=40, max_len=14),
    functional=_bleu_functional,
    oracle=_bleu_oracle,
    sum_states=_bleu_sums,
    variants={
        "none": {},
        "floor": {"smoothing": "floor", "smooth_value": 0.2},
        "add-k": {"smoothing": "add-k", "smooth_value": 2},
        "exp": {"smoothing": "exp"},
        "exp-effective-sentences": {"smoothing": "exp", "effective_order": True, "return_sentence_level_score": True},
        **{f"{m}-n{n}": {"smoothing": m, "n_gram": n} for m in [f"method{k}" for k in range(5)] for n in (2, 4)},
        "method4-sentences": {"smoothing": "method4", "return_sentence_level_score": True},
        **{f"method{k}-sentences": {"smoothing": f"method{k}", "return_sentence_level_score": True} for k in (5, 6, 7)},
        "k-weights-sentences": {
            "weights": [(1.0, 0.0, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0), (0.25, 0.25, 0.25, 0.25)],
            "smoothing": "method1",
            "return_sentence_level_score": True,
        },
    },
    other_options={"smoothing": "method1"},
    ddp={
        "uneven_ragged": {
            "options": {"smoothing": "method1", "return_sentence_level_score": True},
            "batches": {0: [("padded", 0, 5), ("lists", 5, 12), ("tensors", 12, 13)], 1: [("padded", 13, 30)]},
        },
        "uneven_sacrebleu": {
            "options": {"smoothing": "exp", "effective_order": True},
            "batches": {0: [("lists", 0, 3)], 1: [("padded", 3, 20), ("tensors", 20, 21), ("padded", 21, 40)]},
        },
        "idle_rank1_sentences": {
            "options": {"smoothing": "method2", "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 7), ("padded", 7, 9)], 1: []},
        },
        "idle_rank0_k_weights": {
            "options": {
                "weights": [(1.0, 0.0, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0), (0.25, 0.25, 0.25, 0.25)],
                "smoothing": "method3",
                "return_sentence_level_score": True,
            },
            "batches": {0: [], 1: [("tensors", 0, 10), ("lists", 10, 11)]},
        },
        "idle_rank1_compute_on_cpu": {
            "options": {"smoothing": "floor", "return_sentence_level_score": True, "compute_on_cpu": True},
            "batches": {0: [("padded", 0, 6)], 1: []},
        },
        "all_idle": {"options": {"return_sentence_level_score": True}, "batches": {0: [], 1: []}},
        "method5_more_orders": {
            "options": {"n_gram": 3, "smoothing": "method5", "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 9)], 1: [("tensors", 9, 12), ("lists", 12, 25)]},
        },
        "forward_then_continue": {
            "options": {"smoothing": "method4", "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 4), ("padded", 4, 11)], 1: [("lists", 11, 12)]},
            "forward": True,
            # updated after the first compute(): compute() must have restored each rank's own (unsynced) state
            "after": {0: [("lists", 12, 14)], 1: [("padded", 14, 20), ("lists", 20, 22)]},
        },
        "local_only": {
            "options": {"smoothing": "method1", "sync_on_compute": False},
            "batches": {0: [("lists", 0, 10)], 1: [("lists", 10, 13)]},
        },
        "dist_sync_on_step": {
            "options": {"smoothing": "method1", "dist_sync_on_step": True, "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 3), ("padded", 3, 10)], 1: [("lists", 10, 15), ("tensors", 15, 16)]},
            "forward": True,
        },
    },
)


# ------------------------------------------------------------------------------------------------ GLEU
def _gleu_orders(scoring: dict) -> dict[str, int]:
    return {"min_len": scoring.get("min_len", 1), "max_len": scoring.get("max_len", 4)}


def _gleu_functional(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Tensor]:
    out = {"corpus": functional.corpus_gleu(preds, refs, **scoring)}
    if sentences:
        out["sentences"] = functional.sentence_gleu(preds, refs, **scoring, dtype=F64)
    return out


def _gleu_oracle(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Any]:
    orders = _gleu_orders(scoring).values()
    out: dict[str, Any] = {"corpus": nltk_corpus_gleu(refs, preds, *orders)}
    if sentences:
        out["sentences"] = [nltk_sentence_gleu(r, p, *orders) for p, r in zip(preds, refs, strict=True)]
    return out


GLEU_SPEC = MetricSpec(
    name="gleu",
    metric_class=TokenIDGLEU,
    corpus=make_corpus(seed=12, n=30, max_refs=4, vocab=6, max_len=12),
    functional=_gleu_functional,
    oracle=_gleu_oracle,
    sum_states=lambda m, p, r: functional.gleu_stats(p, r, min_len=m.min_len, max_len=m.max_len).sum()._asdict(),
    variants={
        "default": {},
        "2-5-sentences": {"min_len": 2, "max_len": 5, "return_sentence_level_score": True},
        "1-1": {"max_len": 1},
    },
    other_options={"max_len": 3},
    ddp={
        "uneven_sentences": {
            "options": {"max_len": 3, "return_sentence_level_score": True},
            "batches": {0: [("padded", 0, 4), ("lists", 4, 11)], 1: [("tensors", 11, 30)]},
        },
        "idle_rank1_sentences": {
            "options": {"min_len": 2, "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 7)], 1: []},
        },
        "idle_rank0_compute_on_cpu": {
            "options": {"return_sentence_level_score": True, "compute_on_cpu": True},
            "batches": {0: [], 1: [("padded", 0, 1)]},
        },
        "all_idle": {"options": {"return_sentence_level_score": True}, "batches": {0: [], 1: []}},
        "forward_sync_on_step": {
            "options": {"dist_sync_on_step": True, "return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 3), ("padded", 3, 9)], 1: [("lists", 9, 14), ("tensors", 14, 15)]},
            "forward": True,
        },
        "local_only": {
            "options": {"sync_on_compute": False},
            "batches": {0: [("lists", 0, 10)], 1: [("lists", 10, 13)]},
        },
    },
)


# ------------------------------------------------------------------------------------------------ ROUGE
ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _rouge_functional(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Tensor]:
    scores = functional.rouge_score(preds, refs, **scoring, dtype=F64)
    out = {f"corpus/{k}": v.mean().to(torch.float32) for k, v in scores.items()}
    if sentences:
        out.update({f"sentences/{k}": v for k, v in scores.items()})
    return out


def _rouge_oracle(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Any]:
    per_sentence = rouge_oracle(preds, refs, scoring["rouge_keys"], scoring.get("accumulate", "best"))
    out: dict[str, Any] = {f"corpus/{k}": sum(v) / len(v) for k, v in per_sentence.items()}
    if sentences:
        out.update({f"sentences/{k}": v for k, v in per_sentence.items()})
    return out


ROUGE_SPEC = MetricSpec(
    name="rouge",
    metric_class=TokenIDROUGE,
    corpus=make_corpus(seed=21, n=30, max_len=14),  # token IDs 1..8: SEP (1) splits sentences
    functional=_rouge_functional,
    oracle=_rouge_oracle,
    sum_states=lambda metric, preds, refs: {"n_sentences": torch.tensor(len(preds))},
    variants={"best": {}, "avg": {"accumulate": "avg"}, "best-sentences": {"return_sentence_level_score": True}},
    other_options={"accumulate": "avg"},
    base={"rouge_keys": ROUGE_KEYS, "sep_id": SEP, "pad_id": 0},
    ddp={
        "uneven": {"options": {}, "batches": {0: [("lists", 0, 3), ("padded", 3, 11)], 1: [("tensors", 11, 30)]}},
        "idle_rank1_sentences": {
            "options": {"return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 7)], 1: []},
        },
        "idle_rank0_avg_sentences": {
            "options": {"accumulate": "avg", "return_sentence_level_score": True},
            "batches": {0: [], 1: [("lists", 0, 5), ("lists", 5, 9)]},
        },
        "forward_sentences": {
            "options": {"return_sentence_level_score": True},
            "batches": {0: [("lists", 0, 4), ("padded", 4, 6)], 1: [("lists", 6, 13)]},
            "forward": True,
        },
        "all_idle": {"options": {"return_sentence_level_score": True}, "batches": {0: [], 1: []}},
    },
)


# ------------------------------------------------------------------------------------------------ chrF
HYPS = ["the cat sat on the mat", "a dog", "東京へ行く", "", "(hi) there"]
REFS = [["the cat sat on a mat"], ["the dog", "a dog barked"], ["東京に行く"], ["x"], ["hi there", "(hi), there"]]


def _chrf_functional(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Tensor]:
    out = {"corpus": functional.corpus_chrf(preds, refs, **scoring)}
    if sentences:
        out["sentences"] = functional.sentence_chrf(preds, refs, **scoring, dtype=F64)
    return out


def sacre_chrf(hyps: list[str], refs: list[list[str]], **options: Any) -> tuple[list[float], float]:
    """SacreBLEU's chrF sentence scores and corpus score, / 100."""
    metric = CHRF(**options)
    sentences = [metric.sentence_score(h, r).score / 100 for h, r in zip(hyps, refs, strict=True)]
    return sentences, metric.corpus_score(hyps, _streams(refs)).score / 100


def _chrf_oracle(preds: list, refs: list, scoring: dict, sentences: bool) -> dict[str, Any]:
    """SacreBLEU on the text, or on the IDs joined by spaces: IDs are its words, their n-grams its word n-grams."""
    scoring = {"char_order": 6, **scoring}
    if not isinstance(preds[0], str):
        scoring["char_order"], scoring["word_order"] = 0, scoring["char_order"]
        preds, refs = [_join(p) for p in preds], [[_join(x) for x in r] for r in refs]
    scores, corpus = sacre_chrf(preds, refs, **scoring)
    return {"corpus": corpus, "sentences": scores} if sentences else {"corpus": corpus}


def _chrf_sums(metric: Any, preds: list, refs: list) -> dict[str, Tensor]:
    names = ("char_order", "word_order", "beta", "whitespace", "eps_smoothing", "lowercase")
    return functional.chrf_stats(preds, refs, **{n: getattr(metric, n) for n in names}).sum()._asdict()


CHRF_SPEC = MetricSpec(
    name="chrf",
    metric_class=TokenIDCHRF,
    corpus=make_corpus(seed=9, n=30, vocab=6, max_len=10),
    functional=_chrf_functional,
    oracle=_chrf_oracle,
    sum_states=_chrf_sums,
    variants={
        "default-sentences": {"return_sentence_level_score": True},
        "4": {"char_order": 4},
        "1": {"char_order": 1},
        "3-beta1-eps": {"char_order": 3, "beta": 1, "eps_smoothing": True},
    },
    other_options={"beta": 1},
    ddp={
        "uneven_sentences": {
            "options": {"char_order": 4, "return_sentence_level_score": True},
            "batches": {0: [("padded", 0, 6)], 1: [("lists", 6, 7), ("tensors", 7, 20)]},
        },
        "idle_rank0_compute_on_cpu": {
            "options": {"return_sentence_level_score": True, "compute_on_cpu": True},
            "batches": {0: [], 1: [("padded", 0, 9)]},
        },
    },
)

CHRF_TEXT_SPEC = MetricSpec(
    name="chrf-text",
    metric_class=TokenIDCHRF,
    corpus=(HYPS, REFS),
    functional=_chrf_functional,
    oracle=_chrf_oracle,
    sum_states=_chrf_sums,
    variants={
        "default": {},
        "chrf++-sentences": {"word_order": 2, "return_sentence_level_score": True},
        "lowercase-whitespace": {"lowercase": True, "whitespace": True, "beta": 1},
    },
    other_options={"word_order": 2},
    base={},
    forms={"text": lambda preds, refs: (preds, refs)},
    bad_inputs=TEXT_BAD_INPUTS,
    sizes=(1, 1, 2, 1),
    ddp={
        "uneven": {
            "options": {"word_order": 2, "return_sentence_level_score": True},
            "batches": {0: [("text", 0, 1), ("text", 1, 3)], 1: [("text", 3, 5)]},
        },
        "idle_rank1": {"options": {}, "batches": {0: [("text", 0, 5)], 1: []}},
    },
)

SPECS: dict[str, MetricSpec] = {s.name: s for s in (BLEU_SPEC, GLEU_SPEC, ROUGE_SPEC, CHRF_SPEC, CHRF_TEXT_SPEC)}
VARIANTS = [
    pytest.param(spec, options, id=f"{spec.name}-{name}")
    for spec in SPECS.values()
    for name, options in {
        **spec.variants,
        "sync-on-step-sentences": {"dist_sync_on_step": True, "return_sentence_level_score": True},
    }.items()
]
BAD_INPUTS = [
    pytest.param(spec, *bad.values, id=f"{spec.name}-{bad.id}") for spec in SPECS.values() for bad in spec.bad_inputs
]


# ------------------------------------------------------------------------------------------------ checks
def check_accumulation(spec: MetricSpec, options: dict, device: torch.device) -> None:
    """Batches in every input form, through ``update`` and ``forward`` alternately: each ``forward`` value is its
    batch's, ``compute`` after the first batch and at the end everything seen; the int64 states are the functional
    statistics' sums; moving the metric to the CPU in bfloat16 changes no state nor result."""
    metric = spec.make(**options).to(device)
    twin = spec.make(**options)  # on the CPU, fed the same batches
    end = 0
    for step, (form, start, end) in enumerate(spec.chunks()):
        batch = spec.batch(form, start, end, device)
        if step % 2:
            assert_matches(spec, metric(*batch), range(start, end), options, f"forward {step}")
        else:
            metric.update(*batch)
        twin.update(*spec.batch(form, start, end))
        if step == 0:
            assert_matches(spec, metric.compute(), range(end), options, "compute after one batch")
    assert metric.update_count == len(spec.sizes)
    for name, value in snapshot(metric).items():
        assert all(v.device.type == device.type for v in (value if isinstance(value, list) else [value])), name
    result = metric.compute()
    assert all(v.device.type == device.type for v in flat(result).values())
    assert_matches(spec, result, range(end), options)
    assert_same_result(result, twin.compute())
    for name, value in spec.sum_states(metric, *spec.subset(list(range(end)))).items():
        state = getattr(metric, name)
        assert state.dtype == torch.int64 and torch.equal(state.cpu(), value.to(torch.int64)), name
    before = snapshot(metric)
    moved = metric.to(torch.bfloat16).cpu()
    assert_same_states(before, snapshot(moved))
    assert_same_result(moved.compute(), result)


def run_scenario(rank: int, scenario: dict) -> dict:
    """One gloo rank of a DDP scenario: its batches through ``forward`` or ``update``, ``compute`` twice, its own
    state after ``compute``, then the ``after`` batches and ``compute`` again."""
    spec = SPECS[scenario["spec"]]
    metric = spec.make(**scenario["options"])
    batches = [spec.batch(*b) for b in scenario["batches"][rank]]
    out = feed_and_compute(metric, batches, scenario.get("forward", False))
    out["compute_cached"] = metric.compute()
    out["local_state"] = snapshot(metric)  # unsynced again after compute()
    if "after" in scenario:
        for b in scenario["after"][rank]:
            metric.update(*spec.batch(*b))
        out["compute_after"] = metric.compute()
    return out


def ddp_scenarios() -> dict[str, dict]:
    """Every spec's scenarios, for one spawn."""
    return {f"{s.name}/{name}": {"spec": s.name, **sc} for s in SPECS.values() for name, sc in s.ddp.items()}


def _indices(batches: dict, ranks: Any = range(WORLD_SIZE)) -> list[int]:
    """The sentences of ``ranks`` in gathered order: rank 0's first."""
    return [i for rank in ranks for _, start, end in batches.get(rank, []) for i in range(start, end)]


def check_ddp(spec: MetricSpec, results: list[dict]) -> None:
    """Every rank's ``compute`` is the single-process result (functional and oracle) on all ranks' sentences (its
    own without ``sync_on_compute``); the cached result equals it; each rank's state after ``compute`` is what a
    single process fed its batches holds; ``forward`` values are their batch's (all ranks' step with
    ``dist_sync_on_step``); updates after ``compute`` carry on from each rank's own state."""
    for name, scenario in spec.ddp.items():
        options, batches = scenario["options"], scenario["batches"]
        for rank in range(WORLD_SIZE):
            res = results[rank][f"{spec.name}/{name}"]
            synced = options.get("sync_on_compute", True)
            idx = _indices(batches, range(WORLD_SIZE) if synced else [rank])
            assert_matches(spec, res["compute"], idx, options, name)
            assert_same_result(res["compute"], res["compute_cached"])
            local = fed(spec, batches[rank], **options)
            assert_same_states(snapshot(local), res["local_state"], f"{name} rank {rank}")
            values = res.get("batch_values", [])
            assert len(values) == (len(batches[rank]) if scenario.get("forward") else 0), name
            for step, value in enumerate(values):
                batch = batches[rank][step]
                if options.get("dist_sync_on_step"):
                    idx = [i for r in range(WORLD_SIZE) for i in range(*batches[r][step][1:])]
                else:
                    idx = list(range(*batch[1:]))
                assert_matches(spec, value, idx, options, f"{name}/forward {step}")
            if "after" in scenario:
                both = {r: batches[r] + scenario["after"][r] for r in range(WORLD_SIZE)}
                assert_matches(spec, res["compute_after"], _indices(both), options, f"{name}/after")
