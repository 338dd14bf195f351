"""MiniThreading: push the tip of a needle through a small ring held up by a fixed stand.

A small analogue of robomimic's Threading task. The needle is a handle (where the fingers
hold it) with a thin shaft along its x axis; the ring stands on a post, its axis horizontal
along the world y axis, and is threaded towards -y. The shaft is 8 mm thick and the hole
16 mm wide (4 mm of clearance); the ring's faces and the tip are flat, so a tip more than
about 7 mm off the ring's axis jams against the ring instead of being funnelled in.

Initial-state regions (handle centre x, y and needle yaw; the stand is fixed at STAND_XY):
  expert  a 6 x 5 cm patch on the +y side (the right in agentview), yaw within +-15 degrees;
  eval    a band on the -y side, yaw within +-45 degrees: never visited by expert demos, and
          the needle has to be carried over the ring to reach the threading side;
  valid   a band on the +x side, beside the stand: settings are chosen there (never on the
          eval region);
  play    anywhere on the reachable table with any yaw, as long as the needle clears the stand.
"""

from __future__ import annotations

from dataclasses import replace

import mujoco
import numpy as np

from rise.envs.mini import (
    CLOSE,
    OBJECT_GEOM,
    OPEN,
    MiniEnv,
    Obs,
    Program,
    ScriptedController,
    Style,
    fmt,
    quat_yaw,
    rot2d,
    wrap_angle,
    yaw_quat,
)


def shaft_through_ring(base, tip, centre, direction, depth: float, hole_r: float) -> bool:
    """A shaft from `base` to `tip` is threaded: the tip is `depth` past the ring's plane
    (through `centre`, normal `direction`), the base still before it, and the shaft crosses
    the plane within `hole_r` of the centre (not beside, above or below the ring)."""
    d_base, d_tip = (base - centre) @ direction, (tip - centre) @ direction
    if d_tip < depth or d_base >= 0.0:
        return False
    crossing = base + (tip - base) * (-d_base / (d_tip - d_base))
    return bool(np.linalg.norm(crossing - centre) < hole_r)


