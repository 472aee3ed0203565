"""Short corridor with switched actions: Sutton & Barto (2018), Example 13.1.

Four states in a row, the right-most terminal. Reward −1 on every step. In the first and
third states ``right`` moves right and ``left`` moves left (``left`` in the first state
bumps into the wall and stays); in the second state the actions are *reversed*. The
agent cannot tell the states apart (every observation is the same constant feature), so
the best it can do is a stochastic policy: with π(right) = p the start-state value is
``v(s0) = (2p − 4) / (p (1 − p))``, maximal at ``p = 2 − √2 ≈ 0.586`` where
``v*(s0) ≈ −11.66`` (see :func:`start_value`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import gymnasium as gym
import numpy as np

from .capabilities import PARTIAL_RESET

LEFT, RIGHT = 0, 1
GOAL = 3


def start_value(p_right: float) -> float:
    """Exact ``v_π(s0)`` of the policy that goes right with probability ``p_right`` (γ = 1)."""
    if not 0.0 < p_right < 1.0:
        return -math.inf
    return (2.0 * p_right - 4.0) / (p_right * (1.0 - p_right))


OPTIMAL_P_RIGHT = 2.0 - math.sqrt(2.0)
OPTIMAL_START_VALUE = start_value(OPTIMAL_P_RIGHT)  # ≈ −11.657

# The dynamics as a table, NEXT_STATE[state, action], with the goal absorbing: what the
# whole-episode kernel :func:`walk_to_goal` composes (the envs below step the same rules).
NEXT_STATE = np.array([[0, 1], [2, 0], [1, GOAL], [GOAL, GOAL]], dtype=np.intp)
CHUNK = 16  # actions per table lookup of walk_to_goal


@functools.cache
def _chunk_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(end, hit)``, each ``[4 · 2^CHUNK]``: for start state ``q`` and CHUNK actions packed
    into the bits of ``k`` (the first action in the highest bit, 1 = right), entry ``q · 2^CHUNK + k``
    is the state after them and the step (1…CHUNK) that reaches the goal, 0 if none does.

    Built by doubling: the table of 2n actions is the one of n actions applied twice.
    """
    end = NEXT_STATE.copy()  # [4, 2]: one action
    hit = np.where(end == GOAL, 1, 0) * (np.arange(4) != GOAL)[:, None]
    n = 1
    while n < CHUNK:
        size = 1 << n
        first, second = np.divmod(np.arange(size * size), size)  # the high half acts first
        mid = end[:, first]  # [4, size²]: the state after the first n actions
        later = hit[mid, second]
        hit = np.where(hit[:, first] > 0, hit[:, first], np.where(later > 0, later + n, 0))
        end, n = end[mid, second], 2 * n
    return end.reshape(-1).astype(np.intp), hit.reshape(-1).astype(np.intp)


