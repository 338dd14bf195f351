"""RsThreading: the paper's threading row on the robosuite tier: push the shaft of a needle
through a small ring held up by a stand (robosuite ships no such scene; MimicGen's is not
used).

The scene is robosuite's Lift with the cube replaced by the needle and the stand added
(rise.envs.lift_scene). The needle is the mini tier's: a 5 x 2 x 2 cm handle and a shaft of
8 mm square section running 7 cm on from its front face (the needle's frame sits at the
centre of its bounding box, x towards the tip). The ring is a polygon of boxes with its axis
horizontal along x, RING_Z above the table on a post; its hole is 16 mm wide, so the shaft
has 4 mm of clearance. A shaft lined up a few mm off the axis is guided in by the ring's edge
(the grasp lets the needle pitch); lined up 15 mm above or 9 mm below, it jams against the
ring's face. The ring is threaded away from the robot (+x), so the gripper holding the
handle is the near end of the needle, as with the square nut's handle over its peg.

Initial-state regions (needle centre x, y and the heading of its tip) are square-peg's,
clear of the stand: expert a 4 x 6 cm patch on the +y side, eval a band on the -y side (a
gap in position only), valid a patch in the middle, play anywhere reachable.

Data sources: `expert` (scripted: grasp the handle from above, lift over the ring, carry the
needle in front of the ring with its tip turned along the ring's axis, lower it to the
axis, push it through) and `play` (square-peg's program around the stand: carries to where
the expert lines up, above the ring, never lowered to its axis). Success: the tip is past
the ring's plane and the shaft crosses that plane inside the hole.
"""

from __future__ import annotations

import numpy as np

from rise.envs.lift_scene import LiftSceneEnv
from rise.envs.mini import CLOSE, Obs, Program, Style
from rise.envs.mini_threading import shaft_through_ring


