"""Seeded ragged corpora shared by the metric tests (single-process and distributed)."""

from __future__ import annotations

import random


def make_corpus(seed: int, n: int, max_refs: int = 3, vocab: int = 8, max_len: int = 12) -> tuple[list, list]:
    """``n`` candidates (IDs in 1..vocab; 0 is left for padding) with 1..max_refs overlapping references each."""
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        hyp = [rng.randint(1, vocab) for _ in range(rng.randint(1, max_len))]
        sentence_refs = []
        for _ in range(rng.randint(1, max_refs)):
            ref = [t if rng.random() < 0.75 else rng.randint(1, vocab) for t in hyp]
            if rng.random() < 0.5:
                ref += [rng.randint(1, vocab) for _ in range(rng.randint(0, 4))]
            if rng.random() < 0.3 and len(ref) > 1:
                ref = ref[: rng.randint(1, len(ref))]
            sentence_refs.append(ref)
        preds.append(hyp)
        refs.append(sentence_refs)
    return preds, refs
