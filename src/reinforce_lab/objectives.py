"""The loss contract: every variant and loss form returns named terms in one :class:`LossTerms`.

As TorchRL's objectives (without their machinery): a loss returns terms whose names start
with ``loss_`` (``loss_actor``, ``loss_entropy``, ``loss_value``), the caller sums them
(:meth:`LossTerms.total`), backpropagates and steps (:func:`descend`), and every term is
logged, so adding a term never touches the training loop. Ψ, the weights and the value
targets come from an estimator of :mod:`reinforce_lab.advantages`; the loss forms are the
pure functions of :mod:`reinforce_lab.losses` (docs/loss-forms.md). ``loss=update_rule``,
which changes θ without a loss, is :mod:`reinforce_lab.book_rule`.

Batches are ``[S, E, T]``; losses average over episodes and sum over agents, so each
agent's gradient is its own; the logged values are per agent.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, fields
from typing import Callable, ClassVar, Sequence

import torch
from torch import Tensor

from . import losses
from .advantages import AdvantageEstimator, Advantages, Normalized, normalize_advantages, standardise
from .normalizers import NORM_EPS, ReturnStats
from .numerics import check_finite, grad_norm
from .policies import Policy
from .returns import masked_mean_std
from .rollout import EpisodeBatch

SURROGATES = ("log_prob", "cross_entropy")
NORMALIZE_BY = ("batch", "running")  # algo.normalize_by

@dataclass(frozen=True)
class LossTerms:
    """The named terms of one update (scalars to minimise, summed over agents) and diagnostics.

    Attributes:
        loss_actor: the policy-gradient surrogate ``−(1/E) Σ w_t Ψ_t ln π(A_t|S_t, θ)`` (S&B §13.3).
        loss_entropy: ``β · (−(1/E) Σ_t H(π(·|S_t)))``, already scaled by β; 0 when β = 0.
        loss_value: ``(1/E) Σ_t ½ (target_t − v̂(S_t, w))²`` (§13.4); 0 without a value function.
        entropy: mean H(π(·|S_t)) over the real steps of the batch.
        explained_variance: of the value targets by v̂; None without a value function.
        num_agents: S, to log per-agent values.
    """

    loss_actor: Tensor
    loss_entropy: Tensor
    loss_value: Tensor
    entropy: float
    explained_variance: float | None = None
    num_agents: int = 1

    CRITIC_TERMS: ClassVar[tuple[str, ...]] = ("loss_value",)  # terms of w, not of θ

    def terms(self) -> dict[str, Tensor]:
        """Every ``loss_*`` field, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.startswith("loss_")}

    def total(self) -> Tensor:
        """The sum to backpropagate, left to right in field order: ``(actor + entropy) + value``."""
        return functools.reduce(operator.add, self.terms().values())

    def policy_loss(self) -> Tensor:
        """The sum of θ's terms (``train/loss``): ``actor + entropy``."""
        return functools.reduce(operator.add, (v for k, v in self.terms().items() if k not in self.CRITIC_TERMS))

    @property
    def has_critic(self) -> bool:
        return self.explained_variance is not None

    def metrics(self) -> dict[str, float]:
        """Per-agent values to log: ``train/loss``, ``train/<term>``, ``train/entropy`` (+ critic's)."""
        n = self.num_agents
        out = {"train/loss": float(self.policy_loss().detach()) / n}
        for name, value in self.terms().items():
            if self.has_critic or name not in self.CRITIC_TERMS:
                out[f"train/{name}"] = float(value.detach()) / n
        out["train/entropy"] = self.entropy
        if self.explained_variance is not None:
            out["train/baseline_loss"] = out["train/loss_value"]  # the design contract's name of loss_value
            out["train/explained_variance"] = self.explained_variance
        return out


