"""The baselines estimated from the batch (baselines.py) and the groups that share a reset seed.

Expected values are written out by hand (or computed by plain Python loops), never by the
code under test; the maths runs in float64.
"""

import math
import statistics

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from reinforce_lab.advantages import ADVANTAGES, make_estimator
from reinforce_lab.baselines import BatchMean, GroupNorm, LeaveOneOut, OptimalConstant
from reinforce_lab.config import group_options, validate
from reinforce_lab.envs import make_vec_env
from reinforce_lab.episode_groups import group_order, group_quota
from reinforce_lab.errors import ConfigError
from reinforce_lab.policies import CategoricalPolicy
from reinforce_lab.rollout import EpisodeBatch, EpisodeCollector

from conftest import make_cfg, train_in_process

NEW = ["batch_mean", "rloo", "group_norm", "optimal_constant"]


pytestmark = pytest.mark.usefixtures("float64")  # conftest: maths in float64


def batch_of(rewards: list[list[float]], obs_dim: int = 1, obs=None, actions=None) -> EpisodeBatch:
    """One agent's episodes (a list of reward lists), padded to the longest."""
    e, t = len(rewards), max(len(r) for r in rewards)
    r = torch.zeros(1, e, t)
    mask = torch.zeros(1, e, t)
    for i, rs in enumerate(rewards):
        r[0, i, :len(rs)] = torch.tensor(rs, dtype=torch.float64)
        mask[0, i, :len(rs)] = 1.0
    lengths = torch.tensor([[len(rs) for rs in rewards]])
    obs = torch.zeros(1, e, t, obs_dim) if obs is None else obs
    actions = torch.zeros(1, e, t, dtype=torch.long) if actions is None else actions
    return EpisodeBatch(obs, actions, r, mask, torch.zeros(1, e, obs_dim), torch.ones(1, e, dtype=torch.bool), lengths)


# γ = 1: G = [6, 5, 3], [4, 0], [3, 2, 1], [2]  (0 after an episode's end)
REWARDS = [[1.0, 2.0, 3.0], [4.0, 0.0], [1.0, 1.0, 1.0], [2.0]]


def test_batch_mean_by_hand():
    # b_t = mean over the 4 episodes of G_t: t0 (6+4+3+2)/4 = 3.75, t1 (5+0+2+0)/4 = 1.75, t2 (3+0+1+0)/4 = 1
    psi = BatchMean(1.0)(batch_of(REWARDS)).psi
    expected = [[2.25, 3.25, 2.0], [0.25, -1.75, 0.0], [-0.75, 0.25, 0.0], [-1.75, 0.0, 0.0]]
    assert_close(psi[0], torch.tensor(expected), atol=1e-12, rtol=0)


def test_rloo_by_hand():
    # groups (0, 1) and (2, 3): Ψ = G − the other's G at the same step
    psi = LeaveOneOut(1.0, group_size=2)(batch_of(REWARDS)).psi
    expected = [[6 - 4, 5 - 0, 3 - 0], [4 - 6, 0 - 5, 0], [3 - 2, 2 - 0, 1 - 0], [2 - 3, 0, 0]]
    assert_close(psi[0], torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)
    # one group of 4: G − mean of the other three (episode 0: 6 − 3, 5 − 2/3, 3 − 1/3)
    psi4 = LeaveOneOut(1.0, group_size=4)(batch_of(REWARDS)).psi
    assert_close(psi4[0, 0], torch.tensor([3.0, 13 / 3, 8 / 3]), atol=1e-12, rtol=0)
    # the batch mean is (E−1)/E times the leave-one-out over the whole batch (Kool et al. 2019)
    assert_close(BatchMean(1.0)(batch_of(REWARDS)).psi, 0.75 * psi4, atol=1e-12, rtol=0)


def test_rloo_discounted_returns():
    # γ = 0.5: G = [1 + 0.5·2, 2] = [2, 2] and [4]; Ψ = [2 − 4, 2 − 0], [4 − 2]
    psi = LeaveOneOut(0.5, group_size=2)(batch_of([[1.0, 2.0], [4.0]])).psi
    assert_close(psi[0], torch.tensor([[-2.0, 2.0], [2.0, 0.0]]), atol=1e-12, rtol=0)


