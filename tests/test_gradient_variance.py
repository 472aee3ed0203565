"""The variance lens: exact J and ∇J of the short corridor, measured bias/variance, the training probe."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from reinforce_lab.advantages import LearnedBaseline, MonteCarloReturn
from reinforce_lab.envs import ShortCorridorVectorEnv
from reinforce_lab.envs import start_value as closed_form
from reinforce_lab.exact_gradient import exact_gradient, p_right, preferences_for, start_value
from reinforce_lab.gradient_variance import collector_batches, gradient_stats, measure
from reinforce_lab.networks import mlp
from reinforce_lab.objectives import PolicyGradientLoss
from reinforce_lab.policies import PreferencePolicy
from reinforce_lab.rollout import EpisodeCollector

from conftest import train_in_process


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors: more threads only fight the other processes for the cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- exact J(θ) and ∇J --------------------------------------------------------------------------


def test_exact_value_is_the_book_closed_form_and_fig_13_1_maximum():
    for p in (0.05, 0.3, 0.5, 0.8, 0.95):
        assert float(start_value(preferences_for(p))) == pytest.approx(closed_form(p), rel=1e-12)
    grid = torch.linspace(0.01, 0.99, 9801, dtype=torch.float64)
    thetas = torch.stack([torch.log(1 - grid), torch.log(grid)], -1)
    values = start_value(thetas)
    best = int(values.argmax())
    # S&B Fig. 13.1: the best stochastic policy, p = 2 − √2 ≈ 0.59 with v*(s0) ≈ −11.66.
    assert float(grid[best]) == pytest.approx(2 - math.sqrt(2), abs=2e-4)
    assert float(values[best]) == pytest.approx(-11.657, abs=1e-3)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.59, 0.8])
def test_gradient_matches_finite_differences(p, gamma):
    theta = preferences_for(p) + torch.tensor([0.3, 0.3], dtype=torch.float64)  # off-centre: θ, not p
    grad = exact_gradient(theta, gamma)
    h = 1e-5
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        fd = (start_value(theta + e, gamma) - start_value(theta - e, gamma)) / (2 * h)
        assert float(grad[i]) == pytest.approx(float(fd), abs=1e-8 * max(1.0, abs(float(fd))))
    # One number is controlled: the gradient is dJ/dp · p(1 − p) · (−1, +1).
    assert float(grad.sum()) == pytest.approx(0.0, abs=1e-9)


def test_probability_floor_true_and_straight_through_gradients():
    theta = preferences_for(0.02)
    assert float(p_right(theta, 0.05)) == pytest.approx(0.05)
    assert float(start_value(theta, min_prob=0.05)) == pytest.approx(closed_form(0.05), rel=1e-12)
    assert exact_gradient(theta, min_prob=0.05).abs().max() == 0  # p is clipped: J does not move
    # The estimator's score is the floored softmax's: its target is ∇J at p = 0.05.
    assert torch.allclose(exact_gradient(theta, min_prob=0.05, straight_through=True),
                          exact_gradient(preferences_for(0.05)), rtol=1e-10)
    free = preferences_for(0.3)  # where the floor does not bind the two agree
    assert torch.equal(exact_gradient(free, min_prob=0.05), exact_gradient(free))


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_exact_value_matches_monte_carlo_returns(gamma):
    p, n = 0.3, 256
    rng = np.random.default_rng(0)
    envs = ShortCorridorVectorEnv(n, max_episode_steps=None)
    envs.reset(seed=0)
    totals, current, t = [], np.zeros(n), np.zeros(n, dtype=np.int64)
    while len(totals) < 20000:
        _, r, term, _, _ = envs.step((rng.random(n) < p).astype(np.int64))
        current += gamma ** t * r
        t += 1
        for i in np.flatnonzero(term):
            totals.append(current[i])
        current[term], t[term] = 0.0, 0
    totals = np.asarray(totals)
    se = totals.std(ddof=1) / math.sqrt(len(totals))
    assert abs(totals.mean() - float(start_value(preferences_for(p), gamma))) < 4 * se


# --- measured bias and variance at a fixed θ ----------------------------------------------------

AGENTS, ENVS_PER_AGENT, EPISODES, BATCHES = 8, 16, 16, 20


def corridor_loss(p: float, baseline: float | None, gamma: float = 1.0) -> tuple[PolicyGradientLoss, EpisodeCollector]:
    """S agents at the same θ (π(right) = p), each with its own stream: replicas of one estimator."""
    gens = [torch.Generator().manual_seed(100 + i) for i in range(AGENTS)]
    policy = PreferencePolicy(1, 2, [1 - p, p], gens)
    if baseline is None:
        estimator = MonteCarloReturn(gamma, gamma_t=True)
    else:  # v̂(s, w) = w·x(s) with x = [1] (aliased states), w fixed: a constant baseline
        value_fn = mlp(1, 1, [], generators=gens, output_bias=False)
        with torch.no_grad():
            for w in value_fn.parameters():
                w.fill_(baseline)
        estimator = LearnedBaseline(value_fn, gamma, gamma_t=True)
    envs = ShortCorridorVectorEnv(AGENTS * ENVS_PER_AGENT, max_episode_steps=1000)
    collector = EpisodeCollector(envs, EPISODES, seeds=list(range(AGENTS * ENVS_PER_AGENT)), num_seeds=AGENTS,
                                 generators=gens)
    return PolicyGradientLoss(policy, estimator, normalize=False), collector


@pytest.mark.parametrize("p", [0.3, 0.8])
@pytest.mark.parametrize("baseline", [None, -14.0])
def test_unbiased_estimators_agree_with_the_exact_gradient(p, baseline):
    loss, collector = corridor_loss(p, baseline)
    theta_before = loss.policy.theta.detach().clone()
    exact = exact_gradient(theta_before[0])
    stats = measure(loss, collector_batches(collector, loss), BATCHES, exact, pool_agents=True)
    assert torch.equal(loss.policy.theta, theta_before) and loss.policy.theta.grad is None  # θ untouched
    assert stats.num_samples == AGENTS * BATCHES
    assert stats.z.abs().max() < 4, f"bias {stats.bias} with SEM {stats.sem}"
    assert float(stats.cosine[0]) > 0.99
    assert float(stats.total_var[0]) > 0 and torch.allclose(stats.total_var, stats.var.sum(-1))


def test_discounted_estimator_with_gamma_t_targets_the_discounted_gradient():
    loss, collector = corridor_loss(0.3, None, gamma=0.9)
    exact = exact_gradient(loss.policy.theta.detach()[0], gamma=0.9)
    stats = measure(loss, collector_batches(collector, loss), BATCHES, exact, pool_agents=True)
    assert stats.z.abs().max() < 4


def test_statistics_of_known_samples():
    samples = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[2.0, 1.0]]])  # M = 3, S = 1, P = 2
    stats = gradient_stats(samples, torch.tensor([2.0, 2.0]))
    assert stats.mean.tolist() == [[2.0, 1.0]] and stats.var.tolist() == [[1.0, 1.0]]
    assert float(stats.total_var[0]) == 2.0 and stats.bias.tolist() == [[0.0, -1.0]]
    assert float(stats.z[0, 1]) == pytest.approx(-math.sqrt(3))
    assert float(stats.cosine[0]) == pytest.approx(6 / math.sqrt(5 * 8))


# --- the probe during training ------------------------------------------------------------------

CORRIDOR = ["env=short_corridor", "policy=preferences", "policy.min_prob=0.05", "optimizer=sgd",
            "optimizer.lr=0.001", "algo.gamma=1", "algo.normalize_returns=false", "algo.episodes_per_update=4",
            "env.num_envs=2", "train.max_episodes=32", "train.max_env_steps=100000000", "logger=csv"]


def episodes(run_dir, seed: str | None = None):
    with open(run_dir / "episodes.csv") as fh:
        rows = list(csv.reader(fh))
    return rows if seed is None else [r for r in rows[1:] if r[-1] == seed]


@pytest.mark.parametrize("extra", [[], ["algo=reinforce_baseline", "train.num_seeds=2", "train.async_agents=true"]])
def test_probe_leaves_training_bit_identical_and_logs(tmp_path, extra):
    plain, _ = train_in_process(tmp_path / "plain", CORRIDOR + extra)
    probe = ["callbacks=variance_probe", "callbacks.variance_probe.every_updates=2",
             "callbacks.variance_probe.num_batches=3"]
    probed, _ = train_in_process(tmp_path / "probed", CORRIDOR + extra + probe)
    if not extra:
        assert episodes(probed) == episodes(plain) and len(episodes(plain)) > 30
    else:
        # Asynchronous agents rerun their rounds in flight after a probe, so which agent's
        # batch a call returns first (the order of rows) may change; each agent's own
        # episodes, and so its θ, are bit for bit the same.
        for seed in ("0", "1"):
            assert episodes(probed, seed) == episodes(plain, seed) and len(episodes(plain, seed)) > 30
    with open(probed / "csv" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/grad_var")]
    assert len(rows) >= 3
    for key in ("train/grad_var", "train/grad_norm_mean", "train/grad_bias", "train/grad_cosine", "env_step"):
        assert all(math.isfinite(float(r[key])) for r in rows), key
    assert float(rows[-1]["train/probe_env_steps"]) > 0
