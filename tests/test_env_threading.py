"""Fast checks of MiniThreading: expert, success test, ring clearance, regions, play, cameras."""

import numpy as np
import pytest

from rise.envs.mini import quat_yaw
from rise.envs.mini_threading import MiniThreading

OPEN, CLOSE = -1.0, 1.0


@pytest.fixture(scope="module")
def env():
    return MiniThreading()


def rollout(env, controller_name, region, seed, steps=None, stop_on_success=False):
    """Trajectory of obs, and whether the task was complete at any step."""
    rng = np.random.default_rng(seed)
    obs = env.reset(region, rng)
    controller = getattr(env, controller_name)(rng)
    trajectory, succeeded = [obs], False
    for _ in range(steps or env.horizon):
        obs = env.step(controller(obs))
        trajectory.append(obs)
        succeeded |= env.success()
        if stop_on_success and succeeded:
            break
    return trajectory, succeeded


def place_through(env, offset, depth, yaw=MiniThreading.THREAD_YAW):
    """Teleport a flat needle whose tip is `depth` past the ring's plane (negative: in front)
    and `offset` (x, z) off its axis."""
    tip = env.ring_center() + depth * env.THREAD_DIR + np.array([offset[0], 0.0, offset[1]])
    center = tip - env.TIP_ALONG * np.array([np.cos(yaw), np.sin(yaw), 0.0])
    env.place_needle(center, yaw)
    return center


def push_from_front(env, offset):
    """Hold the needle 3 cm in front of the ring, `offset` (x, z) off its axis, and push it
    straight along the axis; returns the tip's final depth past the ring's plane."""
    env.reset("expert", np.random.default_rng(0))
    center = place_through(env, offset, -0.03)
    env.place_gripper(center + [0.0, 0.0, 0.006], env.THREAD_YAW, opening=0.011)
    for _ in range(4):
        env.step(np.array([0, 0, 0, 0, CLOSE]))
    for _ in range(12):
        obs = env.step(np.array([0, -0.3, 0, 0, CLOSE]))
    return float((env.tip(obs) - env.ring_center()) @ env.THREAD_DIR)


def test_expert_succeeds_from_expert_region(env):
    lengths = []
    for seed in range(10):
        trajectory, succeeded = rollout(
            env, "scripted_expert", "expert", seed, stop_on_success=True
        )
        if succeeded:
            lengths.append(len(trajectory) - 1)
    assert len(lengths) >= 8, f"expert succeeded in {len(lengths)}/10 episodes"
    assert max(lengths) < 0.75 * env.horizon  # the horizon leaves the expert slack


def test_expert_can_reach_the_ring_from_the_eval_region(env):
    """The eval region is solvable (over the ring and back), just never demonstrated."""
    wins = sum(
        rollout(env, "scripted_expert", "eval", s, stop_on_success=True)[1] for s in range(3)
    )
    assert wins >= 2


def test_success_accepts_a_threaded_needle_and_keeps_it_held(env):
    env.reset("expert", np.random.default_rng(0))
    center = place_through(env, (0.002, -0.001), 0.02)
    assert env.success()
    env.place_gripper(center + [0.0, 0.0, 0.006], env.THREAD_YAW, opening=0.011)
    for _ in range(10):
        env.step(np.array([0, 0, 0, 0, CLOSE]))
    assert env.success()  # no contact pushes it out: the shaft fits the hole


@pytest.mark.parametrize(
    "offset, depth, dyaw",
    [
        ((0.0, 0.0), -0.005, 0.0),  # lined up, tip still in front of the ring
        ((0.0, 0.0), 0.006, 0.0),  # in the hole but not through (less than SUCCESS_DEPTH)
        ((0.02, 0.0), 0.02, 0.0),  # past the plane beside the ring
        ((0.0, 0.02), 0.02, 0.0),  # past the plane above the ring
        ((0.0, -0.05), 0.02, 0.0),  # lying on the table under the ring
        ((0.0, 0.0), 0.015, 0.8),  # tip behind the hole, but the shaft came round the side
    ],
)
def test_success_rejects_near_misses(env, offset, depth, dyaw):
    env.reset("expert", np.random.default_rng(0))
    place_through(env, offset, depth, env.THREAD_YAW + dyaw)
    assert not env.success()


def test_the_ring_lets_only_a_lined_up_shaft_through(env):
    """Physics: the hole's clearance is a few mm; a tip 8 mm off jams against the ring."""
    assert push_from_front(env, (0.002, 0.0)) > env.SUCCESS_DEPTH and env.success()
    assert push_from_front(env, (0.008, 0.0)) < 0.0 and not env.success()
    assert push_from_front(env, (0.0, -0.008)) < 0.0 and not env.success()


