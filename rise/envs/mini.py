"""Shared base for the "mini" tier tasks: a Cartesian two-finger gripper above a table.

Every mini task reuses the same table, gripper, cameras, action interface, observation dict,
state save/restore and scripted-controller plumbing; a task only adds its objects (MJCF),
its initial-state regions, its success test and its scripted controllers.

The gripper is a body on slide joints (x, y, z) plus a yaw hinge, driven by stiff position
actuators (a stand-in for an operational-space arm controller); its two slide fingers are
position controlled with a bounded force, so objects are held by contact friction only.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
# 84 x 84 renders are too small to gain from Mesa llvmpipe's worker threads (they only cost).
os.environ.setdefault("LP_NUM_THREADS", "1")

import weakref  # noqa: E402
from collections.abc import Callable, Generator  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

Obs = dict[str, np.ndarray]
# A scripted program is a generator: it receives obs via send() and yields actions.
Program = Generator[np.ndarray, Obs, Obs]

GRIPPER_GEOM = 'contype="2" conaffinity="0"'  # hits objects and obstacles, never the table
OBJECT_GEOM = 'contype="1" conaffinity="3"'  # hits the table, obstacles, objects, gripper
TABLE_GEOM = 'contype="1" conaffinity="1"'


def look_at(pos, target) -> str:
    """MJCF `xyaxes` for a camera at `pos` looking at `target` with the world z axis up."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.4f}" for v in (*right, *up))


def fmt(*values: float) -> str:
    return " ".join(f"{v:.5g}" for v in values)


def wrap_angle(a):
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def quat_yaw(q) -> float:
    """Heading (rotation about world z) of a w-x-y-z quaternion's x axis; robust to tilt."""
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


OPEN, CLOSE = -1.0, 1.0  # gripper commands of every tier's scripted controllers


def rot2d(a: float) -> np.ndarray:
    """2 x 2 rotation by `a` (radians) in the table's plane."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]])


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


@dataclass(frozen=True)
class Style:
    """How a scripted controller moves in one episode: its own rng, speed and action noise.

    `speed` caps the action magnitude (1 = full scale); `noise` is the std of Gaussian noise
    added to the motion part of every action, in action units (0.05 ~ 1 mm).
    """

    rng: np.random.Generator
    speed: float = 1.0
    noise: float = 0.0

    def slower(self, factor: float) -> Style:
        return replace(self, speed=self.speed * factor)


@dataclass(frozen=True)
class Source:
    """How one dataset of a task is collected: the region its episodes start from, and
    whether only successful episodes are kept (as an operator discards a botched demo).
    The controller is the env's `scripted_<source name>(rng)` method."""

    region: str
    successes_only: bool


class ScriptedController:
    """Callable obs -> action around a generator program; one instance per episode.

    `program(obs)` is a generator function: it gets the first obs as argument and every
    later obs from the value of its `yield action` expressions. When it finishes, the
    controller keeps the gripper where it is.
    """

    def __init__(self, program: Callable[[Obs], Program], action_dim: int):
        self._program = program
        self._gen: Program | None = None
        self._idle = np.zeros(action_dim)

    def __call__(self, obs: Obs) -> np.ndarray:
        try:
            if self._gen is None:
                self._gen = self._program(obs)
                action = next(self._gen)
            else:
                action = self._gen.send(obs)
        except StopIteration:
            return self._idle.copy()
        self._idle[-1] = action[-1]  # keep the last gripper command when idling
        return np.asarray(action, dtype=np.float64)