@dataclass(frozen=True)
class Evaluation:
    """The tensors of one batch that the loss terms (and the book's rule) are built from.

    Attributes:
        advantages: the estimator's output.
        psi: ``[S, E, T]`` Ψ after normalisation (when on), gradient stopped.
        stats: the per-agent mean/std of the normalisation, or None when it is off.
        log_prob: ``ln π(A_t|S_t, θ)`` with gradient (``log_prob`` form), else None.
        nll: ``CE(π(·|S_t), A_t)`` with gradient (``cross_entropy`` form), else None.
        entropy: ``H(π(·|S_t))`` with gradient when β > 0, else None.
        entropy_value: ``H(π(·|S_t))`` without gradient (the logged diagnostic), when computed
            with the log-probabilities.
    """

    advantages: Advantages
    psi: Tensor
    stats: Normalized | None
    log_prob: Tensor | None
    nll: Tensor | None
    entropy: Tensor | None
    entropy_value: Tensor | None = None


class PolicyGradientLoss:
    """The loss of every REINFORCE variant: Ψ from ``estimator``, the actor term in ``loss_form``.

    Args:
        policy: π(a|s, θ).
        estimator: an :class:`~reinforce_lab.advantages.AdvantageEstimator` (γ, γ^t and v̂ live there).
        loss_form: ``log_prob`` or ``cross_entropy`` (docs/loss-forms.md).
        entropy_coef: β of the entropy bonus ``β Σ_t H(π(·|S_t))``.
        normalize: standardise Ψ per agent (``algo.normalize_returns``).
        running: the run's :class:`~reinforce_lab.normalizers.ReturnStats` when it keeps running
            statistics (``algo.normalize_by=running`` or ``algo.bootstrap=return_mean``), else None.
        normalize_by: ``batch`` (over each batch's steps) or ``running`` (with the statistics of
            every earlier batch, as Tianshou's REINFORCE: the scale no longer jumps between updates).
    """

    def __init__(self, policy: Policy, estimator: AdvantageEstimator, *, loss_form: str = "log_prob",
                 entropy_coef: float = 0.0, normalize: bool = True, running: ReturnStats | None = None,
                 normalize_by: str = "batch") -> None:
        if loss_form not in SURROGATES:
            raise ValueError(f"loss={loss_form!r}; allowed: {', '.join(SURROGATES)}")
        if normalize_by not in NORMALIZE_BY or (normalize_by == "running" and running is None):
            raise ValueError(f"algo.normalize_by={normalize_by!r}; allowed: {', '.join(NORMALIZE_BY)}")
        self.policy, self.estimator = policy, estimator
        self.loss_form, self.entropy_coef, self.normalize = loss_form, float(entropy_coef), bool(normalize)
        self.running, self.normalize_by = running, normalize_by
        self._last: tuple[Advantages, Tensor] | None = None  # the last batch evaluated, for commit()

    def parameters(self) -> list[Tensor]:
        """θ: the policy parameters that are trained."""
        return [p for p in self.policy.parameters() if p.requires_grad]

    def evaluate(self, batch: EpisodeBatch) -> Evaluation:
        """Advantages, normalised Ψ and the policy's per-step terms, with their graphs."""
        adv = self.estimator(batch)
        if not self.normalize:
            stats = None
        elif self.normalize_by == "running":  # the statistics before this batch (then commit() adds it)
            mean = self.running.psi.mean.to(adv.psi.dtype).reshape(-1, 1, 1)
            std = torch.sqrt(self.running.psi.var + NORM_EPS).to(adv.psi.dtype).reshape(-1, 1, 1)
            stats = Normalized(standardise(adv.psi, mean, std, batch.mask), mean, std)
        else:
            stats = normalize_advantages(adv.psi, batch.mask)
        self._last = (adv, batch.mask)
        psi = stats.psi if stats is not None else adv.psi
        log_prob = nll = value = None
        if self.loss_form == "cross_entropy":
            nll = self.policy.nll(batch.obs, batch.actions)
        elif self.entropy_coef > 0:
            log_prob = self.policy.log_prob(batch.obs, batch.actions)
        else:  # the diagnostic entropy from the same forward pass (categorical policies)
            log_prob, value = self.policy.log_prob_and_entropy(batch.obs, batch.actions)
        entropy = self.policy.entropy(batch.obs) if self.entropy_coef > 0 else None
        return Evaluation(adv, psi, stats, log_prob, nll, entropy, value)

    def terms(self, batch: EpisodeBatch, ev: Evaluation) -> LossTerms:
        """The named loss terms of ``ev`` (computed from ``batch``) and the diagnostics."""
        adv, mask = ev.advantages, batch.mask
        if ev.nll is not None:
            loss_actor = losses.cross_entropy_loss(ev.nll, ev.psi, adv.weights)
        else:
            loss_actor = losses.log_prob_loss(ev.log_prob, ev.psi, adv.weights)
        loss_entropy = (self.entropy_coef * losses.entropy_loss(ev.entropy, mask) if ev.entropy is not None
                        else torch.zeros(()))
        with torch.no_grad():
            entropy = next((e for e in (ev.entropy, ev.entropy_value) if e is not None), None)
            entropy = entropy if entropy is not None else self.policy.entropy(batch.obs)
            mean_entropy = float((entropy * mask).sum() / mask.sum().clamp_min(1))
        if adv.values is None:
            return LossTerms(loss_actor, loss_entropy, torch.zeros(()), mean_entropy, None, mask.shape[0])
        loss_value = losses.value_loss(adv.values, adv.value_targets, mask)
        ev_value = explained_variance(adv.values.detach(), adv.value_targets, mask)
        return LossTerms(loss_actor, loss_entropy, loss_value, mean_entropy, ev_value, mask.shape[0])

    def __call__(self, batch: EpisodeBatch) -> LossTerms:
        return self.terms(batch, self.evaluate(batch))

    def commit(self) -> None:
        """After an update: merge the batch just trained on into the running statistics (if any).

        Separate from :meth:`evaluate` so that evaluating a batch (the variance probe, the book's
        per-step loop) never changes the statistics; empty slots (stopped agents) add nothing.
        """
        if self.running is not None and self._last is not None:
            adv, mask = self._last
            self.running.returns.update(adv.returns.detach(), mask)
            self.running.psi.update(adv.psi.detach(), mask)
        self._last = None


