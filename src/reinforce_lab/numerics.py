"""Finiteness checks and per-agent gradient norms shared by every way of updating θ.

Training stops with :class:`NonFiniteError` as soon as a loss, a gradient or a parameter
is NaN/inf, before the bad numbers spread into the checkpoint. Norms are per agent (every
parameter has a leading agent dimension, :mod:`reinforce_lab.policies`), averaged over agents.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN/inf; training stops before it spreads."""


HINT = ("hint: lower optimizer.lr, keep algo.normalize_returns=true, raise policy.min_std for Gaussian "
        "policies, or check the environment's rewards")


def check_finite(what: str, value: float) -> None:
    """Raise :class:`NonFiniteError` (with a hint) when ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        raise NonFiniteError(f"non-finite {what} ({value}); {HINT}")


def parameters_finite(module: nn.Module) -> bool:
    """True when every parameter of ``module`` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def per_agent_sq_norm(tensors: Iterable[Tensor | None], n_agents: int) -> Tensor:
    """``[S]`` squared norm of each agent's slice (every parameter has a leading agent dim)."""
    parts = [t.detach().reshape(n_agents, -1) for t in tensors if t is not None]
    if not parts:
        return torch.zeros(n_agents)
    return torch.cat(parts, dim=1).pow(2).sum(-1).float()


def grad_norm(tensors: Iterable[Tensor | None], n_agents: int = 1) -> float:
    """Gradient norm per agent, averaged over agents (``train/grad_norm``)."""
    return float(per_agent_sq_norm(tensors, n_agents).sqrt().mean())
