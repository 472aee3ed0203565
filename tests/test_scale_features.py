"""The MuJoCo-scale features on hand-computed numbers: running statistics, tanh squashing,
learning-rate schedules, bootstrapped returns, orthogonal initialisation, fixed-horizon rollouts."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from reinforce_lab.action_bounds import ActionBounds, squashed_log_prob
from reinforce_lab.advantages import LearnedBaseline, MonteCarloReturn
from reinforce_lab.envs import make_vec_env
from reinforce_lab.episode_batch import EpisodeBatch
from reinforce_lab.horizon_rollout import HorizonCollector
from reinforce_lab.lr_schedules import LrSchedule, make_schedule
from reinforce_lab.normalizers import NORM_EPS, ReturnStats, RunningMeanStd
from reinforce_lab.objectives import PolicyGradientLoss
from reinforce_lab.policies import make_policy
from reinforce_lab.update import bootstrap_tail, build_update


# ---------------------------------------------------------------- running statistics
def test_running_mean_std_equals_the_statistics_of_everything_seen():
    rng = np.random.default_rng(0)
    stats = RunningMeanStd(2, (3,))
    seen: list[list[np.ndarray]] = [[], []]
    for k in range(5):
        x = rng.normal(k, 1 + k, size=(2, 7, 3))
        mask = rng.random((2, 7)) < 0.7
        agents = np.array([True, k % 2 == 0])  # agent 1 learns only every other batch
        stats.update(torch.from_numpy(x), torch.from_numpy(mask.astype(float)), torch.from_numpy(agents))
        for a in range(2):
            if agents[a]:
                seen[a].append(x[a][mask[a]])
    for a in range(2):
        allx = np.concatenate(seen[a])
        assert stats.count[a].item() == len(allx)
        np.testing.assert_allclose(stats.mean[a].numpy(), allx.mean(0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(stats.var[a].numpy(), allx.var(0), rtol=1e-12, atol=1e-12)
    x = torch.tensor([[[100.0, 0.0, -100.0]], [[0.0, 0.0, 0.0]]])
    stats.clip = 10.0
    z = stats.normalize(x)
    expected = ((x.double() - stats.mean.unsqueeze(1)) / torch.sqrt(stats.var.unsqueeze(1) + NORM_EPS)).clamp(-10, 10)
    torch.testing.assert_close(z, expected.float())


def test_running_stats_start_as_the_identity_and_ignore_empty_batches():
    stats = RunningMeanStd(1)
    x = torch.tensor([[3.0, -2.0]])
    torch.testing.assert_close(stats.normalize(x), x / math.sqrt(1 + NORM_EPS))
    stats.update(torch.zeros(1, 4), mask=torch.zeros(1, 4))  # padding only: nothing learned
    assert stats.count.item() == 0 and stats.mean.item() == 0 and stats.var.item() == 1


# ---------------------------------------------------------------- tanh squashing
def test_squashed_log_prob_against_a_hand_computation_and_torch_transforms():
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    bounds = ActionBounds(low, high, "tanh")
    u = np.array([0.3, -1.2], dtype=np.float32)
    a = bounds.to_env(u)
    np.testing.assert_allclose(a, (high + low) / 2 + (high - low) / 2 * np.tanh(u), rtol=1e-6)
    mean, std = torch.tensor([0.1, -0.5], dtype=torch.float64), torch.tensor([0.7, 1.3], dtype=torch.float64)
    ut = torch.tensor(u, dtype=torch.float64)
    log_n = sum(-0.5 * ((ut[i] - mean[i]) / std[i]) ** 2 - math.log(std[i]) - 0.5 * math.log(2 * math.pi)
                for i in range(2))
    c = (high - low) / 2
    hand = log_n - sum(math.log(c[i] * (1 - math.tanh(u[i]) ** 2)) for i in range(2))
    ours = squashed_log_prob(log_n, ut, torch.tensor(c))
    assert abs(float(ours) - hand) < 1e-12
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Independent(torch.distributions.Normal(mean, std), 1),
        [torch.distributions.TanhTransform(), torch.distributions.AffineTransform(torch.tensor((high + low) / 2),
                                                                                 torch.tensor(c))])
    assert abs(float(dist.log_prob(torch.tensor(a, dtype=torch.float64))) - hand) < 1e-5  # float32 action


def test_squashing_leaves_the_policy_gradient_unchanged():
    """The change-of-variables term depends on u only: ∇_θ ln p(a) = ∇_θ ln N(u)."""
    mean = torch.tensor([0.2, -0.3], dtype=torch.float64, requires_grad=True)
    std = torch.tensor([0.5, 0.8], dtype=torch.float64)
    u = torch.tensor([1.1, -0.4], dtype=torch.float64)
    log_n = torch.distributions.Normal(mean, std).log_prob(u).sum()
    g_u = torch.autograd.grad(log_n, mean, retain_graph=True)[0]
    g_a = torch.autograd.grad(squashed_log_prob(log_n, u, 2.0), mean)[0]
    torch.testing.assert_close(g_u, g_a, rtol=0, atol=0)


def test_clip_keeps_the_sample_and_tanh_needs_finite_bounds():
    assert ActionBounds(np.array([-1.0]), np.array([1.0]), "clip").to_env(np.array([5.0]))[0] == 5.0
    with pytest.raises(ValueError, match="finite action bounds"):
        ActionBounds(np.array([-np.inf]), np.array([np.inf]), "tanh")
    with pytest.raises(ValueError, match="allowed: clip, tanh"):
        ActionBounds(np.array([-1.0]), np.array([1.0]), "sigmoid")


# ---------------------------------------------------------------- learning-rate schedules
def test_linear_schedule_values():
    s = LrSchedule("linear", 1000)
    assert [s.factor(n) for n in (0, 250, 500, 1000, 1500)] == [1.0, 0.75, 0.5, 0.0, 0.0]
    assert make_schedule("constant", 1000) is None
    with pytest.raises(ValueError, match="needs train.max_env_steps"):
        make_schedule("linear", None)
    steps = [0]
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = s.scheduler(opt, lambda: steps[0])
    lrs = []
    for n in (100, 400, 900, 1200):
        steps[0] = n
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [9e-4, 6e-4, 1e-4, 0.0], rtol=1e-12, atol=1e-18)


# ---------------------------------------------------------------- bootstrapped returns
def _batch(rewards, lengths, terminated, final_obs) -> EpisodeBatch:
    r = torch.tensor(rewards, dtype=torch.float64).unsqueeze(0)  # [1, E, T]
    lengths_t = torch.tensor([lengths])
    mask = (torch.arange(r.shape[-1]) < lengths_t.unsqueeze(-1)).double()
    obs = torch.zeros(*r.shape, 1, dtype=torch.float64)
    return EpisodeBatch(obs, torch.zeros(r.shape, dtype=torch.long), r * mask, mask, torch.tensor([final_obs], dtype=torch.float64),
                        torch.tensor([terminated]), lengths_t)


class _ConstValue(torch.nn.Module):
    """v̂(s) = 10·s (one weight), so that v̂ of a final state is easy to compute by hand."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return 10.0 * obs


