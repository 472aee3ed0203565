"""One policy-gradient update from a batch of whole episodes: every variant, every loss form.

:class:`PolicyGradient` composes the pure functions of :mod:`returns` and :mod:`losses`
and knows nothing about Lightning, Hydra or environments, so it can be tested in float64
against hand-written loops. The Lightning module (:mod:`reinforce_lab.module`) calls
:meth:`PolicyGradient.step` once per batch.

Ψ_t, the per-step coefficient of ∇ ln π, depends on ``advantage``:

* ``return``   — REINFORCE (S&B §13.3): Ψ_t = G_t.
* ``baseline`` — REINFORCE with baseline (§13.4): Ψ_t = δ_t = G_t − v̂(S_t, w).
* ``td``       — one-step actor-critic (§13.5): Ψ_t = δ_t = R_{t+1} + γ v̂(S_{t+1}, w) − v̂(S_t, w)
  (v̂ of a terminal state is 0; a time-limit truncation bootstraps from the final state).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from . import losses
from .policies import Policy
from .returns import discount_weights, discounted_returns, masked_mean_std
from .rollout import EpisodeBatch

ADVANTAGES = ("return", "baseline", "td")
LOSS_FORMS = ("log_prob", "cross_entropy", "update_rule")


class PolicyGradient:
    """The update rule of every REINFORCE variant.

    Args:
        policy: π(a|s, θ).
        value_fn: v̂(s, w) mapping ``[..., obs_dim] → [..., 1]``; required unless ``advantage="return"``.
        gamma: discount γ.
        gamma_t: multiply each step's term by γ^t as in the book's pseudocode.
        normalize: standardise Ψ over the batch (``algo.normalize_returns``).
        advantage: ``return``, ``baseline`` or ``td`` (see the module docstring).
        entropy_coef: β of the entropy bonus ``β Σ_t H(π(·|S_t))``.
        loss_form: ``log_prob``, ``cross_entropy`` or ``update_rule`` (docs/loss-forms.md).
        sequential: with ``update_rule``, apply the rule step by step in episode order (the
            book's pseudocode) instead of summing over the batch.
        step_size: α_θ of ``update_rule`` (the optimiser's lr).
        baseline_step_size: α_w of ``update_rule`` for the value function.
    """

    def __init__(self, policy: Policy, value_fn: nn.Module | None = None, *, gamma: float = 0.99,
                 gamma_t: bool = False, normalize: bool = True, advantage: str = "return",
                 entropy_coef: float = 0.0, loss_form: str = "log_prob", sequential: bool = False,
                 step_size: float | None = None, baseline_step_size: float | None = None) -> None:
        if advantage not in ADVANTAGES:
            raise ValueError(f"advantage={advantage!r}; allowed: {', '.join(ADVANTAGES)}")
        if loss_form not in LOSS_FORMS:
            raise ValueError(f"loss={loss_form!r}; allowed: {', '.join(LOSS_FORMS)}")
        if advantage != "return" and value_fn is None:
            raise ValueError(f"advantage={advantage!r} needs a value function")
        if loss_form == "update_rule" and (step_size is None or (value_fn is not None and baseline_step_size is None)):
            raise ValueError("loss=update_rule needs step_size (and baseline_step_size with a value function)")
        self.policy, self.value_fn = policy, value_fn
        self.gamma, self.gamma_t, self.normalize = float(gamma), bool(gamma_t), bool(normalize)
        self.advantage, self.entropy_coef = advantage, float(entropy_coef)
        self.loss_form, self.sequential = loss_form, bool(sequential)
        self.step_size, self.baseline_step_size = step_size, baseline_step_size

    # ------------------------------------------------------------------ coefficients
    def values(self, obs: Tensor) -> Tensor:
        assert self.value_fn is not None
        return self.value_fn(obs).squeeze(-1)

    def coefficients(self, batch: EpisodeBatch) -> dict[str, Tensor]:
        """Returns G, weights w_t, value targets and Ψ (before normalisation), all ``[E, T]``."""
        mask = batch.mask
        returns = discounted_returns(batch.rewards, mask, self.gamma)  # [E, T]
        weights = discount_weights(mask, self.gamma, self.gamma_t)  # [E, T]
        out = {"returns": returns, "weights": weights}
        if self.advantage == "return":
            out["psi"] = returns
            return out
        values = self.values(batch.obs)  # [E, T], with gradient w.r.t. w
        out["values"] = values
        if self.advantage == "baseline":
            out["targets"] = returns
        else:
            out["targets"] = self._td_targets(batch, values.detach())
        out["psi"] = (out["targets"] - values.detach()) * mask
        return out

    def _td_targets(self, batch: EpisodeBatch, values: Tensor) -> Tensor:
        """``R_{t+1} + γ v̂(S_{t+1})``, with v̂ of the final state only when not terminal."""
        with torch.no_grad():
            v_final = self.values(batch.final_obs) * (~batch.terminated).to(values.dtype)  # [E]
        v_next = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1) * batch.mask
        last = (batch.lengths - 1).unsqueeze(1)
        v_next = v_next.scatter(1, last, v_final.unsqueeze(1))
        return (batch.rewards + self.gamma * v_next) * batch.mask

    # ------------------------------------------------------------------ the update
    def step(self, batch: EpisodeBatch, optimizer: torch.optim.Optimizer | None = None,
             value_optimizer: torch.optim.Optimizer | None = None,
             backward: Callable[[Tensor], None] = Tensor.backward) -> dict[str, float]:
        """Apply one update from ``batch``; returns the metrics to log.

        For ``log_prob``/``cross_entropy`` the optimisers step on the summed losses; for
        ``update_rule`` no loss is formed and the parameters are changed in place.
        """
        coef = self.coefficients(batch)
        mask = batch.mask
        psi = coef["psi"]
        if self.normalize:
            mean, std = masked_mean_std(psi, mask)
            psi = (psi - mean) / (std + 1e-8) * mask
        else:
            mean, std = torch.zeros(()), torch.ones(())
        coef["psi_n"] = psi
        if self.loss_form == "update_rule" and self.sequential:
            with torch.no_grad():  # the surrogate's value at the θ the batch was sampled with
                start_loss = losses.log_prob_loss(self.policy.log_prob(batch.obs, batch.actions), psi,
                                                  coef["weights"])
            metrics = self._sequential(batch, coef, (mean.detach(), std.detach()))
            metrics["train/loss"] = float(start_loss)
            return metrics
        n_ep = batch.num_episodes
        metrics: dict[str, float] = {}
        if self.loss_form == "cross_entropy":
            nll = self.policy.nll(batch.obs, batch.actions)
            log_prob = -nll
            loss_actor = losses.cross_entropy_loss(nll, psi, coef["weights"])
        else:
            log_prob = self.policy.log_prob(batch.obs, batch.actions)
            loss_actor = losses.log_prob_loss(log_prob, psi, coef["weights"])
        entropy = self.policy.entropy(batch.obs) if self.entropy_coef > 0 else None
        with torch.no_grad():
            ent_log = entropy if entropy is not None else self.policy.entropy(batch.obs)
            metrics["train/entropy"] = float((ent_log * mask).sum() / mask.sum())
        loss_entropy = losses.entropy_loss(entropy, mask) if entropy is not None else torch.zeros(())
        loss_value = (losses.value_loss(coef["values"], coef["targets"], mask)
                      if "values" in coef else torch.zeros(()))
        loss = loss_actor + self.entropy_coef * loss_entropy
        metrics["train/loss"] = float(loss.detach())
        metrics["train/loss_actor"] = float(loss_actor.detach())
        if "values" in coef:
            metrics["train/baseline_loss"] = float(loss_value.detach())
            metrics["train/explained_variance"] = explained_variance(coef["values"].detach(), coef["targets"], mask)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if self.loss_form == "update_rule":
            # The literal rule: θ ← θ + α Σ_t (w_t Ψ_t / E) ∇ ln π(A_t|S_t, θ) [+ β ∇H]. Autograd
            # gives the vector-Jacobian product Σ_t c_t ∇ ln π_t directly: no loss scalar.
            outs, grad_outs = [log_prob], [coef["weights"] * psi / n_ep]
            if entropy is not None:
                outs.append(entropy)
                grad_outs.append(self.entropy_coef * mask / n_ep)
            direction = torch.autograd.grad(outs, params, grad_outputs=grad_outs, allow_unused=True)
            metrics["train/grad_norm"] = _norm(direction)
            _ascend(params, direction, self.step_size)
            if "values" in coef:
                vparams = list(self.value_fn.parameters())
                delta = (coef["targets"] - coef["values"].detach()) * mask / n_ep
                _ascend(vparams, torch.autograd.grad(coef["values"], vparams, grad_outputs=delta,
                                                     allow_unused=True), self.baseline_step_size)
            return metrics
        if optimizer is None:
            raise ValueError(f"loss={self.loss_form} needs an optimizer")
        optimizer.zero_grad(set_to_none=True)
        if value_optimizer is not None:
            value_optimizer.zero_grad(set_to_none=True)
        backward(loss + loss_value)
        metrics["train/grad_norm"] = _norm([p.grad for p in params])
        optimizer.step()
        if value_optimizer is not None:
            value_optimizer.step()
        return metrics

    def _sequential(self, batch: EpisodeBatch, coef: dict[str, Tensor], stats: tuple[Tensor, Tensor]) -> dict[str, float]:
        """The book's pseudocode: for each episode, for t = 0…T−1, update θ (and w) in place.

        Ψ_t uses the *current* w at step t (S&B §13.4/§13.5 pseudocode); when
        normalising, the batch mean/std of Ψ computed before the first step is applied to
        every step, so that ``sequential=false`` is this loop with θ frozen.
        """
        params = [p for p in self.policy.parameters() if p.requires_grad]
        vparams = list(self.value_fn.parameters()) if self.value_fn is not None else []
        mean, std = stats
        n_ep = batch.num_episodes
        weights = coef["weights"]
        sq_norm = 0.0
        for e in range(n_ep):
            length = int(batch.lengths[e])
            for t in range(length):
                s, a = batch.obs[e, t], batch.actions[e, t]
                if self.advantage == "return":
                    psi = coef["psi_n"][e, t]
                else:
                    v = self.values(s)
                    if self.advantage == "baseline":
                        target = coef["returns"][e, t]
                    else:
                        with torch.no_grad():
                            nxt = batch.obs[e, t + 1] if t + 1 < length else batch.final_obs[e]
                            boot = 0.0 if (t + 1 == length and bool(batch.terminated[e])) else self.values(nxt)
                        target = batch.rewards[e, t] + self.gamma * boot
                    delta = (target - v).detach()
                    _ascend(vparams, torch.autograd.grad(v, vparams, grad_outputs=delta / n_ep,
                                                         allow_unused=True), self.baseline_step_size)
                    psi = (delta - mean) / (std + 1e-8) if self.normalize else delta
                log_prob = self.policy.log_prob(s, a)
                outs, grad_outs = [log_prob], [weights[e, t] * psi / n_ep]
                if self.entropy_coef > 0:
                    outs.append(self.policy.entropy(s))
                    grad_outs.append(torch.as_tensor(self.entropy_coef / n_ep, dtype=log_prob.dtype))
                direction = torch.autograd.grad(outs, params, grad_outputs=grad_outs, allow_unused=True)
                sq_norm += _norm(direction) ** 2
                _ascend(params, direction, self.step_size)
        with torch.no_grad():
            ent = float((self.policy.entropy(batch.obs) * batch.mask).sum() / batch.mask.sum())
        return {"train/grad_norm": sq_norm ** 0.5, "train/entropy": ent}


def explained_variance(values: Tensor, targets: Tensor, mask: Tensor) -> float:
    """``1 − Var[target − v̂] / Var[target]`` over real steps: 1 is a perfect baseline, ≤ 0 useless."""
    _, std_t = masked_mean_std(targets, mask)
    _, std_r = masked_mean_std(targets - values, mask)
    var_t = float(std_t) ** 2
    return float("nan") if var_t == 0 else 1.0 - float(std_r) ** 2 / var_t


def _ascend(params: list[Tensor], direction, step_size: float | None) -> None:
    with torch.no_grad():
        for p, d in zip(params, direction):
            if d is not None:
                p.add_(d, alpha=step_size)


def _norm(tensors) -> float:
    sq = [t.detach().pow(2).sum() for t in tensors if t is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0
