"""MuJoCo throughput: what do reinforce-lab's fixed-horizon collector and its envpool backend cost per env step?

Per task (HalfCheetah-v5, InvertedPendulum-v5), N copies, one torch thread, the loops of
``mujoco_loops.py``: on gymnasium's SyncVectorEnv (``make_vec_env(env_id, N, vectorization="sync")``)
``raw`` (random actions), ``bare`` (+ a bare Gaussian MLP policy in plain PyTorch) and
``collector`` (``HorizonCollector`` + ``make_policy`` as ``experiment=mujoco_reinforce`` builds them);
on envpool ``envpool_raw`` (the raw ``envpool.make_gymnasium`` pool, random actions),
``envpool_adapter`` (our ``make_vec_env(..., "envpool")``, random actions), ``envpool_bare`` (the
raw pool + the same bare policy) and ``envpool_collector`` (the collector over the adapter). The
envpool loops are skipped, with the reason in ``envpool_skipped``, when envpool cannot be imported.

Every call of a loop is 32 steps of the N copies. The loops of all tasks run by turns,
``--repeats`` times for at least ``--seconds`` each, so that a slow phase of the shared machine
hits every loop alike. Printed as one JSON line: env steps/s (every ``step`` of every copy) and
kept steps/s (transitions only: raw envpool's next-step reset steps left out) per repeat, and
their medians. MuJoCo writes its warnings to ``MUJOCO_LOG.TXT`` in the working directory:
``--workdir`` (default: a temporary folder) keeps it out of the repository.

Usage::

    python benchmarks/mujoco_throughput.py [--env-ids HalfCheetah-v5,InvertedPendulum-v5]
        [--num-envs 64] [--seconds 2] [--repeats 5] [--no-envpool] [--workdir DIR]
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
from typing import Any

import torch

from mujoco_loops import BARE_POLICY, ENVPOOL_LOOPS, STEPS_PER_CALL, SYNC_LOOPS, Loop, envpool_missing

Rates = dict[str, dict[str, list[float]]]  # task → loop → one rate per repeat


def _timed(chunk: Loop, seconds: float) -> tuple[float, int, int]:
    """Call ``chunk()`` until ``seconds`` have passed (after one warm-up call): time, env steps, kept steps."""
    chunk()
    steps, kept, start = 0, 0, time.perf_counter()
    while True:
        s, k = chunk()
        steps, kept = steps + s, kept + k
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed, steps, kept


def measure(env_ids: list[str], n: int, seconds: float, repeats: int,
            makers: dict[str, Callable[[str, int], Loop]]) -> tuple[Rates, Rates]:
    """Env steps/s and kept steps/s of every loop of every task, ``repeats`` times, by turns."""
    loops = {env_id: {name: make(env_id, n) for name, make in makers.items()} for env_id in env_ids}
    rates: Rates = {e: {name: [] for name in makers} for e in env_ids}
    kept: Rates = {e: {name: [] for name in makers} for e in env_ids}
    for _ in range(repeats):
        for env_id, by_name in loops.items():  # by turns: slow phases of the machine hit every loop
            for name, chunk in by_name.items():
                elapsed, steps, k = _timed(chunk, seconds)
                rates[env_id][name].append(steps / elapsed)
                kept[env_id][name].append(k / elapsed)
    return rates, kept


def _versions(with_envpool: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("mujoco", "gymnasium", "torch") + (("envpool",) if with_envpool else ()):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _medians(rates: Rates) -> dict[str, dict[str, float]]:
    return {e: {name: statistics.median(v) for name, v in d.items()} for e, d in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-ids", default="HalfCheetah-v5,InvertedPendulum-v5")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-envpool", action="store_true", help="skip the envpool loops")
    parser.add_argument("--workdir", help="working directory (MuJoCo's MUJOCO_LOG.TXT); default: a temporary one")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env_ids = args.env_ids.split(",")
    skipped = "--no-envpool" if args.no_envpool else envpool_missing()
    makers = SYNC_LOOPS | ({} if skipped else ENVPOOL_LOOPS)
    with tempfile.TemporaryDirectory(prefix="rlab-mujoco-") as tmp:
        os.chdir(args.workdir or tmp)
        rates, kept = measure(env_ids, args.num_envs, args.seconds, args.repeats, makers)
        os.chdir("/")
    out: dict[str, Any] = {
        "env_ids": env_ids, "num_envs": args.num_envs, "steps_per_call": STEPS_PER_CALL,
        "horizon": args.num_envs * STEPS_PER_CALL, "seconds": args.seconds, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "versions": _versions(not skipped), "envpool_skipped": skipped,
        "bare_policy": BARE_POLICY,
        "envpool_threads": None if skipped else min(args.num_envs, len(os.sched_getaffinity(0))),
        "runs": rates, "kept_runs": kept, "median": _medians(rates), "kept_median": _medians(kept)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
