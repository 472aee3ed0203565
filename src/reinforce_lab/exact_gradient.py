"""The exact J(θ) = v_π(s0) of the short corridor and its gradient: ground truth for estimators.

S&B Example 13.1 (Fig. 13.1): with aliased states the policy is the linear softmax in the
book's features ``x(s, right) = [1, 0]``, ``x(s, left) = [0, 1]``, so it controls one number,
``p = π(right) = σ(θ_right − θ_left)``. Here θ is laid out as :class:`~reinforce_lab.policies.PreferencePolicy`
lays it out: ``θ[0]`` is the preference of left, ``θ[1]`` of right.

v_π of the three non-terminal states solves the Bellman equations (S&B eq. 3.14) with
reward −1 per step and discount γ::

    v0 = −1 + γ (p v1 + (1−p) v0)          left in s0 bumps into the wall
    v1 = −1 + γ (p v0 + (1−p) v2)          s1 reverses the actions
    v2 = −1 + γ (1−p) v1                   right in s2 reaches the goal (v = 0)

i.e. ``(I − γ P_π) v = −1``, a 3×3 linear system solved exactly in float64. ∇_θ J comes from
autograd through the solve (``torch.linalg.solve`` is differentiable); for γ = 1 it is
checked against the closed form ``J = (2p − 4) / (p (1 − p))`` in the tests.

**The probability floor** (``policy.min_prob``, :mod:`reinforce_lab.probability_floor`) makes
two gradients differ where it binds: the gradient of the objective the floored policy has,
which is 0 there (p is clipped, J no longer moves with θ; ``straight_through=False``), and the
expectation of the score-function estimator this code computes, whose score is that of a
softmax in logits shifted by a constant held out of the graph, i.e. the gradient of J
through ``floor_probs`` itself (``straight_through=True``). Where the floor does not bind the
two are equal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .probability_floor import floor_probs

DTYPE = torch.float64


def p_right(theta: Tensor, min_prob: float = 0.0, straight_through: bool = False) -> Tensor:
    """π(right) of the preference policy ``theta`` (``[..., 2]``: left, right), floored at ``min_prob``.

    ``straight_through`` floors as the policy does (a constant shift of the logits, so the
    gradient is the un-floored softmax's); otherwise p is clamped, whose gradient is 0 where it binds.
    """
    theta = theta.to(DTYPE)
    if min_prob > 0 and straight_through:
        return torch.softmax(floor_probs(theta, min_prob), dim=-1)[..., 1]
    p = torch.softmax(theta, dim=-1)[..., 1]
    return p.clamp(min_prob, 1.0 - min_prob) if min_prob > 0 else p


def state_values(p: Tensor, gamma: float = 1.0) -> Tensor:
    """``[..., 3]`` v_π(s0), v_π(s1), v_π(s2) for π(right) = ``p`` (``[...]``), by solving ``(I − γP) v = −1``.

    The system is singular for γ = 1 and p ∈ {0, 1} (the episode never ends; v = −∞).
    """
    p = p.to(DTYPE)
    q, zero, g = 1.0 - p, torch.zeros_like(p), float(gamma)
    # Rows of P_π over the non-terminal states (the terminal state has value 0 and drops out).
    transitions = torch.stack([
        torch.stack([q, p, zero], -1),       # s0: left stays (wall), right → s1
        torch.stack([p, zero, q], -1),       # s1: right → s0, left → s2 (reversed)
        torch.stack([zero, q, zero], -1),    # s2: left → s1, right → goal
    ], -2)
    eye = torch.eye(3, dtype=DTYPE).expand_as(transitions)
    rhs = -torch.ones(*p.shape, 3, 1, dtype=DTYPE)
    return torch.linalg.solve(eye - g * transitions, rhs).squeeze(-1)


def start_value(theta: Tensor, gamma: float = 1.0, min_prob: float = 0.0, straight_through: bool = False) -> Tensor:
    """J(θ) = v_π(s0) (S&B eq. 13.4) for preferences ``theta`` (``[..., 2]``) → ``[...]``."""
    return state_values(p_right(theta, min_prob, straight_through), gamma)[..., 0]


def exact_gradient(theta: Tensor, gamma: float = 1.0, min_prob: float = 0.0,
                   straight_through: bool = False) -> Tensor:
    """∇_θ J(θ) (``[..., 2]``, float64) by autograd through the Bellman solve.

    Every leading index is its own θ (e.g. one per agent): J is summed over them before the
    backward pass, which leaves each slice's gradient its own.

    Args:
        theta: preferences, ``[..., 2]`` (left, right).
        gamma: the discount of J; the book's Fig. 13.1 uses γ = 1.
        min_prob: the policy's floor on probabilities (0: none).
        straight_through: the gradient the code's score-function estimator is unbiased for
            (see the module docstring); equal to the true one where the floor does not bind.
    """
    leaf = theta.detach().to(DTYPE).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(start_value(leaf, gamma, min_prob, straight_through).sum(), leaf)
    return grad


def preferences_for(p: float) -> Tensor:
    """θ = [ln(1−p), ln p], centred (as ``PreferencePolicy(init_probs=[1−p, p])`` sets it)."""
    logs = torch.log(torch.tensor([1.0 - p, p], dtype=DTYPE))
    return logs - logs.mean()
