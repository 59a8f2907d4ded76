"""Smoke test of the benchmark runner (benchmarks/): a tiny grid with the always-installed peers.

Takes seconds: one worker process per point, forked from a forkserver that imports torch once.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest.importorskip("tensorbleu_metrics.functional")
run = pytest.importorskip("benchmarks.run")
from benchmarks.data import make_batch  # noqa: E402

PEERS = ["nltk-sentence", "nltk-corpus", "sacrebleu-sentence", "sacrebleu-corpus", "torchmetrics-sentence"]
MODULES = {"nltk": "nltk", "sacrebleu": "sacrebleu", "torchmetrics": "torchmetrics"}


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _installed(impl: str) -> bool:
    return _has(MODULES[impl.split("-")[0]])


def test_batches_are_seeded_and_shaped() -> None:
    a = make_batch(3, 20, 2, 32000, seed=1)
    b = make_batch(3, 20, 2, 32000, seed=1)
    assert a.preds.equal(b.preds) and a.target.equal(b.target)
    assert not make_batch(3, 20, 2, 32000, seed=2).preds.equal(a.preds)
    assert a.preds.shape == (3, 20) and a.target.shape[:2] == (3, 2)
    assert int(a.preds.min()) >= 1 and int(a.preds.max()) < 32000
    assert (np.abs(a.ref_lens - 20) <= 3).all()
    assert a.input_tokens == 60 + int(a.ref_lens.sum())
    assert (a.target != 0).sum(-1).numpy().tolist() == a.ref_lens.tolist()


def test_parse_grid() -> None:
    assert run.parse_grid("paper") == ([16, 32, 64, 128, 256, 512], [256, 1024])
    assert run.parse_grid("32,16x1024,256") == ([16, 32], [256, 1024])
    with pytest.raises(Exception, match="grid"):
        run.parse_grid("16;32")
    assert run.parse_bytes("4GiB") == 4 << 30 and run.parse_bytes("none") is None


def test_kernel_constants_are_set_by_name(monkeypatch) -> None:
    from tensorbleu_metrics.functional import _sorted_pass

    monkeypatch.setattr(_sorted_pass, "_ONE_SORT_ROW", _sorted_pass._ONE_SORT_ROW)
    run.set_kernel_constants({"_ONE_SORT_ROW": 0})
    assert _sorted_pass._ONE_SORT_ROW == 0
    with pytest.raises(SystemExit, match="no constant '_NO_SUCH'"):
        run.set_kernel_constants({"_NO_SUCH": 1})


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is available here")
def test_gpu_probe_needs_cuda() -> None:
    from benchmarks import gpu_probe

    with pytest.raises(SystemExit, match="no CUDA device"):
        gpu_probe.main([])


@pytest.mark.parametrize(
    ("warmup", "warmup_s", "untimed"), [(0, 2.375, 0), (1, 0.0, 1), (2, 0.0, 2), (2, 1.125, 4), (5, 0.625, 5)]
)
def test_warmup_calls_and_time(monkeypatch, warmup: int, warmup_s: float, untimed: int) -> None:
    from benchmarks import measure

    clock = [0.0]  # a call takes a quarter of a second of this clock (exact in binary)
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])

    def call() -> float:
        clock[0] += 0.25
        return clock[0]

    task = measure.Task("x", "cpu", 1, 1, 1, 1, 0, warmup, 3, 100.0, None, 100.0, warmup_s=warmup_s)
    status, times, out = measure._run_calls(call, task, 100.0, lambda: None, lambda i: None)
    assert status == measure.OK and times == [0.25, 0.25, 0.25]
    # the untimed calls: `warmup` of them, and more while the warm-up has run less than `warmup_s` (none for 0)
    assert out / 0.25 - 3 == untimed


def test_a_slow_call_ends_the_warm_up_for_good(monkeypatch) -> None:
    from benchmarks import measure

    clock = [0.0]
    durations = iter([1.5, 0.25, 0.25, 0.25])  # one call over SLOW_CALL_S, then fast ones
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])

    def call() -> None:
        clock[0] += next(durations)

    # the warm-up's time floor (5 s) has not run out when the fast calls come: they are timed all the same
    task = measure.Task("x", "cpu", 1, 1, 1, 1, 0, 1, 3, 100.0, None, 100.0, warmup_s=5.0)
    status, times, _ = measure._run_calls(call, task, 100.0, lambda: None, lambda i: None)
    assert status == measure.OK and times == [1.5, 0.25, 0.25]


def test_runner_tiny_grid(tmp_path) -> None:
    peers = [p for p in PEERS if _installed(p)]
    impls = ["tensorbleu-sentence", "tensorbleu-corpus", *peers]
    out = tmp_path / "res"
    argv = ["--device", "cpu", "--grid", "4x12", "--refs", "1,2", "--vocab", "32000,128000"]
    argv += ["--repeats", "2", "--warmup", "1", "--warmup-time", "0.01", "--impls", ",".join(impls)]
    argv += ["--out", str(out), "--quiet"]
    assert run.main(argv) == 0

    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    # this project at every point (both vocabs); the list/string peers at the first vocab only
    assert len(rows) == 2 * 2 * 2 + len(peers) * 2
    assert {r["status"] for r in rows} == {"ok"}, [(r["impl"], r.get("error")) for r in rows]
    for r in rows:
        assert r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"]
        assert r["peak_bytes"] is not None and r["bytes_per_token"] is not None
    for r in rows:
        if r["impl"].startswith("nltk") or r["impl"].startswith("sacrebleu"):
            assert r["max_abs_diff"] < 1e-9, r
        if r["impl"] == "torchmetrics-sentence":  # float32 inside; ties resolved differently
            assert r["max_abs_diff_no_ties"] is None or r["max_abs_diff_no_ties"] < 1e-5, r
        if r["impl"].startswith("nltk"):
            assert r["speedup_vs_nltk"] == pytest.approx(1.0)
        if r["impl"].startswith("tensorbleu") and "nltk-sentence" in peers:
            assert r["speedup_vs_nltk"] is not None  # 128k rows use NLTK at 32k
    md = (out / "results.md").read_text()
    assert "| impl | device | B | L | refs | vocab | median ms |" in md
    assert "tensorbleu-sentence" in md
    if _has("matplotlib"):
        assert (out / "speedup_sentence.png").exists() and (out / "memory_corpus.png").exists()


def test_diversity_benchmark_tiny(tmp_path) -> None:
    from benchmarks import diversity

    out = tmp_path / "div"
    argv = ["--samples", "8,16", "--length", "6", "--gleu", "4x12", "--repeats", "2", "--point-time", "0.1"]
    assert diversity.main([*argv, "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "diversity.json").read_text())["rows"]
    assert {r["status"] for r in rows} == {"ok"}, [(r["impl"], r.get("error")) for r in rows]
    for r in rows:
        assert r["median_ms"] > 0 and r["peak_bytes"] is not None
        if not r["impl"].startswith("tensorbleu"):
            assert r["max_abs_diff"] < 1e-12, r
    md = (out / "diversity.md").read_text()
    assert "## Self-BLEU-4" in md and "## Sentence GLEU" in md
    if _has("matplotlib"):
        assert (out / "self_bleu_time.png").exists() and (out / "self_bleu_memory.png").exists()


def test_interleaved_ratios_tiny(capsys) -> None:
    from benchmarks import ratio

    ratio.main(["--sizes", "4x12", "--refs", "1,2", "--peers", "nltk-sentence", "--rounds", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 4 × 12")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) > 0 and float(cells[4]) > 0  # our time, the ratio to NLTK


def test_ab_cold_tiny() -> None:
    """`benchmarks.ab --cold`: two checkouts (here the same one twice), each call after an NLTK loop. In a process
    of its own: the A/B imports each checkout's package afresh, which this session's modules must not see."""
    import subprocess

    argv = ["-m", "benchmarks.ab", ROOT, ROOT, "--sizes", "4x12", "--refs", "1,2", "--repeats", "2", "--cold"]
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 4 × 12")]
    assert len(rows) == 2 and "after an NLTK loop" in done.stdout
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[-1]) > 0  # before / after


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # ended, not yet reaped by its new parent
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_busy_processes_run_and_are_killed() -> None:
    import time

    from benchmarks.busy import busy_count, busy_processes

    with busy_processes(2) as pids:
        assert len(pids) == 2 and os.getpid() not in pids
        start = [_cpu_seconds(p) for p in pids]
        time.sleep(0.5)
        spent = [_cpu_seconds(p) - s for p, s in zip(pids, start, strict=True)]
        assert all(s > 0.05 for s in spent), spent  # looping, not waiting
    assert [_cpu_seconds(p) for p in pids] == [None, None]
    with pytest.raises(KeyboardInterrupt), busy_processes(1) as pids:
        raise KeyboardInterrupt
    assert _cpu_seconds(pids[0]) is None
    with busy_processes(0) as pids:
        assert pids == []
    assert busy_count("cores") == os.cpu_count() and busy_count("3") == 3


def test_engine_tiny_busy(tmp_path) -> None:
    from benchmarks import engine

    out = tmp_path / "engine"
    argv = ["--tiny", "--busy", "1", "--rounds", "2", "--single-rounds", "5", "--out", str(out), "--quiet"]
    assert engine.main(argv) == 0
    data = json.loads((out / "engine.json").read_text())
    meta, rows = data["meta"], data["rows"]
    assert meta["busy"] == 1 and meta["partial"] is False and meta["tiny"] is True
    assert {r["group"] for r in rows} == set(engine.GROUPS)
    assert {r["load"] for r in rows} == {"idle", "busy"}
    for r in rows:
        assert r["busy"] == (1 if r["load"] == "busy" else 0)
        if r["status"] == "not available":
            assert r["impl"] in meta["unavailable"] and r["impl"] != engine.OURS
            continue
        assert r["status"] == "ok", r
        assert r["median"] > 0 and r["min"] <= r["median"] and r["rounds"] == len(r["times"]) >= 1
        assert r["burst"] >= 1 and r["first_median"] > 0 and len(r["first_times"]) == r["rounds"]
        if r["impl"] != engine.OURS:
            assert r["ratio"] > 0 and r["first_ratio"] > 0
            if r["load"] == "idle":  # every peer computes the same scores as this project on this data
                assert r["max_abs_diff"] < 1e-9, r
    single = [r for r in rows if r["group"] == "single"]
    assert {r["unit"] for r in single} == {"µs"} and all(r["batch_size"] == 1 for r in single)
    md = (out / "engine.md").read_text()
    assert "1 busy-looping process(es)" in md and "| case | load | this project ms | (first call) |" in md
    for title in engine.TITLES.values():
        assert f"## {title}" in md


def test_throughput_tiny_busy(tmp_path) -> None:
    from benchmarks import throughput

    out = tmp_path / "throughput"
    argv = ["--workers", "1", "--size", "4x16", "--seconds", "0.3", "--warmup", "0.05", "--cold-runs", "1"]
    argv += ["--cold-metrics", "sentence_bleu,rouge_score"]
    assert throughput.main([*argv, "--busy", "1", "--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "throughput.json").read_text())
    assert data["meta"]["busy"] == 1 and data["meta"]["size"] == [4, 16]
    (row,) = data["throughput"]
    assert row["workers"] == 1 and len(row["per_worker_calls_per_s"]) == 1 and min(row["calls"]) >= 1
    assert row["calls_per_s"] == pytest.approx(sum(row["per_worker_calls_per_s"]))
    cold = data["cold_start"]
    assert list(cold) == ["sentence_bleu", "rouge_score"]
    for c in cold.values():
        assert len(c["runs"]) == 1 and 0 <= c["import_over_torch_s"] < 60 and c["warm_call_s"] > 0
        assert c["first_call_over_warm_s"] > 0 and c["full_gc_s"] > 0
    md = (out / "throughput.md").read_text()
    assert "| workers | calls/s in total |" in md and "over it:" in md and "| `rouge_score` |" in md
    with pytest.raises(SystemExit):
        throughput.main(["--cold-metrics", "sentence_bleu,nope"])
