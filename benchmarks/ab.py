"""Same-run A/B timing of `sentence_bleu` from two checkouts of this project, calls interleaved.

Interleaving the two versions' calls in one process makes their ratio robust to a machine whose load drifts, which
separate runs are not. Example (the previous kernel checked out beside this one)::

    git worktree add /tmp/before <commit>
    python -m benchmarks.ab /tmp/before . --sizes 64x128,64x256,256x256,512x1024 --refs 1,4
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from benchmarks.data import make_batch
from benchmarks.impls import IMPLS


def load_functional(root: str) -> ModuleType:
    """``tensorbleu_metrics.functional`` of the checkout at ``root`` (a fresh import each time)."""
    for name in [m for m in sys.modules if m == "tensorbleu_metrics" or m.startswith("tensorbleu_metrics.")]:
        del sys.modules[name]
    sys.path.insert(0, str(Path(root).resolve()))
    try:
        return importlib.import_module("tensorbleu_metrics.functional")
    finally:
        sys.path.pop(0)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"64x128,512x1024"`` -> ``[(64, 128), (512, 1024)]``."""
    out = []
    for item in text.split(","):
        batch, length = item.lower().split("x")
        out.append((int(batch), int(length)))
    return out


def interleaved(calls: dict[str, Any], rounds: int, between: Any = None) -> dict[str, list[float]]:
    """Seconds per call of each callable, the callables called in turn, ``rounds`` times (``between``, if given,
    called untimed before each timed call)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            if between is not None:
                between()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", help="checkout of the version to compare against")
    parser.add_argument("after", help="checkout of the version measured")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=parse_sizes("64x128,64x256,256x256,512x1024"), help="B x L list"
    )
    parser.add_argument("--refs", default="1,4", help="references per candidate, comma-separated (1,4)")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per version and size (15)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="an untimed NLTK loop over the same batch before each timed call: the caches as benchmarks.ratio and "
        "a training loop leave them",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    versions = {"before": load_functional(args.before), "after": load_functional(args.after)}
    context = ", each after an NLTK loop (--cold)" if args.cold else ""
    print(f"torch threads {torch.get_num_threads()}; medians (min) of {args.repeats} interleaved calls{context}")
    print("| B × L | refs | before ms | after ms | before / after |")
    print("|---|---:|---:|---:|---:|")
    for refs in [int(r) for r in args.refs.split(",")]:
        for batch_size, length in args.sizes:
            batch = make_batch(batch_size, length, refs, 32000, seed=0)
            preds, target = batch.preds, batch.target_for_ours()
            calls: dict[str, Any] = {
                name: (lambda fn=fn, p=preds, t=target: fn.sentence_bleu(p, t, pad_id=0, smoothing="method1"))
                for name, fn in versions.items()
            }
            assert torch.equal(calls["before"](), calls["after"]()), "the two versions disagree"
            between = IMPLS["nltk-sentence"].build(batch) if args.cold else None
            times = interleaved(calls, args.repeats, between)
            before, after = (statistics.median(times[k]) * 1e3 for k in ("before", "after"))
            low_b, low_a = (min(times[k]) * 1e3 for k in ("before", "after"))
            print(
                f"| {batch_size} × {length} | {refs} | {before:.1f} ({low_b:.1f}) | {after:.1f} ({low_a:.1f}) "
                f"| {before / after:.2f} |"
            )


if __name__ == "__main__":
    main()
