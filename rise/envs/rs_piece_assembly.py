"""RsPieceAssembly: the paper's piece-assembly row on the robosuite tier: pick up a T-shaped
piece and drop it into the T-shaped slot of a block fixed on the table (robosuite ships no
such scene; MimicGen's is not used).

The scene is robosuite's Lift (table, Panda, OSC delta pose at 20 Hz) with the cube replaced
by the piece and the block added. The piece is the mini tier's flat T, 3 cm thick: a 1.6 x 6
cm crossbar and a 3.6 x 2 cm stem along its x axis (its frame at the centre of its bounding
box). The block is 10 x 10 cm, 1.2 cm tall, with the T's outline plus CLEARANCE per side cut
through it: the piece goes in only centred and turned like the slot (a T has no rotational
symmetry). The slot's stem points towards the robot (SLOT_YAW pi), so the gripper holding
the stem is the near end of the piece, as the square nut's handle is lowered onto its peg.

Initial-state regions (piece centre x, y and the heading of its stem; the block stands at
BLOCK_XY) are square-peg's, away from the block: expert a 4 x 6 cm patch on the +y side, eval
a band on the -y side (a gap in position only, as the paper's Fig 2), valid a patch in the
middle, play anywhere reachable clear of the block.

Data sources: `expert` (scripted: grasp the stem from above, lift, carry the piece over the
slot turned like it, lower it in, release; successes only) and `play` (square-peg's program:
pick-and-place to random poses, carries over the slot never lowered into it, pushes,
wandering). Success: the piece down in the slot, centred, turned like it, flat.
"""

from __future__ import annotations

import numpy as np

from rise.envs.lift_scene import LiftSceneEnv
from rise.envs.mini import CLOSE, OPEN, Obs, Program, ScriptedController, Source, Style, wrap_angle
from rise.envs.mini_piece_assembly import side_quat
from rise.envs.robosuite_env import quat_xyzw_yaw


