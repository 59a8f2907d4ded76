"""Seeded ragged corpora, their input forms, the gloo runner and a host-read detector shared by the tests."""

from __future__ import annotations

import os
import random
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


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


def padded(preds: list, refs: list, pad: int = 0) -> tuple[Any, Any]:
    """(B, L) candidates and (B, R, L') references, right-padded; absent references are all-pad rows."""
    import torch

    p = torch.full((len(preds), max(len(x) for x in preds)), pad, dtype=torch.int64)
    for i, hyp in enumerate(preds):
        p[i, : len(hyp)] = torch.tensor(hyp)
    width = max(len(x) for r in refs for x in r)
    t = torch.full((len(refs), max(len(r) for r in refs), width), pad, dtype=torch.int64)
    for i, sentence_refs in enumerate(refs):
        for j, ref in enumerate(sentence_refs):
            t[i, j, : len(ref)] = torch.tensor(ref)
    return p, t


def tensor_lists(preds: list, refs: list) -> tuple[list, list]:
    """The ragged form with 1-D tensors."""
    import torch

    return [torch.tensor(x) for x in preds], [[torch.tensor(x) for x in s] for s in refs]


# the input forms a metric takes, each built from the same ragged lists (padding ID 0)
FORMS: dict[str, Callable[[list, list], tuple[Any, Any]]] = {
    "padded": padded,
    "lists": lambda p, r: (p, r),
    "tensors": tensor_lists,
}


def feed_and_compute(metric: Any, batches: list, forward: bool) -> dict:
    """A rank's batches (argument tuples) through ``forward``, recording each batch value, or through ``update``;
    then ``compute()``. Returns ``{"compute": ..., "batch_values": [...]}`` (the values only for ``forward``)."""
    out: dict = {}
    if forward:
        out["batch_values"] = [metric(*batch) for batch in batches]
    else:
        for batch in batches:
            metric.update(*batch)
    out["compute"] = metric.compute()
    return out


def _gloo_worker(rank: int, world_size: int, port: int, out_dir: str, run: Callable, scenarios: dict) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        results = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, scenario in scenarios.items():
                results[name] = run(rank, scenario)
                dist.barrier()
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_on_gloo(run: Callable, scenarios: dict, world_size: int, out_dir: Path) -> list[dict]:
    """Every scenario on ``world_size`` gloo processes: ``run(rank, scenario)`` (a module-level function) gives
    what a rank computed; returns each rank's ``{scenario name: result}``."""
    import torch
    import torch.multiprocessing as mp

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gloo_worker, args=(world_size, port, str(out_dir), run, scenarios), nprocs=world_size, join=True)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(world_size)]


class NoHostReads(TorchDispatchMode):
    """Fails on every operation that makes the host read a tensor's values: on an accelerator each is a wait for
    the device (item/int/bool go through ``_local_scalar_dense``; the others size their output from the data)."""

    READS = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "repeat_interleave", "equal", "is_nonzero")
    INDEXING = ("index", "index_put", "index_put_", "_index_put_impl_")

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if any(name.startswith(read) or name.startswith(f"_{read}") for read in self.READS):
            raise AssertionError(f"the host reads values: {func}")
        if name in self.INDEXING and any(i is not None and i.dtype == torch.bool for i in args[1]):
            raise AssertionError(f"boolean indexing reads values: {func}")
        return func(*args, **(kwargs or {}))


class OperationKinds(TorchDispatchMode):
    """Records the distinct kinds of torch operation a block runs: (operation, dtypes of its tensor arguments),
    views left out. After a Python loop (NLTK's, a training step) each new kind costs time on the CPU (its code is
    no longer in the processor's caches), whatever the data: the cold cost of a call. ``count``: the
    operations themselves, views left out (each at least one kernel launch on a GPU)."""

    VIEWS = ("view", "unsqueeze", "select", "slice", "expand", "alias", "detach", "unflatten", "unbind", "as_strided")
    VIEWS += ("t", "transpose", "reshape", "_unsafe_view", "lift_fresh", "resolve_conj", "resolve_neg")

    def __init__(self) -> None:
        super().__init__()
        self.kinds: set[tuple[str, tuple[str, ...]]] = set()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name not in self.VIEWS:
            tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            self.kinds.add((name, tuple(str(t.dtype) for t in tensors)))
            self.count += 1
        return func(*args, **kwargs)
