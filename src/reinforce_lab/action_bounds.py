"""How a Gaussian policy's unbounded sample becomes an action inside the env's bounds.

``policy.bound=clip`` (the default; what the book's continuous-action REINFORCE and SB3 do):
the env receives the sample clipped to ``[low, high]`` (``envs.ClipToBounds``, as gymnasium's ``ClipAction``).
``policy.bound=tanh`` (Tianshou's MuJoCo REINFORCE): the env receives
``a = low + (tanh(u) + 1)·(high − low)/2``, a smooth bijection onto the open box.

**The log-probability convention.** In both cases the batch keeps the sample ``u`` and the
loss uses ``ln N(u | μ_θ(s), σ_θ)``, the density of what was *sampled*. For ``tanh`` the
density of the env action is ``ln p(a) = ln N(u) − Σ_i ln(c_i (1 − tanh² u_i))`` with
``c = (high − low)/2`` (:func:`squashed_log_prob`); the correction depends on ``u`` only, not
on θ, so ``∇_θ ln p(a) = ∇_θ ln N(u)`` and the policy gradient is the same with or without it
(SAC needs it because it differentiates through the sample; REINFORCE does not). What the
convention changes is what is *reported*: ``train/entropy`` is the Gaussian's entropy of u.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

BOUNDS = ("clip", "tanh")


class ActionBounds:
    """Maps sampled actions to env actions (``policy.bound``).

    Args:
        low, high: the env's ``Box`` bounds (finite for ``tanh``).
        method: one of :data:`BOUNDS`.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, method: str = "clip") -> None:
        if method not in BOUNDS:
            raise ValueError(f"policy.bound={method!r}; allowed: {', '.join(BOUNDS)}")
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if method == "tanh" and not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"policy.bound=tanh needs finite action bounds, not [{low}, {high}]; allowed: clip")
        self.method, self.low, self.high = method, low, high
        self.centre = ((high + low) / 2).astype(np.float32)
        self.half = ((high - low) / 2).astype(np.float32)

    def to_env(self, u: np.ndarray) -> np.ndarray:
        """The action the env receives for sample ``u`` (clip: unchanged; ``envs.ClipToBounds`` clips it)."""
        if self.method == "clip":
            return u
        return (self.centre + self.half * np.tanh(u)).astype(np.float32)


def squashed_log_prob(log_prob_u: Tensor, u: Tensor, half_range: Tensor | float = 1.0) -> Tensor:
    """``ln p(a)`` of ``a = centre + c·tanh(u)`` from ``ln N(u)`` (change of variables).

    ``ln(1 − tanh² u) = 2 (ln 2 − u − softplus(−2u))``, the numerically stable form.

    Args:
        log_prob_u: ``[...]`` the Gaussian log-density of the sample (summed over action dims).
        u: ``[..., act_dim]`` the samples.
        half_range: c, ``(high − low)/2`` per dimension.
    """
    log_det = 2 * (math.log(2.0) - u - F.softplus(-2 * u)) + torch.log(torch.as_tensor(half_range, dtype=u.dtype))
    return log_prob_u - log_det.sum(-1)
