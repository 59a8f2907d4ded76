"""Self-critical sequence training (SCST) of the translate.py model with a BLEU reward on the device.

    python examples/translate.py          # optional: otherwise a brief pre-training runs first
    python examples/rl_finetune.py        # CPU; --accelerator gpu for a GPU

REINFORCE with the greedy decode as the baseline (Rennie et al., 2017): for each source sentence the
model samples a translation and decodes one greedily; the reward is the sentence BLEU of the sampled
token IDs against the reference, computed with ``tensorbleu_metrics.functional.sentence_bleu`` on
the model's device (no ``.tolist()``, no detokenisation), and the advantage is
``BLEU(sample) - BLEU(greedy)``. The loss is ``-advantage * log p(sample)``.

The run prints a per-step timing breakdown (generation, reward, log-prob forward, backward + optimizer
step) with the reward's share, validation BLEU before and after, and saves logs, a plot and the fine-tuned
checkpoint under ``examples/runs/rl_finetune/version_N/``.

By default the model is loaded from the newest ``examples/runs/translate/version_N/model.ckpt`` (what
``translate.py`` wrote last), else it is pre-trained with teacher forcing for ``--pretrain-steps`` (500, as
translate.py does by default), saying so. A ``--checkpoint`` (or that newest checkpoint) that is missing,
unreadable or untrained (saved before any training step) ends the run with a one-line error. That model
is only partly trained (BLEU ~0.95, ~87% of the validation sentences perfect), so there is headroom.
SCST needs a reasonable starting policy: from a much weaker model (e.g. 300 steps, BLEU ~0.5) the
single-sample REINFORCE signal is too noisy and BLEU tends to go down rather than up.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script (python examples/rl_finetune.py): make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples.cli import check_args, checkpoint_problem, rl_parser

if __name__ == "__main__":  # answer --help and option mistakes before the slow imports below
    check_args(rl_parser(__doc__).parse_args(), "rl_finetune.py")

import argparse
import inspect
import statistics
import time
from argparse import Namespace
from typing import Any

import lightning as L
import torch
from torch import Tensor

from examples import translate
from examples.seq2seq import (
    EOS_ID,
    PAD_ID,
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
from tensorbleu_metrics.functional import sentence_bleu

PHASES = ("generate", "reward", "log-prob fwd", "backward+step")
PERFECT_NOTE = (
    "fewer perfect sentences while BLEU rises is expected here: the reward is each sample's sentence BLEU,\n"
    "so SCST favours more correct n-grams across many sentences over keeping every sentence exact, and corpus\n"
    "BLEU pools the n-gram matches of all sentences (a sentence one word off still counts almost fully)"
)


class SCSTModule(Seq2SeqModule):
    """:class:`Seq2SeqModule` whose training step is self-critical REINFORCE with a BLEU reward.
    Validation (greedy decoding, BLEU logging) is inherited unchanged."""

    def __init__(
        self,
        *args: Any,
        temperature: float = 1.0,
        samples: int = 1,
        reward_smoothing: str = "exp",
        print_every: int = 25,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False  # manual: so the backward pass can be timed on its own
        self.timings: list[dict[str, float]] = []  # ms per phase, one dict per training step
        self.rewards: list[tuple[int, float, float]] = []  # (step, mean sample BLEU, mean greedy BLEU)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.98), weight_decay=0.0)

    def _now(self) -> float:
        if self.device.type == "cuda":  # honest per-phase times: wait for the queued kernels
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def reward(self, hyp: Tensor, tgt_out: Tensor) -> Tensor:
        """Sentence BLEU of each row of ``hyp`` (B, T) -> (B,), on ``hyp``'s device."""
        return sentence_bleu(
            hyp,
            tgt_out,
            smoothing=self.hparams.reward_smoothing,
            effective_order=True,
            pad_id=PAD_ID,
            eos_id=EOS_ID,
        )

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        src, _, tgt_out = batch
        b, k = src.size(0), self.hparams.samples
        opt = self.optimizers()
        t0 = self._now()
        # one decoding loop for the greedy baseline (first b rows) and k samples per source
        src_all = src.repeat(k + 1, 1)
        do_sample = torch.arange(src_all.size(0), device=src.device) >= b
        seqs = self.model.generate(
            src_all,
            max_len=self.hparams.max_decode_len,
            sample=do_sample,
            temperature=self.hparams.temperature,
        )
        t1 = self._now()
        rewards = self.reward(seqs, tgt_out.repeat(k + 1, 1)).view(k + 1, b)
        advantage = rewards[1:] - rewards[:1]  # (k, b): sample BLEU - greedy BLEU
        t2 = self._now()
        logp = self.model.sequence_logprob(src_all[b:], seqs[b:]).view(k, b)
        loss = -(advantage * logp).mean()
        t3 = self._now()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
        opt.step()
        t4 = self._now()

        ms = {p: 1000 * d for p, d in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True)}
        self.timings.append(ms)
        self.log("train/reward_sample", rewards[1:].mean(), prog_bar=True)
        self.log("train/reward_greedy", rewards[0].mean(), prog_bar=True)
        self.log("train/loss", loss)
        for p, v in ms.items():
            self.log(f"time_ms/{p}", v, prog_bar=p == "reward")
        step = len(self.timings)  # steps done in this run
        self.rewards.append((self.global_step, float(rewards[1:].mean()), float(rewards[0].mean())))
        if self.hparams.print_every and (step == 1 or step % self.hparams.print_every == 0):
            total = sum(ms.values())
            self.print(
                f"step {step:4d} | generate {ms['generate']:6.1f} ms | reward {ms['reward']:5.1f} ms "
                f"({ms['reward'] / total:5.1%}) | log-prob fwd {ms['log-prob fwd']:5.1f} ms | "
                f"backward+step {ms['backward+step']:6.1f} ms | BLEU sample {rewards[1:].mean():.3f} "
                f"greedy {rewards[0].mean():.3f}"
            )
        return loss


