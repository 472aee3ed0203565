"""(i) Scaling with ``train.num_seeds``: time per env step as one job trains more agents at once,
1 → 1000 agents on the short corridor and 1 → 64 on CartPole-v1; writes the figure ``scaling.png``.

Alone: ``.venv/bin/python benchmarks/measure_scaling.py [--quick] [--scaling-corridor 1,10,100,1000]
[--scaling-cartpole 1,4,16,64] [--out STEM]`` (as ``run.py --only i``).

Every agent does the same work at every point (a fixed number of episodes, or of env steps, per
agent), so what changes with N is only how many agents share one job's steps, updates and
start-up: the per-step cost that is left is what batching agents cannot remove.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import BIN, HERE, Measurement, fmt, fx, log, ratio, read_json, run_cmd, shown, table

CORRIDOR_EPISODES = 20  # per agent: the preset's 1000 would make 1000 agents a 20-minute job
CARTPOLE_STEPS = 4_000  # per agent
POINTS = {"full": {"corridor": [1, 10, 100, 1000], "cartpole": [1, 4, 16, 64]},
          "quick": {"corridor": [1, 100], "cartpole": [1, 16]}}
NAMES = {"corridor": "short corridor (S&B Fig. 13.1 preset, per-episode updates)", "cartpole": "CartPole-v1"}
COMMON = ["logger=none", "train.progress=false"]
ARGS = {"corridor": ["experiment=sutton_barto_fig13_1", "loss.sequential=false",
                     f"train.max_episodes={CORRIDOR_EPISODES}"],
        "cartpole": [f"train.max_env_steps={CARTPOLE_STEPS}", "train.target_return=null"]}


def _ints(text: str | None) -> list[int] | None:
    return [int(x) for x in text.split(",")] if text else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scaling-corridor", help="(i) num_seeds on the short corridor (default 1,10,100,1000; "
                        "quick 1,100)")
    parser.add_argument("--scaling-cartpole", help="(i) num_seeds on CartPole-v1 (default 1,4,16,64; quick 1,16)")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    """The points, and where the figure goes: beside the results file (``scaling.png`` for the default one)."""
    pts = POINTS["quick" if args.quick else "full"]
    stem = Path(args.out) if args.out else HERE / ("results-quick" if args.quick else "results")
    figure = stem.parent / ("scaling.png" if stem.name == "results" else f"{stem.name}.scaling.png")
    return argparse.Namespace(points={"corridor": _ints(args.scaling_corridor) or pts["corridor"],
                                      "cartpole": _ints(args.scaling_cartpole) or pts["cartpole"]},
                              figure=figure, run_timeout=900)


def _command(env: str, n: int) -> list[str]:
    return [str(BIN / "rlab-train"), *ARGS[env], f"train.num_seeds={n}", *COMMON]


def _run_point(cfg: argparse.Namespace, env: str, n: int, out: Path) -> dict[str, Any]:
    """One job of ``n`` agents: training time and whole process per env step of all agents together."""
    res = run_cmd(_command(env, n) + [f"hydra.run.dir={out}"], timeout=cfg.run_timeout)
    s = read_json(out / "summary.json") or {}
    steps = s.get("env_steps") or None
    row = {"num_seeds": n, "status": res["status"], "env_steps": steps, "episodes": s.get("episodes"),
           "wall_s": s.get("wall_s"), "process_wall_s": s.get("process_wall_s"), "process_ext_s": res["wall_s"],
           "us_per_step_train": None if steps is None else 1e6 * s["wall_s"] / steps,
           "us_per_step_process": None if steps is None else 1e6 * res["wall_s"] / steps}
    log(f"(i) {env:8s} num_seeds={n:4d}: {fmt(steps)} env steps, train {fmt(row['wall_s'], 2)} s, process "
        f"{res['wall_s']:.2f} s → {fmt(row['us_per_step_train'])} µs/step training, "
        f"{fmt(row['us_per_step_process'])} µs/step whole process [{res['status']}]")
    if res["status"] != "finished":
        log(f"    stderr: {res['stderr_tail'][-400:]}")
    return row


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    points: dict[str, list[dict[str, Any]]] = {env: [] for env in cfg.points}
    order = sorted(((i, env, n) for env, ns in cfg.points.items() for i, n in enumerate(ns)))
    for _, env, n in order:  # the two envs by turns, small N first: load drift spreads over both curves
        points[env].append(_run_point(cfg, env, n, tmp / "i" / f"{env}-n{n}"))
    commands = {env: shown(_command(env, 0)).replace("train.num_seeds=0", "train.num_seeds=N") for env in points}
    figure = _figure(points, cfg.figure)
    return {"points": points, "commands": commands, "figure": figure,
            "per_agent": {"corridor": f"{CORRIDOR_EPISODES} episodes", "cartpole": f"{CARTPOLE_STEPS:,} env steps"}}


def _figure(points: dict[str, list[dict[str, Any]]], path: Path) -> str | None:
    """Both curves, time per env step against num_seeds (log-log); the file's name, None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("(i) no matplotlib (the `report` extra): no figure")
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (env, rows), colour in zip(points.items(), ("tab:blue", "tab:orange")):
        rows = [r for r in rows if r["us_per_step_train"] is not None]
        ns = [r["num_seeds"] for r in rows]
        ax.plot(ns, [r["us_per_step_train"] for r in rows], "o-", color=colour, label=f"{env}, training")
        ax.plot(ns, [r["us_per_step_process"] for r in rows], "s--", color=colour, label=f"{env}, whole process")
    ax.set(xscale="log", yscale="log", xlabel="train.num_seeds (agents in one job)",
           ylabel="time per env step (µs, all agents' steps)", title="rlab-train: time per env step vs num_seeds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"(i) figure → {path}")
    return path.name


# --------------------------------------------------------------------------- report
def _ends(rows: list[dict[str, Any]], key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    ok = [r for r in rows if r[key] is not None]
    return (ok[0], ok[-1]) if len(ok) >= 2 else None


def summary_rows(i: dict[str, Any]) -> list[list[str]]:
    rows = []
    for env, pts in i["points"].items():
        ends = _ends(pts, "us_per_step_train")
        if ends is None:
            continue
        a, b = ends
        rows.append([f"(i) time per env step, {env}, num_seeds {a['num_seeds']} → {b['num_seeds']}, training",
                     f"{fmt(a['us_per_step_train'])} → {fmt(b['us_per_step_train'])} µs", "",
                     f"{fx(ratio(a['us_per_step_train'], b['us_per_step_train']), 1)} less per step; whole process "
                     f"{fmt(a['us_per_step_process'])} → {fmt(b['us_per_step_process'])} µs"])
    return rows


def section(i: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", "## (i) Time per env step as `train.num_seeds` grows", "",
         "One job trains N agents at once (each its own parameters, optimiser state, env copies and random "
         f"streams). Every agent does the same work at every point: {i['per_agent']['corridor']} each on "
         "the short corridor (1 env copy per agent, one SGD update per episode), "
         f"{i['per_agent']['cartpole']} each on CartPole-v1 (8 copies per agent, target return off), so the "
         "job's env steps grow with N. *Env steps* = `summary.json`'s `env_steps`, the transitions of all "
         "agents together (`train.max_env_steps` is a budget per agent); per step = `wall_s` (training "
         "loop) or the whole command timed from outside, divided by them.", ""]
    if i.get("figure"):
        L += [f"![time per env step vs num_seeds]({i['figure']})", ""]
    for env, pts in i["points"].items():
        base = next((r["us_per_step_train"] for r in pts if r["us_per_step_train"]), None)
        rows = [[r["num_seeds"], r["status"], fmt(r["env_steps"]), fmt(r["episodes"]), fmt(r["wall_s"], 2, " s"),
                 fmt(r["process_ext_s"], 2, " s"), fmt(r["us_per_step_train"]), fmt(r["us_per_step_process"]),
                 fx(ratio(base, r["us_per_step_train"]), 1)] for r in pts]
        L += [f"{NAMES[env]}:", ""] + table(
            ["num_seeds", "status", "env steps", "episodes", "training", "process", "µs/step, training",
             "µs/step, process", "vs the first"], rows) + [""]
    return L + ["Commands (N = the num_seeds of the row):", "", "```"] + list(i["commands"].values()) + ["```"]


MEASUREMENT = Measurement("i", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="i", script=__file__)
