"""The robosuite tier's piece-assembly row: robosuite's Lift scene with a T-shaped piece and
a block with a T-shaped slot; the expert drops the piece in, the success test rejects near
misses, play never assembles it."""

import numpy as np
import pytest
from test_envs import rollout

from rise.envs import make_env
from rise.envs.mini import CLOSE
from rise.envs.rs_piece_assembly import RsPieceAssembly as Env


@pytest.fixture(scope="module")
def env():
    env = make_env("rs_piece_assembly")
    yield env
    env.close()


def area(rects) -> float:
    return sum((x1 - x0) * (y1 - y0) for x0, x1, y0, y1 in rects)


def test_the_block_is_the_square_minus_a_slot_the_piece_fits():
    """The block's boxes and the slot tile the block's square without overlap, and the slot
    is the piece's outline plus the clearance on every side."""
    boxes = Env.fixture_boxes()
    rects = [(c[0] - h[0], c[0] + h[0], c[1] - h[1], c[1] + h[1]) for c, h, _ in boxes]
    bar, stem = Env.slot_outline()
    slot = area([bar, stem]) - (bar[1] - stem[0]) * (stem[3] - stem[2])  # their overlap once
    assert area(rects) + slot == pytest.approx((2 * Env.BLOCK_HALF) ** 2)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            overlap_x = min(a[1], b[1]) - max(a[0], b[0])
            overlap_y = min(a[3], b[3]) - max(a[2], b[2])
            assert overlap_x <= 1e-9 or overlap_y <= 1e-9
    piece = [(c[0] - h[0], c[0] + h[0], c[1] - h[1], c[1] + h[1]) for c, h in Env.object_boxes()]
    for hole, part in zip((bar, stem), piece, strict=True):
        assert np.allclose(np.subtract(hole, part), Env.CLEARANCE * np.array([-1, 1, -1, 1]))


def test_the_expert_assembles_the_piece(env):
    """From the expert region and from the evaluation region (where it never demonstrates):
    the piece ends down in the slot and stays there after the release."""
    for region, seed in (("expert", 0), ("expert", 1), ("eval", 2)):
        rng = np.random.default_rng([0, seed])
        obs, controller = env.reset(region, rng), env.controller("expert", rng)
        done_at = None
        for t in range(env.horizon):
            obs = env.step(controller(obs))
            if done_at is None and env.success():
                done_at = t
            if done_at is not None and t > done_at + 40:
                break
        assert done_at is not None and env.success(), (region, seed)


def test_success_rejects_near_misses(env):
    """Not assembled: the piece lying on the block over the slot (turned like it, or a
    quarter turn off), beside the block, or held right above the slot."""
    rng = np.random.default_rng([0, 0])
    env.reset("expert", rng)
    z0, (x, y) = env.table_z, env.BLOCK_XY

    def put(pos, yaw) -> bool:
        env.set_free_pose(env.nut_joint, pos, [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        env._refresh()
        return env.success()

    rest = env.NUT_HALF_H
    assert put([x, y, z0 + rest], env.SLOT_YAW)  # the test itself: down in the slot
    assert not put([x, y, z0 + env.BLOCK_H + rest], env.SLOT_YAW)  # on the block
    assert not put([x, y, z0 + rest], env.SLOT_YAW + np.pi / 2)  # turned (not physical)
    assert not put([x + 0.012, y, z0 + rest], env.SLOT_YAW)  # off centre
    assert not put([x - 0.12, y, z0 + rest], env.SLOT_YAW)  # beside the block
    obs = env.reset("expert", rng)
    controller = env.controller("expert", rng)
    lowest = np.inf
    for _ in range(env.horizon):  # the expert, stopped as it starts lowering over the slot
        obs = env.step(controller(obs))
        centre = obs["object"][:3] - [x, y, z0]
        if np.linalg.norm(centre[:2]) < 0.004 and centre[2] < env.PEG_ABOVE_DZ + 0.003:
            lowest = centre[2]
            break
    assert lowest < np.inf and not env.success()
    for _ in range(10):  # held still there, closed
        obs = env.step(env.servo_action(obs, obs["robot0_eef_pos"], env.eef_heading(obs), CLOSE))
        assert not env.success()


def test_play_never_assembles_the_piece(env):
    rollout(env, "scripted_play", "play", 0, stop_on_success=True)
    assert not env.success()


@pytest.fixture(scope="module")
def tip_env():
    env = make_env("rs_piece_assembly_tip")
    yield env
    env.close()


def test_the_tipping_expert_topples_the_standing_piece_then_assembles_it(tip_env):
    """The piece starts on its side in every region; the expert pushes it flat first."""
    for region, seed in (("expert", 0), ("eval", 1)):
        rng = np.random.default_rng([0, seed])
        obs, controller = tip_env.reset(region, rng), tip_env.controller("expert", rng)
        assert not tip_env.flat(obs) and tip_env.face_normal(obs)[2] == pytest.approx(0, abs=1e-6)
        for _ in range(tip_env.horizon):
            obs = tip_env.step(controller(obs))
            if tip_env.success():
                break
        assert tip_env.success(), (region, seed)


def test_partial_tipping_lays_the_piece_flat_and_never_lifts_it(tip_env):
    flat = 0
    for seed in range(3):
        rng = np.random.default_rng([1, seed])
        obs = tip_env.reset("play", rng)
        controller = tip_env.controller("partial_tipping", rng)
        for _ in range(tip_env.horizon):
            obs = tip_env.step(controller(obs))
            assert obs["object"][2] - tip_env.table_z < tip_env.OBJECT_HALF[0] + 0.005
            assert not tip_env.success()
        flat += tip_env.flat(obs)
    assert flat >= 2


def test_tipping_play_never_assembles_the_piece(tip_env):
    rollout(tip_env, "scripted_play", "play", 0, stop_on_success=True)
    assert not tip_env.success()
