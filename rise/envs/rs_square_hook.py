"""RsSquareHook: the paper's square-hook row on the robosuite tier: hang robosuite's square nut
on a hook added to its Square scene (robosuite ships no hook; MimicGen's is not used).

The scene is NutAssemblySquare's (table, both pegs, both nuts) plus this project's hook,
between the pegs at the far edge of the table: a post at x = POST_X carrying a horizontal
arm along -x, HOOK_ARM_TOP above the table, and an upward tip at the arm's end (TIP_XY). The
nut goes on flat over the tip with its handle towards the robot; let go, its far wall rests
on the arm, it swings down and hangs from the arm through its hole.

Regions and the play program are square-peg's (the row's data story is the same: expert
demos from a patch, play over the whole table, evaluation from a band it never saw); play
is collected in this scene, as the hook changes the MuJoCo model. Success: the arm threads
the nut's hole and the gripper no longer touches the nut.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from rise.envs.mini import CLOSE, OPEN, Obs, Program, Style
from rise.envs.robosuite_env import RobosuiteEnv
from rise.envs.rs_square_peg import RsSquarePeg

ROBOSUITE_NAME = "NutAssemblySquareHook"


@functools.cache
def register_hook_scene() -> type:
    """Define (once) robosuite's Square scene with the hook; robosuite registers every env
    class it sees defined, so `robosuite.make(ROBOSUITE_NAME)` builds it afterwards."""
    from robosuite.environments.manipulation.nut_assembly import NutAssemblySquare
    from robosuite.utils.mjcf_utils import new_body, new_geom

    class NutAssemblySquareHook(NutAssemblySquare):
        """NutAssemblySquare plus a hook (post, arm, tip) between the pegs."""

        def _load_model(self):
            super()._load_model()
            body = new_body(name="hook", pos=(0.0, 0.0, float(self.table_offset[2])))
            for name, pos, half in RsSquareHook.hook_boxes():
                solid = dict(group=0, friction="1 0.005 0.0001")  # the pegs' friction
                seen = dict(group=1, contype="0", conaffinity="0", rgba="0.5 0.5 0.5 1")
                body.append(new_geom(f"hook_{name}", "box", half, pos, **solid))
                body.append(new_geom(f"hook_{name}_visual", "box", half, pos, **seen))
            self.model.worldbody.append(body)

    return NutAssemblySquareHook


class RsSquareHook(RsSquarePeg):
    name = "rs_square_hook"
    robosuite_env = ROBOSUITE_NAME
    sources = RobosuiteEnv.sources  # expert and play: square-peg's operator aims at the peg
    POST_X = 0.30
    TIP_XY = np.array([0.20, 0.0])
    HOOK_ARM_TOP = 0.17  # above the table: a nut hanging from the arm stays 5 cm above it
    HOOK_TIP_TOP = 0.20
    HOOK_HALF = 0.008  # arm and tip: 1.6 cm rods in the nut's 4.55 cm hole
    POST_HALF = 0.01
    HOLE_HALF = 0.02275  # the square nut's hole (robosuite's square-nut.xml)
    # Eef height carrying the nut with its underside ~2 cm over the tip.
    HOOK_CARRY_DZ = 0.24
    RELEASE_DZ = 0.006  # the ring's underside over the arm when the gripper lets go

    def __init__(self, cameras: bool = False, image_size: int = 84, env_args: dict | None = None):
        register_hook_scene()
        super().__init__(cameras=cameras, image_size=image_size, env_args=env_args)

    @classmethod
    def hook_boxes(cls) -> list[tuple[str, tuple, tuple]]:
        """(name, centre, half sizes) of the hook's boxes, above the table top's centre."""
        top, tip, h = cls.HOOK_ARM_TOP, cls.TIP_XY[0], cls.HOOK_HALF
        arm_len = cls.POST_X - tip
        return [
            ("post", (cls.POST_X, 0.0, top / 2), (cls.POST_HALF, cls.POST_HALF, top / 2)),
            ("arm", (tip + arm_len / 2, 0.0, top - h), (arm_len / 2, h, h)),
            ("tip", (tip, 0.0, (top + cls.HOOK_TIP_TOP) / 2), (h, h, (cls.HOOK_TIP_TOP - top) / 2)),
        ]

    # ----------------------------------------------------------------- success
    def success(self) -> bool:
        """Hung: the arm threads the nut's hole and the gripper no longer touches the nut.
        A nut held over the hook, resting on the tip or lying on the table is not hung."""
        return self.arm_threads_hole() and not self.gripper_touches_nut()

    def arm_threads_hole(self) -> bool:
        """The arm's axis crosses the nut's mid-plane inside the hole (nut frame)."""
        nut = self.env.nuts[self.env.nut_id]
        centre = self.sim.data.get_body_xpos(nut.root_body)
        to_nut = self.sim.data.get_body_xmat(nut.root_body).T
        z = self.table_z + self.HOOK_ARM_TOP - self.HOOK_HALF
        ends = [np.array([x, self.TIP_XY[1], z]) for x in (self.POST_X, self.TIP_XY[0])]
        a, b = (to_nut @ (end - centre) for end in ends)
        if a[2] * b[2] > 0:  # both ends on the same side of the nut: the arm misses the hole
            return False
        cross = a + (b - a) * a[2] / (a[2] - b[2])
        return bool(np.all(np.abs(cross[:2]) < self.HOLE_HALF))

    def gripper_touches_nut(self) -> bool:
        nut = self.env.nuts[self.env.nut_id]
        return bool(self.env.check_contact(self.robot.gripper["right"], nut))

    # ----------------------------------------------------------------- the expert
    def deliver(self, obs: Obs, style: Style) -> Program:
        """The expert's goal move with the nut in hand (square-peg's `scripted_expert` picks
        it): up above the tip, over it square to the arm (handle towards the robot), down
        until the ring is just above the arm, let go (it swings down and hangs), back up."""
        obs = yield from self.rise_to(obs, self.HOOK_CARRY_DZ, CLOSE, style)
        obs = yield from self.carry_toward(obs, style, self.TIP_XY, np.pi, tol=0.005, max_steps=100)
        rest = self.HOOK_ARM_TOP + self.NUT_HALF_H + self.RELEASE_DZ
        slow = style.slower(0.5)
        obs = yield from self.carry_toward(
            obs, slow, self.TIP_XY, np.pi, dz=rest, tol=0.004, max_steps=60
        )
        obs = yield from self.hold(obs, OPEN, 6)
        return (yield from self.rise_to(obs, self.HOOK_CARRY_DZ, OPEN, replace(style, noise=0.0)))
