"""The robosuite tier's square-hook row: robosuite's Square scene plus this project's hook;
the expert hangs the nut, the success test rejects near misses, play never hangs it."""

import numpy as np
import pytest
from test_envs import rollout

from rise.envs import make_env
from rise.envs.mini import CLOSE
from rise.envs.rs_square_hook import RsSquareHook


@pytest.fixture(scope="module")
def env():
    env = make_env("rs_square_hook")
    yield env
    env.close()


def test_the_hook_stands_clear_of_every_region_and_both_pegs():
    """A nut lying anywhere a region puts it (its ring and handle reach 8 cm from its centre)
    keeps off the post, and a nut on either peg clears the arm."""
    boxes = {name: (np.array(pos), np.array(half)) for name, pos, half in RsSquareHook.hook_boxes()}
    post, half = boxes["post"]
    for low, high in RsSquareHook.REGIONS.values():
        nearest = np.clip(post[:2], low[:2], high[:2])
        assert np.linalg.norm(post[:2] - nearest) - half[0] > 0.08
    arm, arm_half = boxes["arm"]
    for peg in (RsSquareHook.PEG_XY, RsSquareHook.ROUND_PEG_XY):
        assert abs(peg[1] - arm[1]) - arm_half[1] > 0.044 + 0.01  # the nut's half width + margin


def test_the_expert_hangs_the_nut_and_it_stays(env):
    """From the expert and the evaluation region; after the release the nut keeps hanging
    for the rest of the horizon (checked 100 steps on)."""
    for region, seed in (("expert", 0), ("expert", 1), ("eval", 2)):
        rng = np.random.default_rng([0, seed])
        obs, controller = env.reset(region, rng), env.controller("expert", rng)
        hung_at = None
        for t in range(env.horizon):
            obs = env.step(controller(obs))
            if hung_at is None and env.success():
                hung_at = t
            if hung_at is not None and t > hung_at + 100:
                break
        assert hung_at is not None and env.success(), (region, seed)


def test_success_rejects_near_misses(env):
    """Not hung: the hung nut with the closed gripper brought back onto it; a nut resting on
    the tip's top (the arm below it); a nut lying on the table under the tip."""
    rng = np.random.default_rng([0, 0])
    obs, controller = env.reset("expert", rng), env.controller("expert", rng)
    while not env.success():
        obs = env.step(controller(obs))
    for _ in range(20):  # the expert backs off
        obs = env.step(controller(obs))
    centre, touched = env.nut_pose(obs)[0], False
    for t in range(70):  # above the hanging nut, then the closed fingers down onto its ring
        goal = centre + ([0.0, 0.0, 0.12] if t < 30 else [0.0, 0.0, 0.03])
        obs = env.step(env.servo_action(obs, goal, env.eef_heading(obs), CLOSE))
        if env.gripper_touches_nut():
            touched = True
            assert env.arm_threads_hole() and not env.success()
    assert touched
    tip, z0, flat = env.TIP_XY, env.table_z, np.array([1.0, 0.0, 0.0, 0.0])
    on_tip = [tip[0] - 0.04, tip[1], z0 + env.HOOK_TIP_TOP + 0.011]
    under = [tip[0], tip[1], z0 + env.NUT_HALF_H]
    for pos in (on_tip, under):
        env.set_free_pose(env.nut_joint, pos, flat)
        env.sim.forward()
        assert not env.arm_threads_hole() and not env.success()


def test_play_never_hangs_the_nut(env):
    rollout(env, "scripted_play", "play", 0, stop_on_success=True)
    assert not env.success()