def walk_to_goal(state: np.ndarray, rights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walk many corridors through their actions at once: ``(first step at the goal, state after)``.

    ``state`` is ``[R]`` start states and ``rights`` ``[R, W]`` booleans (action ``right`` at each
    step, W a multiple of :data:`CHUNK`). Returns, per corridor, the step (1…W) whose action
    reaches the goal (0: not reached) and the state after the W actions (the goal once reached).
    Table lookups of CHUNK actions at a time instead of W numpy steps: the same dynamics as
    :class:`ShortCorridorEnv` (a test walks both), about W/CHUNK times fewer array operations.
    """
    end, hit = _chunk_tables()
    packed = np.packbits(rights, axis=1).astype(np.intp)  # [R, W/8], the first action in the highest bit
    words = (packed[:, 0::2] << 8) | packed[:, 1::2]  # [R, W/16]: CHUNK = 16 actions per word
    q = state.astype(np.intp)
    first = np.zeros(len(q), dtype=np.intp)
    for c in range(words.shape[1]):
        index = (q << CHUNK) | words[:, c]
        h = hit[index]  # 0 after the goal (absorbing), so only the first hit is ever added
        first += np.where(h > 0, h + c * CHUNK, 0)
        q = end[index]
    return first, q


class ShortCorridorEnv(gym.Env):
    """S&B Example 13.1 as a gymnasium environment.

    Args:
        observe_state: when false (the book's setting) every observation is ``[1.0]``, so
            the states are aliased; when true the observation is the one-hot state, which
            makes the task trivially solvable by a state-dependent policy.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, observe_state: bool = False, render_mode: str | None = None) -> None:
        self.observe_state = bool(observe_state)
        dim = 3 if self.observe_state else 1
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.state = 0

    def _obs(self) -> np.ndarray:
        if not self.observe_state:
            return np.ones(1, dtype=np.float32)
        obs = np.zeros(3, dtype=np.float32)
        obs[min(self.state, 2)] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = 0
        return self._obs(), {"state": self.state}

    def step(self, action: int):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action={action!r}; allowed: 0 (left), 1 (right)")
        move = 1 if int(action) == RIGHT else -1
        if self.state == 1:
            move = -move  # the second state reverses the actions
        self.state = max(0, self.state + move)
        terminated = self.state == GOAL
        return self._obs(), -1.0, terminated, False, {"state": self.state}

    def render(self) -> str:
        cells = ["A" if i == self.state else "." for i in range(3)] + ["G"]
        return " ".join(cells)


class ShortCorridorVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` short corridors stepped together in numpy (same dynamics as :class:`ShortCorridorEnv`).

    Auto-resets in the same step (``AutoresetMode.SAME_STEP``): the step that ends an
    episode returns the next episode's first observation and the final one in
    ``info["final_obs"]``. Episodes are truncated after ``max_episode_steps``. Its copies
    reset one by one (``reset_mask``), which it declares in ``metadata`` (see
    :mod:`reinforce_lab.envs.capabilities`); it takes one seed, as the dynamics are deterministic.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, PARTIAL_RESET: True}

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = 1000, observe_state: bool = False,
                 render_mode: str | None = None) -> None:
        self.num_envs = int(num_envs)
        self.observe_state = bool(observe_state)
        self.max_episode_steps = max_episode_steps
        dim = 3 if self.observe_state else 1
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.state = np.zeros(self.num_envs, dtype=np.int64)
        self.steps = np.zeros(self.num_envs, dtype=np.int64)

    def _obs(self, state: np.ndarray) -> np.ndarray:
        if not self.observe_state:
            return np.ones((len(state), 1), dtype=np.float32)
        obs = np.zeros((len(state), 3), dtype=np.float32)
        obs[np.arange(len(state)), np.minimum(state, 2)] = 1.0
        return obs

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if not isinstance(seed, list) else seed[0])
        # ``reset_mask`` (as in gymnasium's vector envs): reset only these copies.
        mask = (options or {}).get("reset_mask")
        which = slice(None) if mask is None else np.asarray(mask, dtype=bool)
        self.state[which] = 0
        self.steps[which] = 0
        return self._obs(self.state), {}

    def step(self, actions):
        actions = np.asarray(actions)
        move = np.where(actions == RIGHT, 1, -1)
        move = np.where(self.state == 1, -move, move)  # the second state reverses the actions
        self.state = np.maximum(0, self.state + move)
        self.steps += 1
        terminated = self.state == GOAL
        truncated = ~terminated & (self.steps >= self.max_episode_steps) if self.max_episode_steps else \
            np.zeros(self.num_envs, dtype=bool)
        rewards = np.full(self.num_envs, -1.0)
        obs = self._obs(self.state)
        info: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            final = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(done):
                final[i] = obs[i].copy()
            info["final_obs"], info["_final_obs"] = final, done.copy()
            self.state[done] = 0
            self.steps[done] = 0
            obs[done] = self._obs(self.state[done])
        return obs, rewards, terminated, truncated, info
