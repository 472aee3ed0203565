"""Builds the update of a run from its options: an estimator, a loss and, for ``update_rule``, the rule.

The parts live in :mod:`reinforce_lab.advantages` (Ψ, weights, value targets),
:mod:`reinforce_lab.objectives` (the named loss terms and :func:`~reinforce_lab.objectives.descend`)
and :mod:`reinforce_lab.book_rule` (the literal rule); this module only picks and wires them.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Callable

import torch
from torch import Tensor, nn

from .advantages import ADVANTAGES, BOOTSTRAPS, AdvantageEstimator, ValueBaseline, make_estimator  # noqa: F401
from .normalizers import NORM_EPS, ReturnStats
from .rollout import EpisodeBatch
from .book_rule import UpdateRule
from .objectives import PolicyGradientLoss
from .policies import Policy
from .traces import TraceRule

__all__ = ["LOSS_FORMS", "Update", "build_update"]

LOSS_FORMS = ("log_prob", "cross_entropy", "update_rule")


@dataclass(frozen=True)
class Update:
    """The loss of a run and, with ``loss=update_rule``, the rule that replaces its descent."""

    loss: PolicyGradientLoss
    rule: UpdateRule | TraceRule | None = None


def build_update(policy: Policy, value_fn: nn.Module | None = None, *, gamma: float = 0.99, gamma_t: bool = False,
                 normalize: bool = True, advantage: str = "return", entropy_coef: float = 0.0,
                 loss_form: str = "log_prob", sequential: bool = False, step_size: float | None = None,
                 baseline_step_size: float | None = None, lambda_theta: float | None = None,
                 lambda_w: float | None = None, group_size: int = 1, bootstrap: str = "none",
                 normalize_by: str = "batch", running: ReturnStats | None = None,
                 closed_form: bool = True) -> Update:
    """The update for the options of ``ReinforceModule(update=...)``.

    Args:
        policy: π(a|s, θ).
        value_fn: v̂(s, w); required unless ``advantage="return"``.
        gamma: discount γ.
        gamma_t: weight each step by γ^t as in the book's pseudocode.
        normalize: standardise Ψ per agent over the batch (``algo.normalize_returns``).
        advantage: one of :data:`ADVANTAGES` (:mod:`reinforce_lab.advantages`).
        entropy_coef: β of the entropy bonus.
        loss_form: one of :data:`LOSS_FORMS` (docs/loss-forms.md).
        sequential: with ``update_rule``, the book's per-step loop.
        step_size: α_θ of ``update_rule`` (the optimiser's lr).
        baseline_step_size: α_w of ``update_rule`` for the value function.
        group_size: k, episodes per group for ``rloo``/``group_norm`` (:mod:`reinforce_lab.baselines`).
        lambda_theta, lambda_w: λ^θ, λ^w of the actor–critic with eligibility traces (S&B §13.5,
            :mod:`reinforce_lab.traces`); None: no traces. Needs ``update_rule``, ``sequential`` and ``td``.
        bootstrap: what stands for the rewards after a non-terminal end (one of
            :data:`~reinforce_lab.advantages.BOOTSTRAPS`): ``none``, ``value`` (v̂ of the final
            state) or ``return_mean`` (``running``'s mean of the returns).
        normalize_by: ``batch`` or ``running`` standardisation of Ψ.
        running: the run's running statistics (needed by ``return_mean`` and ``running``).
        closed_form: ``loss.closed_form``: the sequential rule in closed form where it fits
            (:mod:`reinforce_lab.closed_form_rule`).
    """
    if loss_form not in LOSS_FORMS:
        raise ValueError(f"loss={loss_form!r}; allowed: {', '.join(LOSS_FORMS)}")
    estimator = make_estimator(advantage, value_fn, gamma, gamma_t, group_size=group_size, policy=policy)
    estimator.tail = bootstrap_tail(bootstrap, estimator, running)
    if normalize_by == "running" and running is not None and isinstance(estimator, ValueBaseline):
        # v̂ = σ_G · net(s): the network fits G/σ_G (Tianshou's A2C/PPO scale their critic's targets so)
        estimator.scale = lambda: torch.sqrt(running.returns.var + NORM_EPS)
    surrogate = "log_prob" if loss_form == "update_rule" else loss_form  # the rule logs the log_prob loss
    loss = PolicyGradientLoss(policy, estimator, loss_form=surrogate, entropy_coef=entropy_coef, normalize=normalize,
                              running=running, normalize_by=normalize_by)
    if loss_form != "update_rule":
        if lambda_theta is not None or lambda_w is not None:
            raise ValueError(f"eligibility traces need loss_form='update_rule', not {loss_form!r}")
        return Update(loss)
    if lambda_theta is not None or lambda_w is not None:  # traces: the book's rule, never a loss (loss-forms §8)
        if not sequential:
            raise ValueError("eligibility traces need sequential=True (z is carried from step to step)")
        return Update(loss, TraceRule(loss, step_size, baseline_step_size, lambda_theta or 0.0, lambda_w or 0.0))
    return Update(loss, UpdateRule(loss, step_size, baseline_step_size, sequential=sequential,
                                   closed_form=closed_form))


def bootstrap_tail(bootstrap: str, estimator: AdvantageEstimator,
                   running: ReturnStats | None) -> Callable[[EpisodeBatch], Tensor] | None:
    """``[S, E]`` values of the states episodes were cut at, for ``algo.bootstrap`` (None: ``none``)."""
    if bootstrap not in BOOTSTRAPS:
        raise ValueError(f"algo.bootstrap={bootstrap!r}; allowed: {', '.join(BOOTSTRAPS)}")
    if bootstrap == "none":
        return None
    if bootstrap == "value":
        if not isinstance(estimator, ValueBaseline):
            raise ValueError("algo.bootstrap='value' needs a learned v̂; allowed without one: none, return_mean")
        return lambda batch: estimator.values(batch.final_obs)
    if running is None:
        raise ValueError("algo.bootstrap='return_mean' needs the run's running return statistics")
    return lambda batch: running.returns.mean.to(batch.rewards.dtype).unsqueeze(-1).expand(batch.final_obs.shape[:2])
