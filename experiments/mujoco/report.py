"""Aggregate MuJoCo sweeps into a comparison with Tianshou's published REINFORCE numbers, and curves.

``python experiments/mujoco/report.py SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--partial]``: a job folder (``0/``...)
is one task (``env.id``) and variant (``algo.name``) of ``train.num_seeds`` agents. Writes ``results.md``,
``summary.csv``, ``curves.png``. Only finished runs count (``--partial``: also runs still going); any other is
left out with a one-line reason (stderr, results.md). Exit status: 0 a run counts, 1 none, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reinforce_lab import stats
from reinforce_lab.run_folder import NO_SUMMARY, printable, read_bytes, read_summary, read_yaml

HERE = Path(__file__).resolve().parent
MODES = ("stochastic", "deterministic")
PRIMARY = "stochastic"  # what Tianshou's benchmark reports
LAST_K = 3  # evaluations averaged into an agent's final performance
EVAL_COLUMNS = ("env_step", "seed", "mode", "return_mean")
TASKS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "InvertedPendulum-v5",
         "InvertedDoublePendulum-v5", "Reacher-v5")
VARIANTS = ("reinforce", "reinforce_baseline")
BRIEF = ["task", "seeds", "ours: IQM [95% CI]", "their task", "theirs: max ≤ 1M", "ours ≥ theirs"]  # on stdout
PUBLISHED = ("task", "their_task", "max_mean_upto_1M", "mean_at_1M", "max_mean_10M", "source")
SOURCE = "https://github.com/thu-ml/tianshou/tree/39acf2094d96268d92ebb54dcbfc3de76d702567/examples/mujoco/benchmark"
MEASURED = f"""How each side is measured (not the same way):

- **Ours**: an agent's final performance is the mean of its stochastic evaluation return (sampled actions,
  `train.eval_episodes` test episodes per evaluation) over its last {LAST_K} evaluations (one every
  `train.eval_every_steps` env steps and one at the end of the 1M-step budget); per task, the interquartile mean (IQM)
  over the agents (5 seeds) with a 95% percentile-bootstrap CI, and the plain mean ± std (ddof 1). "deterministic":
  the same measure with the Gaussian's mean action.
- **Theirs** ([Tianshou REINFORCE]({SOURCE}) `<task>/reinforce/test_rew_10seeds.csv`: 10 seeds, 10 stochastic
  test episodes per point, a point every 30,720 env steps): `max ≤ 1M` is the maximum over training (env step
  ≤ 1M) of the 10-seed mean curve, their own measure at our budget, a maximum over 33 noisy points, so optimistic
  next to a final value; `at 1M` their mean at the last point ≤ 1M (983,040 steps); `max 10M` their README's value.
- **Tasks**: ours are gymnasium's MuJoCo v5 tasks, theirs gym's v3 (v2: InvertedPendulum, InvertedDoublePendulum,
  Reacher), close but not identical. `ours ≥ theirs` compares our final stochastic IQM with their `max ≤ 1M`."""


@dataclass
class Job:
    """One counted run: a task and variant with its agents' evaluations."""

    folder: Path
    task: str
    variant: str
    evals: pd.DataFrame  # env_step, seed, mode, return_mean
    finished: bool


def read_evals(folder: Path) -> tuple[pd.DataFrame | None, str | None]:
    """evals.csv's columns env_step, seed, mode, return_mean, or the one-line reason it cannot be used."""
    data, problem = read_bytes(folder / "evals.csv", 1 << 30)
    if data is None or not data.strip():
        return None, problem or ("evals.csv is empty" if data is not None else "no evals.csv")
    if not data.endswith(b"\n"):
        return None, "evals.csv: last line torn (cut mid-write)"
    try:
        table = pd.read_csv(io.StringIO(data.decode("utf-8")), index_col=False)
    except Exception as exc:  # noqa: BLE001 - the parser's errors on damaged text are many kinds
        return None, f"evals.csv is malformed ({printable(str(exc).strip(), 80)})"
    table.columns = [str(c).strip() for c in table.columns]
    if missing := [c for c in EVAL_COLUMNS if c not in table.columns]:
        return None, f"evals.csv has no column(s) {', '.join(missing)}"
    numbers = table[["env_step", "seed", "return_mean"]].apply(pd.to_numeric, errors="coerce").astype(float)
    if (bad := ~np.isfinite(numbers.to_numpy()).all(axis=1)).any():
        return None, f"evals.csv line {int(np.argmax(bad)) + 2}: not finite numbers"
    table = numbers.assign(mode=table["mode"].astype(str).str.strip())
    if table.empty or table.duplicated(["env_step", "seed", "mode"]).any():
        return None, "evals.csv has no evaluations" if table.empty else "evals.csv repeats an env_step, seed, mode"
    return table, None


