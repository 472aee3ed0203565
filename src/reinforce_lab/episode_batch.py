"""Whole episodes laid out as padded ``[S, E, T]`` tensors, and how steps become episodes.

REINFORCE needs complete episodes (S&B §13.3: the return G_t is only known once the
episode ends). The collector (:mod:`reinforce_lab.rollout`) records one row per vector-env
step; :meth:`BatchLayout.assemble` cuts every copy's column into its episodes and packs
each agent's episodes, in the order they finished, into one :class:`EpisodeBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

# One vector-env step as the collector records it: (obs S_t, action A_t, reward R_{t+1},
# terminated, ended), each with one row per env copy; ``ended`` marks the steps that end
# an episode counted in the agent's quota.
Step = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class EpisodeBatch:
    """``E`` complete episodes per agent, padded to the longest (``T`` steps).

    Attributes:
        obs: ``[S, E, T, obs_dim]`` states S_t.
        actions: ``[S, E, T]`` (discrete) or ``[S, E, T, act_dim]`` (continuous) actions A_t,
            exactly as sampled (before any clipping to the action bounds).
        rewards: ``[S, E, T]`` rewards R_{t+1} (float64 as the env returns them; cast for the update).
        mask: ``[S, E, T]`` 1.0 on real steps, 0.0 on padding (and on the whole of an empty
            episode slot of an agent that has stopped training).
        final_obs: ``[S, E, obs_dim]`` the state after the last step (for bootstrapping).
        terminated: ``[S, E]`` true when the episode ended in a terminal state (not a time limit).
        lengths: ``[S, E]`` episode lengths, in the order the agent's episodes finished.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    final_obs: Tensor
    terminated: Tensor
    lengths: Tensor

    @property
    def num_episodes(self) -> int:
        """E, episode slots per agent."""
        return int(self.lengths.shape[-1])

    @property
    def num_steps(self) -> int:
        """Transitions in the batch, all agents together."""
        return int(self.lengths.sum())

    @property
    def episode_returns(self) -> Tensor:
        """``[S, E]`` undiscounted return of each episode (what ``episodes.csv`` reports)."""
        return (self.rewards * self.mask).sum(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "EpisodeBatch":
        """Move to ``device``; cast floating tensors to ``dtype`` (e.g. float64) when given."""
        def move(t: Tensor) -> Tensor:
            return t.to(device, dtype) if dtype is not None and t.is_floating_point() else t.to(device)

        return EpisodeBatch(*(move(getattr(self, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class BatchLayout:
    """How env copies map to agents and episode slots.

    Args:
        num_seeds: S, agents; agent ``s`` owns copies ``s·N … s·N+N−1``.
        envs_per_agent: N, copies per agent.
        episodes_per_update: E, episode slots per agent.
        gap: steps from an episode's last step to the next one's first: 1, or 2 when the
            env auto-resets on the next step (that reset step belongs to no episode).
        discrete: actions are integers (else float32).
    """

    num_seeds: int
    envs_per_agent: int
    episodes_per_update: int
    gap: int
    discrete: bool

    def spans(self, ended: np.ndarray, starts: np.ndarray, include: np.ndarray) -> list[list[tuple[int, int, int]]]:
        """Per agent in ``include``: its episodes as ``(copy, first step, last step)``, in finishing order.

        ``ended`` is ``[steps, n]``; copy ``i``'s first episode starts at step ``starts[i]``
        (negative: before the window, i.e. at 0).
        """
        per_agent: list[list[tuple[int, int, int, int]]] = [[] for _ in range(self.num_seeds)]
        for i in range(ended.shape[1]):  # (finish step, env, start, end) with end inclusive
            if not include[i // self.envs_per_agent]:
                continue
            start = max(0, int(starts[i]))
            for end in np.flatnonzero(ended[start:, i]) + start:
                per_agent[i // self.envs_per_agent].append((int(end), i, start, int(end)))
                start = int(end) + self.gap
        # Sorting by (finish step, copy) keeps the order in which the agent's episodes ended.
        return [[(i, start, end) for _, i, start, end in sorted(episodes)] for episodes in per_agent]

    def assemble(self, steps: Sequence[Step], final_obs: dict[tuple[int, int], np.ndarray], starts: np.ndarray,
                 include: np.ndarray) -> EpisodeBatch:
        """Pack the episodes of the agents in ``include`` (``final_obs[(copy, k)]``: copy's k-th) into a batch."""
        obs = np.stack([s[0] for s in steps])  # [steps, n, obs_dim]
        actions = np.stack([s[1] for s in steps])  # [steps, n] or [steps, n, act_dim]
        rewards = np.stack([s[2] for s in steps]).astype(np.float64)  # float64 so episode returns are exact
        term = np.stack([s[3] for s in steps])
        per_agent = self.spans(np.stack([s[4] for s in steps]), starts, include)
        s_count, e_count = self.num_seeds, self.episodes_per_update
        t_max = max((end - start + 1 for eps in per_agent for _, start, end in eps), default=1)
        obs_b = np.zeros((s_count, e_count, t_max) + obs.shape[2:], dtype=np.float32)
        act_b = np.zeros((s_count, e_count, t_max) + actions.shape[2:], dtype=actions.dtype)
        rew_b = np.zeros((s_count, e_count, t_max), dtype=np.float64)
        mask_b = np.zeros((s_count, e_count, t_max), dtype=np.float32)
        fin_b = np.zeros((s_count, e_count) + obs.shape[2:], dtype=np.float32)
        term_b = np.zeros((s_count, e_count), dtype=bool)
        len_b = np.zeros((s_count, e_count), dtype=np.int64)
        k_of_env = np.zeros(obs.shape[1], dtype=np.int64)
        for a, episodes in enumerate(per_agent):
            for e, (i, start, end) in enumerate(episodes):
                n_steps = end - start + 1
                obs_b[a, e, :n_steps] = obs[start:end + 1, i]
                act_b[a, e, :n_steps] = actions[start:end + 1, i]
                rew_b[a, e, :n_steps] = rewards[start:end + 1, i]
                mask_b[a, e, :n_steps] = 1.0
                fin_b[a, e] = final_obs[(i, int(k_of_env[i]))]
                term_b[a, e] = term[end, i]
                len_b[a, e] = n_steps
                k_of_env[i] += 1
        act_t = torch.from_numpy(act_b).long() if self.discrete else torch.from_numpy(act_b.astype(np.float32))
        return EpisodeBatch(torch.from_numpy(obs_b), act_t, torch.from_numpy(rew_b), torch.from_numpy(mask_b),
                            torch.from_numpy(fin_b), torch.from_numpy(term_b), torch.from_numpy(len_b))


def empty_step(envs: Any, discrete: bool) -> Step:
    """One all-zero step of ``envs`` in which no episode ends (a batch with nothing collected)."""
    n = envs.num_envs
    return (np.zeros((n,) + envs.single_observation_space.shape, np.float32),
            np.zeros((n,) + envs.single_action_space.shape, np.int64 if discrete else np.float32),
            np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))
