"""``integrations.trl.repetition_penalty_reward`` against TRL's own ``get_repetition_penalty_reward``, called here.

The values must be equal to the bit (signed zeros included) on the same ``completion_ids``: completions shorter
than ``ngram_size``, empty ones, several orders and penalties, token IDs beyond the engine's direct map.
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorbleu_metrics.integrations.trl import RepetitionPenaltyReward, repetition_penalty_reward

trl_rewards = pytest.importorskip("trl.rewards")

PENALTIES = (-1.0, -0.5, -2.5, -3, 0, 0.0, -0.0, -1e-3, -1e300)


def bits(values):
    """Floats as their exact text (``-0.0`` differs from ``0.0``)."""
    return [float(v).hex() for v in values]


def assert_same(ngram_size, max_penalty, completion_ids):
    theirs = trl_rewards.get_repetition_penalty_reward(ngram_size=ngram_size, max_penalty=max_penalty)
    ours = repetition_penalty_reward(ngram_size=ngram_size, max_penalty=max_penalty)
    expected = theirs(completion_ids)
    got = ours(prompts=None, completions=None, completion_ids=completion_ids, trainer_state=None)
    assert all(type(x) is float for x in got)
    assert bits(got) == bits(expected), (ngram_size, max_penalty, completion_ids)


@settings(max_examples=150, deadline=None)
@given(
    completion_ids=st.lists(st.lists(st.integers(0, 4), max_size=24), max_size=10),
    ngram_size=st.integers(1, 6),
    max_penalty=st.one_of(st.sampled_from(PENALTIES), st.floats(-10.0, 0.0)),
)
def test_equals_trl_on_random_completions(completion_ids, ngram_size, max_penalty):
    assert_same(ngram_size, max_penalty, completion_ids)


@settings(max_examples=40, deadline=None)
@given(
    completion_ids=st.lists(
        st.lists(st.sampled_from([0, 1, 2**22, 2**31 - 1, 2**40, 2**63 - 1]), max_size=12), min_size=1, max_size=6
    ),
    ngram_size=st.integers(1, 4),
)
def test_equals_trl_with_ids_beyond_the_direct_map(completion_ids, ngram_size):
    assert_same(ngram_size, -1.0, completion_ids)


@pytest.mark.parametrize("ngram_size", [1, 2, 3, 5])
def test_equals_trl_on_long_completions(ngram_size):
    rng = random.Random(ngram_size)
    completion_ids = []
    for i in range(64):
        vocab = rng.choice([3, 20, 32000])
        length = rng.choice([0, 1, ngram_size - 1, ngram_size, rng.randrange(600)])
        ids = [rng.randrange(vocab) for _ in range(length)]
        if i % 3 == 0 and ids:
            ids = (ids[: rng.randrange(1, 8)] * 100)[:length]  # a looping completion
        completion_ids.append(ids + [2] * (i % 2))  # TRL keeps the EOS, and counts it
    for max_penalty in (-1.0, -0.3):
        assert_same(ngram_size, max_penalty, completion_ids)


def test_trl_docstring_example_and_edge_batches():
    reward = repetition_penalty_reward(ngram_size=2, max_penalty=-1.0)
    assert reward(completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5]]) == [0.0, -0.75]
    assert reward(completion_ids=[]) == []
    assert bits(reward(completion_ids=[[], [7]])) == bits([0.0, 0.0])  # all shorter than ngram_size


def test_other_id_containers_equal_lists():
    lists = [[1, 2, 1, 2, 1], [3, 3, 3], []]
    expected = trl_rewards.get_repetition_penalty_reward(2, -1.0)(lists)
    reward = repetition_penalty_reward(2)
    assert reward(completion_ids=[tuple(x) for x in lists]) == expected
    assert reward(completion_ids=[np.array(x, dtype=np.int64) for x in lists]) == expected
    assert reward(completion_ids=[[np.int32(t) for t in x] for x in lists]) == expected


def test_name_pickling_and_repr():
    reward = repetition_penalty_reward(ngram_size=4, max_penalty=-0.5)
    assert reward.__name__ == trl_rewards.get_repetition_penalty_reward().__name__ == "repetition_penalty_reward"
    assert repetition_penalty_reward(name="rep").__name__ == "rep"
    clone = pickle.loads(pickle.dumps(reward))
    assert isinstance(clone, RepetitionPenaltyReward)
    ids = [[1, 2, 3, 4, 1, 2, 3, 4, 1], [5, 6]]
    assert clone(completion_ids=ids) == reward(completion_ids=ids)
    assert "ngram_size=4" in repr(reward) and "max_penalty=-0.5" in repr(reward)


def test_option_errors():
    with pytest.raises(ValueError, match="positive"):
        trl_rewards.get_repetition_penalty_reward(max_penalty=0.5)
    with pytest.raises(ValueError, match="must not be positive"):
        repetition_penalty_reward(max_penalty=0.5)
    with pytest.raises(ValueError, match="ngram_size"):
        repetition_penalty_reward(ngram_size=0)  # TRL's own fails at the call (a division by zero)
    with pytest.raises(TypeError, match="ngram_size"):
        repetition_penalty_reward(ngram_size=2.0)
    with pytest.raises(TypeError, match="max_penalty"):
        repetition_penalty_reward(max_penalty="-1")
    with pytest.raises(TypeError, match="name"):
        repetition_penalty_reward(name="")


def test_call_errors_name_the_completion():
    reward = repetition_penalty_reward()
    with pytest.raises(ValueError, match="completion_ids"):
        reward(prompts=["p"], completions=["c"])
    with pytest.raises(TypeError, match="completion_ids"):
        reward(completion_ids="1 2 3")
    with pytest.raises(ValueError, match=r"completion_ids\[1\].*negative"):
        reward(completion_ids=[[1, 2, 3], [4, -1, 5]])
    with pytest.raises(ValueError, match=r"completion_ids\[0\].*negative"):
        reward(completion_ids=[[1, -7, 3]])
    with pytest.raises(TypeError, match=r"completion_ids\[1\]"):
        reward(completion_ids=[[1, 2, 3], [4, 1.5, 5]])
