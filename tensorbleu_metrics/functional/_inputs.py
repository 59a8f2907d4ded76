"""Input validation and normalisation: every accepted input form becomes one left-aligned token layout.

Candidates become a (B, L) int64 tensor with lengths; references a (B, R, L') tensor with lengths and a mask of
the references that are present. Pad positions are dropped and sequences end at their first eos. NumPy integer
arrays are taken wherever tensors are.
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from tensorbleu_metrics.functional import _device, _engine

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32, torch.uint64)


class TokenBatch(NamedTuple):
    """Normalised inputs: left-aligned tokens, their lengths, and which references exist."""

    preds: Tensor  # (B, L) int64, valid in [0, pred_len)
    pred_len: Tensor  # (B,) int64
    refs: Tensor  # (B, R, L') int64, valid in [0, ref_len)
    ref_len: Tensor  # (B, R) int64, 0 for absent references
    ref_present: Tensor  # (B, R) bool
    # on the CPU, the same five as the NumPy arrays the tensors share memory with (the engine reads those)
    arrays: tuple[np.ndarray, ...] | None = None


class HostRows(NamedTuple):
    """CPU inputs before the layout: int64 rows as given (padding and eos in place), which the engine lays out in
    the same compiled call that counts them."""

    preds: np.ndarray  # (B, L)
    pred_valid: np.ndarray | None  # (B,): positions below it are tokens (ragged inputs); None: every position
    refs: np.ndarray  # (B, R, L')
    ref_valid: np.ndarray | None  # (B, R)
    present: np.ndarray | None  # (B, R) bool; None: every reference present, but see padding_absent
    padding_absent: bool  # a reference whose positions are all pad_id is absent (a (B, R, L') tensor's rule)
    pad_id: int | None
    eos_id: int | None
    validate: bool


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy {value.dtype} array of shape {value.shape}"
    if value is None or isinstance(value, str):
        return repr(value) if len(repr(value)) <= 40 else f"a str of {len(value)} characters"
    return f"{type(value).__name__}"


def _check_int_tensor(x: Tensor, name: str) -> None:
    if x.device.type == "meta":
        raise ValueError(f"`{name}` is a tensor on the 'meta' device, which holds no token IDs.")
    if x.layout != torch.strided:
        raise TypeError(f"`{name}` must be a dense (strided) tensor, got layout {x.layout}.")
    if x.dtype not in _INT_DTYPES:
        raise TypeError(f"`{name}` must hold integer token IDs, got {_describe(x)}.")
    # uint64 values above the int64 range would wrap to negative IDs (a sync, for this rare dtype only)
    if x.dtype == torch.uint64 and bool((x.to(torch.int64) < 0).any()):
        raise ValueError(f"`{name}` holds a token ID outside the int64 range.")


def _from_numpy(value: Any, name: str) -> Any:
    """A NumPy integer array as a CPU int64 tensor; a NumPy object (ragged) array as a list; anything else as is."""
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype == object:
        return list(value)
    if value.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integer token IDs, got {_describe(value)}.")
    if value.dtype == np.uint64 and value.size and int(value.max()) > _INT64_MAX:
        raise ValueError(f"`{name}` holds a token ID outside the int64 range.")
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.int64))


def _find_device(preds: Any, target: Any) -> torch.device:
    """The device of the first tensor among the inputs, their first items, or those items' first items."""
    for name, value in (("preds", preds), ("target", target)):
        for _ in range(3):
            if isinstance(value, Tensor):
                if value.device.type == "meta":
                    raise ValueError(f"`{name}` holds a tensor on the 'meta' device, which holds no token IDs.")
                return value.device
            if not _is_sequence(value) or len(value) == 0:
                break
            value = value[0]
    return torch.device("cpu")


