"""MiniSquareHook: hang the square nut on the hook of the square scene.

The paper's square-hook task: the same scene as square-peg (`MiniSquarePeg` builds the hook
too, so the MJCF is identical) and the same regions, so it re-uses square-peg's play data;
only the goal differs. The hook is a post at the far (-x) edge of the table with a horizontal
arm 18 cm up and an upward tip at the arm's end. The expert carries the nut flat above the
tip, lowers it over the tip until its ring rests on the arm and lets go: the nut swings down
and hangs from the arm through its hole, 4 cm or more above the table.
"""

from __future__ import annotations

import mujoco
import numpy as np

from rise.envs.mini import CLOSE, MiniEnv, Obs, Program, Style
from rise.envs.mini_square_peg import MiniSquarePeg


class MiniSquareHook(MiniSquarePeg):
    name = "mini_square_hook"
    # Expert and play only: square-peg's suboptimal demos aim at the peg, not the hook.
    sources = MiniEnv.sources
    HOOK_CARRY_Z = 0.245  # eef height at which a held nut's underside clears the hook's tip

    def __init__(self, cameras: bool = False, image_size: int = 84):
        super().__init__(cameras=cameras, image_size=image_size)
        body = self.model.geom_bodyid
        self._nut_geoms = body == self.model.body("nut").id
        gripper = [self.model.body(b).id for b in ("gripper", "finger_left", "finger_right")]
        self._gripper_geoms = np.isin(body, gripper)

    def success(self) -> bool:
        """Hung: the hook's arm threads the nut's hole and the gripper no longer touches it.

        A nut held on or over the hook, resting on the tip, lying under the hook or sitting
        on the peg is not hung. (The arm is too high for a threaded nut to touch the table.)
        """
        return self.arm_threads_hole() and not self.gripper_touches_nut()

    def arm_threads_hole(self) -> bool:
        """The arm's axis crosses the nut's mid-plane inside the hole (nut frame)."""
        obj = self.object_obs()
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, obj[3:])
        to_nut = rot.reshape(3, 3).T
        z = self.HOOK_ARM_TOP - 0.005
        ends = [np.array([*xy, z]) for xy in (self.hook_post_xy, self.HOOK_XY)]
        a, b = (to_nut @ (end - obj[:3]) for end in ends)
        if a[2] * b[2] > 0:  # both ends on the same side of the nut: the arm misses the hole
            return False
        cross = a + (b - a) * a[2] / (a[2] - b[2])
        return bool(np.all(np.abs(cross[:2]) < self.HOLE_HALF))

    def gripper_touches_nut(self) -> bool:
        """Any contact of the last physics step between the gripper and the nut."""
        n = self.data.ncon
        g1, g2 = self.data.contact.geom1[:n], self.data.contact.geom2[:n]
        nut, grip = self._nut_geoms, self._gripper_geoms
        return bool(np.any((nut[g1] & grip[g2]) | (grip[g1] & nut[g2])))

    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move: lift the nut above the tip, bring it over the tip with its
        handle pointing away from the post (so the gripper stays clear of the arm), lower it
        until its ring rests on the arm and let go: it swings down and hangs from the arm."""
        obs = yield from self.rise_to(obs, self.HOOK_CARRY_Z, CLOSE, style)
        return (
            yield from self.place(
                obs,
                style,
                self.HOOK_XY,
                0.0,
                0.005,
                0.1,
                rest_z=self.HOOK_ARM_TOP + self.NUT_HALF_H,
                retreat_z=self.HOOK_CARRY_Z,
            )
        )
