"""Running statistics per agent: observation normalisation and return standardisation.

Locomotion policy gradients need both (Andrychowicz et al. 2021, "What matters in on-policy
RL", §3; Tianshou's REINFORCE benchmark uses them): MuJoCo observations mix positions and
velocities of very different scales, and returns grow by orders of magnitude during training.

:class:`RunningMeanStd` keeps, for each of S agents, the mean and variance of everything it
has seen, merged batch by batch with the parallel formula of Chan, Golub & LeVeque (1979).
It is an ``nn.Module`` whose statistics are float64 *buffers*: they travel in every
checkpoint with the parameters, so ``rlab-eval`` and a resumed run see exactly the
statistics the run had. Nothing here is learned by gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NORM_EPS = 1e-8  # added to the variance before the square root (as Tianshou and SB3 do)


class RunningMeanStd(nn.Module):
    """Per-agent running mean and (population) variance of values shaped ``shape``.

    Args:
        num_agents: S; slice ``s`` holds agent ``s``'s statistics.
        shape: the shape of one value (``(obs_dim,)`` for observations, ``()`` for returns).
        clip: :meth:`normalize` clips its output to ``[−clip, clip]`` (None: no clipping).

    Before the first update the statistics are mean 0, variance 1 (normalising is the
    identity); the first update replaces them by the batch's own.
    """

    def __init__(self, num_agents: int, shape: tuple[int, ...] = (), clip: float | None = None) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(num_agents, *shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(num_agents, *shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(num_agents, dtype=torch.float64))

    def _expand(self, stat: Tensor, like: Tensor) -> Tensor:
        """``[S, *shape]`` → broadcastable to ``like`` = ``[S, ..., *shape]``."""
        extra = like.dim() - stat.dim()
        return stat.reshape(stat.shape[0], *([1] * extra), *stat.shape[1:])

    @torch.no_grad()
    def update(self, x: Tensor, mask: Tensor | None = None, agents: Tensor | None = None) -> None:
        """Merge ``x`` (``[S, ..., *shape]``) into every agent's statistics.

        Args:
            x: the new values; dimensions between the agent's and the value's are samples.
            mask: ``x.shape[:-len(shape)]``-shaped 1/0 weights (padding is 0), or None.
            agents: ``[S]`` bool, the agents to update (others keep theirs), or None for all.
        """
        value_dims = self.mean.dim() - 1
        x = x.to(torch.float64)
        sample_shape = x.shape[: x.dim() - value_dims]
        w = torch.ones(sample_shape, dtype=torch.float64, device=x.device) if mask is None else mask.to(torch.float64)
        if agents is not None:
            w = w * agents.to(w.device, torch.float64).reshape(-1, *([1] * (w.dim() - 1)))
        wx = w.reshape(*w.shape, *([1] * value_dims))
        sample_dims = tuple(range(1, w.dim()))
        n = w.sum(sample_dims) if sample_dims else w  # [S]
        has = n > 0
        if not bool(has.any()):
            return
        n_b = self._expand(n.clamp_min(1.0), self.mean)
        batch_mean = (wx * x).sum(sample_dims) / n_b
        batch_var = (wx * (x - self._expand(batch_mean, x)) ** 2).sum(sample_dims) / n_b
        total = self.count + n
        delta = batch_mean - self.mean
        frac = self._expand(n / total.clamp_min(1e-300), self.mean)
        new_mean = self.mean + delta * frac
        m2 = (self.var * self._expand(self.count, self.var) + batch_var * self._expand(n, batch_var)
              + delta ** 2 * self._expand(self.count * n / total.clamp_min(1e-300), delta))
        new_var = m2 / self._expand(total.clamp_min(1e-300), m2)
        keep = self._expand(has, self.mean)
        self.mean.copy_(torch.where(keep, new_mean, self.mean))
        self.var.copy_(torch.where(keep, new_var, self.var))
        self.count.copy_(torch.where(has, total, self.count))

    def normalize(self, x: Tensor) -> Tensor:
        """``(x − mean) / sqrt(var + 1e-8)`` per agent, clipped to ``±clip``, in ``x``'s dtype."""
        mean, var = self._expand(self.mean, x), self._expand(self.var, x)
        out = ((x.to(torch.float64) - mean) / torch.sqrt(var + NORM_EPS)).to(x.dtype)
        return out.clamp(-self.clip, self.clip) if self.clip is not None else out

    def scale(self, x: Tensor) -> Tensor:
        """``x / sqrt(var + 1e-8)`` per agent (no centring), in ``x``'s dtype."""
        return (x.to(torch.float64) / torch.sqrt(self._expand(self.var, x) + NORM_EPS)).to(x.dtype)


class ReturnStats(nn.Module):
    """Running statistics of a run's returns and Ψ (``algo.normalize_by=running``, ``algo.bootstrap=return_mean``).

    ``returns`` tracks the discounted returns G_t (its mean is the tail value of
    ``bootstrap=return_mean``, as in Tianshou's REINFORCE); ``psi`` tracks Ψ_t before
    normalisation (for REINFORCE Ψ = G, so ``normalize_by=running`` is Tianshou's
    "global rew-to-go normalisation"). Both are read *before* a batch is added, then the
    batch is merged, so a batch is never standardised with its own statistics.
    """

    def __init__(self, num_agents: int) -> None:
        super().__init__()
        self.returns = RunningMeanStd(num_agents)
        self.psi = RunningMeanStd(num_agents)