class RsThreading(LiftSceneEnv):
    name = "rs_threading"
    robosuite_env = "Threading"
    # The needle, in its bounding box's frame (x towards the tip).
    OBJECT_HALF = (0.06, 0.01, 0.01)
    HANDLE_LEN = 0.05
    SHAFT_HALF_W = 0.004
    NUT_HALF_H = 0.01  # the needle's centre rests this high (square-peg's scripts' name)
    HANDLE_ALONG = -0.035  # the handle's centre, from the needle's
    GRASP_ALONG = -0.027  # near the needle's centre of mass (-0.024), the pads on the handle
    HANDLE_END = -0.06
    TIP_ALONG = 0.06
    SHAFT_START = -0.01
    # The stand: a post carrying the ring, its axis along +x, RING_Z above the table.
    STAND_XY = FIXTURE_XY = np.array([0.12, 0.0])
    THREAD_DIR = np.array([1.0, 0.0, 0.0])
    THREAD_YAW = 0.0
    RING_Z = 0.07
    RING_R = 0.0105  # centre line of the ring's wall
    RING_WALL = 0.0025  # half thickness of the wall (radially)
    RING_DEPTH = 0.004  # half thickness along the axis
    RING_SEGMENTS = 16
    HOLE_R = RING_R - RING_WALL  # 8 mm
    POST_HALF = 0.006
    SUCCESS_DEPTH = 0.01
    PRE_INSERT = 0.03  # the tip lines up this far in front of the ring's plane
    INSERT = 0.03  # ... and is pushed this far past it
    ABOVE_RING_DZ = 0.12  # the needle's centre this high carries it over the ring
    # square-peg's scripts (play) carry "over the peg": here to where the expert lines up,
    # above the ring's top
    PEG_XY = STAND_XY - (TIP_ALONG + PRE_INSERT) * THREAD_DIR[:2]
    PEG_ABOVE_DZ = ABOVE_RING_DZ
    PEG_CLEARANCE = 0.1  # the needle's centre from the stand's axis (play, regions)
    REGIONS = {
        **LiftSceneEnv.REGIONS,
        "valid": (np.array([-0.07, -0.05, -np.pi / 12]), np.array([-0.01, 0.05, np.pi / 12])),
    }

    # ----------------------------------------------------------------- geometry
    @classmethod
    def object_boxes(cls) -> list[tuple[tuple, tuple]]:
        """(centre, half sizes) of the handle and the shaft in the needle's frame."""
        hx, hy, hz = cls.OBJECT_HALF
        handle = ((-hx + cls.HANDLE_LEN / 2, 0.0, 0.0), (cls.HANDLE_LEN / 2, hy, hz))
        shaft_half = (hx - cls.SHAFT_START) / 2
        w = cls.SHAFT_HALF_W
        shaft = ((cls.SHAFT_START + shaft_half, 0.0, 0.0), (shaft_half, w, w))
        return [handle, shaft]

    @classmethod
    def fixture_boxes(cls) -> list[tuple[tuple, tuple, tuple]]:
        """(centre, half sizes, quaternion) of the ring's boxes (around the x axis, long
        enough to close up) and the post, about STAND_XY on the table top."""
        n, r, z = cls.RING_SEGMENTS, cls.RING_R, cls.RING_Z
        tangent = (r + cls.RING_WALL) * np.tan(np.pi / n)
        boxes = []
        for a in 2 * np.pi * np.arange(n) / n:  # a box turned by a about x: local y radial
            centre = (0.0, r * np.cos(a), z + r * np.sin(a))
            quat = (np.cos(a / 2), np.sin(a / 2), 0.0, 0.0)
            boxes.append((centre, (cls.RING_DEPTH, cls.RING_WALL, tangent), quat))
        post_top = z - r - cls.RING_WALL
        post = (
            (0.0, 0.0, post_top / 2),
            (cls.POST_HALF, cls.POST_HALF, post_top / 2),
            (1, 0, 0, 0),
        )
        return [*boxes, post]

    # ----------------------------------------------------------------- success
    def ring_center(self) -> np.ndarray:
        return np.array([*self.STAND_XY, self.table_z + self.RING_Z])

    def needle_point(self, along: float) -> np.ndarray:
        """The point `along` the needle's axis from its centre, in the world."""
        from robosuite.utils import transform_utils as T

        o = self._obs
        return np.asarray(o["cube_pos"]) + along * T.quat2mat(np.asarray(o["cube_quat"]))[:, 0]

    def success(self) -> bool:
        """The shaft goes through the hole: the tip is SUCCESS_DEPTH past the ring's plane and
        the shaft crosses that plane inside the hole (not beside, above or below the ring)."""
        base, tip = self.needle_point(self.SHAFT_START), self.needle_point(self.TIP_ALONG)
        return shaft_through_ring(base, tip, self.ring_center(), self.THREAD_DIR,
                                  self.SUCCESS_DEPTH, self.HOLE_R)  # fmt: skip

    # ----------------------------------------------------------------- the expert
    def square_yaw(self, obs: Obs) -> float:
        return float(self.THREAD_YAW)

    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move with the needle in hand: over the ring's height, in front
        of it turned along its axis, down to the axis, then through along it."""
        yaw, heading_goal = self.turn_to(obs, self.THREAD_YAW, self.PEG_XY)
        axis = self.THREAD_DIR[:2]

        def at(xy, dz):
            return lambda o: self.carry_target(o, xy, yaw, heading_goal, dz)

        obs = yield from self.rise_to(obs, self.ABOVE_RING_DZ + 0.03, CLOSE, style)
        obs = yield from self.servo(
            obs, at(self.PEG_XY, self.ABOVE_RING_DZ), CLOSE, style, tol=0.004, max_steps=100
        )
        slow = style.slower(0.5)
        obs = yield from self.servo(
            obs, at(self.PEG_XY, self.RING_Z), CLOSE, slow, tol=0.002, max_steps=60
        )
        through = self.PEG_XY + (self.PRE_INSERT + self.INSERT) * axis
        return (
            yield from self.servo(
                obs, at(through, self.RING_Z), CLOSE, slow, tol=0.002, max_steps=80
            )
        )
