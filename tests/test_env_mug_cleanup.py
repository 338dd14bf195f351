"""Fast checks of MiniMugCleanup: scripted sources, success test, drawer, obs, determinism."""

import numpy as np
import pytest

from rise.envs.mini_mug_cleanup import MiniMugCleanup

OPEN, CLOSE = -1.0, 1.0
IDLE = np.array([0, 0, 0, 0, OPEN])


@pytest.fixture(scope="module")
def env():
    return MiniMugCleanup()


def rollout(env, source, seed, steps=None, stop_on_success=False):
    """Like rise.collect.rollout: region from the source, controller from env.controller."""
    rng = np.random.default_rng(seed)
    obs = env.reset(env.sources[source].region, rng)
    controller = env.controller(source, rng)
    trajectory, succeeded = [obs], False
    for _ in range(steps or env.horizon):
        obs = env.step(controller(obs))
        trajectory.append(obs)
        succeeded |= env.success()
        if stop_on_success and succeeded:
            break
    return trajectory, succeeded


def settle(env, steps=10):
    for _ in range(steps):
        obs = env.step(IDLE)
    return obs


def test_sources_and_regions(env):
    assert env.sources["expert"].region == "expert" and env.sources["expert"].successes_only
    assert env.sources["drawer_only"].region == "expert"
    assert not env.sources["drawer_only"].successes_only
    assert env.sources["place_only"].region == "drawer_open"
    assert set(env.sources) == {"expert", "drawer_only", "place_only"}
    with pytest.raises(ValueError, match="play"):
        env.controller("play", np.random.default_rng(0))
    rng = np.random.default_rng(0)
    for region in ("expert", "eval"):
        init = np.array([env.sample_init(region, rng) for _ in range(200)])
        assert np.all(init[:, 3] == 0.0)  # drawer closed
    np.testing.assert_array_equal(env.REGIONS["eval"][0], env.REGIONS["expert"][0])
    np.testing.assert_array_equal(env.REGIONS["eval"][1], env.REGIONS["expert"][1])
    opened = np.array([env.sample_init("drawer_open", rng) for _ in range(200)])
    assert np.all(opened[:, 3] >= env.OPENED)
    low, high = env.REGIONS["expert"]
    assert np.all((opened[:, :3] >= low[:3]) & (opened[:, :3] <= high[:3]))  # same mug box
    play = np.array([env.sample_init("play", rng) for _ in range(200)])
    assert np.ptp(play[:, 0]) > 0.25 and np.ptp(play[:, 1]) > 0.3 and np.ptp(play[:, 3]) > 0.1


def test_expert_succeeds_from_expert_region(env):
    lengths = []
    for seed in range(10):
        trajectory, ok = rollout(env, "expert", seed, stop_on_success=True)
        if ok:
            lengths.append(len(trajectory) - 1)
            assert trajectory[-1]["object"][7] >= env.OPENED  # it opened the drawer
    assert len(lengths) >= 8, f"expert succeeded in {len(lengths)}/10 episodes"
    assert max(lengths) < 0.75 * env.horizon  # the horizon leaves the expert slack


def test_place_only_succeeds_from_an_open_drawer(env):
    wins = sum(rollout(env, "place_only", seed, stop_on_success=True)[1] for seed in range(10))
    assert wins >= 8, f"place_only succeeded in {wins}/10 episodes"


def test_drawer_only_opens_the_drawer_and_never_succeeds(env):
    lifted = 0
    for seed in range(8):
        trajectory, ok = rollout(env, "drawer_only", seed)
        assert not ok
        assert trajectory[-1]["object"][7] >= env.OPENED
        assert trajectory[-1]["object"][2] < 0.03  # the mug ends on the table
        lifted += max(o["object"][2] for o in trajectory) > 0.1
    assert 0 < lifted < 8  # both drops (mug lifted) and misses or fumbles


