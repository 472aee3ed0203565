"""From a Hydra config to objects, for the entry points: validation first, then builders.

Only the entry points (train/eval/report) and this module read ``DictConfig``; every
object below them takes typed arguments. Validation runs before anything is created (no
W&B run, no checkpoint), and every problem is one line naming the key, the value and
what is allowed.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources
from typing import Any, Sequence

import gymnasium as gym
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .envs import VECTORIZATIONS, make_vec_env
from .policies import Policy, mlp
from .update import ADVANTAGES

CONFIG_PACKAGE = "reinforce_lab.conf"


class ConfigError(ValueError):
    """A bad configuration value: ``key=value`` and what is allowed, on one line."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value} is not allowed; allowed: {allowed}")


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
    env_id = cfg.env.id
    try:
        gym.spec(env_id)
    except gym.error.Error:
        close = difflib.get_close_matches(str(env_id), list(gym.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. CartPole-v1, Pendulum-v1)"
        raise ConfigError("env.id", env_id, "a registered gymnasium id" + hint) from None
    _check_int("env.num_envs", cfg.env.num_envs, 1)
    _check_int("algo.episodes_per_update", cfg.algo.episodes_per_update, 1)
    _check_int("seed", cfg.seed, 0)
    _check_int("train.num_seeds", cfg.train.get("num_seeds", 1), 1)
    _check_range("algo.gamma", cfg.algo.gamma, 0.0, 1.0)
    _check_positive("optimizer.lr", cfg.optimizer.get("lr"))
    if cfg.algo.advantage not in ADVANTAGES:
        raise ConfigError("algo.advantage", cfg.algo.advantage, ", ".join(ADVANTAGES))
    if cfg.algo.advantage != "return" and cfg.algo.get("baseline_lr") is not None:
        _check_positive("algo.baseline_lr", cfg.algo.baseline_lr)
    if float(cfg.algo.get("entropy_coef") or 0.0) < 0:
        raise ConfigError("algo.entropy_coef", cfg.algo.entropy_coef, "a number ≥ 0")
    for key in ("max_env_steps", "max_episodes"):
        if cfg.train.get(key) is not None:
            _check_int(f"train.{key}", cfg.train[key], 1)
    if cfg.train.get("max_env_steps") is None and cfg.train.get("max_episodes") is None:
        raise ConfigError("train.max_env_steps", None, "a positive budget (or set train.max_episodes)")
    _check_int("train.window", cfg.train.get("window", 100), 1)
    if cfg.env.get("max_episode_steps") is not None:
        _check_int("env.max_episode_steps", cfg.env.max_episode_steps, 1)
    for key in ("checkpoint_every_s",):
        if cfg.train.get(key) is not None:
            _check_positive(f"train.{key}", cfg.train[key])
    if cfg.train.get("checkpoint_every_updates") is not None:
        _check_int("train.checkpoint_every_updates", cfg.train.checkpoint_every_updates, 1)
    if cfg.env.get("vectorization", "auto") not in VECTORIZATIONS:
        raise ConfigError("env.vectorization", cfg.env.vectorization, ", ".join(VECTORIZATIONS))
    mode = cfg.logger.get("mode")
    if mode is not None and mode not in ("offline", "online", "disabled"):
        raise ConfigError("logger.mode", mode, "offline, online, disabled, or null (automatic)")
    min_prob = cfg.policy.get("min_prob")
    if min_prob is not None and (isinstance(min_prob, bool) or not isinstance(min_prob, (int, float))
                                 or not 0 <= min_prob < 0.5):
        raise ConfigError("policy.min_prob", min_prob, "a number in [0, 1/n) for n actions (0 = no floor)")
    if cfg.policy.get("min_std") is not None:
        _check_positive("policy.min_std", cfg.policy.min_std)
    for h in cfg.policy.get("hidden_sizes") or []:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ConfigError("policy.hidden_sizes", list(cfg.policy.hidden_sizes), "a list of integers ≥ 1")
    target = cfg.train.get("target_return")
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise ConfigError("train.target_return", target, "a number or null")
        best = MAX_RETURN.get(str(env_id))
        if best is not None and target > best:
            raise ConfigError("train.target_return", target, f"≤ {best}, the best return {env_id} can give "
                              "(a target above it can never be reached)")
    _check_spaces(cfg)
    _check_device(cfg.device)
    if cfg.loss.name == "update_rule" and not is_plain_sgd(cfg):
        raise ConfigError("optimizer", _optimizer_name(cfg),
                          "sgd without momentum/weight_decay (loss=update_rule is the literal "
                          "rule θ ← θ + α·Ψ·∇ln π, i.e. plain SGD with step size optimizer.lr)")
    mode = cfg.train.get("async_agents", "auto")
    if mode not in ASYNC_AGENTS:
        raise ConfigError("train.async_agents", mode, "auto, true, false")
    if mode is True and not is_plain_sgd(cfg):
        raise ConfigError("train.async_agents", True, f"auto or false with optimizer {_optimizer_name(cfg)} "
                          "(agents can update at different times only when an update leaves the others "
                          "untouched: plain SGD; Adam's moments and step count would move them)")


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
    from .rollout import supports_partial_reset

    mode = cfg.train.get("async_agents", "auto")
    partial = supports_partial_reset(envs)
    if mode == "auto":
        # Not with the book's per-step updates: there the update costs one sequential step
        # per transition of the longest episode in it, and agents updating together in
        # lockstep share those steps best (measured: 16 s vs 19 s for Fig. 13.1 × 300 episodes).
        return num_agents > 1 and is_plain_sgd(cfg) and partial and not cfg.loss.get("sequential", False)
    if mode and not partial:
        raise ConfigError("train.async_agents", True, f"auto or false for {type(envs).__name__} (its copies cannot "
                          "be reset one by one; env.vectorization=sync or async can)")
    return bool(mode)


# Best possible undiscounted return, for the envs whose maximum is known (a target above it
# would make a run train until its budget runs out while waiting for the impossible).
MAX_RETURN = {"CartPole-v1": 500.0, "CartPole-v0": 200.0, "Acrobot-v1": 0.0, "Pendulum-v1": 0.0,
              "MountainCarContinuous-v0": 100.0, "InvertedPendulum-v5": 1000.0, "InvertedPendulum-v4": 1000.0,
              "ShortCorridor-v0": -3.0}


def _check_spaces(cfg: DictConfig) -> None:
    """Options that need a particular action space (e.g. ``policy=preferences``: Discrete only)."""
    if (cfg.policy.get("kind") != "preferences" and not cfg.policy.get("state_dependent_std")
            and not cfg.policy.get("min_prob")):
        return
    env = gym.make(cfg.env.id)
    try:
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
    finally:
        env.close()
    if cfg.policy.get("kind") == "preferences" and not discrete:
        raise ConfigError("policy", "preferences", f"mlp for {cfg.env.id} (preferences needs Discrete actions, "
                          f"{cfg.env.id}'s are continuous)")
    if cfg.policy.get("min_prob") and not discrete:
        raise ConfigError("policy.min_prob", cfg.policy.min_prob, f"0 for {cfg.env.id} (a floor on categorical "
                          "probabilities; its actions are continuous)")
    if cfg.policy.get("state_dependent_std") and discrete:
        raise ConfigError("policy.state_dependent_std", True, f"false for {cfg.env.id} (a Gaussian option; its "
                          "actions are Discrete)")


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


# ---------------------------------------------------------------------------- builders
def build_envs(cfg: DictConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """The run's vector env (``env`` group)."""
    kwargs = {} if cfg.env.get("kwargs") is None else OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    return make_vec_env(cfg.env.id, num_envs or cfg.env.num_envs, cfg.env.get("max_episode_steps"),
                        cfg.env.get("vectorization", "sync"), **kwargs)


def agent_seeds(cfg: DictConfig) -> list[int]:
    """The seeds of the run's agents: ``seed … seed + train.num_seeds − 1``."""
    return [int(cfg.seed) + a for a in range(int(cfg.train.get("num_seeds", 1) or 1))]


def agent_generators(seeds: list[int]) -> list[torch.Generator]:
    """One torch generator per agent: it initialises that agent's networks, then samples its actions."""
    return [torch.Generator().manual_seed(s) for s in seeds]


def env_seeds(seeds: list[int], envs_per_agent: int) -> list[int]:
    """Seed of every env copy: agent seed ``k``'s copy ``i`` gets ``k·10⁴ + i`` (distinct across agents)."""
    return [k * 10_000 + i for k in seeds for i in range(envs_per_agent)]


def build_policy(cfg: DictConfig, observation_space: gym.Space, action_space: gym.Space,
                 generators: list[torch.Generator] | None = None) -> Policy:
    """The policy (``policy`` group) for these spaces, one slice per generator (agent)."""
    try:
        return instantiate(cfg.policy, observation_space=observation_space, action_space=action_space,
                           generators=generators or [None], _convert_="all")
    except Exception as exc:  # hydra wraps the ValueError from make_policy
        cause = exc.__cause__ or exc
        if isinstance(cause, ValueError):
            key, _, rest = str(cause).partition("=")
            value, _, allowed = rest.partition("; allowed: ")
            raise ConfigError(key, value, allowed or str(cause)) from None
        raise


def build_value_fn(cfg: DictConfig, observation_space: gym.Space,
                   generators: list[torch.Generator] | None = None) -> torch.nn.Module:
    """v̂(s, w): an MLP with the policy's hidden sizes (or ``algo.value_hidden_sizes``)."""
    hidden = cfg.algo.get("value_hidden_sizes")
    if hidden is None:
        hidden = cfg.policy.get("hidden_sizes") or (64, 64)
    obs_dim = int(torch.tensor(observation_space.shape).prod())
    value_fn = mlp(obs_dim, 1, list(hidden), cfg.policy.get("activation", "tanh"), generators or [None],
                   output_bias=bool(cfg.algo.get("value_bias", True)))
    if cfg.algo.get("value_init") is not None:  # e.g. w = 0 as in the book's experiments
        with torch.no_grad():
            for p in value_fn.parameters():
                p.fill_(float(cfg.algo.value_init))
    return value_fn


def build_optimizer(cfg: DictConfig, lr: float | None = None) -> functools.partial:
    """The ``optimizer`` group as a partial ``torch.optim`` constructor (lr overridable)."""
    return instantiate(cfg.optimizer, **({"lr": lr} if lr is not None else {}))
