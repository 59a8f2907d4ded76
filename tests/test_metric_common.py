"""The checks every ``Metric`` class of the package shares, in one process, over the specs of ``metric_harness``:
class vs functional vs oracle over several updates, failed updates, dtypes, reset, copies, checkpoints, merging,
collections, plots. What only one metric does is tested in that metric's module.
"""

from __future__ import annotations

import io
import pickle
import warnings

import pytest
import torch
from metric_harness import (
    BAD_INPUTS,
    BIG,
    SPECS,
    VARIANTS,
    MetricSpec,
    assert_matches,
    assert_same_result,
    assert_same_states,
    check_accumulation,
    expected,
    fed,
    flat,
    snapshot,
)
from torchmetrics import Metric, MetricCollection

from tensorbleu_metrics._metric_base import _TokenIDMetric

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # NLTK's zero counts, compute before update

ALL = pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
TOKEN_SPECS = [spec for spec in SPECS.values() if spec.token_ids]
SENTENCES = {"return_sentence_level_score": True}


def _head(spec: MetricSpec, n: int) -> list[tuple[str, int, int]]:
    """The accumulation's batches covering its first ``n`` sentences or more; with their number."""
    chunks = []
    for chunk in spec.chunks():
        chunks.append(chunk)
        if chunk[2] >= n:
            break
    return chunks


def _end(chunks: list) -> int:
    return chunks[-1][2]


# ------------------------------------------------------------------------------------------------ the class
@ALL
def test_class_constants_and_states(spec: MetricSpec) -> None:
    cls = spec.metric_class
    assert issubclass(cls, _TokenIDMetric)
    assert cls.is_differentiable is False and cls.higher_is_better is True and cls.full_state_update is False
    assert cls.plot_lower_bound == 0.0 and cls.plot_upper_bound == 1.0
    for name in ("forward", "_apply", "_sync_dist", "_wrap_update", "_wrap_compute"):  # the base's, not copies
        assert name not in vars(cls), name
    metric = spec.make(**SENTENCES)
    for name, value in metric.metric_state.items():
        if isinstance(value, list):
            assert metric._reductions[name].__name__ == "dim_zero_cat", name
        else:
            assert value.dtype in (torch.int64, torch.float64), name
            assert metric._reductions[name].__name__ == "dim_zero_sum", name


@ALL
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pad_id": 0.5}, TypeError),
        ({"pad_id": "0"}, TypeError),
        ({"eos_id": "2"}, TypeError),
        ({"return_sentence_level_score": 1}, TypeError),
        ({"validate": 1}, TypeError),
        ({"sync_on_compute": "yes"}, ValueError),
        ({"not_an_option": 1}, ValueError),
    ],
)
def test_invalid_common_options(spec: MetricSpec, kwargs: dict, error: type) -> None:
    with pytest.raises(error, match="validate" if "validate" in kwargs else None):
        spec.make(**kwargs)


# ------------------------------------------------------------------------------------------------ values
@pytest.mark.parametrize(("spec", "options"), VARIANTS)
def test_accumulated_equals_functional_and_oracle(spec: MetricSpec, options: dict, device: torch.device) -> None:
    check_accumulation(spec, options, device)


@ALL
def test_compute_before_update(spec: MetricSpec) -> None:
    metric = spec.make(**SENTENCES)
    with pytest.warns(UserWarning, match="before the ``update``"):
        result = metric.compute()
    assert_matches(spec, result, [], SENTENCES)


@pytest.mark.parametrize("spec", TOKEN_SPECS, ids=[s.name for s in TOKEN_SPECS])
def test_validate_false(spec: MetricSpec) -> None:
    """``validate=False`` as in the functional API: the same result for valid batches; invalid values are taken
    (finite results) instead of raising, so that an update on an accelerator waits for no host read."""
    preds = torch.tensor([[1, 2, 3, 4, 0], [5, 6, 7, 0, 0]])
    target = torch.tensor([[[1, 2, 3, 4, 0], [0, 0, 0, 0, 0]], [[5, 6, 8, 0, 0], [5, 6, 7, 9, 0]]])
    checked, trusted = spec.make(), spec.make(validate=False)
    checked.update(preds, target)
    trusted.update(preds, target)
    assert_same_result(trusted.compute(), checked.compute())
    bad = torch.tensor([[1, -7, 3, 4, 0], [5, 6, 7, -(2**62), 0]])
    with pytest.raises(ValueError, match="negative token ID"):
        checked.update(bad, target)
    trusted.update(bad, target)
    assert all(bool(torch.isfinite(v).all()) for v in flat(trusted.compute()).values())


