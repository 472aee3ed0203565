"""Rollout throughput on CartPole-v1: how much does reinforce-lab's collector cost per env step?

Three loops over the same native numpy vector env (16 copies), one torch thread:

* ``raw``: the vector env stepping pre-drawn random actions (the ceiling).
* ``bare``: the vector env + a bare policy per step: ``torch.as_tensor`` of the observations,
  the 4-64-64-2 tanh MLP forward, ``torch.multinomial`` sample, ``.numpy()``, and the
  transitions appended to lists (what any collector must at least do). No framework.
* ``collector``: ``reinforce_lab.rollout.EpisodeCollector.collect`` with the policy of
  ``reinforce_lab.policies.make_policy``: 32 whole episodes per call (2 per copy), laid out as
  padded tensors.

For every loop we count *vector env steps* (``envs.step`` calls × 16 copies, what the env
actually simulated); for the collector also the *episode transitions* it returns
(``batch.num_steps``: without the auto-reset steps and without the steps of copies that had
already finished their 2 episodes and wait for the others). The loops run interleaved,
``--repeats`` times for at least ``--seconds`` each; the medians are printed as one JSON line.

Usage::

    python benchmarks/rollout_throughput.py [--num-envs 16] [--seconds 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from reinforce_lab.envs import make_vec_env
from reinforce_lab.policies import make_policy
from reinforce_lab.rollout import EpisodeCollector


def _timed(chunk, seconds: float) -> tuple[float, dict[str, int]]:
    """Call ``chunk()`` (which returns step counts) until ``seconds`` have passed."""
    chunk()  # warm-up
    totals: dict[str, int] = {}
    start = time.perf_counter()
    while True:
        for key, n in chunk().items():
            totals[key] = totals.get(key, 0) + n
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed, totals


def raw_loop(n: int, chunk_steps: int) -> Callable[[], dict[str, int]]:
    """(i) raw vector env, random actions drawn up front."""
    raw_env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    raw_env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(chunk_steps, n))

    def raw() -> dict[str, int]:
        for a in actions:
            raw_env.step(a)
        return {"vector_steps": chunk_steps * n}

    return raw


def bare_loop(n: int, chunk_steps: int) -> Callable[[], dict[str, int]]:
    """(ii) raw vector env + bare torch policy, transitions kept in lists."""
    bare_env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    net = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    state = {"obs": bare_env.reset(seed=0)[0]}

    def bare() -> dict[str, int]:
        obs = state["obs"]
        obs_l, act_l, rew_l, done_l = [], [], [], []
        with torch.no_grad():
            for _ in range(chunk_steps):
                logits = net(torch.as_tensor(obs))
                a = torch.multinomial(logits.softmax(-1), 1).squeeze(-1).numpy()
                next_obs, r, term, trunc, _ = bare_env.step(a)
                obs_l.append(obs)
                act_l.append(a)
                rew_l.append(r)
                done_l.append(term | trunc)
                obs = next_obs
        state["obs"] = obs
        return {"vector_steps": chunk_steps * n}

    return bare


def collector_loop(n: int, episodes: int) -> Callable[[], dict[str, int]]:
    """(iii) reinforce-lab's collector and policy."""
    envs = make_vec_env("CartPole-v1", n)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = EpisodeCollector(envs, episodes_per_update=episodes, seeds=0)
    calls = [0]
    env_step = envs.step

    def counting_step(action):
        calls[0] += 1
        return env_step(action)

    envs.step = counting_step  # count vector-env steps without touching the collector

    def collect() -> dict[str, int]:
        before = calls[0]
        batch = collector.collect(policy)
        return {"vector_steps": (calls[0] - before) * n, "transitions": batch.num_steps}

    return collect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--episodes", type=int, default=32, help="episodes per collect() call")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = args.num_envs
    chunk_steps = 200
    loops = {"raw": raw_loop(n, chunk_steps), "bare": bare_loop(n, chunk_steps),
             "collector": collector_loop(n, args.episodes)}
    rates: dict[str, dict[str, list[float]]] = {k: {} for k in loops}
    for _ in range(args.repeats):
        for name, chunk in loops.items():  # interleaved, so slow phases of the machine hit all three
            elapsed, totals = _timed(chunk, args.seconds)
            for key, count in totals.items():
                rates[name].setdefault(key, []).append(count / elapsed)
    out = {"num_envs": n, "episodes_per_collect": args.episodes, "seconds": args.seconds,
           "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "runs": rates,
           "median": {name: {key: statistics.median(v) for key, v in d.items()} for name, d in rates.items()}}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
