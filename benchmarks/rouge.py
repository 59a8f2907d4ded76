"""ROUGE benchmark: this project's ``rouge_score`` against Google's rouge-score loop (and torchmetrics), same run.

Times, peak memory (bytes per input token) and agreement on the seeded batches of :mod:`benchmarks.data`.
Run from the repository root::

    python -m benchmarks.rouge                                   # CPU: the default grid, peers where listed
    python -m benchmarks.rouge --device cuda --grid 512x1024     # a GPU: ROUGE-L beside BLEU
    python -m benchmarks.rouge --busy 2                          # 2 busy processes beside the whole run

CPU points run in a forked worker process each (peak RSS above the baseline, as :mod:`benchmarks.measure`
does for BLEU); CUDA points in process (``max_memory_allocated``). Every peer call starts from the token-ID
tensors: ``.tolist()`` and joining strings are timed, as a training loop pays for them.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import multiprocessing as mp
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.busy import busy_count, busy_processes
from benchmarks.data import PAD_ID, Batch, make_batch
from benchmarks.impls import to_lists, to_strings
from benchmarks.measure import OK, OVER_TIME, Task, _run_calls, current_rss, peak_rss, reset_peak_rss

KEYS = ("rouge1", "rouge2", "rougeL")
SEP_ID = 1  # ROUGE-Lsum rows: this ID ends a sentence
SENTENCE_LENGTH = 20  # ROUGE-Lsum rows: every 20th position of each sequence becomes SEP_ID
DEFAULT_GRID = ((512, 256), (64, 1024), (512, 1024))
# the peers' points: the rouge-score loop (a pure-Python LCS, quadratic in the length) is too slow beyond them
DEFAULT_PEER_GRID = ((512, 256), (64, 1024))


def _ours(keys: tuple[str, ...]) -> Callable[[Batch], Callable[[], Any]]:
    def build(batch: Batch) -> Callable[[], Any]:
        from tensorbleu_metrics.functional import rouge_score

        preds, target = batch.preds, batch.target_for_ours()
        return lambda: rouge_score(preds, target, rouge_keys=keys, pad_id=PAD_ID)

    return build


def _ours_bleu(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import sentence_bleu

    preds, target = batch.preds, batch.target_for_ours()
    return lambda: sentence_bleu(preds, target, pad_id=PAD_ID)


def _with_sentences(batch: Batch, sentence_length: int = SENTENCE_LENGTH) -> Batch:
    """The batch with every ``sentence_length``-th position of each sequence replaced by ``SEP_ID``."""

    def every(x: torch.Tensor) -> torch.Tensor:
        return (torch.arange(x.shape[-1], device=x.device) % sentence_length) == sentence_length - 1

    preds = torch.where(every(batch.preds), SEP_ID, batch.preds)
    target = torch.where(every(batch.target) & (batch.target != PAD_ID), SEP_ID, batch.target)
    return Batch(preds, target, batch.pred_lens, batch.ref_lens, batch.vocab, batch.dist)


def ours_lsum(sentence_length: int = SENTENCE_LENGTH) -> Callable[[Batch], Callable[[], Any]]:
    """This project's ROUGE-Lsum with a separator every ``sentence_length`` tokens."""

    def build(batch: Batch) -> Callable[[], Any]:
        from tensorbleu_metrics.functional import rouge_score

        split = _with_sentences(batch, sentence_length)
        preds, target = split.preds, split.target_for_ours()
        return lambda: rouge_score(preds, target, rouge_keys="rougeLsum", sep_id=SEP_ID, pad_id=PAD_ID)

    return build


def _lsum_text(ids: list[int]) -> str:
    """IDs joined by spaces, a newline in place of each separator (rougeLsum's sentence boundary)."""
    return " ".join("\n" if t == SEP_ID else str(t) for t in ids)


def _rouge_score_lsum(batch: Batch) -> Callable[[], Any]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeLsum"])
    split = _with_sentences(batch)

    def run() -> dict[str, list[float]]:
        preds, refs = to_lists(split)
        scores = [
            scorer.score_multi([_lsum_text(x) for x in r], _lsum_text(p)) for p, r in zip(preds, refs, strict=True)
        ]
        return {"rougeLsum": [s["rougeLsum"].fmeasure for s in scores]}

    return run


