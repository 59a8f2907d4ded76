"""The counting kernel's paths on a CUDA device, side by side in one process.

For each size and kernel variant (the order-by-order pass, the same with its rows cut to their counted prefix,
the default choice, and every order in one sort at any size), ``sentence_bleu`` on padded CUDA tensors is timed
with the variants' calls interleaved (median over the rounds, ``torch.cuda.synchronize()`` around each call), its
peak CUDA memory is measured above the inputs, its host synchronisations are counted (torch's sync debug mode,
with and without ``validate``), and its scores are compared with the CPU's. Beside them, the default
``validate=False`` call eager against its replay from a captured CUDA graph (or why the capture failed). Profiles
split a call into host time, device (kernel) time and launches. The variant fastest over all sizes (geometric
mean) among those within ``--max-bytes-per-token`` is printed as ``--kernel`` options for ``benchmarks.run``
(nothing for the default) and written to ``OUT/kernel.txt``.

    python -m benchmarks.gpu_probe --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings
from functools import partial
from typing import Any

import torch

from benchmarks.ab import interleaved, parse_sizes
from benchmarks.data import make_batch
from benchmarks.run import set_kernel_constants
from tensorbleu_metrics.functional import _sorted_pass, sentence_bleu

# name -> the counting kernel's constants that select its path (the defaults: a one-sort count for one reference,
# short rows and small batches; else the order-by-order pass, its rows sorted whole, without host reads)
VARIANTS: dict[str, dict[str, int]] = {
    "order by order": {"_ONE_SORT_ROW": 0},
    "order by order, rows cut": {"_ONE_SORT_ROW": 0, "_CUT_ROWS_ANYWHERE": 1},
    "default": {},
    "one sort, any size": {"_ONE_SORT_ROW": 1 << 62, "_ONE_SORT_MAX": 1 << 62},
}
DEFAULTS = {name: getattr(_sorted_pass, name) for name in ("_ONE_SORT_ROW", "_ONE_SORT_MAX", "_CUT_ROWS_ANYWHERE")}


def _set(variant: dict[str, int]) -> None:
    set_kernel_constants(DEFAULTS | variant)


def _call(preds: torch.Tensor, target: torch.Tensor, variant: dict[str, int], validate: bool = True) -> torch.Tensor:
    _set(variant)
    return sentence_bleu(preds, target, pad_id=0, validate=validate)


def _captured(preds: torch.Tensor, target: torch.Tensor) -> Any:
    """The default ``sentence_bleu(..., validate=False)`` captured in a CUDA graph on copies of the inputs; the
    returned call refills them and replays the graph (what a training loop with fixed shapes would do)."""
    static_preds, static_target = preds.clone(), target.clone()

    def call() -> torch.Tensor:
        return sentence_bleu(static_preds, static_target, pad_id=0, validate=False)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up away from the default stream, as capture requires
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call()

    def replay() -> torch.Tensor:
        static_preds.copy_(preds)
        static_target.copy_(target)
        graph.replay()
        return out

    return replay


def _graph_row(preds: torch.Tensor, target: torch.Tensor, rounds: int) -> dict[str, Any]:
    """Eager ``validate=False`` calls against their CUDA-graph replay, interleaved; the capture's error if any."""
    _set({})
    eager = partial(_call, preds, target, {}, validate=False)
    try:
        replay = _captured(preds, target)
    except Exception as exc:  # the measurement records why a capture failed
        return {"graph_error": f"{type(exc).__name__}: {exc}"[:300]}
    times = interleaved({"eager": _timed(eager), "graph": _timed(replay)}, rounds)
    return {
        "eager_no_validate_ms": statistics.median(times["eager"]) * 1e3,
        "graph_ms": statistics.median(times["graph"]) * 1e3,
        "graph_min_ms": min(times["graph"]) * 1e3,
        "graph_equals_eager": bool(torch.equal(replay(), eager())),
    }


def _timed(call: Any) -> Any:
    def run() -> None:
        torch.cuda.synchronize()
        call()
        torch.cuda.synchronize()

    return run


def _syncs(call: Any) -> int:
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def _peak_bytes(call: Any) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    call()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _profile(call: Any, calls: int = 10) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / calls
    averages = prof.key_averages()
    kernel_us = sum(getattr(e, "self_device_time_total", 0.0) for e in averages)
    launches = sum(e.count for e in averages if "LaunchKernel" in e.key or e.key == "cudaMemsetAsync")
    return {"wall_ms": wall * 1e3, "device_ms": kernel_us / calls / 1e3, "launches": launches / calls}


