"""Group rewards under real ``torch.distributed`` (gloo, 2 CPU processes), laid out as TRL lays them out.

TRL's ``RepeatSampler`` puts the ``num_generations`` completions of one prompt next to each other and Accelerate
shards that order over the processes, so a group can be split between them; each process then calls the reward on
its own slice. ``diversity_reward`` must give every process exactly the values one process gets for the whole
batch (the concatenation of the slices in rank order), whatever the split: uneven slices, an empty one.
"""

from __future__ import annotations

import random

import pytest
from corpus_utils import run_on_gloo

from tensorbleu_metrics.integrations.trl import bleu_reward, diversity_reward

WORLD_SIZE = 2
EOS = 2

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _completions(rng: random.Random, n: int) -> list[list[int]]:
    """Short token lists over a small vocabulary (so completions share n-grams), some ending with EOS."""
    return [[rng.randrange(3, 9) for _ in range(rng.randint(2, 8))] + [EOS] * rng.randint(0, 1) for _ in range(n)]


def _every_group_split(seed: int, n_prompts: int, per_rank: int, chat: bool) -> dict:
    """Each prompt's group of ``2 * per_rank`` completions, half on each rank, in a shuffled order per rank."""
    rng = random.Random(seed)
    texts = [f"w{i} w{i + 1} =" for i in range(n_prompts)]
    prompts = [[{"role": "user", "content": t}] for t in texts] if chat else texts
    ranks = []
    for _ in range(WORLD_SIZE):
        rows = [p for p in prompts for _ in range(per_rank)]
        rng.shuffle(rows)
        ranks.append({"prompts": rows, "completion_ids": _completions(rng, len(rows))})
    return {"ranks": ranks}


def _trl_layout(seed: int, n_prompts: int, num_generations: int, per_device: int) -> dict:
    """The slices TRL's sampler and Accelerate's sharding give each process for one generation batch."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler
    from trl.trainer.utils import RepeatSampler

    rng = random.Random(seed)
    texts = [f"p{i} =" for i in range(n_prompts)]
    sampler = RepeatSampler(texts, mini_repeat_count=num_generations, batch_size=n_prompts, seed=seed)
    ranks = []
    for rank in range(WORLD_SIZE):
        shard = BatchSamplerShard(BatchSampler(sampler, per_device, drop_last=False), WORLD_SIZE, rank)
        first = next(iter(shard))  # the first step's rows of this process
        ranks.append({"prompts": [texts[i] for i in first], "completion_ids": _completions(rng, len(first))})
    return {"ranks": ranks}


def _uneven(seed: int, sizes: tuple[int, ...]) -> dict:
    """Slices of different sizes (one may be empty) drawn from three prompts."""
    rng = random.Random(seed)
    ranks = []
    for size in sizes:
        rows = [rng.choice(["a =", "b =", "c ="]) for _ in range(size)]
        ranks.append({"prompts": rows, "completion_ids": _completions(rng, size)})
    return {"ranks": ranks}


# built by the fixture (the TRL layout imports TRL), never when the spawned processes import this module
def _scenarios() -> dict:
    return {
        "trl_layout": _trl_layout(6, n_prompts=3, num_generations=4, per_device=6),
        "every_group_split": _every_group_split(0, n_prompts=4, per_rank=2, chat=False),
        "every_group_split_chat": _every_group_split(1, n_prompts=3, per_rank=3, chat=True),
        "uneven": _uneven(2, (5, 9)),
        "rank0_empty": _uneven(3, (0, 7)),
        "all_empty": _uneven(4, (0, 0)),
        "options": {**_uneven(5, (4, 6)), "kwargs": {"n_gram": 2, "smoothing": "method2"}},
        "bad_ids_on_rank1": {
            "ranks": [
                {"prompts": ["a =", "a ="], "completion_ids": [[5, 6, 7], [5, 6]]},
                {"prompts": ["a =", "a ="], "completion_ids": [[5, 6, 7], [5, -4]]},
            ]
        },
    }


GOOD = ["trl_layout", "every_group_split", "every_group_split_chat", "uneven", "rank0_empty", "all_empty", "options"]


def _run(rank: int, scenario: dict) -> dict:
    """What one process's reward returns for its slice: gathered, local only (``gather_groups=False``), or the
    error it raised."""
    mine = scenario["ranks"][rank]
    kwargs = scenario.get("kwargs", {})
    out: dict = {}
    for key, gather in (("gathered", True), ("local", False)):
        reward = diversity_reward(eos_token_id=EOS, gather_groups=gather, **kwargs)
        try:
            out[key] = reward(prompts=mine["prompts"], completions=None, completion_ids=mine["completion_ids"])
        except Exception as err:  # recorded for the parent, which checks that every rank raised
            out[key] = (type(err).__name__, str(err))
    if rank == 0:  # a reward without groups scores each call alone: a call on one process must not wait
        out["bleu"] = bleu_reward(eos_token_id=EOS)(
            prompts=None, completions=None, completion_ids=[[5, 6, 7]], reference=[[5, 6, 7]]
        )
    return out


@pytest.fixture(scope="module")
def scenarios() -> dict:
    return _scenarios()


@pytest.fixture(scope="module")
def gloo_results(scenarios, tmp_path_factory) -> list[dict]:
    return run_on_gloo(_run, scenarios, WORLD_SIZE, tmp_path_factory.mktemp("trl_gloo"))


def _whole(scenario: dict, **kwargs) -> tuple[list, list[int]]:
    """One process scoring the concatenation of the slices; and where each rank's slice starts."""
    prompts = [p for part in scenario["ranks"] for p in part["prompts"]]
    ids = [c for part in scenario["ranks"] for c in part["completion_ids"]]
    reward = diversity_reward(eos_token_id=EOS, **scenario.get("kwargs", {}), **kwargs)
    starts = [0]
    for part in scenario["ranks"]:
        starts.append(starts[-1] + len(part["prompts"]))
    return reward(prompts=prompts, completions=None, completion_ids=ids), starts


