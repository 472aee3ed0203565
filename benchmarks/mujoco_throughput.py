"""MuJoCo throughput: what does reinforce-lab's fixed-horizon collector cost per env step?

Three loops per task (HalfCheetah-v5, InvertedPendulum-v5), each over its own
``gymnasium.vector.SyncVectorEnv`` of N copies built by
``reinforce_lab.envs.make_vec_env(env_id, N, vectorization="sync")``, one torch thread:

* ``raw``: the vector env stepping random actions (``envs.action_space.sample()`` every step).
* ``bare``: the same + a bare Gaussian MLP acting every step (obs_dim-64-64-act_dim tanh,
  ``torch.no_grad``, obs → tensor → mean + std·randn → numpy), the transitions appended to
  lists: the plain PyTorch loop a user would write.
* ``collector``: ``reinforce_lab.horizon_rollout.HorizonCollector`` (horizon N·32: 32 steps of
  every copy per call) with the policy of ``reinforce_lab.policies.make_policy`` as
  ``experiment=mujoco_reinforce`` builds it (64-64 tanh, tanh-bounded, orthogonal init,
  observation normalisation, log σ = −0.5). Fixed-horizon rollouts keep every env step they
  take, so its rate is kept steps = calls × horizon (checked: ``batch.mask.sum() == horizon``).

Every call of a loop is 32 steps of the N copies. The loops of all tasks run by turns,
``--repeats`` times for at least ``--seconds`` each; the rates (env steps/s = steps × N / time)
and their medians are printed as one JSON line. MuJoCo writes its warnings to
``MUJOCO_LOG.TXT`` in the working directory: ``--workdir`` (default: a temporary folder) keeps
it out of the repository.

Usage::

    python benchmarks/mujoco_throughput.py [--env-ids HalfCheetah-v5,InvertedPendulum-v5]
        [--num-envs 64] [--seconds 2] [--repeats 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from reinforce_lab.envs import make_vec_env
from reinforce_lab.horizon_rollout import HorizonCollector
from reinforce_lab.policies import make_policy

STEPS_PER_CALL = 32  # steps of every copy per call of a loop (the collector's horizon / N)
Loop = Callable[[], int]  # one call: returns the env steps it took (steps × copies)


def _timed(chunk: Loop, seconds: float) -> tuple[float, int]:
    """Call ``chunk()`` until ``seconds`` have passed (after one warm-up call): time, env steps."""
    chunk()
    steps, start = 0, time.perf_counter()
    while True:
        steps += chunk()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed, steps


def raw_loop(env_id: str, n: int) -> Loop:
    """(i) the vector env, random actions drawn from its action space every step."""
    envs = make_vec_env(env_id, n, vectorization="sync")
    envs.reset(seed=0)
    envs.action_space.seed(0)

    def raw() -> int:
        for _ in range(STEPS_PER_CALL):
            envs.step(envs.action_space.sample())
        return STEPS_PER_CALL * n

    return raw


def bare_loop(env_id: str, n: int) -> Loop:
    """(ii) the vector env + a bare Gaussian MLP in plain PyTorch, transitions kept in lists."""
    envs = make_vec_env(env_id, n, vectorization="sync")
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    net = nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, act_dim))
    log_std = nn.Parameter(torch.full((act_dim,), -0.5))
    state = {"obs": envs.reset(seed=0)[0]}

    def bare() -> int:
        obs = state["obs"]
        obs_l, act_l, rew_l, done_l = [], [], [], []
        with torch.no_grad():
            for _ in range(STEPS_PER_CALL):
                mean = net(torch.as_tensor(obs, dtype=torch.float32))
                a = (mean + log_std.exp() * torch.randn_like(mean)).numpy()
                next_obs, r, term, trunc, _ = envs.step(a)
                obs_l.append(obs)
                act_l.append(a)
                rew_l.append(r)
                done_l.append(term | trunc)
                obs = next_obs
        state["obs"] = obs
        return STEPS_PER_CALL * n

    return bare


def collector_loop(env_id: str, n: int) -> Loop:
    """(iii) reinforce-lab's HorizonCollector and policy; every step it takes is in the batch."""
    envs = make_vec_env(env_id, n, vectorization="sync")
    policy = make_policy(envs.single_observation_space, envs.single_action_space, hidden_sizes=[64, 64],
                         generators=[torch.Generator().manual_seed(0)], bound="tanh", init="orthogonal",
                         obs_norm=True, log_std_init=-0.5)
    horizon = n * STEPS_PER_CALL
    collector = HorizonCollector(envs, horizon=horizon, seeds=list(range(n)), num_seeds=1,
                                 generators=[torch.Generator().manual_seed(0)])

    def collect() -> int:
        batch = collector.collect(policy)
        kept = int(batch.mask.sum())
        assert kept == horizon, f"{env_id}: the collector kept {kept} of {horizon} env steps"
        return kept

    return collect


LOOPS = {"raw": raw_loop, "bare": bare_loop, "collector": collector_loop}


def measure(env_ids: list[str], n: int, seconds: float, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Env steps/s of every loop of every task, ``repeats`` times, by turns."""
    loops = {env_id: {name: make(env_id, n) for name, make in LOOPS.items()} for env_id in env_ids}
    rates: dict[str, dict[str, list[float]]] = {e: {name: [] for name in LOOPS} for e in env_ids}
    for _ in range(repeats):
        for env_id, by_name in loops.items():  # by turns: slow phases of the machine hit every loop
            for name, chunk in by_name.items():
                elapsed, steps = _timed(chunk, seconds)
                rates[env_id][name].append(steps / elapsed)
    return rates


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("mujoco", "gymnasium", "torch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-ids", default="HalfCheetah-v5,InvertedPendulum-v5")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", help="working directory (MuJoCo's MUJOCO_LOG.TXT); default: a temporary one")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env_ids = args.env_ids.split(",")
    with tempfile.TemporaryDirectory(prefix="rlab-mujoco-") as tmp:
        os.chdir(args.workdir or tmp)
        rates = measure(env_ids, args.num_envs, args.seconds, args.repeats)
        os.chdir("/")
    out = {"env_ids": env_ids, "num_envs": args.num_envs, "steps_per_call": STEPS_PER_CALL,
           "horizon": args.num_envs * STEPS_PER_CALL, "seconds": args.seconds, "repeats": args.repeats,
           "torch_threads": torch.get_num_threads(), "versions": _versions(), "runs": rates,
           "median": {e: {name: statistics.median(v) for name, v in d.items()} for e, d in rates.items()}}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
