"""Simulated environments, looked up by name (the tasks of Table I are in rise.tasks)."""

from rise.envs.mini import MiniEnv
from rise.envs.mini_mug_cleanup import MiniMugCleanup
from rise.envs.mini_piece_assembly import MiniPieceAssembly, MiniPieceAssemblyTip
from rise.envs.mini_square_hook import MiniSquareHook
from rise.envs.mini_square_peg import MiniSquarePeg
from rise.envs.mini_threading import MiniThreading
from rise.envs.robosuite_env import RobosuiteEnv
from rise.envs.rs_piece_assembly import RsPieceAssembly, RsPieceAssemblyTip
from rise.envs.rs_square_hook import RsSquareHook
from rise.envs.rs_square_peg import RsSquarePeg
from rise.envs.rs_threading import RsThreading

# robosuite tier envs import robosuite only when built (rise.envs.robosuite_env).
ENVS: dict[str, type[MiniEnv] | type[RobosuiteEnv]] = {
    cls.name: cls
    for cls in (
        MiniSquarePeg,
        MiniSquareHook,
        MiniPieceAssembly,
        MiniPieceAssemblyTip,
        MiniThreading,
        MiniMugCleanup,
        RsSquarePeg,
        RsSquareHook,
        RsPieceAssembly,
        RsPieceAssemblyTip,
        RsThreading,
    )
}


def make_env(
    name: str, cameras: bool = False, image_size: int = 84, env_args: dict | None = None
) -> MiniEnv | RobosuiteEnv:
    """Build the env registered as `name`; unknown names raise a ValueError listing the known.
    A robosuite-tier env takes the robot, controller and control rate of a dataset's
    robomimic `env_args` (a mini env has no such options: its env_args only name it)."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; known envs: {', '.join(sorted(ENVS))}")
    cls = ENVS[name]
    if env_args and issubclass(cls, RobosuiteEnv):
        return cls(cameras=cameras, image_size=image_size, env_args=env_args)
    return cls(cameras=cameras, image_size=image_size)


__all__ = ["ENVS", "MiniEnv", "RobosuiteEnv", "make_env"]
