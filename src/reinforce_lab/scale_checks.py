"""Checks of the options for locomotion-scale runs: rollouts, bootstraps, schedules, evaluation, policy features,
and the envpool backend (``env.vectorization=envpool``).

Each refusal is one line naming the key, its value and what is allowed
(:class:`~reinforce_lab.errors.ConfigError`), raised before anything is created.
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym

from .action_bounds import BOUNDS
from .advantages import BOOTSTRAPS
from .errors import ConfigError
from .lr_schedules import SCHEDULES
from .objectives import NORMALIZE_BY
from .policy_features import INITS
from .settings import EnvSettings, RunSettings

ROLLOUTS = ("episodes", "horizon")
# Estimators that compare whole episodes of one batch (they need every episode from its start).
WHOLE_EPISODE_ADVANTAGES = ("batch_mean", "rloo", "group_norm", "optimal_constant")


def check_scale_options(s: RunSettings, policy: dict[str, Any]) -> None:
    """Validate ``algo.rollout/horizon/bootstrap/normalize_by``, ``train.lr_schedule/eval_*`` and the policy features."""
    a = s.algo
    if a.rollout not in ROLLOUTS:
        raise ConfigError("algo.rollout", a.rollout, ", ".join(ROLLOUTS))
    if a.bootstrap not in ("auto", *BOOTSTRAPS):
        raise ConfigError("algo.bootstrap", a.bootstrap, ", ".join(("auto", *BOOTSTRAPS)))
    if a.bootstrap == "value" and not a.has_value_fn:
        raise ConfigError("algo.bootstrap", "value", f"auto, none, return_mean with algo.advantage={a.advantage} "
                          "(value bootstraps from a learned v̂: algo=reinforce_baseline or actor_critic)")
    if a.normalize_by not in NORMALIZE_BY:
        raise ConfigError("algo.normalize_by", a.normalize_by, ", ".join(NORMALIZE_BY))
    if a.rollout == "horizon":
        _check_horizon(s)
    elif a.horizon is not None:
        raise ConfigError("algo.horizon", a.horizon, "null with algo.rollout=episodes (set algo.rollout=horizon "
                          "for a fixed number of env steps per update)")
    t = s.train
    if t.lr_schedule not in SCHEDULES:
        raise ConfigError("train.lr_schedule", t.lr_schedule, ", ".join(SCHEDULES))
    if t.lr_schedule != "constant" and t.max_env_steps is None:
        raise ConfigError("train.lr_schedule", t.lr_schedule, "constant without train.max_env_steps (the schedule "
                          "decays over that budget)")
    if t.eval_every_steps is not None:
        _int("train.eval_every_steps", t.eval_every_steps)
    _int("train.eval_episodes", t.eval_episodes)
    _check_policy_features(policy)


def _check_horizon(s: RunSettings) -> None:
    a, n = s.algo, s.env.num_envs
    if isinstance(a.horizon, bool) or not isinstance(a.horizon, int) or a.horizon < n or a.horizon % n:
        raise ConfigError("algo.horizon", a.horizon, f"a multiple of env.num_envs={n} (env steps per agent per "
                          "update, split evenly over the copies) with algo.rollout=horizon")
    why = "with algo.rollout=horizon (segments of episodes"
    if a.gamma_t:
        raise ConfigError("algo.gamma_t", True, f"false {why} do not know their step in the episode)")
    if a.advantage in WHOLE_EPISODE_ADVANTAGES or a.group_size != 1:
        raise ConfigError("algo.advantage", a.advantage, f"return, baseline, td {why} cannot be compared "
                          "episode with episode)")
    if s.loss.name == "update_rule":
        raise ConfigError("loss", "update_rule", "log_prob, cross_entropy with algo.rollout=horizon (the book's rule "
                          "runs over whole episodes)")
    if s.train.async_agents is True:
        raise ConfigError("train.async_agents", True, "auto or false with algo.rollout=horizon (the agents step "
                          "together, every update the same size)")
    if s.env.vectorization == "native":
        raise ConfigError("env.vectorization", "native", "auto, sync, async, envpool with algo.rollout=horizon "
                          "(copies must reset in the same step, so that no step is lost)")


def check_envpool(env: EnvSettings) -> None:
    """``env.vectorization=envpool``: the extra is installed, envpool runs the task, and knows ``env.kwargs``."""
    if env.vectorization != "envpool":
        return
    from .envs.envpool_env import unknown_options, unsupported
    from .extras import ENVPOOL_MODULES, install_hint, missing_modules

    if missing_modules(ENVPOOL_MODULES):
        needs = " (it pins envpool 1.2.5: Python < 3.12)" if sys.version_info >= (3, 12) else ""
        raise ConfigError("env.vectorization", "envpool", f"auto, sync, async, native, or envpool after installing "
                          f"the envpool extra{needs}: {install_hint('envpool')}")
    why = unsupported(str(env.id))
    if why is not None:
        raise ConfigError("env.vectorization", "envpool", why)
    unknown = unknown_options(str(env.id), dict(env.kwargs or {}))
    if unknown is not None:
        key, allowed = unknown
        raise ConfigError(f"env.kwargs.{key}", env.kwargs[key], f"{allowed} with env.vectorization=envpool")


def _check_policy_features(policy: dict[str, Any]) -> None:
    bound, init = policy.get("bound", "clip"), policy.get("init", "default")
    if bound not in BOUNDS:
        raise ConfigError("policy.bound", bound, ", ".join(BOUNDS))
    if init not in INITS:
        raise ConfigError("policy.init", init, ", ".join(INITS))
    if not isinstance(policy.get("obs_norm", False), bool):
        raise ConfigError("policy.obs_norm", policy.get("obs_norm"), "true, false")
    clip = policy.get("obs_clip")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip <= 0):
        raise ConfigError("policy.obs_clip", clip, "a number > 0, or null (no clipping)")


def check_spaces(env_id: str, policy: dict[str, Any]) -> None:
    """Options that need a particular action space (e.g. ``policy=preferences``: Discrete only)."""
    kind, min_prob, state_std = policy.get("kind"), policy.get("min_prob"), policy.get("state_dependent_std")
    tanh = policy.get("bound", "clip") == "tanh"
    if kind != "preferences" and not state_std and not min_prob and not tanh:
        return
    env = gym.make(env_id)
    try:
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
    finally:
        env.close()
    if kind == "preferences" and not discrete:
        raise ConfigError("policy", "preferences", f"mlp for {env_id} (preferences needs Discrete actions, "
                          f"{env_id}'s are continuous)")
    if min_prob and not discrete:
        raise ConfigError("policy.min_prob", min_prob, f"0 for {env_id} (a floor on categorical "
                          "probabilities; its actions are continuous)")
    if tanh and discrete:
        raise ConfigError("policy.bound", "tanh", f"clip for {env_id} (squashing is for continuous actions)")
    if state_std and discrete:
        raise ConfigError("policy.state_dependent_std", True, f"false for {env_id} (a Gaussian option; its "
                          "actions are Discrete)")


def _int(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, value, "an integer ≥ 1")
