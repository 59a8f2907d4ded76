"""Command-line options of the examples, kept free of heavy imports so that ``--help`` answers at once.

``translate.py``, ``rl_finetune.py`` and ``seq2seq.py`` parse their arguments with these parsers before importing
Lightning.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "runs"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once, and none for flags and options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0], formatter_class=HelpFormatter)


def add_common_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where logs, plots and checkpoints go")
    g.add_argument("--seed", type=int, default=1234, help="seed of the task, the data split and the model")
    g.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto (Lightning's accelerator)")
    g.add_argument("--devices", default="1", help="number of devices (or processes on the CPU)")
    g.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per process (1 is fastest for this small model on a busy machine; "
        "0 keeps torch's default)",
    )
    g.add_argument(
        "--no-progress-bar",
        action="store_true",
        help="no progress bars or model summary (progress bars are off anyway when the output is not a terminal)",
    )
    g.add_argument("--keep-decoded", action="store_true", help=argparse.SUPPRESS)  # for the tests
    d = p.add_argument_group("data")
    d.add_argument("--train-size", type=int, default=30_000, help="training sentence pairs")
    d.add_argument("--val-size", type=int, default=512, help="validation sentence pairs (held-out sources)")
    d.add_argument("--batch-size", type=int, default=64, help="training batch size")
    d.add_argument("--val-batch-size", type=int, default=256, help="validation batch size")


def add_ckpt_out_arg(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument(
        "--ckpt-out",
        type=Path,
        default=None,
        help=f"where to write the trained model's checkpoint; an existing file is refused (default: model.ckpt in "
        f"the run's own folder, <out-dir>/{name}/version_N/, so a run never overwrites another's). Nothing is "
        "written when no training step was taken",
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--d-model", type=int, default=128, help="Transformer width")
    g.add_argument("--nhead", type=int, default=4, help="attention heads")
    g.add_argument("--layers", type=int, default=2, help="encoder and decoder layers (each)")
    g.add_argument("--ff", type=int, default=256, help="feed-forward width")
    g.add_argument("--dropout", type=float, default=0.0, help="dropout probability")


def translate_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = new_parser(doc)
    add_common_args(p)
    add_model_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--max-steps", type=int, default=500, help="training steps")
    t.add_argument("--val-every", type=int, default=100, help="validate every N training steps")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    t.add_argument("--warmup-steps", type=int, default=100, help="linear learning-rate warm-up steps")
    add_ckpt_out_arg(t, "translate")
    return p


def rl_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = new_parser(doc)
    add_common_args(p)
    g = p.add_argument_group("initial model")
    g.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="trained translate.py checkpoint to start from (default: the newest "
        "<out-dir>/translate/version_N/model.ckpt, else a brief pre-training); a missing, unreadable or untrained "
        "checkpoint is refused",
    )
    g.add_argument(
        "--pretrain-steps",
        type=int,
        default=500,
        help="teacher-forced steps when no checkpoint is found (translate.py's default)",
    )
    add_model_args(p)  # used only for the pre-training
    t = p.add_argument_group("RL")
    t.add_argument("--max-steps", type=int, default=200, help="SCST training steps")
    t.add_argument("--val-every", type=int, default=50, help="validate every N training steps")
    t.add_argument("--lr", type=float, default=1e-4, help="learning rate (AdamW)")
    t.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    t.add_argument("--samples", type=int, default=1, help="samples per source sentence")
    t.add_argument("--reward-smoothing", default="exp", help="sentence_bleu smoothing of the reward")
    t.add_argument("--print-every", type=int, default=25, help="print the timing breakdown every N steps (0: never)")
    add_ckpt_out_arg(t, "rl_finetune")
    return p


def seq2seq_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = new_parser(doc)
    p.add_argument("--seed", type=int, default=1234, help="seed of the task (translate.py's --seed)")
    p.add_argument("--pairs", type=int, default=5, help="validation sentence pairs to print")
    return p


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a starting model for ``rl_finetune.py`` (``None`` when it can).

    Refused: a missing file, one ``torch.load`` cannot read as a Lightning checkpoint, and a checkpoint saved
    before any training step (an untrained model, from which SCST learns nothing useful)."""
    if not Path(path).is_file():
        return "no such file"
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file gets the same one-line answer
        return f"not a readable checkpoint ({type(e).__name__})"
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "global_step" not in ckpt:
        return "not a Lightning checkpoint of the translate.py model"
    if int(ckpt["global_step"]) <= 0:
        return "saved before any training step (an untrained model); train one first, e.g. python examples/translate.py"
    return None


def check_args(args: argparse.Namespace, prog: str) -> None:
    """Mistakes a run would only hit after seconds of set-up end here, in one line and a non-zero exit."""
    if str(args.accelerator).lower() in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(
                f"{prog}: error: --accelerator {args.accelerator}: no CUDA GPU is available "
                "(torch.cuda.is_available() is False); use --accelerator cpu"
            )
    ckpt_out = getattr(args, "ckpt_out", None)
    if ckpt_out is not None and Path(ckpt_out).exists():
        raise SystemExit(f"{prog}: error: --ckpt-out {ckpt_out}: already exists (remove it or name another path)")
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None:
        problem = checkpoint_problem(Path(checkpoint))
        if problem is not None:
            raise SystemExit(f"{prog}: error: --checkpoint {checkpoint}: {problem}")
