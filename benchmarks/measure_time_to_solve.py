"""(a) Time to solve CartPole-v1: ``rlab-train`` (logger=none, and W&B offline) against
``plain_reinforce.py`` (the same algorithm in plain PyTorch), seeds 0-4, interleaved seed by seed.

Alone: ``.venv/bin/python benchmarks/measure_time_to_solve.py [--quick] [--seeds 0,1] [--no-wandb] [--out STEM]``
(merges part (a) into ``benchmarks/results.json`` and rewrites ``results.md``, as ``run.py --only a``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common import BIN, HERE, Measurement, add_no_wandb, fmt, fx, log, med, ratio, read_json, run_cmd, shown, table

# The figure quoted by the "Performance" issue (not re-measured here).
REF_PYTORCH_EXAMPLES = {"what": "pytorch/examples reinforcement_learning/reinforce.py on CartPole-v1",
                        "median_solve_s": 60.0, "env_steps_per_s": 1700.0}
NAMES = {"rlab_none": "rlab-train, logger=none", "rlab_wandb": "rlab-train, W&B offline (default)",
         "plain": "plain PyTorch (plain_reinforce.py)"}
ROW_KEYS = ("wall_s", "process_wall_s", "env_steps", "env_steps_per_s", "episodes", "solved_at_episode",
            "final_return")


def parse_seeds(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", help="seeds for part (a), e.g. 0-4 or 0,1 (default: 0-4; quick: 0)")
    add_no_wandb(parser)


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(seeds=parse_seeds(args.seeds) if args.seeds else ([0] if args.quick else list(range(5))),
                              wandb=not args.no_wandb and not args.quick, run_timeout=600)


def _command(variant: str, seed: int, out: Path) -> tuple[list[str], str]:
    """The command of one run, and how the report shows it (any seed)."""
    if variant == "plain":
        cmd = [sys.executable, str(HERE / "plain_reinforce.py"), "--seed", str(seed),
               "--json", str(out.with_suffix(".json"))]
        return cmd, shown(cmd[:2]) + " --seed SEED"
    cmd = [str(BIN / "rlab-train"), f"seed={seed}", "train.progress=false", f"hydra.run.dir={out}"]
    if variant == "rlab_none":
        cmd.insert(2, "logger=none")
    return cmd, shown(cmd[:-1]).replace(f"seed={seed}", "seed=SEED")


def _run_one(cfg: argparse.Namespace, variant: str, seed: int, out: Path) -> dict[str, Any]:
    cmd, _ = _command(variant, seed, out)
    res = run_cmd(cmd, timeout=cfg.run_timeout)
    summary = read_json(out.with_suffix(".json") if variant == "plain" else out / "summary.json") or {}
    row = {"seed": seed, "status": res["status"], "process_ext_s": res["wall_s"]}
    for key in ROW_KEYS:
        row[key] = summary.get(key)
    log(f"(a) {variant:10s} seed {seed}: solved at episode {row['solved_at_episode']}, "
        f"{fmt(row['env_steps'])} steps, train {fmt(row['wall_s'], 2)} s, "
        f"process {res['wall_s']:.2f} s, {fmt(row['env_steps_per_s'])} steps/s [{res['status']}]")
    if res["status"] != "finished":
        log(f"    stderr: {res['stderr_tail'][-400:]}")
    return row


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    variants = ["rlab_none", "plain"] + (["rlab_wandb"] if cfg.wandb else [])
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for seed in cfg.seeds:
        for v in variants:  # interleaved per seed: load drift hits every variant alike
            runs[v].append(_run_one(cfg, v, seed, tmp / "a" / f"{v}-s{seed}"))
    commands = {v: _command(v, cfg.seeds[-1], tmp)[1] for v in variants}
    return {**_summarise(runs), "reference": REF_PYTORCH_EXAMPLES, "commands": commands}


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {}
    for v, rows in runs.items():
        medians[v] = {k: med(r[k] for r in rows) for k in ("wall_s", "process_ext_s", "process_wall_s", "env_steps",
                                                             "env_steps_per_s", "solved_at_episode")}
        medians[v]["solved"] = sum(r["solved_at_episode"] is not None for r in rows)
        medians[v]["runs"] = len(rows)
    plain = medians["plain"]
    ratios = {f"{v}/plain": {"training_time": ratio(m["wall_s"], plain["wall_s"]),
                             "whole_process": ratio(m["process_ext_s"], plain["process_ext_s"]),
                             "env_steps_per_s": ratio(m["env_steps_per_s"], plain["env_steps_per_s"]),
                             "env_steps_to_solve": ratio(m["env_steps"], plain["env_steps"])}
              for v, m in medians.items() if v != "plain"}
    ref = REF_PYTORCH_EXAMPLES
    vs_ref = {v: {"speedup_training_time": ratio(ref["median_solve_s"], m["wall_s"]),
                  "speedup_whole_process": ratio(ref["median_solve_s"], m["process_ext_s"]),
                  "env_steps_per_s_ratio": ratio(m["env_steps_per_s"], ref["env_steps_per_s"])}
              for v, m in medians.items()}
    return {"runs": runs, "medians": medians, "ratios": ratios, "vs_pytorch_examples": vs_ref}


# --------------------------------------------------------------------------- report
def summary_rows(a: dict[str, Any]) -> list[list[str]]:
    r = a["ratios"].get("rlab_none/plain", {})
    rows = [["(a) CartPole-v1 time to solve, rlab-train (logger=none) / plain PyTorch, training time",
             fx(r.get("training_time")), "", "time to solve depends on luck; steps/s is the overhead"],
            ["(a) same, env steps/s", fx(r.get("env_steps_per_s")), "", ""],
            ["(a) same, whole process", fx(r.get("whole_process")), "", ""]]
    if "rlab_wandb/plain" in a["ratios"]:
        r = a["ratios"]["rlab_wandb/plain"]
        rows.append(["(a) rlab-train (W&B offline) / plain PyTorch, training time", fx(r.get("training_time")), "", ""])
    ref = a["vs_pytorch_examples"].get("rlab_none", {})
    rows.append(["(a) speed-up vs pytorch/examples reinforce.py (60 s), training time",
                 fx(ref.get("speedup_training_time"), 1), "", "reference figure from the issue, not re-measured"])
    return rows


def section(a: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", "## (a) Time to solve CartPole-v1 (mean return of the last 100 episodes ≥ 475)", "",
         "Same algorithm and hyper-parameters in both: vanilla REINFORCE, native vector CartPole × 8, "
         "MLP 4-64-64-2 tanh, Adam lr 0.005, 16 whole episodes per update (2 per env copy), γ = 0.99 "
         "reward-to-go normalised over the batch, one torch thread. *Training* = the training loop "
         "only (`wall_s`, imports excluded); *process* = the whole command measured from outside "
         "(interpreter start, imports, W&B, exit).", "", "Medians:", ""]
    rows = [[NAMES[k], f"{mm['solved']}/{mm['runs']}", fmt(mm["wall_s"], 2, " s"), fmt(mm["process_ext_s"], 2, " s"),
             fmt(mm["env_steps"]), fmt(mm["env_steps_per_s"]), fmt(mm["solved_at_episode"])]
            for k, mm in a["medians"].items()]
    L += table(["implementation", "solved", "training", "process", "env steps", "env steps/s",
                "solved at episode"], rows)
    L += ["", "Ratios of the medians:", ""]
    rows = [[k.replace("rlab_none", "rlab (none)").replace("rlab_wandb", "rlab (W&B)"),
             fx(r["training_time"]), fx(r["whole_process"]), fx(r["env_steps_per_s"]), fx(r["env_steps_to_solve"])]
            for k, r in a["ratios"].items()]
    L += table(["ratio", "training time", "whole process", "env steps/s", "env steps to solve"], rows)
    ref = a["reference"]
    L += ["", f"Against the issue's reference, {ref['what']}: median {ref['median_solve_s']:.0f} s to solve at "
          f"about {ref['env_steps_per_s']:,.0f} env steps/s (quoted, not re-measured):", ""]
    rows = [[NAMES[k], fx(r["speedup_training_time"], 1), fx(r["speedup_whole_process"], 1),
             fx(r["env_steps_per_s_ratio"], 1)] for k, r in a["vs_pytorch_examples"].items()]
    L += table(["implementation", "speed-up, training time", "speed-up, whole process", "env steps/s ratio"], rows)
    return L + _per_seed(a)


def _per_seed(a: dict[str, Any]) -> list[str]:
    rows = [[NAMES[k], r["seed"], r["status"], fmt(r["solved_at_episode"]), fmt(r["env_steps"]),
             fmt(r["wall_s"], 2, " s"), fmt(r["process_ext_s"], 2, " s"), fmt(r["env_steps_per_s"])]
            for k, rs in a["runs"].items() for r in rs]
    L = ["", "Per seed:", ""]
    L += table(["implementation", "seed", "status", "solved at episode", "env steps", "training", "process",
                "env steps/s"], rows)
    return L + ["", "Commands (seeds " + ", ".join(str(r["seed"]) for r in next(iter(a["runs"].values()))) + "):",
                "", "```"] + [a["commands"][k] for k in a["commands"]] + ["```"]


MEASUREMENT = Measurement("a", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="a", script=__file__)
