"""The inexperienced operator of the square-peg rows (robomimic's Square-Worse), written once
for both tiers: the mini tier's gripper and the robosuite tier's Panda.

A tier's square-nut env mixes `NutOperator` in and supplies its moves: `pick(obs, style,
along)`, `pick_retrying`, `holding`, `hold`, `servo`, `square_yaw`, and six more
(`botched_pick`, `hover`, `back_off`, `gripper_pose`, `carry_toward`, `put_on_peg`), plus
PEG_XY, GRASP_ALONG and MISALIGNED_OFF (how far off the peg's axis a misaligned operator
lowers the nut so that its ring lands on the peg's top).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rise.envs.mini import CLOSE, OPEN, Obs, Program, ScriptedController, Style


class NutOperator:
    # Failure mode of a suboptimal episode -> probability (see `scripted_suboptimal`).
    SUBOPTIMAL_MODES = {
        "clumsy": 0.15,
        "noisy": 0.15,
        "hesitant": 0.15,
        "missed_grasp": 0.1,
        "drop": 0.15,
        "misaligned": 0.15,
        "slow": 0.15,
    }
    MISALIGNED_OFF = (0.02, 0.03)  # m off the peg's axis

    def scripted_suboptimal(
        self, rng: np.random.Generator, mode: str | None = None
    ) -> ScriptedController:
        """An inexperienced operator (robomimic's Square-Worse): slower and shakier than the
        expert, with one failure mode per episode, drawn from SUBOPTIMAL_MODES unless given:

          clumsy        one hesitation on the way, then gets the nut on (a non-expert success);
          noisy         a very shaky hand: the nut often catches on the peg's top;
          hesitant      pauses and back-and-forth moves between every step: often too late;
          missed_grasp  closes beyond the handle's end or above it, the same way again, gives up;
          drop          opens the gripper mid-carry; sometimes picks the nut up again;
          misaligned    lowers the nut off the peg's axis (MISALIGNED_OFF): its ring catches
                        on the peg's top and stays there (or leans against it) after the release;
          slow          far too slow, with pauses: the horizon ends before the nut is on.

        The controller's `mode` attribute names the episode's mode (for tests and analysis).
        """
        modes = self.SUBOPTIMAL_MODES
        if mode is None:
            mode = str(rng.choice(list(modes), p=list(modes.values())))
        elif mode not in modes:
            raise ValueError(f"unknown mode {mode!r}; known: {sorted(modes)}")
        style = Style(rng, speed=rng.uniform(0.45, 0.8), noise=rng.uniform(0.08, 0.15))
        if mode == "noisy":
            style = replace(style, noise=rng.uniform(0.4, 0.6))
        elif mode == "hesitant":
            style = style.slower(0.5)
        elif mode == "slow":
            style = replace(style, speed=rng.uniform(0.2, 0.3))
        along = self.GRASP_ALONG + rng.uniform(-0.01, 0.01)
        # Where (of 4 points in the script) the operator stops to hesitate, and how often.
        waits = {"hesitant": (4, 2), "slow": (4, 1), "clumsy": (1, 1)}.get(mode, (0, 0))
        wait_at = set(rng.choice(4, size=waits[0], replace=False).tolist())

        def hesitate(obs: Obs, point: int, grip: float) -> Program:
            """At `point` of the script: stop a moment, or drift off and come back."""
            for _ in range(waits[1] if point in wait_at else 0):
                if mode == "slow" or rng.random() < 0.5:
                    obs = yield from self.hold(obs, grip, int(rng.integers(5, 15)))
                    continue
                home, heading = self.gripper_pose(obs)
                away = home + np.append(rng.uniform(-0.05, 0.05, 2), rng.uniform(0.0, 0.03))
                for goal in (away, home):
                    obs = yield from self.servo(
                        obs,
                        lambda o, g=goal, h=heading: (g, h),
                        grip,
                        style,
                        tol=0.008,
                        max_steps=15,
                    )
            return obs

        def stalling(program: Program) -> Program:
            """Slow mode: the operator freezes for 1-2 steps after most moves."""
            action = next(program)
            while True:
                obs = yield action
                for _ in range(int(rng.integers(1, 3))):
                    obs = yield np.append(np.zeros(len(action) - 1), action[-1])
                try:
                    action = program.send(obs)
                except StopIteration as stop:
                    return stop.value

        def carry_part(obs: Obs, fraction: float) -> Program:
            """Carry the held nut towards the peg until `fraction` of the way is done."""
            start = obs["object"][:2].astype(np.float64)
            done = fraction * np.linalg.norm(self.PEG_XY - start)
            return (
                yield from self.carry_toward(
                    obs,
                    style,
                    self.PEG_XY,
                    self.square_yaw(obs),
                    until=lambda o: np.linalg.norm(o["object"][:2] - start) > done,
                    max_steps=60,
                )
            )

        def miss(obs: Obs) -> Program:
            """Botched grasps, then the operator gives up."""
            for _ in range(int(rng.integers(2, 4))):
                obs = yield from self.botched_pick(obs, style, along, rng)
                obs = yield from self.hold(obs, OPEN, int(rng.integers(3, 10)))
            return (yield from self.hover(obs, style))

        def attempt(obs: Obs, drop: bool) -> Program:
            """Pick, carry (dropping the nut on the way if `drop`), put it on the peg."""
            obs = yield from hesitate(obs, 0, OPEN)
            obs = yield from self.pick_retrying(obs, style, along, tries=2)
            if not self.holding(obs):
                return (yield from self.hover(obs, style))
            obs = yield from hesitate(obs, 1, CLOSE)
            obs = yield from carry_part(obs, rng.uniform(0.2, 0.5))
            if drop:
                obs = yield from self.hold(obs, OPEN, 5)
                return (yield from self.back_off(obs, style))
            obs = yield from hesitate(obs, 2, CLOSE)
            goal_yaw, goal_xy = self.square_yaw(obs), self.PEG_XY
            if mode == "misaligned":  # off the axis: the ring lands on the peg's top
                theta = rng.uniform(-np.pi, np.pi)
                goal_xy = self.PEG_XY + rng.uniform(*self.MISALIGNED_OFF) * np.array(
                    [np.cos(theta), np.sin(theta)]
                )
            if 3 in wait_at:  # stops right above the peg before lowering
                obs = yield from self.carry_toward(
                    obs, style, goal_xy, goal_yaw, tol=0.01, max_steps=40
                )
                obs = yield from hesitate(obs, 3, CLOSE)
            return (yield from self.put_on_peg(obs, style, goal_xy, goal_yaw))

        def program(obs: Obs) -> Program:
            if mode == "missed_grasp":
                return (yield from miss(obs))
            if mode == "slow":
                return (yield from stalling(attempt(obs, drop=False)))
            obs = yield from attempt(obs, drop=mode == "drop")
            if mode == "drop" and rng.random() < 0.3:  # tries again from where the nut fell
                obs = yield from attempt(obs, drop=False)
            return obs

        controller = ScriptedController(program, self.action_dim)
        controller.mode = mode
        return controller
