"""Policy log-probabilities and entropies against values worked by hand."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from reinforce_lab.policies import CategoricalPolicy, GaussianPolicy, PreferencePolicy, make_policy


def _categorical_with_logits(logits):
    pol = CategoricalPolicy(obs_dim=1, n_actions=len(logits), hidden_sizes=())
    with torch.no_grad():
        pol.net[0].weight.zero_()
        pol.net[0].bias.copy_(torch.tensor([logits]))
    return pol


def test_categorical_log_prob_entropy_nll():
    # logits [0, ln 3] → π = [1/4, 3/4]
    pol = _categorical_with_logits([0.0, math.log(3.0)])
    obs = torch.zeros(1, 2, 1)  # [agents, batch, obs_dim]
    actions = torch.tensor([[0, 1]])
    assert_close(pol.log_prob(obs, actions), torch.tensor([[math.log(0.25), math.log(0.75)]]))
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.5623 nats
    assert_close(pol.entropy(obs), torch.tensor([[h, h]]))
    assert_close(pol.nll(obs, actions), -pol.log_prob(obs, actions))


def test_gaussian_log_prob_entropy_nll():
    pol = GaussianPolicy(obs_dim=1, act_dim=2, hidden_sizes=(), log_std_init=math.log(2.0))
    with torch.no_grad():
        pol.net[0].weight.zero_()
        pol.net[0].bias.zero_()
    obs = torch.zeros(1, 1, 1)
    a = torch.tensor([[[1.0, -2.0]]])
    # ln N(a; 0, 2²) per dim = −a²/8 − ln 2 − ½ ln 2π
    expected = sum(-(x ** 2) / 8 - math.log(2.0) - 0.5 * math.log(2 * math.pi) for x in (1.0, -2.0))
    assert_close(pol.log_prob(obs, a), torch.tensor([[expected]]))
    assert_close(pol.nll(obs, a), torch.tensor([[-expected]]))
    h = 2 * 0.5 * math.log(2 * math.pi * math.e * 4.0)
    assert_close(pol.entropy(obs), torch.tensor([[h]]))
    assert_close(pol.entropy(obs), pol.distribution(obs).entropy())


def test_gaussian_std_floor_and_state_dependent_head():
    pol = GaussianPolicy(obs_dim=3, act_dim=1, log_std_init=-20.0, min_std=0.05)
    _, std = pol.mean_std(torch.zeros(1, 4, 3))
    assert torch.all(std == 0.05)
    pol2 = GaussianPolicy(obs_dim=3, act_dim=2, state_dependent_std=True, log_std_init=-1.0)
    assert not hasattr(pol2, "log_std")
    mean, std = pol2.mean_std(torch.randn(1, 5, 3))
    assert mean.shape == std.shape == (1, 5, 2)


def test_preference_policy_initial_probabilities():
    pol = PreferencePolicy(obs_dim=1, n_actions=2, init_probs=[0.95, 0.05])
    probs = pol.distribution(torch.ones(1, 3, 1)).probs
    assert_close(probs, torch.tensor([[[0.95, 0.05]] * 3]))


def test_make_policy_dispatches_on_action_space():
    box = gym.spaces.Box(-1, 1, shape=(3,), dtype=np.float32)
    assert isinstance(make_policy(box, gym.spaces.Discrete(4)), CategoricalPolicy)
    assert isinstance(make_policy(box, gym.spaces.Box(-2, 2, shape=(2,))), GaussianPolicy)
    with pytest.raises(ValueError, match="policy.kind"):
        make_policy(box, gym.spaces.Box(-2, 2, shape=(2,)), kind="preferences")


def test_act_samples_follow_the_distribution():
    torch.manual_seed(0)
    pol = _categorical_with_logits([0.0, math.log(3.0)])
    actions = pol.act(torch.zeros(1, 20000, 1))
    assert abs(actions.float().mean().item() - 0.75) < 0.015
    assert torch.all(pol.act(torch.zeros(1, 5, 1), greedy=True) == 1)


def test_min_prob_floor_matches_the_reference_clip_and_its_gradient():
    # Hand-computed: θ = [ln .99, ln .01] gives π = (.99, .01); with the 0.05 floor of the
    # reference S&B Fig. 13.1 code, π_ε = (.95, .05) and ∇_θ ln π_ε(a) = x(a) − π_ε.
    pol = PreferencePolicy(obs_dim=1, n_actions=2, init_probs=[0.99, 0.01], min_prob=0.05)
    obs = torch.ones(1, 1, 1)
    assert_close(pol.distribution(obs).probs, torch.tensor([[[0.95, 0.05]]]))
    for action, expected in ((0, [1.0 - 0.95, -0.05]), (1, [-0.95, 1.0 - 0.05])):
        pol.zero_grad()
        pol.log_prob(obs, torch.tensor([[action]])).sum().backward()
        assert_close(pol.theta.grad, torch.tensor([expected]))
    # Above the floor nothing changes, bit for bit.
    free = PreferencePolicy(obs_dim=1, n_actions=2, init_probs=[0.7, 0.3], min_prob=0.05)
    plain = PreferencePolicy(obs_dim=1, n_actions=2, init_probs=[0.7, 0.3])
    assert torch.equal(free.logits(obs), plain.logits(obs))
    # Three actions: the low one is raised, the others share the rest in proportion.
    pol3 = CategoricalPolicy(obs_dim=1, n_actions=3, hidden_sizes=(), min_prob=0.1)
    with torch.no_grad():
        pol3.net[0].weight.zero_()
        pol3.net[0].bias.copy_(torch.log(torch.tensor([[0.6, 0.38, 0.02]])))
    assert_close(pol3.distribution(obs).probs, torch.tensor([[[0.6 * 0.9 / 0.98, 0.38 * 0.9 / 0.98, 0.1]]]))
    with pytest.raises(ValueError, match="policy.min_prob"):
        PreferencePolicy(obs_dim=1, n_actions=2, min_prob=0.5)
    with pytest.raises(ValueError, match="policy.min_prob"):
        make_policy(gym.spaces.Box(-1, 1, shape=(3,)), gym.spaces.Box(-2, 2, shape=(2,)), min_prob=0.05)


@pytest.mark.parametrize("min_prob", [0.0, 0.05])
def test_preference_eligibility_vector_is_the_autograd_gradient(min_prob):
    # S&B eq. 13.9: ∇ ln π(a|s, θ) = x(s, a) − Σ_b π(b|s, θ) x(s, b); 3 agents, one step each.
    pol = PreferencePolicy(obs_dim=1, n_actions=2, init_probs=[0.98, 0.02], generators=[None] * 3,
                           min_prob=min_prob)
    with torch.no_grad():
        pol.theta[1] = torch.tensor([0.3, -0.2])
        pol.theta[2] = torch.tensor([-1.0, 1.5])
    obs, actions = torch.ones(3, 1), torch.tensor([1, 0, 1])
    (closed,) = pol.grad_log_prob(obs, actions)
    (auto,) = torch.autograd.grad(pol.log_prob(obs, actions).sum(), [pol.theta])
    assert_close(closed, auto)
    p = pol.distribution(obs).probs
    assert_close(closed[0], torch.tensor([0.0, 1.0]) - p[0])  # hand: onehot(right) − π
