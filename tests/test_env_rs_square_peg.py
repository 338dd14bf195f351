"""The robosuite tier's square-peg row: robosuite's NutAssemblySquare behind the episode API,
robomimic's observation names, upright images, regions, success test and scripted sources."""

import itertools

import mujoco
import numpy as np
import pytest

from rise.envs import make_env
from rise.envs.rs_square_peg import RsSquarePeg


@pytest.fixture(scope="module")
def env():
    env = make_env("rs_square_peg")
    yield env
    env.close()


def boxes_overlap(a, b) -> bool:
    (alo, ahi), (blo, bhi) = a, b
    return bool(np.all(alo[:2] < bhi[:2]) and np.all(blo[:2] < ahi[:2]))


def test_expert_eval_and_valid_regions_are_disjoint_and_clear_of_the_pegs():
    regions = {r: RsSquarePeg.REGIONS[r] for r in ("expert", "eval", "valid")}
    for a, b in itertools.combinations(regions, 2):
        assert not boxes_overlap(regions[a], regions[b]), (a, b)
    env = RsSquarePeg.__new__(RsSquarePeg)  # geometry only: no robosuite env needed
    rng = np.random.default_rng(0)
    for region in RsSquarePeg.REGIONS:
        for _ in range(50):
            x, y, _ = env.sample_init(region, rng)
            assert env.clear_of_pegs((x, y))
            low, high = RsSquarePeg.REGIONS[region]
            assert low[0] <= x <= high[0] and low[1] <= y <= high[1]


