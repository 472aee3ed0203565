"""(h) Time to solve CartPole-v1 against the libraries users would pick instead: Tianshou 2.0.1's
REINFORCE and Stable-Baselines3's A2C with rl-zoo's hyper-parameters, beside ``rlab-train``'s
default job (logger=none), seeds 0-4, interleaved seed by seed, in the same run.

Alone: ``.venv/bin/python benchmarks/measure_peers.py [--quick] [--peers-seeds 0,1] [--peers-max-steps N] [--out STEM]``
(as ``run.py --only h``). The peers run in their own venv, ``benchmarks/.peers-venv``, built on
first use by ``peers/build_venv.py``; where it cannot be built (no network) the part is recorded
as skipped with the reason, and an earlier result is kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import BIN, HERE, Measurement, fmt, fx, log, med, ratio, read_json, run_cmd, shown, table
from measure_time_to_solve import parse_seeds
from peers import build_venv

FULL_BUDGET, QUICK_BUDGET = 500_000, 50_000  # env steps per run (the peers' and rlab's cap alike)
NAMES = {"rlab": "rlab-train (default job, logger=none)", "tianshou": "Tianshou 2.0.1 REINFORCE",
         "sb3": "SB3 2.9.2 A2C, rl-zoo settings"}
SCRIPTS = {"tianshou": "tianshou_reinforce.py", "sb3": "sb3_a2c.py"}
ROW_KEYS = ("wall_s", "process_wall_s", "env_steps", "env_steps_per_s", "episodes", "solved_at_episode",
            "final_return", "setup_s")
MEDIAN_KEYS = ("wall_s", "process_ext_s", "env_steps", "env_steps_per_s", "solved_at_episode", "setup_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peers-seeds", help="(h) seeds, e.g. 0-4 or 0,1 (default: 0-4; quick: 0)")
    parser.add_argument("--peers-max-steps", type=int,
                        help=f"(h) env-step budget of every run (default {FULL_BUDGET:,}; quick {QUICK_BUDGET:,})")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    seeds = parse_seeds(args.peers_seeds) if args.peers_seeds else ([0] if args.quick else list(range(5)))
    budget = args.peers_max_steps or (QUICK_BUDGET if args.quick else FULL_BUDGET)
    return argparse.Namespace(seeds=seeds, budget=budget, run_timeout=900)


def _command(variant: str, seed: int, out: Path, budget: int) -> tuple[list[str], str]:
    """The command of one run, and how the report shows it (any seed)."""
    if variant == "rlab":
        cmd = [str(BIN / "rlab-train"), f"seed={seed}", "logger=none", "train.progress=false"]
        cmd += [] if budget == FULL_BUDGET else [f"train.max_env_steps={budget}"]
        return cmd + [f"hydra.run.dir={out}"], shown(cmd).replace(f"seed={seed}", "seed=SEED")
    cmd = [str(build_venv.PYTHON), str(build_venv.PEERS / SCRIPTS[variant]), "--seed", str(seed)]
    cmd += [] if budget == FULL_BUDGET else ["--max-env-steps", str(budget)]
    return cmd + ["--json", str(out.with_suffix(".json"))], shown(cmd).replace(f"--seed {seed}", "--seed SEED")


def _run_one(cfg: argparse.Namespace, variant: str, seed: int, out: Path) -> dict[str, Any]:
    cmd, _ = _command(variant, seed, out, cfg.budget)
    res = run_cmd(cmd, timeout=cfg.run_timeout)
    summary = read_json(out / "summary.json" if variant == "rlab" else out.with_suffix(".json")) or {}
    row = {"seed": seed, "status": res["status"], "process_ext_s": res["wall_s"],
           **{k: summary.get(k) for k in ROW_KEYS}}
    log(f"(h) {variant:8s} seed {seed}: solved at episode {row['solved_at_episode']}, {fmt(row['env_steps'])} "
        f"steps, train {fmt(row['wall_s'], 2)} s, process {res['wall_s']:.2f} s, "
        f"{fmt(row['env_steps_per_s'])} steps/s [{res['status']}]")
    if res["status"] != "finished":
        log(f"    stderr: {res['stderr_tail'][-400:]}")
    return row


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    log(f"(h) peers' venv {shown([str(build_venv.VENV)])} (built on first use: a few minutes) …")
    if why := build_venv.ensure_venv():
        log(f"(h) skipped: {why}")
        return {"skipped": why}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in NAMES}
    (tmp / "h").mkdir(parents=True, exist_ok=True)
    for seed in cfg.seeds:
        for v in NAMES:  # interleaved per seed: load drift hits every variant alike
            runs[v].append(_run_one(cfg, v, seed, tmp / "h" / f"{v}-s{seed}"))
    commands = {v: _command(v, cfg.seeds[-1], tmp, cfg.budget)[1] for v in NAMES}
    return {**_summarise(runs), "commands": commands, "budget": cfg.budget, "versions": build_venv.versions()}


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over seeds, and each peer against rlab (times peer/rlab, speed rlab/peer: > 1 = rlab ahead)."""
    medians = {}
    for v, rows in runs.items():
        medians[v] = {k: med(r[k] for r in rows) for k in MEDIAN_KEYS}
        medians[v]["solved"] = sum(r["solved_at_episode"] is not None for r in rows)
        medians[v]["runs"] = len(rows)
    rl = medians["rlab"]
    ratios = {f"{v}/rlab": {"training_time": ratio(m["wall_s"], rl["wall_s"]),
                            "whole_process": ratio(m["process_ext_s"], rl["process_ext_s"]),
                            "env_steps_per_s": ratio(rl["env_steps_per_s"], m["env_steps_per_s"]),
                            "env_steps_to_solve": ratio(m["env_steps"], rl["env_steps"])}
              for v, m in medians.items() if v != "rlab"}
    return {"runs": runs, "medians": medians, "ratios": ratios}


