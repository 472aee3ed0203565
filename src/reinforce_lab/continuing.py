"""Actor–critic with eligibility traces for continuing tasks: S&B §13.6, boxed pseudocode p. 333.

No episodes and no discounting; performance is the average reward r(π) (eq. 13.15) and the
TD error is the differential one, with an estimate R̄ of r(π):

    δ ← R − R̄ + v̂(S', w) − v̂(S, w)        R̄ ← R̄ + α^R̄ δ
    z^w ← λ^w z^w + ∇v̂(S, w)               w ← w + α^w δ z^w
    z^θ ← λ^θ z^θ + ∇ln π(A|S, θ)           θ ← θ + α^θ δ z^θ          S ← S'

Unlike the episodic rules (:mod:`reinforce_lab.traces`, :mod:`reinforce_lab.book_rule`),
this one is applied *online*: each action is sampled with the θ of its own step, exactly as in
the box, because the stream is one unending trajectory and not a batch of whole episodes.
It is a standalone trainer (not yet an ``algo`` option of ``rlab-train``): it steps one
gymnasium env of one agent and can be run in segments of N steps; S, z^θ, z^w and R̄ carry
over from one segment to the next. A time-limit truncation, if the env has one, is only a
window boundary: the stream continues from S' (no reset; ``terminated`` is an error).
For logging, an "episode" is a fixed window of W steps and its return the sum of the W
rewards (so return / W is the window's average reward).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from .book_rule import ascend
from .policies import CategoricalPolicy
from .traces import decay_and_add


def sample_action(policy: CategoricalPolicy, obs: Tensor, generator: torch.Generator) -> int:
    """A ~ π(·|S, θ) by inverse CDF with one uniform from ``generator`` (reproducible in tests)."""
    with torch.no_grad():
        cdf = torch.softmax(policy.logits(obs.reshape(1, 1, -1)), dim=-1).reshape(-1).cumsum(0)
        u = torch.rand((), generator=generator, dtype=cdf.dtype)
        return int(torch.searchsorted(cdf, u.reshape(1)).clamp_max(cdf.numel() - 1))


class ContinuingActorCritic:
    """The p. 333 update for one agent (S = 1 of the project's agent-batched π and v̂).

    Args:
        policy: π(a|s, θ), a categorical policy with one agent.
        value_fn: v̂(s, w) with one agent (``[1, N, obs_dim] → [1, N, 1]``).
        step_size: α^θ.  value_step_size: α^w.  avg_reward_step_size: α^R̄.
        lambda_theta, lambda_w: trace decays λ^θ, λ^w ∈ [0, 1].
        avg_reward: the initial R̄ (the book: e.g. 0).
    """

    def __init__(self, policy: CategoricalPolicy, value_fn: nn.Module, *, step_size: float, value_step_size: float,
                 avg_reward_step_size: float, lambda_theta: float, lambda_w: float, avg_reward: float = 0.0) -> None:
        self.policy, self.value_fn = policy, value_fn
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.vparams = [p for p in value_fn.parameters() if p.requires_grad]
        self.alpha, self.alpha_w, self.alpha_r = float(step_size), float(value_step_size), float(avg_reward_step_size)
        self.lambda_theta, self.lambda_w = float(lambda_theta), float(lambda_w)
        self.avg_reward = float(avg_reward)
        self.z_theta = [torch.zeros_like(p) for p in self.params]  # z^θ ← 0
        self.z_w = [torch.zeros_like(p) for p in self.vparams]     # z^w ← 0

    def value(self, obs: Tensor) -> Tensor:
        """v̂(s, w) of one state ``[obs_dim]`` as a scalar."""
        return self.value_fn(obs.reshape(1, 1, -1))[0, 0, 0]

    def update(self, obs: Tensor, action: int, reward: float, next_obs: Tensor) -> float:
        """One step of the box after A was taken in S and R, S' observed; returns δ."""
        v = self.value(obs)
        with torch.no_grad():
            v_next = self.value(next_obs)
        delta = float(reward - self.avg_reward + v_next - v.detach())  # δ ← R − R̄ + v̂(S') − v̂(S)
        self.avg_reward += self.alpha_r * delta                        # R̄ ← R̄ + α^R̄ δ
        decay_and_add(self.z_w, self.lambda_w, torch.autograd.grad(v, self.vparams, allow_unused=True))
        log_pi = self.policy.log_prob(obs.reshape(1, 1, -1), torch.tensor([[action]]))[0, 0]
        decay_and_add(self.z_theta, self.lambda_theta, torch.autograd.grad(log_pi, self.params, allow_unused=True))
        ascend(self.vparams, self.z_w, self.alpha_w * delta)           # w ← w + α^w δ z^w
        ascend(self.params, self.z_theta, self.alpha * delta)          # θ ← θ + α^θ δ z^θ
        return delta


@dataclass
class ContinuingStream:
    """One unending trajectory of ``env``, advanced in segments; S and the generator carry over.

    Attributes:
        env: a gymnasium env that never terminates.
        rule: the :class:`ContinuingActorCritic` applied at every step.
        generator: the source of the actions' uniforms.
        window: W, steps per logged "episode".
        window_returns: the sum of rewards of every completed window.
        window_avg_rewards: R̄ at the end of every completed window.
    """

    env: gym.Env
    rule: ContinuingActorCritic
    generator: torch.Generator
    window: int = 100
    seed: int | None = None
    window_returns: list[float] = field(default_factory=list)
    window_avg_rewards: list[float] = field(default_factory=list)
    steps: int = 0
    _obs: Tensor | None = None
    _running: float = 0.0

    def _tensor(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(obs, dtype=self.rule.params[0].dtype)

    def advance(self, num_steps: int) -> None:
        """Apply the p. 333 loop for ``num_steps`` more steps of the stream."""
        if self._obs is None:  # the stream's one reset
            self._obs = self._tensor(self.env.reset(seed=self.seed)[0])
        for _ in range(int(num_steps)):
            action = sample_action(self.rule.policy, self._obs, self.generator)
            next_obs, reward, terminated, _, _ = self.env.step(action)  # a truncation is only a boundary
            if terminated:
                raise ValueError(f"{self.env.spec.id if self.env.spec else self.env} terminated: not a continuing task")
            next_t = self._tensor(next_obs)
            self.rule.update(self._obs, action, float(reward), next_t)
            self._obs, self.steps, self._running = next_t, self.steps + 1, self._running + float(reward)
            if self.steps % self.window == 0:
                self.window_returns.append(self._running)
                self.window_avg_rewards.append(self.rule.avg_reward)
                self._running = 0.0
