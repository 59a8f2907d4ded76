"""Shared pieces of the examples: a seeded synthetic translation task, a small Transformer
encoder-decoder, its LightningModule (validation BLEU through :class:`tensorbleu_metrics.TokenIDBLEU`),
and small helpers for logging, plotting and summary tables.

The task ships with the example (nothing is downloaded). A source language with English-like word
order is mapped to an Italian-like target language by

* a fixed, seeded lexicon (every source word has one target stem; three verbs translate to a verb and
  a particle, so lengths differ),
* local reordering (adjectives follow the noun; an adverb moves from the end of the sentence to right
  after the verb, i.e. in front of the object),
* agreement (articles and adjectives agree with the noun's gender and number; the verb agrees with the
  subject's number; the source marks plural with a separate ``-s`` token after the noun).

Every source sentence has exactly one correct translation, so BLEU is meaningful: an untrained model
scores ~0 and a model that has learnt the rules scores close to 1.

Token IDs: ``PAD_ID = 0``, ``BOS_ID = 1``, ``EOS_ID = 2`` in both vocabularies. Decoder outputs and
targets end with ``EOS_ID`` followed by ``PAD_ID``; the metric is told both (``pad_id``/``eos_id``),
so everything from the first EOS on is ignored.

Run on its own it prints a few sentence pairs of the task (``--seed``, ``--pairs``; ``--help``)::

    python examples/seq2seq.py          # or: python -m examples.seq2seq
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script (python examples/seq2seq.py): make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":  # answer --help and option mistakes before the slow imports below
    from examples.cli import seq2seq_parser

    seq2seq_parser(__doc__).parse_args()

import csv
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from examples.cli import DEFAULT_OUT_DIR, seq2seq_parser
from tensorbleu_metrics import TokenIDBLEU, TokenIDROUGE

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")

#: Cumulative BLEU-1..4 as one metric with a list of weight tuples (computed from one set of statistics).
BLEU_N_WEIGHTS = [
    (1.0, 0.0, 0.0, 0.0),
    (1 / 2, 1 / 2, 0.0, 0.0),
    (1 / 3, 1 / 3, 1 / 3, 0.0),
    (1 / 4, 1 / 4, 1 / 4, 1 / 4),
]

__all__ = ["DEFAULT_OUT_DIR"]  # re-exported from examples.cli (more names below)


# --------------------------------------------------------------------------------------------------
# The synthetic translation task
# --------------------------------------------------------------------------------------------------
def _make_words(rng: random.Random, n: int, taken: set[str], syllables: int = 2) -> list[str]:
    consonants, vowels = "bcdfglmnprstvz", "aeiou"
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


@dataclass
class TranslationTask:
    """A seeded synthetic language pair. ``make_pair(rng)`` returns (source IDs, target IDs) without
    BOS/EOS. Changing ``seed`` gives a different lexicon (genders, phrasal verbs, word forms)."""

    seed: int = 1234
    n_nouns: int = 20
    n_adjectives: int = 12
    n_verbs: int = 12
    n_adverbs: int = 6
    n_phrasal: int = 3
    src_vocab: list[str] = field(init=False)
    tgt_vocab: list[str] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        taken: set[str] = {"il", "la", "i", "le", "un", "una", "dei", "delle", "the", "a"}
        # --- source language: words are plain pseudo-words
        s_nouns = _make_words(rng, self.n_nouns, taken)
        s_adjs = _make_words(rng, self.n_adjectives, taken)
        s_verbs = _make_words(rng, self.n_verbs, taken)
        s_advs = [w + "ly" for w in _make_words(rng, self.n_adverbs, taken)]
        self.src_vocab = [*SPECIALS, "the", "a", *s_nouns, *s_adjs, *s_verbs, *s_advs, "-s"]
        sidx = {w: i for i, w in enumerate(self.src_vocab)}
        self.s_the, self.s_a, self.s_plural = sidx["the"], sidx["a"], sidx["-s"]
        self.s_nouns = [sidx[w] for w in s_nouns]
        self.s_adjs = [sidx[w] for w in s_adjs]
        self.s_verbs = [sidx[w] for w in s_verbs]
        self.s_advs = [sidx[w] for w in s_advs]

        # --- target language: consonant-final roots + inflection (unique roots -> no clashing forms)
        t_roots = [
            w + rng.choice("lnrst")
            for w in _make_words(rng, self.n_nouns + self.n_adjectives + self.n_verbs + self.n_adverbs, taken)
        ]
        t_nouns, t_roots = t_roots[: self.n_nouns], t_roots[self.n_nouns :]
        t_adjs, t_roots = t_roots[: self.n_adjectives], t_roots[self.n_adjectives :]
        t_verbs, t_advs = t_roots[: self.n_verbs], t_roots[self.n_verbs :]
        particles = _make_words(rng, self.n_phrasal, taken, syllables=1)
        self.gender = [rng.randrange(2) for _ in range(self.n_nouns)]  # 0 = masculine, 1 = feminine
        phrasal = rng.sample(range(self.n_verbs), self.n_phrasal)
        self.particle_of = {v: i for i, v in enumerate(phrasal)}
        # articles[(definite, gender, plural)]
        articles = {
            (1, 0, 0): "il",
            (1, 1, 0): "la",
            (1, 0, 1): "i",
            (1, 1, 1): "le",
            (0, 0, 0): "un",
            (0, 1, 0): "una",
            (0, 0, 1): "dei",
            (0, 1, 1): "delle",
        }
        vocab = [*SPECIALS, *articles.values()]
        self.t_article = {k: 3 + i for i, k in enumerate(articles)}
        self.t_noun, self.t_adj, self.t_verb = [], [], []
        for i, root in enumerate(t_nouns):  # [singular, plural]: -o/-i (masculine), -a/-e (feminine)
            self.t_noun.append([len(vocab), len(vocab) + 1])
            vocab += [root + "oa"[self.gender[i]], root + "ie"[self.gender[i]]]
        for root in t_adjs:  # index gender + 2 * plural: m.sg -o, f.sg -a, m.pl -i, f.pl -e
            self.t_adj.append(list(range(len(vocab), len(vocab) + 4)))
            vocab += [root + e for e in "oaie"]
        for root in t_verbs:  # [3rd person singular, plural]
            self.t_verb.append([len(vocab), len(vocab) + 1])
            vocab += [root + "a", root + "ano"]
        self.t_adv = list(range(len(vocab), len(vocab) + len(t_advs)))
        vocab += [root + "mente" for root in t_advs]
        self.t_particle = list(range(len(vocab), len(vocab) + len(particles)))
        vocab += particles
        assert len(set(vocab)) == len(vocab), "clashing target word forms"
        self.tgt_vocab = vocab

    @property
    def src_vocab_size(self) -> int:
        return len(self.src_vocab)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tgt_vocab)

    def _noun_phrase(self, rng: random.Random) -> tuple[list[int], list[int], int]:
        definite = rng.random() < 0.5
        n_adj = rng.choice((0, 0, 1, 1, 2))
        adjs = rng.sample(range(self.n_adjectives), n_adj)
        noun = rng.randrange(self.n_nouns)
        plural = int(rng.random() < 0.4)
        g = self.gender[noun]
        src = [self.s_the if definite else self.s_a, *(self.s_adjs[a] for a in adjs), self.s_nouns[noun]]
        src += [self.s_plural] if plural else []
        tgt = [self.t_article[(int(definite), g, plural)], self.t_noun[noun][plural]]
        tgt += [self.t_adj[a][g + 2 * plural] for a in adjs]  # adjectives follow the noun and agree
        return src, tgt, plural

    def make_pair(self, rng: random.Random) -> tuple[list[int], list[int]]:
        subj_s, subj_t, subj_plural = self._noun_phrase(rng)
        verb = rng.randrange(self.n_verbs)
        obj_s, obj_t, _ = self._noun_phrase(rng) if rng.random() < 0.7 else ([], [], 0)
        adv = rng.randrange(self.n_adverbs) if rng.random() < 0.4 else None
        src = [*subj_s, self.s_verbs[verb], *obj_s]
        tgt = [*subj_t, self.t_verb[verb][subj_plural]]  # the verb agrees with the subject's number
        if verb in self.particle_of:  # phrasal verb: verb + particle
            tgt.append(self.t_particle[self.particle_of[verb]])
        if adv is not None:  # source: adverb at the end; target: right after the verb
            src.append(self.s_advs[adv])
            tgt.append(self.t_adv[adv])
        tgt += obj_t
        return src, tgt

    def make_dataset(self, n: int, seed: int, exclude: set[tuple[int, ...]] | None = None):
        """``n`` distinct-from-``exclude`` pairs, deterministic in ``seed``."""
        rng = random.Random(seed)
        pairs = []
        while len(pairs) < n:
            s, t = self.make_pair(rng)
            if exclude is None or tuple(s) not in exclude:
                pairs.append((s, t))
        return pairs

    def src_words(self, ids: Sequence[int] | Tensor) -> str:
        return _words(ids, self.src_vocab)

    def tgt_words(self, ids: Sequence[int] | Tensor) -> str:
        return _words(ids, self.tgt_vocab)


def _words(ids: Sequence[int] | Tensor, vocab: list[str]) -> str:
    out = []
    for i in ids.tolist() if isinstance(ids, Tensor) else ids:
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(vocab[i])
    return " ".join(out)


def collate(pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[Tensor, Tensor, Tensor]:
    """-> ``src`` (B, S) padded; ``tgt_in`` = BOS + target; ``tgt_out`` = target + EOS, PAD-padded."""
    b = len(pairs)
    s_len = max(len(s) for s, _ in pairs)
    t_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((b, s_len), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((b, t_len), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((b, t_len), PAD_ID, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s)] = torch.tensor(s)
        tgt_in[i, : len(t) + 1] = torch.tensor([BOS_ID, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, EOS_ID])
    return src, tgt_in, tgt_out


class TranslationDataModule(L.LightningDataModule):
    """Seeded train/validation splits of :class:`TranslationTask` (validation sources never occur in
    the training set)."""

    def __init__(
        self,
        task: TranslationTask | None = None,
        train_size: int = 50_000,
        val_size: int = 512,
        batch_size: int = 64,
        val_batch_size: int = 256,
        seed: int = 1234,
    ) -> None:
        super().__init__()
        self.task = task if task is not None else TranslationTask(seed=seed)
        self.train_size, self.val_size = train_size, val_size
        self.batch_size, self.val_batch_size, self.seed = batch_size, val_batch_size, seed
        self.train_pairs: list | None = None
        self.val_pairs: list | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.val_pairs is None:
            self.val_pairs = self.task.make_dataset(self.val_size, seed=self.seed + 1)
            held_out = {tuple(s) for s, _ in self.val_pairs}
            self.train_pairs = self.task.make_dataset(self.train_size, seed=self.seed + 2, exclude=held_out)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.train_pairs,
            batch_size=self.batch_size,
            shuffle=True,
            generator=g,
            collate_fn=collate,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_pairs, batch_size=self.val_batch_size, shuffle=False, collate_fn=collate)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
class Seq2SeqTransformer(nn.Module):
    """A small pre-norm Transformer encoder-decoder with learnt positional embeddings."""

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 128,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        max_len: int = 64,
    ) -> None:
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.src_emb = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD_ID)
        self.tgt_emb = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD_ID)
        self.pos_emb = nn.Embedding(max_len, d_model)
        enc_layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        dec_layer = nn.TransformerDecoderLayer(
            d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            enc_layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.decoder = nn.TransformerDecoder(dec_layer, num_layers, norm=nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, tgt_vocab_size)

    def _embed(self, emb: nn.Embedding, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.size(1), device=ids.device)
        return emb(ids) * math.sqrt(self.d_model) + self.pos_emb(pos)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        src_pad = src == PAD_ID
        return self.encoder(self._embed(self.src_emb, src), src_key_padding_mask=src_pad), src_pad

    def decode(self, tgt_in: Tensor, memory: Tensor, src_pad: Tensor) -> Tensor:
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu(1)  # True = masked
        h = self.decoder(
            self._embed(self.tgt_emb, tgt_in),
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=tgt_in == PAD_ID,
            memory_key_padding_mask=src_pad,
        )
        return self.out(h)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)

    @torch.no_grad()
    def generate(
        self, src: Tensor, max_len: int = 24, sample: bool | Tensor = False, temperature: float = 1.0
    ) -> Tensor:
        """Greedy or sampled decoding on ``src``'s device. ``sample`` is a bool or a (B,) bool tensor
        (sample those rows, decode the others greedily). Returns (B, T) token IDs, T <= max_len,
        without BOS; each row ends with EOS followed by PAD (or is cut at ``max_len``).

        Decoding is incremental: each step runs only the newest position through the decoder, attending
        to the cached (normalised) inputs of earlier positions, which equals re-running the whole prefix.
        The model is in eval mode (no dropout) while decoding."""
        was_training = self.training
        self.eval()
        try:
            return self._generate(src, max_len, sample, temperature)
        finally:
            self.train(was_training)

    def _generate(self, src: Tensor, max_len: int, sample: bool | Tensor, temperature: float) -> Tensor:
        memory, src_pad = self.encode(src)
        b = src.size(0)
        nxt = torch.full((b,), BOS_ID, dtype=torch.long, device=src.device)
        finished = torch.zeros(b, dtype=torch.bool, device=src.device)
        caches: list[Tensor | None] = [None] * len(self.decoder.layers)
        steps = []
        for t in range(min(max_len, self.max_len - 1)):
            pos = torch.full((1,), t, dtype=torch.long, device=src.device)
            x = (self.tgt_emb(nxt) * math.sqrt(self.d_model) + self.pos_emb(pos))[:, None]  # (B, 1, d)
            for i, layer in enumerate(self.decoder.layers):
                x, caches[i] = _decoder_layer_step(layer, x, caches[i], memory, src_pad)
            logits = self.out(self.decoder.norm(x))[:, 0]
            logits[:, PAD_ID] = logits[:, BOS_ID] = float("-inf")  # never emitted
            nxt = logits.argmax(-1)
            if isinstance(sample, Tensor) or sample:
                drawn = torch.multinomial(F.softmax(logits / temperature, dim=-1), 1).squeeze(1)
                nxt = torch.where(sample, drawn, nxt) if isinstance(sample, Tensor) else drawn
            nxt = nxt.masked_fill(finished, PAD_ID)
            steps.append(nxt)
            finished |= nxt == EOS_ID
            if t % 4 == 3 and bool(finished.all()):  # check rarely: it syncs with the device
                break
        return torch.stack(steps, dim=1)

    def sequence_logprob(self, src: Tensor, seq: Tensor) -> Tensor:
        """Sum of log-probabilities of ``seq`` (as returned by :meth:`generate`, EOS included, PAD
        after it excluded) under teacher forcing -> (B,)."""
        tgt_in = torch.cat([torch.full_like(seq[:, :1], BOS_ID), seq[:, :-1]], dim=1)
        logp = F.log_softmax(self(src, tgt_in), dim=-1).gather(-1, seq[:, :, None]).squeeze(-1)
        return (logp * (seq != PAD_ID)).sum(dim=1)


def _decoder_layer_step(
    layer: nn.TransformerDecoderLayer, x: Tensor, cache: Tensor | None, memory: Tensor, src_pad: Tensor
) -> tuple[Tensor, Tensor]:
    """One pre-norm decoder layer for the newest position ``x`` (B, 1, d); ``cache`` holds
    ``norm1`` of the layer's inputs at earlier positions (the self-attention keys/values)."""
    h = layer.norm1(x)
    cache = h if cache is None else torch.cat([cache, h], dim=1)
    x = x + layer.dropout1(layer.self_attn(h, cache, cache, need_weights=False)[0])
    q = layer.norm2(x)
    x = x + layer.dropout2(layer.multihead_attn(q, memory, memory, key_padding_mask=src_pad, need_weights=False)[0])
    ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm3(x)))))
    return x + layer.dropout3(ff), cache


