"""Speed ratios against the peers with the calls interleaved in one process: robust to a machine whose speed drifts.

`benchmarks.run` times each implementation in a worker process of its own, one after the other, so a drift of the
machine's speed between two measurements moves their ratio. Here every round calls each implementation once, in
turn, and the ratio is taken per round (median over the rounds), so that both sides of a ratio see the same
moment. No memory or agreement is measured (`benchmarks.run` does both). Example::

    python -m benchmarks.ratio --sizes 64x128,256x256,512x1024 --refs 1,4 --peers nltk-sentence,bleuscore-sentence
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.ab import interleaved, parse_sizes
from benchmarks.data import make_batch
from benchmarks.impls import IMPLS, SENTENCE

OURS = "tensorbleu-sentence"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=parse_sizes("64x128,64x256,256x256,512x1024"), help="B x L list"
    )
    parser.add_argument("--refs", default="1,4", help="references per candidate, comma-separated (1,4)")
    parser.add_argument("--peers", default="nltk-sentence,bleuscore-sentence", help="peer implementations")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of interleaved calls per size (9)")
    parser.add_argument("--vocab", type=int, default=32000)
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in IMPLS or IMPLS[p].level != SENTENCE]
    if unknown:
        parser.error(f"unknown sentence-level peers {unknown}; choose from {sorted(IMPLS)}")
    available = [p for p in peers if IMPLS[p].available()[0]]
    print(f"torch threads {torch.get_num_threads()}; {args.rounds} rounds, calls interleaved; ratio: median over")
    print("the rounds of (peer time / this project's time in the same round)\n")
    header = " | ".join(f"{p} ms | × {p.removesuffix('-sentence')}" for p in available)
    print(f"| B × L | refs | ours ms | {header} |")
    print("|---|---:|---:|" + "---:|---:|" * len(available))
    for refs in [int(r) for r in args.refs.split(",")]:
        for batch_size, length in args.sizes:
            batch = make_batch(batch_size, length, refs, args.vocab, seed=0)
            calls = {OURS: IMPLS[OURS].build(batch)}
            calls.update({p: IMPLS[p].build(batch) for p in available})
            for call in calls.values():  # one warm-up call each
                call()
            times = interleaved(calls, args.rounds)
            ours = times[OURS]
            cells = []
            for p in available:
                ratio = statistics.median(t / o for t, o in zip(times[p], ours, strict=True))
                cells.append(f"{statistics.median(times[p]) * 1e3:.1f} | {ratio:.1f}")
            print(f"| {batch_size} × {length} | {refs} | {statistics.median(ours) * 1e3:.1f} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
