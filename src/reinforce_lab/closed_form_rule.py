"""``loss.closed_form``: the book's sequential rule for ``policy=preferences`` without autograd.

:class:`~reinforce_lab.book_rule.UpdateRule` hands its per-step loop (``loss.sequential=true``)
to :class:`ClosedFormRule` when :meth:`ClosedFormRule.fits`: a softmax in linear preferences
(S&B Example 13.1) without observation normalisation or entropy bonus, with Ψ fixed before the
loop (REINFORCE §13.3, the batch baselines) or REINFORCE with a linear learned baseline (§13.4,
Fig. 13.2's v̂(s, w) = wᵀx(s)). The loop runs in numpy (:mod:`reinforce_lab.softmax_score`), and
the metrics logged at the θ the batch was sampled with come from π(·|θ) once per agent instead
of once per step — the policy is the same in every state.

Same maths as the torch loop: ``tests/test_fast_book_rule.py`` checks θ, w and every metric
against the autograd loop to 1e-12 in float64. Not the same rounding: softmax, floor and steps
are computed in another order, so in float32 (the default) θ differs from the torch loop's in
the last bits, and an agent samples a different action once a uniform falls between the two
values of π(right); from there on its episodes differ from the torch loop's (not their
distribution). Measured on Fig. 13.1 (α = 2^-13, 100 agents × 1000 episodes): 94 agents first
differed between episodes 193 and 951, mean return −18.856 vs −18.855; on Fig. 13.2 all episodes
were identical. The torch loop, unchanged, is ``loss.closed_form=false``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from . import losses
from .advantages import NORMALIZE_EPS, LearnedBaseline, ValueBaseline, normalize_advantages
from .networks import SeedLinear
from .objectives import Evaluation, LossTerms, PolicyGradientLoss, explained_variance
from .policies import PreferencePolicy
from .probability_floor import floor_probs_np
from .rollout import EpisodeBatch
from .softmax_score import LinearCritic, ascend_episode


class ClosedFormRule:
    """The sequential rule of ``loss`` in closed form, for all agents at once.

    Args:
        loss: the ``log_prob`` loss of :class:`~reinforce_lab.book_rule.UpdateRule` (``fits`` it).
        step_size: α_θ.
        baseline_step_size: α_w (with a learned baseline).
    """

    def __init__(self, loss: PolicyGradientLoss, step_size: float, baseline_step_size: float | None) -> None:
        self.loss, self.step_size, self.baseline_step_size = loss, float(step_size), baseline_step_size

    @staticmethod
    def fits(loss: PolicyGradientLoss) -> bool:
        """Whether the closed form applies to ``loss`` (else the torch loop runs)."""
        policy, estimator = loss.policy, loss.estimator
        if not isinstance(policy, PreferencePolicy) or policy.obs_norm is not None or loss.entropy_coef != 0:
            return False
        if loss.parameters() != [policy.theta]:
            return False
        if not isinstance(estimator, ValueBaseline):
            return True  # Ψ is fixed before the loop (REINFORCE and the batch baselines)
        return type(estimator) is LearnedBaseline and estimator.scale is None and _linear(estimator.value_fn)

    @torch.no_grad()
    def __call__(self, batch: EpisodeBatch) -> tuple[dict[str, float], Tensor]:
        """Apply the rule to every episode slot in order: ``(metrics at the batch's θ and w, [S] ‖direction‖²)``."""
        theta_t = self.loss.policy.theta
        theta = theta_t.detach().cpu().numpy().copy()
        ev = self._evaluate(batch)
        metrics = self._terms(batch, ev, theta).metrics()
        critic = self._critic(ev, theta.dtype, batch.num_episodes)
        sq_norm = np.zeros(theta.shape[0], dtype=theta.dtype)
        weights = _time_first(ev.advantages.weights / batch.num_episodes, theta.dtype)  # [E, T, S] w_t / E
        psi = _time_first(ev.psi, theta.dtype) if critic is None else None
        actions = batch.actions.cpu().numpy().transpose(1, 2, 0)  # [E, T, S]
        if critic is not None:
            obs = np.ascontiguousarray(batch.obs.to(theta_t.dtype).cpu().numpy().transpose(1, 2, 0, 3))  # [E, T, S, d]
            returns, mask = _time_first(ev.advantages.returns, theta.dtype), _time_first(batch.mask, theta.dtype)
        for e in range(batch.num_episodes):
            t_max = int(batch.lengths[:, e].max())
            if critic is not None:
                critic.obs, critic.targets, critic.mask = obs[e, :t_max], returns[e, :t_max], mask[e, :t_max]
            sq_norm += ascend_episode(theta, actions[e, :t_max], weights[e, :t_max],
                                      psi[e, :t_max] if psi is not None else None, self.step_size,
                                      self.loss.policy.min_prob, critic)
        theta_t.copy_(torch.from_numpy(theta))
        if critic is not None:
            layer = self.loss.estimator.value_fn[0]
            layer.weight.copy_(torch.from_numpy(critic.weight).unsqueeze(-1))
            if critic.bias is not None:
                layer.bias.copy_(torch.from_numpy(critic.bias).unsqueeze(-1))
        return metrics, torch.from_numpy(sq_norm).float()

    def _evaluate(self, batch: EpisodeBatch) -> Evaluation:
        """Ψ and the advantages as :meth:`PolicyGradientLoss.evaluate` gives them, without π's per-step terms.

        With running statistics (``algo.normalize_by=running``, ``algo.bootstrap=return_mean``)
        the loss's own ``evaluate`` runs, which its ``commit`` needs.
        """
        loss = self.loss
        if loss.running is not None:
            return loss.evaluate(batch)
        adv = loss.estimator(batch)
        stats = normalize_advantages(adv.psi, batch.mask) if loss.normalize else None  # normalize_by=batch
        return Evaluation(adv, stats.psi if stats is not None else adv.psi, stats, None, None, None)

    def _terms(self, batch: EpisodeBatch, ev: Evaluation, theta: np.ndarray) -> LossTerms:
        """:meth:`PolicyGradientLoss.terms` (β = 0) with ln π and H(π) from π_ε(·|θ) once per agent, in numpy."""
        z = theta - theta.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))  # [S, n] log-softmax: finite where π underflows
        min_prob = self.loss.policy.min_prob
        if min_prob > 0:
            log_p = np.log(floor_probs_np(np.exp(log_p), min_prob))
        s_count, adv = theta.shape[0], ev.advantages
        actions = batch.actions.cpu().numpy()
        taken = np.take_along_axis(log_p, actions.reshape(s_count, -1), 1).reshape(actions.shape)
        coef = (adv.weights * ev.psi).cpu().numpy()  # losses.log_prob_loss: −(1/E) Σ w_t Ψ_t ln π(A_t); 0 on padding
        loss_actor = torch.as_tensor(-(coef * taken).sum() / actions.shape[-2])
        entropy = -(np.exp(log_p) * log_p).sum(1)  # H(π_ε(·|θ)), the same in every state
        steps = batch.lengths.sum(-1).cpu().numpy()  # real steps of each agent
        mean_entropy = float((entropy * steps).sum() / max(steps.sum(), 1))
        zero = torch.zeros(())
        if adv.values is None:
            return LossTerms(loss_actor, zero, zero, mean_entropy, None, s_count)
        loss_value = losses.value_loss(adv.values, adv.value_targets, batch.mask)
        ev_value = explained_variance(adv.values, adv.value_targets, batch.mask)
        return LossTerms(loss_actor, zero, loss_value, mean_entropy, ev_value, s_count)

    def _critic(self, ev: Evaluation, dtype: np.dtype, n_ep: int) -> LinearCritic | None:
        """The linear v̂ as numpy copies of w (and b), with Ψ's batch statistics when normalising."""
        estimator = self.loss.estimator
        if not isinstance(estimator, ValueBaseline):
            return None
        layer = estimator.value_fn[0]
        bias = layer.bias.cpu().numpy()[:, 0].astype(dtype) if isinstance(layer.bias, nn.Parameter) else None
        stats = ev.stats
        critic = LinearCritic(layer.weight.cpu().numpy()[..., 0].astype(dtype), bias,
                              float(self.baseline_step_size) / n_ep, eps=NORMALIZE_EPS)
        if stats is not None:
            critic.mean = stats.mean.reshape(-1).cpu().numpy().astype(dtype)
            critic.std = stats.std.reshape(-1).cpu().numpy().astype(dtype)
        return critic


def _time_first(x: Tensor, dtype: np.dtype) -> np.ndarray:
    """``[S, E, T]`` → contiguous ``[E, T, S]`` numpy (each step one contiguous row of all agents)."""
    return np.ascontiguousarray(x.detach().cpu().numpy().astype(dtype, copy=False).transpose(1, 2, 0))


def _linear(value_fn: nn.Module) -> bool:
    """v̂ is one agent-batched linear layer with one output (no hidden layer): v̂(s, w) = wᵀx(s) [+ b]."""
    return (isinstance(value_fn, nn.Sequential) and len(value_fn) == 1 and isinstance(value_fn[0], SeedLinear)
            and value_fn[0].weight.shape[-1] == 1)
