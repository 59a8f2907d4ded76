"""Train a small Transformer translator on the bundled synthetic task; validation BLEU via TokenIDBLEU.

    python examples/translate.py                                  # CPU, ~2 minutes on 2 cores
    python examples/translate.py --devices 2 --strategy ddp       # two CPU processes (gloo)
    python examples/translate.py --accelerator gpu                # on a GPU

Validation decodes greedily on the model's device and logs ``val/bleu`` (corpus BLEU-4, the
``TokenIDBLEU`` object passed to ``self.log``), ``val/bleu1..4``, the mean sentence BLEU and the
distribution of sentence scores. Logs, a BLEU-over-steps plot and the final checkpoint (used by
``rl_finetune.py``) go to ``examples/runs/`` unless ``--out-dir`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

if not __package__:  # run as a script (python examples/translate.py): make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples.seq2seq import (
    DEFAULT_OUT_DIR,
    History,
    Seq2SeqModule,
    TranslationDataModule,
    TranslationTask,
    describe_logs,
    format_table,
    make_loggers,
    plot_history,
    sample_translations,
)


@rank_zero_only
def rprint(*args: Any) -> None:
    print(*args, flush=True)


def add_common_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="logs, plots, checkpoints")
    g.add_argument("--seed", type=int, default=1234)
    g.add_argument("--accelerator", default="cpu", help="cpu | gpu | auto (default: cpu)")
    g.add_argument("--devices", default="1", help="number of devices/processes (default: 1)")
    g.add_argument("--strategy", default="auto", help="auto | ddp | ddp_spawn ... (default: auto)")
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per process (1 is fastest for this small model on a busy machine; "
        "0 keeps torch's default)",
    )
    g.add_argument("--no-progress-bar", action="store_true")
    g.add_argument("--keep-decoded", action="store_true", help=argparse.SUPPRESS)  # for the tests
    d = p.add_argument_group("data")
    d.add_argument("--train-size", type=int, default=30_000)
    d.add_argument("--val-size", type=int, default=512)
    d.add_argument("--batch-size", type=int, default=64)
    d.add_argument("--val-batch-size", type=int, default=256)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--d-model", type=int, default=128)
    g.add_argument("--nhead", type=int, default=4)
    g.add_argument("--layers", type=int, default=2, help="encoder and decoder layers (each)")
    g.add_argument("--ff", type=int, default=256, help="feed-forward width")
    g.add_argument("--dropout", type=float, default=0.0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_common_args(p)
    add_model_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--max-steps", type=int, default=500)
    t.add_argument("--val-every", type=int, default=100, help="validate every N training steps")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup-steps", type=int, default=100)
    return p


def devices_arg(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def quiet_lightning() -> None:
    """Silence Lightning's advice that does not apply to this small example."""
    for msg in (
        ".*does not have many workers.*",
        ".*LeafSpec.*",
        ".*is deprecated.*",
        ".*The number of training batches.*",
        ".*sync_dist.*",
    ):
        warnings.filterwarnings("ignore", message=msg)


def make_trainer(
    args: argparse.Namespace,
    *,
    max_steps: int,
    val_every: int,
    loggers: list,
    callbacks: list,
    gradient_clip_val: float | None = 1.0,
) -> L.Trainer:
    quiet_lightning()
    return L.Trainer(
        accelerator=args.accelerator,
        devices=devices_arg(str(args.devices)),
        strategy=args.strategy,
        max_steps=max_steps,
        max_epochs=-1,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=not args.no_progress_bar,
        enable_model_summary=not args.no_progress_bar,
        log_every_n_steps=10,
        gradient_clip_val=gradient_clip_val,
    )