def test_success_accepts_a_mug_resting_in_the_drawer_open_or_closed(env):
    env.reset("expert", np.random.default_rng(0))
    for q, x in ((0.12, 0.01), (0.0, -0.12)):  # closed: the mug sits inside the cabinet
        env.set_drawer(q)
        env.place_mug((x, 0.0, env.FLOOR_TOP + env.MUG_HALF_H), 0.1)
        settle(env)
        assert env.success(), q


@pytest.mark.parametrize(
    "pos, q",
    [
        ((0.05, -0.13, 0.025), 0.12),  # on the table beside the open drawer
        ((0.13, 0.0, 0.025), 0.12),  # on the table in front of the open drawer
        ((-0.14, 0.0, 0.125), 0.0),  # on top of the closed cabinet
        ((-0.14, 0.0, 0.125), 0.12),  # on top of the cabinet, drawer open below
    ],
)
def test_success_rejects_near_misses(env, pos, q):
    env.reset("expert", np.random.default_rng(0))
    env.set_drawer(q)
    env.place_mug(pos, 0.0)
    settle(env)
    assert not env.success()


def test_success_rejects_a_mug_held_above_or_in_the_open_drawer(env):
    env.reset("expert", np.random.default_rng(0))
    env.set_drawer(0.12)
    for z in (0.12, env.FLOOR_TOP + env.MUG_HALF_H):  # above the tray, then down on its floor
        env.place_mug((0.01, 0.0, z), 0.0)
        env.place_gripper((0.01, 0.0, z - env.MUG_HALF_H + env.GRASP_DZ), 0.0, opening=0.015)
        for _ in range(15):
            obs = env.step(np.array([0, 0, 0, 0, CLOSE]))
        assert obs["object"][2] > z - 0.005  # held by finger friction
        assert not env.success()


def test_success_rejects_a_mug_tipped_over_in_the_drawer(env):
    env.reset("expert", np.random.default_rng(0))
    env.set_drawer(0.12)
    side = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0])  # lying on its side
    env.set_free_pose("mug", (0.01, 0.0, env.FLOOR_TOP + env.MUG_HALF + 0.001), side)
    settle(env)
    assert not env.success()


def test_drawer_stays_where_it_is_left(env):
    env.reset("expert", np.random.default_rng(0))
    env.set_drawer(0.06)
    obs = settle(env, 20)
    assert abs(obs["object"][7] - 0.06) < 1e-3


def test_object_observation_ends_with_the_drawer_position(env):
    obs = env.reset("drawer_open", np.random.default_rng(3))
    assert obs["object"].shape == (8,) and obs["object"].dtype == np.float32
    assert obs["object"][7] == np.float32(env.drawer_q()) and obs["object"][7] >= env.OPENED
    assert env.reset("expert", np.random.default_rng(3))["object"][7] == 0.0
    np.testing.assert_allclose(np.linalg.norm(obs["object"][3:7]), 1.0, atol=1e-6)


def test_same_seed_same_trajectory_and_different_seed_differs(env):
    a, _ = rollout(env, "expert", seed=5, steps=80)
    b, _ = rollout(env, "expert", seed=5, steps=80)
    c, _ = rollout(env, "expert", seed=6, steps=80)
    for key in env.lowdim_keys:
        assert np.array_equal(np.stack([o[key] for o in a]), np.stack([o[key] for o in b])), key
    assert not np.array_equal(a[-1]["object"], c[-1]["object"])


def test_get_state_set_state_round_trip(env):
    rollout(env, "expert", seed=3, steps=60)  # mug held in the gripper
    state = env.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, env.action_dim))
    first = [env.step(a) for a in actions]
    env.reset("drawer_open", np.random.default_rng(1))
    env.set_state(state)
    second = [env.step(a) for a in actions]
    for o1, o2 in zip(first, second, strict=True):
        for key in env.lowdim_keys:
            assert np.array_equal(o1[key], o2[key]), key


def test_camera_images():
    env = MiniMugCleanup(cameras=True, image_size=84)
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