def test_observations_use_robomimic_names_and_resets_follow_the_rng(env):
    a = env.reset("eval", np.random.default_rng(3))
    assert {k: v.shape for k, v in a.items()} == {
        "robot0_eef_pos": (3,),
        "robot0_eef_quat": (4,),
        "robot0_gripper_qpos": (2,),
        "object": (14,),
    }
    low, high = RsSquarePeg.REGIONS["eval"]
    centre, yaw = env.nut_pose(a)
    assert low[0] <= centre[0] <= high[0] and low[1] <= centre[1] <= high[1]
    assert low[2] <= yaw <= high[2]
    assert centre[2] == pytest.approx(env.table_z + env.NUT_HALF_H, abs=1e-3)
    # robosuite's relative pose: the nut in the gripper's frame (same distance, rotated)
    distance = np.linalg.norm(centre - a["robot0_eef_pos"])
    assert np.linalg.norm(a["object"][7:10]) == pytest.approx(distance, abs=1e-3)
    b = env.reset("eval", np.random.default_rng(3))
    c = env.reset("eval", np.random.default_rng(4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["object"], c["object"])
    assert not np.array_equal(a["robot0_eef_pos"], c["robot0_eef_pos"])  # arm start noise


def test_state_round_trip_and_robomimic_env_args(env):
    env.reset("play", np.random.default_rng(0))
    for _ in range(3):
        env.step(np.array([0.5, 0, 0, 0, 0, 0, -1]))
    state = env.get_state()
    env.reset("expert", np.random.default_rng(1))
    env.set_state(state)
    assert np.array_equal(env.get_state(), state)
    args = env.env_args()
    assert args["env_name"] == "NutAssemblySquare" and args["type"] == 1
    assert args["env_kwargs"]["control_freq"] == 20
    parts = args["env_kwargs"]["controller_configs"]["body_parts"]
    assert parts["right"]["type"] == "OSC_POSE" and parts["right"]["input_type"] == "delta"
    with pytest.raises(ValueError, match="7-d action"):
        env.step(np.zeros(5))


# robomimic's Square files store a robosuite <= 1.4 arm controller config (OSC_POSE)
OLD_OSC = {"type": "OSC_POSE", "input_max": 1, "input_min": -1, "kp": 120, "damping": 1,
           "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5], "impedance_mode": "fixed",
           "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5], "control_delta": True,
           "uncouple_pos_ori": True, "interpolation": None, "ramp_ratio": 0.2}  # fmt: skip
ROBOMIMIC_ENV_ARGS = {
    "env_name": "NutAssemblySquare", "type": 1,
    "env_kwargs": {"robots": ["Panda"], "controller_configs": OLD_OSC, "control_freq": 20,
                   "has_renderer": False, "camera_heights": 84},
}  # fmt: skip


def test_env_is_rebuilt_from_a_robomimic_files_env_args():
    """The file's robot, controller (1.4 arm config -> 1.5 composite) and rate are honoured;
    env_args of another env are refused by name."""
    env = make_env("rs_square_peg", env_args=ROBOMIMIC_ENV_ARGS)
    arm = env.robot.composite_controller.part_controllers["right"]
    assert type(arm).__name__ == "OperationalSpaceController" and arm.input_type == "delta"
    assert np.allclose(arm.kp, 120) and env.kwargs["control_freq"] == 20
    assert set(env.kwargs["controller_configs"]["body_parts"]) == {"right"}
    assert not env.kwargs["has_offscreen_renderer"]  # cameras stay the caller's
    env.close()
    with pytest.raises(ValueError, match="'Lift'.*'NutAssemblySquare'"):
        make_env("rs_square_peg", env_args={"env_name": "Lift", "type": 1})


def test_success_rejects_near_misses(env):
    env.reset("expert", np.random.default_rng(0))
    peg = np.array([*env.PEG_XY, env.table_z + env.NUT_HALF_H])
    flat = np.array([1.0, 0, 0, 0])
    env.set_free_pose(env.nut_joint, peg, flat)  # down around the peg, gripper far above
    env.sim.forward()
    assert env.success()
    on_top = peg + [0, 0, 0.13]  # resting on the peg's top
    env.set_free_pose(env.nut_joint, on_top, flat)
    env.sim.forward()
    assert not env.success()
    beside = peg + [0.04, 0, 0]  # on the table, 4 cm off the axis
    env.set_free_pose(env.nut_joint, beside, flat)
    env.sim.forward()
    assert not env.success()


def test_images_are_upright():
    """Ours against MuJoCo's own renderer (upright) of the same camera and state: they match,
    and robosuite's raw frame (upside down) does not."""
    env = make_env("rs_square_peg", cameras=True, image_size=64)
    try:
        obs = env.reset("expert", np.random.default_rng(0))
        assert obs["agentview_image"].shape == (64, 64, 3)
        assert obs["robot0_eye_in_hand_image"].dtype == np.uint8
        with mujoco.Renderer(env.sim.model._model, 64, 64) as renderer:
            renderer.update_scene(env.sim.data._data, camera="agentview")
            reference = renderer.render().astype(float)
        ours = obs["agentview_image"].astype(float)
        upright = np.abs(ours - reference).mean()
        flipped = np.abs(ours[::-1] - reference).mean()
        assert upright < 0.5 * flipped, (upright, flipped)
    finally:
        env.close()


def test_scripted_expert_succeeds_and_play_never_does(env):
    wins = 0
    for i in range(4):
        rng = np.random.default_rng([0, i])
        obs, ctl = env.reset("expert", rng), env.controller("expert", rng)
        for _ in range(env.horizon):
            obs = env.step(ctl(obs))
            if env.success():
                wins += 1
                break
    assert wins >= 3
    rng = np.random.default_rng(0)
    obs, ctl = env.reset("play", rng), env.controller("play", rng)
    lifted = False
    for _ in range(env.horizon):
        obs = env.step(ctl(obs))
        assert not env.success()
        lifted |= env.nut_pose(obs)[0][2] > env.table_z + 0.05
    assert lifted  # play moves the nut, it is not idle


@pytest.mark.parametrize("mode", ["clumsy", "missed_grasp", "misaligned"])
def test_suboptimal_operator_modes_end_as_described(env, mode):
    """Square-Worse's operator (shared with the mini tier, rise.envs.nut_operator) on the
    Panda: the clumsy one gets the nut on, a missed grasp never lifts it, a misaligned one
    leaves it on the peg's top."""
    rng = np.random.default_rng([5, 0])
    obs = env.reset("expert", rng)
    controller = env.scripted_suboptimal(rng, mode)
    heights = []
    for _ in range(env.horizon):
        obs = env.step(controller(obs))
        heights.append(env.nut_pose(obs)[0][2] - env.table_z)
    nut = env.nut_pose(obs)[0]
    assert env.success() == (mode == "clumsy")
    if mode == "missed_grasp":
        assert max(heights) < env.NUT_HALF_H + 0.01
    if mode == "misaligned":
        assert heights[-1] > 0.05 and np.linalg.norm(nut[:2] - env.PEG_XY) < 0.06
