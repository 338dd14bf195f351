"""MiniSquarePeg: put a square nut (ring + handle) over a fixed square peg.

A small analogue of robomimic's Square task. The peg is square and the hole leaves 6 mm of
clearance per side, so the nut's yaw has to match the peg's (modulo 90 degrees, within about
+-20 degrees) for the peg to go through.

Initial-state regions (nut centre x, y and yaw; the peg stands at the origin):
  expert  a 6 x 6 cm square on the -y side, yaw within +-15 degrees (where demos start);
  eval    a band on the +y side, yaw within +-45 degrees: never visited by expert demos;
  play    anywhere on the reachable table with any yaw, as long as the nut clears the peg.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rise.envs.mini import (
    OBJECT_GEOM,
    MiniEnv,
    Obs,
    Program,
    ScriptedController,
    Style,
    fmt,
    quat_yaw,
    wrap_angle,
    yaw_quat,
)

OPEN, CLOSE = -1.0, 1.0


def _rot(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]])


class MiniSquarePeg(MiniEnv):
    name = "mini_square_peg"
    horizon = 200
    object_joint = "nut"

    PEG_XY = np.array([0.0, 0.0])
    PEG_HALF = 0.02  # 4 x 4 cm peg
    PEG_HEIGHT = 0.06
    HOLE_HALF = 0.026  # 5.2 cm hole: 6 mm clearance per side
    WALL = 0.012  # ring wall thickness
    NUT_HALF_H = 0.01  # the nut is 2 cm tall; its centre rests at z = 1 cm
    HANDLE_LEN = 0.06
    HANDLE_HALF_W = 0.01
    GRASP_ALONG = 0.07  # grasp point on the handle, along the nut's x axis from its centre
    SUCCESS_XY = 0.01
    SUCCESS_Z = 0.004  # nut centre at most this far above its resting height

    # (x, y, yaw) boxes; play additionally rejects poses that overlap the peg.
    REGIONS = {
        "expert": (np.array([-0.03, -0.17, -np.pi / 12]), np.array([0.03, -0.11, np.pi / 12])),
        "eval": (np.array([-0.12, 0.11, -np.pi / 4]), np.array([0.12, 0.17, np.pi / 4])),
        "play": (np.array([-0.18, -0.18, -np.pi]), np.array([0.18, 0.18, np.pi])),
    }
    GRASP_Z = 0.016  # eef height for grasping the handle (fingertips 4 mm above the table)
    HOVER_Z = 0.09  # open fingertips clear the peg top
    CARRY_Z = 0.13  # a held nut clears the peg top

    # ----------------------------------------------------------------- scene
    def objects_xml(self) -> str:
        h, t, hz = self.HOLE_HALF, self.WALL, self.NUT_HALF_H
        lh = self.HANDLE_LEN / 2
        nut = f'type="box" density="600" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        ring = f'{nut} rgba="0.85 0.55 0.15 1"'
        walls = [
            ("wall_py", (h + t, t / 2, hz), (0, h + t / 2, 0)),
            ("wall_ny", (h + t, t / 2, hz), (0, -h - t / 2, 0)),
            ("wall_px", (t / 2, h, hz), (h + t / 2, 0, 0)),
            ("wall_nx", (t / 2, h, hz), (-h - t / 2, 0, 0)),
        ]
        geoms = "\n".join(
            f'      <geom name="nut_{n}" size="{fmt(*s)}" pos="{fmt(*p)}" {ring}/>'
            for n, s, p in walls
        )
        p = self.PEG_HALF
        return f"""    <geom name="peg" type="box" size="{fmt(p, p, self.PEG_HEIGHT / 2)}"
          pos="{fmt(*self.PEG_XY, self.PEG_HEIGHT / 2)}" rgba="0.35 0.45 0.6 1"
          friction="0.5 0.005 0.0001" {OBJECT_GEOM}/>
    <body name="nut" pos="0 0 {hz}">
      <freejoint name="nut"/>
{geoms}
      <geom name="nut_handle" size="{fmt(lh, self.HANDLE_HALF_W, hz)}"
            pos="{fmt(h + t + lh, 0, 0)}" {nut} rgba="0.75 0.35 0.1 1"/>
    </body>"""

    # ----------------------------------------------------------------- initial states
    def clears_peg(self, x: float, y: float, yaw: float, margin: float = 0.01) -> bool:
        """True when a flat nut at (x, y, yaw) keeps `margin` away from the peg (bounding discs)."""
        peg_r = self.PEG_HALF * np.sqrt(2)
        outer = self.HOLE_HALF + self.WALL
        center = np.array([x, y])
        if np.linalg.norm(center - self.PEG_XY) < outer * np.sqrt(2) + peg_r + margin:
            return False
        # The handle as a segment with the radius of its half cross-section.
        axis = np.array([np.cos(yaw), np.sin(yaw)])
        a, b = center + outer * axis, center + (outer + self.HANDLE_LEN) * axis
        s = np.clip(np.dot(self.PEG_XY - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        dist = np.linalg.norm(a + s * (b - a) - self.PEG_XY)
        return dist >= self.HANDLE_HALF_W * np.sqrt(2) + peg_r + margin

    def graspable(self, x: float, y: float, yaw: float) -> bool:
        """The handle is within reach and the open fingers around it stay clear of the peg."""
        grasp = np.array([x, y]) + self.GRASP_ALONG * np.array([np.cos(yaw), np.sin(yaw)])
        in_reach = np.all(np.abs(grasp) <= self.ARM_HIGH[:2] - 0.03)
        finger_reach = self.FINGER_OPEN + 0.02 + self.PEG_HALF * np.sqrt(2)
        return bool(in_reach and np.linalg.norm(grasp - self.PEG_XY) > finger_reach)

    def sample_init(self, region: str, rng: np.random.Generator) -> np.ndarray:
        """Nut (x, y, yaw) drawn uniformly from `region`, rejecting poses that block the task."""
        if region not in self.REGIONS:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        low, high = self.REGIONS[region]
        while True:
            pose = rng.uniform(low, high)
            if self.clears_peg(*pose) and self.graspable(*pose):
                return pose

    def place_objects(self, init: np.ndarray) -> None:
        x, y, yaw = init
        self.place_nut((x, y, self.NUT_HALF_H), yaw)

    def place_nut(self, pos, yaw: float) -> None:
        self.set_free_pose("nut", pos, yaw_quat(yaw))

    def success(self) -> bool:
        """The peg goes through the hole: nut centred on the peg and down at table height."""
        pos = self.object_obs()[:3]
        centred = np.linalg.norm(pos[:2] - self.PEG_XY) < self.SUCCESS_XY
        return bool(centred and pos[2] < self.NUT_HALF_H + self.SUCCESS_Z)

    # ----------------------------------------------------------------- scripted control
    @staticmethod
    def nut_pose(obs: Obs) -> tuple[np.ndarray, float]:
        o = obs["object"].astype(np.float64)
        return o[:3], quat_yaw(o[3:])

    def handle_target(self, obs: Obs, along: float, z: float) -> tuple[np.ndarray, float]:
        """EEF pose gripping the handle `along` from the nut centre, fingers across the handle.

        The gripper's yaw is the nut's modulo pi (taken in [-pi/2, pi/2]) so the fingers close
        across the handle whichever way it points.
        """
        c, psi = self.nut_pose(obs)
        xy = c[:2] + along * np.array([np.cos(psi), np.sin(psi)])
        return np.array([xy[0], xy[1], z]), float(wrap_angle(2 * psi) / 2)

    def carry_target(
        self, obs: Obs, goal_xy, goal_yaw: float, phi_goal: float, z: float
    ) -> tuple[np.ndarray, float]:
        """EEF pose that puts the held nut at (goal_xy, goal_yaw), assuming a rigid grasp.

        Recomputed from the observed nut pose every step, so slip in the grasp is corrected.
        `phi_goal` (the gripper yaw expected at the goal) picks the rotation's direction so it
        stays within the yaw joint's range and never flips between steps.
        """
        c, psi = self.nut_pose(obs)
        g, phi = obs["eef_pos"].astype(np.float64), self.eef_yaw(obs)
        pred = phi_goal - phi
        delta = pred + float(wrap_angle(goal_yaw - psi - pred))
        xy = np.asarray(goal_xy) + _rot(delta) @ (g[:2] - c[:2])
        return np.array([xy[0], xy[1], z]), phi + delta

    def holding(self, obs: Obs) -> bool:
        """The nut is off the table and between the fingers (not just closed on air)."""
        return bool(obs["object"][2] > self.NUT_HALF_H + 0.02 and obs["gripper_qpos"].min() > 0.004)

    def pick(self, obs: Obs, style: Style, along: float) -> Program:
        """Above the handle, down, close, lift the nut clear of the peg."""
        obs = yield from self.servo(
            obs, lambda o: self.handle_target(o, along, self.HOVER_Z), OPEN, style, max_steps=60
        )
        obs = yield from self.servo(
            obs,
            lambda o: self.handle_target(o, along, self.GRASP_Z),
            OPEN,
            style.slower(0.7),
            tol=0.003,
            max_steps=30,
        )
        obs = yield from self.hold(obs, CLOSE, 4)
        return (yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style))

    def place(
        self, obs: Obs, style: Style, goal_xy, goal_yaw: float, xy_tol: float, yaw_tol: float
    ) -> Program:
        """Carry the held nut above (goal_xy, goal_yaw), lower it to the table, let go."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)
        _, psi = self.nut_pose(obs)
        phi = self.eef_yaw(obs)
        delta = float(wrap_angle(goal_yaw - psi))
        if abs(phi + delta) > self.ARM_HIGH[3] - 0.2:  # go the other way round
            delta -= 2 * np.pi * np.sign(delta)
        phi_goal = phi + delta
        carry_z = float(obs["eef_pos"][2])

        def over_goal(o: Obs) -> bool:
            c, yaw = self.nut_pose(o)
            close = np.linalg.norm(c[:2] - goal_xy) < xy_tol
            return bool(close and abs(wrap_angle(yaw - goal_yaw)) < yaw_tol)

        def lowered(o: Obs) -> tuple[np.ndarray, float]:
            pos, yaw = self.carry_target(o, goal_xy, goal_yaw, phi_goal, 0.0)
            pos[2] = o["eef_pos"][2] - (o["object"][2] - self.NUT_HALF_H) - 0.003
            return pos, yaw

        obs = yield from self.servo(
            obs,
            lambda o: self.carry_target(o, goal_xy, goal_yaw, phi_goal, carry_z),
            CLOSE,
            style,
            until=over_goal,
            max_steps=80,
        )
        obs = yield from self.servo(
            obs,
            lowered,
            CLOSE,
            style.slower(0.6),
            until=lambda o: o["object"][2] < self.NUT_HALF_H + 0.002,
            max_steps=40,
        )
        obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, replace(style, noise=0.0)))

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Pick the nut by its handle, turn it square to the peg, lower it over the peg, release.

        Per-episode randomness: speed, grasp point along the handle, action noise (~1 mm).
        A failed grasp is retried from the nut's new pose (twice, then it gives up).
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.06))
        along = self.GRASP_ALONG + rng.uniform(-0.006, 0.006)

        def program(obs: Obs) -> Program:
            for _ in range(3):
                obs = yield from self.pick(obs, style, along)
                if self.holding(obs):
                    break
                obs = yield from self.hold(obs, OPEN, 3)
            else:
                return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))
            _, psi = self.nut_pose(obs)
            square = np.round(psi / (np.pi / 2)) * (np.pi / 2)  # the peg is square
            return (yield from self.place(obs, style, self.PEG_XY, square, 0.003, 0.04))

        return ScriptedController(program, self.action_dim)

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Undirected coverage: pick-and-place to random poses, pushes and idle wandering.

        Places never target the peg (goals come from `sample_init`, which keeps clear of it).
        30% of them go to the expert region and 20% to the eval region, so play data both
        visits eval-like states and carries the nut from anywhere into the states the expert
        starts from; the rest go anywhere on the table.
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))

        def pick_and_place(obs: Obs) -> Program:
            obs = yield from self.pick(obs, style, self.GRASP_ALONG + rng.uniform(-0.01, 0.01))
            if not self.holding(obs):
                return (yield from self.hold(obs, OPEN, 3))
            region = rng.choice(["expert", "eval", "play"], p=[0.3, 0.2, 0.5])
            x, y, yaw = self.sample_init(region, rng)
            return (yield from self.place(obs, style, (x, y), yaw, 0.01, 0.15))

        def push(obs: Obs) -> Program:
            """Sweep the closed fingers through the nut, from a side away from its handle."""
            c, psi = self.nut_pose(obs)
            for _ in range(20):
                theta = rng.uniform(-np.pi, np.pi)
                d = np.array([np.cos(theta), np.sin(theta)])
                length = rng.uniform(0.04, 0.1)
                start, end = c[:2] - 0.1 * d, c[:2] + length * d
                if (
                    np.dot(d, [np.cos(psi), np.sin(psi)]) > -0.3
                    and np.all(np.abs(start) < self.ARM_HIGH[:2])
                    and np.linalg.norm(start - self.PEG_XY) > 0.06
                    and np.all(np.abs(end) < self.REGIONS["play"][1][:2])
                    and self.clears_peg(*end, psi, margin=0.02)
                ):
                    break
            else:
                return obs
            yaw, low = self.eef_yaw(obs), self.GRASP_Z + 0.004
            for xy, z, s in (
                (start, self.HOVER_Z, style),
                (start, low, style),
                (c[:2] + (length + 0.06) * d, low, style.slower(0.5)),
            ):
                goal = np.array([xy[0], xy[1], z])
                obs = yield from self.servo(
                    obs, lambda o, goal=goal: (goal, yaw), CLOSE, s, tol=0.006, max_steps=30
                )
            return (yield from self.rise_to(obs, self.HOVER_Z, CLOSE, style))

        def wander(obs: Obs) -> Program:
            for _ in range(rng.integers(1, 4)):
                pose = rng.uniform([-0.2, -0.2, 0.08, -np.pi / 2], [0.2, 0.2, 0.2, np.pi / 2])
                obs = yield from self.servo(
                    obs,
                    lambda o, pose=pose: (pose[:3], pose[3]),
                    rng.choice([OPEN, CLOSE]),
                    style,
                    tol=0.01,
                    yaw_tol=0.1,
                    max_steps=20,
                )
            return obs

        def program(obs: Obs) -> Program:
            while True:
                primitive = (pick_and_place, push, wander)[rng.choice(3, p=[0.6, 0.25, 0.15])]
                obs = yield from primitive(obs)

        return ScriptedController(program, self.action_dim)