def test_bootstrap_targets_on_a_hand_built_truncated_batch(float64):
    # Slot 0: terminal after 3 steps. Slot 1: cut (time limit or horizon) after 2 steps at a state
    # whose v̂ is 5. Slot 2: cut after 1 step, v̂ = −2.
    gamma = 0.9
    batch = _batch([[1.0, 2.0, 3.0], [1.0, 1.0, 0.0], [4.0, 0.0, 0.0]], [3, 2, 1], [True, False, False],
                   [[0.7], [0.5], [-0.2]])
    est = LearnedBaseline(_ConstValue(), gamma)
    est.tail = bootstrap_tail("value", est, None)
    g = est(batch).returns[0]
    expected = [[1 + gamma * 2 + gamma ** 2 * 3, 2 + gamma * 3, 3],  # terminal: no tail (v̂(final) = 7 ignored)
                [1 + gamma * 1 + gamma ** 2 * 5, 1 + gamma * 5, 0],
                [4 + gamma * -2, 0, 0]]
    torch.testing.assert_close(g, torch.tensor(expected), rtol=0, atol=1e-12)
    # none: the book's Monte-Carlo return; return_mean: the running mean of the returns (here 2.5)
    mc = MonteCarloReturn(gamma)
    assert float(mc(batch).returns[0, 1, 0]) == pytest.approx(1 + gamma * 1, abs=1e-12)
    running = ReturnStats(1)
    running.returns.update(torch.tensor([[2.0, 3.0]]))
    mc.tail = bootstrap_tail("return_mean", mc, running)
    assert float(mc(batch).returns[0, 1, 0]) == pytest.approx(1 + gamma + gamma ** 2 * 2.5, abs=1e-12)
    assert float(mc(batch).returns[0, 0, 0]) == pytest.approx(1 + gamma * 2 + gamma ** 2 * 3, abs=1e-12)
    with pytest.raises(ValueError, match="needs a learned"):
        bootstrap_tail("value", mc, None)


