"""Tasks: the rows of Table I. A task is an env, the datasets it learns from, and the region
its evaluation starts from.

Several tasks can share one env (square-peg coverage and square-peg suboptimal) or one
dataset (square-peg and square-hook learn from the same play data, collected once: the
hook task names the peg task as the dataset's `owner`). Dataset sizes are Table IV's; the
`collect` section of params.yaml scales them (`episodes_scale`, `min_episodes`).

Pure data (no MuJoCo import), so Snakemake and the DVC generator can read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPERT = "expert"


@dataclass(frozen=True)
class Data:
    """One dataset of a task: an env data source (`MiniEnv.sources`) and its Table IV size.
    `owner` names another task whose dataset this is (shared, collected once by the owner)."""

    source: str
    episodes: int
    owner: str | None = None


@dataclass(frozen=True)
class Robot:
    """A real robot's observations and actions, where no simulated env declares them:
    what `rise import` checks a lab's files against and `rise serve` announces."""

    lowdim: tuple[tuple[str, tuple[int, ...]], ...]  # proprioception: key, per-step shape
    image_keys: tuple[str, ...]  # cameras, uint8 HWC
    image_size: int
    action_dim: int

    @property
    def lowdim_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.lowdim)

    proprio_keys = lowdim_keys  # a real robot observes no object pose
    gripper_key = "gripper_qpos"


@dataclass(frozen=True)
class Task:
    env: str | None  # a name in rise.envs.ENVS; None for a real robot's task (`robot`)
    data_type: str  # Table I section: "coverage" or "suboptimal"
    data: tuple[Data, ...]  # the expert dataset first, then the non-expert ones
    eval_region: str  # where Table I's rollouts start (an env region)
    story: str  # one line: what the non-expert data is
    robot: Robot | None = None  # the `real` tier: data from `rise import`, scores from records

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(d.source for d in self.data)

    @property
    def nonexpert(self) -> tuple[str, ...]:
        return tuple(d.source for d in self.data if d.source != EXPERT)


def _coverage(env, expert, play, *extra, owner=None, story="play over the whole table", robot=None):
    data = (Data(EXPERT, expert), Data("play", play, owner), *extra)
    return Task(env, "coverage", data, "eval", story, robot)


def _suboptimal(env, expert, *nonexpert, story, robot=None):
    return Task(env, "suboptimal", (Data(EXPERT, expert), *nonexpert), "expert", story, robot)


# The paper's Franka Panda (Appendix): end-effector position, quaternion and gripper state,
# a fixed and a wrist camera; delta Cartesian end-effector actions plus the gripper.
FRANKA = Robot(
    lowdim=(("eef_pos", (3,)), ("eef_quat", (4,)), ("gripper_qpos", (2,))),
    image_keys=("agentview_image", "eye_in_hand_image"),
    image_size=84,
    action_dim=7,
)


# Table I's simulated rows, in the paper's order (Table IV sizes at the paper scale).
TASKS: dict[str, Task] = {
    "mini_square_peg": _coverage("mini_square_peg", 200, 224),
    "mini_square_hook": _coverage(
        "mini_square_hook", 175, 224, owner="mini_square_peg",
        story="the square-peg play data, shared (one dataset, two downstream tasks)",
    ),
    "mini_piece_assembly": _coverage("mini_piece_assembly", 200, 199),
    "mini_piece_assembly_tip": _coverage(
        "mini_piece_assembly_tip", 200, 199, Data("partial_tipping", 104),
        story="play, plus episodes that only tip the piece upright",
    ),
    "mini_threading": _coverage("mini_threading", 200, 200),
    "mini_mug_cleanup": _suboptimal(
        "mini_mug_cleanup", 20, Data("drawer_only", 43), Data("place_only", 42),
        story="opens the drawer then fails the grasp; or places with the drawer already open",
    ),
    "mini_piece_assembly_tip_suboptimal": _suboptimal(
        "mini_piece_assembly_tip", 10, Data("suboptimal", 100),
        story="noisy, hesitant, slow, failed tipping, missed grasps, drops, misaligned",
    ),
    "mini_square_peg_suboptimal": _suboptimal(
        "mini_square_peg", 20, Data("suboptimal", 80),
        story="clumsy, noisy, hesitant, dropped, misaligned and slow attempts",
    ),
    # The robosuite tier: the same rows on robosuite's Panda (OSC delta pose, 20 Hz),
    # observations under robomimic's names, Table IV sizes; `snakemake
    # results/table1_robosuite.csv` builds those listed under `robosuite_tasks`.
    "rs_square_peg": _coverage("rs_square_peg", 200, 224),
    "rs_square_hook": _coverage(
        "rs_square_hook", 175, 224, story="square-peg's play, in the scene with the hook",
    ),
    "rs_piece_assembly": _coverage("rs_piece_assembly", 200, 199),
    "rs_piece_assembly_tip": _coverage(
        "rs_piece_assembly_tip", 200, 199, Data("partial_tipping", 104),
        story="play, plus episodes that only tip the piece over",
    ),
    "rs_threading": _coverage("rs_threading", 200, 200),
    "rs_square_peg_suboptimal": _suboptimal(
        "rs_square_peg", 20, Data("suboptimal", 80),
        story="clumsy, noisy, hesitant, dropped, misaligned and slow attempts (Square-Worse)",
    ),
}  # fmt: skip

# Table I's real rows (Table IV sizes): datasets from `rise import`, each cell scored from
# a robot's recorded rollouts (`results/table1_real.csv`).
REAL: dict[str, Task] = {
    "lampshade": _coverage(
        None, 225, 276, story="the lampshade pushed around a wide region of the table",
        robot=FRANKA,
    ),
    "cloth_folding": _coverage(
        None, 50, 50, story="re-arranging and folding the cloth from many configurations",
        robot=FRANKA,
    ),
    "one_leg": _suboptimal(
        None, 50, Data("suboptimal", 150), story="picks the leg from a wide range, fails to insert",
        robot=FRANKA,
    ),
}  # fmt: skip


def get(name: str) -> Task:
    """The task registered as `name` (simulated or real); unknown names raise a ValueError
    listing the known."""
    task = TASKS.get(name) or REAL.get(name)
    if task is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join([*TASKS, *REAL])}")
    return task


def dataset_owner(name: str, source: str) -> str:
    """The task whose data/<task>/ directory holds `source` of task `name`."""
    for d in get(name).data:
        if d.source == source:
            return d.owner or name
    raise ValueError(f"task {name!r} has no dataset {source!r}; it has {get(name).sources}")


def failures_source(name: str) -> str:
    """The non-expert dataset a relabeling round adds failed rollouts to: the task's first
    (`play` for the coverage rows), so later rounds learn from the same sources."""
    return get(name).nonexpert[0]


def scaled_episodes(episodes: int, scale: float, minimum: int) -> int:
    """A Table IV size at a scale preset (`collect.episodes_scale`, `collect.min_episodes`)."""
    return max(int(minimum), int(round(episodes * scale)))
