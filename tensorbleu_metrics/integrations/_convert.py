"""The integrations' one special-ID layer: framework token containers (lists of ID lists, arrays with -100, several
EOS IDs, arrays padded to different widths) to arrays the functional API reads with ``SPECIAL_IDS``.

Every ignored ID becomes ``PAD`` and every end-of-sequence ID ``EOS``, two private negative IDs that no tokenizer
produces; the functional API is called with ``**SPECIAL_IDS`` (``pad_id=PAD, eos_id=EOS``), named only here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional._inputs import _ragged_to_padded, check_int, is_int

PAD = -1
EOS = -2
# the functional API's arguments for the arrays of this layer
SPECIAL_IDS: Mapping[str, int] = MappingProxyType({"pad_id": PAD, "eos_id": EOS})


def id_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``None``, one token ID or several (Python or NumPy integers) as a tuple of ints in the int64 range, with
    errors naming ``name``."""
    if value is None:
        return ()
    items = [value] if is_int(value) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"`{name}` must be a token ID, a sequence of token IDs or None, got {value!r}.")
    return tuple(check_int(item, name, what=" (a token ID)") for item in items)


def _isin(x: Tensor, ids: Sequence[int]) -> Tensor:
    if not ids:
        return torch.zeros_like(x, dtype=torch.bool)
    return torch.isin(x, torch.tensor(ids, dtype=x.dtype, device=x.device))


def _check_no_negative(x: Any, special: Any, name: str, row_names: Sequence[str] | None = None) -> None:
    """Raw IDs must be >= 0 wherever they are not one of the special IDs (so they never collide with PAD/EOS).

    ``x`` and ``special`` are NumPy arrays or CPU tensors (read through NumPy).
    """
    values = np.asarray(x)
    bad = (values < 0) & ~np.asarray(special)
    if bad.any():
        row = int(np.flatnonzero(bad.any(-1))[0])
        where = f"`{row_names[row]}`" if row_names is not None else f"`{name}` (row {row})"
        raise ValueError(f"{where} holds the negative token ID {int(values[bad][0])}; token IDs must be >= 0.")


def _lists_to_padded(seqs: Sequence[Any], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A zero-filled ``(N, W)`` int64 array and the int64 lengths. Lists of ints (TRL's form) go through one NumPy
    conversion of all tokens (instead of ``torch.tensor`` on each list of Python ints, with the same rules: an
    int, or a bool among ints, is a token; a float, a str or an out-of-range int sends the batch down the other
    path); anything else, or anything wrong, through the functional API's per-sequence path, whose errors name
    the sequence."""
    if all(type(s) in (list, tuple) for s in seqs):
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        try:
            flat = np.array(list(itertools.chain.from_iterable(seqs))) if lengths.sum() else np.zeros(0, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            flat = None
        if flat is not None and flat.ndim == 1 and flat.dtype.kind == "i":
            width = int(lengths.max()) if len(seqs) else 0
            out = np.zeros((len(seqs), width), dtype=np.int64)
            out[np.arange(width) < lengths[:, None]] = flat
            return out, lengths
    tokens, lengths = _ragged_to_padded(seqs, names, torch.device("cpu"))
    return tokens.numpy(), lengths.numpy()


def padded_array(seqs: Sequence[Any], names: Sequence[str], eos_ids: Sequence[int]) -> np.ndarray:
    """Token sequences of any lengths as one ``(N, W + 1)`` int64 array: tokens, then ``EOS``, then ``PAD``.

    Every row gets an explicit end after its last token, so an empty sequence stays a sequence of length 0 (in a
    ``(B, R, L)`` reference tensor an all-``PAD`` row would mean "no reference"); ``eos_ids`` inside a row end it
    there, as the real end-of-sequence token does. On the host, in NumPy (a handful of calls on small arrays).
    """
    tokens, lengths = _lists_to_padded(seqs, names)
    n_rows, width = tokens.shape
    is_eos = np.isin(tokens, eos_ids) if eos_ids else np.zeros(tokens.shape, dtype=bool)
    _check_no_negative(tokens, is_eos, "", names)
    out = np.full((n_rows, width + 1), PAD, dtype=np.int64)
    np.copyto(out[:, :width], np.where(is_eos, EOS, tokens), where=np.arange(width) < lengths[:, None])
    out[np.arange(n_rows), lengths] = EOS
    return out


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


def stack_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Arrays of equal rank, each padded with ``PAD`` on every axis but the first to the largest, concatenated (one
    array comes back as it is)."""
    if len(arrays) == 1:
        return arrays[0]
    shape = [max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim)]
    out = np.full((sum(a.shape[0] for a in arrays), *shape), PAD, dtype=np.int64)
    start = 0
    for a in arrays:
        out[(slice(start, start + a.shape[0]), *(slice(0, n) for n in a.shape[1:]))] = a
        start += a.shape[0]
    return out


def reference_list(value: Any, name: str) -> list[Any]:
    """A reference cell (a dataset column's, a ground truth) as a list of references, each a str or a token-ID
    sequence: one str, several, one token-ID sequence or several (lists, tuples, NumPy arrays, tensors)."""
    if type(value) is list and value and type(value[0]) is int:
        return [value]  # the common cell, one token-ID list, without the ABC checks below (per row, per call)
    if isinstance(value, (np.ndarray, Tensor)):
        value = value.tolist()
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise TypeError(
            f"`{name}` must be a reference (a str or a list of token IDs) or a list of references, "
            f"got {type(value).__name__}."
        )
    if len(value) == 0:
        raise ValueError(f"`{name}` is empty: give at least one reference (a str or a list of token IDs).")
    if is_int(value[0]):
        return [value]  # one token-ID reference (its other items are checked when it becomes a tensor)
    refs = [r.tolist() if isinstance(r, (np.ndarray, Tensor)) else r for r in value]
    for j, ref in enumerate(refs):
        if not isinstance(ref, (str, Sequence)) or isinstance(ref, bytes):
            raise TypeError(
                f"`{name}[{j}]` must be a reference (a str or a list of token IDs), got {type(ref).__name__}."
            )
    return refs