# --------------------------------------------------------------------------------------------------
# LightningModule
# --------------------------------------------------------------------------------------------------
class Seq2SeqModule(L.LightningModule):
    """Teacher-forced cross-entropy training; greedy decoding + BLEU in validation.

    Logged in validation: ``val/loss``, ``val/bleu`` (corpus BLEU-4 via ``TokenIDBLEU``, logged as the
    metric object), ``val/bleu1`` .. ``val/bleu4`` (cumulative BLEU-n), ``val/sentence_bleu_mean``
    and quantiles of the per-sentence scores (SacreBLEU's sentence-level defaults: ``exp`` smoothing,
    effective order), ``val/rougeL`` (mean sentence ROUGE-L F via ``TokenIDROUGE``), plus a histogram of the
    sentence BLEU scores (TensorBoard) or a CSV file of histogram bins.
    With ``keep_decoded=True`` the decoded IDs and targets of the last validation epoch are kept in
    ``self.decoded`` (a list of ``(hyp, target)`` CPU tensor pairs) so BLEU can be recomputed.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 128,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        max_decode_len: int = 16,
        task_seed: int | None = None,
        keep_decoded: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["keep_decoded"])
        self.model = Seq2SeqTransformer(
            src_vocab_size, tgt_vocab_size, d_model, nhead, num_layers, dim_feedforward, dropout
        )
        self.keep_decoded = keep_decoded
        self.decoded: list[tuple[Tensor, Tensor]] = []
        ids = {"pad_id": PAD_ID, "eos_id": EOS_ID}
        self.val_bleu = TokenIDBLEU(n_gram=4, **ids)
        self.val_bleu_n = TokenIDBLEU(n_gram=4, weights=BLEU_N_WEIGHTS, **ids)
        self.val_sentence_bleu = TokenIDBLEU(
            n_gram=4, smoothing="exp", effective_order=True, return_sentence_level_score=True, **ids
        )
        self.val_rouge = TokenIDROUGE(rouge_keys="rougeL", **ids)  # mean sentence ROUGE-L F, beside BLEU
        self.histogram_rows: list[list[Any]] = []

    # ---- training
    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.model(src, tgt_in)

    def _xent(self, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        src, tgt_in, tgt_out = batch
        logits = self.model(src, tgt_in)
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._xent(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.98), weight_decay=0.01)
        warmup = max(1, self.hparams.warmup_steps)
        total = self.trainer.max_steps if self.trainer is not None and self.trainer.max_steps > 0 else 0

        def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to 10% at max_steps
            if step < warmup:
                return (step + 1) / warmup
            if total <= warmup:
                return 1.0
            progress = min(1.0, (step - warmup) / (total - warmup))
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- validation
    def on_validation_epoch_start(self) -> None:
        self.decoded = []

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        src, _, tgt_out = batch
        self.log("val/loss", self._xent(batch), prog_bar=False)
        hyp = self.model.generate(src, max_len=self.hparams.max_decode_len)  # greedy, on self.device
        self.val_bleu.update(hyp, tgt_out)
        self.log("val/bleu", self.val_bleu, prog_bar=True)
        self.val_bleu_n.update(hyp, tgt_out)
        self.val_sentence_bleu.update(hyp, tgt_out)
        self.val_rouge.update(hyp, tgt_out)
        if self.keep_decoded:
            self.decoded.append((hyp.cpu(), tgt_out.cpu()))

    def on_validation_epoch_end(self) -> None:
        # Metrics computed by hand are already synchronised across processes by compute(); the values
        # are identical on every rank, so sync_dist=True (a mean of equal numbers) only silences warnings.
        bleu_n = self.val_bleu_n.compute()
        self.val_bleu_n.reset()
        for k, v in enumerate(bleu_n, start=1):
            self.log(f"val/bleu{k}", v, sync_dist=True)
        self.log("val/rougeL", self.val_rouge.compute()["rougeL_fmeasure"], sync_dist=True)
        self.val_rouge.reset()
        _, sent = self.val_sentence_bleu.compute()
        self.val_sentence_bleu.reset()
        sent = sent.float()
        self.log("val/sentence_bleu_mean", sent.mean(), sync_dist=True)
        q = torch.quantile(sent, torch.tensor([0.1, 0.5, 0.9], device=sent.device))
        for name, v in zip(("p10", "p50", "p90"), q, strict=True):
            self.log(f"val/sentence_bleu_{name}", v, sync_dist=True)
        self.log("val/sentence_bleu_frac_perfect", (sent >= 1 - 1e-6).float().mean(), sync_dist=True)
        if not self.trainer.sanity_checking and self.trainer.is_global_zero:
            self._log_histogram(sent)

    def _log_histogram(self, sent: Tensor) -> None:
        step = self.global_step
        wrote_tb = False
        for logger in self.loggers:
            exp = getattr(logger, "experiment", None)
            if hasattr(exp, "add_histogram"):  # TensorBoard
                exp.add_histogram("val/sentence_bleu", sent.detach().cpu(), step)
                wrote_tb = True
        counts = torch.histc(sent.detach().cpu(), bins=10, min=0.0, max=1.0).long().tolist()
        self.histogram_rows.append([step, *counts])
        if not wrote_tb:  # CSV logger: bins go to <log_dir>/sentence_bleu_hist.csv
            for logger in self.loggers:
                log_dir = getattr(logger, "log_dir", None)
                if log_dir is not None and type(logger).__name__ == "CSVLogger":
                    write_histogram_csv(Path(log_dir) / "sentence_bleu_hist.csv", self.histogram_rows)


def write_histogram_csv(path: Path, rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        bins = [f"[{i / 10:.1f},{(i + 1) / 10:.1f}{']' if i == 9 else ')'}" for i in range(10)]
        w.writerow(["step", *bins])
        w.writerows(rows)


# --------------------------------------------------------------------------------------------------
# Run helpers: loggers, history, plots, tables
# --------------------------------------------------------------------------------------------------
def make_loggers(out_dir: Path, name: str) -> list:
    """A CSV logger always; a TensorBoard logger too when tensorboard is installed."""
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(out_dir), name=name)]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.insert(0, TensorBoardLogger(save_dir=str(out_dir / "tensorboard"), name=name))
    except ImportError:
        pass
    return loggers


def describe_logs(loggers: list) -> list[str]:
    lines = []
    for logger in loggers:
        if type(logger).__name__ == "TensorBoardLogger":
            lines.append(f"tensorboard: {logger.log_dir}  (tensorboard --logdir {Path(logger.log_dir).parent})")
        else:
            extra = "" if any(type(x).__name__ == "TensorBoardLogger" for x in loggers) else ", sentence_bleu_hist.csv"
            lines.append(f"logs:       {logger.log_dir}  (metrics.csv, hparams.yaml{extra})")
    return lines


class History(L.Callback):
    """Keeps (step, val metrics, wall time) after every validation run (not the sanity check)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.t0 = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row: dict[str, float] = {"step": float(trainer.global_step), "time_s": time.perf_counter() - self.t0}
        for k, v in trainer.callback_metrics.items():
            if k.startswith("val/"):
                row[k] = float(v)
        self.rows.append(row)


