"""Collect whole episodes from a vector env with the current policy.

Each update of REINFORCE needs complete episodes sampled from the *current* policy
(S&B §13.3: the return G_t is only known once the episode ends). The collector resets
the vector env, gives every copy a fixed quota of episodes (so the batch is not biased
towards short episodes, which would happen if we simply kept the first ``n`` episodes to
finish), steps all copies together with one batched policy call per step, and lays the
result out as padded ``[S, E, T]`` tensors: S agents (``train.num_seeds``) × E episodes
× T steps. Agent ``s`` owns env copies ``s·N … s·N+N−1``.

**Agents that do not wait for each other** (``asynchronous=True``, for ``num_seeds > 1``).
In lockstep every agent's batch ends when the slowest agent's does, so one agent whose
episodes grow long (a short-corridor policy drifting to π(right) ≈ 0 runs into the
1000-step cap every episode) holds the whole batch back. Asynchronously, each agent has
its own rounds: ``collect`` steps until at least half of the agents still in flight
have completed their batch and returns those agents' batches only; the others keep their
episodes running across calls, and an agent starts its next batch right after its own
update. Each agent's episodes still depend only on its own seed, round number and
generator, so an agent is what a separate run would give (bit for bit with per-copy
seeded or deterministic envs). It needs env copies that can be reset one by one
(``reset_mask``) and, in the module, updates that leave the other agents untouched.

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
from .streams import AgentStreams


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
        asynchronous: agents do not wait for each other (see the module docstring); needs a
            vector env with ``reset_mask`` (:func:`supports_partial_reset`).
        ready_fraction: asynchronous only: ``collect`` returns once at least this fraction of
            the agents in flight have a complete batch (at least one agent).
    """

    def __init__(self, envs: VectorEnv, episodes_per_update: int, seeds: Sequence[int] | int | None = None,
                 num_seeds: int = 1, generators: Sequence[torch.Generator] | None = None,
                 device: torch.device | str = "cpu", asynchronous: bool = False,
                 ready_fraction: float = 0.5) -> None:
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
        self.streams = AgentStreams(self.generators) if self.generators is not None else None
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
        self.asynchronous = bool(asynchronous)
        if self.asynchronous and not supports_partial_reset(envs):
            raise ValueError(f"asynchronous agents need env copies that reset one by one; "
                             f"{type(envs).__name__} cannot (allowed: sync, async vectorization)")
        self.ready_fraction = float(ready_fraction)
        # Agents that do not wait: each has its own round counter (rounds completed) and the
        # generator state at the start of its round in flight (what a checkpoint must keep).
        self.agent_rounds = np.zeros(self.num_seeds, dtype=np.int64)
        self.ready = np.ones(self.num_seeds, dtype=bool)  # agents whose batch the last collect returned
        self._flight: dict | None = None

    def _round_seeds(self, rounds: Sequence[int], agents: np.ndarray | None = None) -> list[int | None] | int | None:
        """Env seeds of every copy for its agent's round (None for copies outside ``agents``)."""
        if self._seeds is None:
            return None
        per_copy = np.repeat(np.asarray(rounds), self.envs_per_agent)
        which = np.repeat(agents, self.envs_per_agent) if agents is not None else np.ones(len(per_copy), bool)
        seeds = [int(np.random.SeedSequence([k, int(r)]).generate_state(1)[0]) if w else None
                 for k, r, w in zip(self._seeds, per_copy, which)]
        if not self.per_copy_seeds:
            # A native numpy vector env has one RNG for all copies and takes one seed: its
            # agents are independent in distribution, not bit for bit like separate runs.
            return next((x for x in seeds if x is not None), None)
        return seeds

    def generator_states(self) -> list[Tensor]:
        """Each agent's RNG state at the start of its current round (for checkpoints)."""
        if self._flight is not None:
            return [st.clone() for st in self._flight["gen_states"]]
        return [g.get_state() for g in self.generators or []]

    def restart(self) -> None:
        """Forget episodes in flight: the next ``collect`` starts every agent's current round anew."""
        self._flight = None

    def collect(self, policy: Policy) -> EpisodeBatch:
        """Run the current policy until the batch is complete; no gradient is built."""
        if self.asynchronous:
            return self._collect_async(policy)
        obs, _ = self.envs.reset(seed=self._round_seeds(np.full(self.num_seeds, self.rounds)))
        if self.streams is not None:
            self.streams.new_round()
        self.rounds += 1
        self.agent_rounds[self.active] = self.rounds
        self.ready = self.active.copy()
        n, s_count = self.envs.num_envs, self.num_seeds
        quota = self.quota * np.repeat(self.active, self.envs_per_agent)
        done_count = np.zeros(n, dtype=np.int64)
        resetting = np.zeros(n, dtype=bool)  # NEXT_STEP mode: this step only resets the copy
        obs_l, act_l, rew_l, term_l, ended_l = [], [], [], [], []
        final_obs: dict[tuple[int, int], np.ndarray] = {}
        if self.streams is not None:  # agents with nothing left to do draw nothing
            self.streams.busy = (done_count < quota).reshape(s_count, -1).any(-1)
        while (done_count < quota).any():
            action = self._act(policy, obs)
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
                if self.streams is not None:
                    self.streams.busy = (done_count < quota).reshape(s_count, -1).any(-1)
            if self.next_step_reset:
                resetting = done
            obs = next_obs
        return self._assemble(obs_l, act_l, rew_l, term_l, ended_l, final_obs)

    def _act(self, policy: Policy, obs: np.ndarray) -> np.ndarray:
        """One batched policy call for every env copy (``[n, ...]`` actions for ``envs.step``)."""
        obs_t = torch.as_tensor(obs, dtype=self.dtype, device=self.device).reshape(self.num_seeds, -1, obs.shape[-1])
        action = policy.act(obs_t, generators=self.streams).cpu().numpy()
        action = action.reshape(self.envs.num_envs, *action.shape[2:])
        return action if self.discrete else action.astype(np.float32)

    def _collect_async(self, policy: Policy) -> EpisodeBatch:
        """Step until enough agents have a complete batch; return theirs (``self.ready``)."""
        n, s_count, per = self.envs.num_envs, self.num_seeds, self.envs_per_agent
        fl = self._flight
        if fl is None:  # first call, or after a resume: every agent (re)starts its current round
            obs, _ = self.envs.reset(seed=self._round_seeds(self.agent_rounds))
            if self.streams is not None:
                self.streams.new_round()
            fl = self._flight = {"obs": obs, "t0": 0, "steps": [], "start": np.zeros(n, dtype=np.int64),
                                 "done": np.zeros(n, dtype=np.int64), "final": {},
                                 "gen_states": [g.get_state() for g in self.generators or []],
                                 "waiting": np.zeros(s_count, dtype=bool)}
        else:
            # Agents returned by the last call have been updated since: they start their next round.
            starting = fl["waiting"] & self.active
            if starting.any():
                copies = np.repeat(starting, per)
                obs, _ = self.envs.reset(seed=self._round_seeds(self.agent_rounds, starting),
                                         options={"reset_mask": copies})
                if self.streams is not None:
                    self.streams.new_round(starting)
                fl["obs"][copies] = obs[copies]
                fl["start"][copies] = fl["t0"] + len(fl["steps"])
                fl["done"][copies] = 0  # (gen_states of these agents were taken when their batch completed)
            fl["waiting"][:] = False
        quota = self.quota * np.repeat(self.active, per)
        done_count, steps, final_obs = fl["done"], fl["steps"], fl["final"]
        in_flight = (done_count < quota).reshape(s_count, per).any(-1)
        complete = np.zeros(s_count, dtype=bool)
        need = max(1, int(np.ceil(self.ready_fraction * in_flight.sum())))
        obs = fl["obs"]
        if self.streams is not None:  # agents with nothing left to do in this round draw nothing
            self.streams.busy = in_flight.copy()
        while in_flight.any() and complete.sum() < need:
            action = self._act(policy, obs)
            next_obs, reward, term, trunc, info = self.envs.step(action)
            active = done_count < quota
            ended = np.logical_or(term, trunc) & active
            steps.append((obs, action, reward, term, ended))
            if ended.any():
                for i in np.flatnonzero(ended):
                    final_obs[(i, int(done_count[i]))] = info["final_obs"][i]
                done_count += ended
                now_busy = (done_count < quota).reshape(s_count, per).any(-1)
                complete |= in_flight & ~now_busy
                if self.streams is not None:
                    self.streams.busy = now_busy
            obs = next_obs
        fl["obs"] = obs
        self.ready = complete
        # This agent's batch is complete: no draws until its next round, so its generator's
        # state now is where that round starts (what a checkpoint taken before then keeps).
        for a in np.flatnonzero(complete):
            if self.generators:
                fl["gen_states"][a] = self.generators[a].get_state()
        self.agent_rounds[complete] += 1
        fl["waiting"] = complete.copy()
        first = int(fl["start"][np.repeat(complete, per)].min()) - fl["t0"] if complete.any() else len(steps)
        window = steps[first:]
        starts = fl["start"] - fl["t0"] - first
        batch = self._assemble([w[0] for w in window], [w[1] for w in window], [w[2] for w in window],
                               [w[3] for w in window], [w[4] for w in window], final_obs,
                               starts=starts, include=complete)
        for key in [k for k in final_obs if complete[k[0] // per]]:
            del final_obs[key]
        # Drop the steps no agent in flight needs any more.
        still = np.repeat(~complete & in_flight, per)
        keep_from = int(fl["start"][still].min()) - fl["t0"] if still.any() else len(steps)
        del steps[:keep_from]
        fl["t0"] += keep_from
        return batch

    def _assemble(self, obs_l, act_l, rew_l, term_l, ended_l, final_obs, starts: np.ndarray | None = None,
                  include: np.ndarray | None = None) -> EpisodeBatch:
        if not obs_l:  # nothing collected (no agent in flight)
            obs_l, act_l = [np.zeros((self.envs.num_envs,) + self.envs.single_observation_space.shape, np.float32)], [
                np.zeros((self.envs.num_envs,) + self.envs.single_action_space.shape,
                         np.int64 if self.discrete else np.float32)]
            rew_l, term_l, ended_l = [np.zeros(self.envs.num_envs)], [np.zeros(self.envs.num_envs, bool)], [
                np.zeros(self.envs.num_envs, bool)]
        obs = np.stack(obs_l)  # [steps, n, obs_dim]
        actions = np.stack(act_l)  # [steps, n] or [steps, n, act_dim]
        rewards = np.stack(rew_l).astype(np.float64)  # [steps, n]; float64 so episode returns are exact
        term = np.stack(term_l)
        ended = np.stack(ended_l)
        per_agent: list[list[tuple[int, int, int, int]]] = [[] for _ in range(self.num_seeds)]
        gap = 2 if self.next_step_reset else 1  # NEXT_STEP: skip the reset step after an end
        for i in range(self.envs.num_envs):  # (finish step, env, start, end) with end inclusive
            if include is not None and not include[i // self.envs_per_agent]:
                continue
            start = 0 if starts is None else max(0, int(starts[i]))
            for end in np.flatnonzero(ended[start:, i]) + start:
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


def supports_partial_reset(envs: VectorEnv) -> bool:
    """Whether asynchronous agents can use these envs: ``envs.reset(options={"reset_mask": m})``
    resets only the copies in ``m``, and episodes end with a same-step auto-reset."""
    from .envs.short_corridor import ShortCorridorVectorEnv

    same_step = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) == AutoresetMode.SAME_STEP
    return same_step and isinstance(envs, (SyncVectorEnv, AsyncVectorEnv, ShortCorridorVectorEnv))
