"""Advantage estimators: what multiplies ∇ ln π, and what the value function is fitted to.

Each estimator is one small class whose call on an :class:`~reinforce_lab.rollout.EpisodeBatch`
returns a typed :class:`Advantages`; the losses (:mod:`reinforce_lab.objectives`) and the
book's rule (:mod:`reinforce_lab.book_rule`) only read that value. Ψ_t depends on the estimator:

* :class:`MonteCarloReturn` — REINFORCE (S&B §13.3): Ψ_t = G_t.
* :class:`LearnedBaseline` — REINFORCE with baseline (§13.4): Ψ_t = G_t − v̂(S_t, w).
* :class:`TDZero` — one-step actor-critic (§13.5): Ψ_t = R_{t+1} + γ v̂(S_{t+1}, w) − v̂(S_t, w),
  with v̂ of a terminal state 0 and a time-limit end bootstrapping from the final state.

Baselines estimated from the batch itself, with no value function (``batch_mean``, ``rloo``,
``group_norm``, ``optimal_constant``), are in :mod:`reinforce_lab.baselines`.

A new learned baseline is a subclass of :class:`ValueBaseline` with one method, :meth:`value_targets`
(and :meth:`step_target` for the book's per-step loop). Tensors are ``[S, E, T]``: S agents
× E episodes × T steps, 0 on padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from .returns import discount_weights, discounted_returns, masked_mean_std, with_tail
from .rollout import EpisodeBatch

ADVANTAGES = ("return", "baseline", "td", "batch_mean", "rloo", "group_norm", "optimal_constant")
VALUE_ADVANTAGES = ("baseline", "td")  # the estimators that learn v̂(s, w)
# algo.bootstrap: what stands for the rewards after a non-terminal end (a time limit, or the horizon
# of a fixed-horizon rollout): nothing (the book's Monte-Carlo return), v̂ of the state the episode
# was cut at, or the running mean of the returns (Tianshou's REINFORCE, which has no v̂).
BOOTSTRAPS = ("none", "value", "return_mean")
NORMALIZE_EPS = 1e-8  # added to the std so that a batch of equal Ψ does not divide by zero


@dataclass(frozen=True)
class Advantages:
    """What an estimator computes from a batch, all ``[S, E, T]`` and 0 on padding.

    Attributes:
        returns: G_t (S&B §13.3).
        weights: w_t = γ^t (``algo.gamma_t``) or 1 on real steps.
        psi: Ψ_t before normalisation, gradient stopped.
        values: v̂(S_t, w) with its gradient w.r.t. w, or None without a value function.
        value_targets: what v̂ is fitted to (G_t or the TD target), or None.
    """

    returns: Tensor
    weights: Tensor
    psi: Tensor
    values: Tensor | None = None
    value_targets: Tensor | None = None


@dataclass(frozen=True)
class Normalized:
    """Ψ standardised per agent over the batch, with the statistics used (``[S, 1, 1]``)."""

    psi: Tensor
    mean: Tensor
    std: Tensor


def standardise(psi: Tensor, mean: Tensor, std: Tensor, mask: Tensor) -> Tensor:
    """``(Ψ − mean) / (std + ε) · mask``; the per-step loop reuses it with the batch statistics."""
    return (psi - mean) / (std + NORMALIZE_EPS) * mask


def normalize_advantages(psi: Tensor, mask: Tensor) -> Normalized:
    """Standardise Ψ per agent over its real steps (``algo.normalize_returns``).

    The mean is a constant baseline (S&B §13.4) and the std a per-update step-size scale.
    """
    mean, std = masked_mean_std(psi, mask, dims=(-2, -1))  # per agent, [S, 1, 1]
    return Normalized(standardise(psi, mean, std, mask), mean, std)


def td_target(rewards: Tensor, next_values: Tensor, nonterminal: Tensor, gamma: float) -> Tensor:
    """The one-step target ``R_{t+1} + γ v̂(S_{t+1})`` with v̂ of a terminal state 0 (S&B §13.5).

    The batched estimator calls it on ``[S, E, T]`` tensors and the book's per-step loop on
    ``[S]`` tensors at the current w, so both paths compute the target the same way.

    Args:
        rewards: R_{t+1}.
        next_values: v̂(S_{t+1}) (the final state after an episode's last step).
        nonterminal: 1 where S_{t+1} is not terminal (a time limit is not terminal), else 0.
        gamma: discount γ.
    """
    return rewards + gamma * (next_values * nonterminal)


class AdvantageEstimator:
    """Base of every estimator: the returns G_t and weights w_t that all of them share."""

    value_fn: nn.Module | None = None  # v̂(s, w) when the estimator learns one
    # ``algo.bootstrap``: ``[S, E]`` value of the state each episode was cut at (None: no bootstrap).
    tail: Callable[[EpisodeBatch], Tensor] | None = None

    def __init__(self, gamma: float, gamma_t: bool = False) -> None:
        self.gamma, self.gamma_t = float(gamma), bool(gamma_t)

    def returns_and_weights(self, batch: EpisodeBatch) -> tuple[Tensor, Tensor]:
        """G_t (S&B §13.3; bootstrapped at non-terminal ends when ``tail`` is set) and w_t, ``[S, E, T]``."""
        rewards = batch.rewards
        if self.tail is not None:
            with torch.no_grad():
                tail = self.tail(batch).to(rewards.dtype) * (~batch.terminated).to(rewards.dtype)
            rewards = with_tail(rewards, batch.lengths, tail, self.gamma)
        returns = discounted_returns(rewards, batch.mask, self.gamma)
        return returns, discount_weights(batch.mask, self.gamma, self.gamma_t)

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        raise NotImplementedError


class MonteCarloReturn(AdvantageEstimator):
    """REINFORCE's Ψ_t = G_t (S&B §13.3); no value function."""

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        return Advantages(returns, weights, psi=returns)


class ValueBaseline(AdvantageEstimator):
    """Ψ_t = target_t − v̂(S_t, w) with a learned v̂; subclasses say what the target is."""

    def __init__(self, value_fn: nn.Module, gamma: float, gamma_t: bool = False) -> None:
        super().__init__(gamma, gamma_t)
        self.value_fn = value_fn
        # ``[S]`` scale of v̂'s output (algo.normalize_by=running: the running std of the returns), so that
        # the network learns returns of order 1 whatever the task's reward scale; None: v̂ is the network.
        self.scale: Callable[[], Tensor] | None = None

    def values(self, obs: Tensor) -> Tensor:
        """v̂(s, w): ``[S, ..., obs_dim] → [S, ...]``."""
        out = self.value_fn(obs).squeeze(-1)
        if self.scale is None:
            return out
        return out * self.scale().to(out.dtype).reshape(-1, *([1] * (out.dim() - 1)))

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        values = self.values(batch.obs)  # [S, E, T], with gradient w.r.t. w
        targets = self.value_targets(batch, returns, values.detach())
        psi = (targets - values.detach()) * batch.mask
        return Advantages(returns, weights, psi, values, targets)

    def value_targets(self, batch: EpisodeBatch, returns: Tensor, values: Tensor) -> Tensor:
        """``[S, E, T]`` targets of v̂ given the returns and the (detached) values."""
        raise NotImplementedError

    def step_target(self, batch: EpisodeBatch, returns: Tensor, episode: int, t: int) -> Tensor:
        """``[S]`` target of step ``t`` of episode slot ``episode`` at the current w (book's loop)."""
        raise NotImplementedError


class LearnedBaseline(ValueBaseline):
    """REINFORCE with baseline (S&B §13.4): v̂ is fitted to G_t and Ψ_t = G_t − v̂(S_t, w)."""

    def value_targets(self, batch: EpisodeBatch, returns: Tensor, values: Tensor) -> Tensor:
        return returns

    def step_target(self, batch: EpisodeBatch, returns: Tensor, episode: int, t: int) -> Tensor:
        return returns[:, episode, t]


class TDZero(ValueBaseline):
    """One-step actor-critic (S&B §13.5): Ψ_t = R_{t+1} + γ v̂(S_{t+1}, w) − v̂(S_t, w)."""

    def value_targets(self, batch: EpisodeBatch, returns: Tensor, values: Tensor) -> Tensor:
        with torch.no_grad():
            v_final = self.values(batch.final_obs)  # [S, E]
        # v̂(S_{t+1}) is the next step's value, or the final state's after the last step.
        v_next = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], dim=-1)
        last = (batch.lengths - 1).clamp_min(0).unsqueeze(-1)  # [S, E, 1]; empty episodes are masked anyway
        v_next = v_next.scatter(-1, last, v_final.unsqueeze(-1))
        nonterminal = batch.mask.scatter(-1, last, (~batch.terminated).to(batch.mask.dtype).unsqueeze(-1))
        return td_target(batch.rewards, v_next, nonterminal, self.gamma) * batch.mask

    def step_target(self, batch: EpisodeBatch, returns: Tensor, episode: int, t: int) -> Tensor:
        last = t + 1 >= batch.lengths[:, episode]  # [S]
        with torch.no_grad():
            nxt_idx = min(t + 1, batch.obs.shape[2] - 1)
            nxt = torch.where(last.unsqueeze(-1), batch.final_obs[:, episode], batch.obs[:, episode, nxt_idx])
            v_next = self.values(nxt)
        return td_target(batch.rewards[:, episode, t], v_next, ~(last & batch.terminated[:, episode]), self.gamma)


