"""Smoke tests of examples/translate.py and examples/rl_finetune.py: tiny models, few steps, in-process.

They check that BLEU is logged, lies in [0, 1], and that what was logged equals
``tensorbleu_metrics.functional`` recomputed on the same decoded batches.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `examples`

from examples import cli, rl_finetune, translate
from examples.seq2seq import (
    BLEU_N_WEIGHTS,
    EOS_ID,
    PAD_ID,
    Seq2SeqModule,
    TranslationDataModule,
    TranslationTask,
    collate,
    make_loggers,
)
from tensorbleu_metrics.functional import corpus_bleu, rouge_score, sentence_bleu

# a tiny model and data set: every run takes a second or two on a CPU
TINY = [
    "--d-model",
    "32",
    "--nhead",
    "2",
    "--layers",
    "1",
    "--ff",
    "64",
    "--train-size",
    "2000",
    "--val-size",
    "64",
    "--batch-size",
    "32",
    "--val-batch-size",
    "32",
    "--no-progress-bar",
    "--keep-decoded",
    "--seed",
    "7",
]


def _decoded(module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    preds = [row for hyp, _ in module.decoded for row in hyp]
    target = [row for _, tgt in module.decoded for row in tgt]
    return preds, target


def _logged_val_rows(log_dir: Path) -> list[dict[str, str]]:
    with open(log_dir / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("val/bleu")]


def _check_logged_bleu_matches_recomputed(res: dict, val_size: int = 64) -> None:
    module, last = res["module"], res["history"][-1]
    preds, target = _decoded(module)
    assert len(preds) == len(target) == val_size  # the whole validation set of the last epoch
    ids = {"pad_id": PAD_ID, "eos_id": EOS_ID}
    assert last["val/bleu"] == pytest.approx(float(corpus_bleu(preds, target, **ids)), abs=1e-6)
    bleu_n = corpus_bleu(preds, target, weights=BLEU_N_WEIGHTS, **ids)
    for k in range(4):
        assert last[f"val/bleu{k + 1}"] == pytest.approx(float(bleu_n[k]), abs=1e-6)
    sent = sentence_bleu(preds, target, smoothing="exp", effective_order=True, **ids)
    assert last["val/sentence_bleu_mean"] == pytest.approx(float(sent.mean()), abs=1e-5)
    rouge_l = rouge_score(preds, target, rouge_keys="rougeL", **ids)["rougeL_fmeasure"]
    assert last["val/rougeL"] == pytest.approx(float(rouge_l.mean()), abs=1e-5)
    # the padded batches (decoder output: EOS then PAD) give the same corpus BLEU as the ragged rows
    width = max(p.numel() for p in preds)
    padded = torch.stack([torch.nn.functional.pad(p, (0, width - p.numel()), value=PAD_ID) for p in preds])
    assert float(corpus_bleu(padded, target, **ids)) == pytest.approx(last["val/bleu"], abs=1e-6)


def _check_bleu_range(rows: list[dict[str, float]]) -> None:
    keys = ["val/bleu", "val/bleu1", "val/bleu2", "val/bleu3", "val/bleu4", "val/sentence_bleu_mean"]
    for row in rows:
        for k in keys:
            assert 0.0 <= row[k] <= 1.0, (k, row)


@pytest.fixture(scope="module")
def translate_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["--max-steps", "100", "--val-every", "50", "--lr", "1e-2", "--warmup-steps", "20"]
    return out, translate.main([*TINY, *argv, "--out-dir", str(out)])


def test_translate_logs_bleu(translate_run):
    out, res = translate_run
    hist = res["history"]
    assert [r["step"] for r in hist] == [0, 50, 100]
    _check_bleu_range(hist)
    # 100 tiny steps are far too few for BLEU-4 > 0, but the model starts to learn
    assert hist[-1]["val/bleu1"] > hist[0]["val/bleu1"]
    assert hist[-1]["val/loss"] < hist[0]["val/loss"]
    # the CSV logger got the same numbers
    logged = _logged_val_rows(res["log_dir"])
    assert [float(r["val/bleu"]) for r in logged] == pytest.approx([r["val/bleu"] for r in hist])
    assert [float(r["val/bleu1"]) for r in logged] == pytest.approx([r["val/bleu1"] for r in hist])
    # artefacts
    assert res["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["checkpoint"] == res["log_dir"] / "model.ckpt" and res["checkpoint"].is_file()
    assert res["log_dir"] == out / "translate" / "version_0"
    hist_file = res["log_dir"] / "sentence_bleu_hist.csv"
    assert hist_file.is_file() or (out / "tensorboard").is_dir()


def test_logged_bleu_equals_functional_on_nontrivial_translations(translate_run, tmp_path, monkeypatch):
    """Validation with a stand-in decoder that returns the reference with some damage (BLEU ~0.5-0.9):
    the logged corpus BLEU, BLEU-1..4 and sentence BLEU equal the functional API on the same IDs."""
    _, res = translate_run
    module, dm = res["module"], res["datamodule"]
    lookup = {tuple(s): t for s, t in dm.val_pairs}

    def damaged_oracle(src, max_len=16, sample=False, temperature=1.0):
        rows = []
        for i, s in enumerate(src.tolist()):
            t = list(lookup[tuple(x for x in s if x != PAD_ID)])
            if i % 3 == 0:
                t = t[:-1]  # drop the last word
            if i % 4 == 1:
                t[0], t[-1] = t[-1], t[0]  # swap two words
            rows.append([*t, EOS_ID])
        width = max(map(len, rows)) + 2  # EOS then PAD, as the real decoder returns
        return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], device=src.device)

    monkeypatch.setattr(module.model, "generate", damaged_oracle)
    monkeypatch.setattr(module, "decoded", [])  # restored afterwards for the other tests
    history = translate.History()
    args = translate.build_parser().parse_args(["--no-progress-bar"])
    trainer = translate.make_trainer(
        args, max_steps=1, val_every=1, loggers=make_loggers(tmp_path, "oracle"), callbacks=[history]
    )
    trainer.validate(module, datamodule=dm, verbose=False)
    last = history.rows[-1]
    assert 0.3 < last["val/bleu"] < 0.95
    _check_logged_bleu_matches_recomputed({"module": module, "history": history.rows})
    assert float(_logged_val_rows(tmp_path / "oracle" / "version_0")[-1]["val/bleu"]) == pytest.approx(last["val/bleu"])


def test_translate_logged_bleu_equals_functional(translate_run):
    _check_logged_bleu_matches_recomputed(translate_run[1])


def test_rl_finetune_from_checkpoint(translate_run, tmp_path, capsys):
    _, tr = translate_run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = rl_finetune.main(
            [
                *TINY,
                "--checkpoint",
                str(tr["checkpoint"]),
                "--max-steps",
                "6",
                "--val-every",
                "3",
                "--print-every",
                "3",
                "--out-dir",
                str(tmp_path),
            ]
        )
    assert not res["pretrained"] and res["initial_checkpoint"] == tr["checkpoint"]
    hist = res["history"]
    assert [r["step"] for r in hist] == [0, 3, 6]
    _check_bleu_range(hist)
    # validation before RL reproduces the checkpoint's last validation
    assert res["bleu_before"] == pytest.approx(tr["history"][-1]["val/bleu"], abs=1e-6)
    _check_logged_bleu_matches_recomputed(res)
    assert set(res["timing_ms"]) == set(rl_finetune.PHASES)
    assert all(v > 0 for v in res["timing_ms"].values())
    assert len(res["module"].timings) == 6
    printed = capsys.readouterr().out
    assert "reward" in printed and "share" in printed and "rl_finetune.py summary" in printed
    assert res["plot"].is_file() and res["checkpoint"].is_file()
    assert res["checkpoint"] == res["log_dir"] / "model.ckpt" == tmp_path / "rl_finetune" / "version_0" / "model.ckpt"
    # the checkpoint is loaded with weights_only given: no warning about it
    assert not [w for w in caught if "weights_only" in str(w.message)]
    # the plot's training reward: one (step, sample BLEU, greedy BLEU) per step
    assert [r[0] for r in res["module"].rewards] == list(range(1, 7))
    # metrics.csv: the reward time once (time_ms/reward), no duplicate column
    with open(res["log_dir"] / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert "reward_ms" not in header and len(header) == len(set(header))
    logged = res["trainer"].callback_metrics
    assert "time_ms/reward" in logged and "reward_ms" not in logged


def test_rl_finetune_pretrains_without_checkpoint(tmp_path):
    res = rl_finetune.main(
        [
            *TINY,
            "--pretrain-steps",
            "4",
            "--max-steps",
            "2",
            "--val-every",
            "2",
            "--samples",
            "2",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert res["pretrained"]
    assert res["initial_checkpoint"] == tmp_path / "rl_pretrain" / "version_0" / "model.ckpt"
    assert res["initial_checkpoint"].is_file()
    _check_bleu_range(res["history"])
    _check_logged_bleu_matches_recomputed(res)


def test_scst_reward_is_sentence_bleu_on_device(translate_run):
    """The RL reward is functional.sentence_bleu of the sampled IDs, on the IDs' device."""
    _, tr = translate_run
    module = rl_finetune.SCSTModule(**{**tr["module"].hparams})
    src, _, tgt_out = collate(tr["datamodule"].val_pairs[:8])
    hyp = module.model.generate(src, max_len=12, sample=True)
    r = module.reward(hyp, tgt_out)
    assert r.shape == (8,) and r.device == hyp.device
    ids = {"pad_id": PAD_ID, "eos_id": EOS_ID}
    expected = sentence_bleu(hyp, tgt_out, smoothing="exp", effective_order=True, **ids)
    torch.testing.assert_close(r, expected)
    assert torch.equal(module.reward(tgt_out, tgt_out), torch.ones(8))  # a perfect translation scores 1


