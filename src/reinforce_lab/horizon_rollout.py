"""Fixed-horizon rollouts: N env steps per agent per update, episodes cut where the horizon falls.

``algo.rollout=horizon``: the collector steps its env copies for ``algo.horizon`` env steps per
agent (``horizon / env.num_envs`` steps of every copy) and hands over what happened as
*segments*: pieces of episodes, each laid out in one slot of an
:class:`~reinforce_lab.episode_batch.EpisodeBatch` (``[S, segments, steps]``). The envs are
never reset between updates: the next update continues every episode where this one left it.
This is how PPO, A2C and Tianshou's MuJoCo REINFORCE collect, and the only way to make
updates of a fixed size on tasks whose episodes last 1000 steps.

A segment ends in one of three ways, recorded in the batch as the estimators expect:

- a terminal state: ``terminated`` true, nothing follows (v̂ of a terminal state is 0);
- a time-limit truncation: ``terminated`` false, ``final_obs`` the state it was cut at;
- the horizon: ``terminated`` false, ``final_obs`` the state the next update starts from.

Both non-terminal ends are *bootstrapped* by the advantage estimator (``algo.bootstrap``):
the return of the missing tail is estimated rather than taken as 0 (S&B §3.4 and §13.5: a
time limit is not part of the MDP). Every step simulated is kept: none is thrown away by a
quota, and the copies need no reset between updates (they auto-reset in the same step).

Episodes complete during an update (possibly begun in earlier ones) are reported to the
ledger with their full return and length (:class:`Finished`), so ``episodes.csv`` and
``train/episode_return`` mean the same as with whole-episode rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from .episode_batch import EpisodeBatch
from .policies import Policy
from .streams import AgentStreams

__all__ = ["Finished", "HorizonCollector"]


@dataclass
class Finished:
    """Each agent's episodes that ended during one update (in the order they ended).

    Attributes:
        returns, lengths: per agent, the undiscounted return and length of each episode.
        offsets: per agent, the agent's env steps into the update at each episode's end.
        steps: per agent, env steps simulated in the update (what the ledger counts).
    """

    returns: list[list[float]]
    lengths: list[list[int]]
    offsets: list[list[int]]
    steps: list[int]


class HorizonCollector:
    """Steps every copy ``horizon / N`` times per call and returns the steps as segments.

    Args:
        envs: ``num_seeds × N`` copies that auto-reset in the same step (sync or async).
        horizon: env steps per agent per update; a multiple of N.
        seeds: the base seed of every copy (the envs are reset once, at the start and after a
            resume, with seeds derived from ``(seed, resets so far)``), or None.
        num_seeds: S, agents; agent ``s`` owns copies ``s·N … s·N+N−1``.
        generators: one torch generator per agent for its action sampling.
        device: where the policy lives.
    """

    asynchronous = False  # agents step together: every update has the same number of steps

    def __init__(self, envs: VectorEnv, horizon: int, seeds: Sequence[int] | None = None, num_seeds: int = 1,
                 generators: Sequence[torch.Generator] | None = None, device: torch.device | str = "cpu") -> None:
        if envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.SAME_STEP:
            raise ValueError("algo.rollout=horizon needs env copies that reset in the same step; "
                             "allowed: env.vectorization=sync, async, envpool")
        self.envs, self.num_seeds = envs, int(num_seeds)
        self.envs_per_agent = envs.num_envs // self.num_seeds
        if horizon <= 0 or horizon % self.envs_per_agent:
            raise ValueError(f"algo.horizon={horizon}; allowed: a positive multiple of env.num_envs "
                             f"({self.envs_per_agent})")
        self.horizon, self.steps_per_copy = int(horizon), int(horizon) // self.envs_per_agent
        self._seeds = list(seeds) if seeds is not None else None
        self.generators = list(generators) if generators is not None else None
        self.streams = AgentStreams(self.generators) if self.generators is not None else None
        self.device, self.dtype = torch.device(device), torch.float32
        self.discrete = not np.issubdtype(envs.single_action_space.dtype, np.floating)
        self.active = np.ones(self.num_seeds, dtype=bool)
        self.ready = self.active  # every active agent's batch is complete after each call
        self.resets = 0  # how often the envs were reset (part of their seeds; saved in checkpoints)
        self.rounds = 0  # updates collected
        self.finished: Finished | None = None  # the last call's completed episodes
        self._obs: np.ndarray | None = None  # raw observations the next step acts on
        n = envs.num_envs
        self._ret, self._len = np.zeros(n), np.zeros(n, dtype=np.int64)  # the episodes in progress

    def restart(self) -> None:
        """Drop the episodes in progress: the next ``collect`` resets every copy."""
        self._obs = None

    @property
    def simulated_steps(self) -> int:
        """Env steps of every copy so far; each is kept (copies of stopped agents step too)."""
        return self.rounds * self.envs.num_envs * self.steps_per_copy

    def state_dict(self) -> dict[str, Any]:
        """Counters and generator states. Env states cannot be saved: a resume resets the envs."""
        return {"rounds": self.rounds, "resets": self.resets, "active": self.active.tolist(),
                "generator_states": [g.get_state() for g in self.generators or []]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rounds, self.resets = int(state.get("rounds", 0)), int(state.get("resets", 0))
        if "active" in state:
            self.active[:] = np.asarray(state["active"], dtype=bool)
        for g, g_state in zip(self.generators or [], state.get("generator_states", [])):
            g.set_state(g_state)
        self.restart()

    def _reset(self) -> None:
        seeds = None
        if self._seeds is not None:
            seeds = [int(np.random.SeedSequence([k, self.resets]).generate_state(1)[0]) for k in self._seeds]
        self._obs, _ = self.envs.reset(seed=seeds)
        self.resets += 1
        self._ret[:], self._len[:] = 0.0, 0

    def _observe(self, policy: Policy, obs: np.ndarray, learn: np.ndarray | None) -> torch.Tensor:
        obs_t = torch.as_tensor(obs, dtype=self.dtype, device=self.device).reshape(self.num_seeds, -1, obs.shape[-1])
        return policy.observe(obs_t, None if learn is None else torch.as_tensor(learn))

    def collect(self, policy: Policy) -> EpisodeBatch:
        """Step every copy ``horizon / N`` times with the current policy; no gradient is built."""
        if self._obs is None:
            self._reset()
        if self.streams is not None:
            self.streams.new_round()
            self.streams.busy = self.active.copy()
        n, t_count = self.envs.num_envs, self.steps_per_copy
        obs_shape = self.envs.single_observation_space.shape
        obs_buf = np.zeros((t_count, n, *obs_shape), np.float32)
        act_buf = None
        rew_buf, term_buf, end_buf = np.zeros((t_count, n)), np.zeros((t_count, n), bool), np.zeros((t_count, n), bool)
        finals: dict[tuple[int, int], np.ndarray] = {}
        done_eps: list[tuple[int, int, float, int]] = []  # (step, copy, return, length)
        for t in range(t_count):
            seen = self._observe(policy, self._obs, self.active)
            action = policy.act(seen, generators=self.streams).cpu().numpy().reshape(n, *self.envs.single_action_space.shape)
            if act_buf is None:
                act_buf = np.zeros((t_count, *action.shape), action.dtype if self.discrete else np.float32)
            obs_buf[t], act_buf[t] = seen.reshape(n, *obs_shape).cpu().numpy(), action
            self._obs, reward, term, trunc, info = self.envs.step(policy.env_action(action))
            rew_buf[t], term_buf[t] = reward, term
            end_buf[t] = np.logical_or(term, trunc)
            self._ret += reward
            self._len += 1
            for i in np.flatnonzero(end_buf[t]):
                finals[(t, i)] = info["final_obs"][i]
                done_eps.append((t, int(i), float(self._ret[i]), int(self._len[i])))
                self._ret[i], self._len[i] = 0.0, 0
        self.rounds += 1
        self.finished = self._finished(done_eps)
        last = self._observe(policy, self._obs, None).reshape(n, *obs_shape).cpu().numpy()
        return self._segments(obs_buf, act_buf, rew_buf, term_buf, end_buf, finals, last, policy)

    def _finished(self, done_eps: list[tuple[int, int, float, int]]) -> Finished:
        per = self.envs_per_agent
        out = Finished([[] for _ in range(self.num_seeds)], [[] for _ in range(self.num_seeds)],
                       [[] for _ in range(self.num_seeds)], [self.horizon * int(a) for a in self.active])
        for t, i, ret, length in done_eps:  # already in (step, copy) order
            a = i // per
            if self.active[a]:
                out.returns[a].append(ret)
                out.lengths[a].append(length)
                out.offsets[a].append((t + 1) * per)
        return out

    def _segments(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, term: np.ndarray, end: np.ndarray,
                  finals: dict[tuple[int, int], np.ndarray], last: np.ndarray, policy: Policy) -> EpisodeBatch:
        """Cut every copy's steps at episode ends and lay the pieces out as ``[S, segments, T]``."""
        per, t_count = self.envs_per_agent, obs.shape[0]
        spans: list[list[tuple[int, int, int]]] = [[] for _ in range(self.num_seeds)]  # (copy, first, last)
        for i in range(obs.shape[1]):
            if not self.active[i // per]:
                continue
            start = 0
            for e in list(np.flatnonzero(end[:, i])) + ([t_count - 1] if not end[-1, i] else []):
                spans[i // per].append((i, start, int(e)))
                start = int(e) + 1
        e_count = max(1, max(len(s) for s in spans))
        shape = (self.num_seeds, e_count, t_count)
        obs_b = np.zeros(shape + obs.shape[2:], np.float32)
        act_b = np.zeros(shape + act.shape[2:], act.dtype)
        rew_b, mask_b = np.zeros(shape), np.zeros(shape, np.float32)
        fin_b = np.zeros((self.num_seeds, e_count) + obs.shape[2:], np.float32)
        term_b, len_b = np.zeros(shape[:2], bool), np.zeros(shape[:2], np.int64)
        for a, agent_spans in enumerate(spans):
            for e, (i, first, stop) in enumerate(agent_spans):
                k = stop - first + 1
                obs_b[a, e, :k], act_b[a, e, :k], rew_b[a, e, :k] = obs[first:stop + 1, i], act[first:stop + 1, i], \
                    rew[first:stop + 1, i]
                mask_b[a, e, :k], term_b[a, e], len_b[a, e] = 1.0, term[stop, i], k
                fin_b[a, e] = finals[(stop, i)] if end[stop, i] else last[i]
        final = torch.from_numpy(fin_b)
        if policy.obs_norm is not None:  # info's final observations are raw; the horizon's are normalised
            cut = torch.from_numpy(np.array([[end[s[2], s[0]] for s in sp] + [False] * (e_count - len(sp))
                                             for sp in spans])).unsqueeze(-1)
            final = torch.where(cut, policy.observe(final.to(self.dtype)).float(), final)
        act_t = torch.from_numpy(act_b).long() if self.discrete else torch.from_numpy(act_b)
        return EpisodeBatch(torch.from_numpy(obs_b), act_t, torch.from_numpy(rew_b), torch.from_numpy(mask_b),
                            final, torch.from_numpy(term_b), torch.from_numpy(len_b))
