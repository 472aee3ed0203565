"""From settings to objects: the envs, the agents' generators, the policy, v̂ and the optimisers.

Called by the composition root (:mod:`reinforce_lab.train`) and by ``rlab-eval``. Nodes with a
``_target_`` (policy, optimizer) are built by Hydra's ``instantiate``; the rest take typed
:mod:`~reinforce_lab.settings`.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import torch
from hydra.utils import instantiate

from .envs import make_vec_env
from .errors import ConfigError
from .policies import Policy, mlp
from .policy_features import init_value_fn
from .settings import AlgoSettings, EnvSettings

# v̂ of a policy without hidden layers of its own (policy=preferences) when algo.value_hidden_sizes is null.
FALLBACK_VALUE_HIDDEN = (64, 64)


def build_envs(env: EnvSettings, num_envs: int) -> gym.vector.VectorEnv:
    """The run's vector env (``env`` group) with ``num_envs`` copies."""
    return make_vec_env(env.id, num_envs, env.max_episode_steps, env.vectorization, **(env.kwargs or {}))


def agent_generators(seeds: list[int]) -> list[torch.Generator]:
    """One torch generator per agent: it initialises that agent's networks, then samples its actions."""
    return [torch.Generator().manual_seed(s) for s in seeds]


def env_seeds(seeds: list[int], envs_per_agent: int) -> list[int]:
    """Seed of every env copy: agent seed ``k``'s copy ``i`` gets ``k·10⁴ + i`` (distinct across agents)."""
    return [k * 10_000 + i for k in seeds for i in range(envs_per_agent)]


def build_policy(policy_cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                 generators: list[torch.Generator] | None = None) -> Policy:
    """The policy (``policy`` group node) for these spaces, one slice per generator (agent)."""
    try:
        return instantiate(policy_cfg, observation_space=observation_space, action_space=action_space,
                           generators=generators or [None], _convert_="all")
    except Exception as exc:  # hydra wraps the ValueError from make_policy
        cause = exc.__cause__ or exc
        if isinstance(cause, ValueError):
            key, _, rest = str(cause).partition("=")
            value, _, allowed = rest.partition("; allowed: ")
            raise ConfigError(key, value, allowed or str(cause)) from None
        raise


def build_value_fn(algo: AlgoSettings, policy: dict[str, Any], observation_space: gym.Space,
                   generators: list[torch.Generator] | None = None) -> torch.nn.Module:
    """v̂(s, w) (S&B §13.4): an MLP with ``algo.value_hidden_sizes`` (null: the policy's hidden sizes)."""
    hidden = algo.value_hidden_sizes
    if hidden is None:
        hidden = policy.get("hidden_sizes") or FALLBACK_VALUE_HIDDEN
    obs_dim = int(torch.tensor(observation_space.shape).prod())
    value_fn = mlp(obs_dim, 1, list(hidden), policy.get("activation") or "tanh", generators or [None],
                   output_bias=bool(algo.value_bias))
    init_value_fn(value_fn, policy.get("init") or "default", generators or [None])
    if algo.value_init is not None:  # e.g. w = 0 as in the book's experiments
        with torch.no_grad():
            for p in value_fn.parameters():
                p.fill_(float(algo.value_init))
    return value_fn


def build_optimizer(optimizer_cfg: Any, lr: float | None = None) -> functools.partial:
    """The ``optimizer`` group node as a partial ``torch.optim`` constructor (lr overridable)."""
    return instantiate(optimizer_cfg, **({"lr": lr} if lr is not None else {}))
