"""The agent ledger: the one owner of every agent's training state.

A job trains S agents (``train.num_seeds``; a plain run is S = 1). For each agent the
ledger keeps its counters (episodes, env steps), the moving window of its last returns,
the episode at which it reached the target, and why it stopped; it decides, in one place,
when an agent stops (budget spent or target reached) and when the whole run stops (every
agent stopped, or a signal asked for a clean stop). It also holds the rollout's state
(rounds, active flags, RNG states: :meth:`EpisodeCollector.state_dict`), so that a
checkpoint saves, and a resume reads back, *one* object.

Callbacks only read it (``episodes.csv``, progress, metrics); the Lightning module feeds it
after every update and applies its decisions (freezing a stopped agent's parameters).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

TARGET = "target return reached"
MAX_ENV_STEPS = "max_env_steps reached"
MAX_EPISODES = "max_episodes reached"


class Rollout(Protocol):
    """What the ledger needs of the collector: its state and the agents' active flags."""

    active: Any  # [S] bool array: agents still collecting episodes

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Budget:
    """When an agent stops (``train.*``): whichever limit it reaches first."""

    max_env_steps: int | None
    max_episodes: int | None
    target_return: float | None  # mean of the last `window` returns ≥ this: solved
    window: int = 100


@dataclass
class AgentEpisodes:
    """The episodes one agent finished in one update (rows of ``episodes.csv``)."""

    seed: int
    numbers: list[int]  # the agent's own episode numbers, from 1
    env_steps: list[int]  # the agent's env-step count at the end of each episode
    returns: list[float]  # undiscounted
    lengths: list[int]


@dataclass
class UpdateRecord:
    """What one update produced: its metrics and the episodes of every agent."""

    metrics: dict[str, float]
    agents: list[AgentEpisodes] = field(default_factory=list)
    env_step: int = 0  # x-axis of the update's metrics: env steps per agent so far


def limit_reached(budget: Budget, env_steps: int, episodes: int, solved_at: int | None) -> str | None:
    """Why an agent with these counters stops under ``budget`` (None: it trains on).

    The one stopping rule, used by the ledger after every update and by ``resume=`` to tell
    whether a finished run has anything left to train under a new budget. An agent that
    reached the target stays stopped while a target is set (``train.target_return=null``
    lets it train on to its budget).
    """
    if solved_at is not None and budget.target_return is not None:
        return TARGET
    if budget.max_env_steps is not None and env_steps >= budget.max_env_steps:
        return MAX_ENV_STEPS
    if budget.max_episodes is not None and episodes >= budget.max_episodes:
        return MAX_EPISODES
    return None


