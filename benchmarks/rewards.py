"""GRPO reward benchmark: ``integrations.trl.repetition_penalty_reward`` against TRL's own function, on lists.

Both are called as ``GRPOTrainer`` calls them, with ``completion_ids`` as Python lists of ints: ragged lengths
(a quarter of the completions hit the length limit, the others end with an EOS that is kept), IDs from a 151936
vocabulary, every fourth completion a loop of a short span (the repetition the reward exists to penalise). Each
round calls every implementation once, the order rotating; a ratio is the median over the rounds of
(TRL time / this project's time in the same round). The row "list -> array only" times the conversion of the
lists alone (``struct`` into one array, the fastest exact one found), the floor of any implementation that reads
the lists: TRL time / that time bounds the ratio. Example::

    python -m benchmarks.rewards                      # 256 x 512 and 8 x 256, prints a markdown table
    python -m benchmarks.rewards --sizes 64x1024 --rounds 50 --out /tmp/rewards.md
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

Call = Callable[[], Any]
VOCAB = 151936  # Qwen2.5's
EOS = 151645


def completions(batch: int, length: int, seed: int = 0) -> list[list[int]]:
    """``batch`` completion ID lists as GRPO produces them (see the module docstring)."""
    rng = random.Random(seed)
    out = []
    for i in range(batch):
        truncated = i % 4 == 1
        n = length if truncated else rng.randint(length // 8, length - 1)
        ids = [rng.randrange(VOCAB) for _ in range(n)]
        if i % 4 == 0:
            ids = (ids[: rng.randrange(1, 24)] * length)[:n]
        out.append(ids if truncated else [*ids, EOS])
    return out


def timed_rounds(calls: dict[str, Call], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call per round, the order rotating so that no call always follows the same one."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm up (compilation, buffers)
        calls[name]()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def run(batch: int, length: int, ngram_size: int, rounds: int) -> list[str]:
    """The markdown rows of one size."""
    from trl.rewards import get_repetition_penalty_reward

    from tensorbleu_metrics.integrations.trl import _packed_ids, repetition_penalty_reward

    ids = completions(batch, length)
    theirs = get_repetition_penalty_reward(ngram_size=ngram_size)
    ours = repetition_penalty_reward(ngram_size=ngram_size)
    expected, got = theirs(ids), ours(completion_ids=ids)
    if [v.hex() for v in got] != [v.hex() for v in expected]:
        raise AssertionError(f"{batch} x {length}: the rewards differ from TRL's")
    times = timed_rounds(
        {"ours": lambda: ours(completion_ids=ids), "trl": lambda: theirs(ids), "convert": lambda: _packed_ids(ids)},
        rounds,
    )
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    ratio = statistics.median(a / b for a, b in zip(times["trl"], times["ours"], strict=True))
    ceiling = statistics.median(a / b for a, b in zip(times["trl"], times["convert"], strict=True))
    size = f"{batch} × {length}"
    tokens = sum(map(len, ids))
    return [
        f"| {size} | {tokens} | this project: repetition_penalty_reward | {ms['ours']:.3f} | {ratio:.1f}× |",
        f"| {size} | {tokens} | TRL get_repetition_penalty_reward | {ms['trl']:.3f} | 1.0× |",
        f"| {size} | {tokens} | list -> array only (the floor) | {ms['convert']:.3f} | {ceiling:.1f}× |",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x512,8x256", help="batch x length, comma-separated")
    parser.add_argument("--ngram-size", type=int, default=3, help="TRL's default: 3")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    import trl

    lines = [
        "# Repetition penalty reward: this project against TRL",
        "",
        f"`python -m benchmarks.rewards --sizes {args.sizes} --rounds {args.rounds}`; Python "
        f"{platform.python_version()}, TRL {trl.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); ngram_size {args.ngram_size}; medians of {args.rounds} interleaved "
        "rounds; ratio: median over the rounds of TRL time / time of the row. Values equal TRL's to the bit.",
        "",
        "| completions × max length | tokens | implementation | median ms | TRL ÷ this row |",
        "|---|---:|---|---:|---:|",
    ]
    for size in args.sizes.split(","):
        batch, length = (int(x) for x in size.split("x"))
        lines += run(batch, length, args.ngram_size, args.rounds)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
