"""Learning-rate schedules over the env-step budget (``train.lr_schedule``), as torch schedulers.

``constant`` (the default, and the book's α) keeps the optimiser's lr. ``linear`` decays it
linearly to 0 over ``train.max_env_steps``: ``α_k = α_0 · max(0, 1 − n_k / N)`` with ``n_k`` the
env steps per agent trained on so far — the schedule of Tianshou's MuJoCo REINFORCE and of the
PPO/A2C baselines (Andrychowicz et al. 2021, §3.5: decaying helps most on long budgets).

The factor is a function of the agent ledger's env-step count, not of a counter of its own:
a resumed run (whose ledger and optimiser state come back from the checkpoint, with
Lightning restoring the scheduler) continues on exactly the same schedule. With whole-episode
rollouts and ``train.num_seeds > 1`` the agents' env steps differ slightly; they share one
optimiser, so the factor follows their mean (fixed-horizon agents are always in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class LrSchedule:
    """``train.lr_schedule`` over a budget of ``max_env_steps`` env steps per agent."""

    kind: str
    max_env_steps: int

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"train.lr_schedule={self.kind!r}; allowed: {', '.join(SCHEDULES)}")

    def factor(self, env_steps: int) -> float:
        """The multiplier of the initial lr after ``env_steps`` env steps per agent."""
        if self.kind == "constant":
            return 1.0
        return max(0.0, 1.0 - env_steps / self.max_env_steps)

    def scheduler(self, optimizer: torch.optim.Optimizer,
                  env_steps: Callable[[], int]) -> torch.optim.lr_scheduler.LambdaLR:
        """A ``LambdaLR`` whose factor reads ``env_steps()`` (the ledger's count) at each ``step()``."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: self.factor(env_steps()))


def make_schedule(kind: str, max_env_steps: int | None) -> LrSchedule | None:
    """The run's schedule; None for ``constant`` (nothing to step, checkpoints as before)."""
    if kind == "constant":
        return None
    if not max_env_steps:
        raise ValueError(f"train.lr_schedule={kind!r} needs train.max_env_steps (the budget it decays over); "
                         f"allowed without one: constant")
    return LrSchedule(kind, int(max_env_steps))
