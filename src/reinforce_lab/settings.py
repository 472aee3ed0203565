"""The run's settings as types: the schema of ``conf/`` for the keys the code reads.

Every default lives in the YAML files of ``conf/`` (documented there), never in the code:
each group's options carry every key of its dataclass here, and :func:`run_settings` turns
the composed config into these frozen dataclasses once, at the entry point. A key that is
missing is a one-line :class:`~reinforce_lab.config.ConfigError`. Objects built
from ``_target_`` nodes (policy, optimizer, logger, trainer, callbacks) take their
arguments from Hydra's ``instantiate`` and have their own signatures as schema.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class EnvSettings:
    """``env`` group: which gymnasium env and how it is vectorised."""

    name: str
    id: str
    num_envs: int
    max_episode_steps: int | None
    target_return: float | None
    vectorization: str  # auto | native | sync | async | envpool
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class AlgoSettings:
    """``algo`` group: the REINFORCE variant (S&B §13.3–§13.5) and its hyper-parameters."""

    name: str
    gamma: float
    gamma_t: bool
    normalize_returns: bool
    episodes_per_update: int
    advantage: str  # return | baseline | td | batch_mean | rloo | group_norm | optimal_constant
    group_size: int  # k episodes per group that share a reset seed (rloo, group_norm); 1: no groups
    baseline_lr: float | None
    entropy_coef: float
    value_hidden_sizes: list[int] | None
    value_bias: bool
    value_init: float | None
    lambda_theta: float | None  # eligibility-trace decay of the actor (S&B §13.5, algo=actor_critic_traces); None: no traces
    lambda_w: float | None      # ... and of the critic
    rollout: str  # episodes | horizon (reinforce_lab.horizon_rollout)
    horizon: int | None  # env steps per agent per update with rollout=horizon
    bootstrap: str  # auto | none | value | return_mean: the value of a non-terminal end
    normalize_by: str  # batch | running: the statistics that standardise Ψ

    @property
    def bootstrap_choice(self) -> str:
        """``auto`` resolved: none for whole episodes (the book), else v̂ where there is one, else the return mean."""
        if self.bootstrap != "auto":
            return self.bootstrap
        if self.rollout != "horizon":
            return "none"
        return "value" if self.advantage in ("baseline", "td") else "return_mean"

    @property
    def needs_return_stats(self) -> bool:
        return self.normalize_by == "running" or self.bootstrap_choice == "return_mean"

    @property
    def has_value_fn(self) -> bool:
        return self.advantage in ("baseline", "td")  # the others learn nothing (baselines.py)


@dataclass(frozen=True)
class LossSettings:
    """``loss`` group: how the policy gradient is written (docs/loss-forms.md)."""

    name: str  # log_prob | cross_entropy | update_rule
    sequential: bool
    closed_form: bool = True  # update_rule only: the per-step loop in numpy where it fits (closed_form_rule.py)


@dataclass(frozen=True)
class TrainSettings:
    """``train`` keys of ``conf/train.yaml``: budget, agents, checkpoints, progress."""

    max_env_steps: int | None
    max_episodes: int | None
    target_return: float | None
    window: int
    num_seeds: int
    async_agents: Any  # auto | true | false
    torch_threads: int
    progress: bool
    checkpoint_every_s: float | None
    checkpoint_every_updates: int | None
    lr_schedule: str  # constant | linear (reinforce_lab.lr_schedules)
    eval_every_steps: int | None  # periodic evaluation every this many env steps per agent (None: off)
    eval_episodes: int  # episodes per evaluation and per mode (stochastic, deterministic)


@dataclass(frozen=True)
class RunSettings:
    """What a training run reads of its config, typed."""

    seed: int
    env: EnvSettings
    algo: AlgoSettings
    loss: LossSettings
    train: TrainSettings
    resume: str | None

    @property
    def seeds(self) -> list[int]:
        """The seeds of the run's agents: ``seed … seed + train.num_seeds − 1``."""
        return [self.seed + a for a in range(self.train.num_seeds)]


def run_settings(cfg: DictConfig) -> RunSettings:
    """The typed settings of a composed ``train`` config (raises :class:`ConfigError`)."""
    return RunSettings(seed=cfg.seed, env=section(cfg, "env", EnvSettings), algo=section(cfg, "algo", AlgoSettings),
                       loss=section(cfg, "loss", LossSettings), train=section(cfg, "train", TrainSettings),
                       resume=cfg.resume)


def section(cfg: DictConfig, key: str, cls: type[T]) -> T:
    """``cfg[key]`` as dataclass ``cls``: every field must be there.

    Keys added on purpose (``+train.api_token=…``: Hydra refuses unknown keys without ``+``)
    are the user's and are left out of the settings.
    """
    node = OmegaConf.to_container(cfg[key], resolve=True)
    names = [f.name for f in fields(cls) if f.name in node or f.default is MISSING]  # type: ignore[arg-type]
    missing = [n for n in names if n not in node]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}", "(missing)", f"a value (every {key} option sets it; see conf/{key}/)")
    return cls(**{n: node[n] for n in names})