def rouge_score_rs_lsum(sentence_length: int = SENTENCE_LENGTH) -> Callable[[Batch], Callable[[], Any]]:
    """rouge-score-rs ``score_batch`` on rougeLsum, a newline every ``sentence_length`` tokens (one reference)."""

    def build(batch: Batch) -> Callable[[], Any]:
        from rouge_score_rs import RougeScorer

        scorer = RougeScorer(["rougeLsum"])
        split = _with_sentences(batch, sentence_length)
        _one_reference(split, "rouge-score-rs score_batch")

        def run() -> dict[str, list[float]]:
            preds, refs = to_lists(split)
            scores = scorer.score_batch([_lsum_text(r[0]) for r in refs], [_lsum_text(p) for p in preds])
            return {"rougeLsum": [s["rougeLsum"].fmeasure for s in scores]}

        return run

    return build


def _one_reference(batch: Batch, what: str) -> None:
    if batch.num_refs != 1:
        raise ValueError(f"{what} scores pairs: one reference per candidate, got {batch.num_refs}")


def _rouge_score_rs(batch: Batch) -> Callable[[], Any]:
    from rouge_score_rs import RougeScorer

    scorer = RougeScorer(list(KEYS))
    _one_reference(batch, "rouge-score-rs score_batch")

    def run() -> dict[str, list[float]]:
        preds, refs = to_strings(batch)
        scores = scorer.score_batch([r[0] for r in refs], preds)
        return {k: [s[k].fmeasure for s in scores] for k in KEYS}

    return run


def _rouge_rust(batch: Batch) -> Callable[[], Any]:
    import fast_rouge

    _one_reference(batch, "rouge-rust score_batch")

    def run() -> dict[str, list[float]]:
        preds, refs = to_strings(batch)
        scores = fast_rouge.score_batch([r[0] for r in refs], preds)
        return {k: [s[k].fmeasure for s in scores] for k in KEYS}

    return run


def _rapidrouge(batch: Batch) -> Callable[[], Any]:
    from rapidrouge.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(KEYS))

    def run() -> dict[str, list[float]]:
        preds, refs = to_strings(batch)
        scores = [scorer.score_multi(r, p) for p, r in zip(preds, refs, strict=True)]
        return {k: [s[k].fmeasure for s in scores] for k in KEYS}

    return run


def _rouge_score_loop(batch: Batch) -> Callable[[], Any]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(KEYS))

    def run() -> dict[str, list[float]]:
        preds, refs = to_strings(batch)
        scores = [scorer.score_multi(r, p) for p, r in zip(preds, refs, strict=True)]
        return {k: [s[k].fmeasure for s in scores] for k in KEYS}

    return run


def _torchmetrics(batch: Batch) -> Callable[[], Any]:
    from torchmetrics.functional.text import rouge_score

    def run() -> Any:
        preds, refs = to_strings(batch)
        return rouge_score(preds, refs, rouge_keys=KEYS)

    return run


# name -> (build, description, devices, compared with ours)
IMPLS: dict[str, tuple[Callable[[Batch], Callable[[], Any]], str, tuple[str, ...], bool]] = {
    "ours-rouge": (_ours(KEYS), "rouge_score(rouge1, rouge2, rougeL)", ("cpu", "cuda"), False),
    "ours-rougeL": (_ours(("rougeL",)), "rouge_score(rougeL)", ("cpu", "cuda"), False),
    "ours-rougeN": (_ours(("rouge1", "rouge2")), "rouge_score(rouge1, rouge2)", ("cpu", "cuda"), False),
    "ours-rougeLsum": (
        ours_lsum(),
        f"rouge_score(rougeLsum), ID {SEP_ID} every {SENTENCE_LENGTH} tokens",
        ("cpu", "cuda"),
        False,
    ),
    "ours-bleu": (_ours_bleu, "sentence_bleu (for comparison)", ("cpu", "cuda"), False),
    "rouge-score": (_rouge_score_loop, "rouge-score 0.1.2 RougeScorer.score_multi loop", ("cpu",), True),
    "rouge-score-Lsum": (_rouge_score_lsum, "rouge-score rougeLsum loop, newline every 20 tokens", ("cpu",), True),
    "rouge-score-rs": (
        _rouge_score_rs,
        "rouge-score-rs RougeScorer.score_batch (Rust, all cores)",
        ("cpu",),
        True,
    ),
    "rouge-score-rs-Lsum": (
        rouge_score_rs_lsum(),
        f"rouge-score-rs rougeLsum score_batch, newline every {SENTENCE_LENGTH} tokens",
        ("cpu",),
        True,
    ),
    "rouge-rust": (_rouge_rust, "rouge-rust fast_rouge.score_batch (Rust)", ("cpu",), True),
    "rapidrouge": (_rapidrouge, "rapidrouge RougeScorer.score_multi loop (pure Python)", ("cpu",), True),
    "torchmetrics": (_torchmetrics, "torchmetrics rouge_score (corpus mean)", ("cpu",), False),
}
# what must import for a peer to run (this project's rows need nothing more)
MODULES = {
    "rouge-score": "rouge_score",
    "rouge-score-Lsum": "rouge_score",
    "rouge-score-rs": "rouge_score_rs",
    "rouge-score-rs-Lsum": "rouge_score_rs",
    "rouge-rust": "fast_rouge",
    "rapidrouge": "rapidrouge",
    "torchmetrics": "torchmetrics",
}