def check_evals(evals: pd.DataFrame, config: dict[str, Any]) -> str | None:
    """Why the evaluations cannot give every agent a final value in every mode, or None."""
    if isinstance(expected := _get(config, "train", "num_seeds"), int) and (n := evals["seed"].nunique()) != expected:
        return f"evals.csv has {n} agents, train.num_seeds is {expected}"
    for mode in MODES:
        counts = evals[evals["mode"] == mode].groupby("seed").size().reindex(evals["seed"].unique(), fill_value=0)
        if counts.min() < LAST_K:
            return f"evals.csv: seed {int(counts.idxmin())} has {int(counts.min())} {mode} evaluations (need {LAST_K})"
    return None


def _get(tree: Any, *keys: str) -> Any:
    """``tree[keys[0]][keys[1]]...``, None where a key is missing."""
    return reduce(lambda t, k: t.get(k) if isinstance(t, dict) else None, keys, tree)


def read_job(folder: Path, partial: bool = False) -> tuple[Job | None, str | None]:
    """One job folder as a :class:`Job`, or the one-line reason it is left out (never raises)."""
    summary, problem = read_summary(folder)
    if problem:
        return None, problem
    if (summary is None and not partial) or (summary is not None and summary["status"] != "finished"):
        return None, NO_SUMMARY if summary is None else f"status `{printable(summary['status'], 40)}`"
    config, problem = read_yaml(folder / ".hydra" / "config.yaml", dict)
    if config is None:
        return None, problem or "no .hydra/config.yaml"
    task, variant = _get(config, "env", "id"), _get(config, "algo", "name")
    if not isinstance(task, str) or not isinstance(variant, str):
        return None, ".hydra/config.yaml has no env.id or algo.name"
    evals, problem = read_evals(folder)  # evals is None only with a problem
    if problem := problem or check_evals(evals, config):
        return None, problem
    return Job(folder, task, variant, evals, summary is not None), None


