"""A three-state continuing task for the average-reward setting (S&B §10.3, §13.6).

States 0, 1, 2 in a ring, observed one-hot; actions ``stay`` (0) and ``go`` (1):

* state 0: ``stay`` earns +1 and stays; ``go`` earns 0 and moves to state 1;
* state 1: ``stay`` earns 0 and falls back to state 0; ``go`` earns 0 and moves to state 2;
* state 2: either action earns +6 and returns to state 0.

The task never terminates (``terminated`` is always false; only a time limit, if one is set,
truncates). Staying in state 0 earns r = 1 per step, the myopic choice; the full loop earns
6 every 3 steps, r* = 2, the optimal average reward. A policy that goes with probability
p0 in state 0 and p1 in state 1 has the stationary distribution μ ∝ (1, p0, p0 p1) and the
average reward (:func:`average_reward`)

    r(π) = (1 − p0 + 6 p0 p1) / (1 + p0 + p0 p1).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

STAY, GO = 0, 1
NUM_STATES = 3
STAY_REWARD, LOOP_REWARD = 1.0, 6.0
OPTIMAL_AVERAGE_REWARD = LOOP_REWARD / 3.0  # 2: go, go, then the +6 step


def average_reward(p_go_0: float, p_go_1: float) -> float:
    """Exact average reward r(π) of the policy that goes with these probabilities in states 0 and 1."""
    weights = np.array([1.0, p_go_0, p_go_0 * p_go_1])  # unnormalised stationary distribution
    reward = (1.0 - p_go_0) * STAY_REWARD * weights[0] + LOOP_REWARD * weights[2]
    return float(reward / weights.sum())


class ContinuingChainEnv(gym.Env):
    """The ring above as a gymnasium environment that never terminates."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(NUM_STATES,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.state = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(NUM_STATES, dtype=np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = 0
        return self._obs(), {"state": self.state}

    def step(self, action: int):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action={action!r}; allowed: 0 (stay), 1 (go)")
        if self.state == 2:
            reward, self.state = LOOP_REWARD, 0
        elif int(action) == GO:
            reward, self.state = 0.0, self.state + 1
        else:
            reward, self.state = (STAY_REWARD if self.state == 0 else 0.0), 0
        return self._obs(), reward, False, False, {"state": self.state}

    def render(self) -> str:
        return " ".join("A" if i == self.state else "." for i in range(NUM_STATES))
