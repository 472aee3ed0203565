"""Environment construction: one function builds the vector env every run uses.

Episode boundaries must be exact: gymnasium 1.x vector envs auto-reset on the *next* step
by default (that step returns the reset observation with reward 0 and ignores the
action), which silently glues two episodes together if one is not careful. We use
``AutoresetMode.SAME_STEP``: the step that ends an episode returns the first observation
of the next one, and the true final observation is in ``info["final_obs"]``. Every
transition therefore belongs to exactly one episode. envpool's envs (``vectorization=envpool``,
optional) auto-reset on the next step; :mod:`.envpool_env` presents them in the same-step form.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from .capabilities import PARTIAL_RESET, PER_COPY_SEEDS, declare, seeds_each_copy, supports_partial_reset
from .continuing_chain import ContinuingChainEnv
from .short_corridor import OPTIMAL_START_VALUE, ShortCorridorEnv, ShortCorridorVectorEnv, start_value

SHORT_CORRIDOR_ID = "ShortCorridor-v0"

if SHORT_CORRIDOR_ID not in gym.registry:
    gym.register(id=SHORT_CORRIDOR_ID, entry_point=ShortCorridorEnv, vector_entry_point=ShortCorridorVectorEnv,
                 max_episode_steps=1000)

CONTINUING_CHAIN_ID = "ContinuingChain-v0"  # never terminates: no time limit unless one is asked for

if CONTINUING_CHAIN_ID not in gym.registry:
    gym.register(id=CONTINUING_CHAIN_ID, entry_point=ContinuingChainEnv)


def make_env(env_id: str, max_episode_steps: int | None = None, render_mode: str | None = None,
             **kwargs: Any) -> gym.Env:
    """One wrapped environment: flat float observations, clipped continuous actions.

    ``ClipAction`` clips what the *environment* receives; the policy's log-probability is
    taken of the unclipped action it sampled (see :class:`reinforce_lab.policies.GaussianPolicy`).
    """
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)  # e.g. Discrete states → one-hot
    if isinstance(env.action_space, gym.spaces.Box):
        env = ClipToBounds(env)
    return env


class ClipToBounds(gym.ActionWrapper):
    """Clip actions to the env's bounds, as gymnasium's ``ClipAction``, but keep the bounded space.

    ``ClipAction`` reports an unbounded space; keeping the bounds lets ``policy.bound=tanh``
    (:mod:`reinforce_lab.action_bounds`) scale its squashed actions to them.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        # Read once: each `self.env.action_space` walks the wrapper chain, and np.clip's own
        # checks cost twice maximum∘minimum on these tiny arrays (the same values; a NaN stays NaN).
        self._low, self._high = env.action_space.low, env.action_space.high

    def action(self, action: Any) -> Any:
        return np.minimum(np.maximum(action, self._low), self._high)


VECTORIZATIONS = ("auto", "sync", "async", "native", "envpool")


def make_vec_env(env_id: str, num_envs: int, max_episode_steps: int | None = None,
                 vectorization: str = "auto", **kwargs: Any) -> VectorEnv:
    """``num_envs`` copies of :func:`make_env` stepped together.

    Args:
        env_id: a registered gymnasium id.
        num_envs: number of copies stepped together.
        max_episode_steps: time limit (None: the registered default).
        vectorization: ``native`` (the env's own numpy vector env, e.g. CartPole's: no
            per-copy Python loop), ``sync`` (copies in one process), ``async``
            (subprocesses, for expensive envs), or ``auto`` (native when the env has one
            and needs no per-copy wrapper, else sync), or ``envpool`` (envpool's C++ vector
            env, for the tasks of :data:`.envpool_env.TASKS`; the ``envpool`` extra).
        **kwargs: passed to ``gym.make`` (to envpool with ``envpool``).

    Native vector envs may auto-reset on the next step (CartPole's do); the collector
    handles both modes exactly (see :mod:`reinforce_lab.rollout`). The sync/async envs
    built here declare that their copies reset one by one and take one seed each
    (:mod:`reinforce_lab.envs.capabilities`); a native one declares what it can do itself.
    """
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"env.vectorization={vectorization!r}; allowed: {', '.join(VECTORIZATIONS)}")
    if vectorization == "envpool":
        return _envpool(env_id, num_envs, max_episode_steps, **kwargs)
    spec = gym.spec(env_id)
    if vectorization in ("auto", "native") and spec.vector_entry_point is not None:
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    if vectorization == "native":
        raise ValueError(f"env.vectorization=native but {env_id} has no native vector env; allowed: auto, sync, async")
    fns: list[Callable[[], gym.Env]] = [
        lambda: make_env(env_id, max_episode_steps=max_episode_steps, **kwargs) for _ in range(num_envs)
    ]
    if vectorization in ("sync", "auto"):
        return declare(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), partial_reset=True,
                       per_copy_seeds=True)
    if vectorization == "async":
        return declare(AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), partial_reset=True,
                       per_copy_seeds=True)
    raise ValueError(f"env.vectorization={vectorization!r}; allowed: sync, async")


def _envpool(env_id: str, num_envs: int, max_episode_steps: int | None, **kwargs: Any) -> VectorEnv:
    """envpool's copies of ``env_id`` (:mod:`.envpool_env`); one line when envpool is not installed."""
    from ..extras import install_hint

    try:
        import envpool  # noqa: F401 - the optional dependency itself
    except ImportError as exc:
        raise ValueError(f"env.vectorization=envpool needs the envpool extra ({exc.name} not installed): "
                         f"{install_hint('envpool')}") from None
    from .envpool_env import EnvpoolVectorEnv

    return EnvpoolVectorEnv(env_id, num_envs, max_episode_steps, **kwargs)


__all__ = ["VECTORIZATIONS", "make_env", "make_vec_env", "ShortCorridorEnv", "ShortCorridorVectorEnv", "SHORT_CORRIDOR_ID",
           "ContinuingChainEnv", "CONTINUING_CHAIN_ID", "start_value",
           "OPTIMAL_START_VALUE", "PARTIAL_RESET", "PER_COPY_SEEDS", "declare", "seeds_each_copy",
           "supports_partial_reset"]