# ------------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("use_forward", [False, True], ids=["update", "forward"])
@pytest.mark.parametrize(("spec", "preds", "target", "error", "match"), BAD_INPUTS)
def test_failed_update_leaves_state_untouched(spec, preds, target, error, match, use_forward: bool) -> None:
    chunks = list(spec.chunks())
    metric = spec.make(**SENTENCES)
    metric.update(*spec.batch(*chunks[0]))
    metric(*spec.batch(*chunks[1]))
    before, count = snapshot(metric), metric.update_count
    with pytest.raises(error, match=match):
        (metric if use_forward else metric.update)(preds, target)
    assert_same_states(before, snapshot(metric))
    assert metric.update_count == count
    for chunk in chunks[2:]:  # and it carries on exactly
        metric.update(*spec.batch(*chunk))
    assert_matches(spec, metric.compute(), range(_end(chunks)), SENTENCES)


# ------------------------------------------------------------------------------------------------ dtypes
def _big(spec: MetricSpec) -> Metric:
    """Counts past float16's range and float32's integer precision, so any float cast of a state would show."""
    metric = fed(spec, _head(spec, 6), **SENTENCES)
    for name, value in metric.metric_state.items():
        if isinstance(value, torch.Tensor) and value.dtype == torch.int64 and not name.startswith("_options_"):
            setattr(metric, name, value + BIG)
    return metric


@ALL
@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda m: m.half(), id="half"),
        pytest.param(lambda m: m.bfloat16(), id="bfloat16"),
        pytest.param(lambda m: m.to(torch.bfloat16), id="to-bfloat16"),
        pytest.param(lambda m: m.to(torch.float16), id="to-float16"),
        pytest.param(lambda m: m.to(torch.float64), id="to-float64"),
        pytest.param(lambda m: m.set_dtype(torch.half), id="set_dtype-half"),
        pytest.param(lambda m: m.set_dtype(torch.bfloat16), id="set_dtype-bfloat16"),
        pytest.param(lambda m: m.type(torch.float16), id="type"),
    ],
)
def test_dtype_conversions_keep_states_exact(spec: MetricSpec, convert) -> None:
    reference = _big(spec)
    before, result = snapshot(reference), reference.compute()
    metric = _big(spec)
    metric.compute()  # a cached result must not be rounded either
    metric = convert(metric)
    assert_same_states(before, snapshot(metric))
    for name, default in metric._defaults.items():
        if isinstance(default, torch.Tensor):
            assert default.dtype == before[name].dtype, name
    assert_same_result(metric.compute(), result)
    metric.reset()
    assert_same_states(snapshot(metric), snapshot(spec.make(**SENTENCES)))


@ALL
def test_low_precision_model_holding_the_metric(spec: MetricSpec) -> None:
    model = torch.nn.Module()
    model.linear = torch.nn.Linear(2, 2)
    model.metric = spec.make(**SENTENCES)
    fresh = snapshot(model.metric)
    chunks = _head(spec, 8)
    for convert in (lambda m: m.half(), lambda m: m.to(torch.bfloat16), lambda m: m.float()):
        model = convert(model)
        for chunk in chunks:
            model.metric.update(*spec.batch(*chunk))
        assert_matches(spec, model.metric.compute(), range(_end(chunks)), SENTENCES)
        for name, value in snapshot(model.metric).items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == fresh[name].dtype, name
            elif value:
                assert value[0].dtype == torch.float64, name
        model.metric.reset()
    assert model.linear.weight.dtype == torch.float32


@ALL
def test_to_cpu_and_compute_on_cpu(spec: MetricSpec) -> None:
    chunks = _head(spec, 3)
    metric = fed(spec, chunks, compute_on_cpu=True, **SENTENCES).to("cpu")
    assert metric.device.type == "cpu"
    assert all(s.device.type == "cpu" for s in metric.sentence_scores)
    assert_matches(spec, metric.compute(), range(_end(chunks)), SENTENCES)


# ------------------------------------------------------------------------------------------------ state
@ALL
def test_reset(spec: MetricSpec) -> None:
    metric = fed(spec, _head(spec, 3), **SENTENCES)
    metric.reset()
    assert metric.update_count == 0 and metric.sentence_scores == []
    assert_same_states(snapshot(metric), snapshot(spec.make(**SENTENCES)))
    chunks = _head(spec, 2)
    for chunk in chunks:
        metric.update(*spec.batch(*chunk))
    assert_matches(spec, metric.compute(), range(_end(chunks)), SENTENCES)


