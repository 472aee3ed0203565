"""The policy options locomotion needs, applied to any policy built by :func:`~reinforce_lab.policies.make_policy`.

- ``policy.obs_norm`` / ``policy.obs_clip``: observations standardised with per-agent running
  statistics (:class:`~reinforce_lab.normalizers.RunningMeanStd`), clipped to ``±obs_clip``.
  The statistics are buffers of the policy, so checkpoints, resumes and ``rlab-eval`` use them.
  The collector updates them with every step's raw observations (agents still training only)
  and stores the *normalised* observations in the batch: the loss sees exactly what the policy
  acted on (as Tianshou's ``VectorEnvNormObs``).
- ``policy.bound``: ``clip`` or ``tanh`` (:mod:`reinforce_lab.action_bounds`).
- ``policy.init``: ``default`` (``nn.Linear``'s uniform) or ``orthogonal`` with a small final
  layer (:func:`~reinforce_lab.networks.orthogonal_init_`).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from torch import nn

from .action_bounds import ActionBounds
from .networks import Generators, orthogonal_init_
from .normalizers import RunningMeanStd

INITS = ("default", "orthogonal")
POLICY_FINAL_GAIN = 0.01  # Andrychowicz et al. 2021: the initial policy's mean ≈ 0 whatever the state
VALUE_FINAL_GAIN = 1.0


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"policy.init={init!r}; allowed: {', '.join(INITS)}")
    return init


def add_features(policy: nn.Module, observation_space: gym.Space, action_space: gym.Space, *, bound: str = "clip",
                 init: str = "default", obs_norm: bool = False, obs_clip: float | None = 10.0,
                 generators: Generators = (None,)) -> nn.Module:
    """Give ``policy`` its initialisation, observation normaliser and action bounds; returns it."""
    if check_init(init) == "orthogonal" and isinstance(getattr(policy, "net", None), nn.Sequential):
        orthogonal_init_(policy.net, generators, math.sqrt(2), POLICY_FINAL_GAIN)
    if obs_norm:
        if obs_clip is not None and not obs_clip > 0:
            raise ValueError(f"policy.obs_clip={obs_clip}; allowed: a positive number or null")
        policy.obs_norm = RunningMeanStd(len(generators), (int(np.prod(observation_space.shape)),), obs_clip)
    if isinstance(action_space, gym.spaces.Box):
        policy.bounds = ActionBounds(action_space.low, action_space.high, bound)
    elif bound != "clip":
        raise ValueError(f"policy.bound={bound!r} needs a Box action space; allowed for Discrete: clip")
    return policy


def init_value_fn(value_fn: nn.Sequential, init: str, generators: Generators) -> None:
    """v̂ gets the policy's ``policy.init`` (orthogonal: gain 1 on its output layer)."""
    if check_init(init) == "orthogonal":
        orthogonal_init_(value_fn, generators, math.sqrt(2), VALUE_FINAL_GAIN)