def _raise_bad_references(item: Any, i: int) -> None:
    """A ``TypeError`` saying what is wrong with ``target[i]``, which is not a sequence of references."""
    rule = f"`target[{i}]` must be a sequence of references (each a 1-D tensor or a sequence of ints)"
    if not _is_sequence(item):
        raise TypeError(f"{rule}, got {_describe(item)}.")
    bad = next(j for j, r in enumerate(item) if not (isinstance(r, (Tensor, np.ndarray)) or _is_sequence(r)))
    if all(isinstance(r, numbers.Integral) for r in item):
        raise TypeError(
            f"{rule}, got a {type(item).__name__} of ints: one reference must still be wrapped, "
            f"target=[[ref_0], [ref_1], ...] (e.g. [[[5, 6, 7]]] for one sentence)."
        )
    raise TypeError(f"{rule}, but `target[{i}][{bad}]` is {_describe(item[bad])}.")


def _is_sequence(item: Any) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, (str, bytes))


def _list_to_tensor(seq: Sequence[Any], name: str, device: torch.device) -> Tensor:
    """One sequence of Python ints (or 0-d integer tensors) as an int64 tensor, with errors naming it."""
    if len(seq) == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    try:
        out = torch.tensor(seq, device=device)
    except (ValueError, RuntimeError, TypeError, OverflowError) as err:
        if "Overflow" in str(err):
            raise ValueError(f"`{name}` holds a token ID outside the int64 range.") from err
        raise TypeError(f"`{name}` must be a sequence of integer token IDs ({err}).") from err
    if out.dim() != 1:
        raise TypeError(f"`{name}` must be a flat sequence of integer token IDs, got nested sequences.")
    if out.dtype == torch.bool or out.is_floating_point() or out.is_complex():
        raise TypeError(f"`{name}` must hold integer token IDs, got {out.dtype} values.")
    return out.to(torch.int64)


