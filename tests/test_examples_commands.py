"""The examples' commands, as examples/README.md and README.md write them, run from the repository root.

Each script runs both as a file (``python examples/translate.py``) and as a module (``python -m
examples.translate``), in a fresh interpreter without ``PYTHONPATH`` (a run as a file used to stop at ``import
examples``). The documented options are kept and quick ones appended (argparse keeps the last value of an option),
with ``--out-dir`` in a temporary folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for `examples.cli` in this process

from examples import cli  # noqa: E402

READMES = (REPO / "examples" / "README.md", REPO / "README.md")
COMMAND = re.compile(
    r"^(?:\.venv/bin/)?python (?:examples/(?P<file>\w+)\.py|-m examples\.(?P<module>\w+))(?P<args>.*)$"
)
PARSERS = {"translate": cli.translate_parser, "rl_finetune": cli.rl_parser, "seq2seq": cli.seq2seq_parser}
MODEL = ["--d-model", "32", "--nhead", "2", "--layers", "1", "--ff", "64"]
DATA = ["--train-size", "500", "--val-size", "32", "--batch-size", "32", "--val-batch-size", "32"]
QUICK = [*DATA, "--max-steps", "2", "--val-every", "2", "--no-progress-bar"]
RUN_IN_FULL = {("seq2seq", "file"), ("translate", "file")}  # each start imports Lightning, which is slow


def documented(readme: Path) -> list[tuple[str, str, list[str]]]:
    """(script, "file" or "module", options) of every example command in the README's bash blocks."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            match = COMMAND.match(line.split(" #")[0].strip())
            if match:
                form = "file" if match["file"] else "module"
                found.append((match[form], form, shlex.split(match["args"])))
    return found


def run(script: str, form: str, argv: list[str]) -> subprocess.CompletedProcess:
    """The command as a user types it at the repository root (``sys.executable`` for ``python``)."""
    target = [f"examples/{script}.py"] if form == "file" else ["-m", f"examples.{script}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *target, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_readmes_document_both_forms():
    commands = documented(READMES[0])
    for script in PARSERS:
        for form in ("file", "module"):
            assert any(c[:2] == (script, form) for c in commands), (script, form)
    assert {c[0] for c in documented(READMES[1])} >= {"translate", "rl_finetune", "grpo_trl"}


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_documented_options_exist(readme):
    """Every documented option of the Lightning scripts and seq2seq.py parses (grpo_trl.py has its own tests)."""
    for script, _, argv in documented(readme):
        if script in PARSERS:
            PARSERS[script]().parse_args([a for a in argv if a not in ("-h", "--help")])


@pytest.mark.parametrize(
    ("script", "form"),
    [(s, f) for s in PARSERS for f in ("file", "module") if (s, f) not in RUN_IN_FULL],
)
def test_other_forms_answer_help(script, form):
    """The forms not run in full below get as far as their options (the import set-up is the same code)."""
    out = run(script, form, ["--help"])
    assert out.returncode == 0 and out.stdout.startswith("usage:"), out.stderr


@pytest.mark.slow
def test_seq2seq_prints_the_task():
    out = run("seq2seq", "file", ["--pairs", "2"])  # was: ModuleNotFoundError: No module named 'examples'
    assert out.returncode == 0, out.stderr
    assert "source vocabulary 56, target vocabulary 132" in out.stdout
    # the second validation pair of the default seed is the README's example sentence
    assert "src: a pesi -s faga a nami zuci" in out.stdout
    assert "ref: delle cerite nosetano fe un fodoto liguro" in out.stdout


@pytest.mark.slow
def test_translate_then_rl_finetune(tmp_path, capsys):
    """The documented order: translate.py (as a file, in a fresh interpreter), then rl_finetune.py's documented
    command (called in this process) starting from that run's checkpoint, found as the newest under --out-dir."""
    from examples import rl_finetune

    docs = {(s, f): argv for s, f, argv in reversed(documented(READMES[0]))}  # the first command of each pair
    out = run("translate", "file", [*docs["translate", "file"], *MODEL, *QUICK, "--out-dir", str(tmp_path)])
    assert out.returncode == 0, out.stderr
    written = tmp_path / "translate" / "version_0" / "model.ckpt"
    assert "translate.py summary" in out.stdout and f"checkpoint: {written}" in out.stdout
    assert written.is_file()

    res = rl_finetune.main([*docs["rl_finetune", "file"], *QUICK, "--print-every", "0", "--out-dir", str(tmp_path)])
    assert res["initial_checkpoint"] == written and not res["pretrained"]
    assert f"starting from {written}" in capsys.readouterr().out
    assert res["checkpoint"] == tmp_path / "rl_finetune" / "version_0" / "model.ckpt" and res["checkpoint"].is_file()
