"""Sutton & Barto Example 13.1: dynamics and the analytic optimum."""

import math

import gymnasium as gym
import numpy as np
import pytest

from reinforce_lab.envs import OPTIMAL_START_VALUE, SHORT_CORRIDOR_ID, make_vec_env, start_value
from reinforce_lab.envs.short_corridor import LEFT, OPTIMAL_P_RIGHT, RIGHT


def walk(actions):
    env = gym.make(SHORT_CORRIDOR_ID)
    obs, info = env.reset(seed=0)
    states, rewards, terms = [info["state"]], [], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        assert obs.tolist() == [1.0]  # the states are aliased
        states.append(info["state"])
        rewards.append(r)
        terms.append(term)
    return states, rewards, terms


def test_dynamics_with_the_switched_second_state():
    # s0 --left--> s0 (wall), s0 --right--> s1, s1 --right--> s0 (reversed!), s1 --left--> s2, s2 --right--> goal
    states, rewards, terms = walk([LEFT, RIGHT, RIGHT, RIGHT, LEFT, LEFT, RIGHT, LEFT, RIGHT])
    # L: wall; R: s1; R in s1 goes left; R: s1; L in s1 goes right; L: s1; R in s1 goes left; L: wall; R: s1
    assert states == [0, 0, 1, 0, 1, 2, 1, 0, 0, 1]
    assert rewards == [-1.0] * len(rewards)
    states, _, terms = walk([RIGHT, LEFT, RIGHT])
    assert states == [0, 1, 2, 3] and terms == [False, False, True]


def test_start_value_matches_the_bellman_equations():
    for p in (0.05, 0.3, 0.5, 0.586, 0.9):
        # v0 = −1 + p v1 + (1−p) v0;  v1 = −1 + p v0 + (1−p) v2;  v2 = −1 + (1−p) v1
        a = np.array([[p, -p, 0.0], [-p, 1.0, -(1 - p)], [0.0, -(1 - p), 1.0]])
        v = np.linalg.solve(a, -np.ones(3))
        assert start_value(p) == pytest.approx(v[0], rel=1e-12)


def test_analytic_optimum():
    assert OPTIMAL_P_RIGHT == pytest.approx(2 - math.sqrt(2)) and OPTIMAL_P_RIGHT == pytest.approx(0.586, abs=1e-3)
    assert OPTIMAL_START_VALUE == pytest.approx(-11.657, abs=1e-3)
    grid = np.linspace(0.01, 0.99, 9801)
    values = np.array([start_value(p) for p in grid])
    assert grid[values.argmax()] == pytest.approx(OPTIMAL_P_RIGHT, abs=2e-4)
    assert values.max() <= OPTIMAL_START_VALUE + 1e-9


def test_monte_carlo_return_of_the_optimal_policy():
    rng = np.random.default_rng(0)
    envs = make_vec_env(SHORT_CORRIDOR_ID, 64)
    envs.reset(seed=0)
    totals, current = [], np.zeros(64)
    while len(totals) < 20000:
        actions = (rng.random(64) < OPTIMAL_P_RIGHT).astype(np.int64)
        _, r, term, trunc, _ = envs.step(actions)
        current += r
        for i in np.flatnonzero(term | trunc):
            totals.append(current[i])
            current[i] = 0.0
    assert np.mean(totals) == pytest.approx(OPTIMAL_START_VALUE, abs=0.25)


def test_vector_env_has_the_same_dynamics():
    from reinforce_lab.envs import ShortCorridorVectorEnv

    rng = np.random.default_rng(1)
    vec = ShortCorridorVectorEnv(num_envs=5, max_episode_steps=50)
    singles = [gym.make(SHORT_CORRIDOR_ID, max_episode_steps=50) for _ in range(5)]
    vec.reset(seed=0)
    for env in singles:
        env.reset(seed=0)
    for _ in range(400):
        actions = rng.integers(0, 2, size=5)
        obs, r, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, ri, ti, tri, _ = env.step(int(actions[i]))
            assert (ri, ti, tri) == (r[i], term[i], trunc[i])
            if ti or tri:
                assert info["final_obs"][i].tolist() == o.tolist()
                env.reset()
        assert vec.state.tolist() == [env.unwrapped.state for env in singles]
