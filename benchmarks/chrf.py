"""chrF / chrF++ benchmark: this project against the SacreBLEU ``sentence_score`` loop, fastchrf and torchmetrics.

Cases (issue 26): sentence chrF on text (512 sentences x 60 words by default, one reference each; the strings'
conversion included), sentence chrF++ on the same text, and token-ID chrF at 512 x 1024 against this project's own
``sentence_bleu`` on the same tokens. Each round calls every implementation once, the order rotating; a ratio is
the median over the rounds of (peer time / this project's time in the same round). Slow peers join fewer rounds
(``--time`` seconds each). Agreement: the largest difference to this project's float64 scores. Memory: the
NumPy/Python peak of one text call (``tracemalloc``) per input character. Example::

    python -m benchmarks.chrf                     # defaults, prints a markdown table
    python -m benchmarks.chrf --sentences 64 --words 10 --rounds 3 --json /tmp/chrf.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tensorbleu_metrics.functional import sentence_bleu, sentence_chrf

Call = Callable[[], Any]


def make_text(sentences: int, words: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Hypotheses of ``words`` Zipf-distributed words (a tenth carrying a punctuation mark) and references sharing
    about 70% of their words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(rng.choice(letters, rng.integers(1, 11))) for _ in range(20000)]
    marks = ["", "", "", "", "", "", "", "", ",", "."]

    def sentence() -> list[str]:
        ids = np.minimum(rng.zipf(1.3, words), len(vocab)) - 1
        return [vocab[i] + marks[rng.integers(len(marks))] for i in ids]

    hyps, refs = [], []
    for _ in range(sentences):
        hyp = sentence()
        other = sentence()
        keep = rng.random(words) < 0.7
        hyps.append(" ".join(hyp))
        refs.append(" ".join(h if k else o for h, o, k in zip(hyp, other, keep, strict=True)))
    return hyps, refs


def _interleaved(
    calls: dict[str, Call], rounds: int, budget_s: float, outputs: dict[str, Any] | None = None
) -> dict[str, list[float]]:
    """Seconds of each call per round (NaN where a slow peer sat the round out); the first is this project.
    ``outputs`` receives each call's warm-up result."""
    names = list(calls)
    estimate = {}
    for name, call in calls.items():  # one warm-up call each, which also estimates its time
        start = time.perf_counter()
        result = call()
        estimate[name] = time.perf_counter() - start
        if estimate[name] < budget_s:  # a second call for the estimate: the first may include compilation
            start = time.perf_counter()
            call()
            estimate[name] = time.perf_counter() - start
        if outputs is not None:
            outputs[name] = result
    joins = {name: max(1, min(rounds, int(budget_s / max(estimate[name], 1e-9)))) for name in names}
    joins[names[0]] = rounds
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            # a peer joins evenly spread rounds
            if name != names[0] and (r * joins[name]) // rounds == ((r + 1) * joins[name]) // rounds:
                times[name].append(float("nan"))
                continue
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _ratios(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    ours_name = next(iter(times))
    ours = times[ours_name]
    out = {}
    for name, values in times.items():
        paired = [v / o for v, o in zip(values, ours, strict=True) if v == v]
        out[name] = {
            "median_ms": statistics.median(v for v in values if v == v) * 1e3,
            "ratio": statistics.median(paired) if name != ours_name else 1.0,
            "rounds": len(paired),
        }
    return out


def _peak_bytes(call: Call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def text_calls(hyps: list[str], refs: list[str], word_order: int) -> dict[str, Call]:
    from sacrebleu.metrics import CHRF

    metric = CHRF(word_order=word_order)
    calls: dict[str, Call] = {
        "ours": lambda: sentence_chrf(hyps, refs, word_order=word_order, dtype=torch.float64),
        "sacrebleu-loop": lambda: [metric.sentence_score(h, [r]).score / 100 for h, r in zip(hyps, refs, strict=True)],
    }
    if word_order == 0:
        try:
            import fastchrf

            wrapped_h, wrapped_r = [[h] for h in hyps], [[r] for r in refs]
            calls["fastchrf"] = lambda: [row[0][0] / 100 for row in fastchrf.pairwise_chrf(wrapped_h, wrapped_r)]
        except ImportError:
            pass
    try:
        from torchmetrics.functional.text import chrf_score

        wrapped = [[r] for r in refs]
        calls["torchmetrics"] = lambda: chrf_score(
            hyps, wrapped, n_word_order=word_order, return_sentence_level_score=True
        )[1]
    except ImportError:
        pass
    return calls


def token_calls(batch: int, length: int, vocab: int = 32000, seed: int = 0) -> dict[str, Call]:
    gen = torch.Generator().manual_seed(seed)
    preds = torch.randint(1, vocab, (batch, length), generator=gen)
    target = torch.where(
        torch.rand(batch, length, generator=gen) < 0.7, preds, torch.randint(1, vocab, (batch, length))
    )
    return {
        "ours": lambda: sentence_chrf(preds, target, dtype=torch.float64),
        "ours sentence_bleu": lambda: sentence_bleu(preds, target, dtype=torch.float64),
    }


def _agreement(outputs: dict[str, Any]) -> dict[str, float]:
    ours = np.asarray(outputs["ours"])
    out = {}
    for name, theirs in outputs.items():
        if name == "ours":
            continue
        theirs = theirs.double().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs, dtype=float)
        out[name] = float(np.abs(theirs - ours).max())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--token-size", default="512x1024", help="B x L of the token-ID case")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--time", type=float, default=5.0, help="seconds of timed calls per slow peer and case")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    hyps, refs = make_text(args.sentences, args.words)
    chars = sum(map(len, hyps)) + sum(map(len, refs))
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "input_characters": chars, "cases": {}}
    for label, word_order in (("chrF, text", 0), ("chrF++, text", 2)):
        calls = text_calls(hyps, refs, word_order)
        outputs: dict[str, Any] = {}
        case = _ratios(_interleaved(calls, args.rounds, args.time, outputs))
        case["agreement"] = _agreement(outputs)
        case["bytes_per_character"] = _peak_bytes(calls["ours"]) / chars
        results["cases"][f"{label}, {args.sentences} x {args.words} words"] = case
    b, n = (int(x) for x in args.token_size.split("x"))
    results["cases"][f"chrF, token IDs, {b} x {n}"] = _ratios(_interleaved(token_calls(b, n), args.rounds, args.time))
    print(f"{chars} input characters; torch threads {results['threads']}; ratio: median of peer / ours per round")
    for name, case in results["cases"].items():
        print(f"\n### {name}\n\n| implementation | median ms | × ours | rounds | max abs diff |\n|---|---|---|---|---|")
        agreement = case.get("agreement", {})
        for impl, row in case.items():
            if impl in ("agreement", "bytes_per_character"):
                continue
            diff = agreement.get(impl)
            print(
                f"| {impl} | {row['median_ms']:.1f} | {row['ratio']:.2f} | {row['rounds']} | "
                f"{'' if diff is None else f'{diff:.1e}'} |"
            )
        if "bytes_per_character" in case:
            print(f"\nNumPy/Python peak of one call: {case['bytes_per_character']:.0f} bytes per input character")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
