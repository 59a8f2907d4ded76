"""Reproducible token-ID batches for the benchmarks.

Candidates are ``B`` rows of ``L`` uniformly drawn token IDs in ``[1, vocab)`` (ID 0 is the padding ID: the
paper's code ignores ID 0 by default, so no real token uses it). Each of the ``R`` references of a candidate
is an independent corruption of it: about 30 % of the tokens are replaced by random IDs, then 0-3 random
deletions and 0-3 random insertions are applied, so references are 3 tokens shorter to 3 tokens longer than
the candidate and the sentence BLEU of one reference is about 0.4 (higher with 4 references). References are
right-padded with 0 to the longest one of the batch, giving a ``(B, R, L')`` tensor.

``dist="zipf"`` draws every token (candidates, replacements, insertions) from a Zipf law instead: ID ``k`` with
probability proportional to ``1 / k**ZIPF_EXPONENT`` over ``[1, vocab)``, as word frequencies in text roughly are
(many repeated tokens per row, unlike the uniform draw where nearly every token of a row is distinct).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PAD_ID = 0
REPLACE_FRACTION = 0.3
MAX_EDITS = 3  # up to this many deletions and, independently, insertions per reference
DISTRIBUTIONS = ("uniform", "zipf")
ZIPF_EXPONENT = 1.0


@dataclass
class Batch:
    preds: torch.Tensor  # (B, L) int64, no padding
    target: torch.Tensor  # (B, R, L') int64, right-padded with PAD_ID
    pred_lens: np.ndarray  # (B,)
    ref_lens: np.ndarray  # (B, R)
    vocab: int
    dist: str = "uniform"

    @property
    def batch_size(self) -> int:
        return int(self.preds.shape[0])

    @property
    def num_refs(self) -> int:
        return int(self.target.shape[1])

    @property
    def input_tokens(self) -> int:
        """Tokens handed to the metric: candidate tokens plus reference tokens (padding excluded)."""
        return int(self.pred_lens.sum() + self.ref_lens.sum())

    def target_for_ours(self) -> torch.Tensor:
        """``(B, L')`` with one reference (the natural call), else ``(B, R, L')``."""
        return self.target[:, 0] if self.num_refs == 1 else self.target

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.preds.to(device), self.target.to(device), self.pred_lens, self.ref_lens, self.vocab, self.dist
        )

    def tie_mask(self) -> np.ndarray:
        """Sentences whose closest reference length is tied between a shorter and a longer reference.

        Implementations that break such ties towards the first reference (the paper's code, torchmetrics) may
        then use the longer one, where NLTK/SacreBLEU/this project use the shorter one.
        """
        diff = self.ref_lens - self.pred_lens[:, None]
        dist = np.abs(diff)
        best = dist.min(axis=1, keepdims=True)
        at_best = dist == best
        has_shorter = (at_best & (diff < 0)).any(axis=1)
        has_longer = (at_best & (diff > 0)).any(axis=1)
        return has_shorter & has_longer


def _token_sampler(rng: np.random.Generator, vocab: int, dist: str) -> Callable[[Any], np.ndarray]:
    """``draw(size)``: int64 token IDs in ``[1, vocab)`` under the distribution."""
    if dist == "uniform":
        return lambda size: rng.integers(1, vocab, size=size, dtype=np.int64)
    if dist == "zipf":
        cdf = np.cumsum(1.0 / np.arange(1, vocab, dtype=np.float64) ** ZIPF_EXPONENT)
        cdf /= cdf[-1]
        # inverse CDF; the clip keeps a draw equal to the last bound in range
        return lambda size: np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), vocab - 2) + 1
    raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {dist!r}")


def make_batch(batch_size: int, length: int, num_refs: int, vocab: int, seed: int = 0, dist: str = "uniform") -> Batch:
    """The seeded batch for one grid point (same arguments -> same tensors, on every machine)."""
    if vocab < 3:
        raise ValueError("vocab must be at least 3")
    rng = np.random.default_rng(np.random.SeedSequence([seed, batch_size, length, num_refs, vocab]))
    draw = _token_sampler(rng, vocab, dist)
    preds = draw((batch_size, length))
    refs: list[np.ndarray] = []
    for b in range(batch_size):
        for _ in range(num_refs):
            ref = preds[b].copy()
            replace = rng.random(length) < REPLACE_FRACTION
            ref[replace] = draw(int(replace.sum()))
            n_del = int(rng.integers(0, MAX_EDITS + 1))
            if n_del:
                ref = np.delete(ref, rng.choice(ref.size, size=min(n_del, ref.size - 1), replace=False))
            n_ins = int(rng.integers(0, MAX_EDITS + 1))
            if n_ins:
                pos = np.sort(rng.integers(0, ref.size + 1, size=n_ins))
                ref = np.insert(ref, pos, draw(n_ins))
            refs.append(ref)
    ref_lens = np.array([r.size for r in refs], dtype=np.int64).reshape(batch_size, num_refs)
    target = np.full((batch_size, num_refs, int(ref_lens.max())), PAD_ID, dtype=np.int64)
    for i, ref in enumerate(refs):
        target[i // num_refs, i % num_refs, : ref.size] = ref
    return Batch(
        preds=torch.from_numpy(preds),
        target=torch.from_numpy(target),
        pred_lens=np.full(batch_size, length, dtype=np.int64),
        ref_lens=ref_lens,
        vocab=vocab,
        dist=dist,
    )