class RsPieceAssembly(LiftSceneEnv):
    name = "rs_piece_assembly"
    robosuite_env = "PieceAssembly"
    # The piece (its frame at the centre of its bounding box, x along the stem).
    OBJECT_HALF = (0.026, 0.03, 0.015)
    BAR_T = 0.016  # the crossbar's thickness along x
    STEM_HALF_W = 0.01
    NUT_HALF_H = 0.015  # the piece's centre rests this high (square-peg's scripts' name)
    HANDLE_ALONG = 0.008  # the stem's middle, from the piece's centre
    GRASP_ALONG = 0.014  # where the fingers close across the stem
    HANDLE_END = 0.026
    GRASP_DZ = 0.02
    # The block, its slot's stem pointing to -x (towards the robot).
    BLOCK_XY = FIXTURE_XY = np.array([0.10, 0.14])
    SLOT_YAW = np.pi
    BLOCK_HALF = 0.05
    BLOCK_H = 0.012
    CLEARANCE = 0.007
    PEG_XY = BLOCK_XY  # square-peg's scripts carry "over the peg": here over the slot
    PEG_ABOVE_DZ = BLOCK_H + 0.015 + 0.01  # the piece's underside 1 cm over the block
    SUCCESS_XY = 0.008
    SUCCESS_YAW = 0.2
    SUCCESS_Z = 0.004

    # ----------------------------------------------------------------- geometry
    @classmethod
    def object_boxes(cls) -> list[tuple[tuple, tuple]]:
        """(centre, half sizes) of the crossbar and the stem in the piece's frame."""
        hx, hy, hz = cls.OBJECT_HALF
        bar = ((-hx + cls.BAR_T / 2, 0.0, 0.0), (cls.BAR_T / 2, hy, hz))
        stem = ((cls.BAR_T / 2, 0.0, 0.0), (hx - cls.BAR_T / 2, cls.STEM_HALF_W, hz))
        return [bar, stem]

    @classmethod
    def slot_outline(cls) -> list[tuple[float, float, float, float]]:
        """The slot's two rectangles (x0, x1, y0, y1) in the slot's frame: the piece's
        crossbar and stem, each CLEARANCE larger per side."""
        hx, hy, _ = cls.OBJECT_HALF
        c = cls.CLEARANCE
        bar = (-hx - c, -hx + cls.BAR_T + c, -hy - c, hy + c)
        stem = (-hx + cls.BAR_T - c, hx + c, -cls.STEM_HALF_W - c, cls.STEM_HALF_W + c)
        return [bar, stem]

    @classmethod
    def fixture_boxes(cls) -> list[tuple[tuple, tuple, tuple]]:
        """(centre, half sizes, quaternion) of the block's boxes in the world frame's axes
        about BLOCK_XY: the square minus the slot, in six boxes (turned by SLOT_YAW)."""
        s, h = cls.BLOCK_HALF, cls.BLOCK_H / 2
        (bx0, bx1, by0, by1), (sx0, sx1, sy0, sy1) = cls.slot_outline()
        rects = [
            (-s, bx0, -s, s),  # behind the crossbar
            (sx1, s, -s, s),  # beyond the stem's end
            (bx0, sx1, by1, s),  # beside the crossbar, both sides
            (bx0, sx1, -s, by0),
            (bx1, sx1, sy1, by1),  # beside the stem, both sides
            (bx1, sx1, by0, sy0),
        ]
        c, sn = np.cos(cls.SLOT_YAW), np.sin(cls.SLOT_YAW)
        boxes = []
        for x0, x1, y0, y1 in rects:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            hx, hy = (x1 - x0) / 2, (y1 - y0) / 2
            if abs(sn) > 0.7:  # a quarter turn swaps the box's extents
                hx, hy = hy, hx
            boxes.append(((c * cx - sn * cy, sn * cx + c * cy, h), (hx, hy, h), (1, 0, 0, 0)))
        return boxes

    # ----------------------------------------------------------------- success
    def success(self) -> bool:
        """The piece is down in the slot: centred, turned like it, flat on the table."""
        from robosuite.utils import transform_utils as T

        o = self._obs
        pos, quat = np.asarray(o["cube_pos"]), np.asarray(o["cube_quat"])
        up = T.quat2mat(quat)[:, 2]
        centred = np.linalg.norm(pos[:2] - self.BLOCK_XY) < self.SUCCESS_XY
        aligned = abs(wrap_angle(quat_xyzw_yaw(quat) - self.SLOT_YAW)) < self.SUCCESS_YAW
        down = pos[2] - self.table_z < self.NUT_HALF_H + self.SUCCESS_Z
        return bool(centred and aligned and down and abs(up[2]) > 0.97)  # either face up

    # ----------------------------------------------------------------- the expert
    def square_yaw(self, obs: Obs) -> float:
        return float(self.SLOT_YAW)

    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move with the piece in hand: over the slot, turned like it,
        down into it (a piece caught on the block is lifted and lowered again, twice)."""
        goal = (self.BLOCK_XY, self.SLOT_YAW, 0.003, 0.05, self.PEG_ABOVE_DZ)
        return (yield from self.place(obs, style, *goal, tries=3))


class RsPieceAssemblyTip(RsPieceAssembly):
    """The piece starts on its side (standing on the crossbar's long face, stem up, face
    normal horizontal) and must be tipped flat before it can be picked: a push high on the
    stem topples it about the crossbar's bottom edge, and it lands on one face or the other
    (the T is mirror symmetric: either fits the slot) with its stem along the push."""

    name = "rs_piece_assembly_tip"
    sources = {
        **LiftSceneEnv.sources,
        "partial_tipping": Source("play", successes_only=False),
    }
    # (x, y, face-normal heading) boxes of the standing piece: square-peg's positions; the
    # normal within +-15 degrees of x in the expert, eval and valid regions (it topples
    # along x), any heading in play.
    REGIONS = {
        **LiftSceneEnv.REGIONS,
        "play": (np.array([-0.2, -0.24, -np.pi / 2]), np.array([0.12, 0.24, np.pi / 2])),
    }
    PUSH_DZ = 0.042  # eef height pushing the stem (the standing piece is 5.2 cm tall)
    SIDE_HOVER_DZ = 0.1  # closed fingers clear a standing piece
    LAND = 0.045  # a toppled piece's centre lands about this far along the push
    TIP_STRATEGIES = ("push", "nudge")

    def place_objects(self, init: np.ndarray) -> None:
        x, y, heading = init
        z = self.table_z + self.OBJECT_HALF[0]
        self.set_free_pose(self.nut_joint, np.array([x, y, z]), side_quat(heading))

    def clear_of_pegs(self, xy) -> bool:
        """Clear of the block, also once toppled either way (a landing spot)."""
        return bool(
            np.linalg.norm(np.asarray(xy) - self.FIXTURE_XY) > self.PEG_CLEARANCE + self.LAND
        )

    # ----------------------------------------------------------------- tipping
    def face_normal(self, obs: Obs) -> np.ndarray:
        from robosuite.utils import transform_utils as T

        return T.quat2mat(obs["object"][3:7].astype(np.float64))[:, 2]

    def flat(self, obs: Obs) -> bool:
        return bool(abs(self.face_normal(obs)[2]) > 0.95)

    def tip_direction(self, obs: Obs) -> np.ndarray:
        """Along the face normal, away from the robot (the piece lands where the arm reaches
        down easily) unless that lands it near the block."""
        n = self.face_normal(obs)[:2]
        n = n / max(np.linalg.norm(n), 1e-9)
        c = obs["object"][:2].astype(np.float64)
        away = n if n[0] >= 0 else -n
        if np.linalg.norm(c + self.LAND * away - self.FIXTURE_XY) > self.PEG_CLEARANCE:
            return away
        return -away

    def tip(self, obs: Obs, style: Style, strategy: str, d: np.ndarray) -> Program:
        """Topple the standing piece along `d` (a unit xy vector): closed fingers come down
        behind it and push high on the stem straight through (`push`), or push a little,
        back off and push again (`nudge`)."""
        c = obs["object"][:2].astype(np.float64)
        heading = self.eef_heading(obs)  # closed fingers push either way round
        z, up = self.table_z + self.PUSH_DZ, self.table_z + self.SIDE_HOVER_DZ
        half_t = self.OBJECT_HALF[2]

        def goto(o: Obs, xy, zz, s: Style, until=None, steps=40) -> Program:
            goal = np.array([xy[0], xy[1], zz])
            return (
                yield from self.servo(
                    o, lambda _: (goal, heading), CLOSE, s, tol=0.006, until=until, max_steps=steps
                )
            )

        def toppled(o: Obs) -> bool:
            return abs(self.face_normal(o)[2]) > 0.6

        start, end = c - (half_t + 0.03) * d, c + 0.06 * d
        obs = yield from goto(obs, start, up, style)
        obs = yield from goto(obs, start, z, style, steps=25)
        if strategy == "nudge":
            mid = c - (half_t + 0.002) * d
            obs = yield from goto(obs, mid + 0.015 * d, z, style.slower(0.4), steps=12)
            obs = yield from goto(obs, mid - 0.01 * d, z, style.slower(0.5), steps=8)
        obs = yield from goto(obs, end, z, style.slower(0.5), until=toppled)
        obs = yield from self.rise_to(obs, self.SIDE_HOVER_DZ, CLOSE, style)
        return (yield from self.settle(obs, CLOSE))

    def tip_flat(self, obs: Obs, style: Style, strategies, tries: int = 3) -> Program:
        for i in range(tries):
            if self.flat(obs):
                break
            obs = yield from self.tip(
                obs, style, strategies[i % len(strategies)], self.tip_direction(obs)
            )
        return obs

    # ----------------------------------------------------------------- scripted sources
    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Push the standing piece over (away from the block), then assemble it."""
        style = Style(rng, speed=rng.uniform(0.7, 1.0), noise=rng.uniform(0.0, 0.05))
        assemble = self.expert_program(rng)

        def program(obs: Obs) -> Program:
            obs = yield from self.tip_flat(obs, style, ("push",))
            if not self.flat(obs):
                return (yield from self.hover(obs, style))
            return (yield from assemble(obs))

        return ScriptedController(program, self.action_dim)

    def scripted_partial_tipping(self, rng: np.random.Generator) -> ScriptedController:
        """Only reorients the piece: tips it flat with a strategy drawn per episode (the
        other if that fails), then wanders above the table or idles; never picks it up."""
        style = Style(rng, speed=rng.uniform(0.5, 1.0), noise=rng.uniform(0.02, 0.08))
        order = list(rng.permutation(self.TIP_STRATEGIES))
        low = [-0.2, -0.24, self.table_z + 0.08, -self.Q7_LIMIT]
        high = [0.15, 0.24, self.table_z + 0.25, self.Q7_LIMIT]

        def heading(o: Obs, pose: np.ndarray) -> float:
            return pose[3] + self.wrist_mid(pose[:2])

        def program(obs: Obs) -> Program:
            obs = yield from self.tip_flat(obs, style, order)
            while True:
                if rng.random() < 0.5:
                    obs = yield from self.wander(obs, style, low, high, heading, max_steps=25)
                else:
                    obs = yield from self.hold(obs, OPEN, int(rng.integers(5, 20)))

        return ScriptedController(program, self.action_dim)

    def scripted_play(self, rng: np.random.Generator) -> ScriptedController:
        """Play from a standing piece: tip it over with a random strategy and direction
        (half the time along its face normal's other way: it lands elsewhere), then the flat
        piece's play (pick-and-place, carries over the slot, pushes, wandering)."""
        style = Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.03, 0.1))
        flat_play = self.play_program(rng)

        def program(obs: Obs) -> Program:
            strategy = str(rng.choice(self.TIP_STRATEGIES))
            d = self.tip_direction(obs) * rng.choice([1.0, -1.0])
            obs = yield from self.tip(obs, style, strategy, d)
            return (yield from flat_play(obs))

        return ScriptedController(program, self.action_dim)
