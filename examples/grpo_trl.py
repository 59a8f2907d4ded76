"""GRPO with Hugging Face TRL and a token-ID BLEU reward, offline, on a tiny model and a task made by the code.

A 2-layer Llama built from a config learns to reverse word sequences ("w3 w7 w1 =" -> "w1 w7 w3"): a short
supervised warm-up, then ``trl.GRPOTrainer`` with ``tensorbleu_metrics.integrations.trl.bleu_reward`` as the
reward. Prints the reward and held-out BLEU before/after, the time per step and the reward function's share of it,
and writes a plot. Nothing is downloaded: the tokenizer is a word-level ``PreTrainedTokenizerFast`` built here.

    python examples/grpo_trl.py            # CPU, about a minute on 2 cores
    python examples/grpo_trl.py --help

On the CPU a run is deterministic: everything is seeded, torch runs deterministic algorithms on one thread, so two
runs on one machine print the same figures. Other machines may print others: torch's CPU kernels take the vector
instructions of the processor (the summary names them), which round differently, and sampling then diverges.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Offline: no hub look-ups, no telemetry, no experiment trackers.
for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    task = p.add_argument_group("task")
    task.add_argument("--n-words", type=int, default=16, help="vocabulary size of the task (words w0..wN-1)")
    task.add_argument("--min-len", type=int, default=4, help="shortest word sequence")
    task.add_argument("--max-len", type=int, default=6, help="longest word sequence")
    task.add_argument("--train-size", type=int, default=4000, help="training prompts (warm-up and GRPO)")
    task.add_argument("--eval-size", type=int, default=256, help="held-out prompts for BLEU")
    model = p.add_argument_group("model")
    model.add_argument("--hidden", type=int, default=64, help="hidden size of the Llama policy")
    model.add_argument("--layers", type=int, default=2, help="decoder layers")
    model.add_argument("--heads", type=int, default=4, help="attention heads")
    warm = p.add_argument_group("supervised warm-up")
    warm.add_argument("--warmup-steps", type=int, default=50, help="teacher-forced steps before GRPO (0: none)")
    warm.add_argument("--warmup-batch-size", type=int, default=64, help="warm-up batch size")
    warm.add_argument("--warmup-lr", type=float, default=3e-3, help="warm-up learning rate (AdamW)")
    grpo = p.add_argument_group("GRPO (trl.GRPOConfig)")
    grpo.add_argument("--steps", type=int, default=150, help="GRPO optimizer steps")
    grpo.add_argument("--batch-size", type=int, default=64, help="completions per step (per_device_train_batch_size)")
    grpo.add_argument("--num-generations", type=int, default=8, help="completions per prompt (the GRPO group)")
    grpo.add_argument("--lr", type=float, default=1e-4, help="GRPO learning rate")
    grpo.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    grpo.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0: no reference model)")
    grpo.add_argument("--smoothing", default="exp", help="sentence_bleu smoothing of the reward")
    grpo.add_argument(
        "--diversity-weight",
        type=float,
        default=0.0,
        help="weight of a second reward, 1 - Self-BLEU within each prompt's group (0: BLEU alone)",
    )
    run = p.add_argument_group("run")
    run.add_argument("--eval-every", type=int, default=25, help="held-out BLEU every N GRPO steps")
    run.add_argument("--print-every", type=int, default=25, help="print the reward every N GRPO steps")
    run.add_argument("--device", default="cpu", help="cpu or cuda (policy, generation and reward)")
    run.add_argument("--threads", type=int, default=1, help="torch threads (more only contend on a small CPU)")
    run.add_argument("--seed", type=int, default=0, help="seed of the task, the model and the sampling")
    run.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "runs", help="output folder")
    run.add_argument("--no-plot", action="store_true", help="skip the PNG plot (needs matplotlib)")
    return p


# --help answers before TRL, Transformers and torch are imported (their imports are slow).
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args()

import torch  # noqa: E402  (after the environment above)

try:
    import trl
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        PrinterCallback,
        ProgressCallback,
        TrainerCallback,
        set_seed,
    )
    from transformers.utils import logging as hf_logging
except ImportError as err:  # pragma: no cover - shown to users without the extra
    raise SystemExit(f'{err}\nThis example needs TRL: pip install "tensorbleu-metrics[trl]"') from err

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from tensorbleu_metrics.functional import corpus_bleu, sentence_bleu  # noqa: E402
from tensorbleu_metrics.integrations.trl import bleu_reward, diversity_reward  # noqa: E402

PAD, UNK, EOS, SEP = "[PAD]", "[UNK]", "[EOS]", "="
PAD_ID, EOS_ID = 0, 2


# ----------------------------------------------------------------------------------------------------------
# task, tokenizer, model
# ----------------------------------------------------------------------------------------------------------


def build_tokenizer(n_words: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``w0 .. w{n_words-1}``, ``=`` and the specials ``[PAD]=0, [UNK]=1, [EOS]=2``."""
    vocab = {tok: i for i, tok in enumerate([PAD, UNK, EOS, SEP, *(f"w{i}" for i in range(n_words))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK, eos_token=EOS)


def build_policy(vocab_size: int, hidden: int, layers: int, heads: int, seed: int) -> LlamaForCausalLM:
    """A randomly initialised Llama built from a config (no weights downloaded)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=64,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    return model


def make_rows(n: int, n_words: int, min_len: int, max_len: int, seed: int, exclude: set[str] = frozenset()):
    """``n`` distinct prompts "w.. w.. =" (none in ``exclude``) with their reversed word sequence as reference."""
    rng = random.Random(seed)
    rows: dict[str, str] = {}
    while len(rows) < n:
        words = [f"w{rng.randrange(n_words)}" for _ in range(rng.randint(min_len, max_len))]
        prompt = " ".join([*words, SEP])
        if prompt not in exclude:
            rows[prompt] = " ".join(reversed(words))
    return [{"prompt": p, "reference": r} for p, r in rows.items()]


# ----------------------------------------------------------------------------------------------------------
# supervised warm-up and held-out evaluation
# ----------------------------------------------------------------------------------------------------------


def warm_up(model, tokenizer, rows, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Teacher-forced training on prompt + reference + EOS (loss on the completion only); returns the losses."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    prompts = tokenizer([r["prompt"] for r in rows], add_special_tokens=False)["input_ids"]
    targets = tokenizer([r["reference"] for r in rows], add_special_tokens=False)["input_ids"]
    losses = []
    model.train()
    for _ in range(steps):
        idx = rng.sample(range(len(rows)), batch_size)
        seqs = [prompts[i] + targets[i] + [EOS_ID] for i in idx]
        width = max(map(len, seqs))
        ids = torch.full((batch_size, width), PAD_ID)
        labels = torch.full((batch_size, width), -100)
        for b, (i, seq) in enumerate(zip(idx, seqs, strict=True)):
            ids[b, : len(seq)] = torch.tensor(seq)
            labels[b, len(prompts[i]) : len(seq)] = torch.tensor(seq[len(prompts[i]) :])
        loss = model(input_ids=ids, attention_mask=(ids != PAD_ID).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def evaluate(model, tokenizer, rows, max_new_tokens: int, batch_size: int = 256) -> dict[str, float]:
    """Greedy completions of held-out prompts: corpus BLEU and mean sentence BLEU (the reward's settings)."""
    was_training = model.training
    model.eval()
    hyps, refs = [], []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            enc = tokenizer([r["prompt"] for r in chunk], add_special_tokens=False, padding=True, return_tensors="pt")
            enc = enc.to(model.device)
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=EOS_ID, pad_token_id=PAD_ID
            )
            hyps.append(out[:, enc["input_ids"].shape[1] :])
            refs += tokenizer([r["reference"] for r in chunk], add_special_tokens=False)["input_ids"]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    width = max(h.shape[1] for h in hyps)
    preds = torch.cat([torch.nn.functional.pad(h, (0, width - h.shape[1]), value=PAD_ID) for h in hyps])
    target = [[r] for r in refs]
    ids = {"pad_id": PAD_ID, "eos_id": EOS_ID}
    sent = sentence_bleu(preds, target, smoothing="exp", effective_order=True, **ids)
    return {
        "bleu": float(corpus_bleu(preds, target, **ids)),
        "sentence_bleu": float(sent.mean()),
        "exact": float((sent == 1).float().mean()),
    }


# ----------------------------------------------------------------------------------------------------------
# GRPO
# ----------------------------------------------------------------------------------------------------------


class TimedReward:
    """Wraps a reward function, keeping its ``__name__`` (TRL logs ``rewards/<name>/mean``) and timing each call."""

    def __init__(self, reward: Any) -> None:
        self.reward = reward
        self.__name__ = reward.__name__
        self.seconds: list[float] = []

    def __call__(self, **kwargs: Any) -> list[float]:
        start = time.perf_counter()
        out = self.reward(**kwargs)
        self.seconds.append(time.perf_counter() - start)
        return out


class Monitor(TrainerCallback):
    """Times each optimizer step and evaluates held-out BLEU every ``every`` steps (outside the timed part)."""

    def __init__(self, evaluate_fn, every: int, print_every: int) -> None:
        self.evaluate_fn, self.every, self.print_every = evaluate_fn, every, print_every
        self.step_seconds: list[float] = []
        self.evals: list[dict[str, float]] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.step_seconds.append(time.perf_counter() - self._start)
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.evals.append({"step": state.global_step, **self.evaluate_fn(model)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        if logs and "rewards/bleu/mean" in logs and (step % self.print_every == 0 or step == 1):
            bleu = f"BLEU reward {logs['rewards/bleu/mean']:.3f} ± {logs.get('rewards/bleu/std', 0):.3f}"
            div = f"   diversity {logs['rewards/diversity/mean']:.3f}" if "rewards/diversity/mean" in logs else ""
            held = f"   held-out BLEU {self.evals[-1]['bleu']:.3f}" if self.evals else ""
            print(f"  GRPO step {step:4d}   {bleu}{div}{held}")


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def plot(path: Path, history: list[dict[str, Any]], evals: list[dict[str, float]]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["reward"] for h in history], label="GRPO reward (mean sentence BLEU of samples)", alpha=0.6)
    ax.plot([e["step"] for e in evals], [e["bleu"] for e in evals], "o-", label="held-out corpus BLEU (greedy)")
    ax.plot([e["step"] for e in evals], [e["sentence_bleu"] for e in evals], "s--", label="held-out sentence BLEU")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("BLEU")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("trl.GRPOTrainer with tensorbleu_metrics' token-ID BLEU reward")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_args(args: argparse.Namespace, prog: str = "grpo_trl.py") -> None:
    """Mistakes a run would only hit after seconds of set-up end here, in one line and a non-zero exit."""
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise SystemExit(f"{prog}: error: --device {args.device}: not a torch device; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"{prog}: error: --device {args.device}: no CUDA GPU is available "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"{prog}: error: --device {args.device}: use cpu or cuda")
    if args.threads < 1:
        raise SystemExit(f"{prog}: error: --threads {args.threads}: must be >= 1")
    try:  # the reward checks its options when it is built
        bleu_reward(eos_token_id=EOS_ID, smoothing=args.smoothing)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"{prog}: error: --smoothing {args.smoothing}: {err}") from None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    check_args(args)
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    threads = torch.get_num_threads()
    try:
        return _run(args)
    finally:  # the settings are the process's: give them back to a caller (e.g. a test) as they were
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        torch.use_deterministic_algorithms(True)  # CPU kernels that could vary between runs raise instead
        torch.utils.deterministic.fill_uninitialized_memory = False  # filling every new tensor slows steps by half
    set_seed(args.seed)  # Python, NumPy and torch generators; the model and the sampler seed their own too
    hf_logging.set_verbosity_error()
    # Deprecation notices raised inside TRL/Transformers, not by this script.
    warnings.filterwarnings("ignore", category=FutureWarning)
    t_start = time.perf_counter()
    out_dir = args.out_dir / "grpo_trl"
    out_dir.mkdir(parents=True, exist_ok=True)

    train_rows = make_rows(args.train_size, args.n_words, args.min_len, args.max_len, seed=args.seed)
    eval_rows = make_rows(
        args.eval_size, args.n_words, args.min_len, args.max_len, args.seed + 1, {r["prompt"] for r in train_rows}
    )
    tokenizer = build_tokenizer(args.n_words)
    model = build_policy(len(tokenizer), args.hidden, args.layers, args.heads, args.seed).to(args.device)
    max_new = args.max_len + 1
    held_out = lambda m: evaluate(m, tokenizer, eval_rows, max_new)  # noqa: E731

    # The three lines a user adds to a TRL script: the reward reads the dataset's "reference" column.
    reward = TimedReward(bleu_reward("reference", tokenizer=tokenizer, device=args.device, smoothing=args.smoothing))
    rewards, weights = [reward], [1.0]
    if args.diversity_weight:
        rewards.append(TimedReward(diversity_reward(tokenizer=tokenizer, device=args.device)))
        weights.append(args.diversity_weight)
    try:  # TRL checks its sizes here (e.g. the batch must hold whole groups): one line, before any training
        config = trl.GRPOConfig(
            output_dir=str(out_dir / "trainer"),
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            num_generations=args.num_generations,
            max_completion_length=max_new,
            learning_rate=args.lr,
            lr_scheduler_type="constant",
            temperature=args.temperature,
            beta=args.beta,
            reward_weights=weights,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=args.device == "cpu",
            seed=args.seed,
            data_seed=args.seed,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
    except ValueError as err:
        raise SystemExit(f"grpo_trl.py: error: {err}") from None

    print(f"task: reverse {args.min_len}-{args.max_len} words of {args.n_words}; e.g. {train_rows[0]}")
    before_warmup = held_out(model)
    t0 = time.perf_counter()
    losses = warm_up(model, tokenizer, train_rows, args.warmup_steps, args.warmup_batch_size, args.warmup_lr, args.seed)
    warmup_s = time.perf_counter() - t0
    before = held_out(model)
    if losses:
        print(f"warm-up: {args.warmup_steps} steps in {warmup_s:.1f} s, loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print(f"held-out BLEU before GRPO: {before['bleu']:.3f} (sentence {before['sentence_bleu']:.3f})")

    monitor = Monitor(held_out, args.eval_every, args.print_every)
    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=rewards,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        callbacks=[monitor],
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    monitor.evals.append({"step": 0, **before})
    t0 = time.perf_counter()
    trainer.train()
    grpo_s = time.perf_counter() - t0

    history = [
        {
            "step": h["step"],
            "reward": h["rewards/bleu/mean"],  # the BLEU reward alone, whatever else is added to it
            "reward_std": h.get("rewards/bleu/std", 0.0),
            "diversity": h.get("rewards/diversity/mean"),
        }
        for h in trainer.state.log_history
        if "rewards/bleu/mean" in h
    ]
    after = monitor.evals[-1]
    k = min(10, len(history))
    step_ms = 1000 * _mean(monitor.step_seconds)
    reward_ms = 1000 * sum(_mean(r.seconds) for r in rewards)  # all reward functions of a step
    summary = {
        "reward_first": _mean([h["reward"] for h in history[:k]]),
        "reward_last": _mean([h["reward"] for h in history[-k:]]),
        "bleu_untrained": before_warmup["bleu"],
        "bleu_before": before["bleu"],
        "bleu_after": after["bleu"],
        "sentence_bleu_before": before["sentence_bleu"],
        "sentence_bleu_after": after["sentence_bleu"],
        "exact_before": before["exact"],
        "exact_after": after["exact"],
        "step_ms": step_ms,
        "reward_ms": reward_ms,
        "reward_share": reward_ms / step_ms if step_ms else float("nan"),
        "warmup_s": warmup_s,
        "grpo_s": grpo_s,
        "total_s": time.perf_counter() - t_start,
    }
    png = None if args.no_plot else plot(out_dir / "grpo_bleu.png", history, monitor.evals)

    kernels = f", CPU kernels {torch.backends.cpu.get_cpu_capability()}" if args.device == "cpu" else ""
    print(
        f"\ngrpo_trl.py summary (trl {trl.__version__}, torch {torch.__version__}, device {args.device}, "
        f"{args.threads} thread(s){kernels})"
    )
    print("| quantity | before GRPO | after GRPO |")
    print("|---|---:|---:|")
    first, last = summary["reward_first"], summary["reward_last"]
    print(f"| BLEU reward of the samples, mean of the first / last {k} steps | {first:.3f} | {last:.3f} |")
    print(f"| held-out corpus BLEU (greedy) | {before['bleu']:.3f} | {after['bleu']:.3f} |")
    print(f"| held-out mean sentence BLEU | {before['sentence_bleu']:.3f} | {after['sentence_bleu']:.3f} |")
    print(f"| held-out exact reversals | {before['exact']:.1%} | {after['exact']:.1%} |")
    print(
        f"GRPO: {len(monitor.step_seconds)} steps of {args.batch_size} completions, {step_ms:.0f} ms per step; "
        f"reward functions {reward_ms:.2f} ms ({summary['reward_share']:.1%} of the step)"
    )
    print(f"time: warm-up {warmup_s:.1f} s, GRPO {grpo_s:.1f} s, total {summary['total_s']:.1f} s")
    if png:
        print(f"plot: {png}")
    return {
        "summary": summary,
        "history": history,
        "evals": monitor.evals,
        "plot": png,
        "trainer": trainer,
        "reward": reward,
        "rewards": rewards,
        "tokenizer": tokenizer,
        "eval_rows": eval_rows,
    }


if __name__ == "__main__":
    main()
