"""The short corridor at numpy speed: the closed-form per-step rule and the corridor collector.

- :class:`~reinforce_lab.closed_form_rule.ClosedFormRule` (``loss.closed_form``) equals the autograd
  loop of :mod:`reinforce_lab.book_rule` to 1e-12 in float64: θ, w and the logged metrics.
- :class:`~reinforce_lab.corridor_rollout.CorridorCollector` returns the generic collector's
  batches bit for bit and leaves the generators in the same states.
- The Fig. 13.1 / 13.2 presets take both fast paths; ``loss.closed_form=false`` turns the rule's off.
"""

from __future__ import annotations

from dataclasses import fields

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import make_cfg, train_in_process
from reinforce_lab.corridor_rollout import CorridorCollector, collector_class
from reinforce_lab.envs import SHORT_CORRIDOR_ID, make_vec_env
from reinforce_lab.envs.short_corridor import GOAL, NEXT_STATE, ShortCorridorEnv, walk_to_goal
from reinforce_lab.episode_batch import EpisodeBatch
from reinforce_lab.networks import mlp
from reinforce_lab.policies import PreferencePolicy, make_policy
from reinforce_lab.rollout import EpisodeCollector
from reinforce_lab.closed_form_rule import ClosedFormRule
from reinforce_lab.update import build_update


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread, as ``train.torch_threads`` gives a run (and much faster on a busy CPU)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def batch_of(seed: int, agents: int, episodes: int, steps: int, n_actions: int, obs_dim: int) -> EpisodeBatch:
    """Random episodes of different lengths (agent 1's first slot empty, as a stopped agent's)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (agents, episodes), generator=g)
    lengths[0, 0], lengths[1, 0] = steps, 0
    mask = (torch.arange(steps) < lengths.unsqueeze(-1)).to(torch.get_default_dtype())
    obs = torch.rand(agents, episodes, steps, obs_dim, generator=g) * mask.unsqueeze(-1)
    actions = torch.randint(0, n_actions, (agents, episodes, steps), generator=g) * mask.long()
    rewards = torch.randn(agents, episodes, steps, generator=g) * mask
    return EpisodeBatch(obs, actions, rewards, mask, torch.rand(agents, episodes, obs_dim, generator=g),
                        torch.rand(agents, episodes, generator=g) < 0.8, lengths)


def agents_of(n_actions: int, min_prob: float, baseline: str | None, obs_dim: int = 3, seeds=range(4)):
    gens = [torch.Generator().manual_seed(10 + s) for s in seeds]
    init = [0.9, 0.03, 0.07][:n_actions] if n_actions == 3 else [0.97, 0.03]
    policy = PreferencePolicy(obs_dim, n_actions, [p / sum(init) for p in init], generators=gens, min_prob=min_prob)
    value_fn = mlp(obs_dim, 1, [], generators=gens, output_bias=baseline == "bias") if baseline else None
    return policy, value_fn


def rule_of(policy, value_fn, closed_form: bool, gamma: float, normalize: bool):
    return build_update(policy, value_fn, gamma=gamma, gamma_t=True, normalize=normalize,
                        advantage="baseline" if value_fn is not None else "return", loss_form="update_rule",
                        sequential=True, step_size=0.2, baseline_step_size=0.3, closed_form=closed_form).rule


def params(policy, value_fn) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*policy.parameters(), *(value_fn.parameters() if value_fn else [])]]


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("n_actions", [2, 3])
@pytest.mark.parametrize("min_prob", [0.0, 0.05])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("baseline,normalize", [(None, False), (None, True), ("linear", False), ("bias", True)])
def test_closed_form_equals_the_autograd_loop(monkeypatch, n_actions, min_prob, gamma, baseline, normalize):
    fast = agents_of(n_actions, min_prob, baseline)
    slow = agents_of(n_actions, min_prob, baseline)
    fast_rule = rule_of(*fast, closed_form=True, gamma=gamma, normalize=normalize)
    assert fast_rule.closed_form is not None
    # the torch loop with autograd's ∇ln π (not the policy's own closed form)
    monkeypatch.delattr(PreferencePolicy, "grad_log_prob")
    slow_rule = rule_of(*slow, closed_form=False, gamma=gamma, normalize=normalize)
    assert slow_rule.closed_form is None
    floored = 0
    for k in range(3):  # a few updates, each from its own batch of 2 episodes per agent
        batch = batch_of(k, 4, 2, 12, n_actions, 3)
        floored += int((torch.softmax(fast[0].theta, -1) < min_prob).any())
        m_fast, m_slow = fast_rule(batch), slow_rule(batch)
        assert m_fast.keys() == m_slow.keys()
        for key in m_fast:  # (the torch loop rounds each step's ‖direction‖² to float32)
            tol = 1e-6 if key == "train/grad_norm" else 1e-12
            assert m_fast[key] == pytest.approx(m_slow[key], rel=tol, abs=1e-12), key
    for a, b in zip(params(*fast), params(*slow)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12), (a - b).abs().max()
    assert (fast[0].theta - agents_of(n_actions, min_prob, baseline)[0].theta).abs().max() > 0.1  # θ moved
    if min_prob:
        assert floored  # the floor acted in these updates


@pytest.mark.usefixtures("float64")
def test_closed_form_with_running_statistics(monkeypatch):
    """``algo.normalize_by=running``: Ψ standardised with the statistics of earlier batches, then committed."""
    from reinforce_lab.normalizers import ReturnStats

    def update(closed_form: bool):
        policy, _ = agents_of(2, 0.05, None)
        return build_update(policy, None, gamma=0.95, gamma_t=True, normalize=True, normalize_by="running",
                            running=ReturnStats(4), loss_form="update_rule", sequential=True, step_size=0.2,
                            closed_form=closed_form)

    fast = update(True)
    monkeypatch.delattr(PreferencePolicy, "grad_log_prob")
    slow = update(False)
    assert fast.rule.closed_form is not None and slow.rule.closed_form is None
    for k in range(3):
        batch = batch_of(10 + k, 4, 2, 12, 2, 3)
        for u in (fast, slow):
            u.rule(batch)
            u.loss.commit()
    assert torch.allclose(fast.loss.policy.theta, slow.loss.policy.theta, rtol=0, atol=1e-12)
    assert torch.allclose(fast.loss.running.psi.mean, slow.loss.running.psi.mean, rtol=0, atol=1e-12)


@pytest.mark.parametrize("double", [True, False])
def test_closed_form_agents_do_not_interact(request, double):
    """Agent k of a batch of agents is moved exactly (bit for bit) as a run of agent k alone."""
    if double:
        request.getfixturevalue("float64")
    batch = batch_of(3, 5, 2, 20, 2, 1)
    policy, value_fn = agents_of(2, 0.05, "linear", obs_dim=1, seeds=range(5))
    rule_of(policy, value_fn, True, 1.0, False)(batch)
    for k in (0, 2, 4):
        alone, v_alone = agents_of(2, 0.05, "linear", obs_dim=1, seeds=[k])
        one = EpisodeBatch(*(getattr(batch, f.name)[k:k + 1] for f in fields(batch)))
        rule_of(alone, v_alone, True, 1.0, False)(one)
        assert torch.equal(alone.theta[0], policy.theta[k]) and torch.equal(v_alone[0].weight[0], value_fn[0].weight[k])


def test_closed_form_is_chosen_only_where_it_fits():
    policy, value_fn = agents_of(2, 0.0, "linear")
    assert ClosedFormRule.fits(rule_of(policy, None, True, 1.0, False).loss)
    assert ClosedFormRule.fits(rule_of(policy, value_fn, True, 1.0, False).loss)
    deep = mlp(3, 1, [4], generators=[torch.Generator() for _ in range(4)])
    assert not ClosedFormRule.fits(rule_of(policy, deep, True, 1.0, False).loss)  # v̂ with a hidden layer
    entropy = build_update(policy, None, entropy_coef=0.1, loss_form="update_rule", sequential=True, step_size=0.1)
    assert entropy.rule.closed_form is None
    td = build_update(policy, value_fn, advantage="td", loss_form="update_rule", sequential=True, step_size=0.1,
                      baseline_step_size=0.1)
    assert td.rule.closed_form is None
    mlp_policy = make_policy(gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(2), kind="mlp", hidden_sizes=[4])
    mlp_rule = build_update(mlp_policy, None, loss_form="update_rule", sequential=True, step_size=0.1).rule
    assert mlp_rule.closed_form is None
    batched = build_update(policy, None, loss_form="update_rule", sequential=False, step_size=0.1)
    assert batched.rule.closed_form is None


# --- the corridor collector -----------------------------------------------------------------------

def test_walk_to_goal_is_the_envs_dynamics():
    rng = np.random.default_rng(0)
    rights = rng.random((300, 64)) < rng.random((300, 1))
    start = rng.integers(0, 4, 300)
    first, end = walk_to_goal(start, rights)
    env = ShortCorridorEnv()
    for i in range(300):
        env.state, hit = int(start[i]), 0
        for j, right in enumerate(rights[i]):
            if env.state != GOAL:
                env.step(int(right))
                hit = j + 1 if env.state == GOAL and hit == 0 else hit
        assert (hit if start[i] != GOAL else 0, env.state) == (first[i], end[i])
    assert NEXT_STATE[GOAL].tolist() == [GOAL, GOAL]


def collectors(cls, agents: int, cap: int, dtype: torch.dtype, init, min_prob: float):
    envs = make_vec_env(SHORT_CORRIDOR_ID, agents, max_episode_steps=cap)
    gens = [torch.Generator().manual_seed(s) for s in range(agents)]
    policy = make_policy(envs.single_observation_space, envs.single_action_space, kind="preferences",
                         init_probs=init, min_prob=min_prob, generators=gens).to(dtype)
    collector = cls(envs, 1, [k * 10_000 for k in range(agents)], num_seeds=agents, generators=gens)
    collector.dtype = dtype
    return policy, collector, gens


@pytest.mark.parametrize("agents,cap,dtype,init,min_prob", [
    (8, 1000, torch.float32, [0.95, 0.05], 0.05),  # the preset: π(right) = 0.05 on the floor
    (6, 70, torch.float64, [0.99, 0.01], 0.0),      # long episodes cut at a cap that is no multiple of 64
    (5, 64, torch.float32, [0.5, 0.5], 0.0),        # a cap at a block boundary
    (7, 200, torch.float32, [0.02, 0.98], 0.0),     # π(right) → 1: left-right cycles until the cap
])
def test_corridor_collector_returns_the_generic_batches_bit_for_bit(agents, cap, dtype, init, min_prob):
    generic = collectors(EpisodeCollector, agents, cap, dtype, init, min_prob)
    fast = collectors(CorridorCollector, agents, cap, dtype, init, min_prob)
    assert fast[1].fits(fast[0])
    rng = np.random.default_rng(0)
    for r in range(8):
        if r == 4:  # some agents stop: their slots are empty and they draw nothing
            generic[1].active[::3] = fast[1].active[::3] = False
        a, b = generic[1].collect(generic[0]), fast[1].collect(fast[0])
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            assert (x.dtype, x.shape, x.stride()) == (y.dtype, y.shape, y.stride()) and torch.equal(x, y), f.name
            assert not x.is_floating_point() or torch.equal(torch.signbit(x), torch.signbit(y)), f.name  # -0.0
        state_a, state_b = generic[1].state_dict(), fast[1].state_dict()
        assert all(torch.equal(u, v) for u, v in zip(state_a.pop("generator_states"), state_b.pop("generator_states")))
        assert state_a == state_b and (generic[1].ready == fast[1].ready).all()
        step = torch.as_tensor(rng.normal(size=(agents, 2)) * 0.3, dtype=dtype)
        with torch.no_grad():
            generic[0].theta += step
            fast[0].theta += step


def test_corridor_collector_falls_back_outside_its_case():
    policy, collector, _ = collectors(CorridorCollector, 3, 100, torch.float32, [0.5, 0.5], 0.0)
    assert collector_class(collector.envs) is CorridorCollector
    assert collector_class(make_vec_env("CartPole-v1", 2)) is EpisodeCollector
    collector.asynchronous = True
    assert not collector.fits(policy)
    collector.asynchronous = False
    mlp_policy = make_policy(collector.envs.single_observation_space, collector.envs.single_action_space,
                             kind="mlp", hidden_sizes=[4], generators=[torch.Generator() for _ in range(3)])
    assert not collector.fits(mlp_policy) and collector.collect(mlp_policy).lengths.min() > 0


# --- the presets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["sutton_barto_fig13_1", "sutton_barto_fig13_2"])
@pytest.mark.parametrize("closed_form", [True, False])
def test_the_fig13_presets_take_the_fast_paths(tmp_path, preset, closed_form):
    from reinforce_lab.settings import run_settings
    from reinforce_lab.train import _agents

    cfg = make_cfg([f"experiment={preset}", "train.num_seeds=3", f"loss.closed_form={str(closed_form).lower()}"])
    envs, collector, policy, value_fn = _agents(cfg, run_settings(cfg))
    assert isinstance(collector, CorridorCollector) and collector.fits(policy)
    rule = build_update(policy, value_fn, advantage=cfg.algo.advantage, loss_form="update_rule", sequential=True,
                        step_size=0.01, baseline_step_size=0.01, closed_form=cfg.loss.closed_form).rule
    assert (rule.closed_form is not None) == closed_form
    _, summary = train_in_process(tmp_path, [f"experiment={preset}", "train.num_seeds=3", "train.max_episodes=20",
                                             "logger=none", f"loss.closed_form={str(closed_form).lower()}"])
    assert summary["status"] == "finished" and summary["episodes"] == 60


def test_skipping_a_floor_that_cannot_bind_changes_nothing(monkeypatch):
    """The two-action loop skips the clip when no step can reach it: bit for bit the clipped loop."""
    from reinforce_lab import softmax_score

    rng = np.random.default_rng(1)
    theta0 = np.stack([rng.normal(0, 0.5, 50), np.zeros(50)], 1)
    actions, psi, weight = rng.integers(0, 2, (30, 50)), rng.normal(0, 5, (30, 50)), np.ones((30, 50))
    assert not softmax_score._may_floor(theta0[:, 0] - theta0[:, 1], 2e-3 * np.abs(psi).sum(0), 0.05)
    skipped = theta0.copy()
    norms = softmax_score.ascend_episode(skipped, actions, weight, psi, 1e-3, 0.05)
    monkeypatch.setattr(softmax_score, "_may_floor", lambda *args: True)
    clipped = theta0.copy()
    assert np.array_equal(norms, softmax_score.ascend_episode(clipped, actions, weight, psi, 1e-3, 0.05))
    assert np.array_equal(skipped, clipped) and not np.array_equal(skipped, theta0)