def unavailable(impl: str) -> str | None:
    """Why a peer cannot run here (its import's error), or None."""
    try:
        importlib.import_module(MODULES.get(impl, "tensorbleu_metrics.functional"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


DEFAULT_IMPLS = (
    "ours-rouge",
    "ours-rougeL",
    "ours-rougeN",
    "ours-bleu",
    "rouge-score",
    "rouge-score-rs",
    "rouge-rust",
    "rapidrouge",
    "ours-rougeLsum",
    "rouge-score-Lsum",
    "rouge-score-rs-Lsum",
)


def agreement(batch: Batch, out: Any, sentence_length: int = SENTENCE_LENGTH) -> float:
    """Largest |F - this project's float64 F| over the keys and sentences of a result (rougeLsum: the batch split
    every ``sentence_length`` tokens, as the peers saw it)."""
    from tensorbleu_metrics.functional import rouge_score

    keys = [k.removesuffix("_fmeasure") for k in out if not k.endswith(("_precision", "_recall"))]
    split = "rougeLsum" in keys
    source = _with_sentences(batch, sentence_length) if split else batch
    ours = rouge_score(
        source.preds.cpu(),
        source.target_for_ours().cpu(),
        rouge_keys=keys,
        sep_id=SEP_ID if split else None,
        pad_id=PAD_ID,
        dtype=torch.float64,
    )
    diffs = []
    for k in keys:
        value = out[k] if k in out else out[f"{k}_fmeasure"]
        theirs = value.double().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)
        diffs.append(np.abs(theirs - ours[f"{k}_fmeasure"].numpy()).max())
    return float(max(diffs))


def _measure(task: Task, device: str) -> dict[str, Any]:
    """Time one implementation at one point; peak memory above the state before the calls."""
    build, _, _, compared = IMPLS[task.impl]
    # a call on a 2-sentence batch first: one-time costs (lazy imports, thread pools) stay out of the peak
    build(make_batch(2, 16, task.num_refs, task.vocab, task.seed + 1).to(device))()
    batch = make_batch(task.batch_size, task.length, task.num_refs, task.vocab, task.seed).to(device)
    fn = build(batch)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gc.collect()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = current_rss() or 0
        reset_peak_rss()
    status, times, out = _run_calls(fn, task, task.time_budget_s, sync, lambda i: None)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss()) - base
    row: dict[str, Any] = {"status": status, "times_s": times, "peak_bytes": max(peak, 0), "tokens": batch.input_tokens}
    if status == OK and compared and task.agreement:
        row["max_abs_diff"] = agreement(batch, out)
    return row


def _worker(conn: Any, task: Task) -> None:
    try:
        conn.send(_measure(task, "cpu"))
    except BaseException as exc:  # report, do not hang the parent
        conn.send({"status": f"error: {type(exc).__name__}: {exc}", "times_s": []})
    finally:
        conn.close()


def measure(task: Task, device: str) -> dict[str, Any]:
    """One point: a forked worker on CPU (exact peak RSS, killed past the time budget), in process on CUDA."""
    if device == "cuda":
        return _measure(task, device)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(child, task), daemon=True)
    proc.start()
    child.close()
    limit = task.time_budget_s * (task.warmup + task.repeats + 1) + 120  # inputs, calls and agreement
    result: dict[str, Any] = {"status": OVER_TIME, "times_s": []}
    if parent.poll(limit):
        result = parent.recv()
    proc.kill()
    proc.join(10)
    return result


def _grid(text: str) -> tuple[tuple[int, int], ...]:
    points = []
    for part in text.split(","):
        b, length = part.lower().split("x")
        points.append((int(b), int(length)))
    return tuple(points)


