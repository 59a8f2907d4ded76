"""Smoke tests of examples/grpo_trl.py: its --help, and a few GRPO steps of a tiny model in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.filterwarnings("ignore::FutureWarning")  # deprecations inside TRL/Transformers
def test_tiny_run(tmp_path, capsys):
    argv = [
        "--train-size", "64", "--eval-size", "16", "--hidden", "32", "--layers", "1", "--heads", "2",
        "--warmup-steps", "5", "--warmup-batch-size", "16", "--steps", "3", "--batch-size", "8",
        "--num-generations", "4", "--eval-every", "2", "--print-every", "1", "--out-dir", str(tmp_path),
        "--diversity-weight", "0.1",
    ]  # fmt: skip
    res = grpo_trl.main(argv)
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
    printed = capsys.readouterr().out
    assert "grpo_trl.py summary" in printed and "held-out corpus BLEU" in printed and "of the step" in printed
    # the rows hold their prompt's reversed words, held-out prompts are new
    train = {r["prompt"] for r in grpo_trl.make_rows(64, 16, 4, 6, seed=0)}
    for row in res["eval_rows"]:
        assert row["prompt"] not in train
        assert row["reference"].split() == row["prompt"].split()[-2::-1]
