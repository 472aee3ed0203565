"""Episode boundaries are exact under gymnasium 1.x vector auto-reset."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from reinforce_lab.envs import make_vec_env
from reinforce_lab.policies import make_policy
from reinforce_lab.rollout import EpisodeCollector


class CountingEnv(gym.Env):
    """Episode k has a random length L; step t observes t and pays reward t + 1.

    Any transition glued onto the wrong episode breaks the pattern 0, 1, …, L−1.
    """

    observation_space = gym.spaces.Box(0, 1e6, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(1, 12))
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        return np.array([float(self.t)], dtype=np.float32), float(self.t), done, False, {}


if "CountingEnv-v0" not in gym.registry:
    gym.register("CountingEnv-v0", entry_point=CountingEnv)


@pytest.mark.parametrize("num_envs,episodes", [(1, 3), (3, 7), (4, 8)])
def test_every_transition_belongs_to_exactly_one_episode(num_envs, episodes):
    envs = make_vec_env("CountingEnv-v0", num_envs)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = EpisodeCollector(envs, episodes, seeds=0)
    for _ in range(3):
        batch = collector.collect(policy)
        assert batch.num_episodes == episodes
        for e in range(episodes):
            n = int(batch.lengths[0, e])
            assert torch.equal(batch.obs[0, e, :n, 0], torch.arange(n, dtype=torch.float32))
            assert torch.equal(batch.rewards[0, e, :n], torch.arange(1, n + 1, dtype=torch.float64))
            assert batch.mask[0, e, :n].all() and not batch.mask[0, e, n:].any()
            assert float(batch.final_obs[0, e, 0]) == n  # the true last state, not the reset one
            assert bool(batch.terminated[0, e])


def test_cartpole_every_return_equals_its_length():
    envs = make_vec_env("CartPole-v1", 4)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = EpisodeCollector(envs, 16, seeds=1)
    for _ in range(2):
        batch = collector.collect(policy)
        assert batch.num_episodes == 16
        assert torch.equal(batch.episode_returns, batch.lengths.double())
        assert batch.num_steps == int(batch.mask.sum())


def test_quota_is_spread_over_copies():
    envs = make_vec_env("CartPole-v1", 3)
    collector = EpisodeCollector(envs, 8)
    assert collector.quota.tolist() == [3, 3, 2]


def test_continuous_actions_are_float_and_unclipped():
    envs = make_vec_env("Pendulum-v1", 2)
    policy = make_policy(envs.single_observation_space, envs.single_action_space, log_std_init=1.5)
    batch = EpisodeCollector(envs, 2, seeds=0).collect(policy)
    assert batch.actions.dtype == torch.float32 and batch.actions.shape[-1] == 1
    # σ = e^1.5 ≈ 4.5 ≫ the bound 2: sampled actions outside [−2, 2] are kept as sampled
    assert batch.actions.abs().max() > 2.0
    assert torch.equal(batch.lengths, torch.tensor([[200, 200]]))


@pytest.mark.parametrize("mode", ["same_step", "next_step"])
def test_boundaries_are_exact_in_both_autoreset_modes(mode):
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    envs = SyncVectorEnv([lambda: gym.make("CountingEnv-v0") for _ in range(3)],
                         autoreset_mode=AutoresetMode.SAME_STEP if mode == "same_step" else AutoresetMode.NEXT_STEP)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = EpisodeCollector(envs, 9, seeds=0)
    assert collector.next_step_reset == (mode == "next_step")
    for _ in range(2):
        batch = collector.collect(policy)
        for e in range(9):
            n = int(batch.lengths[0, e])
            assert torch.equal(batch.obs[0, e, :n, 0], torch.arange(n, dtype=torch.float32))
            assert torch.equal(batch.rewards[0, e, :n], torch.arange(1, n + 1, dtype=torch.float64))
            assert float(batch.final_obs[0, e, 0]) == n


def test_native_cartpole_vector_env_is_used_and_exact():
    from gymnasium.vector import SyncVectorEnv

    envs = make_vec_env("CartPole-v1", 4)
    assert not isinstance(envs, SyncVectorEnv)  # gymnasium's numpy CartPoleVectorEnv (NEXT_STEP resets)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    batch = EpisodeCollector(envs, 12, seeds=3).collect(policy)
    assert torch.equal(batch.episode_returns, batch.lengths.double())
    assert (batch.lengths >= 8).all()  # no zero-reward reset step slipped in as a 1-step episode


def test_asynchronous_agents_are_not_held_back_by_long_episodes():
    """Agent 0 cycles until the 60-step cap (π(right) ≈ 0); agent 1 finishes in a few steps.

    In lockstep both complete one batch per call; asynchronously agent 1 completes many
    batches while agent 0's episode is still running, and every episode is whole.
    """
    from reinforce_lab.envs import ShortCorridorVectorEnv
    from reinforce_lab.policies import PreferencePolicy

    def run(asynchronous):
        envs = ShortCorridorVectorEnv(num_envs=2, max_episode_steps=60)
        gens = [torch.Generator().manual_seed(k) for k in (0, 1)]
        policy = PreferencePolicy(1, 2, init_probs=[0.5, 0.5], generators=gens)
        with torch.no_grad():
            policy.theta[0] = torch.tensor([30.0, -30.0])  # always left: stuck in s0
            policy.theta[1] = torch.tensor([-0.2, 0.2])
        col = EpisodeCollector(envs, 1, num_seeds=2, generators=gens, asynchronous=asynchronous)
        lengths = {0: [], 1: []}
        for _ in range(20):
            batch = col.collect(policy)
            for a in (0, 1):
                if col.ready[a]:
                    lengths[a].append(int(batch.lengths[a, 0]))
                    assert batch.mask[a, 0].sum() == batch.lengths[a, 0]
                    assert batch.episode_returns[a, 0] == -batch.lengths[a, 0]
                else:
                    assert batch.lengths[a, 0] == 0
        return lengths, col.agent_rounds.tolist()

    lock, lock_rounds = run(False)
    assert lock_rounds == [20, 20] and lock[0] == [60] * 20
    free, free_rounds = run(True)
    assert all(n == 60 for n in free[0]) and all(n < 60 for n in free[1])
    # every call returns whoever is complete first: mostly agent 1, which never waits for agent 0
    assert sum(free_rounds) == 20 and free_rounds[1] >= 15 and free_rounds[0] <= 4, free_rounds
    # agent 1's episodes are the same ones in both modes (its own seed and generator only)
    assert free[1] == lock[1][:len(free[1])]
    with pytest.raises(ValueError, match="reset one by one"):
        EpisodeCollector(make_vec_env("CartPole-v1", 2, vectorization="native"), 1, num_seeds=2,
                         asynchronous=True)


def _collectors_on_fresh_envs(asynchronous, num_seeds=3):
    """A policy and a factory of collectors, each on its own fresh sync CartPole envs."""
    envs = make_vec_env("CartPole-v1", num_seeds, vectorization="sync")
    init = [torch.Generator().manual_seed(50 + k) for k in range(num_seeds)]
    policy = make_policy(envs.single_observation_space, envs.single_action_space, generators=init)
    envs.close()

    def collector(gen_seed):
        gens = [torch.Generator().manual_seed(gen_seed + k) for k in range(num_seeds)]
        return EpisodeCollector(make_vec_env("CartPole-v1", num_seeds, vectorization="sync"), 2,
                                seeds=[11 * i for i in range(num_seeds)], num_seeds=num_seeds, generators=gens,
                                asynchronous=asynchronous)

    return policy, collector


def _saved(state):
    """``state`` as a checkpoint gives it back (plain values and tensors only)."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _fields(batch):
    return [batch.obs, batch.actions, batch.rewards, batch.mask, batch.final_obs, batch.terminated, batch.lengths]


