"""Hand-computed returns, γ^t weights and normalisation (S&B §13.3)."""

import math

import torch
from torch.testing import assert_close

from reinforce_lab.returns import discount_weights, discounted_returns, masked_mean_std, normalize


def test_returns_hand_computed():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.ones(1, 3)
    # G_2 = 3; G_1 = 2 + 0.5*3 = 3.5; G_0 = 1 + 0.5*3.5 = 2.75
    assert_close(discounted_returns(rewards, mask, 0.5), torch.tensor([[2.75, 3.5, 3.0]]))
    assert_close(discounted_returns(rewards, mask, 1.0), torch.tensor([[6.0, 5.0, 3.0]]))
    assert_close(discounted_returns(rewards, mask, 0.0), rewards)


def test_returns_ignore_padding_and_do_not_leak_between_episodes():
    rewards = torch.tensor([[1.0, 1.0, 99.0, 99.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    g = discounted_returns(rewards, mask, 0.9)
    assert_close(g[0], torch.tensor([1.9, 1.0, 0.0, 0.0]))
    assert_close(g[1], torch.tensor([1 + 0.9 + 0.81 + 0.729, 1 + 0.9 + 0.81, 1.9, 1.0]))


def test_returns_leading_batch_dims():
    rewards = torch.ones(2, 3, 5)
    g = discounted_returns(rewards, torch.ones(2, 3, 5), 1.0)
    assert_close(g[1, 2], torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))


def test_gamma_t_weights():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert_close(discount_weights(mask, 0.5, True), torch.tensor([[1.0, 0.5, 0.25, 0.0]]))
    assert_close(discount_weights(mask, 0.5, False), mask)


def test_normalize_over_real_steps_only():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    mean, std = masked_mean_std(x, mask)
    assert math.isclose(float(mean), 2.0) and math.isclose(float(std), 1.0)
    assert_close(normalize(x, mask), torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-6, rtol=0)
