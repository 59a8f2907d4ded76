"""chrF and chrF++ (Popović 2015, 2017) per sentence or corpus, exact to SacreBLEU, on text or on token IDs.

Text becomes codepoint arrays (whitespace removed unless asked) and word-id arrays (SacreBLEU's word split), and
both go through the shared n-gram counter as token IDs: its per-reference overlaps are chrF's per-order matches.
On token IDs each ID is one symbol: the score is SacreBLEU's ``CHRF(char_order=0, word_order=K)`` on the
space-joined IDs, ``K = char_order``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine
from tensorbleu_metrics.functional._counting import count_ngrams, ngram_totals
from tensorbleu_metrics.functional._inputs import (
    HostRows,
    TokenBatch,
    check_dtype,
    check_int,
    check_special_ids,
    check_stats,
    check_validate,
    normalise_inputs,
    public_entry,
)

__all__ = ["CHRFStats", "check_chrf_options", "chrf_from_stats", "chrf_stats", "corpus_chrf", "sentence_chrf"]


def _host(x: Tensor | np.ndarray) -> np.ndarray:
    """A CPU tensor's NumPy view, or the array itself."""
    return x.numpy() if isinstance(x, Tensor) else x


# SacreBLEU's smoothing constant for an order with no n-gram on one side
_EPS = 1e-16

# the codepoints `str.split()` splits on (`str.isspace`), which SacreBLEU removes from the character n-grams
_WHITESPACE = (*range(0x9, 0xE), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029)
_WHITESPACE += (0x202F, 0x205F, 0x3000)
_SPACE_TABLE = np.zeros(0x3002, dtype=bool)  # and one entry beyond, for every larger codepoint
_SPACE_TABLE[list(_WHITESPACE)] = True

# SacreBLEU's word split: a word of 2+ characters loses a final ASCII punctuation mark to a word of its own, or
# else an initial one
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_PUNCT_TABLE = np.zeros(128, dtype=bool)
_PUNCT_TABLE[[ord(c) for c in _PUNCTUATION]] = True


class CHRFStats(NamedTuple):
    """Sufficient statistics of chrF, per order: character orders ``1..char_order`` then word orders
    ``1..word_order`` (token orders on token IDs), one row per sentence (or their sum for a corpus).

    Attributes:
        hyp: ``(..., N)`` int64 hypothesis n-grams of each order against the best reference (SacreBLEU counts 0
            for an order the reference has no n-gram of).
        ref: ``(..., N)`` int64 n-grams of the best reference.
        matches: ``(..., N)`` int64 n-grams they share, clipped: ``sum(min(hypothesis count, reference count))``.
    """

    hyp: Tensor
    ref: Tensor
    matches: Tensor

    def sum(self) -> CHRFStats:
        """Corpus statistics: the sum over the leading (sentence) dimension, as SacreBLEU's ``corpus_score``."""
        return CHRFStats(self.hyp.sum(0), self.ref.sum(0), self.matches.sum(0))


def check_chrf_options(
    char_order: Any = 6, word_order: Any = 0, beta: Any = 2, whitespace: Any = False, eps_smoothing: Any = False
) -> tuple[int, int, int]:
    """Validate chrF's options, raising ``TypeError``/``ValueError`` that names the bad one; return the orders and
    ``beta`` as Python ints.

    Example:
        >>> check_chrf_options(6, 2)
        (6, 2, 2)
        >>> check_chrf_options(0, 0)
        Traceback (most recent call last):
        ...
        ValueError: `char_order` + `word_order` must be at least 1 (chrF needs an n-gram order), got 0 and 0.
    """
    char_order = check_int(char_order, "char_order", minimum=0)
    word_order = check_int(word_order, "word_order", minimum=0)
    beta = check_int(beta, "beta", minimum=0, maximum=2**26)  # beta ** 2 + 1 stays exact in float64
    if char_order + word_order < 1:
        raise ValueError(
            "`char_order` + `word_order` must be at least 1 (chrF needs an n-gram order), "
            f"got {char_order} and {word_order}."
        )
    for name, value in (("whitespace", whitespace), ("eps_smoothing", eps_smoothing)):
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be a bool, got {value!r}.")
    return char_order, word_order, beta


