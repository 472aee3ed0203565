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

Batches are ``[S, E, T]``: S agents (``train.num_seeds``; 1 for a plain run) × E episodes ×
T steps. Statistics (normalisation, metrics) are per agent; losses are summed over agents.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from . import losses
from .policies import Policy
from .returns import discount_weights, discounted_returns, masked_mean_std
from .rollout import EpisodeBatch

ADVANTAGES = ("return", "baseline", "td")
LOSS_FORMS = ("log_prob", "cross_entropy", "update_rule")


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN/inf; training stops before it spreads."""


HINT = ("hint: lower optimizer.lr, keep algo.normalize_returns=true, raise policy.min_std for Gaussian "
        "policies, or check the environment's rewards")


def _check_finite(what: str, value: float) -> None:
    if not math.isfinite(value):
        raise NonFiniteError(f"non-finite {what} ({value}); {HINT}")


def parameters_finite(module: nn.Module) -> bool:
    """True when every parameter of ``module`` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


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
        """Returns G, weights w_t, value targets and Ψ (before normalisation), all ``[S, E, T]``."""
        mask = batch.mask
        returns = discounted_returns(batch.rewards, mask, self.gamma)  # [S, E, T]
        weights = discount_weights(mask, self.gamma, self.gamma_t)  # [S, E, T]
        out = {"returns": returns, "weights": weights}
        if self.advantage == "return":
            out["psi"] = returns
            return out
        values = self.values(batch.obs)  # [S, E, T], with gradient w.r.t. w
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
            v_final = self.values(batch.final_obs) * (~batch.terminated).to(values.dtype)  # [S, E]
        v_next = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], dim=-1) * batch.mask
        last = (batch.lengths - 1).clamp_min(0).unsqueeze(-1)  # [S, E, 1]; empty episodes are masked anyway
        v_next = v_next.scatter(-1, last, v_final.unsqueeze(-1))
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
            mean, std = masked_mean_std(psi, mask, dims=(-2, -1))  # per agent, [S, 1, 1]
            psi = (psi - mean) / (std + 1e-8) * mask
        else:
            mean, std = torch.zeros(()), torch.ones(())
        coef["psi_n"] = psi
        if self.loss_form == "update_rule" and self.sequential:
            with torch.no_grad():  # the surrogate's value at the θ the batch was sampled with
                start_loss = losses.log_prob_loss(self.policy.log_prob(batch.obs, batch.actions), psi,
                                                  coef["weights"])
            metrics = self._sequential(batch, coef, (mean.detach(), std.detach()))
            metrics["train/loss"] = float(start_loss) / mask.shape[0]
            return metrics
        n_ep = batch.num_episodes  # E: the loss averages over episodes, sums over agents
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
            metrics["train/entropy"] = float((ent_log * mask).sum() / mask.sum().clamp_min(1))
        loss_entropy = losses.entropy_loss(entropy, mask) if entropy is not None else torch.zeros(())
        loss_value = (losses.value_loss(coef["values"], coef["targets"], mask)
                      if "values" in coef else torch.zeros(()))
        loss = loss_actor + self.entropy_coef * loss_entropy
        n_agents = mask.shape[0]
        metrics["train/loss"] = float(loss.detach()) / n_agents  # per agent
        metrics["train/loss_actor"] = float(loss_actor.detach()) / n_agents
        if "values" in coef:
            metrics["train/baseline_loss"] = float(loss_value.detach()) / n_agents
            metrics["train/explained_variance"] = explained_variance(coef["values"].detach(), coef["targets"], mask)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        _check_finite("loss", metrics["train/loss"])
        if self.loss_form == "update_rule":
            # The literal rule: θ ← θ + α Σ_t (w_t Ψ_t / E) ∇ ln π(A_t|S_t, θ) [+ β ∇H]. Autograd
            # gives the vector-Jacobian product Σ_t c_t ∇ ln π_t directly: no loss scalar.
            outs, grad_outs = [log_prob], [coef["weights"] * psi / n_ep]
            if entropy is not None:
                outs.append(entropy)
                grad_outs.append(self.entropy_coef * mask / n_ep)
            direction = torch.autograd.grad(outs, params, grad_outputs=grad_outs, allow_unused=True)
            metrics["train/grad_norm"] = _norm(direction, n_agents)
            _check_finite("gradient norm", metrics["train/grad_norm"])
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
        metrics["train/grad_norm"] = _norm([p.grad for p in params], n_agents)
        _check_finite("gradient norm", metrics["train/grad_norm"])
        if value_optimizer is not None:
            _check_finite("baseline loss", metrics["train/baseline_loss"])
        optimizer.step()
        if value_optimizer is not None:
            value_optimizer.step()
        return metrics

    def _sequential(self, batch: EpisodeBatch, coef: dict[str, Tensor], stats: tuple[Tensor, Tensor]) -> dict[str, float]:
        """The book's pseudocode: for each episode, for t = 0…T−1, update θ (and w) in place.

        Ψ_t uses the *current* w at step t (S&B §13.4/§13.5 pseudocode); when
        normalising, the batch mean/std of Ψ computed before the first step is applied to
        every step, so that ``sequential=false`` is this loop with θ frozen. All agents
        take their step t at once (tensors ``[S, ...]``); an agent whose episode is shorter
        gets a zero coefficient, i.e. no update, on the padded steps.
        """
        params = [p for p in self.policy.parameters() if p.requires_grad]
        vparams = list(self.value_fn.parameters()) if self.value_fn is not None else []
        # Policies that know their score function in closed form skip autograd (entropy needs it).
        closed_form = hasattr(self.policy, "grad_log_prob") and self.entropy_coef == 0 and len(params) == 1
        mean, std = (x.reshape(-1) if x.dim() else x for x in stats)  # [S] or scalars
        n_ep = batch.num_episodes
        weights, mask = coef["weights"], batch.mask
        sq_norm = torch.zeros(mask.shape[0], dtype=mask.dtype)
        for e in range(n_ep):
            lengths = batch.lengths[:, e]  # [S]
            for t in range(int(lengths.max())):
                m = mask[:, e, t]  # [S]
                s, a = batch.obs[:, e, t], batch.actions[:, e, t]
                if self.advantage == "return":
                    psi = coef["psi_n"][:, e, t]
                else:
                    v = self.values(s)  # [S]
                    if self.advantage == "baseline":
                        target = coef["returns"][:, e, t]
                    else:
                        last = t + 1 >= lengths  # [S]
                        with torch.no_grad():
                            nxt_idx = min(t + 1, batch.obs.shape[2] - 1)
                            nxt = torch.where(last.unsqueeze(-1), batch.final_obs[:, e], batch.obs[:, e, nxt_idx])
                            boot = self.values(nxt) * ~(last & batch.terminated[:, e])
                        target = batch.rewards[:, e, t] + self.gamma * boot
                    delta = ((target - v) * m).detach()
                    _ascend(vparams, torch.autograd.grad(v, vparams, grad_outputs=delta / n_ep,
                                                         allow_unused=True), self.baseline_step_size)
                    psi = (delta - mean) / (std + 1e-8) * m if self.normalize else delta
                if closed_form:  # ∇ln π in closed form (S&B eq. 13.9), scaled per agent
                    scale = (weights[:, e, t] * psi / n_ep).to(params[0].dtype)
                    direction = [g * scale.reshape(-1, *([1] * (g.dim() - 1)))
                                 for g in self.policy.grad_log_prob(s, a)]
                else:
                    log_prob = self.policy.log_prob(s, a)  # [S]
                    outs, grad_outs = [log_prob], [weights[:, e, t] * psi / n_ep]
                    if self.entropy_coef > 0:
                        outs.append(self.policy.entropy(s))
                        grad_outs.append(self.entropy_coef * m / n_ep)
                    direction = torch.autograd.grad(outs, params, grad_outputs=grad_outs, allow_unused=True)
                sq_norm += _per_agent_sq_norm(direction, mask.shape[0])
                _ascend(params, direction, self.step_size)
        _check_finite("gradient norm", float(sq_norm.sum()))  # (parameters are checked after every update too)
        with torch.no_grad():
            ent = float((self.policy.entropy(batch.obs) * mask).sum() / mask.sum().clamp_min(1))
        return {"train/grad_norm": float(sq_norm.sqrt().mean()), "train/entropy": ent}


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


def _ascend(params: list[Tensor], direction, step_size: float | None) -> None:
    with torch.no_grad():
        for p, d in zip(params, direction):
            if d is not None:
                p.add_(d, alpha=step_size)


def _per_agent_sq_norm(tensors, n_agents: int) -> Tensor:
    """``[S]`` squared norm of each agent's slice (every parameter has a leading agent dim)."""
    parts = [t.detach().reshape(n_agents, -1) for t in tensors if t is not None]
    if not parts:
        return torch.zeros(n_agents)
    return torch.cat(parts, dim=1).pow(2).sum(-1).float()


def _norm(tensors, n_agents: int = 1) -> float:
    """Gradient norm per agent, averaged over agents."""
    return float(_per_agent_sq_norm(tensors, n_agents).sqrt().mean())