class AgentLedger:
    """Counters, return windows, targets and stop decisions of S agents (see the module docstring).

    Args:
        seeds: the seed of each agent.
        budget: the stopping rules.
        rollout: the collector whose state is saved with the ledger and whose active flags
            the ledger clears for stopped agents (None: nothing to save or clear).
        interrupted: returns True once a clean stop was requested (SIGINT/SIGTERM).
    """

    def __init__(self, seeds: Sequence[int], budget: Budget, rollout: Rollout | None = None,
                 interrupted: Callable[[], bool] = lambda: False) -> None:
        self.seeds = [int(s) for s in seeds]
        self.budget = budget
        self.rollout = rollout
        self.interrupted = interrupted
        n = len(self.seeds)
        self.env_steps = [0] * n
        self.episodes = [0] * n
        self.recent: list[deque[float]] = [deque(maxlen=budget.window) for _ in range(n)]
        self.solved_at: list[int | None] = [None] * n
        self.reasons: list[str | None] = [None] * n

    # ------------------------------------------------------------------ reading
    @property
    def num_agents(self) -> int:
        return len(self.seeds)

    @property
    def total_env_steps(self) -> int:
        return sum(self.env_steps)

    @property
    def total_episodes(self) -> int:
        return sum(self.episodes)

    @property
    def env_step(self) -> int:
        """Env steps per agent (the x-axis of per-update metrics)."""
        return self.total_env_steps // self.num_agents

    def agent_mean(self, agent: int) -> float:
        """Mean of the agent's last ``window`` returns (NaN before its first episode)."""
        r = self.recent[agent]
        return sum(r) / len(r) if r else float("nan")

    @property
    def mean_return(self) -> float:
        """Mean over agents of each agent's windowed mean return."""
        means = [self.agent_mean(a) for a in range(self.num_agents) if self.recent[a]]
        return sum(means) / len(means) if means else float("nan")

    @property
    def has_returns(self) -> bool:
        return any(self.recent)

    @property
    def stop_reason(self) -> str | None:
        reasons = sorted({r for r in self.reasons if r})
        return ", ".join(reasons) if reasons else None

    @property
    def should_stop(self) -> bool:
        """The run ends when every agent has stopped or a clean stop was requested."""
        return all(self.reasons) or self.interrupted()

    # ------------------------------------------------------------------ writing
    def record(self, returns: Sequence[Sequence[float]], lengths: Sequence[Sequence[int]],
               offsets: Sequence[Sequence[int]] | None = None, steps: Sequence[int] | None = None) -> list[AgentEpisodes]:
        """Add each agent's finished episodes (in the order they finished); returns the rows.

        Whole-episode rollouts count an agent's env steps as its episodes' lengths. A
        fixed-horizon rollout (:mod:`reinforce_lab.horizon_rollout`) gives ``steps``, the env
        steps each agent simulated, and ``offsets``, where into them each episode ended.
        """
        rows = []
        for a, (rets, lens) in enumerate(zip(returns, lengths)):
            first = self.episodes[a] + 1
            ends, total = [], self.env_steps[a]
            if steps is not None and offsets is not None:
                ends, total = [total + int(o) for o in offsets[a]], total + int(steps[a])
            for n in lens if steps is None else ():
                total += int(n)
                ends.append(total)
            numbers = list(range(first, first + len(rets)))
            for episode, ret in zip(numbers, rets):
                self._add_return(a, episode, float(ret))
            self.env_steps[a], self.episodes[a] = total, self.episodes[a] + len(rets)
            rows.append(AgentEpisodes(self.seeds[a], numbers, ends, [float(r) for r in rets], [int(n) for n in lens]))
        return rows

    def _add_return(self, agent: int, episode: int, ret: float) -> None:
        window = self.recent[agent]
        window.append(ret)
        target = self.budget.target_return
        if (self.solved_at[agent] is None and target is not None and len(window) == self.budget.window
                and self.agent_mean(agent) >= target):
            self.solved_at[agent] = episode

    def decide(self) -> list[int]:
        """Stop the agents that reached a limit; returns those that stopped now.

        With several agents a stopped agent's env copies stop collecting (its active flag is
        cleared) so that its record is what a separate run would have written.
        """
        stopped = []
        for a in range(self.num_agents):
            if self.reasons[a]:
                continue
            self.reasons[a] = self._limit_reached(a)
            if self.reasons[a]:
                stopped.append(a)
        if self.num_agents > 1 and self.rollout is not None:
            for a in stopped:
                self.rollout.active[a] = False
        return stopped

    def _limit_reached(self, agent: int) -> str | None:
        return limit_reached(self.budget, self.env_steps[agent], self.episodes[agent], self.solved_at[agent])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly where this one is (plain data)."""
        return {"seeds": list(self.seeds), "env_steps": list(self.env_steps), "episodes": list(self.episodes),
                "recent": [list(r) for r in self.recent], "solved_at": list(self.solved_at),
                "rollout": self.rollout.state_dict() if self.rollout is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"the checkpoint's agents have seeds {state['seeds']}, this run's {self.seeds}")
        self.env_steps = [int(x) for x in state["env_steps"]]
        self.episodes = [int(x) for x in state["episodes"]]
        self.recent = [deque(r, maxlen=self.budget.window) for r in state["recent"]]
        self.solved_at = list(state["solved_at"])
        # Stop reasons are not restored: they follow from the budget, which a resume may change
        # (``resume=RUN train.max_env_steps=…``); the next decide() derives them again.
        self.reasons = [None] * self.num_agents
        if self.rollout is not None and state.get("rollout") is not None:
            self.rollout.load_state_dict(state["rollout"])