def descend(terms: LossTerms, params: Sequence[Tensor], optimizers: Sequence[torch.optim.Optimizer],
            backward: Callable[[Tensor], None] = Tensor.backward) -> dict[str, float]:
    """One optimiser step on the sum of ``terms``; returns the metrics to log.

    Every logged loss is checked before the step and the gradient norm of ``params`` (θ)
    after the backward pass, so nothing non-finite reaches the parameters.

    Args:
        terms: the loss terms of the batch.
        params: θ, whose gradient norm is logged as ``train/grad_norm``.
        optimizers: θ's optimiser, then w's when there is a value function.
        backward: ``Tensor.backward`` or Lightning's ``manual_backward`` (precision plugins).
    """
    if not optimizers:
        raise ValueError("a loss form other than update_rule needs an optimizer")
    metrics = terms.metrics()
    for key, value in metrics.items():
        if key.startswith("train/loss"):
            check_finite(key.removeprefix("train/"), value)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    backward(terms.total())
    metrics["train/grad_norm"] = grad_norm([p.grad for p in params], terms.num_agents)
    check_finite("gradient norm", metrics["train/grad_norm"])
    for optimizer in optimizers:
        optimizer.step()
    return metrics


def explained_variance(values: Tensor, targets: Tensor, mask: Tensor) -> float:
    """``1 − Var[target − v̂] / Var[target]`` over real steps, averaged over agents.

    1 is a perfect baseline; ≤ 0 means it explains nothing.
    """
    _, std_t = masked_mean_std(targets, mask, dims=(-2, -1))
    _, std_r = masked_mean_std(targets - values, mask, dims=(-2, -1))
    var_t = std_t.reshape(-1) ** 2
    ok = var_t > 0
    if not ok.any():
        return float("nan")
    return float((1.0 - std_r.reshape(-1)[ok] ** 2 / var_t[ok]).mean())
