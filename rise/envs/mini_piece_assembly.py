"""MiniPieceAssembly (+ Tip): insert a T-shaped piece into the T-shaped slot of a fixed block.

Mini analogues of the paper's piece-assembly tasks. The piece is a flat T, 3 cm thick: a
6 x 1.6 cm crossbar and a 3.6 x 2 cm stem (its frame sits at the centre of its bounding box,
x along the stem). The receptacle is a 10 x 10 cm block, 1.2 cm tall, with the T's outline
plus 7 mm per side cut right through it: dropped, the piece goes in only with its centre
within ~7 mm and its yaw within ~0.2 rad of the slot's (a mini task may be less precise than
a robot's; with 3 mm the mixed-data policies lost the insertion). A T has no rotational
symmetry, so the yaw must match modulo 2 pi (upside down is the same T: it is mirror
symmetric). An inserted piece stands 1.8 cm proud of the block; the fingers hold it
there, across the stem, so they pass over the block.

Initial-state regions (piece centre x, y and yaw; the block is at the origin, its slot's stem
pointing to +y):
  expert  a 6 x 4 cm patch on the -y side, yaw within +-15 degrees (a quarter turn from the
          slot's);
  eval    a band on the +y side, yaw within +-15 degrees as the expert's: never visited by
          expert demos (a gap in position only, as the paper's Fig 2);
  valid   a band on the +x side, as far from the expert's, yaw as the expert's: settings
          are chosen there (never on the eval region);
  play    anywhere on the reachable table with any yaw, as long as the piece clears the block.

MiniPieceAssemblyTip: the same scene, but the piece starts on its side (standing on the
crossbar's long face, stem up, face normal horizontal) in every region, where the yaw is the
normal's heading (modulo pi: the standing T is symmetric). It must be tipped flat before it
can be picked: a push high on the stem topples it about the crossbar's bottom edge, and it
lands flat on one face or the other with its stem along the push (the piece's friction of 1
makes it tip rather than slide; a push low down slides it). Its regions: expert a 6 x 3 cm
patch on the -y side with the normal within +-15 degrees of the x axis (it topples sideways);
eval a band on the +y side and valid a band on the +x side, both with the expert's headings
(a gap in position only); play anywhere that leaves room to topple it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    Source,
    Style,
    fmt,
    quat_yaw,
    rot2d,
    wrap_angle,
    yaw_quat,
)


def quat_mat(q) -> np.ndarray:
    """3 x 3 rotation matrix of a w-x-y-z quaternion (columns: the body axes in the world)."""
    m = np.empty(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, dtype=np.float64))
    return m.reshape(3, 3)


def side_quat(heading: float) -> np.ndarray:
    """Orientation of a piece on its side: stem (x) up, face normal (z) along `heading`."""
    c, s = np.cos(heading), np.sin(heading)
    mat = np.array([[0.0, s, c], [0.0, -c, s], [1.0, 0.0, 0.0]])  # columns x, y, z
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, mat.reshape(-1))
    return q


def unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


@dataclass(frozen=True)
class Flaws:
    """How a degraded expert deviates from the scripted expert (the defaults: none)."""

    push_z: float | None = None  # tipping push height (too low: the piece slides, not tips)
    tip_tries: int = 3
    grasp_along: float = 0.0  # the fingers come down this much farther out along the stem
    grasp_high: float = 0.0  # ... or close this much too high
    grasp_tries: int = 3
    drop_after: int | None = None  # opens the gripper this many steps into the carry
    yaw_error: float = 0.0  # inserts with the piece turned this much (it sticks on top)
    insert_tries: int = 2
    pause: float = 0.0  # chance of a hesitation (a pause and a small back-off) per phase


class MiniPieceAssembly(MiniEnv):
    name = "mini_piece_assembly"
    regions = ("expert", "play", "eval", "valid")
    horizon = 200
    object_joint = "piece"

    # Piece (half extents along its own x, y; x along the stem, frame at the bbox centre).
    BAR_HALF = (0.008, 0.03)
    STEM_HALF = (0.018, 0.01)
    HALF_T = 0.015  # half thickness: a flat piece's centre rests at 1.5 cm
    HALF_LEN = BAR_HALF[0] + STEM_HALF[0]  # 2.6 cm: bbox half length along the stem
    RADIUS = float(np.hypot(HALF_LEN, BAR_HALF[1]))  # bounding disc of the footprint
    # Receptacle: a square block with the T's outline + CLEARANCE cut through it.
    BLOCK_XY = np.array([0.0, 0.0])
    SLOT_YAW = np.pi / 2
    BLOCK_HALF = 0.05
    BLOCK_H = 0.012
    CLEARANCE = 0.007
    BLOCK_RADIUS = BLOCK_HALF * np.sqrt(2)

    GRASP_ALONG = 0.012  # grasp point on the stem, from the piece centre along its x
    GRASP_Z = 0.03  # eef height grasping a flat piece: fingertips 6 mm above the block top
    HOVER_Z = 0.075  # open fingertips clear a flat piece and the block
    CARRY_Z = 0.085  # a held piece clears the block by 3 cm
    SUCCESS_XY = 0.01
    SUCCESS_YAW = 0.2
    SUCCESS_Z = 0.003  # piece centre at most this far above its resting height
    UPRIGHT_COS = np.cos(0.15)  # "flat": the face normal within 0.15 rad of vertical

    # (x, y, yaw) boxes; play additionally rejects poses that overlap the block.
    REGIONS = {
        "expert": (np.array([-0.03, -0.17, -np.pi / 12]), np.array([0.03, -0.13, np.pi / 12])),
        "eval": (np.array([-0.12, 0.13, -np.pi / 12]), np.array([0.12, 0.17, np.pi / 12])),
        "valid": (np.array([0.10, -0.06, -np.pi / 12]), np.array([0.15, 0.06, np.pi / 12])),
        "play": (np.array([-0.18, -0.18, -np.pi]), np.array([0.18, 0.18, np.pi])),
    }

    # ----------------------------------------------------------------- scene
    def objects_xml(self) -> str:
        return f"{self.block_xml()}\n{self.piece_xml()}"

    def piece_xml(self) -> str:
        (bx, by), (sx, sy), t = self.BAR_HALF, self.STEM_HALF, self.HALF_T
        style = f'type="box" density="600" friction="1 0.005 0.0001" {OBJECT_GEOM}'
        return f"""    <body name="piece" pos="0 0 {t}">
      <freejoint name="piece"/>
      <geom name="piece_bar" size="{fmt(bx, by, t)}" pos="{fmt(-self.HALF_LEN + bx, 0, 0)}"
            {style} rgba="0.2 0.6 0.85 1"/>
      <geom name="piece_stem" size="{fmt(sx, sy, t)}" pos="{fmt(self.HALF_LEN - sx, 0, 0)}"
            {style} rgba="0.15 0.45 0.75 1"/>
    </body>"""

    def block_xml(self) -> str:
        """Six boxes around the slot (slot frame = where the inserted piece's frame sits)."""
        c, s, h = self.CLEARANCE, self.BLOCK_HALF, self.BLOCK_H / 2
        x0 = -self.HALF_LEN - c  # back of the crossbar's slot
        x1 = -self.HALF_LEN + 2 * self.BAR_HALF[0] + c  # front of the crossbar's slot
        x2 = self.HALF_LEN + c  # end of the stem's slot
        ya, yb = self.BAR_HALF[1] + c, self.STEM_HALF[1] + c
        boxes = {  # name: (x range, y range)
            "back": ((-s, x0), (-s, s)),
            "front": ((x2, s), (-s, s)),
            "bar_l": ((x0, x1), (ya, s)),
            "bar_r": ((x0, x1), (-s, -ya)),
            "stem_l": ((x1, x2), (yb, s)),
            "stem_r": ((x1, x2), (-s, -yb)),
        }
        style = f'type="box" rgba="0.8 0.7 0.45 1" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        geoms = "\n".join(
            f'      <geom name="block_{n}" size="{fmt(np.ptp(xr) / 2, np.ptp(yr) / 2, h)}"'
            f' pos="{fmt(np.mean(xr), np.mean(yr), h)}" {style}/>'
            for n, (xr, yr) in boxes.items()
        )
        pose = f'pos="{fmt(*self.BLOCK_XY, 0)}" euler="0 0 {self.SLOT_YAW}"'
        return f"""    <body name="block" {pose}>
{geoms}
    </body>"""

    # ----------------------------------------------------------------- initial states
    def clears_block(self, x: float, y: float, margin: float = 0.01) -> bool:
        """A piece centred at (x, y) keeps `margin` away from the block (bounding discs)."""
        gap = np.linalg.norm(np.array([x, y]) - self.BLOCK_XY) - self.BLOCK_RADIUS - self.RADIUS
        return bool(gap >= margin)

    def in_reach(self, xy, margin: float = 0.03) -> bool:
        return bool(np.all(np.abs(xy) <= self.ARM_HIGH[:2] - margin))

    def valid_init(self, x: float, y: float, yaw: float) -> bool:
        grasp = np.array([x, y]) + self.GRASP_ALONG * unit(yaw)
        return self.clears_block(x, y) and self.in_reach(grasp)

    def place_objects(self, init: np.ndarray) -> None:
        x, y, yaw = init
        self.place_piece((x, y, self.HALF_T), yaw)

    def place_piece(self, pos, yaw: float, on_side: bool = False) -> None:
        """Teleport the piece flat (yaw = stem heading) or on its side (yaw = face normal's)."""
        self.set_free_pose("piece", pos, side_quat(yaw) if on_side else yaw_quat(yaw))

    def is_flat(self, quat) -> bool:
        """Lying on a face (either one: the T is mirror symmetric)."""
        return bool(abs(quat_mat(quat)[2, 2]) > self.UPRIGHT_COS)

    def success(self) -> bool:
        """The piece is down in the slot: centred, turned like the slot, flat, on the table."""
        o = self.object_obs()
        centred = np.linalg.norm(o[:2] - self.BLOCK_XY) < self.SUCCESS_XY
        aligned = abs(wrap_angle(quat_yaw(o[3:]) - self.SLOT_YAW)) < self.SUCCESS_YAW
        down = o[2] < self.HALF_T + self.SUCCESS_Z
        return bool(centred and aligned and down and self.is_flat(o[3:]))

    # ----------------------------------------------------------------- scripted control
    @staticmethod
    def piece_pose(obs: Obs) -> tuple[np.ndarray, float]:
        """Centre and heading of the piece: its stem's, or its face normal's while the stem
        points (mostly) up or down and so has no heading to speak of."""
        o = obs["object"].astype(np.float64)
        mat = quat_mat(o[3:])
        axis = mat[:, 2] if abs(mat[2, 0]) > 0.7 else mat[:, 0]
        return o[:3], float(np.arctan2(axis[1], axis[0]))

    def flat(self, obs: Obs) -> bool:
        return self.is_flat(obs["object"][3:])

    def grip_yaw(self, obs: Obs, yaw: float) -> float:
        """The gripper yaw equal to `yaw` modulo pi (the fingers are symmetric) nearest the
        current one within the joint's range: the servo turns the short way, and the short
        way must not run into the joint limit."""
        options = yaw + np.pi * np.arange(-3, 4)
        options = options[np.abs(options) <= self.ARM_HIGH[3] - 0.2]
        return float(options[np.argmin(np.abs(options - self.eef_yaw(obs)))])

    def stem_target(self, obs: Obs, along: float, z: float) -> tuple[np.ndarray, float]:
        """EEF pose with the fingers across the stem, `along` from the piece centre."""
        c, psi = self.piece_pose(obs)
        xy = c[:2] + along * unit(psi)
        return np.array([xy[0], xy[1], z]), self.grip_yaw(obs, psi)

    def carry_target(
        self, obs: Obs, goal_xy, goal_yaw: float, phi_goal: float, z: float
    ) -> tuple[np.ndarray, float]:
        """EEF pose that puts the held piece at (goal_xy, goal_yaw), assuming a rigid grasp.

        Recomputed from the observed piece every step, so slip in the grasp is corrected;
        `phi_goal` (the gripper yaw expected at the goal) fixes the way round the turn goes.
        The yaw returned is at most 2.5 rad ahead, so the servo never turns the short way
        round when the turn is the long way.
        """
        c, psi = self.piece_pose(obs)
        g, phi = obs["eef_pos"].astype(np.float64), self.eef_yaw(obs)
        pred = phi_goal - phi
        delta = pred + float(wrap_angle(goal_yaw - psi - pred))
        xy = np.asarray(goal_xy) + rot2d(delta) @ (g[:2] - c[:2])
        return np.array([xy[0], xy[1], z]), phi + float(np.clip(delta, -2.5, 2.5))

    def holding(self, obs: Obs) -> bool:
        """The piece is off the table and between the fingers (not just closed on air)."""
        lifted = obs["object"][2] > self.rest_z(obs) + 0.015
        return bool(lifted and obs["gripper_qpos"].min() > 0.004)

    def rest_z(self, obs: Obs) -> float:
        """Height of the piece's centre when it rests on the table as it is now oriented."""
        return self.HALF_T if self.flat(obs) else self.HALF_LEN

    def pick(self, obs: Obs, style: Style, along: float, high: float = 0.0) -> Program:
        """Above the stem, down (to `high` above the grasp height), close, lift the piece."""
        obs = yield from self.servo(
            obs, lambda o: self.stem_target(o, along, self.HOVER_Z), OPEN, style, max_steps=60
        )
        obs = yield from self.servo(
            obs,
            lambda o: self.stem_target(o, along, self.GRASP_Z + high),
            OPEN,
            style.slower(0.7),
            tol=0.003,
            max_steps=30,
        )
        obs = yield from self.hold(obs, CLOSE, 4)
        return (yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style))

    def held_yaw(self, obs: Obs) -> float:
        return self.piece_pose(obs)[1]

    def carry(
        self,
        obs: Obs,
        style: Style,
        goal_xy,
        goal_yaw: float,
        xy_tol: float,
        yaw_tol: float,
        max_steps: int = 80,
    ) -> Program:
        """Carry the held piece (at the current height) until it is over (goal_xy, goal_yaw)."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)
        until = self.over_goal(goal_xy, goal_yaw, xy_tol, yaw_tol)
        return (
            yield from self.carry_toward(
                obs, style, goal_xy, goal_yaw, until=until, max_steps=max_steps
            )
        )

    def lower(self, obs: Obs, style: Style, goal_xy, goal_yaw: float, rest_z: float) -> Program:
        """Lower the held piece until it rests at `rest_z`, or stops going down (e.g. stuck on
        top of the block), still correcting its pose over the goal."""
        goal_xy = np.asarray(goal_xy, dtype=np.float64)
        phi_goal = self.turn_goal(obs, goal_yaw)
        last_z, stalled = float(obs["object"][2]), 0

        def target(o: Obs) -> tuple[np.ndarray, float]:
            pos, yaw = self.carry_target(o, goal_xy, goal_yaw, phi_goal, 0.0)
            pos[2] = o["eef_pos"][2] - (o["object"][2] - rest_z) - 0.003
            return pos, yaw

        def done(o: Obs) -> bool:
            nonlocal last_z, stalled
            z = float(o["object"][2])
            stalled = stalled + 1 if abs(z - last_z) < 3e-4 else 0
            last_z = z
            return z < rest_z + 0.002 or stalled >= 4

        return (yield from self.servo(obs, target, CLOSE, style.slower(0.6), until=done))

    def release(self, obs: Obs, style: Style) -> Program:
        obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, replace(style, noise=0.0)))

    def place(
        self, obs: Obs, style: Style, goal_xy, goal_yaw: float, xy_tol: float, yaw_tol: float
    ) -> Program:
        """Carry the held piece over (goal_xy, goal_yaw), put it down on the table, let go."""
        rest_z = self.rest_z(obs)
        obs = yield from self.carry(obs, style, goal_xy, goal_yaw, xy_tol, yaw_tol)
        obs = yield from self.lower(obs, style, goal_xy, goal_yaw, rest_z)
        return (yield from self.release(obs, style))

    def hesitate(self, obs: Obs, style: Style, chance: float) -> Program:
        """Sometimes stop for a while and back off a little (a hesitant operator)."""
        if style.rng.random() >= chance:
            return obs
        grip = CLOSE if obs["gripper_qpos"].min() < self.FINGER_OPEN / 2 else OPEN
        obs = yield from self.hold(obs, grip, int(style.rng.integers(4, 15)))
        back = obs["eef_pos"] + style.rng.uniform([-0.02, -0.02, 0.0], [0.02, 0.02, 0.02])
        yaw = self.eef_yaw(obs)
        return (
            yield from self.servo(obs, lambda o: (back, yaw), grip, style, tol=0.006, max_steps=10)
        )

    def assemble(self, obs: Obs, style: Style, along: float, flaws: Flaws) -> Program:
        """Pick the flat piece by its stem (retrying a failed grasp), turn it to the slot's yaw
        over the slot, lower it in; if it sticks on top, lift it and try again."""
        for _ in range(flaws.grasp_tries):
            obs = yield from self.hesitate(obs, style, flaws.pause)
            obs = yield from self.pick(obs, style, along + flaws.grasp_along, flaws.grasp_high)
            if self.holding(obs):
                break
            obs = yield from self.hold(obs, OPEN, 3)
        else:
            return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))
        goal_yaw = self.SLOT_YAW + flaws.yaw_error
        if flaws.drop_after is not None:
            obs = yield from self.carry(
                obs, style, self.BLOCK_XY, goal_yaw, 0.002, 0.03, max_steps=flaws.drop_after
            )
            return (yield from self.release(obs, style))
        for _ in range(flaws.insert_tries):
            obs = yield from self.hesitate(obs, style, flaws.pause)
            obs = yield from self.carry(obs, style, self.BLOCK_XY, goal_yaw, 0.002, 0.03)
            obs = yield from self.lower(obs, style, self.BLOCK_XY, goal_yaw, self.HALF_T)
            if obs["object"][2] < self.HALF_T + 0.003:
                break
            obs = yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style)  # stuck: again
        return (yield from self.release(obs, style))

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Pick the piece by its stem, turn it to the slot, lower it in, release.

        Per-episode randomness: speed, grasp point along the stem, action noise (~1 mm).
        """
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.05))
        along = self.GRASP_ALONG + rng.uniform(-0.004, 0.004)

        def program(obs: Obs) -> Program:
            return (yield from self.assemble(obs, style, along, Flaws()))

        return ScriptedController(program, self.action_dim)

    # ----------------------------------------------------------------- play
    def play_pick_and_place(self, obs: Obs, style: Style) -> Program:
        """Pick the flat piece and put it down at a random pose: 30% in the expert region,
        20% in the eval region, the rest anywhere (never over the block)."""
        return (yield from self.relocate(obs, style, style.rng, jitter=0.006))

    def play_push(self, obs: Obs, style: Style, z_range=(0.016, 0.02)) -> Program:
        """Sweep the closed fingers through the piece along a random line that stays clear of
        the block, at a height drawn from `z_range`."""
        rng = style.rng
        c, _ = self.piece_pose(obs)
        for _ in range(20):
            d = unit(rng.uniform(-np.pi, np.pi))
            length = rng.uniform(0.03, 0.08)
            start, end = c[:2] - 0.08 * d, c[:2] + (length + 0.05) * d
            land = c[:2] + (length + 0.07) * d  # the far side of the piece runs ahead
            if (
                self.in_reach(start, 0.0)
                and np.linalg.norm(start - self.BLOCK_XY) > self.BLOCK_RADIUS + 0.03
                and np.all(np.abs(land) < self.REGIONS["play"][1][:2] + 0.02)
                and self.clears_block(*land, margin=0.02)
            ):
                break
        else:
            return obs
        yaw, low = self.eef_yaw(obs), rng.uniform(*z_range)
        for xy, z, s in (
            (start, self.HOVER_Z + 0.02, style),
            (start, low, style),
            (end, low, style.slower(0.5)),
            (end - 0.015 * d, low, style),  # back off first: rising in contact drags it up
        ):
            goal = np.array([xy[0], xy[1], z])
            obs = yield from self.servo(
                obs, lambda o, goal=goal: (goal, yaw), CLOSE, s, tol=0.006, max_steps=30
            )
        return (yield from self.rise_to(obs, self.HOVER_Z + 0.02, CLOSE, style))

    def wander_above(self, obs: Obs, style: Style) -> Program:
        """Move the gripper to a few random poses above the table (opening or closing)."""
        low, high = [-0.2, -0.2, 0.09, -np.pi / 2], [0.2, 0.2, 0.2, np.pi / 2]
        return (yield from self.wander(obs, style, low, high, lambda o, p: self.grip_yaw(o, p[3])))

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Undirected coverage: pick-and-place to random poses, pushes and idle wandering."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))
        primitives = (self.play_pick_and_place, self.play_push, self.wander_above)

        def program(obs: Obs) -> Program:
            while True:
                primitive = primitives[rng.choice(3, p=[0.6, 0.25, 0.15])]
                obs = yield from primitive(obs, style)

        return ScriptedController(program, self.action_dim)