def make_estimator(advantage: str, value_fn: nn.Module | None, gamma: float, gamma_t: bool = False,
                   group_size: int = 1, policy: nn.Module | None = None) -> AdvantageEstimator:
    """The estimator named by ``algo.advantage`` (one of :data:`ADVANTAGES`).

    ``group_size`` is k of ``rloo``/``group_norm`` (episode slots ``[g·k, (g+1)·k)`` form a group);
    ``policy`` is π, whose per-episode scores ``optimal_constant`` needs.
    """
    from . import baselines  # baselines builds on this module's base class

    if advantage not in ADVANTAGES:
        raise ValueError(f"advantage={advantage!r}; allowed: {', '.join(ADVANTAGES)}")
    if advantage == "return":
        return MonteCarloReturn(gamma, gamma_t)
    if advantage == "batch_mean":
        return baselines.BatchMean(gamma, gamma_t)
    if advantage in baselines.GROUP_ADVANTAGES:
        cls = baselines.LeaveOneOut if advantage == "rloo" else baselines.GroupNorm
        return cls(gamma, gamma_t, group_size=group_size)
    if advantage == "optimal_constant":
        if policy is None:
            raise ValueError("advantage='optimal_constant' needs the policy (its per-episode scores)")
        return baselines.OptimalConstant(policy, gamma, gamma_t)
    if value_fn is None:
        raise ValueError(f"advantage={advantage!r} needs a value function")
    return (LearnedBaseline if advantage == "baseline" else TDZero)(value_fn, gamma, gamma_t)
