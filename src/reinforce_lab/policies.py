"""Policies π(a|s, θ): categorical for ``Discrete`` actions, diagonal Gaussian for ``Box``.

Every policy exposes the same four methods, so losses never branch on the action type:
``distribution(obs)``, ``log_prob(obs, actions)``, ``nll(obs, actions)`` (the
cross-entropy / negative log-likelihood of the taken action, computed by the library
loss that people usually reach for) and ``entropy(obs)``. :func:`make_policy` is the one
place that dispatches on the action space (as in Stable-Baselines3).

**Seeds as a batch dimension.** Every parameter has a leading dimension of size
``num_seeds`` (S): S independent agents live in one module, each with its own slice of
every weight, initialised from its own generator. Inputs are ``[S, ..., obs_dim]`` and
outputs ``[S, ...]``. Because the agents share no parameter and every optimiser in
``torch.optim`` is elementwise, the gradient of the *sum* of the agents' losses updates
each agent exactly as a separate run would. A plain run is simply S = 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from .networks import Generators, mlp
from .probability_floor import check_min_prob, floor_probs
from .streams import draw
from .tricks import module_call

if TYPE_CHECKING:
    from .action_bounds import ActionBounds
    from .streams import AgentStreams

def _per_seed(x: Tensor, like: Tensor) -> Tensor:
    """Broadcast a per-seed ``[S, k]`` tensor to ``like``'s shape ``[S, ..., k]``."""
    return x.reshape(x.shape[0], *([1] * (like.dim() - 2)), x.shape[-1]).expand_as(like)