class MiniPieceAssemblyTip(MiniPieceAssembly):
    """The piece starts on its side and must be tipped flat before it can be assembled."""

    name = "mini_piece_assembly_tip"
    horizon = 300
    sources = {
        **MiniEnv.sources,
        "partial_tipping": Source("play", successes_only=False),
        "suboptimal": Source("expert", successes_only=False),
    }
    # (x, y, face-normal heading) boxes of the piece standing on its side.
    REGIONS = {
        "expert": (np.array([-0.03, -0.165, -np.pi / 12]), np.array([0.03, -0.135, np.pi / 12])),
        "eval": (np.array([-0.12, 0.13, -np.pi / 12]), np.array([0.12, 0.16, np.pi / 12])),
        "valid": (np.array([0.12, -0.06, -np.pi / 12]), np.array([0.16, 0.06, np.pi / 12])),
        "play": (np.array([-0.17, -0.17, -np.pi / 2]), np.array([0.17, 0.17, np.pi / 2])),
    }
    PUSH_Z = 0.05  # eef height pushing the stem (fingertips at 3.8 cm on a 5.2 cm piece)
    SIDE_HOVER_Z = 0.095  # closed fingertips clear a piece on its side
    TOPPLED = 0.9  # tilt (rad) past the tipping point (~38 degrees): gravity does the rest
    LAND = 0.045  # a toppled piece's centre lands about this far along the push
    TIP_STRATEGIES = ("push", "hook", "nudge")
    SUBOPTIMAL_MODES = (
        "noisy",
        "hesitant",
        "slow",
        "failed_tip",
        "missed_grasp",
        "dropped",
        "misaligned",
    )

    def valid_init(self, x: float, y: float, yaw: float) -> bool:
        """Clear of the block even once toppled, and able to topple one way within reach."""
        if not self.clears_block(x, y, margin=self.LAND + 0.01):
            return False
        return any(self.in_reach(np.array([x, y]) + s * self.LAND * unit(yaw)) for s in (1, -1))

    def place_objects(self, init: np.ndarray) -> None:
        x, y, heading = init
        self.place_piece((x, y, self.HALF_LEN), heading, on_side=True)

    # ----------------------------------------------------------------- tipping
    def tilt(self, obs: Obs) -> float:
        """Angle (rad) between the face normal and the vertical: 0 flat, pi/2 on its side."""
        return float(np.arccos(np.clip(abs(quat_mat(obs["object"][3:])[2, 2]), 0.0, 1.0)))

    def normal_heading(self, obs: Obs) -> float:
        n = quat_mat(obs["object"][3:])[:, 2]
        return float(np.arctan2(n[1], n[0]))

    def tip_direction(self, obs: Obs) -> np.ndarray:
        """Push direction (along the face normal, either way) whose landing spot keeps
        farthest from the block and the edge of the reach."""
        c, h = obs["object"][:2].astype(np.float64), self.normal_heading(obs)

        def room(d: np.ndarray) -> float:
            land = c + self.LAND * d
            to_block = np.linalg.norm(land - self.BLOCK_XY) - self.BLOCK_RADIUS - self.RADIUS
            return min(to_block, float(np.min(self.ARM_HIGH[:2] - 0.03 - np.abs(land))))

        return max((unit(h), -unit(h)), key=room)

    def tip(
        self, obs: Obs, style: Style, strategy: str, d: np.ndarray, push_z: float | None = None
    ) -> Program:
        """Topple the standing piece along `d` (a unit xy vector) by pushing high on the stem.

        push:  closed fingers come down beside the piece and push straight through;
        hook:  the open gripper comes down over the piece, fingers either side of it, and
               drags the stem's top along with the trailing finger;
        nudge: closed fingers push a little, back off, then push again (two short shoves).
        """
        c = obs["object"][:2].astype(np.float64)
        z = self.PUSH_Z if push_z is None else push_z
        up = self.SIDE_HOVER_Z

        def goto(o: Obs, xy, zz, yaw, grip, s: Style, until=None, steps=40) -> Program:
            goal = np.array([xy[0], xy[1], zz])
            return (
                yield from self.servo(
                    o, lambda _: (goal, yaw), grip, s, tol=0.005, until=until, max_steps=steps
                )
            )

        def toppled(o: Obs) -> bool:
            return self.tilt(o) < np.pi / 2 - self.TOPPLED

        heading = float(np.arctan2(d[1], d[0]))
        if strategy == "hook":
            yaw, grip = self.grip_yaw(obs, heading + np.pi / 2), OPEN  # fingers along d
            start, end = c, c + 0.09 * d
        else:
            yaw, grip = self.grip_yaw(obs, heading), CLOSE
            start, end = c - (self.HALF_T + 0.03) * d, c + 0.06 * d
        obs = yield from goto(obs, start, up, yaw, grip, style)
        obs = yield from goto(obs, start, z, yaw, grip, style, steps=20)
        if strategy == "nudge":
            mid = c - (self.HALF_T + 0.002) * d
            obs = yield from goto(obs, mid + 0.015 * d, z, yaw, grip, style.slower(0.4), steps=12)
            obs = yield from goto(obs, mid - 0.01 * d, z, yaw, grip, style.slower(0.5), steps=8)
        obs = yield from goto(obs, end, z, yaw, grip, style.slower(0.5), until=toppled)
        obs = yield from self.rise_to(obs, up, grip, style)
        return (yield from self.settle(obs, OPEN))

    def tip_flat(self, obs: Obs, style: Style, strategies, flaws: Flaws) -> Program:
        """Tip the piece until it lies flat (a few tries, each with a strategy from the list)."""
        for i in range(flaws.tip_tries):
            if self.flat(obs):
                break
            strategy = strategies[i % len(strategies)]
            obs = yield from self.hesitate(obs, style, flaws.pause)
            obs = yield from self.tip(obs, style, strategy, self.tip_direction(obs), flaws.push_z)
        return obs

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Push the standing piece over (away from the block), then assemble it."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.05))
        along = self.GRASP_ALONG + rng.uniform(-0.004, 0.004)

        def program(obs: Obs) -> Program:
            obs = yield from self.tip_flat(obs, style, ("push",), Flaws())
            if not self.flat(obs):
                return (yield from self.rise_to(obs, self.SIDE_HOVER_Z, OPEN, style))
            return (yield from self.assemble(obs, style, along, Flaws()))

        return ScriptedController(program, self.action_dim)

    def scripted_partial_tipping(self, rng: np.random.Generator) -> ScriptedController:
        """Only reorients the piece: tips it flat with a strategy drawn per episode (another
        if that fails), then wanders above the table or idles; never picks it up."""
        style = Style(rng, speed=rng.uniform(0.5, 1.0), noise=rng.uniform(0.02, 0.08))
        order = list(rng.permutation(self.TIP_STRATEGIES))

        def program(obs: Obs) -> Program:
            obs = yield from self.tip_flat(obs, style, order, Flaws())
            while True:
                if rng.random() < 0.5:
                    obs = yield from self.wander_above(obs, style)
                else:
                    obs = yield from self.hold(obs, OPEN, int(rng.integers(5, 20)))

        return ScriptedController(program, self.action_dim)

    def suboptimal_flaws(self, mode: str, rng: np.random.Generator) -> tuple[Style, Flaws]:
        """The style and flaws of a degraded expert with failure `mode`."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.05))
        if mode == "noisy":
            return replace(style, noise=rng.uniform(0.12, 0.25)), Flaws(insert_tries=1)
        if mode == "hesitant":
            return replace(style, speed=rng.uniform(0.3, 0.6)), Flaws(pause=0.8, insert_tries=1)
        if mode == "slow":
            return replace(style, speed=rng.uniform(0.08, 0.16)), Flaws()
        if mode == "failed_tip":  # pushes too low: the piece slides instead of toppling
            return style, Flaws(push_z=rng.uniform(0.016, 0.02), tip_tries=2)
        if mode == "missed_grasp":  # closes beyond the stem's end, or above the piece
            if rng.random() < 0.5:
                return style, Flaws(grasp_along=rng.uniform(0.035, 0.05), grasp_tries=2)
            return style, Flaws(grasp_high=rng.uniform(0.025, 0.04), grasp_tries=2)
        if mode == "dropped":
            return style, Flaws(drop_after=int(rng.integers(3, 20)))
        if mode == "misaligned":
            error = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.6)
            return style, Flaws(yaw_error=error, insert_tries=1)
        raise ValueError(f"unknown suboptimal mode {mode!r}; known: {self.SUBOPTIMAL_MODES}")

    def scripted_suboptimal(
        self, rng: np.random.Generator, mode: str | None = None
    ) -> ScriptedController:
        """A degraded expert from the expert region, failing in a way drawn per episode
        (`controller.mode`, or the given `mode`): noisy, hesitant, slow, failed tipping,
        missed grasp, dropped piece, or a misaligned insertion that sticks on the block."""
        mode = str(rng.choice(self.SUBOPTIMAL_MODES)) if mode is None else mode
        style, flaws = self.suboptimal_flaws(mode, rng)
        along = self.GRASP_ALONG + rng.uniform(-0.004, 0.004)

        def program(obs: Obs) -> Program:
            obs = yield from self.tip_flat(obs, style, ("push",), flaws)
            if not self.flat(obs):  # gives up
                while True:
                    obs = yield from self.wander_above(obs, style)
            return (yield from self.assemble(obs, style, along, flaws))

        controller = ScriptedController(program, self.action_dim)
        controller.mode = mode
        return controller

    # ----------------------------------------------------------------- play
    def play_tip(self, obs: Obs, style: Style) -> Program:
        strategy = str(style.rng.choice(self.TIP_STRATEGIES))
        return (yield from self.tip(obs, style, strategy, self.tip_direction(obs)))

    def play_carry_standing(self, obs: Obs, style: Style) -> Program:
        """Grip the standing piece's stem top across its faces, set it down elsewhere still
        standing (anywhere it could later be toppled from)."""
        rng = style.rng
        h = self.normal_heading(obs)
        top = self.HALF_LEN * 2 - 0.012  # eef height: fingertips 1.2 cm below the stem's top

        def above(o: Obs, z: float) -> tuple[np.ndarray, float]:
            c = o["object"][:3].astype(np.float64)
            return np.array([c[0], c[1], z]), self.grip_yaw(o, h + np.pi / 2)

        obs = yield from self.servo(obs, lambda o: above(o, self.SIDE_HOVER_Z), OPEN, style)
        obs = yield from self.servo(obs, lambda o: above(o, top), OPEN, style.slower(0.7))
        obs = yield from self.hold(obs, CLOSE, 4)
        obs = yield from self.rise_to(obs, self.SIDE_HOVER_Z + 0.02, CLOSE, style)
        if not self.holding(obs):
            return (yield from self.release(obs, style))
        x, y, _ = self.sample_init(str(rng.choice(["expert", "eval", "play"])), rng)
        _, psi = self.piece_pose(obs)
        return (yield from self.place(obs, style, (x, y), psi + rng.uniform(-1, 1), 0.01, 0.3))

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Play from a standing piece: while it stands, tip it (rarely), carry it around
        standing, push it (high pushes topple it) or wander; once it is flat, the flat task's
        play (pick-and-place, pushes, wandering)."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))
        flat_play = (self.play_pick_and_place, self.play_push, self.wander_above)

        def standing_push(obs: Obs, s: Style) -> Program:
            return (yield from self.play_push(obs, s, z_range=(0.016, 0.05)))

        standing_play = (self.play_tip, self.play_carry_standing, standing_push, self.wander_above)

        def program(obs: Obs) -> Program:
            while True:
                if self.flat(obs):
                    primitive = flat_play[rng.choice(3, p=[0.6, 0.25, 0.15])]
                else:
                    primitive = standing_play[rng.choice(4, p=[0.08, 0.45, 0.2, 0.27])]
                obs = yield from primitive(obs, style)

        return ScriptedController(program, self.action_dim)
