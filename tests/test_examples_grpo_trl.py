"""Smoke tests of examples/grpo_trl.py: its --help, one-line errors, and a few GRPO steps of a tiny model in-process
(twice: the figures must be identical)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `examples`

from examples import grpo_trl


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        grpo_trl.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = grpo_trl.build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings
            assert action.option_strings[0] in text


def test_help_as_a_script_needs_no_heavy_import():
    script = Path(grpo_trl.__file__)
    code = (
        "import runpy, sys; sys.argv = [sys.argv[0], '--help']\n"
        f"try: runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except SystemExit: pass\n"
        "assert not {'torch', 'trl', 'transformers'} & set(sys.modules), 'imported before --help'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "--num-generations" in out.stdout and "--warmup-steps" in out.stdout


TINY = [
    "--train-size", "64", "--eval-size", "16", "--hidden", "32", "--layers", "1", "--heads", "2",
    "--warmup-steps", "5", "--warmup-batch-size", "16", "--steps", "3", "--batch-size", "8",
    "--num-generations", "4", "--eval-every", "2", "--print-every", "1", "--diversity-weight", "0.1",
]  # fmt: skip

# what main() measures rather than computes: left out of the comparison of two runs
TIMINGS = ("step_ms", "reward_ms", "reward_share", "warmup_s", "grpo_s", "total_s")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The tiny run twice, each in a fresh folder, and what it printed."""
    import warnings

    runs = []
    for i in range(2):
        out = tmp_path_factory.mktemp(f"grpo{i}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside TRL/Transformers
            runs.append(grpo_trl.main([*TINY, "--out-dir", str(out), *(["--no-plot"] if i else [])]))
    return runs


def test_tiny_run(tiny_runs, capsys):
    res = tiny_runs[0]
    summary, history, evals = res["summary"], res["history"], res["evals"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert [e["step"] for e in evals] == [0, 2, 3]
    assert all(0.0 <= h["reward"] <= 1.0 and 0.0 <= h["diversity"] <= 1.0 for h in history)
    assert [r.__name__ for r in res["rewards"]] == ["bleu", "diversity"]
    assert all(len(r.seconds) == 3 for r in res["rewards"])
    assert all(0.0 <= e[k] <= 1.0 for e in evals for k in ("bleu", "sentence_bleu", "exact"))
    assert len(res["reward"].seconds) == 3 and res["reward"].__name__ == "bleu"
    assert 0 < summary["reward_share"] < 1 and summary["step_ms"] > 0
    assert res["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the rows hold their prompt's reversed words, held-out prompts are new
    train = {r["prompt"] for r in grpo_trl.make_rows(64, 16, 4, 6, seed=0)}
    for row in res["eval_rows"]:
        assert row["prompt"] not in train
        assert row["reference"].split() == row["prompt"].split()[-2::-1]


def test_two_runs_give_identical_figures(tiny_runs):
    """Seeded, deterministic and on one thread, a CPU run repeats exactly: every reward, every held-out score."""
    first, second = tiny_runs
    assert first["history"] == second["history"]
    assert first["evals"] == second["evals"]
    figures = [{k: v for k, v in run["summary"].items() if k not in TIMINGS} for run in tiny_runs]
    assert figures[0] == figures[1]
    # the process's settings are given back to the caller
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_summary_names_what_the_figures_depend_on(tmp_path, capsys):
    res = grpo_trl.main([*TINY, "--steps", "1", "--eval-every", "1", "--out-dir", str(tmp_path), "--no-plot"])
    printed = capsys.readouterr().out
    assert "grpo_trl.py summary" in printed and "held-out corpus BLEU" in printed and "of the step" in printed
    assert f"torch {torch.__version__}" in printed
    assert f"CPU kernels {torch.backends.cpu.get_cpu_capability()}" in printed
    assert res["plot"] is None


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        pytest.param(
            ["--device", "cuda"],
            "grpo_trl.py: error: --device cuda: no CUDA GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available"),
        ),
        (["--device", "gpu"], "grpo_trl.py: error: --device gpu:"),
        (["--smoothing", "nope"], "grpo_trl.py: error: --smoothing nope: `smoothing` must be one of"),
        (["--threads", "0"], "grpo_trl.py: error: --threads 0"),
        (["--batch-size", "6", "--num-generations", "4"], "grpo_trl.py: error: generation_batch_size (6)"),
    ],
)
def test_bad_arguments_end_in_one_line(argv, start, tmp_path, capsys):
    """As examples/cli.py and translate.py do: one line, a non-zero exit (a str exit code exits with 1), before
    any training."""
    with pytest.raises(SystemExit) as exit_info:
        grpo_trl.main([*argv, "--out-dir", str(tmp_path)])
    message = exit_info.value.code
    assert isinstance(message, str) and message.startswith(start) and "\n" not in message
    assert "warm-up" not in capsys.readouterr().out


def test_bad_argument_as_a_script_prints_one_line():
    script = Path(grpo_trl.__file__)
    out = subprocess.run(
        [sys.executable, str(script), "--smoothing", "nope"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("grpo_trl.py: error: --smoothing nope")
