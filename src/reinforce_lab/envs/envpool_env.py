"""``env.vectorization=envpool``: envpool's C++ vector envs, presented as a same-step auto-resetting env.

envpool (optional: ``pip install 'reinforce-lab[envpool]'``, ``envpool==1.2.5`` on Python 3.11)
steps all copies of a task in C++ threads. Its gymnasium API auto-resets on the *next* step
(``AutoresetMode.NEXT_STEP``): the step after an episode's end returns the next episode's first
observation with reward 0 and ignores the action. :class:`EnvpoolVectorEnv` turns that into
``AutoresetMode.SAME_STEP``, the mode of our wrapped sync/async envs:

- **Why same-step.** Both collectors handle it (:class:`~reinforce_lab.rollout.EpisodeCollector`
  and :class:`~reinforce_lab.horizon_rollout.HorizonCollector`; the latter refuses next-step
  envs, whose reset steps would leave holes in its fixed-size rollouts), and nothing is spent on
  reset steps: every envpool step is a transition of some episode.
- **How.** After a step, the copies whose episode ended are reset at once with envpool's own
  partial reset (``reset(env_id)``, one extra C++ call for those copies only). Their first
  observation replaces the final one, which goes to ``info["final_obs"]`` (the true last state:
  what time-limit bootstraps need). An explicit reset draws from the copy's RNG exactly as
  envpool's auto-reset would, so every copy's episodes are those of the raw envpool stream with
  its reset steps left out (tested).
- **Time limit.** envpool reports a step that is both terminal and the time limit's as truncated
  only (``terminated = done & ~trunc``); gymnasium's ``TimeLimit`` reports it terminated *and*
  truncated, and a terminal state must not be bootstrapped. So envpool's limit is set one step
  beyond ``max_episode_steps`` (never reached) and the limit is applied here, as ``TimeLimit`` does.
- **Seeds.** envpool seeds each copy's RNG once, when the pool is made (``seed=s`` gives copy i
  the seed ``s + i``; a list gives copy i its own), and ignores ``reset(seed=...)``. A seeded
  reset therefore makes a new pool with one seed per copy (``rlab.per_copy_seeds``; about 2 ms
  for 64 CartPole copies, 0.1–0.2 s for 64 MuJoCo ones), so that a collector's round ``r``
  starts from the seeds of ``(copy seed, r)`` exactly as with sync envs. Seeds are taken modulo
  2³² (envpool wants int32). Copies cannot be reset (and reseeded) one by one without losing the
  others' episodes, so ``rlab.partial_reset`` is false: no asynchronous agents.
- **Which tasks.** Only those whose envpool steps agree with gymnasium's from a common state
  (:data:`TASKS`; docs/envpool.md has the measurements). The initial states come from envpool's
  RNG (the same distributions, not the same draws as a sync env with the same seed).

Observations are float32 (MuJoCo's float64 cast, as the collectors do anyway); continuous actions
are clipped to the bounds as :class:`reinforce_lab.envs.ClipToBounds` does; rewards come from
envpool as float32 and are returned as float64.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .capabilities import PARTIAL_RESET, PER_COPY_SEEDS

# gymnasium id → envpool 1.2.5 task id, for the tasks whose envpool steps were checked to agree
# with gymnasium 1.4's from the same state (MuJoCo: to ~1e-14 per step, rewards to float32).
TASKS = {name: name for name in (
    "CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0",
    "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5", "Reacher-v5")}
# Tasks envpool has under the same id but whose steps differ from gymnasium's (measured).
DIFFERENT = {
    "Ant-v5": "envpool's first step differs from gymnasium's by ~1e-7 in qpos (another MuJoCo build)",
    "Humanoid-v5": "envpool's first step differs from gymnasium's by ~1e-7 in qpos (another MuJoCo build)",
    "HumanoidStandup-v5": "envpool's first step differs from gymnasium's by ~1e-7 in qpos (another MuJoCo build)",
}
# envpool config keys that are ours to set (or envpool's), never a task option of env.kwargs.
RESERVED = ("num_envs", "batch_size", "num_threads", "max_num_players", "thread_affinity_offset", "base_path",
            "seed", "env_seed", "gym_reset_return_info", "max_episode_steps", "reward_threshold")
INT32 = 2 ** 32


def unsupported(env_id: str) -> str | None:
    """Why ``env_id`` cannot run on envpool (one line), or None when it can."""
    if env_id in TASKS:
        return None
    why = DIFFERENT.get(env_id, "envpool runs " + ", ".join(TASKS))
    return f"auto, sync, async for {env_id} ({why})"


def unknown_options(env_id: str, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """The first of ``kwargs`` (``env.kwargs``) that envpool's task does not take, and those it does; or None.

    envpool takes a task's options under gymnasium's names (``reset_noise_scale``...), but not all of them.
    """
    if not kwargs:
        return None
    import envpool

    options = sorted(set(envpool.make_spec(TASKS[env_id]).config._fields) - set(RESERVED))
    unknown = sorted(set(kwargs) - set(options))
    return (unknown[0], ", ".join(options) or "none") if unknown else None


def int32_seed(seed: int) -> int:
    """``seed`` modulo 2³², as the int32 with the same bits (what envpool accepts; distinct seeds stay distinct)."""
    return int(np.array(int(seed) % INT32, dtype=np.uint32).view(np.int32))


class EnvpoolVectorEnv(VectorEnv):
    """``num_envs`` copies of an envpool task that auto-reset in the same step (see the module docstring).

    Args:
        env_id: a gymnasium id of :data:`TASKS`.
        num_envs: copies stepped together.
        max_episode_steps: time limit (None: gymnasium's registered one).
        **kwargs: task options, as for ``gym.make`` (e.g. ``reset_noise_scale``); envpool must know them.
    """

    def __init__(self, env_id: str, num_envs: int, max_episode_steps: int | None = None, **kwargs: Any) -> None:
        import envpool

        why = unsupported(env_id)
        if why is not None:
            raise ValueError(f"env.vectorization=envpool; allowed: {why}")
        self._envpool, self.task, self.num_envs = envpool, TASKS[env_id], int(num_envs)
        self.time_limit = int(max_episode_steps or gym.spec(env_id).max_episode_steps)
        unknown = unknown_options(env_id, kwargs)
        if unknown is not None:
            raise ValueError(f"env.kwargs.{unknown[0]}={kwargs[unknown[0]]}; allowed with env.vectorization=envpool: "
                             f"{unknown[1]}")
        with _quiet():
            spec = envpool.make_spec(self.task, **kwargs)
            obs_space, act = spec.gymnasium_observation_space, spec.gymnasium_action_space
        threads = min(self.num_envs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        # envpool's own limit one step beyond ours: it is never reached (see the module docstring).
        self._options = dict(num_envs=self.num_envs, max_episode_steps=self.time_limit + 1, num_threads=threads,
                             **kwargs)
        self.single_observation_space = _float32(obs_space)
        self.single_action_space = _float32(act) if isinstance(act, gym.spaces.Box) else act
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, PARTIAL_RESET: False, PER_COPY_SEEDS: True}
        self.spec = gym.spec(env_id)
        self.render_mode = None
        self._bounds = (self.single_action_space.low, self.single_action_space.high) \
            if isinstance(self.single_action_space, gym.spaces.Box) else None
        self._pool: Any = None
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; a seed (int: copy i gets ``seed + i``; or one per copy) makes a new pool."""
        if options and options.get("reset_mask") is not None:
            raise ValueError("reset_mask with env.vectorization=envpool; allowed: none (its copies are reseeded "
                             "together, rlab.partial_reset is false)")
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs or any(s is None for s in seeds):
                raise ValueError(f"reset(seed={seed}); allowed: an int, or {self.num_envs} ints (one per copy)")
            self._new_pool([int32_seed(s) for s in seeds])
        elif self._pool is None:
            self._new_pool(None)  # envpool's default seed (42: copy i gets 42 + i)
        obs, _ = self._pool.reset()
        self._elapsed[:] = 0
        return np.asarray(obs, dtype=np.float32), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every copy; a copy whose episode ends is reset in the same step (module docstring)."""
        if self._pool is None:
            raise RuntimeError("step() before reset()")
        actions = np.asarray(actions)
        if self._bounds is not None:
            actions = np.clip(actions, *self._bounds)
        obs, reward, terminated, pool_truncated, _ = self._pool.step(actions)
        if pool_truncated.any():  # cannot happen: envpool's limit is one step beyond ours, and we reset there
            raise RuntimeError(f"envpool truncated copies {np.flatnonzero(pool_truncated).tolist()} before the limit")
        self._elapsed += 1
        obs = np.array(obs, dtype=np.float32)
        terminated = np.array(terminated, dtype=bool)
        truncated = self._elapsed >= self.time_limit
        info: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            info = self._restart(obs, done)
        return obs, np.asarray(reward, dtype=np.float64), terminated, truncated, info

    def _restart(self, obs: np.ndarray, done: np.ndarray) -> dict[str, Any]:
        """Reset the ``done`` copies now: their first observations go into ``obs``, the final ones into info."""
        ids = np.flatnonzero(done)
        final = np.full(self.num_envs, None, dtype=object)
        for i in ids:
            final[i] = obs[i].copy()
        first, first_info = self._pool.reset(env_id=ids.astype(np.int32))
        obs[np.asarray(first_info["env_id"])] = first
        self._elapsed[ids] = 0
        return {"final_obs": final, "_final_obs": done.copy(),
                "final_info": {}, "_final_info": done.copy()}

    def _new_pool(self, seeds: list[int] | None) -> None:
        """A new envpool (its seeds are fixed at creation), replacing the current one."""
        if self._pool is not None:
            self._pool.close()
        extra = {} if seeds is None else {"seed": seeds}
        with _quiet():
            self._pool = self._envpool.make_gymnasium(self.task, **self._options, **extra)

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


@contextmanager
def _quiet() -> Iterator[None]:
    """Without gymnasium's warning that envpool's float64 bounds are cast to float32 (as intended) at every new pool."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        yield


def _float32(space: gym.spaces.Box) -> gym.spaces.Box:
    """The same box with float32 values (envpool's MuJoCo spaces are float64)."""
    return gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32)
