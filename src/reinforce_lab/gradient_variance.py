"""The variance lens: bias and variance of a policy-gradient estimator, measured at a fixed θ.

A REINFORCE-family update climbs along ĝ, a random vector: its mean decides where the update
goes on average, its spread how much of each step is noise (S&B §13.3–13.4: a baseline
"can reduce the variance ... without changing the expected update"). Here ĝ is computed for
each of M independent batches at the *same* θ and w, exactly as training computes it:
the run's own :class:`~reinforce_lab.objectives.PolicyGradientLoss` (estimator, loss form,
γ^t weights, normalisation, entropy bonus), differentiated with ``torch.autograd.grad`` so
that nothing is stepped and no ``.grad`` is touched. Since the loss is minimised,
ĝ = −∇_θ L is the ascent direction.

Statistics over the M batches, per agent (every parameter has a leading agent dimension,
:mod:`reinforce_lab.policies`; agents that share θ can be pooled as replicas):

* mean ḡ = (1/M) Σ ĝ_m; per-parameter variance (unbiased, M − 1); total variance
  tr Cov[ĝ] = E|ĝ − ḡ|² (the sum of the per-parameter variances); standard error of the mean
  √(Var/M); signal-to-noise |ḡ|² / tr Cov.
* with a known exact gradient ∇J (the short corridor, :mod:`reinforce_lab.exact_gradient`):
  bias = ḡ − ∇J, its standard error (the SEM: ∇J is exact), z = bias / SEM per parameter
  and the cosine between ḡ and ∇J.

What the mean targets depends on the options. With γ = 1 and without normalisation or an
entropy bonus every estimator of :mod:`reinforce_lab.advantages` is unbiased for ∇v_π(s0)
(S&B eq. 13.8; a baseline that does not depend on the action leaves the mean unchanged, §13.4),
so its z-scores are standard normal. With γ < 1, ``algo.gamma_t=true`` targets the gradient
of the discounted J = v_π(s0) (the book's pseudocode), ``gamma_t=false`` the usual
"discounted-return" direction, which is not the gradient of any objective (Nota & Thomas 2020,
*Is the policy gradient a gradient?*): its "bias" against ∇J is real, not noise.
``algo.normalize_returns`` divides Ψ by a batch statistic (biased, and a different scale:
read the cosine), and an estimator with a learned v̂ is measured at the current w (v̂ is
part of the estimator; another w is another estimator). ``loss=update_rule`` is measured
through its loss, i.e. in its batched form (its per-step variant moves θ within a batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .objectives import PolicyGradientLoss
from .rollout import EpisodeBatch, EpisodeCollector

BatchSource = Callable[[], EpisodeBatch]


def agent_flat(tensors: Sequence[Tensor | None], like: Sequence[Tensor]) -> Tensor:
    """``[S, P]``: each agent's slice of every tensor (``[S, ...]``) flattened and concatenated.

    A ``None`` (a parameter the loss does not reach) counts as zeros of ``like``'s shape.
    """
    parts = [(t if t is not None else torch.zeros_like(p)).reshape(p.shape[0], -1) for t, p in zip(tensors, like)]
    return torch.cat(parts, dim=-1)


def batch_gradient(loss: PolicyGradientLoss, batch: EpisodeBatch) -> Tensor:
    """ĝ = −∇_θ (θ's loss terms) of one batch, ``[S, P]`` in float64; nothing is stepped.

    θ's terms are ``loss_actor + loss_entropy`` (:meth:`~reinforce_lab.objectives.LossTerms.policy_loss`),
    what θ's optimiser descends; w's term is left out (it does not depend on θ).
    """
    params = loss.parameters()
    with torch.enable_grad():  # Lightning may call us under no_grad (e.g. in a hook)
        total = loss(batch).policy_loss()
        grads = torch.autograd.grad(total, params, allow_unused=True)
    return -agent_flat(grads, params).detach().to(torch.float64)


def sample_gradients(loss: PolicyGradientLoss, draw: BatchSource, num_batches: int) -> Tensor:
    """``[M, S, P]``: ĝ of ``num_batches`` independent batches from ``draw`` at the current θ and w."""
    if num_batches < 2:
        raise ValueError(f"num_batches={num_batches}; allowed: 2 or more (a variance needs two samples)")
    return torch.stack([batch_gradient(loss, draw()) for _ in range(num_batches)])


def collector_batches(collector: EpisodeCollector, loss: PolicyGradientLoss) -> BatchSource:
    """Batches of the collector with the loss's policy, cast to its dtype and device (as the module does)."""
    param = loss.parameters()[0]

    def draw() -> EpisodeBatch:
        return collector.collect(loss.policy).to(param.device, param.dtype)

    return draw


@dataclass(frozen=True)
class GradientStats:
    """Bias and variance of ĝ over M batches; tensors are ``[S, P]`` or ``[S]`` (per agent).

    Attributes:
        num_samples: M, the batches (times the agents pooled as replicas).
        mean: ḡ.
        var: per-parameter variance of ĝ (unbiased).
        sem: standard error of ḡ, √(var / M).
        total_var: tr Cov[ĝ] = E|ĝ − ḡ|².
        exact: ∇J, or None when unknown; then the fields below are None.
        bias: ḡ − ∇J.
        z: bias / sem (0/0 → 0: a parameter the estimator never moves).
        cosine: cos(ḡ, ∇J).
    """

    num_samples: int
    mean: Tensor
    var: Tensor
    sem: Tensor
    total_var: Tensor
    exact: Tensor | None = None
    bias: Tensor | None = None
    z: Tensor | None = None
    cosine: Tensor | None = None

    @property
    def mean_norm(self) -> Tensor:
        """|ḡ| per agent."""
        return self.mean.norm(dim=-1)

    @property
    def snr(self) -> Tensor:
        """|ḡ|² / tr Cov[ĝ] per agent: how many batches' worth of noise one step's signal is."""
        return self.mean.pow(2).sum(-1) / self.total_var

    def summary(self, agent: int = 0) -> dict[str, float]:
        """One agent's scalars (for a CSV row or a log record)."""
        row = {"num_samples": float(self.num_samples), "grad_norm_mean": float(self.mean_norm[agent]),
               "grad_var": float(self.total_var[agent]), "snr": float(self.snr[agent])}
        if self.bias is not None:
            row.update(grad_bias=float(self.bias[agent].norm()), bias_sem=float(self.sem[agent].norm()),
                       z_max=float(self.z[agent].abs().max()), cosine=float(self.cosine[agent]),
                       exact_norm=float(self.exact[agent].norm()))
        return row


def gradient_stats(samples: Tensor, exact: Tensor | None = None, pool_agents: bool = False) -> GradientStats:
    """Statistics of ``samples`` (``[M, S, P]``) against ``exact`` (``[S, P]`` or ``[P]``; None: unknown).

    ``pool_agents``: the S agents share θ, so their ĝ are M·S replicas of one estimator
    (``exact`` must then be one agent's, ``[P]`` or ``[1, P]``).
    """
    samples = samples.to(torch.float64)
    if pool_agents:
        samples = samples.reshape(-1, 1, samples.shape[-1])
    m = samples.shape[0]
    mean = samples.mean(0)
    var = samples.var(0, unbiased=True)
    sem = (var / m).sqrt()
    stats = dict(num_samples=m, mean=mean, var=var, sem=sem, total_var=var.sum(-1))
    if exact is None:
        return GradientStats(**stats)
    exact = exact.to(torch.float64).reshape(-1, mean.shape[-1]).expand_as(mean)
    bias = mean - exact
    z = torch.where(sem > 0, bias / sem.clamp_min(1e-300), torch.zeros_like(bias))
    cosine = torch.nn.functional.cosine_similarity(mean, exact, dim=-1)
    return GradientStats(**stats, exact=exact, bias=bias, z=z, cosine=cosine)


def measure(loss: PolicyGradientLoss, draw: BatchSource, num_batches: int, exact: Tensor | None = None,
            pool_agents: bool = False) -> GradientStats:
    """ĝ of ``num_batches`` batches at the current θ and w, and their :class:`GradientStats`."""
    return gradient_stats(sample_gradients(loss, draw, num_batches), exact, pool_agents)


def probe_seed(*keys: int) -> int:
    """A 63-bit seed derived from ``keys`` (e.g. agent seed, update): streams no training run uses."""
    return int(np.random.SeedSequence([0x9A7D, *(int(k) for k in keys)]).generate_state(2, np.uint64)[0] >> 1)


def z_to_p_two_sided(z: float) -> float:
    """P(|N(0,1)| ≥ |z|): how surprising a bias z-score is for an unbiased estimator."""
    return math.erfc(abs(z) / math.sqrt(2.0))