def test_group_norm_by_hand():
    # k = 2: (G − mean) / (sample std + ε) = (a − b)/2 / (|a − b|/√2 + ε)
    psi = GroupNorm(1.0, group_size=2)(batch_of(REWARDS)).psi
    eps = 1e-8

    def pair(a, b):
        return (a - b) / 2 / (abs(a - b) / math.sqrt(2) + eps)

    expected = [[pair(6, 4), pair(5, 0), pair(3, 0)], [pair(4, 6), pair(0, 5), 0.0],
                [pair(3, 2), pair(2, 0), pair(1, 0)], [pair(2, 3), 0.0, 0.0]]
    assert_close(psi[0], torch.tensor(expected), atol=1e-12, rtol=0)
    assert abs(expected[0][0] - 1 / math.sqrt(2)) < 1e-7
    # k = 4, by Python's statistics.stdev (n − 1) at each step
    psi4 = GroupNorm(1.0, group_size=4)(batch_of(REWARDS)).psi
    returns = [[6, 5, 3], [4, 0, 0], [3, 2, 1], [2, 0, 0]]
    lengths = [3, 2, 3, 1]
    for t in range(3):
        column = [returns[e][t] for e in range(4)]
        mean, std = statistics.mean(column), statistics.stdev(column)
        for e in range(4):
            want = (column[e] - mean) / (std + eps) if t < lengths[e] else 0.0
            assert abs(float(psi4[0, e, t]) - want) < 1e-12


def test_group_norm_of_equal_returns_is_zero():
    psi = GroupNorm(1.0, group_size=2)(batch_of([[1.0, 1.0], [1.0, 1.0]])).psi
    assert torch.equal(psi, torch.zeros_like(psi))


