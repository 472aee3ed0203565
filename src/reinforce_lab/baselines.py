"""Baselines estimated from the batch itself: the batch mean, leave-one-out groups, GRPO, the optimal constant.

Each is an :class:`~reinforce_lab.advantages.AdvantageEstimator` with Ψ_t = G_t − b (or, for
``group_norm``, a standardised G_t), no value function and nothing learned. They differ in
which episodes b is estimated from; whether that includes the episode itself decides bias:

* :class:`BatchMean` (``batch_mean``): b_t = (1/E) Σ_e G_t^(e), the mean return-to-go *at the
  same step t* over the E episodes of the agent's batch, an episode that has ended counting
  G_t = 0 (its absorbing state, S&B §3.4). A time-dependent baseline (Greensmith, Bartlett &
  Baxter 2004, JMLR 5; Williams 1992's "reinforcement comparison" is its constant form).
  It includes the episode's own return, so Ψ = (E−1)/E · (G_t − mean of the others): the
  expected gradient is shrunk by (E−1)/E, its direction unbiased (Kool, van Hoof & Welling
  2019). Why per step and not the mean of G_0: G_t shrinks along an episode, and a constant
  would also be removed entirely by ``algo.normalize_returns`` (which subtracts the batch mean).
* :class:`LeaveOneOut` (``rloo``): over the k episodes of a group (``algo.group_size``),
  b_t^(i) = (1/(k−1)) Σ_{j≠i} G_t^(j) (Kool et al. 2019, "Buy 4 REINFORCE samples, get a
  baseline for free!", ICLR workshop). b never depends on episode i: the gradient is unbiased.
* :class:`GroupNorm` (``group_norm``): Ψ_t^(i) = (G_t^(i) − mean_j G_t^(j)) / (std_j G_t^(j) + ε)
  over the group, std the sample std (n − 1, as GRPO's implementations, e.g. TRL's
  ``GRPOTrainer``, compute it) (Shao et al. 2024, DeepSeekMath, §4.1.2, outcome supervision).
  *Biased*: the mean includes episode i and the std divides by a statistic of the same
  episodes; it rescales each group's Ψ to unit spread.
* :class:`OptimalConstant` (``optimal_constant``): the constant b that minimises the variance
  of one episode's gradient estimate g = Σ_t w_t (G_t − b) ∇ln π(A_t|S_t) = X − b Y, with
  X = Σ_t w_t G_t ∇ln π_t and Y = Σ_t w_t ∇ln π_t: b* = E[X·Y] / E[|Y|²] (d/db E|X − bY|² = 0;
  Greensmith et al. 2004; Peters & Schaal 2008, Neural Networks 21, "optimal baselines"). When
  G_t = G for every t (one reward at the end, γ = 1) X = G Y and this is the textbook
  b* = E[|Y|² G] / E[|Y|²].
  Estimated leave-one-out, b*_(i) = Σ_{j≠i} X_j·Y_j / Σ_{j≠i} |Y_j|² over the batch's other
  episodes, so that b never depends on episode i and the gradient stays unbiased.

Groups are episode slots ``[g·k, (g+1)·k)`` of each agent's batch; the collector lays the k
episodes that share a reset seed out that way (:mod:`reinforce_lab.episode_groups`). Returns
after an episode's end are 0 (padding), which is the absorbing-state convention above. With
episodes of one fixed length and the only reward at the end (the setting of Kool et al. and
GRPO) G_t^(i) is the same for every t and ``rloo``/``group_norm`` are exactly the papers'.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .advantages import NORMALIZE_EPS, AdvantageEstimator, Advantages
from .policies import Policy
from .rollout import EpisodeBatch

GROUP_ADVANTAGES = ("rloo", "group_norm")  # estimators that need algo.group_size ≥ 2


def grouped(x: Tensor, group_size: int) -> Tensor:
    """``[S, E, T] → [S, E/k, k, T]``: slots ``[g·k, (g+1)·k)`` are group g."""
    s, e = x.shape[:2]
    if e % group_size:
        raise ValueError(f"{e} episodes do not split into groups of {group_size}; "
                         "allowed: algo.episodes_per_update a multiple of algo.group_size")
    return x.reshape(s, e // group_size, group_size, *x.shape[2:])


def present(batch: EpisodeBatch) -> Tensor:
    """``[S, E, 1]`` 1 for episode slots that hold an episode (an agent that has stopped has none)."""
    return (batch.lengths > 0).to(batch.mask.dtype).unsqueeze(-1)


class BatchMean(AdvantageEstimator):
    """Ψ_t = G_t − (1/E) Σ_e G_t^(e): the batch's mean return-to-go at step t (module docstring)."""

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        n = present(batch).sum(1, keepdim=True).clamp_min(1)  # [S, 1, 1] episodes of each agent
        baseline = returns.sum(1, keepdim=True) / n  # padding and ended episodes add G_t = 0
        return Advantages(returns, weights, psi=(returns - baseline) * batch.mask)


