"""MiniSquarePeg: put a square nut (ring + handle) over a fixed square peg.

A small analogue of robomimic's Square task. The peg is square, 3 cm wide, in a 5.2 cm hole:
the nut goes down at any yaw once its centre is within 5-11 mm of the peg's axis (11 mm
square to the peg, 5 mm at 45 degrees). A stand-in for a robot task, not a precision
benchmark: with a 4 cm peg (6 mm per side, yaw within about 20 degrees) the policies of the
`cpu` tier carried the nut to the peg from new positions but jammed it on the peg's top
(docs/cpu-scale.md), which hid the coverage story the row is for.

The scene also holds the hook of the square-hook task (`MiniSquareHook`, same scene, other
goal): a post at the far (-x) edge of the table carrying a horizontal arm 18 cm up, with an
upward tip at the arm's end. A nut lowered flat over the tip onto the arm swings down and hangs
from the arm through its hole. The arm is above a nut carried at CARRY_Z, so only a deliberate
lift can hang the nut. Both tasks build the same MJCF, so one play dataset serves both.

Initial-state regions (nut centre x, y and yaw; the peg stands at the origin):
  expert  a 6 x 6 cm square on the -y side, yaw within +-15 degrees (where demos start);
  eval    a band on the +y side, yaw within +-15 degrees: never visited by expert demos, a
          gap in position only, as in the paper's Fig 2;
  valid   a band on the +x side, as far from the expert's: the region settings are chosen on
          (never the eval region);
  play    anywhere on the reachable table with any yaw, as long as the nut clears the peg
          and the hook's post.

Data sources: `expert` (scripted expert, successes only), `play` (undirected play, shared
with square-hook) and `suboptimal` (an inexperienced operator from the expert region, kept
whatever happens: the paper's subset of robomimic's Square-Worse).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rise.envs.mini import (
    CLOSE,
    OBJECT_GEOM,
    OPEN,
    MiniEnv,
    Obs,
    Program,
    ScriptedController,
    Source,
    Style,
    fmt,
    quat_yaw,
    rot2d,
    wrap_angle,
    yaw_quat,
)
from rise.envs.nut_operator import NutOperator


class MiniSquarePeg(NutOperator, MiniEnv):
    name = "mini_square_peg"
    regions = ("expert", "play", "eval", "valid")
    horizon = 200
    object_joint = "nut"
    sources = {**MiniEnv.sources, "suboptimal": Source("expert", successes_only=False)}
    PEG_XY = np.array([0.0, 0.0])
    PEG_HALF = 0.015  # 3 x 3 cm peg
    PEG_HEIGHT = 0.06
    HOLE_HALF = 0.026  # 5.2 cm hole: 11 mm clearance per side
    WALL = 0.012  # ring wall thickness
    NUT_HALF_H = 0.01  # the nut is 2 cm tall; its centre rests at z = 1 cm
    HANDLE_LEN = 0.06
    HANDLE_HALF_W = 0.01
    GRASP_ALONG = 0.07  # grasp point on the handle, along the nut's x axis from its centre
    SUCCESS_XY = 0.012  # down around the peg is within 11 mm of its axis
    SUCCESS_Z = 0.004  # nut centre at most this far above its resting height

    # The hook: an upward tip (its axis at HOOK_XY) on the end of an arm along +x from a post.
    HOOK_XY = np.array([-0.2, 0.0])
    HOOK_ARM_LEN = 0.07  # post axis to tip axis
    # A nut hanging from the arm reaches 13.6 cm below it; the arm's underside (17 cm) is above
    # the gripper's palm when it carries a nut at CARRY_Z.
    HOOK_ARM_TOP = 0.18
    HOOK_TIP_TOP = 0.21
    HOOK_HALF = 0.006  # half width of the arm and the tip (a 1.2 cm rod in a 5.2 cm hole)
    HOOK_POST_HALF = 0.01

    # (x, y, yaw) boxes; play additionally rejects poses that overlap the peg or the hook.
    REGIONS = {
        "expert": (np.array([-0.03, -0.17, -np.pi / 12]), np.array([0.03, -0.11, np.pi / 12])),
        "eval": (np.array([-0.12, 0.11, -np.pi / 12]), np.array([0.12, 0.17, np.pi / 12])),
        "valid": (np.array([0.10, -0.06, -np.pi / 12]), np.array([0.15, 0.06, np.pi / 12])),
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
{self.hook_xml()}
    <body name="nut" pos="0 0 {hz}">
      <freejoint name="nut"/>
{geoms}
      <geom name="nut_handle" size="{fmt(lh, self.HANDLE_HALF_W, hz)}"
            pos="{fmt(h + t + lh, 0, 0)}" {nut} rgba="0.75 0.35 0.1 1"/>
    </body>"""

    def hook_xml(self) -> str:
        """Post on the table, arm along +x on top of it, tip rising from the arm's end."""
        (x, y), r, p = self.HOOK_XY, self.HOOK_HALF, self.HOOK_POST_HALF
        top, tip_top, post_x = self.HOOK_ARM_TOP, self.HOOK_TIP_TOP, self.hook_post_xy[0]
        arm_half = (x + r - post_x) / 2
        parts = [
            ("post", (p, p, top / 2), (post_x, y, top / 2)),
            ("arm", (arm_half, r, 0.005), (post_x + arm_half, y, top - 0.005)),
            ("tip", (r, r, (tip_top - top) / 2), (x, y, (top + tip_top) / 2)),
        ]
        style = f'type="box" rgba="0.35 0.45 0.6 1" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        return "\n".join(
            f'    <geom name="hook_{n}" size="{fmt(*s)}" pos="{fmt(*c)}" {style}/>'
            for n, s, c in parts
        )

    def build_xml(self) -> str:
        """The same MJCF (model name included) for every task of the square scene."""
        return super().build_xml().replace(f'model="{self.name}"', 'model="mini_square"', 1)

    # ----------------------------------------------------------------- initial states
    @property
    def hook_post_xy(self) -> np.ndarray:
        return self.HOOK_XY - [self.HOOK_ARM_LEN, 0.0]

    def fixture_discs(self) -> list[tuple[np.ndarray, float]]:
        """Table footprints of the static fixtures as discs (centre, radius): the peg and the
        hook's post (the hook's arm is above anything the gripper does near the table)."""
        return [
            (self.PEG_XY, self.PEG_HALF * np.sqrt(2)),
            (self.hook_post_xy, self.HOOK_POST_HALF * np.sqrt(2)),
        ]

    def fixture_gap(self, xy) -> float:
        """Distance from a table point to the nearest fixture footprint."""
        return min(np.linalg.norm(np.asarray(xy) - c) - r for c, r in self.fixture_discs())

    def clears_fixtures(self, x: float, y: float, yaw: float, margin: float = 0.01) -> bool:
        """True when a flat nut at (x, y, yaw) keeps `margin` away from the peg and the hook
        (bounding disc of the ring, handle as a segment with the radius of its cross-section)."""
        outer = self.HOLE_HALF + self.WALL
        center = np.array([x, y])
        if self.fixture_gap(center) < outer * np.sqrt(2) + margin:
            return False
        axis = np.array([np.cos(yaw), np.sin(yaw)])
        a, b = center + outer * axis, center + (outer + self.HANDLE_LEN) * axis
        for c, r in self.fixture_discs():
            s = np.clip(np.dot(c - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
            if np.linalg.norm(a + s * (b - a) - c) < self.HANDLE_HALF_W * np.sqrt(2) + r + margin:
                return False
        return True

    def graspable(self, x: float, y: float, yaw: float) -> bool:
        """The handle is within reach and the open fingers around it stay clear of fixtures."""
        grasp = np.array([x, y]) + self.GRASP_ALONG * np.array([np.cos(yaw), np.sin(yaw)])
        in_reach = np.all(np.abs(grasp) <= self.ARM_HIGH[:2] - 0.03)
        return bool(in_reach and self.fixture_gap(grasp) > self.FINGER_OPEN + 0.02)

    def valid_init(self, x: float, y: float, yaw: float) -> bool:
        return self.clears_fixtures(x, y, yaw) and self.graspable(x, y, yaw)

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
        xy = np.asarray(goal_xy) + rot2d(delta) @ (g[:2] - c[:2])
        return np.array([xy[0], xy[1], z]), phi + delta

    def holding(self, obs: Obs) -> bool:
        """The nut is off the table and between the fingers (not just closed on air)."""
        return bool(obs["object"][2] > self.NUT_HALF_H + 0.02 and obs["gripper_qpos"].min() > 0.004)

    def pick(self, obs: Obs, style: Style, along: float, grasp_z: float | None = None) -> Program:
        """Above the handle, down (to `grasp_z`, GRASP_Z unless botched), close, lift the nut
        clear of the peg."""
        grasp_z = self.GRASP_Z if grasp_z is None else grasp_z
        obs = yield from self.servo(
            obs, lambda o: self.handle_target(o, along, self.HOVER_Z), OPEN, style, max_steps=60
        )
        obs = yield from self.servo(
            obs,
            lambda o: self.handle_target(o, along, grasp_z),
            OPEN,
            style.slower(0.7),
            tol=0.003,
            max_steps=30,
        )
        obs = yield from self.hold(obs, CLOSE, 4)
        return (yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style))

    def pick_retrying(self, obs: Obs, style: Style, along: float, tries: int = 3) -> Program:
        """`pick`, retried from the nut's new pose after a failed grasp; check `holding` after."""
        for _ in range(tries):
            obs = yield from self.pick(obs, style, along)
            if self.holding(obs):
                break
            obs = yield from self.hold(obs, OPEN, 3)
        return obs

    def held_yaw(self, obs: Obs) -> float:
        return self.nut_pose(obs)[1]

    def place(
        self,
        obs: Obs,
        style: Style,
        goal_xy,
        goal_yaw: float,
        xy_tol: float,
        yaw_tol: float,
        rest_z: float | None = None,
        retreat_z: float | None = None,
    ) -> Program:
        """Carry the held nut above (goal_xy, goal_yaw), lower it until its centre is down at
        `rest_z` (on the table unless told) or it is blocked, let go, rise to `retreat_z`."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)
        rest_z = self.NUT_HALF_H if rest_z is None else rest_z
        retreat_z = self.HOVER_Z if retreat_z is None else retreat_z
        phi_goal = self.turn_goal(obs, goal_yaw)

        def lowered(o: Obs) -> tuple[np.ndarray, float]:
            pos, yaw = self.carry_target(o, goal_xy, goal_yaw, phi_goal, 0.0)
            pos[2] = o["eef_pos"][2] - (o["object"][2] - rest_z) - 0.003
            return pos, yaw

        over_goal = self.over_goal(goal_xy, goal_yaw, xy_tol, yaw_tol)
        obs = yield from self.carry_toward(
            obs, style, goal_xy, goal_yaw, until=over_goal, max_steps=80
        )
        obs = yield from self.servo(
            obs,
            lowered,
            CLOSE,
            style.slower(0.6),
            until=lambda o: o["object"][2] < rest_z + 0.002,
            max_steps=40,
        )
        obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, retreat_z, OPEN, replace(style, noise=0.0)))

    def square_yaw(self, obs: Obs, error: float = 0.0) -> float:
        """The held nut's yaw rounded to the peg's square symmetry (plus an operator's error)."""
        _, psi = self.nut_pose(obs)
        return float(np.round(psi / (np.pi / 2)) * (np.pi / 2) + error)

    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move with the nut in hand: turn it square, lower it over the peg."""
        return (yield from self.put_on_peg(obs, style, self.PEG_XY, self.square_yaw(obs)))

    # ----------------------------------------------------------------- the operator's moves
    def put_on_peg(self, obs: Obs, style: Style, goal_xy, goal_yaw: float) -> Program:
        return (yield from self.place(obs, style, goal_xy, goal_yaw, 0.003, 0.04))

    def botched_pick(self, obs: Obs, style: Style, along: float, rng) -> Program:
        """A grasp closing on air: past the handle's end, or above the handle."""
        if rng.random() < 0.5:
            handle_end = self.HOLE_HALF + self.WALL + self.HANDLE_LEN
            return (yield from self.pick(obs, style, handle_end + rng.uniform(0.03, 0.04)))
        high = self.GRASP_Z + rng.uniform(0.025, 0.04)
        return (yield from self.pick(obs, style, along, grasp_z=high))

    def hover(self, obs: Obs, style: Style) -> Program:
        return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))

    def back_off(self, obs: Obs, style: Style) -> Program:
        """Up to carrying height with open fingers (after letting the nut go mid-carry)."""
        return (yield from self.rise_to(obs, self.CARRY_Z, OPEN, style))

    def gripper_pose(self, obs: Obs) -> tuple[np.ndarray, float]:
        return obs["eef_pos"].astype(np.float64), self.eef_yaw(obs)

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Pick the nut by its handle and `deliver` it (for this task: over the peg).

        Per-episode randomness: speed, grasp point along the handle, action noise (~1 mm).
        A failed grasp is retried from the nut's new pose (twice, then it gives up).
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.06))
        along = self.GRASP_ALONG + rng.uniform(-0.006, 0.006)

        def program(obs: Obs) -> Program:
            obs = yield from self.pick_retrying(obs, style, along)
            if not self.holding(obs):
                return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))
            return (yield from self.deliver(obs, style))

        return ScriptedController(program, self.action_dim)

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Undirected coverage: carries over the peg (never lowered onto it), pick-and-place
        to random poses, pushes and idle wandering.

        Places never target the peg (goals come from `sample_init`, which keeps clear of it),
        and the nut is never lifted above CARRY_Z, far below the hook's tip.
        30% of them go to the expert region and 20% to the eval region, so play data both
        visits eval-like states and carries the nut from anywhere into the states the expert
        starts from; the rest go anywhere on the table.
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))

        def pick_and_place(obs: Obs) -> Program:
            return (yield from self.relocate(obs, style, rng))

        def carry_over_peg(obs: Obs) -> Program:
            """Pick the nut, carry it over the peg turned as the expert turns it, hover, then
            take it away and put it down elsewhere: play passes through the states from which
            the expert lowers the nut, and never lowers it there itself."""
            obs = yield from self.pick(obs, style, self.GRASP_ALONG + rng.uniform(-0.01, 0.01))
            if not self.holding(obs):
                return (yield from self.hold(obs, OPEN, 3))
            goal_yaw = self.square_yaw(obs)
            phi_goal = self.turn_goal(obs, goal_yaw)
            over = self.PEG_XY + rng.uniform(-0.01, 0.01, 2)
            obs = yield from self.servo(
                obs,
                lambda o: self.carry_target(o, over, goal_yaw, phi_goal, self.CARRY_Z),
                CLOSE,
                style,
                tol=0.006,
                max_steps=60,
            )
            obs = yield from self.hold(obs, CLOSE, int(rng.integers(2, 8)))
            x, y, yaw = self.sample_init(str(rng.choice(["eval", "play", "valid"])), rng)
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
                    and self.fixture_gap(start) > 0.03
                    and np.all(np.abs(end) < self.REGIONS["play"][1][:2])
                    and self.clears_fixtures(*end, psi, margin=0.02)
                ):
                    break
            else:
                return obs
            return (yield from self.sweep(obs, style, start, c[:2] + (length + 0.06) * d))

        def wander(obs: Obs) -> Program:
            low, high = [-0.2, -0.2, 0.08, -np.pi / 2], [0.2, 0.2, 0.2, np.pi / 2]
            return (yield from self.wander(obs, style, low, high))

        def program(obs: Obs) -> Program:
            while True:
                primitive = (carry_over_peg, pick_and_place, push, wander)[
                    rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
                ]
                obs = yield from primitive(obs)

        return ScriptedController(program, self.action_dim)