def test_generate_output_format():
    task = TranslationTask(seed=3)
    from examples.seq2seq import Seq2SeqTransformer

    torch.manual_seed(0)
    model = Seq2SeqTransformer(
        task.src_vocab_size, task.tgt_vocab_size, d_model=16, nhead=2, num_layers=1, dim_feedforward=16
    ).eval()
    src, _, _ = collate(task.make_dataset(5, seed=0))
    for sample in (False, True, torch.tensor([True, False, True, False, True])):
        out = model.generate(src, max_len=10, sample=sample)
        assert out.shape[0] == 5 and out.shape[1] <= 10
        assert out.device == src.device and not model.training
        assert not (out == 1).any()  # never BOS
        for row in out.tolist():  # PAD only after EOS
            if EOS_ID in row:
                assert all(t == PAD_ID for t in row[row.index(EOS_ID) + 1 :])
            else:
                assert PAD_ID not in row
    # incremental greedy decoding == argmax of the full teacher-forced decoder on its own output
    greedy = model.generate(src, max_len=10)
    tgt_in = torch.cat([torch.full_like(greedy[:, :1], 1), greedy[:, :-1]], dim=1)
    with torch.no_grad():
        logits = model(src, tgt_in)
    logits[..., PAD_ID] = logits[..., 1] = float("-inf")
    valid = greedy != PAD_ID
    assert torch.equal(logits.argmax(-1)[valid], greedy[valid])
    model.train()
    model.generate(src, max_len=3)
    assert model.training  # generate() restores the mode


