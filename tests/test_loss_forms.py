"""The three loss forms are the same policy gradient (docs/loss-forms.md), proven in float64."""

import copy
import csv

import pytest
import torch
from torch.testing import assert_close

from reinforce_lab import losses
from reinforce_lab.policies import CategoricalPolicy, GaussianPolicy, mlp
from reinforce_lab.returns import discount_weights, discounted_returns
from reinforce_lab.rollout import EpisodeBatch
from reinforce_lab.update import PolicyGradient

from conftest import train_in_process

E, T, OBS = 5, 7, 3


@pytest.fixture(autouse=True)
def float64():
    """Maths tests run in float64 (so 1e-10 means something); restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def random_batch(discrete: bool, seed: int = 0, act_dim: int = 2) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1, 6])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    obs = torch.randn(E, T, OBS, generator=g) * mask[..., None]
    if discrete:
        actions = torch.randint(0, 4, (E, T), generator=g) * mask.long()
    else:
        actions = torch.randn(E, T, act_dim, generator=g) * 2 * mask[..., None]
    rewards = torch.randn(E, T, generator=g) * mask
    batch = EpisodeBatch(obs, actions, rewards, mask, torch.randn(E, OBS, generator=g),
                         torch.tensor([True, False, True, True, False]), lengths)
    return batch.__class__(*(t.unsqueeze(0) for t in (batch.obs, batch.actions, batch.rewards, batch.mask,
                                                      batch.final_obs, batch.terminated, batch.lengths)))


def make_policy(discrete: bool, state_dependent_std: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    if discrete:
        return CategoricalPolicy(OBS, 4, (16,))
    return GaussianPolicy(OBS, 2, (16,), log_std_init=-0.3, state_dependent_std=state_dependent_std)


def grads(loss, module):
    return torch.autograd.grad(loss, list(module.parameters()))


POLICIES = [(True, False), (False, False), (False, True)]


@pytest.mark.parametrize("discrete,sd_std", POLICIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_prob_and_cross_entropy_gradients_agree(discrete, sd_std, seed):
    policy = make_policy(discrete, sd_std, seed)
    b = random_batch(discrete, seed)
    psi = torch.randn(1, E, T) * b.mask
    w = discount_weights(b.mask, 0.9, True)
    g_lp = grads(losses.log_prob_loss(policy.log_prob(b.obs, b.actions), psi, w), policy)
    g_ce = grads(losses.cross_entropy_loss(policy.nll(b.obs, b.actions), psi, w), policy)
    for a, c in zip(g_lp, g_ce):
        assert_close(a, c, atol=1e-10, rtol=0)
    assert max(float(a.abs().max()) for a in g_lp) > 1e-3  # not trivially zero


def test_surrogate_is_the_general_update_rule():
    # θ ← θ + α C ∇g(θ) with g(θ) = θ·x and C = 3: the descent step on the surrogate is that update.
    theta = torch.tensor([0.5, -1.0], requires_grad=True)
    x = torch.tensor([2.0, 4.0])
    c = torch.tensor(3.0, requires_grad=True)  # gradient must not flow into C
    loss = losses.surrogate(c * torch.ones(()), theta @ x)
    loss.backward()
    assert_close(-theta.grad, 3.0 * x)
    assert c.grad is None
    assert float(loss.detach()) == pytest.approx(-3.0 * float(theta @ x))


def _pg(policy, value_fn, advantage, form, sequential=False, entropy=0.0, normalize=True, gamma_t=True,
        alpha=0.05, alpha_w=0.1):
    return PolicyGradient(policy, value_fn, gamma=0.9, gamma_t=gamma_t, normalize=normalize, advantage=advantage,
                          entropy_coef=entropy, loss_form=form, sequential=sequential, step_size=alpha,
                          baseline_step_size=alpha_w)


@pytest.mark.parametrize("discrete,sd_std", POLICIES)
@pytest.mark.parametrize("advantage", ["return", "baseline", "td"])
@pytest.mark.parametrize("entropy", [0.0, 0.1])
def test_update_rule_step_equals_sgd_step_on_log_prob(discrete, sd_std, advantage, entropy):
    b = random_batch(discrete)
    pol_a = make_policy(discrete, sd_std)
    pol_b = copy.deepcopy(pol_a)
    v_a = mlp(OBS, 1, (8,)) if advantage != "return" else None
    v_b = copy.deepcopy(v_a)
    _pg(pol_a, v_a, advantage, "update_rule", entropy=entropy).step(b)
    opt = torch.optim.SGD(pol_b.parameters(), lr=0.05)
    vopt = torch.optim.SGD(v_b.parameters(), lr=0.1) if v_b is not None else None
    before = [p.clone() for p in pol_b.parameters()]
    _pg(pol_b, v_b, advantage, "log_prob", entropy=entropy).step(b, opt, vopt)
    for pa, pb, p0 in zip(pol_a.parameters(), pol_b.parameters(), before):
        assert_close(pa, pb, atol=1e-12, rtol=0)
        assert not torch.equal(pb, p0)
    if v_a is not None:
        for pa, pb in zip(v_a.parameters(), v_b.parameters()):
            assert_close(pa, pb, atol=1e-12, rtol=0)


def hand_written_sequential(policy, value_fn, b, advantage, alpha=0.05, alpha_w=0.1, gamma=0.9):
    """The book's pseudocode (S&B §13.3, §13.4, §13.5), written out with .backward() per step."""
    b = b.__class__(*(t[0] for t in (b.obs, b.actions, b.rewards, b.mask, b.final_obs, b.terminated, b.lengths)))
    G = discounted_returns(b.rewards, b.mask, gamma)
    n_ep = b.lengths.shape[0]
    value = (lambda x: value_fn(x.unsqueeze(0))[0]) if value_fn is not None else None  # one agent
    log_pi = lambda s, a: policy.log_prob(s[None, None], a[None, None])[0, 0]  # noqa: E731
    # normalisation statistics of Ψ computed once, at the parameters the batch starts from
    with torch.no_grad():
        if advantage == "return":
            psi0 = G
        elif advantage == "baseline":
            psi0 = G - value(b.obs).squeeze(-1)
        else:
            v = value(b.obs).squeeze(-1)
            nxt = torch.cat([v[:, 1:], torch.zeros(n_ep, 1)], 1)
            for e in range(n_ep):
                nxt[e, b.lengths[e] - 1] = 0.0 if b.terminated[e] else value(b.final_obs[e][None]).squeeze()
            psi0 = b.rewards + gamma * nxt - v
        real = b.mask.bool()
        mean, std = psi0[real].mean(), psi0[real].std(unbiased=False)
    for e in range(n_ep):
        for t in range(int(b.lengths[e])):
            s, a = b.obs[e, t], b.actions[e, t]
            if advantage == "return":
                delta = G[e, t]
            else:
                v = value(s[None]).squeeze()
                if advantage == "baseline":
                    target = G[e, t]
                else:
                    last = t + 1 == int(b.lengths[e])
                    nxt = b.final_obs[e] if last else b.obs[e, t + 1]
                    boot = 0.0 if (last and b.terminated[e]) else float(value(nxt[None]))
                    target = b.rewards[e, t] + gamma * boot
                delta = float(target - v)
                value_fn.zero_grad()
                v.backward()
                with torch.no_grad():
                    for p in value_fn.parameters():
                        p += alpha_w * delta / n_ep * p.grad  # w ← w + α_w δ ∇v̂(S_t, w)
            psi = (delta - mean) / (std + 1e-8)
            policy.zero_grad()
            obj = log_pi(s, a)
            obj.backward()
            with torch.no_grad():
                for p in policy.parameters():
                    p += alpha * gamma ** t * psi / n_ep * p.grad  # θ ← θ + α γ^t Ψ ∇ln π(A_t|S_t, θ)