# ---------------------------------------------------------------- text


def _is_text(preds: Any) -> bool:
    """Whether ``preds`` is a batch of strings (its first item a ``str``)."""
    if isinstance(preds, str):
        raise TypeError("`preds` must be a sequence of hypotheses (e.g. a list of str), got one str.")
    return isinstance(preds, Sequence) and len(preds) > 0 and isinstance(preds[0], str)


def _text_references(target: Any, batch: int) -> list[list[str]]:
    """``target`` as one list of reference strings per sentence (``None`` entries are absent references)."""
    if isinstance(target, str) or not isinstance(target, Sequence):
        raise TypeError(
            "`target` must be a sequence of references for text `preds`: one str per sentence, or one sequence "
            f"of str per sentence, got {type(target).__name__}."
        )
    if len(target) != batch:
        raise ValueError(f"`preds` has {batch} sentences but `target` has {len(target)}: they must match.")
    out: list[list[str]] = []
    for i, item in enumerate(target):
        if isinstance(item, str):
            out.append([item])
            continue
        if not isinstance(item, Sequence):
            raise TypeError(f"`target[{i}]` must be a str or a sequence of str, got {type(item).__name__}.")
        refs = [ref for ref in item if ref is not None]
        for j, ref in enumerate(item):
            if ref is not None and not isinstance(ref, str):
                raise TypeError(f"`target[{i}][{j}]` must be a str (text `preds`), got {type(ref).__name__}.")
        if not refs:
            raise ValueError(f"`target` gives sentence {i} no reference: every sentence needs at least one.")
        out.append(refs)
    return out


def _whitespace_positions(codes: np.ndarray) -> np.ndarray:
    """Where the uint32 ``codes`` hold whitespace: the candidates (up to U+0020, or U+0085 to U+3000: an unsigned
    difference wraps below its range) looked up in the table."""
    candidates = np.flatnonzero((codes <= 0x20) | ((codes - 0x85) <= 0x3000 - 0x85))
    return candidates[_SPACE_TABLE[codes[candidates]]]