def test_expert_and_eval_regions_are_disjoint(env):
    rng = np.random.default_rng(0)
    expert = np.array([env.sample_init("expert", rng) for _ in range(1000)])
    evals = np.array([env.sample_init("eval", rng) for _ in range(1000)])
    play = np.array([env.sample_init("play", rng) for _ in range(1000)])
    low, high = env.REGIONS["expert"]
    assert np.all((expert >= low) & (expert <= high))
    assert np.ptp(expert[:, 2]) < 0.6 and np.ptp(evals[:, 2]) > 1.2  # eval: wider yaw
    eval_in_expert_box = np.all((evals[:, :2] >= low[:2]) & (evals[:, :2] <= high[:2]), axis=1)
    assert not eval_in_expert_box.any()
    gaps = np.linalg.norm(expert[:, None, :2] - evals[None, :, :2], axis=-1)
    assert gaps.min() > 0.15  # clearly apart, not just touching
    # play covers the whole table, yaw included, and never overlaps the stand
    assert np.ptp(play[:, 0]) > 0.3 and np.ptp(play[:, 1]) > 0.3 and np.ptp(play[:, 2]) > 6
    assert all(env.clears_stand(*p) for p in play)


def test_same_seed_same_trajectory_and_different_seed_differs(env):
    a, _ = rollout(env, "scripted_play", "play", seed=5, steps=80)
    b, _ = rollout(env, "scripted_play", "play", seed=5, steps=80)
    c, _ = rollout(env, "scripted_play", "play", seed=6, steps=80)
    for key in env.lowdim_keys:
        assert np.array_equal(np.stack([o[key] for o in a]), np.stack([o[key] for o in b])), key
    assert not np.array_equal(a[-1]["object"], c[-1]["object"])


def test_state_round_trip_and_object_pose(env):
    trajectory, _ = rollout(env, "scripted_expert", "expert", seed=3, steps=30)  # needle held
    assert trajectory[-1]["object"].shape == (7,) and trajectory[-1]["object"][2] > 0.05
    state = env.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, env.action_dim))
    first = [env.step(a) for a in actions]
    env.reset("eval", np.random.default_rng(1))
    env.set_state(state)
    second = [env.step(a) for a in actions]
    for o1, o2 in zip(first, second, strict=True):
        for key in env.lowdim_keys:
            assert np.array_equal(o1[key], o2[key]), key


def test_play_moves_the_needle_and_never_threads_it(env):
    moved = 0
    for seed in range(3):
        trajectory, succeeded = rollout(env, "scripted_play", "play", seed)
        positions = np.stack([o["object"][:2] for o in trajectory])
        heights = np.array([o["object"][2] for o in trajectory])
        moved += np.linalg.norm(positions - positions[0], axis=1).max() > 0.05
        assert heights.max() > 0.05  # it picks the needle up
        assert not succeeded  # at any step, not just the last
    assert moved == 3


def test_play_covers_the_expert_and_eval_regions(env):
    """Play must leave the needle in eval-region states and expert-region states."""
    visits = {"expert": 0, "eval": 0}
    for seed in range(12):
        trajectory, _ = rollout(env, "scripted_play", "play", seed=100 + seed)
        poses = np.array([[*o["object"][:3], quat_yaw(o["object"][3:])] for o in trajectory])
        resting = poses[poses[:, 2] < env.HANDLE_HALF[2] + 0.002][:, [0, 1, 3]]
        for region in visits:
            low, high = env.REGIONS[region]
            visits[region] += np.all((resting >= low) & (resting <= high), axis=1).any()
    assert visits["expert"] >= 2 and visits["eval"] >= 2, visits


def test_camera_images():
    env = MiniThreading(cameras=True, image_size=84)
    try:
        obs = env.reset("expert", np.random.default_rng(0))
        for key in env.image_keys:
            image = obs[key]
            assert image.shape == (84, 84, 3) and image.dtype == np.uint8, key
            assert image.std() > 5, key
        moved = env.step(np.array([1.0, 0, 0, 0, OPEN]))
        assert not np.array_equal(moved["eye_in_hand_image"], obs["eye_in_hand_image"])
    finally:
        env.close()


def test_unknown_region_is_a_value_error(env):
    with pytest.raises(ValueError, match="nowhere"):
        env.reset("nowhere", np.random.default_rng(0))
    with pytest.raises(ValueError, match="nowhere"):
        env.sample_init("nowhere", np.random.default_rng(0))
