"""The Table I task registry agrees with the envs; collection refuses datasets it does not own."""

import pytest

from rise import tasks as T
from rise.cli import main
from rise.collect import collect
from rise.envs import ENVS
from rise.paths import task_datasets


@pytest.mark.parametrize("name", list(T.TASKS))
def test_every_task_names_a_real_env_its_sources_and_regions(name):
    task = T.get(name)
    env = ENVS[task.env]
    assert task.data_type in ("coverage", "suboptimal")
    assert task.sources[0] == T.EXPERT and len(task.nonexpert) >= 1
    assert task.eval_region in env.regions
    for d in task.data:
        owner = T.get(d.owner) if d.owner else task
        assert d.source in ENVS[owner.env].sources, (name, d.source)
        assert d.episodes >= 1
        if d.owner:  # a shared dataset: the owner collects it with the same size
            assert T.get(d.owner).data[owner.sources.index(d.source)].episodes == d.episodes


def test_scaled_episodes_has_a_floor():
    assert T.scaled_episodes(200, 0.5, 2) == 100
    assert T.scaled_episodes(10, 0.015, 2) == 2
    assert T.scaled_episodes(224, 0.015, 2) == 3


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="mini_square_peg"):
        T.get("no_such_task")


def test_collect_refuses_a_source_the_task_does_not_have(capsys):
    code = main(["collect", "--task", "mini_square_peg", "--obs", "lowdim",
                 "--source", "tipping", "--out", "unused.hdf5", "--scale", "smoke"])  # fmt: skip
    assert code == 2 and "has no such dataset" in capsys.readouterr().err


def test_datasets_are_listed_expert_first():
    files = task_datasets("mini_square_peg", "lowdim")
    assert list(files)[0] == "expert" and files["expert"].endswith("expert.hdf5")


OWNED = [(t, d.source) for t, task in T.TASKS.items() for d in task.data if not d.owner]


@pytest.mark.parametrize("task, source", OWNED)
def test_same_seed_writes_byte_identical_datasets(tmp_path, task, source):
    """Every dataset a task collects, twice with seed 0 and once with seed 1 (2 episodes)."""
    files = []
    for i, seed in enumerate((0, 0, 1)):
        out = tmp_path / f"{i}.hdf5"
        collect(task=task, env_name=T.get(task).env, source=source, episodes=2, seed=seed,
                cameras=False, out=str(out))  # fmt: skip
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert files[0] != files[2]
