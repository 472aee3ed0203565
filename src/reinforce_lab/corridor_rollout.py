"""Whole short-corridor episodes at numpy speed, for a policy that ignores the state.

On the short corridor (S&B Example 13.1) with the book's state-independent preferences
(``policy=preferences``), π(·|θ) is the same at every step of a batch: the actions are i.i.d.
draws and the corridor is deterministic, so an episode is decided by the agent's random
numbers alone. :class:`CorridorCollector` is an :class:`~reinforce_lab.rollout.EpisodeCollector`
whose lockstep ``collect`` uses that: per agent it draws the same blocks of uniforms from the
same generator as :class:`~reinforce_lab.streams.AgentStreams` (only the blocks the generic loop
would draw), turns them into actions with the inverse CDF of
:meth:`CategoricalPolicy.act <reinforce_lab.policies.CategoricalPolicy.act>` (π computed once
per batch instead of once per step), walks all corridors 16 steps per table lookup
(:func:`~reinforce_lab.envs.short_corridor.walk_to_goal`) and lays the batch out directly.

The batch, the generators' states and the collector's counters are bit for bit those of the
generic collector (``tests/test_fast_book_rule.py`` compares them), so runs and checkpoints do
not depend on which one ran; ``simulated_steps`` counts what the generic loop would step (every
copy until the batch's longest episode ends), though no env is stepped here. Anything else —
asynchronous agents, several env copies or episodes per agent per batch, ``observe_state``, a
policy that reads the state, observation normalisation, no per-agent generators — goes to the
generic collector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .envs.short_corridor import CHUNK, RIGHT, ShortCorridorVectorEnv, walk_to_goal
from .episode_batch import EpisodeBatch
from .policies import Policy, PreferencePolicy
from .rollout import EpisodeCollector


def collector_class(envs: Any) -> type[EpisodeCollector]:
    """The collector for ``envs``: :class:`CorridorCollector` on the short corridor, else the generic one."""
    return CorridorCollector if isinstance(envs, ShortCorridorVectorEnv) else EpisodeCollector


class CorridorCollector(EpisodeCollector):
    """:class:`EpisodeCollector` with a fast lockstep path for state-independent policies on the corridor.

    Same arguments as :class:`EpisodeCollector`; ``envs`` must be a
    :class:`~reinforce_lab.envs.short_corridor.ShortCorridorVectorEnv`.
    """

    def __init__(self, envs: ShortCorridorVectorEnv, *args: Any, **kwargs: Any) -> None:
        super().__init__(envs, *args, **kwargs)
        self.fast = True  # False: always the generic loop (tests compare the two)
        self._obs: tuple[tuple[torch.dtype, torch.device], torch.Tensor] | None = None  # [S, 1, obs_dim] ones

    def fits(self, policy: Policy) -> bool:
        """Whether :meth:`collect` can take the fast path for ``policy`` now."""
        return (self.fast and isinstance(policy, PreferencePolicy) and policy.obs_norm is None
                and not self.asynchronous and self.generators is not None and self.streams is not None
                and self.envs_per_agent == 1 and self.episodes_per_update == 1 and self.group_size == 1
                and self.generators[0].device.type == "cpu" and self.streams.block % CHUNK == 0
                and not self.envs.observe_state and policy.theta.shape[-1] == 2)

    def collect(self, policy: Policy) -> EpisodeBatch:
        """One episode per active agent, as :meth:`EpisodeCollector.collect` in lockstep returns it."""
        if not self.fits(policy):
            return super().collect(policy)
        # The generic lockstep call's bookkeeping: a new round for every agent, nothing left in flight.
        self._flight = None
        self.rounds += 1
        self.agent_rounds[self.active] = self.rounds
        self.streams.new_round()  # (its buffers would be dropped at the next round's first draw anyway)
        p_left = self._p_left(policy)
        lengths, terminated, rights = self._episodes(p_left, self.active.copy())
        if self.simulated_steps is not None:  # what the generic loop counts: every copy, until the longest ends
            self.simulated_steps += self.envs.num_envs * int(lengths.max(initial=0))
        self.ready = self.active.copy()
        return self._layout(lengths, terminated, rights)

    @torch.no_grad()
    def _p_left(self, policy: Policy) -> np.ndarray:
        """``[S]`` π(left|θ) exactly as ``act`` computes its inverse CDF (same call, same shape)."""
        key = (self.dtype, self.device)
        if self._obs is None or self._obs[0] != key:  # the aliased observation [1.0] of every agent
            self._obs = key, torch.ones(self.num_seeds, 1, self.envs.single_observation_space.shape[0],
                                        dtype=self.dtype, device=self.device)
        return torch.softmax(policy.logits(self._obs[1]), dim=-1)[:, 0, 0].cpu().numpy()

    def _draw(self, agents: np.ndarray, dtype: torch.dtype) -> np.ndarray:
        """``[len(agents), block]``: each agent's next block of uniforms, as its stream would refill it
        (``torch.rand(block)`` from the agent's generator, in π's dtype: ``uniform_`` on a row is that call)."""
        out = torch.empty(len(agents), self.streams.block, dtype=dtype)
        gens = self.generators
        for row, a in zip(out.unbind(0), agents.tolist()):
            row.uniform_(generator=gens[a])
        return out.numpy()

    def _episodes(self, p_left: np.ndarray, running: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lengths, terminated, rights)`` of one episode per agent in ``running``, block by block.

        An agent draws block k only if its episode lasts beyond step 64k — exactly when the
        generic loop would ask its stream for number 64k.
        """
        s_count, block, dtype = self.num_seeds, self.streams.block, torch.from_numpy(p_left).dtype
        cap = self.envs.max_episode_steps or np.iinfo(np.int64).max
        lengths = np.zeros(s_count, dtype=np.int64)
        terminated = np.zeros(s_count, dtype=bool)
        state = np.zeros(s_count, dtype=np.intp)
        blocks: list[tuple[np.ndarray, np.ndarray]] = []
        agents, k = np.flatnonzero(running), 0
        while len(agents):
            # act's inverse CDF (searchsorted): right iff u > π(left), the CDF's first entry
            rights = self._draw(agents, dtype) > p_left[agents, None]
            blocks.append((agents, rights))
            first, state[agents] = walk_to_goal(state[agents], rights)
            steps = k * block + first
            goal = (first > 0) & (steps <= cap)
            lengths[agents[goal]], terminated[agents[goal]] = steps[goal], True
            capped = ~goal & ((k + 1) * block >= cap)  # time limit: truncated at exactly cap steps
            lengths[agents[capped]] = cap
            agents, k = agents[~goal & ~capped], k + 1
        rights = np.zeros((s_count, max(1, int(lengths.max(initial=1)))), dtype=bool)
        for k, (agents, r) in enumerate(blocks):
            part = r[:, : rights.shape[1] - k * block]
            rights[agents, k * block:k * block + part.shape[1]] = part
        return lengths, terminated, rights

    def _layout(self, lengths: np.ndarray, terminated: np.ndarray, rights: np.ndarray) -> EpisodeBatch:
        """The ``[S, 1, T]`` batch :class:`~reinforce_lab.episode_batch.BatchLayout` would assemble."""
        s_count, t_max = rights.shape
        real = np.arange(t_max) < lengths[:, None]  # [S, T]
        mask = real.astype(np.float32).reshape(s_count, 1, t_max)
        obs = mask.reshape(s_count, 1, t_max, 1).copy()  # the aliased observation [1.0]; 0 on padding
        actions = np.where(real & rights, RIGHT, 0).astype(np.int64).reshape(s_count, 1, t_max)
        rewards = np.where(real, -1.0, 0.0).reshape(s_count, 1, t_max)
        final_obs = (lengths > 0).astype(np.float32).reshape(s_count, 1, 1)
        return EpisodeBatch(torch.from_numpy(obs), torch.from_numpy(actions), torch.from_numpy(rewards),
                            torch.from_numpy(mask), torch.from_numpy(final_obs),
                            torch.from_numpy(terminated.reshape(s_count, 1)),
                            torch.from_numpy(lengths.reshape(s_count, 1)))
