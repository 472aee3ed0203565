"""Actor–critic with eligibility traces (episodic): S&B §13.5, boxed pseudocode p. 332.

Per episode z^θ ← 0, z^w ← 0, I ← 1; per step, with δ ← R + γ v̂(S', w) − v̂(S, w)
(v̂(S', w) = 0 when S' is terminal):

    z^w ← γ λ^w z^w + ∇v̂(S, w)             w ← w + α^w δ z^w
    z^θ ← γ λ^θ z^θ + I ∇ln π(A|S, θ)       θ ← θ + α^θ δ z^θ        I ← γ I

No per-step loss reproduces this rule: z^θ is a sum of gradients taken at *past*
parameters θ_k, multiplied by the *current* δ_t, and no function of the current θ alone has
that gradient (docs/loss-forms.md, section 8). It is therefore written as the book's rule,
a form of ``loss=update_rule loss.sequential=true`` (:mod:`reinforce_lab.book_rule`), and
with λ^θ = λ^w = 0 it is that one-step actor-critic (§13.5) step for step.

As in :class:`~reinforce_lab.book_rule.UpdateRule`'s sequential loop: the episodes were
collected with the θ the batch started from (the book samples each A_t with the θ of that
step), I is ``algo.gamma_t``'s weight γ^t (1 when off), every step's update is divided by
the E episodes of the batch (E = 1 is the book), ``algo.normalize_returns`` standardises
the δ that multiplies z^θ with the batch statistics computed before the first step (the
critic uses δ itself), and an entropy bonus β ∇H(π(·|S_t)) / E is added to each θ step
outside the trace. Tensors are per agent, ``[S, ...]``; padded steps update nothing.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .advantages import TDZero, standardise
from .book_rule import ascend, score_direction
from .numerics import check_finite, per_agent_sq_norm
from .objectives import Evaluation, PolicyGradientLoss
from .rollout import EpisodeBatch


def per_agent(tensors: Sequence[Tensor | None], scale: Tensor) -> list[Tensor | None]:
    """Each agent's slice of every tensor times its ``scale`` (``[S]``; every parameter has a leading S)."""
    return [None if g is None else g * scale.to(g.dtype).reshape(-1, *([1] * (g.dim() - 1))) for g in tensors]


def decay_and_add(trace: list[Tensor], decay: float, grads: Sequence[Tensor | None]) -> None:
    """``z ← decay · z + ∇`` in place (a parameter with no gradient only decays)."""
    with torch.no_grad():
        for z, g in zip(trace, grads):
            z.mul_(decay)
            if g is not None:
                z.add_(g)


