"""Collect whole episodes from a vector env with the current policy.

Each update of REINFORCE needs complete episodes sampled from the *current* policy
(S&B §13.3: the return G_t is only known once the episode ends). The collector resets
the vector env, gives every copy a fixed quota of episodes (so the batch is not biased
towards short episodes, which would happen if we simply kept the first ``n`` episodes to
finish), steps all copies together with one batched policy call per step, and lays the
result out as padded ``[E, T]`` tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import Tensor

from .policies import Policy


@dataclass
class EpisodeBatch:
    """``E`` complete episodes padded to the longest, ``T`` steps.

    Attributes:
        obs: ``[E, T, obs_dim]`` states S_t.
        actions: ``[E, T]`` (discrete) or ``[E, T, act_dim]`` (continuous) actions A_t.
        rewards: ``[E, T]`` rewards R_{t+1} (float64 as the env returns them; cast for the update).
        mask: ``[E, T]`` 1.0 on real steps, 0.0 on padding.
        final_obs: ``[E, obs_dim]`` the state after the last step (for bootstrapping).
        terminated: ``[E]`` true when the episode ended in a terminal state (not a time limit).
        lengths: ``[E]`` episode lengths. ``returns`` below is the undiscounted sum.
        order: ``[E]`` global step index at which each episode finished (episodes are
            sorted by it, so the order is the order in which they completed).
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
        return int(self.lengths.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def episode_returns(self) -> Tensor:
        """``[E]`` undiscounted return of each episode (what ``episodes.csv`` reports)."""
        return (self.rewards * self.mask).sum(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "EpisodeBatch":
        """Move to ``device``; cast floating tensors to ``dtype`` (e.g. float64) when given."""
        def move(t: Tensor) -> Tensor:
            return t.to(device, dtype) if dtype is not None and t.is_floating_point() else t.to(device)

        return EpisodeBatch(*(move(getattr(self, f)) for f in
                              ("obs", "actions", "rewards", "mask", "final_obs", "terminated", "lengths")))


class EpisodeCollector:
    """Steps a vector env until every copy has finished its quota of episodes.

    Args:
        envs: a vector env built with ``AutoresetMode.SAME_STEP`` (see :mod:`reinforce_lab.envs`).
        episodes_per_update: episodes per batch, spread as evenly as possible over the copies.
        seed: seeds the envs' first reset; later resets continue their RNG streams.
        device: where the policy lives; observations are moved there once per step.
    """

    def __init__(self, envs: VectorEnv, episodes_per_update: int, seed: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.envs = envs
        self.num_envs = int(envs.num_envs)
        self.episodes_per_update = int(episodes_per_update)
        base, extra = divmod(self.episodes_per_update, self.num_envs)
        self.quota = np.array([base + (i < extra) for i in range(self.num_envs)])
        self.device = torch.device(device)
        self.dtype = torch.float32  # the policy's parameter dtype (float64 with precision=64-true)
        self._seed = seed
        self.discrete = not np.issubdtype(envs.single_action_space.dtype, np.floating)

    def collect(self, policy: Policy) -> EpisodeBatch:
        """Run the current policy until the batch is complete; no gradient is built."""
        obs, _ = self.envs.reset(seed=self._seed)
        self._seed = None
        n = self.num_envs
        done_count = np.zeros(n, dtype=np.int64)
        obs_l, act_l, rew_l, done_l, term_l, active_l = [], [], [], [], [], []
        final_obs: dict[tuple[int, int], np.ndarray] = {}
        while (done_count < self.quota).any():
            obs_t = torch.as_tensor(obs, dtype=self.dtype, device=self.device)
            action = policy.act(obs_t).cpu().numpy()
            if not self.discrete:
                action = action.astype(np.float32)
            next_obs, reward, term, trunc, info = self.envs.step(action)
            done = np.logical_or(term, trunc)
            active = done_count < self.quota
            obs_l.append(obs)
            act_l.append(action)
            rew_l.append(reward)
            done_l.append(done)
            term_l.append(term)
            active_l.append(active)
            if done.any():
                for i in np.flatnonzero(done & active):
                    final_obs[(i, int(done_count[i]))] = info["final_obs"][i]
                done_count += done & active
            obs = next_obs
        return self._assemble(obs_l, act_l, rew_l, done_l, term_l, active_l, final_obs)

    def _assemble(self, obs_l, act_l, rew_l, done_l, term_l, active_l, final_obs) -> EpisodeBatch:
        obs = np.stack(obs_l)  # [S, N, obs_dim]
        actions = np.stack(act_l)  # [S, N] or [S, N, act_dim]
        rewards = np.stack(rew_l).astype(np.float64)  # [S, N]; float64 so episode returns are exact
        done = np.stack(done_l)
        term = np.stack(term_l)
        active = np.stack(active_l)
        episodes = []  # (finish step, env, start, end) with end inclusive
        for i in range(self.num_envs):
            ends = np.flatnonzero(done[:, i] & active[:, i])
            start = 0
            for end in ends:
                episodes.append((int(end), i, start, int(end)))
                start = int(end) + 1
        episodes.sort()
        e_count = len(episodes)
        lengths = np.array([end - start + 1 for _, _, start, end in episodes], dtype=np.int64)
        t_max = int(lengths.max())
        obs_b = np.zeros((e_count, t_max) + obs.shape[2:], dtype=np.float32)
        act_b = np.zeros((e_count, t_max) + actions.shape[2:], dtype=actions.dtype)
        rew_b = np.zeros((e_count, t_max), dtype=np.float64)
        mask_b = np.zeros((e_count, t_max), dtype=np.float32)
        fin_b = np.zeros((e_count,) + obs.shape[2:], dtype=np.float32)
        term_b = np.zeros(e_count, dtype=bool)
        per_env_k = np.zeros(self.num_envs, dtype=np.int64)
        for e, (_, i, start, end) in enumerate(episodes):
            n_steps = end - start + 1
            obs_b[e, :n_steps] = obs[start:end + 1, i]
            act_b[e, :n_steps] = actions[start:end + 1, i]
            rew_b[e, :n_steps] = rewards[start:end + 1, i]
            mask_b[e, :n_steps] = 1.0
            fin_b[e] = final_obs[(i, int(per_env_k[i]))]
            term_b[e] = term[end, i]
            per_env_k[i] += 1
        act_t = torch.from_numpy(act_b).long() if self.discrete else torch.from_numpy(act_b.astype(np.float32))
        return EpisodeBatch(torch.from_numpy(obs_b), act_t, torch.from_numpy(rew_b),
                            torch.from_numpy(mask_b), torch.from_numpy(fin_b),
                            torch.from_numpy(term_b), torch.from_numpy(lengths))