@pytest.mark.parametrize("vectorization", ["native", "sync"])
def test_simulated_steps_count_every_copy_step_kept_or_not(vectorization):
    # Whole episodes with a per-copy quota: copies done with theirs keep stepping (and NEXT_STEP
    # resets are steps too); simulated_steps counts all of them, the batch keeps the episodes'.
    envs = make_vec_env("CartPole-v1", 4, vectorization=vectorization)
    calls = []
    step = envs.step
    envs.step = lambda a: calls.append(len(a)) or step(a)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    col = EpisodeCollector(envs, 8, seeds=0)
    kept = sum(int(col.collect(policy).mask.sum()) for _ in range(3))
    assert col.simulated_steps == sum(calls) == 4 * len(calls) and 0 < kept < col.simulated_steps
    assert col.state_dict()["simulated_steps"] == col.simulated_steps
    fresh = EpisodeCollector(envs, 8, seeds=0)
    fresh.load_state_dict(col.state_dict())
    assert fresh.simulated_steps == col.simulated_steps
    fresh.load_state_dict({k: v for k, v in col.state_dict().items() if k != "simulated_steps"})
    assert fresh.simulated_steps is None  # an older checkpoint: unknown, never a wrong fraction


def test_lockstep_state_dict_round_trips():
    """collect, save, collect more; a fresh collector on fresh envs loading the state collects the same batch."""
    policy, collector = _collectors_on_fresh_envs(asynchronous=False)
    col = collector(0)
    col.collect(policy)
    col.active[1] = False  # a stopped agent stays stopped
    col.collect(policy)
    state = _saved(col.state_dict())
    assert state["rounds"] == 2 and state["agent_rounds"] == [2, 1, 2] and state["active"] == [True, False, True]
    continued = col.collect(policy)
    fresh = collector(1000)  # other generators: only the loaded state can make them agree
    fresh.load_state_dict(state)
    resumed = fresh.collect(policy)
    assert all(torch.equal(a, b) for a, b in zip(_fields(continued), _fields(resumed)))
    after, fresh_after = col.state_dict(), fresh.state_dict()
    assert {k: after[k] for k in ("rounds", "agent_rounds", "active")} == \
        {k: fresh_after[k] for k in ("rounds", "agent_rounds", "active")}
    assert all(torch.equal(a, b) for a, b in zip(after["generator_states"], fresh_after["generator_states"]))