class TraceRule:
    """The book's actor–critic with eligibility traces z^θ, z^w (S&B §13.5, p. 332).

    Args:
        loss: the ``log_prob`` loss with a :class:`~reinforce_lab.advantages.TDZero` estimator
            (its γ, v̂ and normalisation are used; its terms are logged).
        step_size: α^θ (``optimizer.lr``).
        baseline_step_size: α^w (``algo.baseline_lr``).
        lambda_theta: λ^θ ∈ [0, 1], the actor's trace decay.
        lambda_w: λ^w ∈ [0, 1], the critic's trace decay.
    """

    def __init__(self, loss: PolicyGradientLoss, step_size: float, baseline_step_size: float,
                 lambda_theta: float, lambda_w: float) -> None:
        if loss.loss_form != "log_prob" or not isinstance(loss.estimator, TDZero):
            raise ValueError("eligibility traces need the log_prob loss with advantage=td (the TD error δ)")
        if step_size is None or baseline_step_size is None:
            raise ValueError("eligibility traces need step_size (α^θ) and baseline_step_size (α^w)")
        for name, lam in (("lambda_theta", lambda_theta), ("lambda_w", lambda_w)):
            if not 0.0 <= float(lam) <= 1.0:
                raise ValueError(f"{name}={lam}; allowed: a number in [0, 1]")
        self.loss, self.estimator = loss, loss.estimator
        self.step_size, self.baseline_step_size = float(step_size), float(baseline_step_size)
        self.lambda_theta, self.lambda_w = float(lambda_theta), float(lambda_w)

    def __call__(self, batch: EpisodeBatch) -> dict[str, float]:
        """Run the pseudocode over every episode of ``batch`` in order; returns the metrics to log.

        The metrics are the ``log_prob`` loss terms at the θ and w the batch was sampled with,
        plus ``train/grad_norm``: the per-agent norm of the summed θ steps δ z^θ / E.
        """
        with torch.no_grad():
            ev = self.loss.evaluate(batch)
            metrics = self.loss.terms(batch, ev).metrics()
        params, vparams = self.loss.parameters(), list(self.estimator.value_fn.parameters())
        n_agents = batch.mask.shape[0]
        sq_norm = torch.zeros(n_agents, dtype=batch.mask.dtype, device=batch.mask.device)
        for e in range(batch.num_episodes):
            z_theta = [torch.zeros_like(p) for p in params]  # z^θ ← 0, z^w ← 0 at every episode's start
            z_w = [torch.zeros_like(p) for p in vparams]
            for t in range(int(batch.lengths[:, e].max())):
                direction = self._step(batch, ev, params, vparams, z_theta, z_w, e, t)
                sq_norm += per_agent_sq_norm(direction, n_agents)
        check_finite("gradient norm", float(sq_norm.sum()))
        metrics["train/grad_norm"] = float(sq_norm.sqrt().mean())
        return metrics

    def _step(self, batch: EpisodeBatch, ev: Evaluation, params: list[Tensor], vparams: list[Tensor],
              z_theta: list[Tensor], z_w: list[Tensor], e: int, t: int) -> list[Tensor | None]:
        """One step of the pseudocode for every agent at once; returns θ's step direction."""
        m, n_ep, gamma = batch.mask[:, e, t], batch.num_episodes, self.estimator.gamma
        v = self.estimator.values(batch.obs[:, e, t])  # [S], with gradient w.r.t. w
        target = self.estimator.step_target(batch, ev.advantages.returns, e, t)  # R + γ v̂(S', w)
        delta = ((target - v) * m).detach()
        grad_v = torch.autograd.grad(v, vparams, grad_outputs=m, allow_unused=True)  # ∇v̂(S, w), 0 on padding
        decay_and_add(z_w, gamma * self.lambda_w, grad_v)
        # I ∇ln π(A|S, θ): I = γ^t (algo.gamma_t) is the estimator's weight, 0 on padding.
        decay_and_add(z_theta, gamma * self.lambda_theta, self._score(batch, params, ev.advantages.weights[:, e, t], e, t))
        psi = delta if ev.stats is None else standardise(delta, ev.stats.mean.reshape(-1), ev.stats.std.reshape(-1), m)
        ascend(vparams, per_agent(z_w, delta / n_ep), self.baseline_step_size)  # w ← w + α^w δ z^w
        direction = per_agent(z_theta, psi / n_ep)  # θ ← θ + α^θ δ z^θ
        beta = self.loss.entropy_coef
        if beta > 0:  # the entropy bonus of the step, not traced (none in the book)
            s = batch.obs[:, e, t]
            bonus = torch.autograd.grad(self.loss.policy.entropy(s), params, grad_outputs=beta * m / n_ep,
                                        allow_unused=True)
            direction = [d if b is None else (b if d is None else d + b) for d, b in zip(direction, bonus)]
        ascend(params, direction, self.step_size)
        return direction

    def _score(self, batch: EpisodeBatch, params: list[Tensor], coefficient: Tensor, e: int,
               t: int) -> Sequence[Tensor | None]:
        """``c ∇ln π(A_t|S_t, θ)`` per agent for ``c`` (``[S]``), at the current θ."""
        policy, s, a = self.loss.policy, batch.obs[:, e, t], batch.actions[:, e, t]
        if hasattr(policy, "grad_log_prob") and len(params) == 1:  # closed form (S&B eq. 13.9)
            return per_agent(policy.grad_log_prob(s, a), coefficient)
        return score_direction(params, policy.log_prob(s, a), coefficient)
