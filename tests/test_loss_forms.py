"""The three loss forms are the same policy gradient (docs/loss-forms.md), proven in float64."""

import copy
import csv
import math

import pytest
import torch
from torch.testing import assert_close

from reinforce_lab import losses
from reinforce_lab.policies import CategoricalPolicy, GaussianPolicy, mlp
from reinforce_lab.returns import discount_weights, discounted_returns
from reinforce_lab.rollout import EpisodeBatch
from reinforce_lab.advantages import LearnedBaseline, MonteCarloReturn, TDZero, make_estimator, normalize_advantages
from reinforce_lab.objectives import LossTerms, descend
from reinforce_lab.update import build_update

from conftest import train_in_process

E, T, OBS = 5, 7, 3


pytestmark = pytest.mark.usefixtures("float64")  # conftest: maths in float64


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
    assert float(loss.detach()) == pytest.approx(-3.0 * float((theta @ x).detach()))


def _pg(policy, value_fn, advantage, form, sequential=False, entropy=0.0, normalize=True, gamma_t=True,
        alpha=0.05, alpha_w=0.1):
    return build_update(policy, value_fn, gamma=0.9, gamma_t=gamma_t, normalize=normalize, advantage=advantage,
                        entropy_coef=entropy, loss_form=form, sequential=sequential, step_size=alpha,
                        baseline_step_size=alpha_w)


def step(update, batch, *optimizers):
    """One update as ``ReinforceModule._optimise`` does it: the book's rule, or descend the summed terms."""
    if update.rule is not None:
        return update.rule(batch)
    return descend(update.loss(batch), update.loss.parameters(), [o for o in optimizers if o is not None])


@pytest.mark.parametrize("discrete,sd_std", POLICIES)
@pytest.mark.parametrize("advantage", ["return", "baseline", "td"])
@pytest.mark.parametrize("entropy", [0.0, 0.1])
def test_update_rule_step_equals_sgd_step_on_log_prob(discrete, sd_std, advantage, entropy):
    b = random_batch(discrete)
    pol_a = make_policy(discrete, sd_std)
    pol_b = copy.deepcopy(pol_a)
    v_a = mlp(OBS, 1, (8,)) if advantage != "return" else None
    v_b = copy.deepcopy(v_a)
    step(_pg(pol_a, v_a, advantage, "update_rule", entropy=entropy), b)
    opt = torch.optim.SGD(pol_b.parameters(), lr=0.05)
    vopt = torch.optim.SGD(v_b.parameters(), lr=0.1) if v_b is not None else None
    before = [p.clone() for p in pol_b.parameters()]
    step(_pg(pol_b, v_b, advantage, "log_prob", entropy=entropy), b, opt, vopt)
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
    step(_pg(pol_a, v_a, advantage, "update_rule", sequential=True, alpha=0.01, alpha_w=0.02), b)
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
    step(_pg(pol_a, None, "return", "update_rule", sequential=True), b)
    step(_pg(pol_b, None, "return", "update_rule", sequential=False), b)
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


# --------------------------------------------------------------------------- advantage estimators
def hand_batch() -> EpisodeBatch:
    """Two episodes of 1-d states, γ = 0.5: one terminal (length 3), one cut by a time limit (length 2)."""
    obs = torch.tensor([[[0.5], [1.0], [-1.0]], [[2.0], [0.0], [0.0]]])
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    batch = EpisodeBatch(obs, torch.zeros(2, 3, dtype=torch.long), rewards, mask, torch.tensor([[4.0], [3.0]]),
                         torch.tensor([True, False]), torch.tensor([3, 2]))
    return batch.__class__(*(t.unsqueeze(0) for t in (batch.obs, batch.actions, batch.rewards, batch.mask,
                                                      batch.final_obs, batch.terminated, batch.lengths)))


def identity_value():
    """v̂(s, w) = w s with w = 1: the values are the states."""
    v = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        v.weight.fill_(1.0)
    return v


G_HAND = [[2.75, 3.5, 3.0], [0.5, -1.0, 0.0]]  # G_t = R_{t+1} + γ G_{t+1} by hand


def test_monte_carlo_return_by_hand():
    adv = MonteCarloReturn(0.5, gamma_t=True)(hand_batch())
    assert_close(adv.returns[0], torch.tensor(G_HAND), atol=1e-12, rtol=0)
    assert_close(adv.psi, adv.returns, atol=0, rtol=0)
    assert_close(adv.weights[0], torch.tensor([[1.0, 0.5, 0.25], [1.0, 0.5, 0.0]]), atol=1e-12, rtol=0)
    assert adv.values is None and adv.value_targets is None


def test_learned_baseline_by_hand():
    adv = LearnedBaseline(identity_value(), 0.5)(hand_batch())
    assert_close(adv.value_targets[0], torch.tensor(G_HAND), atol=1e-12, rtol=0)
    assert_close(adv.psi[0], torch.tensor([[2.25, 2.5, 4.0], [-1.5, -1.0, 0.0]]), atol=1e-12, rtol=0)  # G − v̂
    assert adv.values.requires_grad and not adv.psi.requires_grad
    assert_close(adv.weights[0], torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), atol=0, rtol=0)  # no γ^t