def plot_history(
    rows: list[dict[str, float]],
    path: Path,
    title: str,
    zoom: bool = False,
    train: dict[str, tuple[list[float], list[float]]] | None = None,
) -> Path | None:
    """Validation BLEU over steps -> PNG (None when matplotlib is missing or there is nothing to plot).
    ``zoom``: fit the y axis to the data instead of [0, 1] (small changes, e.g. fine-tuning).
    ``train``: training curves to draw as well, ``{label: (steps, values)}`` (e.g. the RL reward)."""
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(steps, [r.get("val/bleu", float("nan")) for r in rows], "o-", lw=2.2, label="corpus BLEU-4")
    for k, style in zip(range(1, 4), (":", "-.", "--"), strict=True):
        key = f"val/bleu{k}"
        if key in rows[0] and not zoom:  # BLEU-1..3 would stretch a zoomed axis
            ax.plot(steps, [r[key] for r in rows], style, lw=1.2, label=f"BLEU-{k}")
    if "val/sentence_bleu_mean" in rows[0]:
        ax.plot(steps, [r["val/sentence_bleu_mean"] for r in rows], "s-", ms=3, lw=1.2, label="mean sentence BLEU")
    for label, (x, y) in (train or {}).items():
        ax.plot(x, y, "-", lw=0.9, alpha=0.8, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("BLEU")
    if zoom:
        vals = [r[k] for r in rows for k in ("val/bleu", "val/sentence_bleu_mean") if k in r]
        vals += [v for _, y in (train or {}).values() for v in y]
        lo, hi = min(vals), max(vals)
        pad = max(0.01, 0.15 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) + 0.002)
    else:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None, title: str = "") -> str:
    cells = [[_fmt(c) for c in r] for r in ([header] if header else []) + list(rows)]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [title] if title else []
    lines.append(sep)
    for j, r in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |")
        if header and j == 0:
            lines.append(sep)
    lines.append(sep)
    return "\n".join(lines)