def build_parser() -> argparse.ArgumentParser:
    return rl_parser(__doc__)


def load_module(ckpt: Path) -> Seq2SeqModule:
    """The translate.py model from its checkpoint (ours: plain tensors and numbers, so ``weights_only=True``)."""
    kwargs: dict[str, Any] = {"map_location": "cpu"}
    # Lightning >= 2.6 takes weights_only (and warns when it is left out); older releases pass unknown keyword
    # arguments on as hyper-parameters, so it is given only where it is a parameter
    if "weights_only" in inspect.signature(Seq2SeqModule.load_from_checkpoint).parameters:
        kwargs["weights_only"] = True
    return Seq2SeqModule.load_from_checkpoint(ckpt, **kwargs)


def smoothed(values: list[float], window: int = 10) -> list[float]:
    """Running mean over the last ``window`` values (the per-step reward is noisy)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def latest_checkpoint(out_dir: Path, name: str = "translate") -> Path | None:
    """The checkpoint of the newest run under ``out_dir/name`` (the highest ``version_N`` that has one)."""
    found = []
    for path in (Path(out_dir) / name).glob("version_*/model.ckpt"):
        version = path.parent.name.removeprefix("version_")
        if version.isdigit():
            found.append((int(version), path))
    return max(found)[1] if found else None


def initial_model(args: Namespace) -> tuple[Seq2SeqModule, Path, bool]:
    """(module, checkpoint path, pre-trained here?). A missing, unreadable or untrained starting checkpoint
    ends the run with a one-line error rather than fine-tuning a model that was never trained."""
    ckpt = args.checkpoint if args.checkpoint is not None else latest_checkpoint(args.out_dir)
    if ckpt is not None:
        problem = checkpoint_problem(Path(ckpt))
        if problem is not None:
            flag = "--checkpoint " if args.checkpoint is not None else ""
            raise SystemExit(f"rl_finetune.py: error: {flag}{ckpt}: {problem}")
        return load_module(Path(ckpt)), Path(ckpt), False
    searched = Path(args.out_dir) / "translate" / "version_N" / "model.ckpt"
    if args.pretrain_steps <= 0:
        raise SystemExit(
            f"rl_finetune.py: error: no trained checkpoint at {searched} and --pretrain-steps {args.pretrain_steps}: "
            "nothing to start from (run translate.py first, or give --checkpoint)"
        )
    translate.rprint(
        f"[rl_finetune] no translate.py checkpoint at {searched}: pre-training {args.pretrain_steps} steps first"
    )
    pre_args = Namespace(
        **{
            **vars(args),
            "max_steps": args.pretrain_steps,
            "val_every": max(1, args.pretrain_steps),
            "lr": 2e-3,
            "warmup_steps": 100,
            "keep_decoded": False,
        }
    )
    res = translate.train_supervised(pre_args, name="rl_pretrain")  # into rl_pretrain/version_N/model.ckpt
    res["trainer"].strategy.barrier()
    return load_module(res["checkpoint"]), res["checkpoint"], True


def main(argv: list[str] | None = None) -> dict[str, Any]:
    t_start = time.perf_counter()
    args = build_parser().parse_args(argv)
    check_args(args, "rl_finetune.py")
    translate.quiet_lightning()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    base, ckpt, pretrained = initial_model(args)
    hp = dict(base.hparams)
    task_seed = hp.pop("task_seed", None)
    task_seed = args.seed if task_seed is None else task_seed
    hp.update(lr=args.lr, keep_decoded=args.keep_decoded)
    module = SCSTModule(
        **hp,
        temperature=args.temperature,
        samples=args.samples,
        task_seed=task_seed,
        reward_smoothing=args.reward_smoothing,
        print_every=args.print_every,
    )
    module.model.load_state_dict(base.model.state_dict())

    L.seed_everything(args.seed + 1, workers=True, verbose=False)
    task = TranslationTask(seed=task_seed)
    dm = TranslationDataModule(
        task,
        train_size=args.train_size,
        val_size=args.val_size,
        batch_size=args.batch_size,
        val_batch_size=args.val_batch_size,
        seed=task_seed,
    )
    out_dir = Path(args.out_dir)
    history = History()
    loggers = make_loggers(out_dir, "rl_finetune")
    # no gradient_clip_val here: manual optimisation clips in training_step
    trainer = translate.make_trainer(
        args,
        max_steps=args.max_steps,
        val_every=args.val_every,
        loggers=loggers,
        callbacks=[history],
        gradient_clip_val=None,
    )
    translate.rprint(f"[rl_finetune] starting from {ckpt}; logging to {loggers[-1].log_dir}")
    t0 = time.perf_counter()
    trainer.validate(module, datamodule=dm, verbose=False)  # BLEU before RL
    trainer.fit(module, datamodule=dm)
    if trainer.global_step % args.val_every != 0:
        trainer.validate(module, datamodule=dm, verbose=False)
    rl_s = time.perf_counter() - t0
    out_ckpt = None
    if trainer.global_step > 0:  # like translate.py: the run's own folder unless --ckpt-out, nothing if untrained
        out_ckpt = args.ckpt_out if args.ckpt_out is not None else Path(loggers[-1].log_dir) / "model.ckpt"
        trainer.save_checkpoint(out_ckpt, weights_only=False)

    hist = history.rows
    res: dict[str, Any] = {
        "module": module,
        "trainer": trainer,
        "history": hist,
        "checkpoint": out_ckpt,
        "initial_checkpoint": ckpt,
        "pretrained": pretrained,
        "log_dir": Path(loggers[-1].log_dir),
        "plot": None,
        "bleu_before": hist[0]["val/bleu"],
        "bleu_after": hist[-1]["val/bleu"],
    }
    timings = module.timings[3:] if len(module.timings) > 6 else module.timings  # skip warm-up steps
    res["timing_ms"] = {p: statistics.mean(t[p] for t in timings) for p in PHASES} if timings else {}
    res["wall_s"] = time.perf_counter() - t_start
    if trainer.is_global_zero:
        steps = [float(r[0]) for r in module.rewards]
        train = {
            "train reward: sample BLEU (mean of 10 steps)": (steps, smoothed([r[1] for r in module.rewards])),
            "train reward: greedy BLEU (mean of 10 steps)": (steps, smoothed([r[2] for r in module.rewards])),
        }
        title = "rl_finetune: validation BLEU and training reward (SCST)"
        res["plot"] = plot_history(hist, res["log_dir"] / "bleu.png", title, zoom=True, train=train)
        total = sum(res["timing_ms"].values()) or float("nan")
        rows = (
            [
                (
                    p,
                    f"{res['timing_ms'][p]:.1f}",
                    f"{statistics.median(t[p] for t in timings):.1f}",
                    f"{res['timing_ms'][p] / total:.1%}",
                )
                for p in PHASES
            ]
            if timings
            else []
        )
        rows.append(("total", f"{total:.1f}", "", "100%"))
        print(
            "\n"
            + format_table(
                rows,
                header=("phase", "mean ms/step", "median ms/step", "share"),
                title=f"Per-step time on {module.device} (batch {args.batch_size}, "
                f"{args.samples} sample(s) + greedy per sentence; steps "
                f"{len(module.timings) - len(timings) + 1}..{len(module.timings)})",
            )
        )
        first, last = hist[0], hist[-1]
        summary = [
            ("start", f"{ckpt}{' (pre-trained here)' if pretrained else ''}"),
            ("RL steps", trainer.global_step),
            (
                "val/bleu (corpus BLEU-4)",
                f"{first['val/bleu']:.4f} -> {last['val/bleu']:.4f}  ({last['val/bleu'] - first['val/bleu']:+.4f})",
            ),
            (
                "mean sentence BLEU",
                f"{first['val/sentence_bleu_mean']:.4f} -> {last['val/sentence_bleu_mean']:.4f}",
            ),
            (
                "perfect sentences",
                f"{first['val/sentence_bleu_frac_perfect']:.1%} -> {last['val/sentence_bleu_frac_perfect']:.1%}",
            ),
            ("RL time (incl. validation)", f"{rl_s:.1f} s"),
            ("wall time of main() (after imports)", f"{res['wall_s']:.1f} s"),
        ]
        print("\n" + format_table(summary, title="rl_finetune.py summary"))
        if (
            last["val/bleu"] > first["val/bleu"]
            and last["val/sentence_bleu_frac_perfect"] < first["val/sentence_bleu_frac_perfect"]
        ):
            print(f"Note: {PERFECT_NOTE}.")
        print("\nSample translations (validation set):")
        print("\n".join(sample_translations(module, task, dm.val_pairs)))
        print("")
        print("\n".join(describe_logs(loggers)))
        print(f"plot:       {res['plot']}")
        print(f"checkpoint: {out_ckpt or 'none written (no training step was taken)'}", flush=True)
    return res


if __name__ == "__main__":
    main()