def job_folders(sweep: Path) -> list[Path]:
    """The job folders of a sweep (its non-hidden subfolders), or the folder itself if it is a run."""
    if (sweep / ".hydra").is_dir() or (sweep / "evals.csv").exists():
        return [sweep]
    subs = [p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(subs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def load_jobs(sweeps: list[Path], partial: bool = False) -> tuple[list[Job], list[tuple[Path, str]]]:
    """``(jobs, left_out)`` over every job folder; a second run of a task and variant is left out."""
    jobs, left = [], []  # type: list[Job], list[tuple[Path, str]]
    for sweep in sweeps:
        try:
            folders = job_folders(sweep)
        except OSError as exc:
            left.append((sweep, f"cannot list it ({exc.strerror or type(exc).__name__})"))
            continue
        for folder in folders:
            job, problem = read_job(folder, partial)
            twin = next((j for j in jobs if job and (j.task, j.variant) == (job.task, job.variant)), None)
            if job is not None and twin is None:
                jobs.append(job)
            else:
                left.append((folder, problem or f"a second {job.task} {job.variant}: {printable(twin.folder)} counts"))
    return jobs, left


def finals(evals: pd.DataFrame, mode: str) -> pd.Series:
    """Each agent's (seed's) final performance: the mean return_mean of its last LAST_K evaluations in ``mode``."""
    rows = evals[evals["mode"] == mode].sort_values(["seed", "env_step"])
    return rows.groupby("seed").tail(LAST_K).groupby("seed")["return_mean"].mean()


def aggregate(values: np.ndarray) -> dict[str, float]:
    """IQM with its 95% bootstrap CI, and the mean ± std (ddof 1), of per-seed final values."""
    low, high = stats.bootstrap_ci(values, stats.iqm, seed=0)
    return {"n_seeds": int(values.size), "iqm": stats.iqm(values), "ci_low": low, "ci_high": high,
            "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if values.size > 1 else math.nan}


def summarise(jobs: list[Job]) -> pd.DataFrame:
    """summary.csv: one row per task × variant × mode, with each seed's final value (``final_s<seed>``)."""
    rows = []
    for job in sorted(jobs, key=lambda j: (_order(j.task, TASKS), _order(j.variant, VARIANTS))):
        for mode in MODES:
            per_seed = finals(job.evals, mode)
            rows.append({"task": job.task, "variant": job.variant, "mode": mode, **aggregate(per_seed.to_numpy()),
                         "last_env_step": int(job.evals["env_step"].max()), "finished": job.finished,
                         "run": str(job.folder), **{f"final_s{int(s)}": v for s, v in per_seed.items()}})
    return pd.DataFrame(rows, columns=None if rows else ["task", "variant", "mode", "n_seeds", "iqm", "ci_low",
                                                         "ci_high", "mean", "std", "last_env_step", "finished", "run"])


def _order(name: str, known: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: the known names in their order, then the others by name."""
    return (known.index(name) if name in known else len(known), name)


def compare(summary: pd.DataFrame, published: pd.DataFrame | None, variant: str) -> pd.DataFrame:
    """One variant's comparison table: ours (final, IQM over seeds) vs Tianshou's published numbers."""
    ours = summary[(summary["variant"] == variant) & (summary["mode"] == PRIMARY)].set_index("task")
    det = summary[(summary["variant"] == variant) & (summary["mode"] == "deterministic")].set_index("task")["iqm"]
    theirs = published.set_index("task") if published is not None else pd.DataFrame()
    rows = []
    for task, o in ours.iterrows():
        t = theirs.loc[task] if task in theirs.index else {}
        target = float(t.get("max_mean_upto_1M", math.nan))
        note = "" if o["finished"] else f" (unfinished, {o['last_env_step'] / 1e6:.2f}M steps)"
        rows.append({"task": f"{task}{note}", "seeds": int(o["n_seeds"]),
                     "ours: IQM [95% CI]": f"{_f(o['iqm'])} [{_f(o['ci_low'])}, {_f(o['ci_high'])}]",
                     "ours: mean ± std": f"{_f(o['mean'])} ± {_f(o['std'])}",
                     "ours: deterministic IQM": _f(det.get(task)), "their task": t.get("their_task", "–"),
                     "theirs: max ≤ 1M": _f(target), "theirs: at 1M": _f(t.get("mean_at_1M")),
                     "theirs: max 10M": _f(t.get("max_mean_10M")),
                     "ours ≥ theirs": "–" if math.isnan(target) else ("yes" if o["iqm"] >= target else "no")})
    return pd.DataFrame(rows)


def _f(x: Any) -> str:
    """A number to one decimal; – for none."""
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{float(x):.1f}"


def count_line(table: pd.DataFrame) -> str:
    """``ours ≥ theirs on K of N tasks`` over the tasks that have both numbers."""
    marks = table["ours ≥ theirs"]
    return f"ours ≥ theirs on {int((marks == 'yes').sum())} of {int(marks.isin(['yes', 'no']).sum())} tasks"


def md_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)])


def render(summary: pd.DataFrame, published: pd.DataFrame | None, left: list[tuple[Path, str]]) -> str:
    """results.md: the measurement statement, one comparison section per variant, the runs left out."""
    parts = ["# REINFORCE on MuJoCo: ours vs Tianshou's published REINFORCE", "", MEASURED]
    for variant in sorted(summary["variant"].unique(), key=lambda v: _order(v, VARIANTS)):
        table = compare(summary, published, variant)
        parts += ["", f"## {variant}", "", md_table(table), "", f"**{count_line(table)}** "
                  f"(ours: final stochastic IQM; theirs: max ≤ 1M of the 10-seed mean)."]
    parts += ["", f"## Left out ({len(left)})", ""] + [f"- `{printable(p)}`: {r}" for p, r in left]
    return "\n".join(parts) + "\n"


def read_published(path: Path, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A committed published_tianshou*.csv, or None (with a note on stderr) when absent or unreadable."""
    try:
        table = pd.read_csv(path)
        if missing := sorted(set(columns) - set(table.columns)):
            raise ValueError(f"it has no column(s) {', '.join(missing)}")
        return table
    except Exception as exc:  # noqa: BLE001 - a missing or damaged file only drops their numbers
        print(f"note: {printable(path)} not used: {printable(exc, 120)}", file=sys.stderr)
        return None


def plot_curves(jobs: list[Job], published_curves: Path, path: Path) -> None:
    """curves.png: per task, each variant's stochastic eval return (mean over seeds, min–max band) and theirs."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    curves = read_published(published_curves, ("task", "env_step", "mean"))
    tasks = sorted({j.task for j in jobs}, key=lambda t: _order(t, TASKS))
    nrows, ncols = math.ceil((len(tasks) + 1) / 4), min(4, len(tasks) + 1)  # one spare panel holds the legend
    fig = Figure(figsize=(4 * ncols, 3.2 * nrows), layout="tight")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for job in sorted((j for j in jobs if j.task == task), key=lambda j: _order(j.variant, VARIANTS)):
            grid = job.evals[job.evals["mode"] == PRIMARY].pivot(index="env_step", columns="seed", values="return_mean")
            x = grid.index.to_numpy() / 1e6
            line, = ax.plot(x, grid.mean(axis=1), label=job.variant)
            ax.fill_between(x, grid.min(axis=1), grid.max(axis=1), color=line.get_color(), alpha=0.2)
        if curves is not None and task in set(curves["task"]):
            theirs = curves[curves["task"] == task].sort_values("env_step")
            ax.plot(theirs["env_step"] / 1e6, theirs["mean"], "k--", lw=1, label="Tianshou (v3/v2, 10-seed mean)")
        ax.set(title=task, xlabel="env steps (M)", ylabel="stochastic eval return")
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes.flat[len(tasks)].legend(handles.values(), handles.keys(), loc="center", fontsize=8,
                                 title="ours: mean over seeds, band min–max", title_fontsize=8)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    """The CLI: read the sweeps, write results.md, summary.csv and curves.png, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, metavar="SWEEP_DIR", help="sweep folder(s) or run folder(s)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: experiments/mujoco)")
    parser.add_argument("--published", type=Path, default=HERE / "published_tianshou.csv",
                        help="Tianshou's numbers; their curves are published_tianshou_curves.csv beside it")
    parser.add_argument("--partial", action="store_true", help="also count runs still going (no summary.json)")
    args = parser.parse_args(argv)
    if bad := [printable(s) for s in args.sweeps if not s.is_dir()]:
        parser.error(f"not a folder: {', '.join(bad)}")
    jobs, left = load_jobs(args.sweeps, args.partial)
    for folder, reason in left:
        print(f"skipped {printable(folder)}: {reason}", file=sys.stderr)
    published = read_published(args.published, PUBLISHED)
    summary = summarise(jobs)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(render(summary, published, left), encoding="utf-8")
        summary.to_csv(args.out / "summary.csv", index=False)
        if jobs:
            plot_curves(jobs, args.published.with_name("published_tianshou_curves.csv"), args.out / "curves.png")
    except OSError as exc:
        print(f"error: cannot write the report: {printable(exc)}", file=sys.stderr)
        return 2
    for variant in sorted(summary["variant"].unique(), key=lambda v: _order(v, VARIANTS)):
        table = compare(summary, published, variant)
        print(f"{variant}:\n{table[BRIEF].to_string(index=False)}\n{count_line(table)}\n")
    if not jobs:
        print(f"error: no usable run: all {len(left)} left out", file=sys.stderr)
    return 0 if jobs else 1


if __name__ == "__main__":
    sys.exit(main())