@pytest.mark.parametrize("name", GOOD)
def test_each_rank_gets_the_single_process_values(scenarios, gloo_results, name):
    scenario = scenarios[name]
    whole, starts = _whole(scenario)
    for rank in range(WORLD_SIZE):
        assert gloo_results[rank][name]["gathered"] == whole[starts[rank] : starts[rank + 1]]


@pytest.mark.parametrize("name", ["every_group_split", "every_group_split_chat", "uneven"])
def test_split_groups_scored_locally_differ(scenarios, gloo_results, name):
    """The case the gather fixes: scored on its own slice, a split group gives other values (as before the fix);
    ``gather_groups=False`` keeps that behaviour on request."""
    scenario = scenarios[name]
    whole, starts = _whole(scenario)
    for rank in range(WORLD_SIZE):
        part = scenario["ranks"][rank]
        local = diversity_reward(eos_token_id=EOS)(
            prompts=part["prompts"], completions=None, completion_ids=part["completion_ids"]
        )
        assert gloo_results[rank][name]["local"] == local
        assert local != whole[starts[rank] : starts[rank + 1]]


def test_trl_layout_splits_a_group(scenarios):
    """The slices TRL's sampler and Accelerate's sharding make (G=4, 6 rows per process) split the second prompt's
    group, as the parametrized test above needs."""
    rank0, rank1 = (part["prompts"] for part in scenarios["trl_layout"]["ranks"])
    assert len(rank0) == len(rank1) == 6
    assert len(set(rank0) & set(rank1)) == 1


def test_an_error_on_one_rank_reaches_every_rank(gloo_results):
    """A bad slice fails on its rank with its own message, and the other rank raises too instead of waiting."""
    error1 = gloo_results[1]["bad_ids_on_rank1"]["gathered"]
    error0 = gloo_results[0]["bad_ids_on_rank1"]["gathered"]
    assert error1[0] == "ValueError" and "completion_ids[1]" in error1[1] and "-4" in error1[1]
    assert error0[0] == "RuntimeError" and "rank 1" in error0[1] and "completion_ids[1]" in error0[1]


def test_rewards_without_groups_do_not_gather(gloo_results):
    assert gloo_results[0]["every_group_split"]["bleu"] == [1.0]