@pytest.mark.parametrize("discrete,sd_std", POLICIES)
@pytest.mark.parametrize("advantage", ["return", "baseline", "td"])
def test_sequential_rule_equals_hand_written_loop(discrete, sd_std, advantage):
    b = random_batch(discrete, seed=3)
    pol_a = make_policy(discrete, sd_std, seed=3)
    pol_b = copy.deepcopy(pol_a)
    v_a = mlp(OBS, 1, (8,)) if advantage != "return" else None
    v_b = copy.deepcopy(v_a)
    p0 = [p.clone() for p in pol_a.parameters()]
    _pg(pol_a, v_a, advantage, "update_rule", sequential=True, alpha=0.01, alpha_w=0.02).step(b)
    hand_written_sequential(pol_b, v_b, b, advantage, alpha=0.01, alpha_w=0.02)
    assert max(float((p - q).abs().max()) for p, q in zip(pol_a.parameters(), p0)) > 1e-3
    for pa, pb in zip(pol_a.parameters(), pol_b.parameters()):
        assert_close(pa, pb, atol=1e-10, rtol=1e-12)
    if v_a is not None:
        for pa, pb in zip(v_a.parameters(), v_b.parameters()):
            assert_close(pa, pb, atol=1e-10, rtol=1e-12)


def test_sequential_differs_from_batched_but_agrees_to_first_order():
    b = random_batch(True, seed=4)
    pol_a = make_policy(True, seed=4)
    pol_b = copy.deepcopy(pol_a)
    p0 = [p.clone() for p in pol_a.parameters()]
    _pg(pol_a, None, "return", "update_rule", sequential=True).step(b)
    _pg(pol_b, None, "return", "update_rule", sequential=False).step(b)
    da = torch.cat([(p - q).flatten() for p, q in zip(pol_a.parameters(), p0)])
    db = torch.cat([(p - q).flatten() for p, q in zip(pol_b.parameters(), p0)])
    assert not torch.allclose(da, db, atol=1e-12)
    assert torch.nn.functional.cosine_similarity(da, db, dim=0) > 0.95


