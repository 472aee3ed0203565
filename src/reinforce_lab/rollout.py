"""Collect whole episodes from a vector env with the current policy.

Each update of REINFORCE needs complete episodes sampled from the *current* policy
(S&B §13.3: the return G_t is only known once the episode ends). The collector resets
the vector env, gives every copy a fixed quota of episodes (so the batch is not biased
towards short episodes, which would happen if we simply kept the first ``n`` episodes to
finish), steps all copies together with one batched policy call per step, and lays the
result out as padded ``[S, E, T]`` tensors: S agents (``train.num_seeds``) × E episodes
× T steps. Agent ``s`` owns env copies ``s·N … s·N+N−1``.

One stepping core serves both ways of sharing the envs between agents. Each agent runs *rounds*
(one batch each), started with the env seeds of ``(copy seed, round)`` and fresh random numbers.

- **Lockstep** (default): every active agent starts its round at each call; it returns when all are complete.
- **Agents that do not wait for each other** (``asynchronous=True``, ``num_seeds > 1``): an agent
  starts its next round right after its own update; ``collect`` returns once ``ready_fraction``
  of the agents in flight are complete (a slow agent no longer holds the others back). Episodes
  still depend only on the agent's seed, round and generator; it needs copies that reset one by
  one (:func:`reinforce_lab.envs.supports_partial_reset`).

Both gymnasium 1.x auto-reset modes are handled exactly: ``SAME_STEP`` (final observation in
``info["final_obs"]``) and ``NEXT_STEP`` (native vector envs: the reset step belongs to no episode).
Steps of copies past their quota are simulated but not kept (``simulated_steps`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from .envs import seeds_each_copy, supports_partial_reset
from .episode_batch import BatchLayout, EpisodeBatch, Step, empty_step
from .episode_groups import group_order, group_quota, group_seeds, regroup
from .policies import Policy
from .streams import AgentStreams

__all__ = ["EpisodeBatch", "EpisodeCollector", "supports_partial_reset"]


@dataclass
class Flight:
    """The rounds in progress: every step since the oldest of them started.

    Attributes:
        obs: ``[n, ...]`` the observation each copy acts on next.
        start: per copy, the step (counted from the first ever) where its agent's round started.
        done: per copy, episodes of the round finished so far.
        resetting: per copy, ``NEXT_STEP`` mode: its next step only resets it.
        gen_states: each agent's generator state at the start of its round in flight.
        waiting: agents whose batch the last call returned (they start their next round).
        t0: the step ``steps[0]`` is.
        steps: the recorded steps still needed by some agent.
        final: ``(copy, k)`` → the last observation of the copy's k-th episode of the round.
    """

    obs: np.ndarray
    start: np.ndarray
    done: np.ndarray
    resetting: np.ndarray
    gen_states: list[Tensor]
    waiting: np.ndarray
    t0: int = 0
    steps: list[Step] = field(default_factory=list)
    final: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


class EpisodeCollector:
    """Steps a vector env until every copy has finished its quota of episodes.

    Args:
        envs: a vector env (see :mod:`reinforce_lab.envs`), ``num_seeds × N`` copies.
        episodes_per_update: episodes per agent per batch, spread evenly over its N copies.
        seeds: the base seed of every env copy; batch ``r`` resets copy ``i`` with a seed
            derived from ``(seeds[i], r)``, so an agent's env randomness never depends on how
            long other agents of the batch kept the envs stepping. None leaves them unseeded.
        num_seeds: S, the number of agents.
        generators: one torch generator per agent for its action sampling (None: global RNG).
        device: where the policy lives; observations are moved there once per step.
        asynchronous: agents do not wait for each other (see the module docstring); needs a
            vector env that declares partial resets (:func:`supports_partial_reset`).
        ready_fraction: asynchronous only: ``collect`` returns once at least this fraction of
            the agents in flight have a complete batch (at least one agent).
        group_size: k > 1: copies reset in groups of k with one seed; group g fills slots
            ``[g·k, (g+1)·k)`` (:mod:`reinforce_lab.episode_groups`).
    """

    def __init__(self, envs: VectorEnv, episodes_per_update: int, seeds: Sequence[int] | int | None = None,
                 num_seeds: int = 1, generators: Sequence[torch.Generator] | None = None,
                 device: torch.device | str = "cpu", asynchronous: bool = False,
                 ready_fraction: float = 0.5, group_size: int = 1) -> None:
        self.envs = envs
        self.num_seeds = int(num_seeds)
        if envs.num_envs % self.num_seeds:
            raise ValueError(f"{envs.num_envs} env copies do not split over {num_seeds} agents")
        self.envs_per_agent = envs.num_envs // self.num_seeds
        self.episodes_per_update = int(episodes_per_update)
        self.group_size = int(group_size)
        self.quota = group_quota(self.episodes_per_update, self.envs_per_agent, self.num_seeds, self.group_size)
        self.active = np.ones(self.num_seeds, dtype=bool)  # agents still training
        self.generators = list(generators) if generators is not None else None
        self.streams = AgentStreams(self.generators) if self.generators is not None else None
        self.device = torch.device(device)
        self.dtype = torch.float32  # the policy's parameter dtype (float64 with precision=64-true)
        if isinstance(seeds, int):
            seeds = [seeds + i for i in range(envs.num_envs)]
        self._seeds = list(seeds) if seeds is not None else None
        self.rounds = 0  # lockstep rounds so far (part of the env seeds; saved in checkpoints)
        self.simulated_steps: int | None = 0  # env steps of every copy, kept or not (None: unknown, old checkpoint)
        self.discrete = not np.issubdtype(envs.single_action_space.dtype, np.floating)
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f"autoreset_mode={mode}; allowed: SAME_STEP, NEXT_STEP")
        self.next_step_reset = mode == AutoresetMode.NEXT_STEP
        self.per_copy_seeds = seeds_each_copy(envs)
        if self.group_size > 1:  # (a native vector env's copies share one RNG: refused there)
            self._seeds = group_seeds(self._seeds, self.envs_per_agent, self.group_size, envs)
        self.asynchronous = bool(asynchronous)
        if self.asynchronous and not supports_partial_reset(envs):
            raise ValueError(f"asynchronous agents need env copies that reset one by one; "
                             f"{type(envs).__name__} cannot (allowed: sync, async vectorization)")
        self.ready_fraction = float(ready_fraction)
        self.layout = BatchLayout(self.num_seeds, self.envs_per_agent, self.episodes_per_update,
                                  gap=2 if self.next_step_reset else 1, discrete=self.discrete)
        # Each agent's round counter (rounds completed); the generator states at the start
        # of each agent's round in flight are in the flight (what a checkpoint must keep).
        self.agent_rounds = np.zeros(self.num_seeds, dtype=np.int64)
        self.ready = np.ones(self.num_seeds, dtype=bool)  # agents whose batch the last collect returned
        self._flight: Flight | None = None

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
            return [st.clone() for st in self._flight.gen_states]
        return [g.get_state() for g in self.generators or []]

    def restart(self) -> None:
        """Forget episodes in flight: the next ``collect`` starts every agent's current round anew."""
        self._flight = None

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the collector (plain lists, ints and tensors).

        With asynchronous agents this is every agent as of the start of its round in
        flight: after :meth:`load_state_dict` those episodes are run again, identically.
        """
        return {"rounds": int(self.rounds), "agent_rounds": self.agent_rounds.tolist(), "active": self.active.tolist(),
                "generator_states": self.generator_states(), "simulated_steps": self.simulated_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s ``state``; the next ``collect`` restarts every current round.

        Missing keys (checkpoints of older versions) keep the defaults: round 0, every
        agent's round = ``rounds``, the active flags and generators as they are.
        """
        self.rounds, self.simulated_steps = int(state.get("rounds", 0)), state.get("simulated_steps")
        self.agent_rounds[:] = np.asarray(state.get("agent_rounds", self.rounds), dtype=np.int64)
        self.restart()
        if "active" in state:
            self.active[:] = np.asarray(state["active"], dtype=bool)
        for g, g_state in zip(self.generators or [], state.get("generator_states", [])):
            g.set_state(g_state)

    def collect(self, policy: Policy) -> EpisodeBatch:
        """Run the current policy until enough agents have a complete batch; no gradient is built.

        Returns every agent's slot; the agents whose batch it holds are ``self.ready`` (in
        lockstep: every active agent), the others' slots are empty.
        """
        if not self.asynchronous:  # every agent starts its round now
            self._flight = self._launch(self._round_seeds(np.full(self.num_seeds, self.rounds)))
            self.rounds += 1
            self.agent_rounds[self.active] = self.rounds
        elif self._flight is None:  # first call, or after a resume: every agent (re)starts its current round
            self._flight = self._launch(self._round_seeds(self.agent_rounds))
        else:  # agents returned by the last call have been updated since: they start their next round
            self._relaunch(self._flight, self._flight.waiting & self.active)
        fl = self._flight
        quota = self.quota * np.repeat(self.active, self.envs_per_agent)
        in_flight, complete = self._step(policy, fl, quota, self.ready_fraction if self.asynchronous else 1.0)
        batch = self._hand_over(fl, in_flight, complete)
        if policy.obs_norm is not None:  # final states in the policy's inputs too (for v̂ bootstraps)
            batch.final_obs = policy.observe(batch.final_obs.to(self.dtype)).float()
        if self.asynchronous:
            self.agent_rounds[complete] += 1
        else:
            self._flight = None  # nothing stays in flight between lockstep calls
        return batch

    def _launch(self, seeds: list[int | None] | int | None) -> Flight:
        """Reset every copy: every agent starts a round."""
        obs, _ = self.envs.reset(seed=seeds)
        if self.streams is not None:
            self.streams.new_round()
        n = self.envs.num_envs
        return Flight(obs, start=np.zeros(n, dtype=np.int64), done=np.zeros(n, dtype=np.int64),
                      resetting=np.zeros(n, dtype=bool), gen_states=[g.get_state() for g in self.generators or []],
                      waiting=np.zeros(self.num_seeds, dtype=bool))

    def _relaunch(self, fl: Flight, starting: np.ndarray) -> None:
        """Reset only the copies of ``starting`` agents, which start their next round."""
        if starting.any():
            copies = np.repeat(starting, self.envs_per_agent)
            obs, _ = self.envs.reset(seed=self._round_seeds(self.agent_rounds, starting),
                                     options={"reset_mask": copies})
            if self.streams is not None:
                self.streams.new_round(starting)
            fl.obs[copies] = obs[copies]
            fl.start[copies] = fl.t0 + len(fl.steps)
            fl.done[copies] = 0  # (gen_states of these agents were taken when their batch completed)
            fl.resetting[copies] = False
        fl.waiting[:] = False

    def _step(self, policy: Policy, fl: Flight, quota: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """The stepping core: act, step, record, count ended episodes until enough agents are complete.

        Returns the agents in flight at the start and those that completed their batch.
        """
        s_count, per = self.num_seeds, self.envs_per_agent
        in_flight = (fl.done < quota).reshape(s_count, per).any(-1)
        complete = np.zeros(s_count, dtype=bool)
        need = max(1, int(np.ceil(fraction * in_flight.sum())))
        obs = fl.obs
        if self.streams is not None:  # agents with nothing left to do in this round draw nothing
            self.streams.busy = in_flight.copy()
        while in_flight.any() and complete.sum() < need:
            action, seen = self._act(policy, obs, in_flight & self.active)
            next_obs, reward, term, trunc, info = self.envs.step(policy.env_action(action))
            if self.simulated_steps is not None:
                self.simulated_steps += len(action)
            done = np.logical_or(term, trunc) & ~fl.resetting
            ended = done & (fl.done < quota)  # an episode that counts ended at this step
            fl.steps.append((seen, action, reward, term, ended))
            if ended.any():
                for i in np.flatnonzero(ended):
                    fl.final[(i, int(fl.done[i]))] = next_obs[i] if self.next_step_reset else info["final_obs"][i]
                fl.done += ended
                now_busy = (fl.done < quota).reshape(s_count, per).any(-1)
                complete |= in_flight & ~now_busy
                if self.streams is not None:
                    self.streams.busy = now_busy
            if self.next_step_reset:
                fl.resetting = done
            obs = next_obs
        fl.obs = obs
        return in_flight, complete

    def _act(self, policy: Policy, obs: np.ndarray, learn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batched policy call for every copy: ``[n, ...]`` actions and the observations it saw.

        With ``policy.obs_norm`` the agents in ``learn`` add ``obs`` to their statistics first,
        and the batch keeps the normalised observations (what the loss must see).
        """
        obs_t = torch.as_tensor(obs, dtype=self.dtype, device=self.device).reshape(self.num_seeds, -1, obs.shape[-1])
        if policy.obs_norm is not None:
            obs_t = policy.observe(obs_t, torch.as_tensor(learn))
            obs = obs_t.reshape(obs.shape).cpu().numpy()
        action = policy.act(obs_t, generators=self.streams).cpu().numpy()
        action = action.reshape(self.envs.num_envs, *action.shape[2:])
        return (action if self.discrete else action.astype(np.float32)), obs

    def _hand_over(self, fl: Flight, in_flight: np.ndarray, complete: np.ndarray) -> EpisodeBatch:
        """The complete agents' batches; then forget what no agent in flight needs any more."""
        per = self.envs_per_agent
        self.ready = complete
        # This agent's batch is complete: no draws until its next round, so its generator's
        # state now is where that round starts (what a checkpoint taken before then keeps).
        for a in np.flatnonzero(complete) if self.generators else []:
            fl.gen_states[a] = self.generators[a].get_state()
        fl.waiting = complete.copy()
        first = int(fl.start[np.repeat(complete, per)].min()) - fl.t0 if complete.any() else len(fl.steps)
        window = fl.steps[first:] or [empty_step(self.envs, self.discrete)]  # empty: nothing collected (no agent in flight)
        batch = self.layout.assemble(window, fl.final, starts=fl.start - fl.t0 - first, include=complete)
        if self.group_size > 1:  # the same spans as assemble's, to put each group in consecutive slots
            spans = self.layout.spans(np.stack([s[4] for s in window]), fl.start - fl.t0 - first, complete)
            batch = regroup(batch, group_order(spans, per, self.group_size, self.episodes_per_update))
        for key in [k for k in fl.final if complete[k[0] // per]]:
            del fl.final[key]
        still = np.repeat(~complete & in_flight, per)
        keep_from = int(fl.start[still].min()) - fl.t0 if still.any() else len(fl.steps)
        del fl.steps[:keep_from]
        fl.t0 += keep_from
        return batch
