"""The book's per-step rule for a softmax in linear preferences, in closed form, all agents at once (numpy).

For ``policy=preferences`` (S&B Example 13.1: h(a, θ) = θᵀx(a) with one-hot x) the eligibility
vector is ``∇ ln π(a|θ) = x(a) − Σ_b π(b|θ) x(b) = onehot(a) − π`` (S&B eq. 13.9, Exercise 13.3);
with the probability floor of :mod:`reinforce_lab.probability_floor` it is ``onehot(a) − π_ε``
(the floor is a shift of the logits held out of the gradient). The sequential rule applies
θ ← θ + α c_t ∇ln π(A_t|θ_t) after every step t, with c_t = w_t Ψ_t / E (§13.3); with
REINFORCE with baseline (§13.4) and v̂(s, w) = wᵀx(s) + b it first moves w ← w + (α_w/E) δ_t x(S_t)
and takes Ψ_t = δ_t = G_t − v̂(S_t, w) at the current w.

Here each step is a few numpy operations on ``[S, n]`` (``[S]`` with two actions) arrays — π,
the floor computed once, the step — instead of torch calls, in θ's dtype. With two actions
(the corridor) π(1) = σ(θ₁ − θ₀), the floor is the clip of π(1) to [ε, 1 − ε], and a step moves
θ₁ by α c_t (1[A_t = 1] − π(1)) and θ₀ by the opposite, so only θ₀ − θ₁ is carried through the loop.
Same maths as autograd, other rounding: see :mod:`reinforce_lab.closed_form_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .probability_floor import floor_probs_np


@dataclass
class LinearCritic:
    """v̂(s, w) = wᵀx(s) + b of every agent, moved in place by the per-step rule of S&B §13.4.

    Attributes:
        weight: ``[S, d]`` w.
        bias: ``[S]`` b, or None when v̂ has none (the book's v̂ for Fig. 13.2).
        step_size: α_w / E (E episodes per update).
        obs, targets, mask: ``[T, S, d]`` x(S_t), ``[T, S]`` G_t and the real-step mask of the episode slot.
        mean, std: ``[S]`` Ψ's batch statistics when Ψ is standardised, else None.
        eps: the standardisation's ε (:data:`~reinforce_lab.advantages.NORMALIZE_EPS`).
    """

    weight: np.ndarray
    bias: np.ndarray | None
    step_size: float
    obs: np.ndarray | None = None
    targets: np.ndarray | None = None
    mask: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    eps: float = 1e-8

    def step(self, t: int) -> np.ndarray:
        """δ_t = G_t − v̂(S_t, w) on real steps; w ← w + (α_w/E) δ_t x(S_t); returns Ψ_t (δ_t, or standardised)."""
        x, mask = self.obs[t], self.mask[t]
        v = (x * self.weight).sum(1)
        if self.bias is not None:
            v += self.bias
        delta = (self.targets[t] - v) * mask
        scaled = delta * self.step_size
        self.weight += scaled[:, None] * x
        if self.bias is not None:
            self.bias += scaled
        if self.mean is None:
            return delta
        return (delta - self.mean) / (self.std + self.eps) * mask


def softmax_into(theta: np.ndarray, out: np.ndarray) -> np.ndarray:
    """π(·|θ) = softmax of the preferences of every agent (``[S, n]``), written into ``out``."""
    np.subtract(theta, theta.max(1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(1, keepdims=True)
    return out


def _coefficients(weight: np.ndarray, psi: np.ndarray | None, critic: LinearCritic | None, t: int,
                  out: np.ndarray) -> np.ndarray:
    """c_t = w_t Ψ_t / E (``weight`` holds w_t / E), Ψ_t from the critic when there is one."""
    return np.multiply(weight[t], critic.step(t) if critic is not None else psi[t], out=out[t])


def ascend_episode(theta: np.ndarray, actions: np.ndarray, weight: np.ndarray, psi: np.ndarray | None,
                   step_size: float, min_prob: float, critic: LinearCritic | None = None) -> np.ndarray:
    """The per-step rule over one episode slot of every agent; θ (and the critic's w) move in place.

    Args:
        theta: ``[S, n]`` preferences.
        actions: ``[T, S]`` A_t (time first: each step is one contiguous row).
        weight: ``[T, S]`` w_t / E (γ^t or 1 on real steps, 0 on padding).
        psi: ``[T, S]`` Ψ_t fixed before the loop, or None when ``critic`` gives it step by step.
        step_size: α_θ.
        min_prob: the probability floor ε (0: none).
        critic: the linear v̂ of REINFORCE with baseline, or None.

    Returns:
        ``[S]`` Σ_t ‖c_t ∇ln π(A_t|θ_t)‖², the squared norm of the applied directions.
    """
    if theta.shape[1] == 2:
        return _ascend_two(theta, actions, weight, psi, step_size, min_prob, critic)
    onehot = np.eye(theta.shape[1], dtype=theta.dtype)[actions]  # [T, S, n] x(A_t)
    probs = np.empty_like(onehot)  # π_ε(·|θ_t) of every step, kept for the norms
    coef = np.empty_like(weight)
    for t in range(len(actions)):
        p = softmax_into(theta, probs[t])
        if min_prob > 0 and p.min() < min_prob:  # the floor, once per step
            p[...] = floor_probs_np(p, min_prob)
        c = _coefficients(weight, psi, critic, t, coef)
        step = onehot[t] - p
        step *= (c * step_size)[:, None]
        theta += step
    directions = (onehot - probs) * coef[..., None]
    return (directions * directions).sum((0, 2))


def _ascend_two(theta: np.ndarray, actions: np.ndarray, weight: np.ndarray, psi: np.ndarray | None,
                step_size: float, min_prob: float, critic: LinearCritic | None) -> np.ndarray:
    """:func:`ascend_episode` with two actions: π(1) = σ(θ₁ − θ₀), only the difference is carried.

    Each step moves θ₁ by g = α c_t (1[A_t = 1] − π(1)) and θ₀ by −g (eq. 13.9), so θ₀ + θ₁ stays
    and u = θ₀ − θ₁ moves by −2g; θ is rebuilt from u after the episode. Five to seven numpy
    operations per step; no reductions over the action axis.
    """
    right = (actions == 1).astype(theta.dtype)  # [T, S]
    probs = np.empty_like(right)  # π_ε(1|θ_t)
    coef = np.empty_like(weight)
    u = theta[:, 0] - theta[:, 1]
    u0 = u.copy()
    two_alpha = 2 * step_size if critic is not None else None
    floor = min_prob > 0
    if critic is None:  # c_t fixed before the loop: fold 2α into it once
        np.multiply(weight, psi, out=coef)
        scale = coef * (2 * step_size)
        floor = floor and _may_floor(u, np.abs(scale).sum(0), min_prob)
    with np.errstate(over="ignore"):  # exp(u) = inf is π(1) = 0, as σ gives it
        for t in range(len(actions)):
            p = probs[t]
            np.exp(u, out=p)
            p += 1
            np.reciprocal(p, out=p)  # σ(θ₁ − θ₀) = 1 / (1 + e^{θ₀ − θ₁})
            if floor:  # the floor: with two actions, π(1) clipped to [ε, 1 − ε]
                np.maximum(p, min_prob, out=p)
                np.minimum(p, 1 - min_prob, out=p)
            g = right[t] - p
            if critic is None:
                g *= scale[t]
            else:
                g *= _coefficients(weight, psi, critic, t, coef) * two_alpha
            u -= g
    half = (u - u0) / 2  # θ₀ moved by half of u's change, θ₁ by the opposite
    theta[:, 0] += half
    theta[:, 1] -= half
    return 2 * (coef * coef * (right - probs) ** 2).sum(0)  # ‖c (onehot − π)‖² = 2 c² (1[A=1] − π(1))²


def _may_floor(u: np.ndarray, reach: np.ndarray, min_prob: float) -> bool:
    """Whether the floor can bind in this episode: π(1) = σ(−u) ∈ [ε, 1 − ε] ⟺ |u| ≤ ln((1 − ε)/ε).

    A step moves u by at most |2α c_t| (|1[A=1] − π(1)| ≤ 1), so if |u| plus all of them stays
    inside — with a margin far above rounding — every clip would return π unchanged and is skipped.
    """
    edge = np.log((1 - min_prob) / min_prob) - 1e-3
    return bool((np.abs(u) + reach).max() > edge)