class LinearSoftmax(nn.Module):
    """π(a|s) = softmax(sᵀθ)_a with θ ``[S=1, d, A]``: ∇_θ ln π(a|s) = s ⊗ (e_a − π(·|s)) (S&B eq. 13.9)."""

    def __init__(self, theta: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(theta.clone())

    def log_prob(self, obs, actions):
        logits = torch.einsum("seti,sia->seta", obs, self.theta)
        return torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


THETA = [[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]]  # d = 2 features, A = 3 actions


def hand_score(s: list[float], a: int) -> list[float]:
    """s ⊗ (e_a − π(·|s)) flattened, with π by math.exp."""
    prefs = [sum(s[i] * THETA[i][b] for i in range(2)) for b in range(3)]
    z = sum(math.exp(p) for p in prefs)
    pi = [math.exp(p) / z for p in prefs]
    return [s[i] * ((b == a) - pi[b]) for i in range(2) for b in range(3)]


OBS = [[[1.0, 0.0], [0.5, -1.0]], [[0.0, 2.0], [0.0, 0.0]], [[-1.0, 1.0], [2.0, 0.5]]]
ACTS = [[0, 2], [1, 0], [2, 1]]  # episode 1 has one step (padding: obs 0, action 0)
LENS = [2, 1, 2]


def optimal_batch(rewards):
    return batch_of(rewards, obs_dim=2, obs=torch.tensor([OBS]), actions=torch.tensor([ACTS]))


def dot(u, v):
    return sum(x * y for x, y in zip(u, v))


def hand_optimal(returns, gamma_t_weights):
    """b*_(i) = Σ_{j≠i} X_j·Y_j / Σ_{j≠i} |Y_j|² with X = Σ_t w_t G_t ∇ln π_t, Y = Σ_t w_t ∇ln π_t."""
    xs, ys = [], []
    for e in range(3):
        scores = [hand_score(OBS[e][t], ACTS[e][t]) for t in range(LENS[e])]
        w = gamma_t_weights[:LENS[e]]
        ys.append([sum(w[t] * sc[k] for t, sc in enumerate(scores)) for k in range(6)])
        xs.append([sum(w[t] * returns[e][t] * sc[k] for t, sc in enumerate(scores)) for k in range(6)])
    return [sum(dot(xs[j], ys[j]) for j in range(3) if j != i) / sum(dot(ys[j], ys[j]) for j in range(3) if j != i)
            for i in range(3)], ys


def test_optimal_constant_by_hand():
    # γ = 0.5 with γ^t weights: G = [1 + 0.5·3, 3] = [2.5, 3], [2], [−1 + 0.5·4, 4] = [1, 4]
    policy = LinearSoftmax(torch.tensor([THETA]))
    est = OptimalConstant(policy, 0.5, gamma_t=True)
    b, _ = hand_optimal([[2.5, 3.0], [2.0], [1.0, 4.0]], [1.0, 0.5])
    adv = est(optimal_batch([[1.0, 3.0], [2.0], [-1.0, 4.0]]))
    expected = [[2.5 - b[0], 3.0 - b[0]], [2.0 - b[1], 0.0], [1.0 - b[2], 4.0 - b[2]]]
    assert_close(adv.psi[0], torch.tensor(expected), atol=1e-12, rtol=0)
    assert policy.theta.grad is None  # no gradient left behind


def test_optimal_constant_is_the_textbook_formula_when_g_t_is_constant():
    # one reward at the end, γ = 1: G_t = G for every t, X = G·Y, b* = Σ|Y_j|² G_j / Σ|Y_j|² over j ≠ i
    returns = [[5.0, 5.0], [-1.0], [2.0, 2.0]]
    policy = LinearSoftmax(torch.tensor([THETA]))
    adv = OptimalConstant(policy, 1.0)(optimal_batch([[0.0, 5.0], [-1.0], [0.0, 2.0]]))
    _, ys = hand_optimal(returns, [1.0, 1.0])
    g = [5.0, -1.0, 2.0]
    for i in range(3):
        others = [j for j in range(3) if j != i]
        b = sum(dot(ys[j], ys[j]) * g[j] for j in others) / sum(dot(ys[j], ys[j]) for j in others)
        assert abs(float(adv.psi[0, i, 0]) - (g[i] - b)) < 1e-12


def test_optimal_constant_products_match_full_batch_autograd():
    # the per-slot forward pass equals differentiating the whole batch's log-probability per episode
    torch.manual_seed(0)
    policy = CategoricalPolicy(3, 4, (8,))
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([[4, 2, 3]])
    mask = (torch.arange(4)[None, None] < lengths[..., None]).double()
    b = EpisodeBatch(torch.randn(1, 3, 4, 3, generator=g), torch.randint(0, 4, (1, 3, 4), generator=g),
                     torch.randn(1, 3, 4, generator=g) * mask, mask, torch.zeros(1, 3, 3),
                     torch.ones(1, 3, dtype=torch.bool), lengths)
    est = OptimalConstant(policy, 0.9)
    returns, weights = est.returns_and_weights(b)
    xy, yy = est.episode_products(b, returns, weights)
    params = list(policy.parameters())
    for e in range(3):
        lp = (policy.log_prob(b.obs, b.actions) * mask)[:, e]
        y = torch.autograd.grad(lp.sum(), params)
        x = torch.autograd.grad((policy.log_prob(b.obs, b.actions) * mask * returns)[:, e].sum(), params)
        assert abs(float(xy[0, e]) - sum(float((u * v).sum()) for u, v in zip(x, y))) < 1e-10
        assert abs(float(yy[0, e]) - sum(float((v * v).sum()) for v in y)) < 1e-10


def test_estimators_are_named_by_algo_advantage():
    policy = LinearSoftmax(torch.tensor([THETA]))
    kinds = {name: type(make_estimator(name, None, 0.9, group_size=2, policy=policy)) for name in NEW}
    assert kinds == {"batch_mean": BatchMean, "rloo": LeaveOneOut, "group_norm": GroupNorm,
                     "optimal_constant": OptimalConstant}
    assert set(NEW) <= set(ADVANTAGES)
    with pytest.raises(ValueError, match="group_size=1"):
        make_estimator("rloo", None, 0.9, group_size=1)


# --- groups: seeds, quotas, slot order ---------------------------------------------------


def test_group_quota_and_order():
    assert group_quota(7, 3, 2, 1).tolist() == [3, 2, 2, 3, 2, 2]  # k = 1: E spread over N (the old rule)
    assert group_quota(6, 4, 1, 2).tolist() == [2, 2, 1, 1]  # 3 groups over 2 copy groups
    # one agent, copies 0..3, k = 2, finishing order: (copy 2), (0), (3), (1), (0), (1)
    spans = [[(2, 0, 3), (0, 0, 5), (3, 0, 6), (1, 0, 7), (0, 7, 9), (1, 9, 12)]]
    # groups: (episode 0 of copies 0, 1) = slots 1, 3; (episode 0 of copies 2, 3) = 0, 2; (episode 1 of 0, 1) = 4, 5
    assert group_order(spans, 4, 2, 6).tolist() == [[1, 3, 0, 2, 4, 5]]


def test_groups_share_their_reset_seeds_on_cartpole():
    envs = make_vec_env("CartPole-v1", 4, vectorization="sync")
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2, (8,)).float()
    collector = EpisodeCollector(envs, 8, seeds=7, group_size=2)
    for _ in range(2):  # two rounds: new seeds each round, groups still shared
        batch = collector.collect(policy)
        first = batch.obs[0, :, 0]  # [E, obs]
        for g in range(4):
            assert torch.equal(first[2 * g], first[2 * g + 1])  # the two episodes of a group
            assert not torch.equal(first[2 * g], first[(2 * g + 2) % 8])  # but not the next group's
        assert (batch.lengths > 0).all()
    envs.close()
    # k = 1 (the default): every copy its own seed
    envs = make_vec_env("CartPole-v1", 4, vectorization="sync")
    batch = EpisodeCollector(envs, 4, seeds=7).collect(policy)
    assert len({tuple(batch.obs[0, e, 0].tolist()) for e in range(4)}) == 4
    envs.close()