def _write(out: str, meta: dict[str, Any], rows: list[Any], profiles: dict[str, Any], best: str | None) -> None:
    with open(os.path.join(out, "probe.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "profiles": profiles, "choice": best}, f, indent=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16x256,64x128,64x256,256x256,512x256,512x1024")
    parser.add_argument("--refs", default="1,4")
    parser.add_argument("--profile-sizes", default="512x1024,64x256")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--max-bytes-per-token", type=float, default=160.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    rows: list[dict[str, Any]] = []
    for n_refs in [int(r) for r in args.refs.split(",")]:
        for batch_size, length in parse_sizes(args.sizes):
            batch = make_batch(batch_size, length, n_refs, 32000)
            cpu = sentence_bleu(batch.preds, batch.target_for_ours(), pad_id=0)
            preds, target = batch.preds.cuda(), batch.target_for_ours().cuda()
            calls = {name: partial(_call, preds, target, variant) for name, variant in VARIANTS.items()}
            for call in calls.values():  # warm-up
                call()
                call()
            times = interleaved({name: _timed(call) for name, call in calls.items()}, args.rounds)
            for name, variant in VARIANTS.items():
                row = {
                    "variant": name,
                    "B": batch_size,
                    "L": length,
                    "refs": n_refs,
                    "median_ms": statistics.median(times[name]) * 1e3,
                    "min_ms": min(times[name]) * 1e3,
                    "bytes_per_token": _peak_bytes(calls[name]) / batch.input_tokens,
                    "syncs": _syncs(calls[name]),
                    "syncs_no_validate": _syncs(partial(_call, preds, target, variant, validate=False)),
                    "max_abs_diff_vs_cpu": (calls[name]().cpu() - cpu).abs().max().item(),
                }
                rows.append(row)
                print(
                    f"{batch_size:>4}x{length:<5} r{n_refs} {name:<26} {row['median_ms']:7.3f} ms "
                    f"(min {row['min_ms']:.3f})  {row['bytes_per_token']:6.1f} B/token  syncs {row['syncs']}/"
                    f"{row['syncs_no_validate']}  diff {row['max_abs_diff_vs_cpu']:.1e}",
                    flush=True,
                )
            graph = {"variant": "CUDA graph", "B": batch_size, "L": length, "refs": n_refs}
            graph.update(_graph_row(preds, target, args.rounds))
            rows.append(graph)
            print(f"{batch_size:>4}x{length:<5} r{n_refs} CUDA graph: {graph}", flush=True)
    _set({})
    # the choice: fastest geometric mean over the sizes, within the memory bound at every size
    best, best_score = None, math.inf
    for name in VARIANTS:
        mine = [r for r in rows if r["variant"] == name]  # (the CUDA-graph rows are no kernel variant)
        if max(r["bytes_per_token"] for r in mine) > args.max_bytes_per_token:
            continue
        score = sum(math.log(r["median_ms"]) for r in mine)
        print(f"{name}: geometric mean {math.exp(score / len(mine)):.3f} ms", flush=True)
        if score < best_score:
            best, best_score = name, score
    meta = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rounds": args.rounds}
    choice = " ".join(f"--kernel {k}={v}" for k, v in VARIANTS[best].items()) if best is not None else ""
    print(f"choice: {best} -> {choice}", flush=True)
    profiles: dict[str, dict[str, float]] = {}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "kernel.txt"), "w") as f:
            f.write(choice + "\n")
        _write(args.out, meta, rows, profiles, best)
    # last (a profiler that fails leaves the measurements above written): host and device time per call
    try:
        for batch_size, length in parse_sizes(args.profile_sizes):
            size = f"{batch_size}x{length}"
            for n_refs in (1, 4):
                batch = make_batch(batch_size, length, n_refs, 32000)
                preds, target = batch.preds.cuda(), batch.target_for_ours().cuda()
                for name in ("order by order", "order by order, rows cut", "one sort, any size"):
                    key = f"{size} r{n_refs} {name}"
                    profiles[key] = _profile(partial(_call, preds, target, VARIANTS[name]))
                    print(f"profile {key}: {profiles[key]}", flush=True)
    finally:
        _set({})
        if args.out:
            _write(args.out, meta, rows, profiles, best)


if __name__ == "__main__":
    main()
