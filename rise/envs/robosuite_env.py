"""Shared base of the `robosuite` tier: robosuite's Panda under OSC delta-pose control at
20 Hz, behind the episode API of the mini tier (reset(region, rng), step, observe, success,
controller, get/set_state, env_args), with observations under robomimic's names.

- robosuite is imported when an env is built, not with this module: the workflow reads the
  class attributes (keys, regions, sources) of every env to plan, and robosuite's import
  (numba, its controllers) costs a second a process.
- Resets are deterministic functions of the caller's rng: the arm's initial joints and the
  objects' poses are drawn here (robosuite draws both from NumPy's global generator).
- Images are flipped upright: robosuite renders them upside down (OpenGL's convention), and
  robomimic's env wrapper flips them before it writes a dataset.
- `get_state` / `set_state` are robomimic's `states`: the flattened MuJoCo state (time, qpos,
  qvel), restored as robomimic's `reset_to` does.
- Scripted sources steer the Panda's end effector with the helpers at the end of the class
  (a top-down gripper frame, the last joint's range, a proportional servo): every scene's
  scripts share them.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rise.envs.mini import Obs, ScriptedEnv, Source, Style, wrap_angle  # noqa: E402

ROBOSUITE_ENV_TYPE = 1  # robomimic's EnvType.ROBOSUITE_TYPE, as its datasets store it
ROBOT = "Panda"


def quat_xyzw_yaw(q) -> float:
    """Heading (rotation about world z) of an x-y-z-w quaternion's x axis (robosuite's order)."""
    x, y, z, w = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def robosuite_kwargs(cameras: bool, image_size: int, horizon: int) -> dict:
    """robosuite.make's keyword arguments (JSON-able, as robomimic's env_args store them)."""
    from robosuite.controllers import load_composite_controller_config

    controller = load_composite_controller_config(controller="BASIC", robot=ROBOT)
    return {
        "robots": ROBOT,
        "controller_configs": one_arm(controller),
        "control_freq": 20,
        "horizon": horizon,
        "ignore_done": True,
        "reward_shaping": False,
        "hard_reset": False,
        "has_renderer": False,
        "has_offscreen_renderer": cameras,
        "use_camera_obs": cameras,
        "use_object_obs": True,
        "camera_names": ["agentview", "robot0_eye_in_hand"],
        "camera_heights": image_size,
        "camera_widths": image_size,
        "initialization_noise": {"magnitude": 0.0, "type": "gaussian"},
    }


def one_arm(controller: dict) -> dict:
    """A composite controller config with the right arm's part only: the tier's robots have
    one arm (robosuite drops the other parts with a warning each)."""
    return {**controller, "body_parts": {"right": controller["body_parts"]["right"]}}


def recorded_kwargs(env_args: dict, env_name: str) -> dict:
    """What a dataset's robomimic `env_args` decide of the env that replays its policy: the
    robot, its controller (a robosuite <= 1.4 arm config, as robomimic's files store, becomes
    1.5's composite config) and the control rate. Cameras, image size, horizon and resets stay
    this tier's. ValueError, naming the value, for env_args of another env or simulator."""
    from robosuite.controllers.composite.composite_controller_factory import (
        refactor_composite_controller_config,
    )

    if env_args.get("type") != ROBOSUITE_ENV_TYPE or env_args.get("env_name") != env_name:
        raise ValueError(
            f"env_args name env {env_args.get('env_name')!r} of type {env_args.get('type')!r}; "
            f"this env is robosuite's {env_name!r} (type {ROBOSUITE_ENV_TYPE})"
        )
    recorded = env_args.get("env_kwargs", {})
    kwargs = {k: recorded[k] for k in ("robots", "control_freq") if k in recorded}
    robot = kwargs.get("robots", ROBOT)
    robot = robot[0] if isinstance(robot, list) and len(robot) == 1 else robot
    if not isinstance(robot, str):
        raise ValueError(f"env_args robots {robot!r}: this tier runs one single-arm robot")
    kwargs["robots"] = robot
    if "controller_configs" in recorded:
        controller = refactor_composite_controller_config(
            recorded["controller_configs"], robot, ["right"]
        )
        kwargs["controller_configs"] = one_arm(controller)
    return kwargs


class RobosuiteEnv(ScriptedEnv):
    """Base class: one robosuite environment, its regions, success test and scripted sources."""

    name = "robosuite"
    robosuite_env = ""  # robosuite's environment class name, e.g. NutAssemblySquare
    horizon = 400
    action_dim = 7  # OSC delta position (3) and axis-angle rotation (3), gripper (> 0 closes)
    lowdim_keys = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
    proprio_keys = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
    image_keys = ("agentview_image", "robot0_eye_in_hand_image")
    gripper_key = "robot0_gripper_qpos"
    regions: tuple[str, ...] = ("expert", "play", "eval", "valid")
    sources: dict[str, Source] = {
        "expert": Source("expert", successes_only=True),
        "play": Source("play", successes_only=False),
    }
    # robosuite observables concatenated into `object`, in robomimic's order (pose first)
    object_keys: tuple[str, ...] = ()
    parallel_envs = 10  # one takes seconds to build: evaluation reuses 10 for wave after wave
    JOINT_NOISE = 0.02  # std (rad) of the arm's initial joints around robosuite's home pose
    POS_SCALE, ROT_SCALE = 0.05, 0.5  # action unit -> m, rad (the OSC's output limits)
    # The wrist: with the gripper pointing down, the Panda's last joint is at about
    # Q7_HOME + (the base joint's angle) - heading (of the eef's x axis, 0 at home); it stops
    # at +-2.9 rad, and the scripts keep it within Q7_LIMIT.
    BASE_XY = np.array([-0.56, 0.0])
    Q7_HOME = 0.785
    Q7_LIMIT = 2.5
    MAX_TURN = 0.5  # rad of heading a servo step aims ahead at most

    def __init__(self, cameras: bool = False, image_size: int = 84, env_args: dict | None = None):
        # robosuite's import notices (no private macro file, no robosuite_models, no mink IK
        # for humanoids) concern features this tier does not use
        logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
        import robosuite

        self.cameras = bool(cameras)
        self.image_size = int(image_size)
        self.kwargs = robosuite_kwargs(self.cameras, self.image_size, self.horizon)
        if env_args:
            self.kwargs.update(recorded_kwargs(env_args, self.robosuite_env))
        self.env = robosuite.make(self.robosuite_env, **self.kwargs)
        if self.cameras:  # 84 x 84 renders gain nothing from shadows and multisampling
            self.env.sim.model.vis.quality.shadowsize = 0
            self.env.sim.model.vis.quality.offsamples = 0
        self.sim = self.env.sim
        self.robot = self.env.robots[0]
        self.home_qpos = np.array(self.robot.init_qpos, dtype=np.float64)
        self.table_z = float(self.env.table_offset[2])
        self._obs: dict = {}

    # ----------------------------------------------------------------- task interface
    def sample_init(self, region: str, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def place_objects(self, init: np.ndarray) -> None:
        raise NotImplementedError

    def success(self) -> bool:
        return bool(self.env._check_success())

    # ----------------------------------------------------------------- episode API
    def reset(self, region: str, rng: np.random.Generator) -> Obs:
        """New episode: the arm near its home pose, objects from `sample_init(region)`."""
        if region not in self.regions:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        init = self.sample_init(region, rng)
        self.robot.init_qpos = self.home_qpos + rng.normal(0.0, self.JOINT_NOISE, 7)
        self.env.reset()
        self.place_objects(init)
        self._refresh()
        return self.observe()

    def _refresh(self) -> None:
        """Observations after the state was written directly: robosuite's object-to-gripper
        sensors read the gripper's pose from the observation cache, so the first pass only
        refreshes that cache and the second computes them."""
        self.sim.forward()
        self.env._get_observations(force_update=True)
        self._obs = self.env._get_observations(force_update=True)

    def step(self, action) -> Obs:
        """Apply one 7-d action (clipped to [-1, 1]) and return the new obs."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if a.shape != (self.action_dim,):
            raise ValueError(f"expected a {self.action_dim}-d action, got shape {a.shape}")
        self._obs, _, _, _ = self.env.step(a)
        return self.observe()

    def observe(self) -> Obs:
        """robomimic's observation dict: eef pose (quaternion x-y-z-w), fingers, object."""
        o = self._obs
        obs = {
            "robot0_eef_pos": o["robot0_eef_pos"],
            "robot0_eef_quat": o["robot0_eef_quat"],
            "robot0_gripper_qpos": o["robot0_gripper_qpos"],
            "object": np.concatenate([o[k] for k in self.object_keys]),
        }
        obs = {k: np.asarray(v, np.float32) for k, v in obs.items()}
        if self.cameras:
            obs.update(self.render())
        return obs

    def render(self) -> dict[str, np.ndarray]:
        """Both camera images, uint8 HWC, upright."""
        if not self.cameras:
            raise RuntimeError("this env was built with cameras=False")
        return {k: np.ascontiguousarray(self._obs[k][::-1]) for k in self.image_keys}

    def close(self) -> None:
        self.env.close()

    # ----------------------------------------------------------------- state
    def get_state(self) -> np.ndarray:
        return np.asarray(self.sim.get_state().flatten(), np.float64)

    def set_state(self, state) -> None:
        state = np.asarray(state, dtype=np.float64)
        expected = self.get_state().shape
        if state.shape != expected:
            raise ValueError(f"expected a state of shape {expected}, got {state.shape}")
        self.sim.set_state_from_flattened(state)
        self._refresh()

    def env_args(self) -> dict:
        """robomimic's env_args: what rebuilds this env (`type` 1 = robosuite)."""
        return {
            "env_name": self.robosuite_env,
            "type": ROBOSUITE_ENV_TYPE,
            "env_version": _robosuite_version(),
            "env_kwargs": self.kwargs,
            "rise_env": self.name,
        }

    def set_free_pose(self, joint: str, pos, quat_wxyz) -> None:
        """Teleport a free joint (MuJoCo's w-x-y-z quaternion order)."""
        self.sim.data.set_joint_qpos(joint, np.concatenate([pos, quat_wxyz]))
        self.sim.data.set_joint_qvel(joint, np.zeros(6))

    # ----------------------------------------------------------------- scripting the Panda
    @staticmethod
    def down_frame(heading: float) -> np.ndarray:
        """Eef frame (as `robot0_eef_quat` reports it) pointing straight down, its x axis along
        the horizontal direction `heading`: the fingers close across it, along its y axis."""
        c, s = np.cos(heading), np.sin(heading)
        return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])

    @staticmethod
    def eef_frame(obs: Obs) -> np.ndarray:
        from robosuite.utils import transform_utils as T

        return T.quat2mat(obs["robot0_eef_quat"].astype(np.float64))

    def eef_heading(self, obs: Obs) -> float:
        """Direction of the eef's x axis about world z (0 at home), unwrapped to where the last
        joint is (within half a turn of its middle)."""
        r = self.eef_frame(obs)
        mid = self.wrist_mid(obs["robot0_eef_pos"][:2])
        return mid + float(wrap_angle(np.arctan2(r[1, 0], r[0, 0]) - mid))

    def wrist_mid(self, xy) -> float:
        """The heading that puts the last joint mid-range with the eef above `xy`."""
        d = np.asarray(xy, dtype=np.float64) - self.BASE_XY
        return self.Q7_HOME + float(np.arctan2(d[1], d[0]))

    def wrist_range(self, xy) -> tuple[float, float]:
        mid = self.wrist_mid(xy)
        return mid - self.Q7_LIMIT, mid + self.Q7_LIMIT

    def rotation_error(self, obs: Obs, heading: float) -> np.ndarray:
        """Axis-angle (world frame) from the eef's orientation to `down_frame(heading)`: it
        turns the gripper to the heading and levels any roll or pitch."""
        from robosuite.utils import transform_utils as T

        q = T.mat2quat(self.down_frame(heading) @ self.eef_frame(obs).T)
        return T.quat2axisangle(q if q[3] >= 0 else -q)

    def servo_action(
        self, obs: Obs, pos, heading: float, grip: float, speed: float = 1.0, gain: float = 1.5
    ) -> np.ndarray:
        """Proportional action towards an eef pose, in a straight line at <= `speed`.

        Turns go towards `heading` at most MAX_TURN at a time, the way its sign says (not
        the shortest way, which could leave the wrist's range), through well-conditioned
        rotation errors even for half turns; and only as far as the wrist goes where the eef
        is (a turn planned for the goal completes on the way there)."""
        now = self.eef_heading(obs)
        heading = now + float(np.clip(heading - now, -self.MAX_TURN, self.MAX_TURN))
        heading = float(np.clip(heading, *self.wrist_range(obs["robot0_eef_pos"][:2])))
        d_pos = (np.asarray(pos) - obs["robot0_eef_pos"]) / self.POS_SCALE * gain
        d_rot = self.rotation_error(obs, heading) / self.ROT_SCALE * gain
        d_pos *= min(1.0, speed / max(np.abs(d_pos).max(), 1e-9))
        d_rot *= min(1.0, speed / max(np.abs(d_rot).max(), 1e-9))
        return np.concatenate([d_pos, d_rot, [grip]])

    def reached(self, obs: Obs, pos, heading: float, tol: float, turn_tol: float) -> bool:
        return bool(
            np.linalg.norm(pos - obs["robot0_eef_pos"]) < tol
            and np.linalg.norm(self.rotation_error(obs, heading)) < turn_tol
        )

    def rise_to(self, obs: Obs, dz: float, grip: float, style: Style, max_steps: int = 30):
        """Straight up (or down) to `dz` above the table, keeping x, y and heading."""
        goal = obs["robot0_eef_pos"].astype(np.float64)
        goal[2] = self.table_z + dz
        heading = self.eef_heading(obs)
        return (
            yield from self.servo(
                obs, lambda o: (goal, heading), grip, style, tol=0.01, max_steps=max_steps
            )
        )


def _robosuite_version() -> str:
    import robosuite

    return robosuite.__version__