def test_native_vector_env_refuses_groups():
    envs = make_vec_env("CartPole-v1", 2, vectorization="native")
    with pytest.raises(ValueError, match="sync, async"):
        EpisodeCollector(envs, 2, seeds=0, group_size=2)
    envs.close()


# --- configuration: every option × loss form, and the one-line refusals ------------------

FORMS = [["loss=log_prob"], ["loss=cross_entropy"], ["loss=update_rule", "optimizer=sgd"],
         ["loss=update_rule", "optimizer=sgd", "loss.sequential=true"]]
GROUPS = ["algo.group_size=2", "env.vectorization=sync", "env.num_envs=4", "algo.episodes_per_update=4"]


def option(adv: str) -> list[str]:
    return [f"algo.advantage={adv}", *GROUPS, *(["algo.normalize_returns=false"] if adv == "optimal_constant" else [])]


@pytest.mark.parametrize("adv", NEW)
@pytest.mark.parametrize("form", FORMS, ids=["log_prob", "cross_entropy", "update_rule", "sequential"])
def test_every_option_composes_with_every_loss_form(adv, form):
    validate(make_cfg([*option(adv), *form]))


@pytest.mark.parametrize("adv", NEW)
@pytest.mark.parametrize("form", [FORMS[1], FORMS[3]], ids=["cross_entropy", "sequential"])
def test_every_option_trains(tmp_path, adv, form):
    _, summary = train_in_process(tmp_path, [*option(adv), *form, "train.max_env_steps=200", "logger=none"])
    assert summary["status"] == "finished" and summary["episodes"] >= 4


@pytest.mark.parametrize("overrides,key", [
    (["algo.advantage=rloo"], "algo.group_size"),
    (["algo.advantage=group_norm", "algo.group_size=0"], "algo.group_size"),
    (["algo.advantage=rloo", "algo.group_size=3", "env.vectorization=sync"], "algo.episodes_per_update"),
    (["algo.advantage=rloo", "algo.group_size=2", "env.vectorization=sync", "env.num_envs=3"], "env.num_envs"),
    (["algo.advantage=rloo", "algo.group_size=2"], "env.vectorization"),  # auto: CartPole's native env
    (["algo.advantage=optimal_constant"], "algo.normalize_returns"),
    (["algo.advantage=batch_mean", "algo.episodes_per_update=1"], "algo.episodes_per_update"),
    (["algo.advantage=optimal_constant", "algo.normalize_returns=false", "algo.episodes_per_update=1"],
     "algo.episodes_per_update"),
])
def test_refusals_are_one_line(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(overrides))
    assert err.value.key == key and "\n" not in str(err.value)


def test_groups_with_the_short_corridor_and_env_that_has_no_native_vector_env():
    validate(make_cfg(["env=short_corridor", "algo.advantage=rloo", "algo.group_size=2",
                       "env.vectorization=sync", "env.num_envs=2", "algo.episodes_per_update=4"]))
    validate(make_cfg(["env=pendulum", "algo.advantage=group_norm", "algo.group_size=2", "env.num_envs=2"]))
    assert np.all(group_quota(4, 2, 1, 2) == [2, 2])


@pytest.mark.parametrize("env", group_options("env"))
@pytest.mark.parametrize("adv", NEW)
def test_every_option_with_every_env_group_composes_or_refuses_in_one_line(env, adv):
    # With its companions, on every env option and loss form: valid, or one line naming a key
    # (e.g. env.vectorization for an env whose copies cannot take one seed each).
    for form in FORMS:
        cfg = make_cfg([f"env={env}", *option(adv), *form])
        try:
            validate(cfg)
        except ConfigError as err:
            assert "\n" not in str(err) and "=" in str(err).split(" ", 1)[0], str(err)