class ScriptedEnv:
    """What every tier's envs share: a data source `<name>` is collected by
    `scripted_<name>(rng)`, a program written with the closed-loop moves below; a tier says
    when the gripper has reached a pose (`reached`) and how to move towards it
    (`servo_action`, an action with the gripper command last)."""

    name: str
    sources: dict[str, Source]
    action_dim: int
    parallel_envs: int | None = None  # envs an evaluation steps together (None: one an episode)

    def controller(self, source: str, rng: np.random.Generator) -> ScriptedController:
        """The scripted controller that collects `source` (one instance per episode)."""
        if source not in self.sources:
            raise ValueError(
                f"task {self.name!r} has no data source {source!r}; known: {sorted(self.sources)}"
            )
        return getattr(self, f"scripted_{source}")(rng)

    def reached(self, obs: Obs, pos, heading: float, tol: float, turn_tol: float) -> bool:
        """The gripper is within `tol` of `pos` and `turn_tol` of `heading`."""
        raise NotImplementedError

    def servo_action(self, obs: Obs, pos, heading: float, grip: float, speed: float):
        raise NotImplementedError

    def servo(
        self,
        obs: Obs,
        target: Callable[[Obs], tuple[np.ndarray, float]],
        grip: float,
        style: Style,
        *,
        tol: float = 0.004,
        turn_tol: float = 0.05,
        until: Callable[[Obs], bool] | None = None,
        max_steps: int = 50,
    ) -> Program:
        """Closed-loop move: follow `target(obs) -> (xyz, heading)` until within tolerance.

        Stops early when `until(obs)` holds instead, and gives up after `max_steps` (a script
        must never hang when something blocks the gripper).
        """
        for _ in range(max_steps):
            pos, heading = target(obs)
            if until is not None:
                if until(obs):
                    break
            elif self.reached(obs, pos, heading, tol, turn_tol):
                break
            action = self.servo_action(obs, pos, heading, grip, style.speed)
            action[:-1] += style.noise * style.rng.standard_normal(self.action_dim - 1)
            obs = yield np.clip(action, -1.0, 1.0)
        return obs

    def hold(self, obs: Obs, grip: float, steps: int) -> Program:
        """Stay put for `steps` steps with the given gripper command (e.g. to close on a grasp)."""
        for _ in range(steps):
            obs = yield np.append(np.zeros(self.action_dim - 1), grip)
        return obs

    def settle(self, obs: Obs, grip: float, steps: int = 20) -> Program:
        """Hold still (the gripper commanded `grip`) until the object stops moving."""
        for _ in range(steps):
            before = obs["object"][:3].copy()
            obs = yield from self.hold(obs, grip, 1)
            if np.abs(obs["object"][:3] - before).max() < 2e-4:
                break
        return obs

    def wander(
        self,
        obs: Obs,
        style: Style,
        low,
        high,
        heading: Callable[[Obs, np.ndarray], float] = lambda o, pose: pose[3],
        max_steps: int = 20,
    ) -> Program:
        """Play's idle motion: the gripper to 1-3 random poses (x, y, z, yaw) in the box
        `low`-`high`, opening or closing; `heading(obs, pose)` turns a pose's yaw into the
        gripper heading to servo to."""
        rng = style.rng
        for _ in range(rng.integers(1, 4)):
            pose = rng.uniform(low, high)
            obs = yield from self.servo(
                obs,
                lambda o, pose=pose: (pose[:3], heading(o, pose)),
                rng.choice([OPEN, CLOSE]),
                style,
                tol=0.01,
                turn_tol=0.1,
                max_steps=max_steps,
            )
        return obs


