"""Square-hook (square-peg's scene, other goal) and square-peg's suboptimal operator."""

import numpy as np
import pytest

from rise.envs.mini import MiniEnv, Source
from rise.envs.mini_square_hook import MiniSquareHook
from rise.envs.mini_square_peg import MiniSquarePeg

OPEN, CLOSE = -1.0, 1.0


@pytest.fixture(scope="module")
def hook():
    return MiniSquareHook()


@pytest.fixture(scope="module")
def peg():
    return MiniSquarePeg()


def run(env, controller_name, region, seed, stop_on_success=False, **kwargs):
    """One episode; returns (controller, observations)."""
    rng = np.random.default_rng(seed)
    obs = env.reset(region, rng)
    controller = getattr(env, controller_name)(rng, **kwargs)
    trajectory = [obs]
    for _ in range(env.horizon):
        obs = env.step(controller(obs))
        trajectory.append(obs)
        if stop_on_success and env.success():
            break
    return controller, trajectory


def hang(env):
    """Teleport the nut flat onto the hook's arm around the tip and let it swing down."""
    env.reset("expert", np.random.default_rng(0))
    env.place_nut((*env.HOOK_XY, env.HOOK_ARM_TOP + env.NUT_HALF_H + 0.002), 0.0)
    env.place_gripper((0.1, 0.1, 0.25), 0.0, opening=env.FINGER_OPEN)
    for _ in range(30):
        obs = env.step(np.array([0, 0, 0, 0, OPEN]))
    return obs


# ----------------------------------------------------------------- one scene, two tasks
def test_peg_and_hook_share_one_scene_regions_and_play(hook, peg):
    assert hook.build_xml() == peg.build_xml()
    assert hook.name == "mini_square_hook" != peg.name
    for region in hook.regions:
        a = [hook.sample_init(region, np.random.default_rng(s)) for s in range(5)]
        b = [peg.sample_init(region, np.random.default_rng(s)) for s in range(5)]
        assert np.array_equal(a, b), region
    # Play is collected once, with square-peg's controller; the hook has no suboptimal data.
    assert hook.sources == MiniEnv.sources
    assert peg.sources["suboptimal"] == Source("expert", successes_only=False)
    with pytest.raises(ValueError, match="suboptimal"):
        hook.controller("suboptimal", np.random.default_rng(0))


# ----------------------------------------------------------------- hook success and expert
def test_hook_expert_succeeds_from_expert_region(hook):
    lengths = []
    for seed in range(10):
        _, trajectory = run(hook, "scripted_expert", "expert", seed, stop_on_success=True)
        if hook.success():
            lengths.append(len(trajectory) - 1)
    assert len(lengths) >= 8, f"hook expert succeeded in {len(lengths)}/10 episodes"
    assert max(lengths) < 0.75 * hook.horizon


def test_a_hung_nut_stays_hung_off_the_table_and_is_no_peg_success(hook):
    _, trajectory = run(hook, "scripted_expert", "expert", seed=0)  # the full horizon
    assert hook.success()
    assert not MiniSquarePeg.success(hook)
    nut = trajectory[-1]["object"]
    assert nut[2] > 0.1  # hanging, its centre 10+ cm above the table
    assert np.linalg.norm(nut[:2] - hook.hook_post_xy) < 0.06  # from the arm, near the post


def test_a_nut_on_the_peg_is_no_hook_success(hook):
    hook.reset("expert", np.random.default_rng(0))
    hook.place_nut((*hook.PEG_XY, hook.NUT_HALF_H), 0.0)
    for _ in range(5):
        hook.step(np.array([0, 0, 0, 0, OPEN]))
    assert MiniSquarePeg.success(hook) and not hook.success()


@pytest.mark.parametrize(
    "pos, yaw",
    [
        ((-0.2, 0.0, 0.01), 0.0),  # on the table right under the tip
        ((-0.2, 0.09, 0.01), np.pi / 2),  # on the table beside the post
        ((-0.2, 0.0, 0.25), 0.0),  # above the tip (falls onto it or the arm)
    ],
)
def test_hook_success_rejects_a_nut_near_the_hook(hook, pos, yaw):
    hook.reset("expert", np.random.default_rng(0))
    hook.place_nut(pos, yaw)
    hook.place_gripper((0.1, 0.1, 0.25), 0.0, opening=hook.FINGER_OPEN)
    hook.step(np.array([0, 0, 0, 0, OPEN]))
    assert not hook.success()