def train_supervised(
    args: argparse.Namespace, *, name: str = "translate", checkpoint: Path | None = None
) -> dict[str, Any]:
    """Train with teacher forcing, validating (greedy decode + BLEU) at step 0 and every
    ``args.val_every`` steps. Returns a dict of results (module, trainer, history, paths)."""
    quiet_lightning()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True, verbose=False)
    out_dir = Path(args.out_dir)
    task = TranslationTask(seed=args.seed)
    dm = TranslationDataModule(
        task,
        train_size=args.train_size,
        val_size=args.val_size,
        batch_size=args.batch_size,
        val_batch_size=args.val_batch_size,
        seed=args.seed,
    )
    module = Seq2SeqModule(
        task.src_vocab_size,
        task.tgt_vocab_size,
        d_model=args.d_model,
        nhead=args.nhead,
        num_layers=args.layers,
        dim_feedforward=args.ff,
        dropout=args.dropout,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        task_seed=args.seed,
        keep_decoded=args.keep_decoded,
    )
    history = History()
    loggers = make_loggers(out_dir, name)
    trainer = make_trainer(
        args, max_steps=args.max_steps, val_every=args.val_every, loggers=loggers, callbacks=[history]
    )
    rprint(f"[{name}] logging to {loggers[-1].log_dir}")

    t0 = time.perf_counter()
    trainer.validate(module, datamodule=dm, verbose=False)  # BLEU of the untrained model (step 0)
    trainer.fit(module, datamodule=dm)
    if trainer.global_step % args.val_every != 0:  # make sure the last step is validated
        trainer.validate(module, datamodule=dm, verbose=False)
    train_s = time.perf_counter() - t0

    checkpoint = checkpoint if checkpoint is not None else out_dir / name / "model.ckpt"
    trainer.save_checkpoint(checkpoint)  # every rank calls it; rank 0 writes
    plot = None
    if trainer.is_global_zero:
        plot = plot_history(
            history.rows, Path(loggers[-1].log_dir) / "bleu.png", f"{name}: validation BLEU (greedy decoding)"
        )
    return {
        "module": module,
        "trainer": trainer,
        "datamodule": dm,
        "task": task,
        "history": history.rows,
        "log_dir": Path(loggers[-1].log_dir),
        "loggers": loggers,
        "plot": plot,
        "checkpoint": checkpoint,
        "train_s": train_s,
        "val_bleu": history.rows[-1]["val/bleu"] if history.rows else float("nan"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    t_start = time.perf_counter()
    args = build_parser().parse_args(argv)
    res = train_supervised(args)
    trainer, module, hist = res["trainer"], res["module"], res["history"]
    res["wall_s"] = time.perf_counter() - t_start
    if trainer.is_global_zero:
        last = hist[-1]
        n_params = sum(p.numel() for p in module.parameters())
        rows = [
            (
                "device",
                f"{trainer.strategy.root_device} x {trainer.world_size} ({type(trainer.strategy).__name__})",
            ),
            ("parameters", f"{n_params:,}"),
            ("training steps", trainer.global_step),
            ("final train loss", float(trainer.callback_metrics.get("train/loss", float("nan")))),
            ("val/bleu (corpus BLEU-4)", f"{hist[0]['val/bleu']:.4f} -> {last['val/bleu']:.4f}"),
            ("val/bleu1 .. bleu4", " / ".join(f"{last[f'val/bleu{k}']:.3f}" for k in range(1, 5))),
            ("mean sentence BLEU", last["val/sentence_bleu_mean"]),
            (
                "sentence BLEU p10 / p50 / p90",
                " / ".join(f"{last[f'val/sentence_bleu_{q}']:.3f}" for q in ("p10", "p50", "p90")),
            ),
            ("perfect sentences", f"{last['val/sentence_bleu_frac_perfect']:.1%}"),
            ("train + validation time", f"{res['train_s']:.1f} s"),
            ("wall time of main() (after imports)", f"{res['wall_s']:.1f} s"),
        ]
        rprint("\n" + format_table(rows, title="translate.py summary"))
        rprint("\nSample translations (validation set):")
        rprint("\n".join(sample_translations(module, res["task"], res["datamodule"].val_pairs)))
        rprint("")
        rprint("\n".join(describe_logs(res["loggers"])))
        rprint(f"plot:       {res['plot']}")
        rprint(f"checkpoint: {res['checkpoint']}")
    return res


if __name__ == "__main__":
    main()