def _ragged_to_padded(seqs: Sequence[Any], names: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
    """Stack token sequences of any lengths into a zero-filled (N, L) int64 tensor and their lengths."""
    parts: list[Tensor] = []
    for seq, name in zip(seqs, names, strict=True):
        seq = _from_numpy(seq, name)
        if isinstance(seq, Tensor):
            if seq.dim() != 1:
                raise ValueError(f"`{name}` must be a 1-D token sequence, got {_describe(seq)}.")
            _check_int_tensor(seq, name)
            parts.append(seq.to(device=device, dtype=torch.int64))
        elif _is_sequence(seq):
            parts.append(_list_to_tensor(seq, name, device))
        else:
            raise TypeError(f"`{name}` must be a 1-D tensor or a sequence of ints, got {_describe(seq)}.")
    n = len(parts)
    lengths = [part.numel() for part in parts]
    width = max(lengths, default=0)
    len_t = torch.tensor(lengths, dtype=torch.int64, device=device)
    out = torch.zeros(n, width, dtype=torch.int64, device=device)
    if sum(lengths):
        flat = torch.cat(parts)
        rows = torch.repeat_interleave(torch.arange(n, device=device), len_t)
        starts = torch.cumsum(len_t, 0) - len_t
        cols = torch.arange(flat.numel(), device=device) - starts[rows]
        out[rows, cols] = flat
    return out, len_t


def _negative_ids(x: Tensor, pad_id: int | None, eos_id: int | None) -> Tensor:
    """Where ``x`` holds a negative ID other than ``pad_id``/``eos_id``."""
    bad = x < 0
    for special in (pad_id, eos_id):
        if special is not None and special < 0:  # a special ID >= 0 is never among the negative ones
            bad &= x != special
    return bad


def _raise_negative(x: Tensor, bad: Tensor, name: str) -> None:
    raise_negative_value(int(x[bad][0]), name)


def raise_negative_value(value: int, name: str) -> None:
    raise ValueError(
        f"`{name}` holds the negative token ID {value}; token IDs must be >= 0 "
        "(negative values are allowed only as `pad_id` or `eos_id`)."
    )


def _check_ids(x: Tensor, name: str, pad_id: int | None, eos_id: int | None) -> None:
    bad = _negative_ids(x, pad_id, eos_id)
    if bool(bad.any()):
        _raise_negative(x, bad, name)


def _check_values(
    preds: Tensor, refs: Tensor, present: Tensor, pad_id: int | None, eos_id: int | None, all_present: bool = False
) -> None:
    """Negative IDs and sentences without a reference, found with one host synchronisation (accelerators).

    ``all_present``: every reference is known to be present (``present`` is all True), so no sentence lacks one.
    """
    bad_preds, bad_refs = _negative_ids(preds, pad_id, eos_id), _negative_ids(refs, pad_id, eos_id)
    has_ref = present.any(-1)
    found = torch.stack([bad_preds.any(), bad_refs.any(), has_ref.all()]).tolist()
    if found[0]:
        _raise_negative(preds, bad_preds, "preds")
    if found[1]:
        _raise_negative(refs, bad_refs, "target")
    if not found[2]:
        raise_no_reference(int(has_ref.logical_not().nonzero()[0, 0]))


def raise_no_reference(sentence: int) -> None:
    raise ValueError(
        f"`target` gives sentence {sentence} no reference: every sentence needs at least one "
        "(a reference that is all padding counts as absent in a (B, R, L) tensor)."
    )


def _keep_mask(x: Tensor, valid_len: Tensor | None, pad_id: int | None, eos_id: int | None) -> Tensor | None:
    """Which positions are tokens, or None when every position is one."""
    keep: Tensor | None = None
    if valid_len is not None:
        keep = torch.arange(x.shape[-1], device=x.device) < valid_len.unsqueeze(-1)
    if eos_id is not None:
        before_eos = torch.cumsum(x == eos_id, dim=-1) == 0
        keep = before_eos if keep is None else keep & before_eos
    if pad_id is not None:
        not_pad = x != pad_id
        keep = not_pad if keep is None else keep & not_pad
    return keep


def public_entry(
    fn: Callable[..., Any] | None = None, *, engine_on_cpu: bool = False
) -> Callable[..., Any] | Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make ``fn`` a public entry point: its tensor work runs in inference mode on one intra-op thread, and
    ``torch.compile`` never traces it.

    The work is integer counting and float scoring that autograd never sees: in inference mode every torch call
    skips the autograd dispatch. The results are cloned out of inference mode (a handful of small tensors), so that
    callers may update them in place or use them beside tensors that need gradients; NumPy results (the CPU
    engine's) become tensors sharing their memory. A call's rows run on the threads
    of ``tensorbleu_metrics.functional.set_cpu_threads`` (one by default), never on torch's intra-op pool.

    Under ``torch.compile`` the call is a graph break: the function runs eagerly, as written, inside a compiled
    step. Its host reads, NumPy steps and data-dependent shapes would otherwise be traced and guarded on.

    ``engine_on_cpu``: on a CPU tensor or NumPy array (or statistics of CPU tensors) as first argument, ``fn`` runs
    the CPU engine and NumPy with no torch operation that could start a parallel region or keep autograd state (at
    most a dtype conversion or a sum of a few values): the call skips that set-up, which costs more than such a
    call's own work on small inputs.
    """
    if fn is None:
        return functools.partial(public_entry, engine_on_cpu=engine_on_cpu)

    def run(*args: Any, **kwargs: Any) -> Any:
        if engine_on_cpu and args and _on_host(args[0]):
            return _normal_tensors(fn(*args, **kwargs), clone=False)
        # one intra-op thread for the call's torch steps (OpenMP's setting is the calling thread's own): each parallel
        # region of torch's pool waits for all its threads, which on a busy machine means a scheduler slice each
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            if torch.is_inference_mode_enabled():
                return _normal_tensors(fn(*args, **kwargs), clone=False)
            with torch.inference_mode():
                out = fn(*args, **kwargs)
            return _normal_tensors(out)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)

    disabled: list[Callable[..., Any]] = []

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # nothing compiles before torch.compile has imported dynamo, whose import costs more than the whole package
        if "torch._dynamo" not in sys.modules:
            return run(*args, **kwargs)
        if not disabled:
            disabled.append(torch.compiler.disable(run))
        return disabled[0](*args, **kwargs)

    return wrapper


def _on_host(value: Any) -> bool:
    """Whether ``value`` is a NumPy array or a tensor whose values the host reads for free (a CPU tensor), or
    statistics (a named tuple) whose first field is one."""
    if isinstance(value, Tensor):
        return _device.host_reads_are_free(value.device)
    if isinstance(value, tuple) and hasattr(value, "_fields") and value:
        return _on_host(value[0])
    return isinstance(value, np.ndarray)


def _normal_tensors(out: Any, clone: bool = True) -> Any:
    """``out`` (a tensor or a NumPy array, or a dict or tuple of them and of plain values) with every NumPy array as
    a tensor sharing its memory (made here, outside inference mode: a normal tensor) and, if ``clone``, every
    inference tensor cloned. The CPU engine's results stay NumPy arrays up to here, so no torch operation runs on
    them."""
    if isinstance(out, np.ndarray):
        return torch.from_numpy(out)
    if isinstance(out, Tensor):
        return out.clone() if clone and out.is_inference() else out
    if isinstance(out, dict):
        return {key: _normal_tensors(value, clone) for key, value in out.items()}
    if isinstance(out, tuple):
        values = (_normal_tensors(value, clone) for value in out)
        return type(out)(*values) if hasattr(out, "_fields") else tuple(values)
    return out


def in_dtype(values: np.ndarray | Tensor, dtype: torch.dtype) -> np.ndarray | Tensor:
    """float64 (or already float32) scores in the result ``dtype``: NumPy's cast for the CPU engine's arrays where
    NumPy has the type (the public boundary makes them tensors), torch's otherwise (half precisions round as on
    accelerators)."""
    if isinstance(values, np.ndarray):
        if dtype == torch.float64 or (dtype == torch.float32 and values.dtype == np.float32):
            return values
        if dtype == torch.float32:
            return values.astype(np.float32)
        values = torch.from_numpy(values)
    return values.to(dtype)


def _align_host(
    x: np.ndarray, valid_len: np.ndarray | None, pad_id: int | None, eos_id: int | None, validate: bool, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Left-align the tokens of an int64 array (see ``_left_align``) in one compiled pass that also checks its values
    if ``validate``; the tokens returned may be ``x`` itself."""
    if valid_len is None and pad_id is None and eos_id is None:  # every position is a token: nothing moves
        if validate and x.size and int(x.min()) < 0:
            raise_negative_value(int(x[x < 0][0]), name)
        return x, np.full(x.shape[:-1], x.shape[-1], dtype=np.int64)
    tokens, lengths, bad = _engine.kernels("ngrams").align_rows(x, valid_len, pad_id, eos_id, validate)
    if bad >= 0:
        raise_negative_value(int(x.reshape(-1)[bad]), name)
    return tokens, lengths


def _host_batch(rows: HostRows) -> TokenBatch:
    """The CPU's ``TokenBatch`` from its rows: laid out by the engine, with the present references."""
    preds, pred_len = _align_host(rows.preds, rows.pred_valid, rows.pad_id, rows.eos_id, rows.validate, "preds")
    refs, ref_len = _align_host(rows.refs, rows.ref_valid, rows.pad_id, rows.eos_id, rows.validate, "target")
    present = rows.present
    if present is None and rows.padding_absent and rows.pad_id is not None:
        present = (rows.refs != rows.pad_id).any(-1)
    if present is None:
        present = np.ones(ref_len.shape, dtype=bool)
    else:
        if rows.validate and not present.any(-1).all():
            raise_no_reference(int(np.flatnonzero(~present.any(-1))[0]))
        ref_len *= present  # absent references have length 0 (ref_len is the kernel's own array)
    arrays = (preds, pred_len, refs, ref_len, present)
    return TokenBatch(*map(torch.from_numpy, arrays), arrays)


def _left_align(x: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor]:
    """Move the kept tokens of each row to its front; returns (tokens, lengths).

    Values past a length are unspecified (often the input's own padding: no copy is made where every row already
    keeps a prefix, which is checked first where that needs no synchronisation).
    """
    if keep is None:
        lengths = torch.full(x.shape[:-1], x.shape[-1], dtype=torch.int64, device=x.device)
        return x, lengths
    lengths = keep.sum(-1)
    if _device.host_reads_are_free(x.device):
        flags = keep.numpy()
        if not np.any(flags[..., 1:] > flags[..., :-1]):
            return x, lengths
    width = x.shape[-1]
    target_col = torch.where(keep, torch.cumsum(keep, dim=-1) - 1, width)
    out = torch.zeros((*x.shape[:-1], width + 1), dtype=x.dtype, device=x.device)
    out.scatter_(-1, target_col, x)
    return out[..., :width], lengths


def _int64(x: Tensor) -> Tensor:
    return x if x.dtype == torch.int64 else x.to(torch.int64)


def _normalise_preds(preds: Any, device: torch.device) -> tuple[Tensor, Tensor | None]:
    if isinstance(preds, Tensor):
        _check_int_tensor(preds, "preds")
        if preds.dim() != 2:
            raise ValueError(
                f"`preds` must be a (B, L) tensor or a sequence of token sequences, got {_describe(preds)}."
            )
        return _int64(preds), None
    if not _is_sequence(preds):
        raise TypeError(
            f"`preds` must be a (B, L) integer tensor or a sequence of token sequences, got {_describe(preds)}."
        )
    return _ragged_to_padded(preds, [f"preds[{i}]" for i in range(len(preds))], device)


def _normalise_target(
    target: Any, batch: int, device: torch.device, pad_id: int | None
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Returns (tokens (B, R, L'), or (B, L') for one reference each, valid lengths or None, reference-present mask
    (B, R), or None where every reference is present by construction, or, for a (B, R, L') tensor, present unless all
    padding)."""
    if isinstance(target, Tensor):
        _check_int_tensor(target, "target")
        if target.dim() in (2, 3):
            _check_same_batch(batch, target.shape[0])
        if target.dim() == 2:  # one reference each: the caller adds the reference dimension
            return _int64(target), None, None
        if target.dim() == 3:  # with pad_id, an all-padding reference is absent: the caller finds those
            return _int64(target), None, None
        raise ValueError(
            "`target` must be a (B, L) tensor (one reference each), a (B, R, L) tensor (up to R references each) "
            f"or a sequence of B sequences of references, got {_describe(target)}."
        )
    if not _is_sequence(target):
        raise TypeError(
            f"`target` must be an integer tensor or a sequence of B sequences of references, got {_describe(target)}."
        )
    _check_same_batch(batch, len(target))
    refs: list[Any] = []
    names: list[str] = []
    owners: list[int] = []
    slots: list[int] = []
    absent_rows: list[int] = []
    for i, item in enumerate(target):
        item = _from_numpy(item, f"target[{i}]")
        if isinstance(item, Tensor) and item.dim() == 2:
            # a (R, L) tensor of references follows the (B, R, L) rule: an all-padding row is absent
            _check_int_tensor(item, f"target[{i}]")
            rows: list[Any] = list(item.unbind(0))
            if pad_id is not None:
                absent = (item == pad_id).all(-1).tolist()
                absent_rows.extend(len(refs) + j for j, is_absent in enumerate(absent) if is_absent)
        elif isinstance(item, Tensor) and item.dim() == 1:
            rows = [item]
        elif _is_sequence(item) and all(isinstance(r, (Tensor, np.ndarray)) or _is_sequence(r) for r in item):
            rows = list(item)
        else:
            _raise_bad_references(item, i)
        for j, ref in enumerate(rows):
            refs.append(ref)
            names.append(f"target[{i}][{j}]")
            owners.append(i)
            slots.append(j)
    flat, lengths = _ragged_to_padded(refs, names, device)
    n_refs = max(slots, default=-1) + 1
    width = flat.shape[1]
    tokens = torch.zeros(batch, n_refs, width, dtype=torch.int64, device=device)
    valid_len = torch.zeros(batch, n_refs, dtype=torch.int64, device=device)
    present = torch.zeros(batch, n_refs, dtype=torch.bool, device=device)
    if refs:
        owner_t = torch.tensor(owners, dtype=torch.int64, device=device)
        slot_t = torch.tensor(slots, dtype=torch.int64, device=device)
        tokens[owner_t, slot_t] = flat
        valid_len[owner_t, slot_t] = lengths
        present[owner_t, slot_t] = True
        if absent_rows:
            gone = torch.tensor(absent_rows, dtype=torch.int64, device=device)
            present[owner_t[gone], slot_t[gone]] = False
    return tokens, valid_len, present


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer argument: a Python or NumPy integer (or a 0-d integer tensor), not a bool."""
    if isinstance(value, Tensor):
        return value.ndim == 0 and value.dtype in _INT_DTYPES and value.device.type != "meta"
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = _INT64_MIN,
    maximum: int | None = _INT64_MAX,
    allow_none: bool = False,
    what: str = "",
) -> int | None:
    """The package's one integer-argument check: ``value`` as a Python int, or a ``TypeError``/``ValueError`` naming
    ``name``.

    Python and NumPy integers (and 0-d integer tensors) are accepted, bools refused; the value must lie in
    ``[minimum, maximum]`` (the int64 range by default, so it fits a token tensor). ``what`` says what the
    integer stands for in the messages.

    Example:
        >>> import numpy as np
        >>> check_int(np.int64(3), "n_gram", minimum=1)
        3
        >>> check_int(0, "n_gram", minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: `n_gram` must be >= 1, got 0.
    """
    if value is None and allow_none:
        return None
    if not is_int(value):
        kind = "an int or None" if allow_none else "an int"
        raise TypeError(f"`{name}` must be {kind}{what}, got {value!r}.")
    number = int(value)
    low = _INT64_MIN if minimum is None else minimum
    high = _INT64_MAX if maximum is None else maximum
    if not low <= number <= high:
        if not _INT64_MIN <= number <= _INT64_MAX or (low, high) == (_INT64_MIN, _INT64_MAX):
            rule = "lie in the int64 range"
        elif high == _INT64_MAX:
            rule = f"be >= {low}"
        elif low == _INT64_MIN:
            rule = f"be <= {high}"
        else:
            rule = f"lie in [{low}, {high}]"
        raise ValueError(f"`{name}` must {rule}{what}, got {value!r}.")
    return number


def check_special_ids(pad_id: Any, eos_id: Any) -> tuple[int | None, int | None]:
    """``pad_id`` and ``eos_id`` must be int64-range integers (any sign; NumPy integers too) or None.

    Returns:
        Both as Python ints (or None).
    """
    return check_int(pad_id, "pad_id", allow_none=True), check_int(eos_id, "eos_id", allow_none=True)


def check_stats(stats: Any, kind: type) -> None:
    """``stats`` must be a ``kind`` (a statistics named tuple) of integer tensors, or a ``TypeError`` naming it."""
    if not isinstance(stats, kind):
        raise TypeError(
            f"`stats` must be a {kind.__name__} (as the *_stats functions return), got {type(stats).__name__}; "
            f"a plain tuple of its fields {kind._fields} becomes one with {kind.__name__}(*fields)."
        )
    for name, field in zip(kind._fields, stats, strict=True):
        if not isinstance(field, Tensor) or field.dtype not in _INT_DTYPES:
            raise TypeError(f"`stats.{name}` must be an integer tensor, got {_describe(field)}.")


def check_validate(validate: Any) -> None:
    """``validate`` must be a bool."""
    if not isinstance(validate, bool):
        raise TypeError(f"`validate` must be a bool, got {validate!r}.")


def check_dtype(dtype: Any) -> None:
    """The ``dtype`` of a result must be a floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype!r}.")


def _check_same_batch(batch: int, n_target: int) -> None:
    if n_target != batch:
        raise ValueError(f"`preds` has {batch} sentences but `target` has {n_target}: they must match.")


def normalise_inputs(
    preds: Any, target: Any, pad_id: int | None, eos_id: int | None, validate: bool = True, *, layout: bool = True
) -> TokenBatch | HostRows:
    """Validate ``preds``/``target`` in any accepted form and return the left-aligned ``TokenBatch``.

    With ``validate=False`` the values are trusted (types and shapes are still checked): no search for negative
    IDs or sentences without a reference, so no host synchronisation. With ``layout=False``, CPU inputs come back
    as ``HostRows``, for an engine call that lays them out itself (and checks their values if ``validate``).
    """
    check_validate(validate)
    pad_id, eos_id = check_special_ids(pad_id, eos_id)
    preds, target = _from_numpy(preds, "preds"), _from_numpy(target, "target")
    device = _find_device(preds, target)
    pred_tokens, pred_valid = _normalise_preds(preds, device)
    batch = pred_tokens.shape[0]
    if batch == 0:
        raise ValueError("`preds` is an empty batch: at least one sentence is needed.")
    ref_tokens, ref_valid, present = _normalise_target(target, batch, device, pad_id)
    if ref_tokens.device != pred_tokens.device:
        ref_tokens = ref_tokens.to(pred_tokens.device)
        ref_valid = None if ref_valid is None else ref_valid.to(pred_tokens.device)
        present = None if present is None else present.to(pred_tokens.device)
    one_each = ref_tokens.dim() == 2
    padding_absent = not one_each and isinstance(target, Tensor)
    if _device.host_reads_are_free(pred_tokens.device):
        refs_np = ref_tokens.numpy()
        if one_each:
            refs_np = refs_np[:, None, :]  # a view: no torch operation on the CPU's path
        if refs_np.shape[1] == 0:
            raise_no_reference(0)
        valid = [None if v is None else v.numpy() for v in (pred_valid, ref_valid)]
        present_np = None if present is None else present.numpy()
        rows = HostRows(
            pred_tokens.numpy(), valid[0], refs_np, valid[1], present_np, padding_absent, pad_id, eos_id, validate
        )
        return rows if not layout else _host_batch(rows)
    if one_each:
        ref_tokens = ref_tokens.unsqueeze(1)
    if ref_tokens.shape[1] == 0:
        raise_no_reference(0)
    if padding_absent and pad_id is not None:
        present = (ref_tokens != pad_id).any(-1)
    all_present = present is None
    if all_present:
        present = torch.ones(ref_tokens.shape[:2], dtype=torch.bool, device=ref_tokens.device)
    if validate:
        _check_values(pred_tokens, ref_tokens, present, pad_id, eos_id, all_present)  # one synchronisation
    preds_aligned, pred_len = _left_align(pred_tokens, _keep_mask(pred_tokens, pred_valid, pad_id, eos_id))
    refs_aligned, ref_len = _left_align(ref_tokens, _keep_mask(ref_tokens, ref_valid, pad_id, eos_id))
    if not all_present:
        ref_len = ref_len.mul_(present)  # absent references have length 0 (ref_len is _left_align's own tensor)
    return TokenBatch(preds_aligned, pred_len, refs_aligned, ref_len, present)


def normalise_preds(preds: Any, pad_id: int | None, eos_id: int | None, validate: bool = True) -> tuple[Tensor, Tensor]:
    """Validate ``preds`` alone (metrics comparing samples among themselves) and left-align them.

    Returns the ``(B, L)`` int64 tokens, valid in ``[0, length)``, and the ``(B,)`` lengths. With
    ``validate=False`` the values are not searched for negative IDs (no host synchronisation).
    """
    check_validate(validate)
    pad_id, eos_id = check_special_ids(pad_id, eos_id)
    preds = _from_numpy(preds, "preds")
    tokens, valid = _normalise_preds(preds, _find_device(preds, None))
    if tokens.shape[0] == 0:
        raise ValueError("`preds` is an empty batch: at least one sentence is needed.")
    if _device.host_reads_are_free(tokens.device):
        valid_np = None if valid is None else valid.numpy()
        aligned, lengths = _align_host(tokens.numpy(), valid_np, pad_id, eos_id, validate, "preds")
        return torch.from_numpy(aligned), torch.from_numpy(lengths)
    if validate:
        _check_ids(tokens, "preds", pad_id, eos_id)
    return _left_align(tokens, _keep_mask(tokens, valid, pad_id, eos_id))
