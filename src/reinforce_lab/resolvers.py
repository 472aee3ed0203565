"""OmegaConf resolvers of the config tree (``${rlab.*:...}``), registered when the package is imported.

- ``${rlab.group:}``: the W&B group of a job (:func:`reinforce_lab.sweeps.wandb_group`).
- ``${rlab.uid:}``: a short random suffix that makes run and sweep folders unique even when
  two runs (or two sweeps) start in the same second (``conf/train.yaml``'s ``hydra.run.dir``
  and ``hydra.sweep.dir``). It is cached like Hydra's own ``${now:}``, and Hydra copies that
  cache into every job of a sweep, so one sweep resolves one value.
- ``${rlab.env_name:ID,DEFAULT_ID,NAME}`` and ``${rlab.env_target:ID,DEFAULT_ID,TARGET}``:
  an ``env`` option's short name and target while ``env.id`` is the option's own id, else
  what the environment ``ID`` says (its id as a name, its spec's ``reward_threshold`` as
  target, or none). So ``env.id=MountainCar-v0`` started from ``env=cartpole`` is named and
  judged as MountainCar in the folder, the W&B name and tags, and the target check.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from omegaconf import OmegaConf

UID_RESOLVER, ENV_NAME_RESOLVER, ENV_TARGET_RESOLVER = "rlab.uid", "rlab.env_name", "rlab.env_target"
UID_HEX_DIGITS = 6  # 16.7 million values: two runs started in the same second collide with p ≈ 6e-8


def register_resolvers() -> None:
    """Register every ``rlab.*`` resolver with OmegaConf (idempotent)."""
    from .sweeps import GROUP_RESOLVER, wandb_group

    for name, fn, cache in ((GROUP_RESOLVER, wandb_group, False), (UID_RESOLVER, run_uid, True),
                            (ENV_NAME_RESOLVER, env_name, False), (ENV_TARGET_RESOLVER, env_target, False)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=cache)


def run_uid() -> str:
    """A fresh random suffix (hex); cached per config by OmegaConf, so one run or sweep sees one value."""
    return secrets.token_hex(UID_HEX_DIGITS // 2)


def env_name(env_id: Any, default_id: Any, default_name: Any) -> str:
    """The option's name for its own id; else the id itself, made safe for a folder name."""
    if str(env_id) == str(default_id):
        return str(default_name)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(env_id)).strip("_") or "env"


def env_target(env_id: Any, default_id: Any, default_target: Any) -> float | None:
    """The option's target for its own id; else the registered spec's ``reward_threshold`` (None if none).

    An id that is not registered gives None here: validation then names it in one line.
    """
    if str(env_id) == str(default_id):
        return default_target
    import gymnasium as gym

    from . import envs  # noqa: F401 - registers the project's own envs (ShortCorridor-v0)

    try:
        threshold = gym.spec(str(env_id)).reward_threshold
    except Exception:  # noqa: BLE001 - any lookup failure: an unknown id, reported by validation
        return None
    return float(threshold) if threshold is not None else None
