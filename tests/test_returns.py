"""Hand-computed returns, γ^t weights and normalisation (S&B §13.3)."""

import math

import numpy as np
import pytest

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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_reverse_recurrence_is_bit_for_bit_scipys_linear_filter(dtype, gamma):
    # The numpy loop replaced scipy.signal.lfilter (whose import cost every job 0.5–1 s): the
    # same float64 products and sums, so the same bits, for both dtypes (episodes.csv unchanged).
    from scipy.signal import lfilter

    rewards = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 7, 60))).to(dtype)
    lengths = torch.tensor([[60, 3, 0, 59, 1, 17, 60]] * 3)
    mask = (torch.arange(60) < lengths[..., None]).to(dtype)
    ours = discounted_returns(rewards, mask, gamma)
    flipped = (rewards * mask).flip(-1).numpy()
    theirs = torch.from_numpy(lfilter([1.0], [1.0, -gamma], flipped, axis=-1).astype(flipped.dtype)).flip(-1) * mask
    assert ours.dtype == dtype and torch.equal(ours, theirs)
