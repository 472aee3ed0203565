"""The loops of part (g), each one call = 32 steps of all N copies (``mujoco_throughput.py`` times them).

A loop returns ``(env steps, kept steps)`` for the call. *Env steps* count every ``step`` of every
copy; *kept steps* count only the transitions a learner can use. They differ on raw envpool alone:
it auto-resets on the *next* step, so the step after an episode's end is a reset step (its action
is ignored, it pays 0) and no transition. Every other loop here runs a same-step auto-resetting
env (gymnasium's ``SyncVectorEnv`` as ``make_vec_env`` builds it, or our envpool adapter), where
every step is a transition, and both counts are equal.

gymnasium's SyncVectorEnv (``vectorization="sync"``, what ``auto`` picks for MuJoCo):

* ``raw``: random actions (``envs.action_space.sample()``) every step.
* ``bare``: + :class:`BareGaussian` acting every step, transitions appended to lists.
* ``collector``: ``HorizonCollector`` + ``make_policy`` as ``experiment=mujoco_reinforce`` builds them.

envpool (``envpool.make_gymnasium``, with the threads our adapter gives it):

* ``envpool_raw``: the raw pool, random actions from its action space batched over the copies.
* ``envpool_adapter``: ``make_vec_env(..., "envpool")``, our same-step adapter, random actions.
* ``envpool_bare``: the raw pool + :class:`BareGaussian`, transitions appended to lists.
* ``envpool_collector``: ``HorizonCollector`` over the adapter, as ``env.vectorization=envpool`` runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium.vector.utils import batch_space
from torch import nn

from reinforce_lab.envs import make_vec_env
from reinforce_lab.horizon_rollout import HorizonCollector
from reinforce_lab.policies import make_policy

STEPS_PER_CALL = 32  # steps of every copy per call of a loop (the collector's horizon / N)
Loop = Callable[[], tuple[int, int]]  # one call: (env steps, kept steps), each summed over the copies
OBS_CLIP, LOG_STD, NORM_EPS = 10.0, -0.5, 1e-8  # the preset's policy.obs_clip, policy.log_std_init; rlab's ε
# What (ii) does per step, recorded with the results (earlier results of (g) have none: their (ii) had no
# observation normalisation and no tanh squash).
BARE_POLICY = ("running obs normalisation (clip ±10), 64-64 tanh MLP, mean + σ·randn, tanh squash to the bounds; "
               "transitions appended to lists")


class BareGaussian:
    """The per-step work of the preset's policy, written as a user would in plain PyTorch + numpy.

    Per step: merge the N observations into a running mean/variance (float64 numpy, Chan's
    batch formula, as gymnasium's ``NormalizeObservation``), standardise and clip to ±10, one
    forward of an obs_dim-64-64-act_dim tanh MLP under ``torch.no_grad``, ``mean + σ·randn``
    (σ = e^−0.5, state-independent), and the tanh squash onto the action bounds
    (``low + (tanh u + 1)·(high − low)/2``). Initialised as the preset (orthogonal, gain √2,
    last layer 0.01) so the actions, hence InvertedPendulum's episode lengths and resets, are
    distributed as the collector's. Not here: per-agent random streams, the batch layout into
    ``[agents, segments, T]`` tensors, the bookkeeping of returns and final observations.
    """

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray) -> None:
        self.net = nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                 nn.Linear(64, act_dim))
        layers = [m for m in self.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for k, layer in enumerate(layers):
                nn.init.orthogonal_(layer.weight, gain=0.01 if k == len(layers) - 1 else math.sqrt(2))
                layer.bias.zero_()
        self.std = torch.full((act_dim,), LOG_STD).exp()
        self.centre = ((high + low) / 2).astype(np.float32)
        self.half = ((high - low) / 2).astype(np.float32)
        self.mean, self.var, self.count = np.zeros(obs_dim), np.ones(obs_dim), 0.0

    def _normalise(self, obs: np.ndarray) -> np.ndarray:
        """Merge ``obs`` into the running statistics, then standardise and clip it."""
        obs = np.asarray(obs, np.float64)
        n, b_mean, b_var = obs.shape[0], obs.mean(0), obs.var(0)
        total, delta = self.count + n, b_mean - self.mean
        self.var = (self.var * self.count + b_var * n + delta ** 2 * self.count * n / total) / total
        self.mean, self.count = self.mean + delta * n / total, total
        return np.clip((obs - self.mean) / np.sqrt(self.var + NORM_EPS), -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the normalised observations, the Gaussian samples u, the env actions)."""
        seen = self._normalise(obs)
        with torch.no_grad():
            mean = self.net(torch.from_numpy(seen))
            u = (mean + self.std * torch.randn_like(mean)).numpy()
        return seen, u, self.centre + self.half * np.tanh(u)


def _bare_steps(step: Callable[[np.ndarray], tuple[Any, ...]], policy: BareGaussian, state: dict[str, Any],
                n: int, next_step_reset: bool) -> tuple[int, int]:
    """32 steps of the bare policy on ``step``, transitions in lists; with ``next_step_reset`` (raw
    envpool) the steps after an episode's end are counted as env steps but not kept."""
    obs_l, u_l, rew_l, done_l = [], [], [], []
    obs, after_end, kept = state["obs"], state["after_end"], 0
    for _ in range(STEPS_PER_CALL):
        seen, u, action = policy(obs)
        obs, r, term, trunc, _ = step(action)
        obs_l.append(seen)
        u_l.append(u)
        rew_l.append(r)
        done_l.append(term | trunc)
        kept += n - int(after_end.sum())
        after_end = done_l[-1] if next_step_reset else after_end
    state["obs"], state["after_end"] = obs, after_end
    return STEPS_PER_CALL * n, kept


# --------------------------------------------------------------------------- gymnasium SyncVectorEnv
def raw_loop(env_id: str, n: int, vectorization: str = "sync") -> Loop:
    """(i) the sync vector env, random actions drawn from its action space every step; with
    ``vectorization="envpool"``, (i'') our envpool adapter: what its same-step resets cost."""
    envs = make_vec_env(env_id, n, vectorization=vectorization)
    envs.reset(seed=0)
    envs.action_space.seed(0)

    def raw() -> tuple[int, int]:
        for _ in range(STEPS_PER_CALL):
            envs.step(envs.action_space.sample())
        return STEPS_PER_CALL * n, STEPS_PER_CALL * n

    return raw


def bare_loop(env_id: str, n: int) -> Loop:
    """(ii) the sync vector env + the bare policy (same-step resets: every step is kept)."""
    envs = make_vec_env(env_id, n, vectorization="sync")
    space = envs.single_action_space
    policy = BareGaussian(envs.single_observation_space.shape[0], space.shape[0], space.low, space.high)
    state = {"obs": envs.reset(seed=0)[0], "after_end": np.zeros(n, bool)}
    return lambda: _bare_steps(envs.step, policy, state, n, next_step_reset=False)


def collector_loop(env_id: str, n: int, vectorization: str = "sync") -> Loop:
    """(iii) reinforce-lab's HorizonCollector and the preset's policy; every step it takes is in the batch."""
    envs = make_vec_env(env_id, n, vectorization=vectorization)
    policy = make_policy(envs.single_observation_space, envs.single_action_space, hidden_sizes=[64, 64],
                         generators=[torch.Generator().manual_seed(0)], bound="tanh", init="orthogonal",
                         obs_norm=True, obs_clip=OBS_CLIP, log_std_init=LOG_STD)
    horizon = n * STEPS_PER_CALL
    collector = HorizonCollector(envs, horizon=horizon, seeds=list(range(n)), num_seeds=1,
                                 generators=[torch.Generator().manual_seed(0)])

    def collect() -> tuple[int, int]:
        batch = collector.collect(policy)
        kept = int(batch.mask.sum())
        assert kept == horizon, f"{env_id} ({vectorization}): the collector kept {kept} of {horizon} env steps"
        return kept, kept

    return collect


# --------------------------------------------------------------------------- envpool
def envpool_missing() -> str | None:
    """Why the envpool loops cannot run here (one line), or None."""
    try:
        import envpool  # noqa: F401 - the optional dependency itself
    except ImportError as exc:
        return f"envpool not importable ({exc}); `pip install 'reinforce-lab[envpool]'` (Python 3.11)"
    return None


def _pool(env_id: str, n: int) -> Any:
    """A raw envpool of ``env_id``, made as our adapter makes its pool (same task id, threads, seeds)."""
    import envpool

    from reinforce_lab.envs.envpool_env import TASKS

    threads = min(n, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    return envpool.make_gymnasium(TASKS[env_id], num_envs=n, num_threads=threads, seed=0)


def envpool_raw_loop(env_id: str, n: int) -> Loop:
    """(i') the raw pool, random actions; its reset steps (next-step auto-reset) are not kept."""
    pool = _pool(env_id, n)
    pool.reset()
    space = batch_space(pool.action_space, n)
    space.seed(0)
    after_end = np.zeros(n, bool)

    def raw() -> tuple[int, int]:
        nonlocal after_end
        kept = 0
        for _ in range(STEPS_PER_CALL):
            _, _, term, trunc, _ = pool.step(space.sample())
            kept += n - int(after_end.sum())
            after_end = term | trunc
        return STEPS_PER_CALL * n, kept

    return raw


def envpool_adapter_loop(env_id: str, n: int) -> Loop:
    """(i'') our adapter ``make_vec_env(..., "envpool")``, random actions (see :func:`raw_loop`)."""
    return raw_loop(env_id, n, vectorization="envpool")


def envpool_bare_loop(env_id: str, n: int) -> Loop:
    """(ii') the raw pool + the bare policy; its reset steps are not kept."""
    pool = _pool(env_id, n)
    space = pool.action_space
    policy = BareGaussian(pool.observation_space.shape[0], space.shape[0], space.low, space.high)
    state = {"obs": pool.reset()[0], "after_end": np.zeros(n, bool)}
    return lambda: _bare_steps(pool.step, policy, state, n, next_step_reset=True)


def envpool_collector_loop(env_id: str, n: int) -> Loop:
    """(iii') the HorizonCollector over our envpool adapter."""
    return collector_loop(env_id, n, vectorization="envpool")


SYNC_LOOPS: dict[str, Callable[[str, int], Loop]] = {"raw": raw_loop, "bare": bare_loop, "collector": collector_loop}
ENVPOOL_LOOPS: dict[str, Callable[[str, int], Loop]] = {
    "envpool_raw": envpool_raw_loop, "envpool_adapter": envpool_adapter_loop, "envpool_bare": envpool_bare_loop,
    "envpool_collector": envpool_collector_loop}