def _fmt(c: Any) -> str:
    if isinstance(c, float):
        return f"{c:.4f}" if abs(c) < 1000 else f"{c:.0f}"
    return str(c)


def sample_translations(module: Seq2SeqModule, task: TranslationTask, pairs: list, n: int = 3) -> list[str]:
    src, _, tgt_out = collate(pairs[:n])
    module.eval()
    hyp = module.model.generate(src.to(module.device), max_len=module.hparams.max_decode_len).cpu()
    out = []
    for s, h, t in zip(src, hyp, tgt_out, strict=True):
        out += [f"  src: {task.src_words(s)}", f"  hyp: {task.tgt_words(h)}", f"  ref: {task.tgt_words(t)}"]
    return out


def main(argv: list[str] | None = None) -> list[tuple[list[int], list[int]]]:
    """Print the task's vocabularies and the first validation pairs (words and token IDs); returns those pairs."""
    args = seq2seq_parser(__doc__).parse_args(argv)
    task = TranslationTask(seed=args.seed)
    dm = TranslationDataModule(task, train_size=0, val_size=args.pairs, seed=args.seed)
    dm.setup()
    print(f"task seed {args.seed}: source vocabulary {task.src_vocab_size}, target vocabulary {task.tgt_vocab_size}")
    print(f"token IDs: PAD {PAD_ID}, BOS {BOS_ID}, EOS {EOS_ID}; the first {args.pairs} validation pairs:")
    for src, tgt in dm.val_pairs:
        print(f"  src: {task.src_words(src)}\n  ref: {task.tgt_words(tgt)}\n  IDs: {src} -> {[*tgt, EOS_ID]}")
    return dm.val_pairs


if __name__ == "__main__":
    main()
