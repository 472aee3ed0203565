"""Collect whole episodes from a vector env with the current policy.

Each update of REINFORCE needs complete episodes sampled from the *current* policy
(S&B §13.3: the return G_t is only known once the episode ends). The collector resets
the vector env, gives every copy a fixed quota of episodes (so the batch is not biased
towards short episodes, which would happen if we simply kept the first ``n`` episodes to
finish), steps all copies together with one batched policy call per step, and lays the
result out as padded ``[S, E, T]`` tensors: S agents (``train.num_seeds``) × E episodes
× T steps. Agent ``s`` owns env copies ``s·N … s·N+N−1``.

Both gymnasium 1.x auto-reset modes are handled exactly. ``SAME_STEP`` (our wrapped sync
envs): the step that ends an episode returns the next episode's first observation, the
final one is in ``info["final_obs"]``. ``NEXT_STEP`` (gymnasium's native numpy vector envs,
e.g. CartPole's): the step *after* the end is a reset step (reward 0, action ignored) that
belongs to no episode and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from torch import Tensor

from .policies import Policy


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


class EpisodeCollector:
    """Steps a vector env until every copy has finished its quota of episodes.

    Args:
        envs: a vector env built with ``AutoresetMode.SAME_STEP`` (see :mod:`reinforce_lab.envs`),
            ``num_seeds × N`` copies.
        episodes_per_update: episodes per agent per batch, spread evenly over its N copies.
        seeds: the base seed of every env copy; batch ``r`` resets copy ``i`` with a seed
            derived from ``(seeds[i], r)``, so an agent's env randomness never depends on how
            long other agents of the batch kept the envs stepping. None leaves them unseeded.
        num_seeds: S, the number of agents.
        generators: one torch generator per agent for its action sampling (None: global RNG).
        device: where the policy lives; observations are moved there once per step.
    """

    def __init__(self, envs: VectorEnv, episodes_per_update: int, seeds: Sequence[int] | int | None = None,
                 num_seeds: int = 1, generators: Sequence[torch.Generator] | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.envs = envs
        self.num_seeds = int(num_seeds)
        if envs.num_envs % self.num_seeds:
            raise ValueError(f"{envs.num_envs} env copies do not split over {num_seeds} agents")
        self.envs_per_agent = envs.num_envs // self.num_seeds
        self.episodes_per_update = int(episodes_per_update)
        base, extra = divmod(self.episodes_per_update, self.envs_per_agent)
        self.quota = np.array([base + (i < extra) for i in range(self.envs_per_agent)] * self.num_seeds)
        self.active = np.ones(self.num_seeds, dtype=bool)  # agents still training
        self.generators = list(generators) if generators is not None else None
        self.device = torch.device(device)
        self.dtype = torch.float32  # the policy's parameter dtype (float64 with precision=64-true)
        if isinstance(seeds, int):
            seeds = [seeds + i for i in range(envs.num_envs)]
        self._seeds = list(seeds) if seeds is not None else None
        self.rounds = 0  # batches collected so far (part of the env seeds; saved in checkpoints)
        self.discrete = not np.issubdtype(envs.single_action_space.dtype, np.floating)
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f"autoreset_mode={mode}; allowed: SAME_STEP, NEXT_STEP")
        self.next_step_reset = mode == AutoresetMode.NEXT_STEP
        self.per_copy_seeds = isinstance(envs, (SyncVectorEnv, AsyncVectorEnv))

    def collect(self, policy: Policy) -> EpisodeBatch:
        """Run the current policy until the batch is complete; no gradient is built."""
        seeds = None
        if self._seeds is not None:
            seeds = [int(np.random.SeedSequence([k, self.rounds]).generate_state(1)[0]) for k in self._seeds]
            if not self.per_copy_seeds:
                # A native numpy vector env has one RNG for all copies and takes one seed: its
                # agents are independent in distribution, not bit for bit like separate runs.
                seeds = seeds[0]
        obs, _ = self.envs.reset(seed=seeds)
        self.rounds += 1
        n, s_count = self.envs.num_envs, self.num_seeds
        quota = self.quota * np.repeat(self.active, self.envs_per_agent)
        done_count = np.zeros(n, dtype=np.int64)
        resetting = np.zeros(n, dtype=bool)  # NEXT_STEP mode: this step only resets the copy
        obs_l, act_l, rew_l, term_l, ended_l = [], [], [], [], []
        final_obs: dict[tuple[int, int], np.ndarray] = {}
        while (done_count < quota).any():
            obs_t = torch.as_tensor(obs, dtype=self.dtype, device=self.device).reshape(s_count, -1, obs.shape[-1])
            gens = self.generators
            if gens is not None and s_count > 1:  # agents with nothing left to do draw nothing
                busy = (done_count < quota).reshape(s_count, -1).any(-1)
                gens = [g if b else None for g, b in zip(gens, busy)]
            action = policy.act(obs_t, generators=gens).cpu().numpy()
            action = action.reshape(n, *action.shape[2:])
            if not self.discrete:
                action = action.astype(np.float32)
            next_obs, reward, term, trunc, info = self.envs.step(action)
            done = np.logical_or(term, trunc) & ~resetting
            active = done_count < quota
            obs_l.append(obs)
            act_l.append(action)
            rew_l.append(reward)
            term_l.append(term)
            ended = done & active  # an episode that counts ended at this step
            ended_l.append(ended)
            if ended.any():
                for i in np.flatnonzero(ended):
                    final_obs[(i, int(done_count[i]))] = next_obs[i] if self.next_step_reset else info["final_obs"][i]
                done_count += ended
            if self.next_step_reset:
                resetting = done
            obs = next_obs
        return self._assemble(obs_l, act_l, rew_l, term_l, ended_l, final_obs)

    def _assemble(self, obs_l, act_l, rew_l, term_l, ended_l, final_obs) -> EpisodeBatch:
        obs = np.stack(obs_l)  # [steps, n, obs_dim]
        actions = np.stack(act_l)  # [steps, n] or [steps, n, act_dim]
        rewards = np.stack(rew_l).astype(np.float64)  # [steps, n]; float64 so episode returns are exact
        term = np.stack(term_l)
        ended = np.stack(ended_l)
        per_agent: list[list[tuple[int, int, int, int]]] = [[] for _ in range(self.num_seeds)]
        gap = 2 if self.next_step_reset else 1  # NEXT_STEP: skip the reset step after an end
        for i in range(self.envs.num_envs):  # (finish step, env, start, end) with end inclusive
            start = 0
            for end in np.flatnonzero(ended[:, i]):
                per_agent[i // self.envs_per_agent].append((int(end), i, start, int(end)))
                start = int(end) + gap
        for episodes in per_agent:
            episodes.sort()
        s_count, e_count = self.num_seeds, self.episodes_per_update
        t_max = max((end - start + 1 for eps in per_agent for _, _, start, end in eps), default=1)
        obs_b = np.zeros((s_count, e_count, t_max) + obs.shape[2:], dtype=np.float32)
        act_b = np.zeros((s_count, e_count, t_max) + actions.shape[2:], dtype=actions.dtype)
        rew_b = np.zeros((s_count, e_count, t_max), dtype=np.float64)
        mask_b = np.zeros((s_count, e_count, t_max), dtype=np.float32)
        fin_b = np.zeros((s_count, e_count) + obs.shape[2:], dtype=np.float32)
        term_b = np.zeros((s_count, e_count), dtype=bool)
        len_b = np.zeros((s_count, e_count), dtype=np.int64)
        k_of_env = np.zeros(self.envs.num_envs, dtype=np.int64)
        for a, episodes in enumerate(per_agent):
            for e, (_, i, start, end) in enumerate(episodes):
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
