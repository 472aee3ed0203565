"""``loss=update_rule``: the book's update rule applied literally, with no loss to minimise.

θ ← θ + α Σ_t (w_t Ψ_t / E) ∇ ln π(A_t|S_t, θ) [+ β ∇H] and, with a value function,
w ← w + α_w Σ_t (δ_t / E) ∇v̂(S_t, w) (S&B §13.3–§13.5). Autograd gives the
vector-Jacobian products Σ_t c_t ∇ ln π_t directly. Batched, every step's term is taken
at the θ the batch was sampled with (one SGD step on the ``log_prob`` loss, bit for bit);
sequential, θ and w move after every step, as in the book's boxed pseudocode.

Both log the metrics of :meth:`~reinforce_lab.objectives.LossTerms.metrics`, computed at
the θ and w the batch was sampled with, plus ``train/grad_norm`` of the applied direction.

For ``policy=preferences`` the sequential loop runs in closed form, without autograd or
per-step torch calls (:mod:`reinforce_lab.closed_form_rule`, S&B eq. 13.9): chosen automatically
where it fits; ``loss.closed_form=false`` keeps the torch loop below. Same maths, other rounding
(float32 runs differ from the torch loop in the last bits; see that module).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .advantages import ValueBaseline, standardise
from .closed_form_rule import ClosedFormRule
from .numerics import check_finite, grad_norm, per_agent_sq_norm
from .objectives import Evaluation, PolicyGradientLoss
from .rollout import EpisodeBatch


def ascend(params: Sequence[Tensor], direction: Sequence[Tensor | None], step_size: float) -> None:
    """``p ← p + α d`` in place for every parameter with a direction."""
    with torch.no_grad():
        for p, d in zip(params, direction):
            if d is not None:
                p.add_(d, alpha=step_size)


def score_direction(params: Sequence[Tensor], log_prob: Tensor, coefficient: Tensor,
                    entropy: Tensor | None = None, entropy_weight: Tensor | None = None) -> tuple[Tensor | None, ...]:
    """``Σ c_t ∇ ln π_t [+ Σ β_t ∇H_t]`` as one vector-Jacobian product (no loss scalar)."""
    outs, grad_outs = [log_prob], [coefficient]
    if entropy is not None:
        outs.append(entropy)
        grad_outs.append(entropy_weight)
    return torch.autograd.grad(outs, list(params), grad_outputs=grad_outs, allow_unused=True)


class UpdateRule:
    """The literal rule θ ← θ + α w_t Ψ_t ∇ ln π, batched or step by step.

    Args:
        loss: the ``log_prob`` loss whose Ψ, weights and terms the rule uses.
        step_size: α_θ (``optimizer.lr``).
        baseline_step_size: α_w for the value function (required with one).
        sequential: apply the rule one step at a time in episode order (the book's pseudocode).
        closed_form: sequential only: run the loop in closed form where it fits
            (:class:`~reinforce_lab.closed_form_rule.ClosedFormRule`); false: always the torch loop.
    """

    def __init__(self, loss: PolicyGradientLoss, step_size: float, baseline_step_size: float | None = None,
                 sequential: bool = False, closed_form: bool = True) -> None:
        if loss.loss_form != "log_prob":
            raise ValueError("loss=update_rule is the rule of the log_prob form")
        if step_size is None or (loss.estimator.value_fn is not None and baseline_step_size is None):
            raise ValueError("loss=update_rule needs step_size (and baseline_step_size with a value function)")
        self.loss, self.step_size, self.baseline_step_size = loss, float(step_size), baseline_step_size
        self.sequential = bool(sequential)
        self.closed_form = (ClosedFormRule(loss, self.step_size, baseline_step_size)
                            if self.sequential and closed_form and ClosedFormRule.fits(loss) else None)

    def __call__(self, batch: EpisodeBatch) -> dict[str, float]:
        """Apply one update from ``batch`` in place; returns the metrics to log."""
        return self._sequential(batch) if self.sequential else self._batched(batch)

    def _batched(self, batch: EpisodeBatch) -> dict[str, float]:
        loss, n_ep = self.loss, batch.num_episodes
        ev = loss.evaluate(batch)
        metrics = loss.terms(batch, ev).metrics()
        check_finite("loss", metrics["train/loss"])
        params, adv = loss.parameters(), ev.advantages
        entropy_weight = loss.entropy_coef * batch.mask / n_ep if ev.entropy is not None else None
        direction = score_direction(params, ev.log_prob, adv.weights * ev.psi / n_ep, ev.entropy, entropy_weight)
        metrics["train/grad_norm"] = grad_norm(direction, batch.mask.shape[0])
        check_finite("gradient norm", metrics["train/grad_norm"])
        ascend(params, direction, self.step_size)
        if adv.values is not None:  # w ← w + α_w Σ_t (δ_t / E) ∇v̂(S_t, w)
            vparams = list(loss.estimator.value_fn.parameters())
            delta = (adv.value_targets - adv.values.detach()) * batch.mask / n_ep
            ascend(vparams, torch.autograd.grad(adv.values, vparams, grad_outputs=delta, allow_unused=True),
                   self.baseline_step_size)
        return metrics

    def _sequential(self, batch: EpisodeBatch) -> dict[str, float]:
        """The book's pseudocode: for each episode, for t = 0…T−1, update w then θ in place.

        Ψ_t uses the *current* w at step t (S&B §13.4/§13.5 pseudocode); when normalising,
        the batch mean/std of Ψ computed before the first step is applied to every step, so
        that ``sequential=false`` is this loop with θ frozen. All agents take their step t at
        once (tensors ``[S, ...]``); an agent whose episode is shorter gets a zero
        coefficient, i.e. no update, on the padded steps.
        """
        if self.closed_form is not None:  # the same loop in numpy (policy=preferences)
            return self._finish(*self.closed_form(batch))
        with torch.no_grad():  # the loss terms at the θ and w the batch was sampled with
            ev = self.loss.evaluate(batch)
            metrics = self.loss.terms(batch, ev).metrics()
        params, mask = self.loss.parameters(), batch.mask
        sq_norm = torch.zeros(mask.shape[0], dtype=mask.dtype, device=mask.device)
        for e in range(batch.num_episodes):
            for t in range(int(batch.lengths[:, e].max())):
                psi = self._critic_step(batch, ev, e, t)  # [S]
                coefficient = ev.advantages.weights[:, e, t] * psi / batch.num_episodes
                direction = self._actor_direction(batch, params, coefficient, e, t)
                sq_norm += per_agent_sq_norm(direction, mask.shape[0])
                ascend(params, direction, self.step_size)
        return self._finish(metrics, sq_norm)

    @staticmethod
    def _finish(metrics: dict[str, float], sq_norm: Tensor) -> dict[str, float]:
        """``train/grad_norm`` from the ``[S]`` squared norms of the applied directions, checked."""
        check_finite("gradient norm", float(sq_norm.sum()))  # (parameters are checked after every update too)
        metrics["train/grad_norm"] = float(sq_norm.sqrt().mean())
        return metrics

    def _critic_step(self, batch: EpisodeBatch, ev: Evaluation, e: int, t: int) -> Tensor:
        """Ψ_t of step ``t`` of episode slot ``e``; with a value function, w ← w + α_w δ ∇v̂ first."""
        estimator = self.loss.estimator
        if not isinstance(estimator, ValueBaseline):
            return ev.psi[:, e, t]
        m = batch.mask[:, e, t]  # [S]
        v = estimator.values(batch.obs[:, e, t])  # [S], with gradient w.r.t. w
        target = estimator.step_target(batch, ev.advantages.returns, e, t)
        delta = ((target - v) * m).detach()
        vparams = list(estimator.value_fn.parameters())
        ascend(vparams, torch.autograd.grad(v, vparams, grad_outputs=delta / batch.num_episodes, allow_unused=True),
               self.baseline_step_size)
        if ev.stats is None:
            return delta
        return standardise(delta, ev.stats.mean.reshape(-1), ev.stats.std.reshape(-1), m)

    def _actor_direction(self, batch: EpisodeBatch, params: list[Tensor], coefficient: Tensor, e: int,
                         t: int) -> Sequence[Tensor | None]:
        """``c ∇ ln π(A_t|S_t, θ) [+ β/E ∇H]`` per agent for the step's coefficient ``c`` (``[S]``)."""
        policy, beta = self.loss.policy, self.loss.entropy_coef
        s, a = batch.obs[:, e, t], batch.actions[:, e, t]
        # Policies that know their score function in closed form skip autograd (entropy needs it).
        if hasattr(policy, "grad_log_prob") and beta == 0 and len(params) == 1:
            scale = coefficient.to(params[0].dtype)  # ∇ln π in closed form (S&B eq. 13.9), scaled per agent
            return [g * scale.reshape(-1, *([1] * (g.dim() - 1))) for g in policy.grad_log_prob(s, a)]
        entropy = policy.entropy(s) if beta > 0 else None
        weight = beta * batch.mask[:, e, t] / batch.num_episodes if entropy is not None else None
        return score_direction(params, policy.log_prob(s, a), coefficient, entropy, weight)
