"""Train a small Transformer translator on the bundled synthetic task; validation BLEU via TokenIDBLEU.

    python examples/translate.py                                  # CPU, about a minute on 2 cores
    python examples/translate.py --devices 2 --strategy ddp       # two CPU processes (gloo)
    python examples/translate.py --accelerator gpu                # on a GPU

Validation decodes greedily on the model's device and logs ``val/bleu`` (corpus BLEU-4, the
``TokenIDBLEU`` object passed to ``self.log``), ``val/bleu1..4``, the mean sentence BLEU and the
distribution of sentence scores. Logs, a BLEU-over-steps plot and the final checkpoint (used by
``rl_finetune.py``) go to the run's own folder ``examples/runs/translate/version_N/`` unless ``--out-dir`` or
``--ckpt-out`` says otherwise; no run overwrites another's checkpoint, and none is written when no training step
was taken (``--max-steps 0``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script (python examples/translate.py): make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples.cli import add_common_args, add_model_args, check_args, translate_parser

if __name__ == "__main__":  # answer --help and option mistakes before the slow imports below
    check_args(translate_parser(__doc__).parse_args(), "translate.py")

import argparse
import time
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from examples.seq2seq import (
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

__all__ = ["add_common_args", "add_model_args", "build_parser", "main", "make_trainer", "train_supervised"]


@rank_zero_only
def rprint(*args: Any) -> None:
    print(*args, flush=True)


def build_parser() -> argparse.ArgumentParser:
    return translate_parser(__doc__)


def devices_arg(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def quiet_lightning() -> None:
    """Silence what does not concern a user of this example: Lightning's advice to use data-loader workers
    (the data are tensors in memory) and a deprecation inside Lightning itself (``LeafSpec``)."""
    for msg in (".*does not have many workers.*", ".*LeafSpec.*"):
        warnings.filterwarnings("ignore", message=msg)


def show_progress_bar(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal: redirected to a file they are a stream of carriage returns."""
    return not args.no_progress_bar and sys.stdout.isatty()


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
        enable_progress_bar=show_progress_bar(args),
        enable_model_summary=not args.no_progress_bar,
        log_every_n_steps=10,
        gradient_clip_val=gradient_clip_val,
    )


def train_supervised(
    args: argparse.Namespace, *, name: str = "translate", checkpoint: Path | None = None
) -> dict[str, Any]:
    """Train with teacher forcing, validating (greedy decode + BLEU) at step 0 and every
    ``args.val_every`` steps. Returns a dict of results (module, trainer, history, paths).

    The checkpoint goes to ``checkpoint`` (default: ``model.ckpt`` in the run's log folder) after training, and only
    when a training step was taken; ``res["checkpoint"]`` is ``None`` otherwise."""
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

    if trainer.global_step > 0:
        checkpoint = checkpoint if checkpoint is not None else Path(loggers[-1].log_dir) / "model.ckpt"
        trainer.save_checkpoint(checkpoint, weights_only=False)  # every rank calls it; rank 0 writes
    else:  # an untrained model is no checkpoint to start from
        checkpoint = None
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
    check_args(args, "translate.py")
    res = train_supervised(args, checkpoint=args.ckpt_out)
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
        rprint(f"checkpoint: {res['checkpoint'] or 'none written (no training step was taken)'}")
    return res


if __name__ == "__main__":
    main()
