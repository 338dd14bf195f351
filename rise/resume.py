"""Resumable training: a job killed at any step continues where it was, bit for bit.

Every `checkpoint_every` steps a training loop writes, atomically, what it needs to go on:
the state of each stateful part (model, optimisers, weight EMA, target networks), torch's
RNG state, the curve rows so far and the number of steps done, to `<output>.resume`. That
name is no declared output of any Snakemake rule or DVC stage, so a partial run is never
mistaken for a finished one, and neither driver deletes it before rerunning the job. A
restarted job rebuilds everything from its seed as a fresh run does, loads that state,
replays the numpy batch draws of the steps already done (cheap: indices only, no compute)
and goes on; once the output is written the file is removed. On a CPU the resumed run's
weights equal an uninterrupted run's bit for bit (tests/test_resume.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rise.atomic import save_torch

KIND = "resume"


class Resumable:
    """The resume file of one training job's output, over named parts with
    `state_dict()` / `load_state_dict()` (modules, optimisers, rise.train.WeightEMA); `hp`
    is the job's settings section (`steps`, `checkpoint_every`)."""

    def __init__(self, out: str, hp: dict, parts: dict):
        self.path = Path(f"{out}.resume")
        self.every, self.total, self.parts = hp["checkpoint_every"], hp["steps"], parts

    def load(self) -> tuple[int, list[dict]]:
        """(steps already done, curve rows so far): (0, []) when there is nothing to resume.
        A resume file of another job (other parts or sizes) is an error naming it."""
        if not self.path.is_file():
            return 0, []
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("kind") != KIND or set(state["parts"]) != set(self.parts):
            raise ValueError(
                f"{self.path}: not a resume file of this job (parts {sorted(self.parts)}); "
                "delete it to start the job afresh"
            )
        try:
            for name, part in self.parts.items():
                part.load_state_dict(state["parts"][name])
        except (RuntimeError, KeyError, ValueError) as err:
            raise ValueError(
                f"{self.path}: does not fit this job's settings ({err}); "
                "delete it to start the job afresh"
            ) from err
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming from {self.path} at step {state['step']}")
        return state["step"], state["rows"]

    def save(self, done: int, rows: list[dict]) -> None:
        """After `done` steps: write the resume file when `done` is a multiple of `every`
        (`every` 0: never) and steps are left."""
        if self.every <= 0 or done % self.every or done >= self.total:
            return
        state = {
            "kind": KIND,
            "step": done,
            "rows": rows,
            "torch_rng": torch.get_rng_state(),
            "parts": {name: part.state_dict() for name, part in self.parts.items()},
        }
        save_torch(self.path, state)

    def finish(self) -> None:
        """The output is written: the resume file has served."""
        self.path.unlink(missing_ok=True)