def _returns(run_dir):
    with open(run_dir / "episodes.csv") as fh:
        return [(r["episode"], r["env_step"], r["return"]) for r in csv.DictReader(fh)]


@pytest.mark.parametrize("env,episodes", [("cartpole", 50), ("pendulum", 20)])
def test_three_forms_give_identical_training_runs(tmp_path, env, episodes):
    """Same seed + plain SGD: the three forms write the same episodes.csv.

    In float64 (``device.precision=64-true``) all three agree; in float32 ``update_rule``
    and ``log_prob`` still agree bit for bit (same floating-point operations), while
    ``F.cross_entropy``/``F.gaussian_nll_loss`` round differently in the last bit, which the
    chaotic dynamics amplify after a few dozen episodes (experiments/loss_forms/).
    """
    torch.set_default_dtype(torch.float32)  # as rlab-train runs
    common = [f"env={env}", "optimizer=sgd", "optimizer.lr=0.01", f"train.max_episodes={episodes}",
              "train.max_env_steps=1000000", "logger=none", "seed=3", "env.num_envs=2",
              "algo.episodes_per_update=2", "algo.gamma_t=true"]
    runs = {form: _returns(train_in_process(tmp_path / form, common + [f"loss={form}", "device.precision=64-true"])[0])
            for form in ("log_prob", "cross_entropy", "update_rule")}
    assert len(runs["log_prob"]) == episodes
    assert runs["log_prob"] == runs["cross_entropy"] == runs["update_rule"]
    f32 = {form: _returns(train_in_process(tmp_path / f"{form}32", common + [f"loss={form}"])[0])
           for form in ("log_prob", "update_rule")}
    assert f32["log_prob"] == f32["update_rule"]
    # and the updates really changed the policy: a different lr gives different episodes
    other = _returns(train_in_process(tmp_path / "other", common + ["loss=log_prob", "optimizer.lr=0.5"])[0])
    assert other != f32["log_prob"]


def test_update_rule_rejects_other_optimizers():
    from reinforce_lab.config import ConfigError, validate

    from conftest import make_cfg

    with pytest.raises(ConfigError, match="plain SGD") as err:
        validate(make_cfg(["loss=update_rule", "optimizer=adam"]))
    assert err.value.key == "optimizer"
    with pytest.raises(ConfigError, match="momentum"):
        validate(make_cfg(["loss=update_rule", "optimizer=sgd", "optimizer.momentum=0.9"]))
    validate(make_cfg(["loss=update_rule", "optimizer=sgd"]))