def test_task_is_seeded_and_deterministic():
    a, b = TranslationTask(seed=11), TranslationTask(seed=11)
    assert a.src_vocab == b.src_vocab and a.tgt_vocab == b.tgt_vocab
    pairs = a.make_dataset(3000, seed=5)
    assert pairs == b.make_dataset(3000, seed=5)
    # every source sentence has exactly one translation
    seen: dict[tuple[int, ...], tuple[int, ...]] = {}
    for s, t in pairs:
        assert seen.setdefault(tuple(s), tuple(t)) == tuple(t)
    assert all(i > EOS_ID for s, t in pairs for i in (*s, *t))
    assert TranslationTask(seed=12).tgt_vocab != a.tgt_vocab
    # agreement: the verb form depends on the subject's number (source: "-s" after the noun)
    rng = random.Random(0)
    for _ in range(200):
        s, t = a.make_pair(rng)
        subj_plural = a.s_plural in s[: next(i for i, x in enumerate(s) if x in a.s_verbs)]
        verb_forms = next(v for v in a.t_verb if v[0] in t or v[1] in t)
        assert verb_forms[int(subj_plural)] in t


def test_validation_on_held_out_sources():
    from examples.seq2seq import TranslationDataModule

    dm = TranslationDataModule(train_size=500, val_size=64, seed=3)
    dm.setup()
    assert not {tuple(s) for s, _ in dm.val_pairs} & {tuple(s) for s, _ in dm.train_pairs}


