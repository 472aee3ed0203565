"""From a Hydra config to objects, for the entry points: validation first, then builders.

Only the entry points (train/eval/report) and this module read ``DictConfig``; every
object below them takes typed arguments. Validation runs before anything is created (no
W&B run, no checkpoint), and every problem is one line naming the key, the value and
what is allowed.
"""

from __future__ import annotations

import difflib
from importlib import resources
from typing import Any, Sequence

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from .envs import VECTORIZATIONS
from .errors import ConfigError
from .scale_checks import check_envpool, check_scale_options, check_spaces
from .settings import EnvSettings, RunSettings, TrainSettings, run_settings
from .advantages import ADVANTAGES
from .baselines import GROUP_ADVANTAGES

CONFIG_PACKAGE = "reinforce_lab.conf"


def group_options(group: str) -> list[str]:
    """The options of a config group, from the installed config tree."""
    node = resources.files(CONFIG_PACKAGE)
    for part in group.split("/"):
        node = node / part
    if not node.is_dir():
        return []
    return sorted(p.name[:-5] for p in node.iterdir() if p.name.endswith(".yaml"))


def check_group_choices(overrides: Sequence[str]) -> None:
    """Reject ``group=option`` command-line overrides naming an option that does not exist.

    Hydra would also reject them, but with a multi-line message; this names the allowed
    options on one line. Sweeps (``env=a,b``) are checked element by element.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:  # malformed overrides: Hydra reports those itself
        return
    for ov in parsed:
        group = ov.key_or_group
        if ov.is_delete() or ov.package or group.startswith("hydra"):
            continue
        options = group_options(group)
        if not options:
            continue
        try:
            values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.value()]
        except Exception:  # glob(...) needs Hydra's config loader; Hydra checks those itself
            continue
        for value in values:
            if isinstance(value, str) and value not in options and "*" not in value and value != "null":
                raise ConfigError(group, value, ", ".join(options))


def validate(cfg: DictConfig) -> None:
    """Check the values every run depends on; raises :class:`ConfigError`."""
    s = run_settings(cfg)  # every key there, none unknown
    _check_env(s.env)
    _check_int("algo.episodes_per_update", s.algo.episodes_per_update, 1)
    _check_int("seed", s.seed, 0)
    _check_int("train.num_seeds", s.train.num_seeds, 1)
    _check_range("algo.gamma", s.algo.gamma, 0.0, 1.0)
    _check_positive("optimizer.lr", cfg.optimizer.lr)
    if s.algo.advantage not in ADVANTAGES:
        raise ConfigError("algo.advantage", s.algo.advantage, ", ".join(ADVANTAGES))
    _check_baselines(s)
    if s.algo.has_value_fn and s.algo.baseline_lr is not None:
        _check_positive("algo.baseline_lr", s.algo.baseline_lr)
    if float(s.algo.entropy_coef or 0.0) < 0:
        raise ConfigError("algo.entropy_coef", s.algo.entropy_coef, "a number ≥ 0")
    _check_train(s.train, s.env.id)
    mode = OmegaConf.select(cfg, "logger.mode")
    if mode is not None and mode not in ("offline", "online", "disabled"):
        raise ConfigError("logger.mode", mode, "offline, online, disabled, or null (automatic)")
    policy = OmegaConf.to_container(cfg.policy, resolve=True)
    _check_policy(policy)
    check_scale_options(s, policy)
    check_spaces(s.env.id, policy)
    _check_device(cfg.device)
    if s.loss.name == "update_rule" and not is_plain_sgd(cfg):
        raise ConfigError("optimizer", _optimizer_name(cfg),
                          "sgd without momentum/weight_decay (loss=update_rule is the literal "
                          "rule θ ← θ + α·Ψ·∇ln π, i.e. plain SGD with step size optimizer.lr)")
    if not isinstance(s.loss.closed_form, bool):
        raise ConfigError("loss.closed_form", s.loss.closed_form, "true or false")
    if s.loss.sequential and s.loss.name != "update_rule":
        raise ConfigError("loss.sequential", True, f"false with loss={s.loss.name} (the book's per-step loop "
                          "is a form of loss=update_rule)")
    _check_traces(s)
    mode = s.train.async_agents
    if mode not in ASYNC_AGENTS:
        raise ConfigError("train.async_agents", mode, "auto, true, false")
    if mode is True and not is_plain_sgd(cfg):
        raise ConfigError("train.async_agents", True, f"auto or false with optimizer {_optimizer_name(cfg)} "
                          "(agents can update at different times only when an update leaves the others "
                          "untouched: plain SGD; Adam's moments and step count would move them)")


def _check_traces(s: RunSettings) -> None:
    """Eligibility traces (S&B §13.5, ``algo=actor_critic_traces``) are the book's rule, carried step by step."""
    lambdas = {k: getattr(s.algo, k) for k in ("lambda_theta", "lambda_w")}
    if all(v is None for v in lambdas.values()):
        return
    for key, value in lambdas.items():
        if value is not None:
            _check_range(f"algo.{key}", value, 0.0, 1.0)
    why = "with algo.lambda_theta/lambda_w (the trace update is the book's rule, not a loss; docs/loss-forms.md §8)"
    if s.loss.name != "update_rule":
        raise ConfigError("loss", s.loss.name, f"update_rule {why}")
    if not s.loss.sequential:
        raise ConfigError("loss.sequential", s.loss.sequential, f"true {why}")
    if s.algo.advantage != "td":
        raise ConfigError("algo.advantage", s.algo.advantage, "td with algo.lambda_theta/lambda_w (the TD error δ "
                          "multiplies the traces)")


