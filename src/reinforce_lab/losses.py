"""Loss forms of the one policy-gradient estimator, as pure functions.

All take per-step tensors shaped ``[..., E, T]`` (optional agents × episodes × time, 0 on
padding) and return a scalar to *minimise*: summed over time, averaged over the ``E``
episodes and summed over agents (so each agent's gradient is its own). With one episode
per update this is exactly the sum of the book's per-step updates (S&B §13.3).

The general recipe (:func:`surrogate`): an update ``θ ← θ + α C ∇_θ g(θ)`` with a
coefficient ``C`` that does not depend on θ (or whose dependence we ignore) is one
gradient-*descent* step on ``L(θ) = −stop_grad(C) · g(θ)``, because
``−∇L = C ∇g``. REINFORCE is the case ``C = γ^t Ψ_t`` and ``g = ln π(A_t|S_t, θ)``. See
docs/loss-forms.md for the derivation and for why the loss's *value* says nothing about
how good the policy is.
"""

from __future__ import annotations

from torch import Tensor


def surrogate(coefficient: Tensor, objective: Tensor) -> Tensor:
    """Loss whose gradient-descent step is the ascent update ``θ ← θ + α C ∇g(θ)``.

    Args:
        coefficient: ``C``, any shape; treated as a constant (gradient stopped).
        objective: ``g(θ)``, broadcastable with ``coefficient``.

    Returns:
        The scalar ``−Σ stop_grad(C) · g(θ)``.
    """
    return -(coefficient.detach() * objective).sum()


def log_prob_loss(log_prob: Tensor, psi: Tensor, weights: Tensor) -> Tensor:
    """``loss=log_prob``: ``L = −(1/E) Σ_e Σ_t w_t Ψ_t ln π(A_t|S_t, θ)`` (S&B §13.3, eq. 13.8).

    Args:
        log_prob: ``[E, T]`` ``ln π(A_t|S_t, θ)`` of the taken actions (with gradient).
        psi: ``[E, T]`` Ψ_t: returns G_t, or advantages G_t − b(S_t) (gradient stopped here).
        weights: ``[E, T]`` w_t = γ^t or 1, and 0 on padding.
    """
    _check(log_prob, psi, weights)
    return surrogate(weights * psi, log_prob) / log_prob.shape[-2]


def cross_entropy_loss(nll: Tensor, psi: Tensor, weights: Tensor) -> Tensor:
    """``loss=cross_entropy``: ``L = (1/E) Σ w_t Ψ_t · CE(π(·|S_t), A_t)``.

    ``CE`` is ``F.cross_entropy`` with the taken action as label (discrete) or the Gaussian
    negative log-likelihood of the taken action (continuous). Both equal ``−ln π(A_t|S_t)``,
    so this is :func:`log_prob_loss` term by term: "supervised learning on your own
    actions, each example weighted by how well it turned out".

    Args:
        nll: ``[E, T]`` cross-entropy / NLL of the taken actions (with gradient).
        psi: ``[E, T]`` Ψ_t (gradient stopped here).
        weights: ``[E, T]`` w_t, 0 on padding.
    """
    _check(nll, psi, weights)
    return surrogate(weights * psi, -nll) / nll.shape[-2]


def entropy_loss(entropy: Tensor, mask: Tensor) -> Tensor:
    """``−(1/E) Σ_t H(π(·|S_t))``: added with coefficient β it rewards spread-out policies."""
    _check(entropy, mask)
    return -(entropy * mask).sum() / entropy.shape[-2]


def value_loss(values: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """``(1/E) Σ_t ½ (target_t − v̂(S_t, w))²``; its descent step is ``w ← w + α_w δ ∇v̂`` (S&B §13.4)."""
    _check(values, targets, mask)
    return 0.5 * (((targets.detach() - values) ** 2) * mask).sum() / values.shape[-2]


def _check(*tensors: Tensor) -> None:
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(f"shape mismatch: {tuple(shape)} vs {tuple(t.shape)} (expected [..., E, T] each)")
    if len(shape) < 2:
        raise ValueError(f"expected [..., E, T] tensors, got shape {tuple(shape)}")