def test_running_standardisation_uses_earlier_batches_then_learns_this_one(float64):
    batch = _batch([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]], [3, 1], [True, True], [[0.0], [0.0]])
    policy = make_policy(gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2))
    running = ReturnStats(1)
    running.psi.update(torch.tensor([[0.0, 10.0]]))  # mean 5, var 25
    loss = PolicyGradientLoss(policy, MonteCarloReturn(1.0), running=running, normalize_by="running")
    ev = loss.evaluate(batch)
    g = torch.tensor([[6.0, 5.0, 3.0], [4.0, 0, 0]])
    torch.testing.assert_close(ev.psi[0], (g - 5) / (math.sqrt(25 + NORM_EPS) + 1e-8) * batch.mask[0])
    loss.commit()
    assert running.psi.count.item() == 2 + 4 and running.returns.count.item() == 4
    assert running.psi.mean.item() == pytest.approx((0 + 10 + 6 + 5 + 3 + 4) / 6)


# ---------------------------------------------------------------- orthogonal initialisation
def test_orthogonal_init_is_orthogonal_per_agent_with_a_small_output_layer():
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    policy = make_policy(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(-1, 1, (2,)), hidden_sizes=[8, 8],
                         init="orthogonal", generators=gens)
    layers = [m for m in policy.net if hasattr(m, "weight")]
    for k, layer in enumerate(layers):
        gain = 0.01 if k == len(layers) - 1 else math.sqrt(2)
        for s in range(2):
            w = layer.weight[s].T  # [out, in]
            rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(rows, gain ** 2 * torch.eye(rows.shape[0]), rtol=1e-5, atol=1e-6)
        assert float(layer.bias.detach().abs().max()) == 0
    assert not torch.equal(layers[0].weight[0], layers[0].weight[1])  # each agent its own draw
    again = make_policy(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(-1, 1, (2,)), hidden_sizes=[8, 8],
                        init="orthogonal", generators=[torch.Generator().manual_seed(1)])
    torch.testing.assert_close(again.net[0].weight[0], layers[0].weight[1])  # agent 1 = a run with seed 1


# ---------------------------------------------------------------- fixed-horizon rollouts
def test_horizon_collector_keeps_every_step_and_reports_whole_episodes():
    envs = make_vec_env("CartPole-v1", 4, vectorization="sync")
    gens = [torch.Generator().manual_seed(0)]
    policy = make_policy(envs.single_observation_space, envs.single_action_space, generators=gens)
    collector = HorizonCollector(envs, horizon=64, seeds=[0, 1, 2, 3], generators=gens)
    lengths, returns, in_progress = [], [], np.zeros(4, dtype=np.int64)
    for _ in range(6):
        batch = collector.collect(policy)
        assert batch.num_steps == 64 and float(batch.mask.sum()) == 64  # nothing simulated is thrown away
        ends_terminal = batch.terminated[0][batch.lengths[0] > 0]
        assert int(ends_terminal.sum()) == sum(1 for n in collector.finished.lengths[0] if n < 500)
        assert collector.finished.steps == [64]
        lengths += collector.finished.lengths[0]
        returns += collector.finished.returns[0]
        assert collector.finished.offsets[0] == sorted(collector.finished.offsets[0])
    assert lengths and returns == [float(n) for n in lengths]  # CartPole: return = length
    in_progress = collector._len  # steps of the episodes still running
    assert sum(lengths) + int(in_progress.sum()) == 6 * 64  # every step belongs to exactly one episode


def test_horizon_collector_refuses_next_step_autoreset_and_bad_horizons():
    with pytest.raises(ValueError, match="allowed: env.vectorization=sync, async"):
        HorizonCollector(make_vec_env("CartPole-v1", 4), horizon=64)
    with pytest.raises(ValueError, match="multiple of env.num_envs"):
        HorizonCollector(make_vec_env("CartPole-v1", 4, vectorization="sync"), horizon=66)


def test_build_update_wires_bootstrap_and_running_statistics():
    policy = make_policy(gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2))
    running = ReturnStats(1)
    upd = build_update(policy, bootstrap="return_mean", normalize_by="running", running=running)
    assert upd.loss.running is running and upd.loss.estimator.tail is not None
    assert build_update(policy).loss.estimator.tail is None  # the book's default: no bootstrap
    with pytest.raises(ValueError, match="allowed: none, value, return_mean"):
        build_update(policy, bootstrap="zero")


def test_running_statistics_scale_the_learned_baseline(float64):
    """normalize_by=running: v̂ = σ_G · net(s), so the network fits returns of order 1."""
    from reinforce_lab.networks import mlp

    policy = make_policy(gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2))
    value_fn = mlp(1, 1, [4])
    running = ReturnStats(1)
    running.returns.update(torch.tensor([[0.0, 200.0]]))  # σ_G = 100
    upd = build_update(policy, value_fn, advantage="baseline", normalize_by="running", running=running)
    obs = torch.randn(1, 3, 1)
    torch.testing.assert_close(upd.loss.estimator.values(obs), 100.0 * value_fn(obs).squeeze(-1))
    plain = build_update(policy, value_fn, advantage="baseline")
    torch.testing.assert_close(plain.loss.estimator.values(obs), value_fn(obs).squeeze(-1))
