"""Framework token containers (lists of ID lists, NumPy arrays with -100) to the functional API's tensors.

Integrations map every ignored ID to ``PAD`` and every end-of-sequence ID to ``EOS``, two private negative IDs that
no tokenizer produces, and pass ``pad_id=PAD, eos_id=EOS`` to the functional API.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional._inputs import _ragged_to_padded

PAD = -1
EOS = -2


def id_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``None``, one token ID or several as a tuple of non-negative ints, with errors naming ``name``."""
    if value is None:
        return ()
    items = [value] if isinstance(value, numbers.Integral) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"`{name}` must be a token ID, a sequence of token IDs or None, got {value!r}.")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"`{name}` must hold int token IDs, got {item!r}.")
        out.append(int(item))
    return tuple(out)


def _isin(x: Tensor, ids: Sequence[int]) -> Tensor:
    if not ids:
        return torch.zeros_like(x, dtype=torch.bool)
    return torch.isin(x, torch.tensor(ids, dtype=x.dtype, device=x.device))


def _check_no_negative(x: Tensor, special: Tensor, name: str, row_names: Sequence[str] | None = None) -> None:
    """Raw IDs must be >= 0 wherever they are not one of the special IDs (so they never collide with PAD/EOS)."""
    bad = (x < 0) & ~special
    if bool(bad.any()):
        row = int(bad.any(-1).nonzero()[0, 0])
        where = f"`{row_names[row]}`" if row_names is not None else f"`{name}` (row {row})"
        raise ValueError(f"{where} holds the negative token ID {int(x[bad][0])}; token IDs must be >= 0.")


def _lists_to_padded(seqs: Sequence[Any], names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """A zero-filled ``(N, W)`` int64 CPU tensor and the lengths. Lists of ints (TRL's form) go through one
    ``torch.tensor`` call over all tokens; anything else, or anything wrong, through the functional API's
    per-sequence path, whose errors name the sequence."""
    if all(type(s) in (list, tuple) for s in seqs):
        try:
            flat = torch.tensor([t for s in seqs for t in s])
        except (TypeError, ValueError, RuntimeError, OverflowError):
            flat = None
        if flat is not None and flat.dim() == 1 and flat.dtype in (torch.int64, torch.int32):
            lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
            width = int(lengths.max()) if len(seqs) else 0
            out = torch.zeros(len(seqs), width, dtype=torch.int64)
            out[torch.arange(width) < lengths.unsqueeze(1)] = flat
            return out, lengths
    return _ragged_to_padded(seqs, names, torch.device("cpu"))


def padded_rows(seqs: Sequence[Any], names: Sequence[str], eos_ids: Sequence[int], device: torch.device) -> Tensor:
    """Token sequences of any lengths as one ``(N, W + 1)`` tensor: tokens, then ``EOS``, then ``PAD``.

    Every row gets an explicit end after its last token, so an empty sequence stays a sequence of length 0 (in a
    ``(B, R, L)`` reference tensor an all-``PAD`` row would mean "no reference"); ``eos_ids`` inside a row end it
    there, as the real end-of-sequence token does.
    """
    tokens, lengths = _lists_to_padded(seqs, names)
    is_eos = _isin(tokens, eos_ids)
    _check_no_negative(tokens, is_eos, "", names)
    out = torch.nn.functional.pad(torch.where(is_eos, EOS, tokens), (0, 1))
    out = torch.where(torch.arange(out.shape[1]) < lengths.unsqueeze(1), out, PAD)
    out[torch.arange(out.shape[0]), lengths] = EOS
    return out.to(device)


def clean_array(x: Any, name: str, ignore_ids: Sequence[int], eos_ids: Sequence[int]) -> Tensor:
    """A ``(N, L)`` integer array (NumPy or torch) as int64, ``ignore_ids`` -> ``PAD``, ``eos_ids`` -> ``EOS``."""
    if isinstance(x, Tensor):
        t = x.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"`{name}` must be an integer array of token IDs ({err}).") from err
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(
            f"`{name}` must hold integer token IDs, got {t.dtype} values (logits?): generate token IDs "
            "(`predict_with_generate=True` in `Seq2SeqTrainingArguments`) or take the argmax in "
            "`preprocess_logits_for_metrics`."
        )
    if t.dim() != 2:
        raise ValueError(f"`{name}` must be a (N, L) array of token IDs, got shape {tuple(t.shape)}.")
    t = t.to(torch.int64)
    ignored = _isin(t, ignore_ids)
    is_eos = _isin(t, eos_ids) & ~ignored
    _check_no_negative(t, ignored | is_eos, name)
    return torch.where(ignored, PAD, torch.where(is_eos, EOS, t))