class MiniEnv(ScriptedEnv):
    """Base class: table + Cartesian gripper + two cameras; subclasses add objects."""

    name = "mini"
    horizon = 200
    action_dim = 5
    lowdim_keys = ("eef_pos", "eef_quat", "gripper_qpos", "object")
    proprio_keys = (
        "eef_pos",
        "eef_quat",
        "gripper_qpos",
    )  # what image policies see besides cameras
    image_keys = ("agentview_image", "eye_in_hand_image")
    gripper_key = "gripper_qpos"
    regions = ("expert", "play", "eval")
    # Datasets this env can collect (name -> Source); subclasses add non-expert kinds.
    sources: dict[str, Source] = {
        "expert": Source("expert", successes_only=True),
        "play": Source("play", successes_only=False),
    }
    camera_names = ("agentview", "eye_in_hand")
    object_joint = "object"  # free joint whose pose is the "object" observation

    # Physics: 20 Hz control, 10 substeps of 5 ms (implicit damping keeps that stable).
    TIMESTEP = 0.005
    SUBSTEPS = 10
    # Action scaling: a full-scale action moves the command 2 cm / 0.15 rad per step.
    POS_SCALE = 0.02
    YAW_SCALE = 0.15
    # The command may lead the measured pose by at most this much (bounds contact forces).
    MAX_LEAD = np.array([0.02, 0.02, 0.02, 0.3])
    TABLE_HALF = 0.3
    # Gripper joint limits (x, y, z, yaw); the z floor keeps the fingertips 2 mm above the table.
    ARM_LOW = np.array([-0.25, -0.25, 0.014, -3.5])
    ARM_HIGH = np.array([0.25, 0.25, 0.30, 3.5])
    FINGER_OPEN = 0.045  # finger travel from the centre line: a 9 cm maximal opening
    # Initial gripper pose box (x, y, z, yaw).
    START_LOW = np.array([-0.03, -0.03, 0.14, -0.1])
    START_HIGH = np.array([0.03, 0.03, 0.18, 0.1])

    def __init__(self, cameras: bool = False, image_size: int = 84):
        self.cameras = bool(cameras)
        self.image_size = int(image_size)
        self.model = mujoco.MjModel.from_xml_string(self.build_xml())
        self.data = mujoco.MjData(self.model)
        jnt = self.model.joint
        self._arm_qadr = np.array([jnt(f"gripper_{a}").qposadr[0] for a in ("x", "y", "z", "yaw")])
        self._finger_qadr = np.array([jnt(f"finger_{s}").qposadr[0] for s in ("left", "right")])
        self._obj_qadr = int(jnt(self.object_joint).qposadr[0])
        self._action_scale = np.array([self.POS_SCALE] * 3 + [self.YAW_SCALE])
        # What stepping depends on; forces are never applied and the clock never matters.
        st = mujoco.mjtState
        self._state_spec = (
            int(st.mjSTATE_PHYSICS) | int(st.mjSTATE_WARMSTART) | int(st.mjSTATE_CTRL)
        )
        self._renderer = None
        if self.cameras:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
            # Frees the GL context once: on close(), garbage collection or interpreter exit
            # (at teardown EGL may already be unloaded, which makes Renderer.__del__ fail).
            self._close_renderer = weakref.finalize(self, self._renderer.close)

    # ----------------------------------------------------------------- scene (MJCF)
    def build_xml(self) -> str:
        size = max(640, self.image_size)
        return f"""<mujoco model="{self.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{self.TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{size}" offheight="{size}"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <default>
    <geom solref="{2 * self.TIMESTEP} 1"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="64" height="64"
             rgb1="0.55 0.45 0.35" rgb2="0.5 0.4 0.3"/>
    <material name="table" texture="grid" texrepeat="6 6"/>
  </asset>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1" directional="true" castshadow="false"/>
{self.table_xml()}
{self.agentview_xml()}
{self.gripper_xml()}
{self.objects_xml()}
  </worldbody>
  <actuator>
{self.actuators_xml()}
  </actuator>
</mujoco>"""

    def table_xml(self) -> str:
        """Table top at z = 0: a finite-looking plane (collisions are with the infinite plane)."""
        h = self.TABLE_HALF
        return (
            f'    <geom name="table" type="plane" size="{fmt(h, h)} 0.01" material="table" '
            f'friction="0.5 0.005 0.0001" {TABLE_GEOM}/>'
        )

    def agentview_xml(self) -> str:
        pos = (0.62, 0.0, 0.62)
        return (
            f'    <camera name="agentview" pos="{fmt(*pos)}" '
            f'xyaxes="{look_at(pos, (-0.02, 0.0, -0.02))}" fovy="45"/>'
        )

    def gripper_xml(self) -> str:
        """Slide base (x, y, z) carrying a yaw body with palm, eye-in-hand camera and fingers.

        The yaw body's origin (the `eef` site) is the centre between the fingertips, so
        `eef_pos` is where an object is held.
        """
        lo, hi, f = self.ARM_LOW, self.ARM_HIGH, self.FINGER_OPEN
        finger = 'type="box" size="0.01 0.005 0.016" mass="0.02" rgba="0.25 0.25 0.3 1"'
        finger += f' friction="2 0.02 0.0001" condim="4" {GRIPPER_GEOM}'
        return f"""    <body name="gripper_base" gravcomp="1">
      <inertial pos="0 0 0" mass="0.5" diaginertia="1e-3 1e-3 1e-3"/>
      <joint name="gripper_x" type="slide" axis="1 0 0" range="{fmt(lo[0], hi[0])}"/>
      <joint name="gripper_y" type="slide" axis="0 1 0" range="{fmt(lo[1], hi[1])}"/>
      <joint name="gripper_z" type="slide" axis="0 0 1" range="{fmt(lo[2], hi[2])}"/>
      <body name="gripper" gravcomp="1">
        <joint name="gripper_yaw" type="hinge" axis="0 0 1" range="{fmt(lo[3], hi[3])}"
               armature="0.002"/>
        <site name="eef" size="0.004" rgba="1 0 0 0.5" group="4"/>
        <geom name="palm" type="box" size="0.012 0.056 0.008" pos="0 0 0.028" mass="0.2"
              rgba="0.3 0.3 0.35 1" {GRIPPER_GEOM}/>
        <geom name="wrist" type="cylinder" size="0.018 0.04" pos="0 0 0.076" mass="0.05"
              rgba="0.7 0.7 0.72 1" contype="0" conaffinity="0"/>
        <camera name="eye_in_hand" pos="0.03 0 0.045" xyaxes="0 -1 0 1 0 0" fovy="75"/>
        <body name="finger_left" gravcomp="1">
          <joint name="finger_left" type="slide" axis="0 1 0" range="0 {f}" armature="0.05"
                 damping="40"/>
          <geom name="finger_left" pos="0 0.005 0.004" {finger}/>
        </body>
        <body name="finger_right" gravcomp="1">
          <joint name="finger_right" type="slide" axis="0 -1 0" range="0 {f}" armature="0.05"
                 damping="40"/>
          <geom name="finger_right" pos="0 -0.005 0.004" {finger}/>
        </body>
      </body>
    </body>"""

    def actuators_xml(self) -> str:
        """Stiff, critically damped position servos; actuator order = ctrl layout."""
        lo, hi, f = self.ARM_LOW, self.ARM_HIGH, self.FINGER_OPEN
        rows = [
            f'    <position name="{a}" joint="gripper_{a}" kp="1500" dampratio="1" '
            f'ctrlrange="{fmt(lo[i], hi[i])}" forcerange="-40 40"/>'
            for i, a in enumerate(("x", "y", "z"))
        ]
        rows.append(
            f'    <position name="yaw" joint="gripper_yaw" kp="2" dampratio="1" '
            f'ctrlrange="{fmt(lo[3], hi[3])}" forcerange="-1 1"/>'
        )
        rows += [
            f'    <position name="finger_{s}" joint="finger_{s}" kp="1000" dampratio="1" '
            f'ctrlrange="0 {f}" forcerange="-10 10"/>'
            for s in ("left", "right")
        ]
        return "\n".join(rows)

    def objects_xml(self) -> str:
        """Task bodies (static obstacles in the world body, objects with free joints)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- task interface
    # (low, high) boxes of each region's initial configuration, e.g. (x, y, yaw) of an object
    REGIONS: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def sample_init(self, region: str, rng: np.random.Generator) -> np.ndarray:
        """Initial object configuration drawn uniformly from `region`'s box, rejecting those
        that block the task (`valid_init`)."""
        if region not in self.REGIONS:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        low, high = self.REGIONS[region]
        while True:
            pose = rng.uniform(low, high)
            if self.valid_init(*pose):
                return pose

    def valid_init(self, *init: float) -> bool:
        """Whether an initial configuration leaves the task doable (the task's fixtures)."""
        return True

    def place_objects(self, init: np.ndarray) -> None:
        """Write the configuration drawn by `sample_init` into qpos."""
        raise NotImplementedError

    def success(self) -> bool:
        raise NotImplementedError

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        raise NotImplementedError

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        raise NotImplementedError

    # ----------------------------------------------------------------- episode API
    def reset(self, region: str, rng: np.random.Generator) -> Obs:
        """New episode: object pose from `sample_init(region)`, then a random gripper start."""
        if region not in self.regions:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        init = self.sample_init(region, rng)
        mujoco.mj_resetData(self.model, self.data)
        start = rng.uniform(self.START_LOW, self.START_HIGH)
        self.place_gripper(start[:3], start[3], opening=self.FINGER_OPEN)
        self.place_objects(init)
        return self.observe()

    def step(self, action) -> Obs:
        """Apply one 5-d delta-EEF action (clipped to [-1, 1]) and return the new obs.

        The gripper command integrates the deltas (so a zero action holds the pose even under
        load) but may not lead the measured pose by more than MAX_LEAD. The gripper channel is
        binary: > 0 closes, otherwise open.
        """
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if a.shape != (self.action_dim,):
            raise ValueError(f"expected a {self.action_dim}-d action, got shape {a.shape}")
        arm = self.data.qpos[self._arm_qadr]
        cmd = self.data.ctrl[:4] + a[:4] * self._action_scale
        cmd = np.clip(cmd, arm - self.MAX_LEAD, arm + self.MAX_LEAD)
        self.data.ctrl[:4] = np.clip(cmd, self.ARM_LOW, self.ARM_HIGH)
        self.data.ctrl[4:6] = 0.0 if a[4] > 0 else self.FINGER_OPEN
        mujoco.mj_step(self.model, self.data, nstep=self.SUBSTEPS)
        return self.observe()

    def observe(self) -> Obs:
        """Observation dict; low-dim values come straight from qpos (no stale kinematics)."""
        q = self.data.qpos
        arm = q[self._arm_qadr]
        obs = {
            "eef_pos": arm[:3].astype(np.float32),
            "eef_quat": yaw_quat(arm[3]).astype(np.float32),
            "gripper_qpos": q[self._finger_qadr].astype(np.float32),
            "object": self.object_obs().astype(np.float32),
        }
        if self._renderer is not None:
            obs.update(self.render())
        return obs

    def object_obs(self) -> np.ndarray:
        """Pose (position + w-x-y-z quaternion) of the task's free-joint object."""
        return self.data.qpos[self._obj_qadr : self._obj_qadr + 7].copy()

    def render(self) -> dict[str, np.ndarray]:
        """Both camera images, uint8 HWC, upright."""
        if self._renderer is None:
            raise RuntimeError("this env was built with cameras=False")
        # Kinematics only: refreshes poses without touching the physics state.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        images = {}
        for cam in self.camera_names:
            self._renderer.update_scene(self.data, camera=cam)
            images[f"{cam}_image"] = self._renderer.render().copy()
        return images

    def close(self) -> None:
        if self._renderer is not None:
            self._close_renderer()
            self._renderer = None

    # ----------------------------------------------------------------- state
    def get_state(self) -> np.ndarray:
        """Flat float64 vector [qpos, qvel, solver warm start, actuator commands]."""
        state = np.empty(mujoco.mj_stateSize(self.model, self._state_spec))
        mujoco.mj_getState(self.model, self.data, state, self._state_spec)
        return state

    def set_state(self, state) -> None:
        """Restore a `get_state` vector exactly (stepping afterwards is bit-identical)."""
        state = np.asarray(state, dtype=np.float64)
        expected = mujoco.mj_stateSize(self.model, self._state_spec)
        if state.shape != (expected,):
            raise ValueError(f"expected a state of shape ({expected},), got {state.shape}")
        mujoco.mj_setState(self.model, self.data, state, self._state_spec)
        mujoco.mj_kinematics(self.model, self.data)

    def env_args(self) -> dict:
        return {
            "env_name": self.name,
            "type": "rise_mini",
            "env_kwargs": {"cameras": self.cameras, "image_size": self.image_size},
        }

    def place_gripper(self, pos, yaw: float, opening: float) -> None:
        """Teleport the gripper (qpos and matching commands, at rest) - for resets and tests."""
        arm = np.array([*pos, yaw], dtype=np.float64)
        self.data.qpos[self._arm_qadr] = arm
        self.data.qvel[self.model.joint("gripper_x").dofadr[0] + np.arange(4)] = 0.0
        self.data.ctrl[:4] = arm
        self.data.qpos[self._finger_qadr] = opening
        self.data.ctrl[4:6] = opening

    def set_free_pose(self, joint: str, pos, quat) -> None:
        """Teleport a free-joint object (zero velocity) - for resets and tests."""
        jnt = self.model.joint(joint)
        self.data.qpos[jnt.qposadr[0] : jnt.qposadr[0] + 7] = [*pos, *quat]
        self.data.qvel[jnt.dofadr[0] : jnt.dofadr[0] + 6] = 0.0

    # ----------------------------------------------------------------- scripted control
    @staticmethod
    def eef_yaw(obs: Obs) -> float:
        q = obs["eef_quat"]
        return float(2 * np.arctan2(q[3], q[0]))

    def servo_action(
        self, obs: Obs, pos, yaw: float, grip: float, speed: float = 1.0, gain: float = 0.8
    ) -> np.ndarray:
        """Proportional action towards an EEF pose, moving in a straight line at <= `speed`."""
        d = np.empty(4)
        d[:3] = (np.asarray(pos) - obs["eef_pos"]) / self.POS_SCALE * gain
        d[3] = wrap_angle(yaw - self.eef_yaw(obs)) / self.YAW_SCALE * gain
        peak = np.abs(d[:3]).max()
        if peak > speed:
            d[:3] *= speed / peak
        d[3] = np.clip(d[3], -speed, speed)
        return np.append(d, grip)

    def reached(self, obs: Obs, pos, yaw: float, tol: float, turn_tol: float) -> bool:
        return bool(
            np.linalg.norm(pos - obs["eef_pos"]) < tol
            and abs(wrap_angle(yaw - self.eef_yaw(obs))) < turn_tol
        )

    def rise_to(
        self, obs: Obs, z: float, grip: float, style: Style, max_steps: int = 20
    ) -> Program:
        """Straight up (or down) to height `z`, keeping x, y and yaw."""
        xy, yaw = obs["eef_pos"][:2].astype(np.float64), self.eef_yaw(obs)
        goal = np.array([xy[0], xy[1], z])
        return (
            yield from self.servo(
                obs, lambda o: (goal, yaw), grip, style, tol=0.01, max_steps=max_steps
            )
        )

    # ------------------------------------------- carrying a held object (each task's object)
    def held_yaw(self, obs: Obs) -> float:
        """Heading of the object in the gripper, as the task reads it from `object`."""
        raise NotImplementedError

    def turn_goal(self, obs: Obs, goal_yaw: float) -> float:
        """Gripper yaw that turns the held object to `goal_yaw` the short way round, unless
        that leaves the yaw joint's range."""
        phi = self.eef_yaw(obs)
        delta = float(wrap_angle(goal_yaw - self.held_yaw(obs)))
        if abs(phi + delta) > self.ARM_HIGH[3] - 0.2:  # go the other way round
            delta -= 2 * np.pi * np.sign(delta)
        return phi + delta

    def over_goal(self, goal_xy, goal_yaw: float, xy_tol: float, yaw_tol: float):
        """A servo's `until`: the held object's centre within `xy_tol` of `goal_xy` and its
        yaw within `yaw_tol` of `goal_yaw`."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)

        def check(o: Obs) -> bool:
            close = np.linalg.norm(o["object"][:2].astype(np.float64) - goal_xy) < xy_tol
            return bool(close and abs(wrap_angle(self.held_yaw(o) - goal_yaw)) < yaw_tol)

        return check

    def carry_toward(self, obs: Obs, style: Style, goal_xy, goal_yaw: float, **servo) -> Program:
        """Carry the held object towards (goal_xy, goal_yaw) at the gripper's current height,
        through the task's `carry_target(obs, goal_xy, goal_yaw, yaw_goal, z)`."""
        phi_goal, z = self.turn_goal(obs, goal_yaw), float(obs["eef_pos"][2])
        return (
            yield from self.servo(
                obs,
                lambda o: self.carry_target(o, goal_xy, goal_yaw, phi_goal, z),
                CLOSE,
                style,
                **servo,
            )
        )

    def sweep(self, obs: Obs, style: Style, start, end) -> Program:
        """Play's push: closed fingers down at `start` (beside the object), slowly through to
        `end`, back up to HOVER_Z."""
        yaw, low = self.eef_yaw(obs), self.GRASP_Z + 0.004
        for xy, z, s in (
            (start, self.HOVER_Z, style),
            (start, low, style),
            (end, low, style.slower(0.5)),
        ):
            goal = np.array([xy[0], xy[1], z])
            obs = yield from self.servo(
                obs, lambda o, goal=goal: (goal, yaw), CLOSE, s, tol=0.006, max_steps=30
            )
        return (yield from self.rise_to(obs, self.HOVER_Z, CLOSE, style))

    def relocate(
        self, obs: Obs, style: Style, rng: np.random.Generator, jitter: float = 0.01
    ) -> Program:
        """Play's pick-and-place: pick the object within `jitter` of GRASP_ALONG, put it down
        at a pose drawn from the expert (30 %), eval (20 %) or play (50 %) region, so play data
        both visits eval-like states and carries the object into the expert's start states."""
        obs = yield from self.pick(obs, style, self.GRASP_ALONG + rng.uniform(-jitter, jitter))
        if not self.holding(obs):
            return (yield from self.hold(obs, OPEN, 3))
        region = rng.choice(["expert", "eval", "play"], p=[0.3, 0.2, 0.5])
        x, y, yaw = self.sample_init(region, rng)
        return (yield from self.place(obs, style, (x, y), yaw, 0.01, 0.15))
