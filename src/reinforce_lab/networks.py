"""Agent-batched networks: S independent layers in one module (``train.num_seeds`` agents).

Every parameter has a leading agent dimension S; each agent's slice is initialised from its
own generator exactly as ``nn.Linear`` would be, so agent ``s`` of a batch starts where a run
with that seed starts. Used for π(a|s, θ) (:mod:`reinforce_lab.policies`) and v̂(s, w).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

Generators = Sequence[torch.Generator | None]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


def uniform_per_agent(shape: tuple[int, ...], bound: float, generators: Generators) -> Tensor:
    """``U(−bound, bound)`` with slice ``s`` drawn from ``generators[s]`` (None: torch's global RNG)."""
    return torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * bound for g in generators])


class SeedLinear(nn.Module):
    """``S`` independent linear layers applied to ``[S, ..., in]`` with one batched matmul.

    Initialised per seed like ``nn.Linear`` (U(±1/√in) for weight and bias), each seed from
    its own generator, so agent ``s`` of a batch starts where a run with that seed would.
    """

    def __init__(self, in_features: int, out_features: int, generators: Generators, bias: bool = True) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = nn.Parameter(uniform_per_agent((in_features, out_features), bound, generators))  # [S, in, out]
        if bias:
            self.bias = nn.Parameter(uniform_per_agent((out_features,), bound, generators))  # [S, out]
        else:  # a linear function of the features only, e.g. v̂(s, w) = wᵀx(s) as in S&B §13.4
            self.register_buffer("bias", torch.zeros(len(generators), out_features), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3 and self.weight.shape[-1] != 1:  # [S, N, in], the rollout's per-step call: no reshapes
            return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)
        s, middle = x.shape[0], x.shape[1:-1]
        flat = x.reshape(s, -1, x.shape[-1])  # [S, N, in]
        if self.weight.shape[-1] == 1:
            # A single output (value heads, 1-d actions): batched matmul picks a matrix-vector
            # kernel whose rounding depends on S, which would make agent k of a batch differ
            # in the last bit from a run of its own. Multiply-and-sum rounds the same for any S.
            out = (flat * self.weight[..., 0].unsqueeze(1)).sum(-1, keepdim=True) + self.bias.unsqueeze(1)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight)  # [S, N, out]
        return out.reshape(s, *middle, out.shape[-1])


def mlp(in_dim: int, out_dim: int, hidden_sizes: Sequence[int], activation: str = "tanh",
        generators: Generators = (None,), output_bias: bool = True) -> nn.Sequential:
    """A multilayer perceptron ``in → hidden... → out`` per seed (no activation on the output).

    With no hidden layers and ``output_bias=False`` it is the linear function ``wᵀx``.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; allowed: {', '.join(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    last = in_dim
    for h in hidden_sizes:
        layers += [SeedLinear(last, int(h), generators), _ACTIVATIONS[activation]()]
        last = int(h)
    layers.append(SeedLinear(last, out_dim, generators, bias=output_bias))
    return nn.Sequential(*layers)


def orthogonal_init_(net: nn.Sequential, generators: Generators, gain: float = math.sqrt(2),
                     final_gain: float = 0.01) -> None:
    """Orthogonal weights and zero biases per agent; the output layer scaled to ``final_gain``.

    The initialisation of Andrychowicz et al. 2021 (§3.2, "a small last policy layer": the
    initial action distribution barely depends on the state) that Tianshou's and SB3's
    MuJoCo presets use: every hidden layer orthogonal with gain √2, the output layer orthogonal
    with gain ``final_gain`` (0.01 for π, 1 for v̂). Agent ``s`` draws from ``generators[s]``.
    """
    layers = [m for m in net if isinstance(m, SeedLinear)]
    with torch.no_grad():
        for k, layer in enumerate(layers):
            g_k = final_gain if k == len(layers) - 1 else gain
            for s, g in enumerate(generators):
                w = torch.empty(layer.weight.shape[2], layer.weight.shape[1], dtype=layer.weight.dtype)
                nn.init.orthogonal_(w, gain=g_k, generator=g)
                layer.weight[s] = w.T  # SeedLinear keeps [in, out]; nn.Linear's convention is [out, in]
            layer.bias.zero_()