def _check_env(env: EnvSettings) -> None:
    try:
        gym.spec(env.id)
    except gym.error.Error:
        close = difflib.get_close_matches(str(env.id), list(gym.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. CartPole-v1, Pendulum-v1)"
        raise ConfigError("env.id", env.id, "a registered gymnasium id" + hint) from None
    _check_int("env.num_envs", env.num_envs, 1)
    if env.max_episode_steps is not None:
        _check_int("env.max_episode_steps", env.max_episode_steps, 1)
    if env.vectorization not in VECTORIZATIONS:
        raise ConfigError("env.vectorization", env.vectorization, ", ".join(VECTORIZATIONS))
    check_envpool(env)


def _check_train(train: TrainSettings, env_id: str) -> None:
    for key in ("max_env_steps", "max_episodes"):
        if getattr(train, key) is not None:
            _check_int(f"train.{key}", getattr(train, key), 1)
    if train.max_env_steps is None and train.max_episodes is None:
        raise ConfigError("train.max_env_steps", None, "a positive budget (or set train.max_episodes)")
    _check_int("train.window", train.window, 1)
    if train.checkpoint_every_s is not None:
        _check_positive("train.checkpoint_every_s", train.checkpoint_every_s)
    if train.checkpoint_every_updates is not None:
        _check_int("train.checkpoint_every_updates", train.checkpoint_every_updates, 1)
    target = train.target_return
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise ConfigError("train.target_return", target, "a number or null")
        best = MAX_RETURN.get(str(env_id))
        if best is not None and target > best:
            raise ConfigError("train.target_return", target, f"≤ {best}, the best return {env_id} can give "
                              "(a target above it can never be reached)")


def _check_policy(policy: dict[str, Any]) -> None:
    min_prob = policy.get("min_prob")
    if min_prob is not None and (isinstance(min_prob, bool) or not isinstance(min_prob, (int, float))
                                 or not 0 <= min_prob < 0.5):
        raise ConfigError("policy.min_prob", min_prob, "a number in [0, 1/n) for n actions (0 = no floor)")
    if policy.get("min_std") is not None:
        _check_positive("policy.min_std", policy["min_std"])
    for h in policy.get("hidden_sizes") or []:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ConfigError("policy.hidden_sizes", list(policy["hidden_sizes"]), "a list of integers ≥ 1")


def _check_baselines(s: RunSettings) -> None:
    """``algo.group_size`` and the baselines estimated from the batch (:mod:`reinforce_lab.baselines`)."""
    adv, k, e = s.algo.advantage, s.algo.group_size, s.algo.episodes_per_update
    _check_int("algo.group_size", k, 1)
    if adv in GROUP_ADVANTAGES and k < 2:
        raise ConfigError("algo.group_size", k, f"an integer ≥ 2 with algo.advantage={adv} (the other "
                          "episodes of a group are each episode's baseline)")
    if adv in ("batch_mean", "optimal_constant") and e < 2:
        why = ("one episode's mean is its own return: Ψ = 0" if adv == "batch_mean"
               else "each episode's b comes from the other episodes")
        raise ConfigError("algo.episodes_per_update", e, f"an integer ≥ 2 with algo.advantage={adv} ({why})")
    if adv == "optimal_constant" and s.algo.normalize_returns:
        raise ConfigError("algo.normalize_returns", True, "false with algo.advantage=optimal_constant "
                          "(standardising Ψ subtracts its batch mean, which cancels a constant baseline)")
    if k == 1:
        return
    if e % k:
        raise ConfigError("algo.episodes_per_update", e, f"a multiple of algo.group_size={k}")
    if min(s.env.num_envs, e) % k:
        raise ConfigError("env.num_envs", s.env.num_envs, f"a multiple of algo.group_size={k}, or ≥ "
                          "algo.episodes_per_update (the k env copies of a group reset with one seed)")
    if not _seeds_each_copy(s.env):
        raise ConfigError("env.vectorization", s.env.vectorization, f"sync, async with algo.group_size={k} "
                          f"(a group's episodes start from one reset seed; {s.env.id}'s native vector env "
                          "has one RNG for all its copies)")


def _seeds_each_copy(env: EnvSettings) -> bool:
    """Whether the run's vector env takes one reset seed per copy (``rlab.per_copy_seeds``)."""
    from .envs import make_vec_env, seeds_each_copy

    if env.vectorization in ("sync", "async", "envpool") or gym.spec(env.id).vector_entry_point is None:
        return True  # built by make_vec_env as sync/async copies or envpool's, which declare it
    envs = make_vec_env(env.id, 1, env.max_episode_steps, env.vectorization, **(env.kwargs or {}))
    try:
        return seeds_each_copy(envs)
    finally:
        envs.close()


ASYNC_AGENTS = ("auto", True, False)


def is_plain_sgd(cfg: DictConfig) -> bool:
    """Whether the optimizer is SGD without momentum, dampening, weight decay or Nesterov.

    Such an update is θ ← θ − lr·g and nothing else: no state, and a zero gradient leaves θ
    exactly as it is (what ``loss=update_rule`` and asynchronous agents rely on).
    """
    target = str(cfg.optimizer.get("_target_", ""))
    extras = [k for k in ("momentum", "weight_decay", "dampening", "nesterov") if cfg.optimizer.get(k)]
    return target == "torch.optim.SGD" and not extras


def _optimizer_name(cfg: DictConfig) -> str:
    extras = {k: cfg.optimizer.get(k) for k in ("momentum", "weight_decay", "dampening", "nesterov")
              if cfg.optimizer.get(k)}
    return f"{str(cfg.optimizer.get('_target_', '')).rsplit('.', 1)[-1]}{extras or ''}"


def asynchronous_agents(cfg: DictConfig, envs: Any, num_agents: int) -> bool:
    """Resolve ``train.async_agents`` for these envs (``auto``: whenever it is possible and useful)."""
    from .envs import supports_partial_reset

    mode = cfg.train.async_agents
    partial = supports_partial_reset(envs)
    if mode == "auto":
        # Not with the book's per-step updates: there the update costs one sequential step
        # per transition of the longest episode in it, and agents updating together in
        # lockstep share those steps best (measured: 16 s vs 19 s for Fig. 13.1 × 300 episodes).
        return num_agents > 1 and is_plain_sgd(cfg) and partial and not cfg.loss.sequential
    if mode and not partial:
        raise ConfigError("train.async_agents", True, f"auto or false for {type(envs).__name__} (its copies cannot "
                          "be reset one by one; env.vectorization=sync or async can)")
    return bool(mode)


# Best possible undiscounted return, for the envs whose maximum is known (a target above it
# would make a run train until its budget runs out while waiting for the impossible).
MAX_RETURN = {"CartPole-v1": 500.0, "CartPole-v0": 200.0, "Acrobot-v1": 0.0, "Pendulum-v1": 0.0,
              "MountainCarContinuous-v0": 100.0, "InvertedPendulum-v5": 1000.0, "InvertedPendulum-v4": 1000.0,
              "ShortCorridor-v0": -3.0}


def _check_int(key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"an integer ≥ {low}")


def _check_range(key: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(key, value, f"a number in [{low:g}, {high:g}]")


def _check_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(key, value, "a number > 0")


def _check_device(device: DictConfig) -> None:
    if device.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("device", device.name, "cpu, auto (no CUDA GPU is visible to torch here)")
    if device.accelerator == "mps" and not (torch.backends.mps.is_available()):
        raise ConfigError("device", device.name, "cpu, auto (Apple MPS is not available here)")