def _codepoints(texts: list[str], whitespace: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every text's codepoints, concatenated (uint32), and their number per text; whitespace dropped unless kept."""
    # one UTF-32 encoding of all texts (lone surrogates kept as their own code units, as Python holds them)
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if not whitespace and codes.size:
        spaces = _whitespace_positions(codes)
        if spaces.size:
            # each text loses its own whitespace: the texts holding them found by where the texts end
            owner = np.searchsorted(np.cumsum(lengths), spaces, side="right")
            lengths = lengths - np.bincount(owner, minlength=lengths.size)
            codes = np.delete(codes, spaces)
    return codes, lengths


def _word_ids(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's words (SacreBLEU's split) as ids shared by the batch, concatenated, and their number per text."""
    words = [text.split() for text in texts]
    flat = list(itertools.chain.from_iterable(words))
    index = dict(zip(dict.fromkeys(flat), itertools.count()))  # a word's id: its rank of first appearance
    ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    distinct = list(index)
    if not distinct:
        return ids, lengths
    # the punctuation rule, decided once per distinct word from its first and last codepoints
    size = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    codes = np.frombuffer("".join(distinct).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ends = np.cumsum(size)
    is_mark = _PUNCT_TABLE[np.minimum(codes, 127)] & (codes < 128)
    to_split = np.flatnonzero((size > 1) & (is_mark[ends - 1] | is_mark[ends - size]))
    if not to_split.size:
        return ids, lengths
    second = np.full(len(distinct), -1, dtype=np.int64)  # the id of a split word's second piece
    first = np.arange(len(distinct), dtype=np.int64)  # and of its first (its own id when it is not split)
    for k in to_split.tolist():
        word = distinct[k]
        head, tail = (word[:-1], word[-1]) if word[-1] in _PUNCTUATION else (word[0], word[1:])
        first[k] = index.setdefault(head, len(index))
        second[k] = index.setdefault(tail, len(index))
    pieces = 1 + (second[ids] >= 0)
    out = np.empty(int(pieces.sum()), dtype=np.int64)
    start = np.cumsum(pieces) - pieces
    out[start] = first[ids]
    two = pieces == 2
    out[start[two] + 1] = second[ids[two]]
    text_ends = np.cumsum(lengths)
    per_text = np.concatenate(([0], np.cumsum(pieces)))
    return out, per_text[text_ends] - per_text[text_ends - lengths]


def _text_batch(
    symbols: np.ndarray, lengths: np.ndarray, batch: int, owners: np.ndarray, slots: np.ndarray, n_refs: int
) -> TokenBatch:
    """The ``TokenBatch`` of the hypotheses' (texts ``0..B-1``) and references' (the rest) symbol arrays."""
    width = int(lengths.max(initial=0))
    rows = np.zeros((lengths.size, width), dtype=np.int64)
    rows[np.arange(width) < lengths[:, None]] = symbols  # row-major boolean assignment fills each text in order
    preds, pred_len = rows[:batch], lengths[:batch]
    if owners.size == batch and n_refs == 1:
        refs, ref_len = rows[batch:, None], lengths[batch:, None]
        present = np.ones((batch, 1), dtype=bool)
    else:
        refs = np.zeros((batch, n_refs, width), dtype=np.int64)
        ref_len = np.zeros((batch, n_refs), dtype=np.int64)
        present = np.zeros((batch, n_refs), dtype=bool)
        refs[owners, slots], ref_len[owners, slots], present[owners, slots] = rows[batch:], lengths[batch:], True
    as_tensor = torch.from_numpy
    return TokenBatch(as_tensor(preds), as_tensor(pred_len), as_tensor(refs), as_tensor(ref_len), as_tensor(present))


def _text_counts(
    preds: Sequence[str], target: Any, char_order: int, word_order: int, whitespace: bool, lowercase: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per order, the hypotheses' n-grams ``(B, N)``, each reference's ``(B, R, N)``, their overlaps ``(B, R, N)``,
    and which references are present ``(B, R)``."""
    batch = len(preds)
    for i, pred in enumerate(preds):
        if not isinstance(pred, str):
            raise TypeError(f"`preds[{i}]` must be a str (text `preds`), got {type(pred).__name__}.")
    references = _text_references(target, batch)
    per_sentence = np.fromiter(map(len, references), dtype=np.int64, count=batch)
    n_refs = int(per_sentence.max())
    texts = [*preds, *itertools.chain.from_iterable(references)]
    if lowercase:
        texts = [text.lower() for text in texts]
    present = torch.from_numpy(np.arange(n_refs) < per_sentence[:, None])
    if not _device.host_reads_are_free(present.device):
        return _text_counts_sorted(texts, per_sentence, char_order, word_order, whitespace)
    # the compiled kernel reads every text from one UTF-32 encoding (lone surrogates kept as their own code
    # units, as Python holds them) and splits, renumbers and counts each row itself
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    text_at = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=text_at[1:])
    ref_first = np.zeros(batch + 1, dtype=np.int64)
    np.cumsum(per_sentence, out=ref_first[1:])
    hyp, ref, matches = _engine.kernels("chrf").chrf_counts(
        codes, text_at, ref_first, n_refs, char_order, word_order, whitespace, _SPACE_TABLE, _PUNCT_TABLE
    )
    return torch.from_numpy(hyp), torch.from_numpy(ref), torch.from_numpy(matches), present


