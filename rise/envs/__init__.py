"""Simulated manipulation tasks, looked up by name."""

from rise.envs.mini import MiniEnv
from rise.envs.mini_square_peg import MiniSquarePeg

TASKS: dict[str, type[MiniEnv]] = {"mini_square_peg": MiniSquarePeg}


def make_task(name: str, cameras: bool = False, image_size: int = 84) -> MiniEnv:
    """Build the task registered as `name`; unknown names raise a ValueError listing the known."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](cameras=cameras, image_size=image_size)


__all__ = ["TASKS", "MiniEnv", "MiniSquarePeg", "make_task"]
