"""RsSquarePeg: the paper's square-peg row on robosuite's own NutAssemblySquare (Panda, OSC
delta pose, 20 Hz): put the square nut over the square peg.

Initial-state regions (nut centre x, y on the table, yaw of its handle; the square peg stands
at (0.23, 0.10), the round one at (0.23, -0.10)):
  expert  a 4 x 6 cm patch at robosuite's own placement for this task, yaw within +-15
          degrees (where demos start);
  eval    a band on the -y side, yaw within +-15 degrees: never visited by expert demos, a
          gap in position only, as in the paper's Fig 2;
  valid   a patch in the middle of the table, as far from the expert's: settings are chosen
          there (never on the eval region);
  play    anywhere reachable on the table, any yaw, clear of both pegs.

Data sources: `expert` (scripted: top-down grasp of the handle, lift, carry over the peg with
the handle turned towards the robot, lower, release; successes only) and `play` (undirected:
pick-and-place to random poses, carries over the peg that never lower the nut onto it,
pushes, wandering) and `suboptimal` (robomimic's Square-Worse as a scripted operator from
the expert region, kept whatever happens: rise.envs.nut_operator, shared with the mini
tier). The peg stands at the edge of the Panda's reach: with the handle to a side the arm
reaches it straight-elbowed and the controller stalls, hence the half turn.

Success is robosuite's own test: the nut down around the peg and the gripper's site more
than ~4 cm from the nut's centre, which a gripper holding the handle (6.4 cm out) already
is; an expert episode, stopped at success as `collect` does, may end before the release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from rise.envs.mini import (
    CLOSE,
    OPEN,
    Obs,
    Program,
    ScriptedController,
    Source,
    Style,
    rot2d,
    wrap_angle,
)
from rise.envs.nut_operator import NutOperator
from rise.envs.robosuite_env import RobosuiteEnv, quat_xyzw_yaw


class RsSquarePeg(NutOperator, RobosuiteEnv):
    name = "rs_square_peg"
    robosuite_env = "NutAssemblySquare"
    horizon = 400
    sources = {**RobosuiteEnv.sources, "suboptimal": Source("expert", successes_only=False)}
    object_keys = (
        "SquareNut_pos",
        "SquareNut_quat",
        "SquareNut_to_robot0_eef_pos",
        "SquareNut_to_robot0_eef_quat",
    )
    PEG_XY = np.array([0.23, 0.10])
    ROUND_PEG_XY = np.array([0.23, -0.10])
    HANDLE_ALONG = 0.054  # handle site from the nut's centre, along its x axis
    # Where the fingers grip the handle (it spans 2.9-7.9 cm from the centre): far enough out
    # that the open fingers land clear of the ring's corners.
    GRASP_ALONG = 0.064
    HANDLE_END = 0.079
    NUT_HALF_H = 0.01
    # (x, y, yaw) boxes of the nut's centre and handle heading.
    REGIONS = {
        "expert": (np.array([-0.13, 0.11, -np.pi / 12]), np.array([-0.09, 0.17, np.pi / 12])),
        "eval": (np.array([-0.16, -0.22, -np.pi / 12]), np.array([0.04, -0.15, np.pi / 12])),
        "valid": (np.array([0.0, -0.04, -np.pi / 12]), np.array([0.06, 0.06, np.pi / 12])),
        "play": (np.array([-0.2, -0.24, -np.pi]), np.array([0.12, 0.24, np.pi])),
    }
    PEG_CLEARANCE = 0.12  # play keeps the nut's centre this far from either peg's axis

    # ----------------------------------------------------------------- task interface
    def sample_init(self, region: str, rng: np.random.Generator) -> np.ndarray:
        """Nut (x, y, yaw) drawn uniformly from `region`, clear of both pegs."""
        if region not in self.REGIONS:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        low, high = self.REGIONS[region]
        for _ in range(1000):
            x, y, yaw = rng.uniform(low, high)
            if self.clear_of_pegs(np.array([x, y])):
                return np.array([x, y, yaw])
        raise RuntimeError(f"region {region!r}: no nut pose clear of the pegs")

    def clear_of_pegs(self, xy) -> bool:
        return all(
            np.linalg.norm(np.asarray(xy) - peg) > self.PEG_CLEARANCE
            for peg in (self.PEG_XY, self.ROUND_PEG_XY)
        )

    def place_objects(self, init: np.ndarray) -> None:
        x, y, yaw = init
        quat_wxyz = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        z = self.table_z + self.NUT_HALF_H
        self.set_free_pose(self.nut_joint, np.array([x, y, z]), quat_wxyz)

    @property
    def nut_joint(self) -> str:
        return self.env.nuts[self.env.nut_id].joints[0]

    # ----------------------------------------------------------------- geometry from obs
    @staticmethod
    def nut_pose(obs: Obs) -> tuple[np.ndarray, float]:
        """Nut centre (world) and handle heading from the `object` observation."""
        return obs["object"][:3].astype(np.float64), quat_xyzw_yaw(obs["object"][3:7])

    def handle_xy(self, obs: Obs) -> np.ndarray:
        c, yaw = self.nut_pose(obs)
        return c[:2] + self.HANDLE_ALONG * np.array([np.cos(yaw), np.sin(yaw)])

    # ----------------------------------------------------------------- scripted control
    # Heights above the table top: of the eef site gripping the handle (the nut's centre is at
    # +1 cm), hovering with open fingers above the pegs' tops (+13 cm) and lifting a nut; of a
    # carried nut's centre, its underside 3 cm above the pegs' tops.
    GRASP_DZ = 0.014
    HOVER_DZ = 0.15
    LIFT_DZ = 0.19
    CARRY_DZ = 0.17
    # The arm reaches down to the table (from above) up to about this x; further out its
    # elbow straightens against its limit and the OSC stalls there. The peg (x 0.23) is
    # reached at carrying heights only.
    REACH_X = 0.16
    PEG_ABOVE_DZ = 0.15  # a nut's centre this high has its underside 1 cm over the peg's top

    def handle_target(self, obs: Obs, along: float, dz: float) -> tuple[np.ndarray, float]:
        """Eef pose gripping the handle `along` from the nut's centre, its x axis along the
        handle so the fingers close across it.

        The handle is symmetric under a half turn of the gripper: of the two headings along
        it, the one within a quarter turn of the wrist's mid-range leaves it room to turn.
        """
        c, psi = self.nut_pose(obs)
        xy = c[:2] + along * np.array([np.cos(psi), np.sin(psi)])
        mid = self.wrist_mid(xy)
        heading = mid + float(wrap_angle(2 * (psi - mid)) / 2)
        return np.array([xy[0], xy[1], self.table_z + dz]), heading

    def carry_target(
        self, obs: Obs, goal_xy, goal_yaw: float, heading_goal: float, dz: float
    ) -> tuple[np.ndarray, float]:
        """Eef pose that puts the held nut's centre at `goal_xy`, `dz` above the table, with
        yaw `goal_yaw`, assuming a rigid grasp; recomputed from the observed nut every step, so
        slip is corrected. `heading_goal` (the gripper heading expected at the goal) fixes the
        direction of the turn so it never flips between steps."""
        c, psi = self.nut_pose(obs)
        g, heading = obs["robot0_eef_pos"].astype(np.float64), self.eef_heading(obs)
        pred = heading_goal - heading
        delta = pred + float(wrap_angle(goal_yaw - psi - pred))
        xy = np.asarray(goal_xy) + rot2d(delta) @ (g[:2] - c[:2])
        z = g[2] + self.table_z + dz - c[2]
        return np.array([xy[0], xy[1], z]), heading + delta

    def turn_to(self, obs: Obs, goal_yaw: float, goal_xy) -> tuple[float, float]:
        """(yaw, heading): the yaw nearest `goal_yaw` the wrist can turn the held nut to at
        `goal_xy`, and the gripper heading that does it: the short way round, the long way if
        the wrist cannot, else as far as the wrist goes."""
        _, psi = self.nut_pose(obs)
        heading = self.eef_heading(obs)
        low, high = self.wrist_range(goal_xy)
        delta = float(wrap_angle(goal_yaw - psi))
        turns = (heading + delta, heading + delta - 2 * np.pi * np.sign(delta))
        best = min(turns, key=lambda h: abs(h - np.clip(h, low, high)))
        goal = float(np.clip(best, low, high))
        return float(wrap_angle(psi + goal - heading)), goal

    def graspable(self, x: float, y: float, yaw: float) -> bool:
        """The grasp point on the handle of a nut lying at (x, y, yaw) is within reach."""
        return bool(x + self.GRASP_ALONG * np.cos(yaw) <= self.REACH_X)

    def holding(self, obs: Obs) -> bool:
        """The nut is off the table and between the fingers (not just closed on air)."""
        lifted = obs["object"][2] > self.table_z + self.NUT_HALF_H + 0.02
        gap = obs["robot0_gripper_qpos"][0] - obs["robot0_gripper_qpos"][1]
        return bool(lifted and gap > 0.01)

    def pick(
        self,
        obs: Obs,
        style: Style,
        along: float,
        lift_dz: float | None = None,
        grasp_dz: float | None = None,
    ) -> Program:
        """Above the handle, down to `grasp_dz` (GRASP_DZ unless botched), close, lift to
        `lift_dz` (LIFT_DZ unless told)."""
        lift_dz = self.LIFT_DZ if lift_dz is None else lift_dz
        grasp_dz = self.GRASP_DZ if grasp_dz is None else grasp_dz
        obs = yield from self.servo(
            obs,
            lambda o: self.handle_target(o, along, self.HOVER_DZ),
            OPEN,
            style,
            tol=0.01,
            turn_tol=0.08,
            max_steps=80,
        )
        obs = yield from self.servo(
            obs,
            lambda o: self.handle_target(o, along, grasp_dz),
            OPEN,
            style,
            tol=0.004,
            max_steps=40,
        )
        obs = yield from self.hold(obs, CLOSE, 8)
        return (yield from self.rise_to(obs, lift_dz, CLOSE, style))

    def pick_retrying(self, obs: Obs, style: Style, along: float, tries: int = 3) -> Program:
        """`pick`, retried from the nut's new pose after a failed grasp; check `holding` after."""
        for _ in range(tries):
            obs = yield from self.pick(obs, style, along)
            if self.holding(obs):
                break
            obs = yield from self.hold(obs, OPEN, 4)
        return obs

    def place(
        self,
        obs: Obs,
        style: Style,
        goal_xy,
        goal_yaw: float,
        xy_tol: float,
        yaw_tol: float,
        above_dz: float = 0.04,
        tries: int = 1,
    ) -> Program:
        """Carry the held nut over (goal_xy, goal_yaw), steady it with its centre `above_dz`
        over the table (over the peg: just above its top), lower it straight down onto the
        table, let go and rise to HOVER_DZ. A nut that stalls on the way down (caught on the
        peg's top) is lifted back and lowered again, `tries` times in all."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)
        goal_yaw, heading_goal = self.turn_to(obs, goal_yaw, goal_xy)
        carry_dz = max(obs["object"][2] - self.table_z, above_dz)
        rest_dz = self.NUT_HALF_H

        def at(dz: float) -> Callable[[Obs], tuple[np.ndarray, float]]:
            return lambda o: self.carry_target(o, goal_xy, goal_yaw, heading_goal, dz)

        def near(o: Obs, tol: float) -> bool:
            c, yaw = self.nut_pose(o)
            close = np.linalg.norm(c[:2] - goal_xy) < tol
            return bool(close and abs(wrap_angle(yaw - goal_yaw)) < yaw_tol)

        def over_goal(o: Obs) -> bool:
            return near(o, xy_tol)

        def steady(o: Obs, streak=[0]) -> bool:  # noqa: B006 (a counter private to this call)
            low = o["object"][2] - self.table_z < above_dz + 0.005
            streak[0] = streak[0] + 1 if low and over_goal(o) else 0
            return streak[0] >= 3

        def lowering(o: Obs) -> tuple[np.ndarray, float]:
            """Down to the table; over the peg's top only while centred over the goal."""
            pos, heading = at(rest_dz - 0.01)(o)
            c = o["object"]
            if c[2] > self.table_z + above_dz - 0.007 and not near(o, 1.5 * xy_tol):
                pos[2] = o["robot0_eef_pos"][2]
            return pos, heading

        def down_or_stalled(o: Obs, trail=[]) -> bool:  # noqa: B006
            trail.append(float(o["object"][2]))
            stalled = len(trail) > 6 and trail[-7] - trail[-1] < 0.002
            return bool(o["object"][2] - self.table_z < rest_dz + 0.003 or stalled)

        obs = yield from self.servo(obs, at(carry_dz), CLOSE, style, until=over_goal, max_steps=100)
        for _ in range(tries):
            obs = yield from self.servo(
                obs, at(above_dz), CLOSE, style.slower(0.7), until=steady, max_steps=40
            )
            obs = yield from self.servo(
                obs, lowering, CLOSE, style.slower(0.5), until=down_or_stalled, max_steps=60
            )
            if obs["object"][2] - self.table_z < above_dz - 0.02:
                break
        obs = yield from self.hold(obs, OPEN, 6)
        return (yield from self.rise_to(obs, self.HOVER_DZ, OPEN, replace(style, noise=0.0)))

    def square_yaw(self, obs: Obs) -> float:
        """The yaw, square to the peg, to lower the held nut with (it is 4-fold symmetric):
        handle towards the robot (yaw pi) where the wrist can turn it so. Then the gripper is
        6 cm short of the peg; with the handle to a side it would be over the peg's x, at the
        edge of the arm's reach, its elbow straight (where the OSC stalls)."""
        _, psi = self.nut_pose(obs)
        sides = sorted([np.pi / 2, -np.pi / 2], key=lambda y: abs(wrap_angle(y - psi)))
        for yaw in (np.pi, *sides):
            if abs(wrap_angle(self.turn_to(obs, yaw, self.PEG_XY)[0] - yaw)) < 1e-6:
                return float(yaw)
        return float(np.pi)

    def carry_over_peg(self, obs: Obs, style: Style, dz: float) -> Program:
        """Carry the held nut over the peg's axis, square to it as the expert turns it, its
        centre `dz` over the table (where the expert starts lowering it: PEG_ABOVE_DZ)."""
        square = self.square_yaw(obs)
        return (
            yield from self.carry_toward(
                obs, style, self.PEG_XY, square, dz=dz, tol=0.005, max_steps=100
            )
        )

    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move with the nut in hand: over the peg, square, down (a nut
        caught on the peg's top is lifted and lowered again, twice)."""
        return (yield from self.put_on_peg(obs, style, self.PEG_XY, self.square_yaw(obs), 3))

    # ----------------------------------------------------------------- the operator's moves
    def carry_toward(
        self, obs: Obs, style: Style, goal_xy, goal_yaw: float, dz: float | None = None, **servo
    ) -> Program:
        """Carry the held nut towards `goal_xy`, turned towards `goal_yaw` as far as the wrist
        goes there, its centre `dz` over the table (where it is unless told)."""
        goal_yaw, heading_goal = self.turn_to(obs, goal_yaw, goal_xy)
        dz = float(obs["object"][2] - self.table_z) if dz is None else dz
        return (
            yield from self.servo(
                obs,
                lambda o: self.carry_target(o, goal_xy, goal_yaw, heading_goal, dz),
                CLOSE,
                style,
                **servo,
            )
        )

    def put_on_peg(
        self, obs: Obs, style: Style, goal_xy, goal_yaw: float, tries: int = 1
    ) -> Program:
        """Lower the held nut onto the peg from just above its top (`place`)."""
        goal = (goal_xy, goal_yaw, 0.003, 0.05, self.PEG_ABOVE_DZ)
        return (yield from self.place(obs, style, *goal, tries=tries))

    def botched_pick(self, obs: Obs, style: Style, along: float, rng) -> Program:
        """A grasp closing on air: past the handle's end, or above the handle."""
        if rng.random() < 0.5:
            return (yield from self.pick(obs, style, self.HANDLE_END + rng.uniform(0.03, 0.04)))
        high = self.GRASP_DZ + rng.uniform(0.025, 0.04)
        return (yield from self.pick(obs, style, along, grasp_dz=high))

    def hover(self, obs: Obs, style: Style) -> Program:
        return (yield from self.rise_to(obs, self.HOVER_DZ, OPEN, style))

    def back_off(self, obs: Obs, style: Style) -> Program:
        """Up to lifting height with open fingers (after letting the nut go mid-carry)."""
        return (yield from self.rise_to(obs, self.LIFT_DZ, OPEN, style))

    def gripper_pose(self, obs: Obs) -> tuple[np.ndarray, float]:
        return obs["robot0_eef_pos"].astype(np.float64), self.eef_heading(obs)

    # ----------------------------------------------------------------- scripted sources
    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Grasp the handle from above, lift, and `deliver` the nut (here: carry it over the
        peg, turn it square, lower it, release).

        Per-episode randomness: speed, grasp point along the handle, action noise (~1 mm).
        A failed grasp is retried from the nut's new pose (twice, then it gives up).
        """
        return ScriptedController(self.expert_program(rng), self.action_dim)

    def expert_program(self, rng: np.random.Generator) -> Callable[[Obs], Program]:
        """`scripted_expert`'s program, for scenes whose expert does more first."""
        style = Style(rng, speed=rng.uniform(0.7, 1.0), noise=rng.uniform(0.0, 0.05))
        along = self.GRASP_ALONG + rng.uniform(-0.004, 0.004)

        def program(obs: Obs) -> Program:
            obs = yield from self.pick_retrying(obs, style, along)
            if not self.holding(obs):
                return (yield from self.hover(obs, style))
            return (yield from self.deliver(obs, style))

        return program

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Undirected coverage: carries over the peg (never lowered onto it), pick-and-place
        to random poses, pushes and wandering.

        Places never target the peg (goals come from `sample_init`, which keeps clear of
        both pegs). 30% of them go to the expert region and 20% to the eval region, so play
        both visits eval-like states and carries the nut from anywhere into the states the
        expert starts from; the rest go anywhere on the table.
        """
        return ScriptedController(self.play_program(rng), self.action_dim)

    def play_program(self, rng: np.random.Generator) -> Callable[[Obs], Program]:
        """`scripted_play`'s program, for scenes whose play does more first."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))

        def pick(obs: Obs, lift_dz: float | None = None) -> Program:
            along = self.GRASP_ALONG + rng.uniform(-0.006, 0.006)
            return (yield from self.pick(obs, style, along, lift_dz))

        def put_down(obs: Obs, regions, p) -> Program:
            """Place the nut at a pose drawn from one of `regions`, its handle within reach."""
            region = str(rng.choice(regions, p=p))
            for _ in range(100):
                x, y, yaw = self.sample_init(region, rng)
                if self.graspable(x, y, yaw):
                    break
            return (yield from self.place(obs, style, (x, y), yaw, 0.01, 0.15))

        def pick_and_place(obs: Obs) -> Program:
            """Pick, carry at a random height (below the pegs' tops where low: the places are
            clear of them), put down at a random pose."""
            obs = yield from pick(obs, rng.uniform(0.1, self.LIFT_DZ))
            if not self.holding(obs):
                return (yield from self.hold(obs, OPEN, 3))
            return (yield from put_down(obs, ["expert", "eval", "play"], [0.3, 0.2, 0.5]))

        def carry_over_peg(obs: Obs) -> Program:
            """Pick the nut, carry it over the peg turned as the expert turns it, hover, then
            take it away and put it down elsewhere: play passes through the states from which
            the expert lowers the nut, and never lowers it there itself."""
            obs = yield from pick(obs)
            if not self.holding(obs):
                return (yield from self.hold(obs, OPEN, 3))
            dz = rng.uniform(self.PEG_ABOVE_DZ + 0.005, self.CARRY_DZ)
            obs = yield from self.carry_over_peg(obs, style, dz)
            obs = yield from self.hold(obs, CLOSE, int(rng.integers(2, 8)))
            # Back towards the robot as it is before turning it anywhere: near the peg the arm
            # is stretched out, and a handle turned to +x there is out of its reach.
            c, psi = self.nut_pose(obs)
            back = self.PEG_XY - [rng.uniform(0.12, 0.2), rng.uniform(0.0, 0.1)]
            obs = yield from self.servo(
                obs,
                lambda o: self.carry_target(o, back, psi, self.eef_heading(obs), dz),
                CLOSE,
                style,
                tol=0.02,
                max_steps=30,
            )
            return (yield from put_down(obs, ["eval", "play", "valid"], None))

        def push(obs: Obs) -> Program:
            """Sweep the closed fingers through the nut, from a side away from its handle, to
            a pose still clear of the pegs."""
            c, psi = self.nut_pose(obs)
            low, high = self.REGIONS["play"][0][:2], self.REGIONS["play"][1][:2]
            for _ in range(20):
                theta = rng.uniform(-np.pi, np.pi)
                d = np.array([np.cos(theta), np.sin(theta)])
                length = rng.uniform(0.03, 0.08)
                start, end = c[:2] - 0.1 * d, c[:2] + length * d
                if (
                    np.dot(d, [np.cos(psi), np.sin(psi)]) > -0.3
                    and np.all((low - 0.05 < start) & (start < high + 0.05))
                    and start[0] < self.REACH_X
                    and np.all((low < end) & (end < high))
                    and self.clear_of_pegs(end)
                    and self.graspable(*end, psi)
                ):
                    break
            else:
                return obs
            heading, low_dz = self.eef_heading(obs), self.GRASP_DZ + 0.008
            for xy, dz, s in (
                (start, self.HOVER_DZ, style),
                (start, low_dz, style),
                (c[:2] + (length + 0.06) * d, low_dz, style.slower(0.5)),
            ):
                goal = np.array([xy[0], xy[1], self.table_z + dz])
                obs = yield from self.servo(
                    obs, lambda o, g=goal: (g, heading), CLOSE, s, tol=0.008, max_steps=40
                )
            return (yield from self.rise_to(obs, self.HOVER_DZ, CLOSE, style))

        def wander(obs: Obs) -> Program:
            low = [-0.2, -0.24, self.table_z + 0.08, -self.Q7_LIMIT]
            high = [0.15, 0.24, self.table_z + 0.25, self.Q7_LIMIT]

            def heading(o: Obs, pose: np.ndarray) -> float:  # yaw relative to the wrist's mid
                return pose[3] + self.wrist_mid(pose[:2])

            return (yield from self.wander(obs, style, low, high, heading, max_steps=25))

        def program(obs: Obs) -> Program:
            while True:
                primitive = (carry_over_peg, pick_and_place, push, wander)[
                    rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
                ]
                c, psi = self.nut_pose(obs)
                if primitive in (carry_over_peg, pick_and_place) and not self.graspable(
                    c[0], c[1], psi
                ):
                    primitive = (push, wander)[rng.choice(2, p=[0.7, 0.3])]
                obs = yield from primitive(obs)

        return program