class GroupBaseline(AdvantageEstimator):
    """Base of the estimators over groups of ``group_size`` episodes (slots ``[g·k, (g+1)·k)``)."""

    def __init__(self, gamma: float, gamma_t: bool = False, group_size: int = 2) -> None:
        super().__init__(gamma, gamma_t)
        if group_size < 2:
            raise ValueError(f"algo.group_size={group_size}; allowed: an integer ≥ 2 (a group's episodes "
                             "are each other's baseline)")
        self.group_size = int(group_size)


class LeaveOneOut(GroupBaseline):
    """RLOO: Ψ_t^(i) = G_t^(i) − mean of the group's other k−1 returns-to-go at step t (Kool et al. 2019)."""

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        g = grouped(returns, self.group_size)  # [S, G, k, T]
        n = grouped(present(batch), self.group_size).sum(2, keepdim=True)  # [S, G, 1, 1] members present
        others = (g.sum(2, keepdim=True) - g) / (n - 1).clamp_min(1)
        return Advantages(returns, weights, psi=(g - others).reshape(returns.shape) * batch.mask)


class GroupNorm(GroupBaseline):
    """GRPO: Ψ_t^(i) = (G_t^(i) − group mean) / (group sample std + ε) at step t (Shao et al. 2024)."""

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        g = grouped(returns, self.group_size)  # [S, G, k, T]
        n = grouped(present(batch), self.group_size).sum(2, keepdim=True)  # [S, G, 1, 1]
        mean = g.sum(2, keepdim=True) / n.clamp_min(1)
        # Absent slots (a stopped agent) are masked out of the spread as well as the mean.
        dev = (g - mean) * grouped(present(batch), self.group_size)
        std = (dev.pow(2).sum(2, keepdim=True) / (n - 1).clamp_min(1)).sqrt()
        psi = (g - mean) / (std + NORMALIZE_EPS)
        return Advantages(returns, weights, psi=psi.reshape(returns.shape) * batch.mask)


class OptimalConstant(AdvantageEstimator):
    """Ψ_t^(i) = G_t^(i) − b*_(i), the leave-one-out variance-optimal constant (module docstring).

    Needs every episode's score vectors X_i, Y_i: one forward and backward pass per episode
    slot through π, at the θ the batch was sampled with (exact, no approximation).
    """

    def __init__(self, policy: Policy, gamma: float, gamma_t: bool = False) -> None:
        super().__init__(gamma, gamma_t)
        self.policy = policy

    def __call__(self, batch: EpisodeBatch) -> Advantages:
        returns, weights = self.returns_and_weights(batch)
        xy, yy = self.episode_products(batch, returns, weights)  # [S, E] each
        # Leave one out: the batch totals minus the episode's own terms.
        num, den = xy.sum(1, keepdim=True) - xy, yy.sum(1, keepdim=True) - yy
        baseline = torch.where(den > 0, num / den.where(den > 0, torch.ones_like(den)), torch.zeros_like(den))
        return Advantages(returns, weights, psi=(returns - baseline.unsqueeze(-1)) * batch.mask)

    def episode_products(self, batch: EpisodeBatch, returns: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """``X_i·Y_i`` and ``|Y_i|²`` of every episode slot, per agent (``[S, E]`` each).

        Every parameter has a leading agent dimension (:mod:`reinforce_lab.policies`), so the
        gradient of the sum over agents is each agent's own gradient in its slice.
        """
        params = [p for p in self.policy.parameters() if p.requires_grad]
        s_count, e_count = batch.mask.shape[:2]
        xy = torch.zeros(s_count, e_count, dtype=returns.dtype, device=returns.device)
        yy = torch.zeros_like(xy)
        if not params:  # nothing is trained: every score is 0, and so is b
            return xy, yy
        with torch.enable_grad():  # the book's per-step loop evaluates Ψ under no_grad
            for e in range(e_count):
                if not bool(batch.lengths[:, e].any()):
                    continue  # no agent has an episode in this slot: X = Y = 0
                log_prob = self.policy.log_prob(batch.obs[:, e:e + 1], batch.actions[:, e:e + 1])  # [S, 1, T]
                w = (weights * batch.mask)[:, e:e + 1].to(log_prob.dtype)
                y = torch.autograd.grad(log_prob, params, grad_outputs=w, retain_graph=True, allow_unused=True)
                x = torch.autograd.grad(log_prob, params, grad_outputs=w * returns[:, e:e + 1].to(w.dtype),
                                        allow_unused=True)
                for gx, gy in zip(x, y):
                    if gx is not None and gy is not None:
                        xy[:, e] += (gx.reshape(s_count, -1) * gy.reshape(s_count, -1)).sum(-1).to(xy.dtype)
                        yy[:, e] += gy.reshape(s_count, -1).pow(2).sum(-1).to(yy.dtype)
        return xy, yy