def test_hook_success_rejects_a_nut_held_above_the_tip(hook):
    hook.reset("expert", np.random.default_rng(0))
    z = hook.HOOK_TIP_TOP + 0.02
    hook.place_nut((*hook.HOOK_XY, z), 0.0)
    hook.place_gripper((hook.HOOK_XY[0] + hook.GRASP_ALONG, 0.0, z), 0.0, opening=0.01)
    for _ in range(20):
        obs = hook.step(np.array([0, 0, 0, 0, CLOSE]))
    assert obs["object"][2] > z - 0.01 and hook.gripper_touches_nut()
    assert not hook.success()


def test_hook_success_rejects_a_hung_nut_the_gripper_still_touches(hook):
    obs = hang(hook)
    assert hook.success()
    c = obs["object"][:3].astype(np.float64)
    hook.place_gripper((c[0] + 0.018, c[1], c[2] - 0.03), 0.0, opening=0.0)
    for _ in range(3):  # fingers pressed against the hanging ring
        hook.step(np.array([-0.3, 0, 0, 0, CLOSE]))
    assert hook.arm_threads_hole() and hook.gripper_touches_nut()
    assert not hook.success()
    for _ in range(5):  # back off: it still hangs
        hook.step(np.array([1.0, 0, 0, 0, CLOSE]))
    assert hook.success()


def test_hook_expert_same_seed_same_trajectory(hook):
    _, a = run(hook, "scripted_expert", "eval", seed=3, stop_on_success=True)
    _, b = run(hook, "scripted_expert", "eval", seed=3, stop_on_success=True)
    assert len(a) == len(b) and hook.success()
    for key in hook.lowdim_keys:
        assert np.array_equal(np.stack([o[key] for o in a]), np.stack([o[key] for o in b])), key


# ----------------------------------------------------------------- square-peg suboptimal
def test_suboptimal_operator_mixes_failure_modes_and_some_successes(peg):
    outcomes = []
    for seed in range(12):
        controller, _ = run(peg, "scripted_suboptimal", "expert", seed=200 + seed)
        outcomes.append((controller.mode, peg.success()))
    successes = sum(ok for _, ok in outcomes)
    failed_modes = {mode for mode, ok in outcomes if not ok}
    assert 2 <= successes <= 7, outcomes
    assert len(failed_modes) >= 3, outcomes
    assert set(peg.SUBOPTIMAL_MODES) >= {mode for mode, _ in outcomes}


@pytest.mark.parametrize("mode", ["missed_grasp", "misaligned", "slow"])
def test_suboptimal_failure_modes_fail_as_described(peg, mode):
    _, trajectory = run(peg, "scripted_suboptimal", "expert", seed=7, mode=mode)
    nut = np.stack([o["object"][:3] for o in trajectory])
    assert not peg.success()
    if mode == "missed_grasp":  # never lifted
        assert nut[:, 2].max() < peg.NUT_HALF_H + 0.005
    elif mode == "misaligned":  # left on (or leaning on) the peg's top
        assert nut[-1, 2] > peg.NUT_HALF_H + 0.02
        assert np.linalg.norm(nut[-1, :2] - peg.PEG_XY) < 0.07
    else:  # lifted, not down on the peg when time runs out
        assert nut[:, 2].max() > 0.05


def test_suboptimal_drop_lets_go_of_the_nut_mid_carry(peg):
    _, trajectory = run(peg, "scripted_suboptimal", "expert", seed=1, mode="drop")
    falling = [
        o["object"][2] > 0.05
        and o["gripper_qpos"].min() > 0.03
        and np.linalg.norm(o["object"][:2] - peg.PEG_XY) > 0.04
        for o in trajectory
    ]
    assert any(falling)


def test_suboptimal_same_seed_same_trajectory(peg):
    ca, a = run(peg, "scripted_suboptimal", "expert", seed=11)
    cb, b = run(peg, "scripted_suboptimal", "expert", seed=11)
    assert ca.mode == cb.mode
    for key in peg.lowdim_keys:
        assert np.array_equal(np.stack([o[key] for o in a]), np.stack([o[key] for o in b])), key
