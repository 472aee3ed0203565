"""Plot a Sutton & Barto short-corridor sweep the way the book does, and check its claims.

Usage: python experiments/sutton_barto_plot.py SWEEP_DIR OUT_DIR --figure 13.1|13.2 [--also SWEEP_DIR2]

``--also`` adds a second panel (and table) for another sweep of the same figure, e.g. the
same runs without the probability floor.

Reads every job folder of a multirun (``episodes.csv`` with one row per agent and episode,
``seed`` column), averages the total reward per episode over the agents (the book's
"averaged over 100 runs") and plots one curve per job with v*(s0) as a dashed line.
Writes ``figure.png`` and ``results.md`` (the numbers the issue's acceptance asks for).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from reinforce_lab.envs import OPTIMAL_START_VALUE  # noqa: E402


def load(sweep: Path) -> list[dict]:
    jobs = []
    for job in sorted((p for p in sweep.iterdir() if (p / "episodes.csv").exists()), key=lambda p: p.name):
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        summary = json.loads((job / "summary.json").read_text()) if (job / "summary.json").exists() else {}
        per_ep: dict[int, list[float]] = defaultdict(list)
        by_seed: dict[str, list[tuple[int, float]]] = defaultdict(list)
        capped = set()
        cap = cfg["env"].get("max_episode_steps")
        for r in csv.DictReader(open(job / "episodes.csv")):
            per_ep[int(r["episode"])].append(float(r["return"]))
            by_seed[r.get("seed")].append((int(r["episode"]), float(r["return"])))
            if cap and int(r["length"]) >= cap:
                capped.add(r.get("seed"))
        episodes = sorted(per_ep)
        clean: dict[int, list[float]] = defaultdict(list)  # runs that never hit the cap
        for seed, rows in by_seed.items():
            if seed not in capped:
                for ep, ret in rows:
                    clean[ep].append(ret)
        label = (f"REINFORCE with baseline, α_θ=2^{np.log2(cfg['optimizer']['lr']):.0f}, "
                 f"α_w=2^{np.log2(cfg['algo']['baseline_lr']):.0f}" if cfg["algo"]["advantage"] == "baseline"
                 else f"REINFORCE, α=2^{np.log2(cfg['optimizer']['lr']):.0f}")
        floor = float((cfg.get("policy") or {}).get("min_prob") or 0.0)
        jobs.append({"floor": floor, "label": label, "lr": cfg["optimizer"]["lr"], "algo": cfg["algo"]["name"],
                     "episodes": np.array(episodes), "runs": len(per_ep[episodes[0]]),
                     "mean": np.array([np.mean(per_ep[e]) for e in episodes]),
                     "clean_mean": np.array([np.mean(clean[e]) if clean[e] else np.nan for e in episodes]),
                     "capped_runs": len(capped), "cap": cap, "wall_s": summary.get("wall_s")})
    return jobs


def _panel(ax, jobs: list[dict], title: str) -> None:
    for job in jobs:
        line, = ax.plot(job["episodes"], job["mean"], lw=1.2, label=job["label"])
        if job["capped_runs"]:
            ax.plot(job["episodes"], job["clean_mean"], lw=0.8, ls=":", color=line.get_color(),
                    label=f"{job['label']}: the {job['runs'] - job['capped_runs']} runs that never hit the cap")
    ax.axhline(OPTIMAL_START_VALUE, ls="--", color="gray", lw=1, label=f"v*(s0) ≈ {OPTIMAL_START_VALUE:.2f}")
    ax.set_ylim(-90, -10)
    ax.set_xlabel("episode")
    ax.set_ylabel(f"total reward per episode\n(mean over {jobs[0]['runs']} runs)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)


def _floor_text(jobs: list[dict]) -> str:
    floor = jobs[0]["floor"]
    return (f"with the floor π ≥ {floor:g} (reference code)" if floor
            else "no floor (the book's algorithm as printed)")


def _table(jobs: list[dict], figure: str) -> list[str]:
    lines = [f"{jobs[0]['runs']} runs × {len(jobs[0]['episodes'])} episodes per curve; episodes capped at "
             f"{jobs[0]['cap']} steps; {_floor_text(jobs)}. v*(s0) = {OPTIMAL_START_VALUE:.3f}.", "",
             "| curve | mean return, episodes 1–50 | 51–100 | 101–300 | 901–1000 | distance of 901–1000 from v* "
             "| runs that hit the cap | wall time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for job in jobs:
        m, ep = job["mean"], job["episodes"]
        seg = lambda a, b: float(m[(ep >= a) & (ep <= b)].mean())  # noqa: E731
        late = seg(901, 1000)
        wall = f"{job['wall_s']:.0f} s" if job["wall_s"] else "n/a"
        lines.append(f"| {job['label']} | {seg(1, 50):.2f} | {seg(51, 100):.2f} | {seg(101, 300):.2f} | {late:.2f} | "
                     f"{late - OPTIMAL_START_VALUE:+.2f} | {job['capped_runs']} | {wall} |")
    if figure == "13.2" and len(jobs) == 2:
        base = next(j for j in jobs if j["algo"] != "reinforce")
        plain = next(j for j in jobs if j["algo"] == "reinforce")
        sel = (base["episodes"] >= 50) & (base["episodes"] <= 300)
        above = int((base["mean"][sel] > plain["mean"][sel]).sum())
        lines += ["", f"Baseline curve above REINFORCE's on {above} of {int(sel.sum())} episodes in 50–300 "
                  f"(mean over 50–300: {base['mean'][sel].mean():.2f} vs {plain['mean'][sel].mean():.2f})."]
    if figure == "13.1":
        order = sorted(jobs, key=lambda j: -j["lr"])
        for a, b in ((1, 50), (51, 300)):
            early = [float(j["mean"][(j["episodes"] >= a) & (j["episodes"] <= b)].mean()) for j in order]
            lines += ["", f"Early order (mean return over episodes {a}–{b}, largest α first): "
                      + ", ".join(f"{j['label']}: {e:.2f}" for j, e in zip(order, early))
                      + (" — the book's order (2^-12 fastest, 2^-14 slowest)." if early == sorted(early, reverse=True)
                         else " — NOT the book's order.")]
        if any(j["capped_runs"] for j in jobs):
            clean = [float(np.nanmean(j["clean_mean"][(j["episodes"] >= 51) & (j["episodes"] <= 300)]))
                     for j in order]
            lines += ["", "Same (51–300), over the runs that never hit the cap only: "
                      + ", ".join(f"{j['label']} ({j['runs'] - j['capped_runs']} runs): {e:.2f}"
                                  for j, e in zip(order, clean))
                      + (" — the book's order." if clean == sorted(clean, reverse=True) else " — not the book's order.")]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--figure", choices=["13.1", "13.2"], required=True)
    ap.add_argument("--also", type=Path, help="a second sweep of the same figure, plotted beside the first")
    args = ap.parse_args()
    sweeps = [load(args.sweep)] + ([load(args.also)] if args.also else [])
    fig, axes = plt.subplots(1, len(sweeps), figsize=(7.5 * len(sweeps), 4.8), squeeze=False)
    for ax, jobs in zip(axes[0], sweeps):
        _panel(ax, jobs, _floor_text(jobs) if len(sweeps) > 1 else "")
    fig.suptitle(f"Sutton & Barto Figure {args.figure}: short corridor (Example 13.1)")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "figure.png", dpi=110)

    lines = [f"# Sutton & Barto Figure {args.figure} — measured", ""]
    for i, jobs in enumerate(sweeps):
        if len(sweeps) > 1:
            lines += [f"## {'Left' if i == 0 else 'Right'} panel: {_floor_text(jobs)}", ""]
        lines += _table(jobs, args.figure) + [""]
    lines += ["![figure](figure.png)"]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