# ---- checkpoints: one per trained run, never clobbered; rl_finetune refuses an untrained start ----------------


def _tree(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*.ckpt"))}


def _untrained_checkpoint(path: Path) -> Path:
    """What translate.py --max-steps 0 used to write: a Lightning checkpoint of the model before any step."""
    args = translate.build_parser().parse_args(TINY)
    task = TranslationTask(seed=args.seed)
    dm = TranslationDataModule(task, train_size=64, val_size=32, batch_size=32, val_batch_size=32, seed=args.seed)
    module = Seq2SeqModule(task.src_vocab_size, task.tgt_vocab_size, d_model=32, nhead=2, num_layers=1)
    trainer = translate.make_trainer(args, max_steps=0, val_every=1, loggers=[], callbacks=[])
    trainer.validate(module, datamodule=dm, verbose=False)
    trainer.save_checkpoint(path, weights_only=False)
    return path


def test_translate_without_training_writes_no_checkpoint(tmp_path, capsys):
    res = translate.main([*TINY, "--max-steps", "0", "--out-dir", str(tmp_path)])
    assert res["checkpoint"] is None and res["trainer"].global_step == 0
    assert _tree(tmp_path) == {}
    assert "checkpoint: none written (no training step was taken)" in capsys.readouterr().out


def test_translate_runs_never_overwrite_a_checkpoint(translate_run, tmp_path):
    """A second run writes into its own version folder; the first run's checkpoint is byte-for-byte untouched, and
    rl_finetune.py's default start is the newest trained one."""
    _, first = translate_run
    earlier = tmp_path / "translate" / "version_0" / "model.ckpt"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(first["checkpoint"].read_bytes())
    before = _tree(tmp_path)
    res = translate.main([*TINY, "--max-steps", "2", "--val-every", "2", "--out-dir", str(tmp_path)])
    assert res["checkpoint"] == tmp_path / "translate" / "version_1" / "model.ckpt"
    after = _tree(tmp_path)
    assert {p: after[p] for p in before} == before and set(after) == {*before, res["checkpoint"]}
    assert rl_finetune.latest_checkpoint(tmp_path) == res["checkpoint"]
    # --ckpt-out: that path, and an existing file is refused before any work
    out = tmp_path / "mine.ckpt"
    res = translate.main(
        [*TINY, "--max-steps", "1", "--val-every", "1", "--out-dir", str(tmp_path), "--ckpt-out", str(out)]
    )
    assert res["checkpoint"] == out and out.is_file()
    with pytest.raises(SystemExit, match=r"--ckpt-out .*mine.ckpt: already exists"):
        translate.main([*TINY, "--out-dir", str(tmp_path), "--ckpt-out", str(out)])


def test_rl_finetune_refuses_an_untrained_checkpoint(tmp_path):
    untrained = _untrained_checkpoint(tmp_path / "untrained.ckpt")
    message = f"rl_finetune.py: error: --checkpoint {untrained}: saved before any training step (an untrained model)"
    out = _run_script("rl_finetune.py", "--checkpoint", str(untrained), "--out-dir", str(tmp_path))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    with pytest.raises(SystemExit, match="an untrained model"):
        rl_finetune.main([*TINY, "--checkpoint", str(untrained), "--out-dir", str(tmp_path)])
    # the default start (the newest translate.py checkpoint) is checked the same way
    default = tmp_path / "translate" / "version_3" / "model.ckpt"
    default.parent.mkdir(parents=True)
    default.write_bytes(untrained.read_bytes())
    with pytest.raises(SystemExit, match=re.escape(f"error: {default}: saved before any training step")):
        rl_finetune.main([*TINY, "--out-dir", str(tmp_path)])
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(SystemExit, match="not a readable checkpoint"):
        rl_finetune.main([*TINY, "--checkpoint", str(garbage), "--out-dir", str(tmp_path)])


def test_rl_finetune_with_nothing_to_start_from(tmp_path):
    with pytest.raises(SystemExit, match=r"no trained checkpoint at .* and --pretrain-steps 0: nothing to start from"):
        rl_finetune.main([*TINY, "--pretrain-steps", "0", "--out-dir", str(tmp_path)])
    assert _tree(tmp_path) == {}


def test_rl_finetune_without_steps_writes_no_checkpoint(translate_run, tmp_path):
    _, tr = translate_run
    res = rl_finetune.main(
        [*TINY, "--checkpoint", str(tr["checkpoint"]), "--max-steps", "0", "--out-dir", str(tmp_path)]
    )
    assert res["checkpoint"] is None and _tree(tmp_path) == {}


# ---- the command line: --help, clear errors, progress bars ---------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"translate.py": cli.translate_parser, "rl_finetune.py": cli.rl_parser, "seq2seq.py": cli.seq2seq_parser}


def _run_script(name: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *argv], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_help_is_fast_and_documents_every_option(name):
    # --help answers before Lightning or torch are imported
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{name!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(REPO / 'examples' / name)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('heavy:', sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    help_text = out.stdout
    for action in SCRIPTS[name]()._actions:
        if action.help == argparse.SUPPRESS:  # the tests' own option
            continue
        assert action.help, f"{action.option_strings} has no help text"
        for flag in action.option_strings:
            assert flag in help_text
    # each default shown once, none for flags
    assert "(default: cpu) (default" not in help_text
    assert help_text.count("(default: False)") == 0 and help_text.count("(default: None)") == 0
    assert "(default: 1234)" in help_text


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is available here")
@pytest.mark.parametrize("name", ["translate.py", "rl_finetune.py"])
def test_gpu_without_gpu_is_one_clear_line(name):
    out = _run_script(name, "--accelerator", "gpu")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--accelerator gpu" in lines[0] and "no CUDA GPU" in lines[0], out.stderr
    with pytest.raises(SystemExit, match="no CUDA GPU"):  # main() called in-process stops there too
        translate.main(["--accelerator", "gpu"])


def test_missing_checkpoint_is_one_clear_line(tmp_path):
    missing = tmp_path / "nope.ckpt"
    out = _run_script("rl_finetune.py", "--checkpoint", str(missing))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"rl_finetune.py: error: --checkpoint {missing}: no such file"
    with pytest.raises(SystemExit, match="no such file"):
        rl_finetune.main(["--checkpoint", str(missing)])


def test_bad_option_is_a_usage_error():
    out = _run_script("translate.py", "--max-steps", "many")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "invalid int value" in out.stderr


def test_progress_bar_off_when_output_is_not_a_terminal(monkeypatch, tmp_path):
    args = translate.build_parser().parse_args([])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    trainer = translate.make_trainer(args, max_steps=1, val_every=1, loggers=make_loggers(tmp_path, "x"), callbacks=[])
    assert trainer.progress_bar_callback is None
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert translate.show_progress_bar(args)
    assert not translate.show_progress_bar(translate.build_parser().parse_args(["--no-progress-bar"]))


def test_smoothed_reward_curve():
    assert rl_finetune.smoothed([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]
