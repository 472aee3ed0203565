"""Returns, per-step weights and normalisation on padded episode batches.

Every function here is a pure tensor function on tensors shaped ``[..., T]`` (any
leading batch dimensions, time last) with a ``mask`` of the same shape that is 1 on real
steps and 0 on padding after an episode ended. Sutton & Barto (2018) §13.3 define the
return ``G_t = Σ_{k=t+1}^{T} γ^{k-t-1} R_k``; here ``rewards[..., t]`` holds ``R_{t+1}``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """Discounted reward-to-go ``G_t = r_t + γ G_{t+1}`` of every step (S&B §13.3).

    Args:
        rewards: ``[..., T]`` rewards, ``rewards[..., t]`` received after action ``A_t``.
        mask: ``[..., T]`` 1 for real steps, 0 for padding after the episode's end.
        gamma: discount factor γ in [0, 1].

    Returns:
        ``[..., T]`` returns, 0 on padding.
    """
    if rewards.shape != mask.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and mask {tuple(mask.shape)} differ")
    mask = mask.to(rewards.dtype)
    rewards = rewards * mask
    if rewards.device.type == "cpu" and rewards.dtype in (torch.float32, torch.float64) and rewards.numel():
        return torch.from_numpy(_reverse_recurrence(rewards.detach().numpy(), gamma)) * mask
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    # A reverse scan: O(T) small vector ops, each over every episode of the batch at once.
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running * mask[..., t]
        returns[..., t] = running
    return returns * mask


def _reverse_recurrence(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + γ G_{t+1}`` along the last axis, in float64, cast back to the input's dtype.

    The loop runs over time only, each step one numpy operation over every episode of the
    batch. Its results are bit for bit those of ``scipy.signal.lfilter([1], [1, -γ])`` on the
    reversed axis (the same products and sums in float64, tested), used here before: importing
    ``scipy.signal`` cost every job 0.5–1 s at its first update (benchmarks part (e)). Padding
    only follows an episode's end and its rewards are 0, so G stays 0 there.
    """
    x = rewards.astype(np.float64, copy=False)
    out = np.empty_like(x)
    running = np.zeros(x.shape[:-1])
    for t in range(x.shape[-1] - 1, -1, -1):
        running = x[..., t] + gamma * running
        out[..., t] = running
    return out.astype(rewards.dtype, copy=False)


def with_tail(rewards: Tensor, lengths: Tensor, tail: Tensor, gamma: float) -> Tensor:
    """Rewards whose discounted returns include a bootstrapped tail: ``G_t + γ^{L−t} · tail``.

    Adding ``γ · tail`` to each episode's last reward ``R_L`` makes the reverse recurrence
    ``G_t = R_{t+1} + γ G_{t+1}`` of :func:`discounted_returns` give
    ``G_t = Σ_{k=t+1}^{L} γ^{k−t−1} R_k + γ^{L−t} · tail``: the return of an episode cut
    before its end (a time limit, or a fixed-horizon rollout), with the value of the state it
    was cut at standing for the missing rewards (S&B §3.4: the truncated return plus a bootstrap).

    Args:
        rewards: ``[..., E, T]`` rewards (0 on padding).
        lengths: ``[..., E]`` episode lengths (0: an empty slot, which gets no tail).
        tail: ``[..., E]`` the value to bootstrap from; 0 where the episode really ended.
        gamma: discount γ.
    """
    last = (lengths - 1).clamp_min(0).unsqueeze(-1)
    tail = (tail * (lengths > 0).to(tail.dtype)).to(rewards.dtype).unsqueeze(-1)
    return rewards.scatter_add(-1, last, gamma * tail)


def discount_weights(mask: Tensor, gamma: float, enabled: bool) -> Tensor:
    """The book's per-step factor ``w_t = γ^t`` (S&B §13.3 pseudocode), or 1 when disabled.

    Most deep-RL code drops γ^t (it makes late steps count almost nothing); the book keeps
    it because it is part of the gradient of the start-state value ``v_π(s_0)``.

    Args:
        mask: ``[..., T]`` real-step mask; the weights are 0 on padding.
        gamma: discount factor γ.
        enabled: multiply by γ^t when true (``algo.gamma_t``).

    Returns:
        ``[..., T]`` weights.
    """
    mask = mask.to(torch.get_default_dtype() if not mask.is_floating_point() else mask.dtype)
    if not enabled:
        return mask
    t = torch.arange(mask.shape[-1], dtype=mask.dtype, device=mask.device)
    return mask * torch.pow(torch.as_tensor(gamma, dtype=mask.dtype), t)


def masked_mean_std(x: Tensor, mask: Tensor, dims: tuple[int, ...] | None = None) -> tuple[Tensor, Tensor]:
    """Mean and (population) standard deviation of ``x`` over the real steps.

    Args:
        dims: dimensions to reduce (kept, for broadcasting); None reduces everything. With
            agents as a leading dimension, ``dims=(-2, -1)`` gives per-agent statistics.
    """
    mask = mask.to(x.dtype)
    if dims is None:
        dims = tuple(range(x.dim()))
    n = mask.sum(dims, keepdim=True).clamp_min(1.0)
    mean = (x * mask).sum(dims, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(dims, keepdim=True) / n
    if len(dims) == x.dim():
        return mean.reshape(()), var.sqrt().reshape(())
    return mean, var.sqrt()


def normalize(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Standardise ``x`` to zero mean and unit std over the real steps (``algo.normalize_returns``).

    Subtracting the batch mean is a constant baseline (S&B §13.4) and dividing by the std
    is a per-update step-size scale; neither biases the direction of the gradient
    estimate much, and together they make one learning rate work across tasks.
    """
    mean, std = masked_mean_std(x, mask)
    return (x - mean) / (std + eps) * mask.to(x.dtype)