def _text_counts_sorted(
    texts: list[str], per_sentence: np.ndarray, char_order: int, word_order: int, whitespace: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_text_counts`` through the shared n-gram counter (the torch sorted pass that accelerators run): codepoint
    and word-id arrays as token IDs, its per-reference overlaps as chrF's per-order matches."""
    batch = per_sentence.shape[0]
    owners = np.repeat(np.arange(batch), per_sentence)
    slots = np.arange(owners.size) - np.repeat(np.cumsum(per_sentence) - per_sentence, per_sentence)
    n_refs = int(per_sentence.max())
    hyp_parts, ref_parts, match_parts = [], [], []
    present = None
    for order, symbols in ((char_order, _codepoints), (word_order, _word_ids)):
        if order == 0:
            continue
        args = (texts, whitespace) if symbols is _codepoints else (texts,)
        flat, lengths = symbols(*args)
        part = _text_batch(flat, lengths, batch, owners, slots, n_refs)
        ref_matches = count_ngrams(part, order, per_reference=True).ref_matches
        assert ref_matches is not None
        hyp_parts.append(ngram_totals(part.pred_len, order))
        ref_parts.append(ngram_totals(part.ref_len, order))
        match_parts.append(ref_matches)
        present = part.ref_present
    assert present is not None
    return torch.cat(hyp_parts, -1), torch.cat(ref_parts, -1), torch.cat(match_parts, -1), present


# ---------------------------------------------------------------- scoring


def _f_scores(stats: CHRFStats, beta: int, eps_smoothing: bool) -> Tensor:
    """SacreBLEU's chrF in [0, 100] of every row of statistics, float64, with its operations in its order (so
    equal to the last bit, which its choice of the best reference compares): compiled row by row on the CPU."""
    if not _device.host_reads_are_free(stats.hyp.device):
        return _f_scores_torch(stats, beta, eps_smoothing)
    fields = torch.broadcast_tensors(*stats)
    shape, n_orders = fields[0].shape[:-1], fields[0].shape[-1]
    rows = (np.ascontiguousarray(x.reshape(-1, n_orders).numpy(), dtype=np.int64) for x in fields)
    return torch.from_numpy(_engine.kernels("scoring").f_scores(*rows, beta**2, eps_smoothing)).reshape(shape)


def _f_scores_torch(stats: CHRFStats, beta: int, eps_smoothing: bool) -> Tensor:
    """``_f_scores`` as batched torch operations (accelerators)."""
    factor = beta**2
    hyp, ref, matches = (x.to(torch.float64) for x in stats)
    score = torch.zeros(hyp.shape[:-1], dtype=torch.float64, device=hyp.device)
    avg_prec, avg_rec = score.clone(), score.clone()
    effective = torch.zeros(hyp.shape[:-1], dtype=torch.int64, device=hyp.device)
    n_orders = hyp.shape[-1]
    for i in range(n_orders):
        has_hyp, has_ref = stats.hyp[..., i] > 0, stats.ref[..., i] > 0
        prec = torch.where(has_hyp, matches[..., i] / hyp[..., i].clamp(min=1), _EPS)
        rec = torch.where(has_ref, matches[..., i] / ref[..., i].clamp(min=1), _EPS)
        denom = factor * prec + rec
        score = score + torch.where(denom > 0, (1 + factor) * prec * rec / denom, _EPS)
        both = has_hyp & has_ref
        avg_prec = avg_prec + torch.where(both, prec, 0.0)
        avg_rec = avg_rec + torch.where(both, rec, 0.0)
        effective = effective + both
    if eps_smoothing:
        return 100 * score / n_orders
    counted = effective.clamp(min=1).to(torch.float64)
    avg_prec = torch.where(effective > 0, avg_prec / counted, 0.0)
    avg_rec = torch.where(effective > 0, avg_rec / counted, 0.0)
    f_beta = (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)
    return torch.where(avg_prec + avg_rec != 0, 100 * f_beta, 0.0)


@public_entry
def chrf_stats(
    preds: Any,
    target: Any,
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
    whitespace: bool = False,
    eps_smoothing: bool = False,
    lowercase: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
) -> CHRFStats:
    """Per-sentence chrF statistics against the best reference of each sentence, as SacreBLEU picks it.

    Each reference gives per-order statistics; the kept reference is the one whose sentence chrF (with these
    ``beta`` and ``eps_smoothing``) is highest, the first on ties.

    Args:
        preds: hypotheses: a sequence of ``str``, or token IDs in any form of
            ``tensorbleu_metrics.functional.bleu_stats``.
        target: references: for text, one ``str`` per sentence or one sequence of ``str`` per sentence (several
            references; ``None`` entries are absent ones); for token IDs, any form of
            ``tensorbleu_metrics.functional.bleu_stats``.
        char_order: the highest character n-gram order (on token IDs: token n-gram order).
        word_order: the highest word n-gram order (2: chrF++); text only.
        beta: the weight of recall against precision in the F score.
        whitespace: keep whitespace in the character n-grams (text; no effect on token IDs).
        eps_smoothing: SacreBLEU's ``eps_smoothing``: average the per-order F scores, with ``1e-16`` for an order
            without n-grams, instead of the F score of the averaged precision and recall of the orders both sides
            have.
        lowercase: lowercase the texts first (``str.lower``); text only.
        pad_id: a token ID ignored wherever it stands (token IDs only).
        eos_id: a token ID that ends a sequence (token IDs only).
        validate: check the token values, as ``tensorbleu_metrics.functional.sentence_bleu`` does.

    Returns:
        ``CHRFStats`` of ``(B, char_order + word_order)`` int64 tensors (on the input's device for token IDs,
        the CPU for text); ``stats.sum()`` gives the corpus.

    Raises:
        TypeError, ValueError: bad options, inputs as ``tensorbleu_metrics.functional.bleu_stats`` rejects
            them, text that is not ``str``, and on token IDs a ``word_order`` or ``lowercase`` (IDs have no words
            or case).

    Example:
        >>> stats = chrf_stats(["the cat"], [["a cat", "the hat"]], char_order=2, word_order=1)
        >>> stats.hyp, stats.ref, stats.matches
        (tensor([[6, 5, 2]]), tensor([[6, 5, 2]]), tensor([[5, 3, 1]]))
    """
    char_order, word_order, beta = check_chrf_options(char_order, word_order, beta, whitespace, eps_smoothing)
    if not isinstance(lowercase, bool):
        raise TypeError(f"`lowercase` must be a bool, got {lowercase!r}.")
    if _is_text(preds):
        check_validate(validate)
        check_special_ids(pad_id, eos_id)
        if pad_id is not None or eos_id is not None:
            raise ValueError("`pad_id` and `eos_id` apply to token IDs; text `preds` have neither: leave them None.")
        hyp, ref, matches, present = _text_counts(preds, target, char_order, word_order, whitespace, lowercase)
    else:
        if word_order:
            raise ValueError(
                f"`word_order` must be 0 with token IDs, got {word_order}: token IDs have no words. Each ID is one "
                "symbol and `char_order` counts its n-grams (chrF++ on text corresponds to a larger `char_order`)."
            )
        if lowercase:
            raise ValueError("`lowercase` applies to text; token IDs have no case.")
        batch = normalise_inputs(preds, target, pad_id, eos_id, validate, layout=False)
        counted = count_ngrams(batch, char_order, per_reference=True)
        matches = counted.ref_matches
        if isinstance(batch, HostRows):  # the CPU engine's NumPy arrays
            pred_len, ref_len, present = counted.stats.pred_len, counted.ref_len, counted.present
        else:
            pred_len, ref_len, present = batch.pred_len, batch.ref_len, batch.ref_present
        hyp, ref = ngram_totals(pred_len, char_order), ngram_totals(ref_len, char_order)
    if not isinstance(ref, Tensor) or _device.host_reads_are_free(ref.device):
        arrays = (np.ascontiguousarray(_host(x), dtype=np.int64) for x in (hyp, ref, matches))
        best = _engine.kernels("scoring").best_reference(*arrays, _host(present), beta**2, eps_smoothing)
        return CHRFStats(*best)
    hyp = hyp.unsqueeze(1).expand_as(ref)
    # SacreBLEU counts no hypothesis n-gram of an order the reference has none of
    per_ref = CHRFStats(torch.where(ref > 0, hyp, 0), ref, matches)
    f_scores = torch.where(present, _f_scores_torch(per_ref, beta, eps_smoothing), -1.0)
    best = f_scores.argmax(-1)[:, None, None].expand(-1, 1, ref.shape[-1])
    return CHRFStats(*(x.gather(1, best).squeeze(1) for x in per_ref))


@public_entry
def chrf_from_stats(
    stats: CHRFStats, *, beta: int = 2, eps_smoothing: bool = False, dtype: torch.dtype = torch.float32
) -> Tensor:
    """chrF from statistics: per sentence (``(B, N)`` rows) or one corpus score (``(N,)``), in [0, 1].

    Example:
        >>> import torch
        >>> stats = CHRFStats(torch.tensor([6, 5, 2]), torch.tensor([6, 5, 2]), torch.tensor([5, 3, 1]))
        >>> chrf_from_stats(stats, dtype=torch.float64)
        tensor(0.6444, dtype=torch.float64)
    """
    check_stats(stats, CHRFStats)
    check_dtype(dtype)
    _, _, beta = check_chrf_options(1, 0, beta, False, eps_smoothing)
    if stats.hyp.dim() == 0 or stats.hyp.shape[-1] == 0:
        raise ValueError("`stats` must hold one column per n-gram order (a last dimension of 1 or more).")
    return (_f_scores(stats, beta, eps_smoothing) / 100).to(dtype)


@public_entry
def sentence_chrf(
    preds: Any,
    target: Any,
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
    whitespace: bool = False,
    eps_smoothing: bool = False,
    lowercase: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """chrF (``word_order=2``: chrF++) of each hypothesis against its references, equal to SacreBLEU's
    ``CHRF(...).sentence_score(pred, refs).score / 100``.

    Takes the arguments of ``chrf_stats``; ``dtype`` is the floating dtype of the result (computed in
    float64). On token IDs the score is SacreBLEU's ``CHRF(char_order=0, word_order=char_order)`` on the
    space-joined IDs.

    Returns:
        ``(B,)`` scores in [0, 1].

    Example:
        >>> import torch
        >>> preds = ["the cat sat", "a dog"]
        >>> sentence_chrf(preds, ["the cat sat", ["the dog", "a dog barked"]], dtype=torch.float64)
        tensor([1.0000, 0.3288], dtype=torch.float64)
        >>> sentence_chrf(["the cat sat"], ["a cat sat"], word_order=2)  # chrF++
        tensor([0.6532])
        >>> sentence_chrf(torch.tensor([[5, 6, 7, 8]]), torch.tensor([[5, 6, 7, 9]]), char_order=2)  # token IDs
        tensor([0.7083])
    """
    check_dtype(dtype)
    stats = chrf_stats(
        preds,
        target,
        char_order=char_order,
        word_order=word_order,
        beta=beta,
        whitespace=whitespace,
        eps_smoothing=eps_smoothing,
        lowercase=lowercase,
        pad_id=pad_id,
        eos_id=eos_id,
        validate=validate,
    )
    return chrf_from_stats(stats, beta=beta, eps_smoothing=eps_smoothing, dtype=dtype)


@public_entry
def corpus_chrf(
    preds: Any,
    target: Any,
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
    whitespace: bool = False,
    eps_smoothing: bool = False,
    lowercase: bool = False,
    pad_id: int | None = None,
    eos_id: int | None = None,
    validate: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """chrF of the batch as one corpus, equal to SacreBLEU's ``corpus_score(...).score / 100``: the statistics of
    each sentence's best reference summed over the corpus, then scored.

    Takes the arguments of ``sentence_chrf``. SacreBLEU takes references as streams (``refs[r][i]``); here
    ``target[i]`` holds the references of sentence ``i``.

    Returns:
        A scalar in [0, 1].

    Example:
        >>> corpus_chrf(["the cat sat", "a dog"], ["the cat sat", ["the dog", "a dog barked"]])
        tensor(0.6154)
    """
    check_dtype(dtype)
    stats = chrf_stats(
        preds,
        target,
        char_order=char_order,
        word_order=word_order,
        beta=beta,
        whitespace=whitespace,
        eps_smoothing=eps_smoothing,
        lowercase=lowercase,
        pad_id=pad_id,
        eos_id=eos_id,
        validate=validate,
    )
    return chrf_from_stats(stats.sum(), beta=beta, eps_smoothing=eps_smoothing, dtype=dtype)