class Policy(nn.Module):
    """Interface of every policy; ``obs`` is ``[..., obs_dim]`` (already normalised: :meth:`observe`)."""

    discrete: bool
    num_seeds: int
    bounds: "ActionBounds | None" = None  # policy.bound for Box actions

    @property
    def obs_norm(self) -> nn.Module | None:
        """``policy.obs_norm``'s statistics (a submodule: :mod:`reinforce_lab.policy_features`), or None."""
        return self._modules.get("obs_norm")  # (a class attribute would hide the registered submodule)

    def observe(self, obs: Tensor, update: Tensor | None = None) -> Tensor:
        """Raw ``[S, n, obs_dim]`` observations → the policy's inputs; ``update``: ``[S]`` agents whose stats learn them."""
        if self.obs_norm is not None and update is not None:
            self.obs_norm.update(obs, agents=update)
        return obs if self.obs_norm is None else self.obs_norm.normalize(obs)

    def env_action(self, action: np.ndarray) -> np.ndarray:
        """What the env receives for a sampled action (``policy.bound``; :mod:`reinforce_lab.action_bounds`)."""
        return action if self.bounds is None else self.bounds.to_env(action)

    def distribution(self, obs: Tensor) -> Distribution:
        raise NotImplementedError

    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        """``ln π(A|S, θ)``, shape ``obs.shape[:-1]``."""
        return self.distribution(obs).log_prob(actions)

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`log_prob` with its graph and :meth:`entropy` (no graph: a diagnostic), in one pass where possible."""
        with torch.no_grad():
            entropy = self.entropy(obs)
        return self.log_prob(obs, actions), entropy

    def nll(self, obs: Tensor, actions: Tensor) -> Tensor:
        """Cross-entropy (discrete) / Gaussian NLL (continuous) of the taken action."""
        raise NotImplementedError

    def entropy(self, obs: Tensor) -> Tensor:
        """Closed-form entropy ``H(π(·|S))``, shape ``obs.shape[:-1]``."""
        return self.distribution(obs).entropy()

    @torch.no_grad()
    def act(self, obs: Tensor, greedy: bool = False, generators: "AgentStreams | None" = None) -> Tensor:
        """Sample an action (or take the mode when ``greedy``), without building a graph.

        ``generators`` draws each agent's randomness from its own generator (None: torch's
        global RNG); see :func:`reinforce_lab.streams.draw`.
        """
        raise NotImplementedError


class CategoricalPolicy(Policy):
    """Softmax in action preferences ``h(s, a, θ)`` from an MLP (S&B §13.1, eq. 13.2).

    ``min_prob > 0`` floors every action probability (see :func:`floor_probs`).
    """

    discrete = True

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", generators: Generators = (None,), min_prob: float = 0.0) -> None:
        super().__init__()
        self.num_seeds = len(generators)
        self.min_prob = check_min_prob(min_prob, n_actions)
        self.net = mlp(obs_dim, n_actions, hidden_sizes, activation, generators)

    def logits(self, obs: Tensor) -> Tensor:
        return self._floor(module_call.forward(self.net, obs))

    def _floor(self, logits: Tensor) -> Tensor:
        return floor_probs(logits, self.min_prob) if self.min_prob > 0 else logits

    def distribution(self, obs: Tensor) -> Categorical:
        return Categorical(logits=self.logits(obs))

    # log_prob and entropy in closed form: the same values as Categorical's, without building
    # a distribution object (and validating its arguments) on every call of a hot loop.
    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        return self.log_prob_and_entropy(obs, actions)[0]

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        log_p = torch.log_softmax(self.logits(obs), dim=-1)  # one forward pass for both
        with torch.no_grad():
            entropy = -(log_p.exp() * log_p).sum(-1)
        return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), entropy

    def entropy(self, obs: Tensor) -> Tensor:
        log_p = torch.log_softmax(self.logits(obs), dim=-1)
        return -(log_p.exp() * log_p).sum(-1)

    def nll(self, obs: Tensor, actions: Tensor) -> Tensor:
        logits = self.logits(obs)
        flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), actions.reshape(-1).long(),
                               reduction="none")
        return flat.reshape(actions.shape)

    @torch.no_grad()
    def act(self, obs: Tensor, greedy: bool = False, generators: "AgentStreams | None" = None) -> Tensor:
        logits = self.logits(obs)
        if greedy:
            return logits.argmax(-1)
        # Inverse CDF: one uniform per state, the first action whose cumulative probability
        # exceeds it (cheaper than building a Categorical, or Gumbel-max's uniform per action).
        cdf = torch.softmax(logits, dim=-1).cumsum_(-1)
        u = draw(torch.rand, cdf[..., :1], generators)
        return torch.searchsorted(cdf, u).squeeze_(-1).clamp_max_(logits.shape[-1] - 1)


class PreferencePolicy(CategoricalPolicy):
    """State-independent action preferences ``h(a, θ) = θᵀx(a)`` with one-hot ``x``.

    This is the book's parameterisation for the short corridor (S&B Example 13.1,
    Fig. 13.1): ``x(s, right) = [1, 0]``, ``x(s, left) = [0, 1]`` — here ``θ[a]`` is the
    preference of action ``a`` (0 = left, 1 = right). ``init_probs`` sets θ so that the
    initial policy has those probabilities (e.g. π(right) = 0.05).
    """

    def __init__(self, obs_dim: int, n_actions: int, init_probs: Sequence[float] | None = None,
                 generators: Generators = (None,), min_prob: float = 0.0) -> None:
        nn.Module.__init__(self)
        self.num_seeds = len(generators)
        self.min_prob = check_min_prob(min_prob, n_actions)
        if init_probs is None:
            theta = torch.zeros(n_actions)
        else:
            p = torch.as_tensor(list(init_probs), dtype=torch.get_default_dtype())
            if p.numel() != n_actions or (p <= 0).any() or abs(float(p.sum()) - 1.0) > 1e-6:
                raise ValueError(f"policy.init_probs={list(init_probs)} must be {n_actions} positive probabilities summing to 1")
            theta = p.log() - p.log().mean()
        self.theta = nn.Parameter(theta.repeat(self.num_seeds, 1))  # [S, n_actions]

    def logits(self, obs: Tensor) -> Tensor:
        return self._floor(self.theta.reshape(self.num_seeds, *([1] * (obs.dim() - 2)), -1).expand(
            *obs.shape[:-1], self.theta.shape[-1]))

    @torch.no_grad()
    def grad_log_prob(self, obs: Tensor, actions: Tensor) -> list[Tensor]:
        """The eligibility vector ``∇_θ ln π(a|s, θ) = x(s, a) − Σ_b π(b|s, θ) x(s, b)`` in closed form.

        S&B eq. 13.9 (Exercise 13.3) for a softmax in linear preferences; with one-hot x it
        is ``onehot(a) − π``. ``obs`` is ``[S, obs_dim]`` (one step per agent) and the result
        has ``θ``'s shape — the same numbers autograd gives for ``ln π``, without a graph,
        which makes the book's per-step loop (``loss.sequential``) several times faster.
        """
        probs = torch.softmax(self.logits(obs), dim=-1)  # [S, n_actions]
        return [F.one_hot(actions.long(), probs.shape[-1]).to(probs.dtype) - probs]


class GaussianPolicy(Policy):
    """Diagonal Gaussian ``N(μ(s, θ_μ), σ²)`` for continuous actions (S&B §13.7).

    The mean comes from an MLP; the standard deviation from a learned state-independent
    log-std parameter (default) or a state-dependent head (``state_dependent_std``), with
    ``σ ≥ min_std`` so that the log-density stays finite. Actions are sampled from the
    unbounded Gaussian and the *sampled* action is what ``log_prob`` is evaluated at; the
    environment sees it clipped to the action bounds (``envs.ClipToBounds``, as gymnasium's ``ClipAction``), so
    the gradient is the one of the distribution we actually sampled from.
    """

    discrete = False

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", log_std_init: float = 0.0, min_std: float = 1e-3,
                 state_dependent_std: bool = False, generators: Generators = (None,)) -> None:
        super().__init__()
        self.num_seeds = len(generators)
        self.min_std = float(min_std)
        self.state_dependent_std = bool(state_dependent_std)
        out = 2 * act_dim if self.state_dependent_std else act_dim
        self.net = mlp(obs_dim, out, hidden_sizes, activation, generators)
        self.act_dim = act_dim
        if self.state_dependent_std:
            with torch.no_grad():
                self.net[-1].bias[:, act_dim:].fill_(log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((self.num_seeds, act_dim), float(log_std_init)))  # [S, act_dim]

    def mean_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        out = module_call.forward(self.net, obs)
        if self.state_dependent_std:
            mean, log_std = out[..., : self.act_dim], out[..., self.act_dim:]
        else:
            mean, log_std = out, _per_seed(self.log_std, out)
        return mean, log_std.exp().clamp_min(self.min_std)

    def distribution(self, obs: Tensor) -> Independent:
        mean, std = self.mean_std(obs)
        return Independent(Normal(mean, std), 1)

    def nll(self, obs: Tensor, actions: Tensor) -> Tensor:
        mean, std = self.mean_std(obs)
        per_dim = F.gaussian_nll_loss(mean, actions, std.pow(2), full=True, reduction="none",
                                      eps=min(1e-6, self.min_std ** 2 / 2))
        return per_dim.sum(-1)

    def entropy(self, obs: Tensor) -> Tensor:
        _, std = self.mean_std(obs)
        # H = Σ_i ½ ln(2πe σ_i²): closed form, no sampling.
        return (0.5 * math.log(2 * math.pi * math.e) + std.log()).sum(-1)

    @torch.no_grad()
    def act(self, obs: Tensor, greedy: bool = False, generators: "AgentStreams | None" = None) -> Tensor:
        mean, std = self.mean_std(obs)
        return mean if greedy else mean + std * draw(torch.randn, mean, generators, fill=0.0)


def make_policy(observation_space: gym.Space, action_space: gym.Space, kind: str = "mlp",
                hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh",
                log_std_init: float = 0.0, min_std: float = 1e-3, state_dependent_std: bool = False,
                init_probs: Sequence[float] | None = None, min_prob: float = 0.0, bound: str = "clip",
                init: str = "default", obs_norm: bool = False, obs_clip: float | None = 10.0,
                generators: Generators = (None,)) -> Policy:
    """Build the policy that fits ``action_space``: the one place that dispatches on it.

    Args:
        observation_space: a flat ``Box`` (or ``Discrete``, one-hot encoded by the env wrapper).
        action_space: ``Discrete`` → :class:`CategoricalPolicy`; ``Box`` → :class:`GaussianPolicy`.
        kind: ``mlp`` or ``preferences`` (S&B Example 13.1's state-independent softmax).
        hidden_sizes, activation: the MLP's shape.
        log_std_init, min_std, state_dependent_std: Gaussian settings (S&B §13.7).
        init_probs: initial action probabilities for ``preferences``.
        min_prob: floor on every action probability of a categorical policy (0: none; see
            :func:`floor_probs`).
        bound, init, obs_norm, obs_clip: action bounding, initialisation and observation
            normalisation (:func:`~reinforce_lab.policy_features.add_features`).
        generators: one per agent (``num_seeds`` of them); each initialises its agent's slice.
    """
    from .policy_features import add_features

    policy = _make(observation_space, action_space, kind, hidden_sizes, activation, log_std_init, min_std,
                   state_dependent_std, init_probs, min_prob, generators)
    return add_features(policy, observation_space, action_space, bound=bound, init=init, obs_norm=obs_norm,
                        obs_clip=obs_clip, generators=generators)


def _make(observation_space: gym.Space, action_space: gym.Space, kind: str, hidden_sizes: Sequence[int],
          activation: str, log_std_init: float, min_std: float, state_dependent_std: bool,
          init_probs: Sequence[float] | None, min_prob: float, generators: Generators) -> Policy:
    """The policy class that fits the action space (see :func:`make_policy`)."""
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        n = int(action_space.n)
        if kind == "preferences":
            return PreferencePolicy(obs_dim, n, init_probs, generators, min_prob)
        if kind != "mlp":
            raise ValueError(f"policy.kind={kind!r}; allowed: mlp, preferences")
        return CategoricalPolicy(obs_dim, n, hidden_sizes, activation, generators, min_prob)
    if isinstance(action_space, gym.spaces.Box):
        if min_prob:
            raise ValueError(f"policy.min_prob={min_prob}; allowed: 0 for continuous actions (a floor on categorical probabilities)")
        if kind != "mlp":
            raise ValueError(f"policy.kind={kind!r} needs a Discrete action space; allowed for Box: mlp")
        return GaussianPolicy(obs_dim, int(np.prod(action_space.shape)), hidden_sizes, activation,
                              log_std_init, min_std, state_dependent_std, generators)
    raise ValueError(f"action space {action_space} is not supported; allowed: Discrete, Box")