def test_asynchronous_state_dict_round_trips_with_rounds_in_flight():
    """The state holds every agent at the start of its round in flight: after a load, each
    agent's next batches are those the saved collector goes on to return (maybe in other calls)."""
    policy, collector = _collectors_on_fresh_envs(asynchronous=True)

    def per_agent_batches(col, calls):
        got = {a: [] for a in range(col.num_seeds)}
        for _ in range(calls):
            batch = col.collect(policy)
            for a in np.flatnonzero(col.ready):
                got[a].append([f[a] for f in _fields(batch)])
        return got

    col = collector(0)
    per_agent_batches(col, 3)
    assert not col.ready.all()  # some agent is in the middle of its round: the case to get right
    state = _saved(col.state_dict())
    continued = per_agent_batches(col, 6)
    fresh = collector(1000)
    fresh.load_state_dict(state)
    assert fresh.agent_rounds.tolist() == state["agent_rounds"]
    resumed = per_agent_batches(fresh, 6)
    for a in range(3):
        n = min(len(continued[a]), len(resumed[a]))
        assert n >= 1
        for mine, theirs in zip(continued[a][:n], resumed[a][:n]):
            assert all(torch.equal(x, y) for x, y in zip(mine, theirs))


def test_partial_reset_is_a_capability_the_env_declares():
    import ast
    import importlib
    import inspect

    from reinforce_lab import rollout
    from reinforce_lab.envs import SHORT_CORRIDOR_ID, ShortCorridorVectorEnv, supports_partial_reset

    native = make_vec_env("CartPole-v1", 2, vectorization="native")
    sync = make_vec_env("CartPole-v1", 2, vectorization="sync")
    async_ = make_vec_env("CartPole-v1", 2, vectorization="async")
    corridor = make_vec_env(SHORT_CORRIDOR_ID, 2)
    assert not supports_partial_reset(native)
    assert supports_partial_reset(sync) and supports_partial_reset(async_)
    assert supports_partial_reset(corridor) and supports_partial_reset(ShortCorridorVectorEnv(num_envs=2))
    assert rollout.supports_partial_reset is supports_partial_reset  # the old import path still works
    for envs in (native, sync, async_, corridor):
        envs.close()
    # rollout reads the capability; it imports no env class (not even inside a function)
    imported = []
    for node in ast.walk(ast.parse(inspect.getsource(rollout))):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module("." * node.level + (node.module or ""), package="reinforce_lab")
            imported += [getattr(module, alias.name) for alias in node.names]
    env_classes = [x for x in imported if isinstance(x, type) and issubclass(x, (gym.Env, gym.vector.VectorEnv))]
    assert env_classes in ([], [gym.vector.VectorEnv]), env_classes  # the interface only, for type hints