@ALL
def test_clone_and_pickle_are_independent(spec: MetricSpec) -> None:
    chunks = list(spec.chunks())
    metric = fed(spec, chunks[:2], **SENTENCES)
    n = _end(chunks[:2])
    for copy in (metric.clone(), pickle.loads(pickle.dumps(metric))):
        assert_matches(spec, copy.compute(), range(n), SENTENCES)
        for chunk in chunks[2:]:  # the update/compute wrappers are restored
            copy.update(*spec.batch(*chunk))
        assert_matches(spec, copy.compute(), range(_end(chunks)), SENTENCES)
    assert_matches(spec, metric.compute(), range(n), SENTENCES)


@ALL
def test_state_dict(spec: MetricSpec) -> None:
    chunks = list(spec.chunks())
    metric = fed(spec, chunks[:2], **SENTENCES)
    # not persistent by default: a module holding the metric saves no metric state
    assert metric.state_dict() == {}
    holder = torch.nn.Module()
    holder.metric = metric
    assert list(holder.state_dict()) == []
    metric.persistent(True)
    sd = metric.state_dict()
    assert set(sd) == {name for name in metric._defaults if not name.startswith("_options_")}
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    fresh = spec.make(**SENTENCES)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert_same_states(snapshot(fresh), snapshot(metric))
    assert_matches(spec, fresh.compute(), range(_end(chunks[:2])), SENTENCES)
    for chunk in chunks[2:]:
        fresh.update(*spec.batch(*chunk))
    assert_matches(spec, fresh.compute(), range(_end(chunks)), SENTENCES)


@pytest.mark.skipif(
    not hasattr(Metric, "merge_state"), reason="Metric.merge_state arrived after torchmetrics 1.3 (the declared floor)"
)
@ALL
def test_merge_state(spec: MetricSpec) -> None:
    chunks = list(spec.chunks())
    first, rest = _end(chunks[:2]), _end(chunks)
    a = fed(spec, chunks[:2], **SENTENCES)
    b = fed(spec, chunks[2:], **SENTENCES)
    a.merge_state(b)
    # torchmetrics puts the incoming sentences first
    assert_matches(spec, a.compute(), [*range(first, rest), *range(first)], SENTENCES)
    # a dict of states too
    c, d = fed(spec, chunks[:2]), fed(spec, chunks[2:])
    c.merge_state(d.metric_state)
    assert_matches(spec, c.compute(), range(rest), {})
    # never states that count other things
    (option,) = spec.other_options
    other = fed(spec, chunks[:1], **spec.other_options)
    with pytest.raises(ValueError, match=option):
        c.merge_state(other)
    with pytest.raises(ValueError, match="other options"):
        c.merge_state(other.metric_state)


def _member(out: dict, name: str, keys: list[str], prefix: str) -> object:
    """One member's result in a collection's flat output (a dict result's keys named after the member: the members'
    keys are the same)."""
    if keys == ["corpus"]:
        return out[prefix + name]
    return {key: out[f"{prefix}{name}_{key}"] for key in (k.removeprefix("corpus/") for k in keys)}


@ALL
def test_metric_collection(spec: MetricSpec) -> None:
    members = {"plain": {}, "other": spec.other_options, "twin": {}}  # "twin" shares a compute group with "plain"
    collection = MetricCollection({name: spec.make(**options) for name, options in members.items()}, prefix="val/")
    keys = list(expected(spec, [0], {}))
    chunks = list(spec.chunks())
    for form, start, end in chunks:
        out = collection(*spec.batch(form, start, end))
        for name, options in members.items():
            assert_matches(spec, _member(out, name, keys, "val/"), range(start, end), options, name)
    result = collection.compute()
    for name, options in members.items():
        assert_matches(spec, _member(result, name, keys, "val/"), range(_end(chunks)), options, name)
    collection.reset()
    collection.update(*spec.batch(*chunks[2]))
    result = collection.compute()
    for name, options in members.items():
        assert_matches(spec, _member(result, name, keys, "val/"), range(*chunks[2][1:]), options, name)


# ------------------------------------------------------------------------------------------------ plot
@ALL
def test_plot(spec: MetricSpec) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for options in ({}, SENTENCES):
        metric = spec.make(**options)
        values = [metric(*spec.batch(*chunk)) for chunk in spec.chunks()]
        fig, ax = metric.plot(values)
        assert fig is not None and ax is not None
        fig, ax = metric.plot()
        assert fig is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plt.close("all")