# --------------------------------------------------------------------------- report
def summary_rows(h: dict[str, Any]) -> list[list[str]]:
    if "skipped" in h:
        return [["(h) CartPole-v1 time to solve vs Tianshou / SB3", "skipped", "", h["skipped"]]]
    what = "time to solve" if h["budget"] == FULL_BUDGET else f"time for a {h['budget']:,}-step budget"
    rows = []
    for v in ("tianshou", "sb3"):
        r, m = h["ratios"][f"{v}/rlab"], h["medians"][v]
        rows += [[f"(h) CartPole-v1 {what}, {NAMES[v]} / rlab-train, training time", fx(r["training_time"], 1),
                  "", f"{m['solved']}/{m['runs']} solved (rlab {h['medians']['rlab']['solved']}); whole process "
                  f"{fx(r['whole_process'], 1)}"],
                 [f"(h) same, rlab-train env steps/s / {v}'s", fx(r["env_steps_per_s"], 1), "", ""]]
    return rows


def section(h: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", "## (h) Time to solve CartPole-v1: rlab-train vs Tianshou and Stable-Baselines3", ""]
    if "skipped" in h:
        return L + [f"Skipped: {h['skipped']}."]
    v = h.get("versions", {})
    L += ["The peers a user would pick instead, in `benchmarks/.peers-venv` (torch "
          f"{v.get('torch', '?')}, tianshou {v.get('tianshou', '?')}, stable-baselines3 "
          f"{v.get('stable-baselines3', '?')}, gymnasium {v.get('gymnasium', '?')}), beside rlab-train's default "
          "job, seed by seed. Same 'solved' as (a): mean return of the last 100 training episodes ≥ 475. "
          "Tianshou: REINFORCE with rlab's settings as far as its API goes (8 envs, MLP 64-64 tanh, Adam "
          "lr 0.005, γ 0.99, 16 episodes and one step per update, returns standardised with running "
          "statistics); SB3: A2C with rl-zoo's CartPole-v1 entry (8 envs, ent_coef 0, else SB3's defaults: "
          "n_steps 5, RMSprop lr 7e-4). One torch thread each; the settings in full are in README.md. "
          f"Budget {h['budget']:,} env steps per run. *Training* = the training loop; *process* = the "
          "whole command timed from outside; *set-up* = the peer's time from its imports to the start of "
          "training (Tianshou's is mostly numba compiling its replay-buffer code, in every process).", "",
          "Medians:", ""]
    rows = [[NAMES[k], f"{m['solved']}/{m['runs']}", fmt(m["wall_s"], 2, " s"), fmt(m["process_ext_s"], 2, " s"),
             fmt(m.get("setup_s"), 2, " s"), fmt(m["env_steps"]), fmt(m["env_steps_per_s"]),
             fmt(m["solved_at_episode"])] for k, m in h["medians"].items()]
    L += table(["implementation", "solved", "training", "process", "set-up", "env steps", "env steps/s",
                "solved at episode"], rows)
    L += ["", "Each peer against rlab-train (> 1×: rlab ahead; times and steps peer/rlab, speed rlab/peer):", ""]
    rows = [[NAMES[k.split("/")[0]], fx(r["training_time"]), fx(r["whole_process"]), fx(r["env_steps_per_s"]),
             fx(r["env_steps_to_solve"])] for k, r in h["ratios"].items()]
    L += table(["peer", "training time", "whole process", "env steps/s (rlab/peer)", "env steps"], rows)
    rows = [[NAMES[k], r["seed"], r["status"], fmt(r["solved_at_episode"]), fmt(r["env_steps"]),
             fmt(r["wall_s"], 2, " s"), fmt(r["process_ext_s"], 2, " s"), fmt(r["env_steps_per_s"])]
            for k, rs in h["runs"].items() for r in rs]
    L += ["", "Per seed:", ""] + table(["implementation", "seed", "status", "solved at episode", "env steps",
                                        "training", "process", "env steps/s"], rows)
    return L + ["", "Commands:", "", "```"] + list(h["commands"].values()) + ["```"]


def merge_earlier(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A skipped run (no venv here) keeps the numbers of the last run that had one."""
    return old if "skipped" in new and "skipped" not in old else new


MEASUREMENT = Measurement("h", add_arguments, settings, measure, summary_rows, section, merge_earlier)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="h", script=__file__)