def test_td_zero_by_hand():
    b = hand_batch()
    est = TDZero(identity_value(), 0.5)
    adv = est(b)
    # R + γ v̂(S'): v̂ of the terminal state is 0; the time-limit end bootstraps from final_obs = 3.
    targets = torch.tensor([[1 + 0.5 * 1.0, 2 + 0.5 * -1.0, 3.0], [1 + 0.5 * 0.0, -1 + 0.5 * 3.0, 0.0]])
    assert_close(adv.value_targets[0], targets, atol=1e-12, rtol=0)
    assert_close(adv.psi[0], torch.tensor([[1.0, 0.5, 4.0], [-1.0, 0.5, 0.0]]), atol=1e-12, rtol=0)
    for e, length in enumerate(b.lengths[0].tolist()):  # the book's loop computes the same targets
        for t in range(length):
            assert_close(est.step_target(b, adv.returns, e, t), adv.value_targets[:, e, t], atol=0, rtol=0)


def test_normalize_advantages_by_hand():
    b = hand_batch()
    out = normalize_advantages(MonteCarloReturn(0.5)(b).psi, b.mask)
    mean, std = 1.75, math.sqrt(14.75 / 5)  # over the 5 real steps
    expected = (torch.tensor(G_HAND) - mean) / (std + 1e-8) * b.mask[0]
    assert_close(out.psi[0], expected, atol=1e-12, rtol=0)
    assert out.mean.shape == out.std.shape == (1, 1, 1)  # per agent
    assert float(out.mean) == pytest.approx(mean) and float(out.std) == pytest.approx(std)


def test_make_estimator_names_and_errors():
    v = identity_value()
    assert type(make_estimator("return", None, 0.9)) is MonteCarloReturn
    assert type(make_estimator("baseline", v, 0.9)) is LearnedBaseline
    assert type(make_estimator("td", v, 0.9)) is TDZero
    with pytest.raises(ValueError, match="allowed"):
        make_estimator("gae", v, 0.9)
    with pytest.raises(ValueError, match="value function"):
        make_estimator("td", None, 0.9)


# --------------------------------------------------------------------------- the loss contract
COMMON_KEYS = {"train/loss", "train/loss_actor", "train/loss_entropy", "train/entropy", "train/grad_norm"}
CRITIC_KEYS = {"train/loss_value", "train/baseline_loss", "train/explained_variance"}
FORMS = [("log_prob", False), ("cross_entropy", False), ("update_rule", False), ("update_rule", True)]


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("advantage", ["return", "baseline", "td"])
@pytest.mark.parametrize("entropy", [0.0, 0.1])
def test_every_form_logs_the_same_keys_and_start_values(discrete, advantage, entropy):
    b = random_batch(discrete, seed=5)
    metrics = {}
    for form, sequential in FORMS:
        policy = make_policy(discrete, seed=5)
        torch.manual_seed(6)
        v = mlp(OBS, 1, (8,)) if advantage != "return" else None
        update = _pg(policy, v, advantage, form, sequential=sequential, entropy=entropy)
        terms = update.loss(b)
        assert set(terms.terms()) == {"loss_actor", "loss_entropy", "loss_value"}
        opt = torch.optim.SGD(policy.parameters(), lr=0.05)
        vopt = torch.optim.SGD(v.parameters(), lr=0.1) if v is not None else None
        metrics[form, sequential] = step(update, b, opt, vopt)
    expected = COMMON_KEYS | (CRITIC_KEYS if advantage != "return" else set())
    for key, m in metrics.items():
        assert set(m) == expected, key
        assert m["train/loss"] == pytest.approx(m["train/loss_actor"] + m["train/loss_entropy"], abs=1e-12)
        if advantage != "return":
            assert m["train/baseline_loss"] == m["train/loss_value"]
        assert (m["train/loss_entropy"] == 0.0) == (entropy == 0.0)
    # every form reports the losses of the θ and w the batch was sampled with
    reference = metrics["log_prob", False]
    for m in metrics.values():
        for key in expected - {"train/grad_norm"}:
            assert m[key] == pytest.approx(reference[key], abs=1e-10, rel=1e-10), key


def test_loss_terms_total_is_the_old_sum_and_metrics_are_per_agent():
    terms = LossTerms(torch.tensor(1.5), torch.tensor(-0.25), torch.tensor(4.0), entropy=0.7,
                      explained_variance=0.5, num_agents=2)
    assert float(terms.total()) == (1.5 + -0.25) + 4.0
    assert terms.metrics() == {"train/loss": 0.625, "train/loss_actor": 0.75, "train/loss_entropy": -0.125,
                               "train/loss_value": 2.0, "train/baseline_loss": 2.0, "train/entropy": 0.7,
                               "train/explained_variance": 0.5}
    no_critic = LossTerms(torch.tensor(1.5), torch.tensor(0.0), torch.tensor(0.0), entropy=0.7)
    assert set(no_critic.metrics()) == COMMON_KEYS - {"train/grad_norm"}


def test_descend_stops_on_a_non_finite_loss_before_stepping():
    from reinforce_lab.numerics import NonFiniteError

    policy = make_policy(True)
    before = [p.clone() for p in policy.parameters()]
    terms = LossTerms(torch.tensor(float("nan")), torch.tensor(0.0), torch.tensor(0.0), entropy=1.0)
    with pytest.raises(NonFiniteError, match="hint"):
        descend(terms, list(policy.parameters()), [torch.optim.SGD(policy.parameters(), lr=0.1)])
    assert all(torch.equal(p, q) for p, q in zip(policy.parameters(), before))