def _write(out_dir: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "rouge.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    # the ratio of each of this project's rows to the peer computing the same keys
    pairs = {"rouge-score": "ours-rouge", "rouge-score-Lsum": "ours-rougeLsum"}  # the "× rouge-score" column
    peer = {
        (r["batch"], r["length"], pairs[r["impl"]]): r["median_ms"]
        for r in rows
        if r["impl"] in pairs and r["median_ms"]
    }
    lines = [
        "# ROUGE benchmark",
        "",
        f"{meta['machine']}, torch {meta['torch']}, {meta['threads']} thread(s), device {meta['device']}; "
        f"vocab {meta['vocab']}, {meta['refs']} reference(s); medians of the timed calls; "
        + (f"{meta['busy']} busy-looping process(es) beside the run." if meta.get("busy") else "idle machine."),
        "",
        "| impl | B × L | median ms | × rouge-score (same run) | peak memory | bytes / input token | max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["median_ms"]
        peer_ms = peer.get((r["batch"], r["length"], r["impl"]))
        speed = f"{peer_ms / ms:.0f}×" if peer_ms and ms else ""
        mem = r.get("peak_bytes")
        per_token = f"{mem / r['tokens']:.0f}" if mem is not None and r.get("tokens") else ""
        diff = "" if r.get("max_abs_diff") is None else f"{r['max_abs_diff']:.1e}"
        shown = f"{ms:.1f}" if ms else r["status"]
        mem_text = "" if mem is None else f"{mem / 2**20:.1f} MiB"
        lines.append(
            f"| {r['impl']} | {r['batch']} × {r['length']} | {shown} | {speed} | {mem_text} | {per_token} | {diff} |"
        )
    lines += ["", "Implementations: " + "; ".join(f"`{k}`: {v[1]}" for k, v in IMPLS.items()) + "."]
    with open(os.path.join(out_dir, "rouge.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--grid", default=",".join(f"{b}x{n}" for b, n in DEFAULT_GRID))
    parser.add_argument("--peer-grid", default=",".join(f"{b}x{n}" for b, n in DEFAULT_PEER_GRID))
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS))
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--point-time", type=float, default=5.0)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--busy",
        type=busy_count,
        default=0,
        metavar="N|cores",
        help="N busy-looping processes beside the whole run, this project and the peers alike (0)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid, peer_grid = _grid(args.grid), set(_grid(args.peer_grid))
    with busy_processes(args.busy):
        rows = _run(args, grid, peer_grid)
    meta = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "machine": f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)",
        "torch": torch.__version__,
        "threads": args.threads,
        "vocab": args.vocab,
        "refs": args.refs,
        "busy": args.busy,
        "argv": argv,
    }
    out = args.out or os.path.join("benchmarks", "results", "cpu" if args.device == "cpu" else "cuda-rouge")
    _write(out, meta, rows)
    print(f"wrote {out}/rouge.json and rouge.md")
    return 0


def _run(args: argparse.Namespace, grid: tuple[tuple[int, int], ...], peer_grid: set[tuple[int, int]]) -> list[dict]:
    """Every (point, implementation) of the run, one row each."""
    rows: list[dict[str, Any]] = []
    for batch_size, length in grid:
        for impl in args.impls.split(","):
            ours = impl.startswith("ours-")
            if args.device not in IMPLS[impl][2] or (not ours and (batch_size, length) not in peer_grid):
                continue
            reason = unavailable(impl)
            if reason is not None:
                rows.append({"impl": impl, "batch": batch_size, "length": length, "median_ms": None})
                rows[-1].update(status="not available", error=reason)
                print(f"{impl:>12} {batch_size:>4} x {length:<5} not available: {reason}", flush=True)
                continue
            task = Task(
                impl, args.device, batch_size, length, args.refs, args.vocab, args.seed,
                warmup=args.warmup if ours else 0, repeats=args.repeats if ours else 1,
                time_budget_s=args.time_budget, mem_budget_bytes=None, point_time_s=args.point_time,
            )  # fmt: skip
            started = time.monotonic()
            res = measure(task, args.device)
            times = res.get("times_s") or []
            row = {
                "impl": impl,
                "batch": batch_size,
                "length": length,
                "median_ms": float(np.median(times)) * 1000 if times else None,
                "min_ms": float(min(times)) * 1000 if times else None,
                **{k: v for k, v in res.items() if k != "times_s"},
                "times_ms": [t * 1000 for t in times],
            }
            rows.append(row)
            print(
                f"{impl:>12} {batch_size:>4} x {length:<5} {row['median_ms'] or float('nan'):10.1f} ms  "
                f"peak {res.get('peak_bytes') or 0:>12} B  diff {res.get('max_abs_diff', '')}  "
                f"({time.monotonic() - started:.0f} s, {res['status']})",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
