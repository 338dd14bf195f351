"""The robosuite tier's threading row: robosuite's Lift scene with a needle and a ring on a
stand; the expert threads the needle, the ring blocks a shaft off its axis, the success
test rejects near misses, play never threads it."""

import numpy as np
import pytest
from test_envs import rollout

from rise.envs import make_env
from rise.envs.mini import CLOSE


@pytest.fixture(scope="module")
def env():
    env = make_env("rs_threading")
    yield env
    env.close()


def thread(env, region: str, seed: int, lift: float = 0.0) -> bool:
    """The scripted expert's episode; with `lift`, the needle is lined up that far above the
    ring's axis (a near miss): whether it ends threaded."""
    rng = np.random.default_rng([0, seed])
    obs, controller = env.reset(region, rng), env.controller("expert", rng)
    env.RING_Z += lift  # where the expert aims; the ring stays where it was built
    try:
        for _ in range(env.horizon):
            obs = env.step(controller(obs))
            if env.success():
                break
    finally:
        env.RING_Z -= lift
    for _ in range(20):  # held still: threaded stays threaded
        obs = env.step(env.servo_action(obs, obs["robot0_eef_pos"], env.eef_heading(obs), CLOSE))
    return env.success()


def test_the_expert_threads_the_needle(env):
    """From the expert region and from the evaluation region (where it never demonstrates)."""
    for region, seed in (("expert", 0), ("expert", 1), ("eval", 2)):
        assert thread(env, region, seed), (region, seed)


def test_the_ring_stops_a_shaft_lined_up_off_the_hole(env):
    """Lined up 15 mm above the ring's axis (the shaft's underside over the 8 mm hole) or 9
    mm below it, the tip jams against the ring and the needle is not threaded. (A few mm off,
    the ring's edge tips the needle in the grasp and guides it into the hole.)"""
    for lift in (0.015, -0.009):
        assert not thread(env, "expert", 0, lift=lift), lift


def test_success_rejects_near_misses(env):
    """Not threaded: the needle through the ring's plane beside, above or below the hole; the
    tip short of the plane; the needle past the ring entirely (its shaft's start beyond)."""
    env.reset("expert", np.random.default_rng(0))
    centre = env.ring_center()
    flat = np.array([1.0, 0.0, 0.0, 0.0])  # tip along +x, the ring's axis

    def put(dx: float, dy: float = 0.0, dz: float = 0.0) -> bool:
        """The needle's centre `dx` behind the ring's plane... offsets from its axis."""
        env.set_free_pose(env.nut_joint, centre + [dx, dy, dz], flat)
        env._refresh()
        return env.success()

    through = -(env.TIP_ALONG - env.SUCCESS_DEPTH - 0.005)
    assert put(through)  # the test itself: on the axis, tip 5 mm past the depth it needs
    for dy, dz in ((0.015, 0.0), (0.0, 0.015), (0.0, -0.015)):
        assert not put(through, dy, dz), (dy, dz)
    assert not put(-env.TIP_ALONG - 0.005)  # the tip short of the plane
    assert not put(-env.SHAFT_START + 0.01)  # all of the shaft past the plane


def test_play_never_threads_the_needle(env):
    rollout(env, "scripted_play", "play", 0, stop_on_success=True)
    assert not env.success()
