"""Scenes of the robosuite tier that robosuite does not ship, built on its Lift: Lift's table
and Panda, this project's free object where Lift's cube was (a robosuite `CompositeObject`
of boxes, under the cube's name, so Lift's observables `cube_pos`, `cube_quat` and
`gripper_to_cube_pos` describe it), and fixed boxes on the table (a slotted block, a ring on
a stand). Imported when an env is built: robosuite is not imported with rise.envs.
"""

from __future__ import annotations

import functools

import numpy as np

from rise.envs.robosuite_env import RobosuiteEnv
from rise.envs.rs_square_peg import RsSquarePeg


@functools.cache
def register_lift_scene(env_cls: type) -> type:
    """Define (once) `env_cls.robosuite_env` as a robosuite env class; robosuite registers
    every env class it sees defined, so `robosuite.make(name)` builds it afterwards.

    `env_cls` gives the object (`OBJECT_HALF`, its bounding box's half sizes, and
    `object_boxes()`: (centre, half sizes) in that box's frame) and the fixture
    (`FIXTURE_XY` on the table top and `fixture_boxes()`: (centre, half sizes, w-x-y-z
    quaternion) about it)."""
    from robosuite.environments.manipulation.lift import Lift
    from robosuite.environments.manipulation.manipulation_env import ManipulationEnv
    from robosuite.models.arenas import TableArena
    from robosuite.models.objects import CompositeObject
    from robosuite.models.tasks import ManipulationTask
    from robosuite.utils.mjcf_utils import new_body, new_geom
    from robosuite.utils.placement_samplers import UniformRandomSampler

    def _load_model(self):
        ManipulationEnv._load_model(self)
        xpos = self.robots[0].robot_model.base_xpos_offset["table"](self.table_full_size[0])
        self.robots[0].robot_model.set_base_xpos(xpos)
        arena = TableArena(
            table_full_size=self.table_full_size,
            table_friction=self.table_friction,
            table_offset=self.table_offset,
        )
        arena.set_origin([0, 0, 0])
        boxes = env_cls.object_boxes()
        self.cube = CompositeObject(
            name="cube",
            total_size=env_cls.OBJECT_HALF,
            geom_types=["box"] * len(boxes),
            geom_sizes=[half for _, half in boxes],
            geom_locations=[centre for centre, _ in boxes],
            geom_rgbas=[(0.2, 0.5, 0.8, 1.0)] * len(boxes),
            geom_frictions=[(1.0, 0.005, 0.0001)] * len(boxes),
            density=500.0,
            locations_relative_to_center=True,
        )
        # Lift's reset places the object with its sampler; the env's `place_objects` moves it
        self.placement_initializer = UniformRandomSampler(
            name="ObjectSampler",
            mujoco_objects=self.cube,
            x_range=[-0.03, 0.03],
            y_range=[-0.03, 0.03],
            rotation=0.0,
            reference_pos=self.table_offset,
            z_offset=0.01,
        )
        self.model = ManipulationTask(
            mujoco_arena=arena,
            mujoco_robots=[robot.robot_model for robot in self.robots],
            mujoco_objects=self.cube,
        )
        fixture = new_body(name="fixture", pos=(*env_cls.FIXTURE_XY, float(self.table_offset[2])))
        for i, (centre, half, quat) in enumerate(env_cls.fixture_boxes()):
            solid = dict(group=0, friction="1 0.005 0.0001", quat=quat)
            seen = dict(group=1, contype="0", conaffinity="0", rgba="0.6 0.45 0.3 1", quat=quat)
            fixture.append(new_geom(f"fixture_{i}", "box", half, centre, **solid))
            fixture.append(new_geom(f"fixture_{i}_visual", "box", half, centre, **seen))
        self.model.worldbody.append(fixture)

    doc = f"Lift's table and Panda with {env_cls.__name__}'s object and fixture."
    return type(env_cls.robosuite_env, (Lift,), {"_load_model": _load_model, "__doc__": doc})


class LiftSceneEnv(RsSquarePeg):
    """Base of the tier's Lift-built scenes: square-peg's scripts (the object's grasp is the
    nut's handle, the fixture the peg), regions and episode API, on the scene
    `register_lift_scene` builds from the subclass's object and fixture."""

    sources = RobosuiteEnv.sources  # expert and play
    object_keys = ("cube_pos", "cube_quat", "gripper_to_cube_pos")
    OBJECT_HALF: tuple[float, float, float] = (0.0, 0.0, 0.0)
    FIXTURE_XY = np.zeros(2)
    PEG_CLEARANCE = 0.12  # the object's centre from the fixture's (play, regions)

    def __init__(self, cameras: bool = False, image_size: int = 84, env_args: dict | None = None):
        register_lift_scene(type(self))
        super().__init__(cameras=cameras, image_size=image_size, env_args=env_args)

    @classmethod
    def object_boxes(cls) -> list[tuple[tuple, tuple]]:
        raise NotImplementedError

    @classmethod
    def fixture_boxes(cls) -> list[tuple[tuple, tuple, tuple]]:
        raise NotImplementedError

    def clear_of_pegs(self, xy) -> bool:
        return bool(np.linalg.norm(np.asarray(xy) - self.FIXTURE_XY) > self.PEG_CLEARANCE)

    @property
    def nut_joint(self) -> str:
        return self.env.cube.joints[0]