class MiniThreading(MiniEnv):
    name = "mini_threading"
    regions = ("expert", "play", "eval", "valid")
    horizon = 200
    object_joint = "needle"

    # Stand: a post on a round foot, carrying the ring at RING_Z.
    STAND_XY = np.array([-0.06, 0.0])
    FOOT_R = 0.025
    POST_R = 0.006
    RING_Z = 0.06
    RING_R = 0.0105  # centre line of the ring's wall
    RING_WALL = 0.0025  # half thickness of the wall (radially)
    RING_DEPTH = 0.004  # half thickness of the ring along its axis
    RING_SEGMENTS = 16  # the ring is a polygon of boxes with flat faces
    HOLE_R = RING_R - RING_WALL  # 8 mm: 4 mm of clearance around the shaft
    THREAD_DIR = np.array([0.0, -1.0, 0.0])  # the tip goes through the ring towards -y
    THREAD_YAW = -np.pi / 2  # needle yaw that points its tip along THREAD_DIR

    # Needle (body frame at the handle centre, tip along +x).
    HANDLE_HALF = np.array([0.025, 0.01, 0.01])  # 5 x 2 x 2 cm; rests with its centre at 1 cm
    SHAFT_R = 0.004
    SHAFT_START = 0.025  # the shaft leaves the handle's front face
    TIP_ALONG = 0.095  # the tip (the shaft's flat end) from the handle centre
    SUCCESS_DEPTH = 0.01  # the tip is at least this far past the ring's plane

    # (x, y, yaw) boxes of the handle centre; play also rejects poses that overlap the stand.
    REGIONS = {
        "expert": (np.array([-0.02, 0.12, -np.pi / 12]), np.array([0.04, 0.17, np.pi / 12])),
        "eval": (np.array([-0.12, -0.17, -np.pi / 4]), np.array([0.12, -0.11, np.pi / 4])),
        "valid": (np.array([0.10, -0.05, -np.pi / 4]), np.array([0.15, 0.05, np.pi / 4])),
        "play": (np.array([-0.18, -0.18, -np.pi]), np.array([0.18, 0.18, np.pi])),
    }
    GRASP_ALONG = 0.0  # grasp point on the handle, from its centre along the needle
    GRASP_Z = 0.016  # eef height for grasping the handle (fingertips 4 mm above the table)
    HOVER_Z = 0.06  # open fingertips clear the resting handle
    CARRY_Z = 0.125  # a held needle clears the top of the ring
    PRE_INSERT = 0.03  # the tip lines up this far in front of the ring's plane
    INSERT = 0.025  # ... and is pushed this far past it

    # ----------------------------------------------------------------- scene
    def ring_center(self) -> np.ndarray:
        return np.array([*self.STAND_XY, self.RING_Z])

    def objects_xml(self) -> str:
        """Stand (foot, post, ring) and needle (handle, shaft).

        The ring's faces and the shaft's end are flat, so a tip that misses the hole by more
        than the clearance jams against the ring instead of being funnelled in.
        """
        n, r, z = self.RING_SEGMENTS, self.RING_R, self.RING_Z
        solid = f'friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        # Boxes around the ring's axis (y) in the stand's x-z plane, long enough to close up.
        half = (self.RING_R + self.RING_WALL) * np.tan(np.pi / n)
        ring = []
        for i, a in enumerate(2 * np.pi * np.arange(n) / n):
            pos = (r * np.cos(a), 0.0, z + r * np.sin(a))
            ring.append(
                f'      <geom name="ring_{i}" type="box" '
                f'size="{fmt(half, self.RING_DEPTH, self.RING_WALL)}" pos="{fmt(*pos)}" '
                f'xyaxes="{fmt(-np.sin(a), 0, np.cos(a), 0, 1, 0)}" rgba="0.8 0.7 0.2 1" '
                f"{solid}/>"
            )
        post_top = z - r
        hx, hy, hz = self.HANDLE_HALF
        needle = f'density="600" friction="0.8 0.005 0.0001" {OBJECT_GEOM}'
        return f"""    <body name="stand" pos="{fmt(*self.STAND_XY, 0)}">
      <geom name="foot" type="cylinder" size="{fmt(self.FOOT_R, 0.003)}" pos="0 0 0.003"
            rgba="0.35 0.45 0.6 1" {solid}/>
      <geom name="post" type="cylinder" size="{fmt(self.POST_R, post_top / 2)}"
            pos="{fmt(0, 0, post_top / 2)}" rgba="0.35 0.45 0.6 1" {solid}/>
{chr(10).join(ring)}
    </body>
    <body name="needle" pos="0 0 {hz}">
      <freejoint name="needle"/>
      <geom name="needle_handle" type="box" size="{fmt(hx, hy, hz)}" {needle}
            rgba="0.2 0.55 0.3 1"/>
      <geom name="needle_shaft" type="cylinder" size="{self.SHAFT_R}"
            fromto="{fmt(self.SHAFT_START, 0, 0, self.TIP_ALONG, 0, 0)}" {needle}
            rgba="0.8 0.8 0.85 1"/>
    </body>"""

    # ----------------------------------------------------------------- initial states
    def clears_stand(self, x: float, y: float, yaw: float, margin: float = 0.01) -> bool:
        """True when a flat needle at (x, y, yaw) keeps `margin` away from the stand's foot.

        The needle is a segment (handle back to tip) with the radius of the handle's corners.
        """
        axis = np.array([np.cos(yaw), np.sin(yaw)])
        a = np.array([x, y]) - self.HANDLE_HALF[0] * axis
        b = np.array([x, y]) + self.TIP_ALONG * axis
        s = np.clip(np.dot(self.STAND_XY - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        dist = np.linalg.norm(a + s * (b - a) - self.STAND_XY)
        return dist >= np.hypot(*self.HANDLE_HALF[1:]) + self.FOOT_R + margin

    def graspable(self, x: float, y: float, yaw: float) -> bool:
        """The handle is within reach and the open fingers around it stay clear of the stand."""
        grasp = np.array([x, y]) + self.GRASP_ALONG * np.array([np.cos(yaw), np.sin(yaw)])
        in_reach = np.all(np.abs(grasp) <= self.ARM_HIGH[:2] - 0.03)
        finger_reach = self.FINGER_OPEN + 0.02 + self.FOOT_R
        return bool(in_reach and np.linalg.norm(grasp - self.STAND_XY) > finger_reach)

    def valid_init(self, x: float, y: float, yaw: float) -> bool:
        return self.clears_stand(x, y, yaw) and self.graspable(x, y, yaw)

    def place_objects(self, init: np.ndarray) -> None:
        x, y, yaw = init
        self.place_needle((x, y, self.HANDLE_HALF[2]), yaw)

    def place_needle(self, pos, yaw: float) -> None:
        """Teleport the needle, lying flat (handle centre at `pos`)."""
        self.set_free_pose("needle", pos, yaw_quat(yaw))

    # ----------------------------------------------------------------- success
    @staticmethod
    def needle_point(pose, along: float) -> np.ndarray:
        """World position of the point `along` the needle's axis from its handle centre
        (tilt included), for a 7-d needle pose."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, np.asarray(pose[3:], dtype=np.float64))
        return np.asarray(pose[:3], dtype=np.float64) + along * rot.reshape(3, 3)[:, 0]

    def success(self) -> bool:
        """The shaft goes through the hole: the tip is SUCCESS_DEPTH past the ring's plane and
        the shaft crosses that plane inside the hole (not beside, above or below the ring)."""
        pose = self.object_obs()
        base, tip = (
            self.needle_point(pose, self.SHAFT_START),
            self.needle_point(pose, self.TIP_ALONG),
        )
        return shaft_through_ring(base, tip, self.ring_center(), self.THREAD_DIR,
                                  self.SUCCESS_DEPTH, self.HOLE_R)  # fmt: skip

    # ----------------------------------------------------------------- scripted control
    @staticmethod
    def needle_yaw(obs: Obs) -> float:
        return quat_yaw(obs["object"][3:].astype(np.float64))

    def tip(self, obs: Obs) -> np.ndarray:
        return self.needle_point(obs["object"], self.TIP_ALONG)

    def depth(self, obs: Obs) -> float:
        """How far the tip is past the ring's plane (negative: in front of it)."""
        return float((self.tip(obs) - self.ring_center()) @ self.THREAD_DIR)

    def handle_target(self, obs: Obs, along: float, z: float) -> tuple[np.ndarray, float]:
        """EEF pose gripping the handle `along` from its centre, fingers across the handle.

        The gripper's yaw is the needle's modulo pi (taken in [-pi/2, pi/2]) so the fingers
        close across the handle whichever way the needle points.
        """
        c, psi = obs["object"][:2].astype(np.float64), self.needle_yaw(obs)
        xy = c + along * np.array([np.cos(psi), np.sin(psi)])
        return np.array([xy[0], xy[1], z]), float(wrap_angle(2 * psi) / 2)

    def held_yaw(self, obs: Obs) -> float:
        return self.needle_yaw(obs)

    def carry_target(
        self, obs: Obs, along: float, goal, goal_yaw: float, phi_goal: float
    ) -> tuple[np.ndarray, float]:
        """EEF pose that puts the needle's point `along` (0: handle centre, TIP_ALONG: tip) at
        `goal` with the needle at `goal_yaw`, assuming a rigid grasp.

        Recomputed from the observed needle pose every step, so slip (or tilt) in the grasp is
        corrected. `phi_goal` (from `turn_goal`) picks the rotation's direction so it stays
        within the yaw joint's range and never flips between steps.
        """
        point = self.needle_point(obs["object"], along)
        g, phi = obs["eef_pos"].astype(np.float64), self.eef_yaw(obs)
        pred = phi_goal - phi
        delta = pred + float(wrap_angle(goal_yaw - self.needle_yaw(obs) - pred))
        xy = np.asarray(goal[:2]) + rot2d(delta) @ (g[:2] - point[:2])
        return np.array([xy[0], xy[1], goal[2] + g[2] - point[2]]), phi + delta

    def holding(self, obs: Obs) -> bool:
        """The needle is off the table and between the fingers (not just closed on air)."""
        lifted = obs["object"][2] > self.HANDLE_HALF[2] + 0.02
        return bool(lifted and obs["gripper_qpos"].min() > 0.004)

    def pick(self, obs: Obs, style: Style, along: float) -> Program:
        """Above the handle, down, close, lift the needle clear of the ring."""
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

    def thread(self, obs: Obs, style: Style) -> Program:
        """Carry the held needle over the threading side, lower it in line with the ring's
        axis, line the tip up with the hole and push it through. A push that jams against
        the ring backs out to the lined-up pose and tries again (twice)."""
        phi_goal = self.turn_goal(obs, self.THREAD_YAW)
        center, n = self.ring_center(), self.THREAD_DIR
        pre = center - self.PRE_INSERT * n
        high = pre + np.array([0.0, 0.0, obs["object"][2] - center[2]])

        def to_tip(goal):
            return lambda o: self.carry_target(o, self.TIP_ALONG, goal, self.THREAD_YAW, phi_goal)

        def near(goal, tol, yaw_tol=0.03, lateral=False):
            """Tip within `tol` of `goal` (across the axis only when `lateral`), yaw aligned."""

            def check(o: Obs) -> bool:
                off = self.tip(o) - goal
                if lateral:
                    off -= (off @ n) * n
                yaw_err = abs(wrap_angle(self.needle_yaw(o) - self.THREAD_YAW))
                return bool(np.linalg.norm(off) < tol and yaw_err < yaw_tol)

            return check

        obs = yield from self.servo(
            obs, to_tip(high), CLOSE, style, until=near(high, 0.01, 0.1), max_steps=80
        )
        careful = style.slower(0.5)
        for _ in range(3):
            obs = yield from self.servo(
                obs, to_tip(pre), CLOSE, careful, until=near(pre, 0.006, 0.05), max_steps=40
            )
            obs = yield from self.servo(
                obs,
                to_tip(pre),
                CLOSE,
                careful,
                until=near(pre, 0.0015, lateral=True),
                max_steps=20,
            )
            obs = yield from self.servo(
                obs,
                to_tip(center + self.INSERT * n),
                CLOSE,
                careful,
                until=lambda o: self.depth(o) > self.INSERT - 0.004,
                max_steps=20,
            )
            if self.depth(obs) > self.SUCCESS_DEPTH or not self.holding(obs):
                break  # through, or dropped: either way nothing left to push
        return obs

    def place(
        self, obs: Obs, style: Style, goal_xy, goal_yaw: float, xy_tol: float, yaw_tol: float
    ) -> Program:
        """Carry the held needle above (goal_xy, goal_yaw), lower it to the table, let go."""
        phi_goal = self.turn_goal(obs, goal_yaw)
        rest = self.HANDLE_HALF[2]
        high = np.array([*goal_xy, obs["object"][2]])

        def lowered(o: Obs) -> tuple[np.ndarray, float]:
            pos, yaw = self.carry_target(o, 0.0, high, goal_yaw, phi_goal)
            pos[2] = o["eef_pos"][2] - (o["object"][2] - rest) - 0.003
            return pos, yaw

        obs = yield from self.servo(
            obs,
            lambda o: self.carry_target(o, 0.0, high, goal_yaw, phi_goal),
            CLOSE,
            style,
            until=self.over_goal(goal_xy, goal_yaw, xy_tol, yaw_tol),
            max_steps=80,
        )
        obs = yield from self.servo(
            obs,
            lowered,
            CLOSE,
            style.slower(0.6),
            until=lambda o: o["object"][2] < rest + 0.002,
            max_steps=40,
        )
        obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, replace(style, noise=0.0)))

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Pick the needle by its handle, turn it in line with the ring, push the tip through.

        Per-episode randomness: speed, grasp point along the handle, action noise (~1 mm).
        A failed grasp (or a needle dropped on the way) is retried from the needle's new pose
        (twice, then it gives up); a jammed insertion backs out and tries again.
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.06))
        along = self.GRASP_ALONG + rng.uniform(-0.006, 0.006)

        def program(obs: Obs) -> Program:
            for _ in range(3):
                obs = yield from self.pick(obs, style, along)
                if self.holding(obs):
                    obs = yield from self.thread(obs, style)
                    if self.holding(obs):
                        return obs  # threaded (or jammed three times): keep holding
                obs = yield from self.hold(obs, OPEN, 3)  # missed or dropped: pick again
            return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))

        return ScriptedController(program, self.action_dim)

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Undirected coverage: pick-and-place to random poses, pushes and idle wandering.

        Places never target the stand (goals come from `sample_init`, which keeps clear of it)
        and the needle is carried above the ring, so play never threads it. 30% of the places
        go to the expert region and 20% to the eval region, so play data both visits eval-like
        states and carries the needle from anywhere into the states the expert starts from;
        the rest go anywhere on the table.
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))

        def pick_and_place(obs: Obs) -> Program:
            return (yield from self.relocate(obs, style, rng))

        def push(obs: Obs) -> Program:
            """Sweep the closed fingers through the needle, staying away from the stand."""
            c, psi = obs["object"][:2].astype(np.float64), self.needle_yaw(obs)
            mid = c + 0.035 * np.array([np.cos(psi), np.sin(psi)])  # middle of the needle
            for _ in range(20):
                theta = rng.uniform(-np.pi, np.pi)
                d = np.array([np.cos(theta), np.sin(theta)])
                length = rng.uniform(0.04, 0.1)
                start, end = mid - 0.1 * d, mid + (length + 0.06) * d
                if (
                    np.all(np.abs(start) < self.ARM_HIGH[:2])
                    and np.all(np.abs(end) < self.ARM_HIGH[:2])
                    and np.linalg.norm(start - self.STAND_XY) > 0.06
                    and np.linalg.norm(end - self.STAND_XY) > 0.06
                    and self.clears_stand(*(c + length * d), psi, margin=0.03)
                ):
                    break
            else:
                return obs
            return (yield from self.sweep(obs, style, start, end))

        def wander(obs: Obs) -> Program:
            low, high = [-0.2, -0.2, 0.1, -np.pi / 2], [0.2, 0.2, 0.2, np.pi / 2]
            return (yield from self.wander(obs, style, low, high))

        def program(obs: Obs) -> Program:
            while True:
                primitive = (pick_and_place, push, wander)[rng.choice(3, p=[0.6, 0.25, 0.15])]
                obs = yield from primitive(obs)

        return ScriptedController(program, self.action_dim)
