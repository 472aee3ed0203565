"""``rlab-report``: aggregate run folders into ``report.md``, ``summary.csv`` and ``curves.png``.

Usage::

    rlab-report multirun/2026-11-21/10-00-00            # a Hydra sweep folder
    rlab-report outputs/run_a outputs/run_b --out cmp   # several folders, report in cmp/
    rlab-report PATH --x episode --target 475 --window 100

Runs that differ only by seed form a group (one row, one curve); groups are compared
with the interquartile mean and a 95% bootstrap CI (Agarwal et al. 2021, see
:mod:`reinforce_lab.stats`). Only finished runs with episodes count. Every other run (no
summary.json: killed or still running; a torn or malformed file; failed; no episodes) is
left out: one line ``skipped RUN: REASON`` on stderr and one line in report.md each; a bad
file never stops the report; exit status 0, or 1 when no run is usable (``EXIT_STATUS``).
The Python API is :func:`load_runs`, :func:`group_runs`, :func:`summarise` and :func:`write_report`.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import stats
from .errors import ConfigError
from .extras import check_report_extra
from .report_text import format_table, render_markdown
from .runs import (COLUMNS, CURVE_POINTS, DEFAULT_WINDOW, ReportError, Run, config_value, overrides_text,  # noqa: F401
                   group_runs, load_runs, printable, resolve_window)

EXIT_STATUS = """exit status: 0 report written, at least one run counts (runs left out are listed);
1 report written, but no run is usable (report.md lists why each was left out);
2 bad input (no such PATH, no run folder under it, bad option, cannot write the report)."""


def summarise(groups: dict[str, list[Run]], *, x: str = "env_step", target: float | None = None,
              window: int | None = None, n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per group with the ``COLUMNS`` of ``summary.csv``; failed runs only counted.

    Args:
        groups: from :func:`group_runs`.
        x: ``env_step`` or ``episode``, the x-axis of the curves whose area is ``auc``.
        target: return to reach; default each run's ``target_return``.
        window: episodes in ``final_return`` and the target's moving average; default the
            runs' ``train.window``, else 100.
        n_boot: bootstrap replications of the IQM's CI.
        seed: seed of the bootstrap.

    Returns:
        Dicts keyed by ``COLUMNS``, in the order of ``groups``; NaN where a value does not
        exist (no target, a single run's std, no finished run).
    """
    window = resolve_window(groups, window)
    grid, curves = learning_curves(groups, x, window)
    rows = []
    for name, runs in groups.items():
        ok = [r for r in runs if r.ok]
        final = np.array([r.final_return(window) for r in ok])
        final = final[np.isfinite(final)]
        targets = [target if target is not None else r.target for r in ok]
        solved = [(r, stats.episodes_to_target(r.returns, t, window)) for r, t in zip(ok, targets) if t is not None]
        reached_eps = [float(r.episode[k - 1]) for r, k in solved if k is not None]  # k: 1-based count
        low, high = stats.bootstrap_ci(final, stats.iqm, n_boot=n_boot, seed=seed)
        known = {t for t in targets if t is not None}
        aucs = [stats.area_under_curve(grid[np.isfinite(c)], c[np.isfinite(c)]) for c in curves[name]]
        rows.append({
            "group": name, "n_runs": len(ok),
            "final_return_mean": float(final.mean()) if final.size else math.nan,
            "final_return_iqm": stats.iqm(final), "final_return_ci_low": low, "final_return_ci_high": high,
            "final_return_std": float(final.std(ddof=1)) if final.size > 1 else math.nan,
            "episodes_to_target_median": float(np.median(reached_eps)) if reached_eps else math.nan,
            "n_reached_target": len(reached_eps) if known else math.nan,
            "target_return": known.pop() if len(known) == 1 else math.nan,
            "auc": float(np.mean(aucs)) if aucs else math.nan,
            "n_failed": len(runs) - len(ok),
            "overrides": overrides_text(runs[0]),
        })
    return rows


def learning_curves(groups: dict[str, list[Run]], x: str, window: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each usable run's moving-average return on one x grid shared by all groups.

    A run that stopped because it reached the target return is held at its last value
    after it stopped (it was solved; leaving it out would leave only the slower runs at the
    right end). Any other run's curve ends where the run ended (NaN beyond).

    Returns:
        ``(grid, {group: [runs, points]})``.
    """
    if x not in ("env_step", "episode"):
        raise ReportError(f"--x must be env_step or episode, not {x!r}")
    used = {name: [r for r in runs if r.ok and r.returns.size] for name, runs in groups.items()}
    xs = [getattr(r, x) for runs in used.values() for r in runs]
    if not xs:
        return np.zeros(0), {name: np.zeros((0, 0)) for name in groups}
    grid = np.linspace(min(v[0] for v in xs), max(v[-1] for v in xs), CURVE_POINTS)
    curves = {}
    for name, runs in used.items():
        rows = []
        for r in runs:
            y = stats.resample_curve(getattr(r, x), stats.moving_average(r.returns, window), grid)
            if not r.stopped_at_target:
                y[grid > getattr(r, x)[-1]] = np.nan
            rows.append(y)
        curves[name] = np.array(rows).reshape(len(runs), grid.size)
    return grid, curves


# ---------------------------------------------------------------- outputs
def write_report(paths: Sequence[str | Path], out: str | Path | None = None, *, x: str = "env_step",
                 target: float | None = None, window: int | None = None, n_boot: int = 2000,
                 verbose: bool = False) -> Path:
    """Load, group and summarise the runs under ``paths``; write the report files into ``out``.

    Args:
        paths: run folders or folders holding them.
        out: output folder (created); default the first of ``paths``.
        x, target, window, n_boot: as in :func:`summarise`.
        verbose: print the table and the paths written (what the CLI does).

    Returns:
        The path of ``report.md`` (``summary.csv`` and ``curves.png`` lie beside it).

    Raises:
        ReportError: bad input (see :func:`load_runs`).
    """
    return _write_report(paths, out, x=x, target=target, window=window, n_boot=n_boot, verbose=verbose)[0]


def _write_report(paths: Sequence[str | Path], out: str | Path | None, *, x: str, target: float | None,
                  window: int | None, n_boot: int, verbose: bool) -> tuple[Path, list[Run]]:
    """:func:`write_report`, also returning every run found (the CLI's exit status depends on them)."""
    if not paths:
        raise ReportError("no PATH given")
    if (window is not None and int(window) < 1) or n_boot < 1:
        raise ReportError("--window and --n-boot must be at least 1")
    runs = load_runs(paths)
    for run in (r for r in runs if verbose and not r.ok):
        print(f"skipped {run.label}: {run.reason}", file=sys.stderr)
    groups = group_runs(runs)
    win = resolve_window(groups, window)
    rows = summarise(groups, x=x, target=target, window=win, n_boot=n_boot)
    out_dir = Path(out if out is not None else paths[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    # The command that reproduces this report, whether it came from the CLI or the API.
    options = {"--out": out, "--x": x if x != "env_step" else None, "--target": target, "--window": window,
               "--n-boot": n_boot if n_boot != 2000 else None}
    args = [str(p) for p in paths]
    for flag, value in options.items():
        if value is not None:
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    written = [_write_csv(rows, out_dir / "summary.csv"),
               plot_curves(groups, out_dir / "curves.png", x=x, window=win, target=target, n_boot=n_boot)]
    md = out_dir / "report.md"
    md.write_text(render_markdown(rows, groups, "rlab-report " + shlex.join(args), x=x, window=win, n_boot=n_boot,
                                  left_out=[r for r in runs if not r.ok]), encoding="utf-8", errors="backslashreplace")
    if verbose:
        print(format_table(rows))
        print("wrote: " + "  ".join(printable(p) for p in (md, *written)))
    return md, runs


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:  # NaN is written as an empty cell, which pandas reads back as NaN
            writer.writerow({k: "" if isinstance(v, float) and not math.isfinite(v) else
                             (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def plot_curves(groups: dict[str, list[Run]], path: Path, *, x: str = "env_step", window: int = DEFAULT_WINDOW,
                target: float | None = None, n_boot: int = 2000) -> Path:
    """One line per group (mean over runs of the moving-average return) with a 95% CI band."""
    from matplotlib.figure import Figure  # no pyplot: never touches the caller's backend or figures
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=(8, 4.8), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    grid, curves = learning_curves(groups, x, window)
    for name, runs in curves.items():
        if len(runs):
            mean, low, high = stats.mean_curve_with_ci(runs, n_boot=n_boot)
            # Draw a group only where at least half its runs still have data, not one straggler.
            sparse = np.isfinite(runs).sum(0) < len(runs) / 2
            mean[sparse] = low[sparse] = high[sparse] = np.nan
            label = f"{name} (n={len(runs)})".replace("$", r"\$")  # a "$" in an override is not mathtext
            (line,) = ax.plot(grid, mean, lw=1.8, label=label)
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, lw=0)
    targets = {target} if target is not None else {r.target for rs in groups.values() for r in rs if r.ok} - {None}
    for t in sorted(targets)[:3]:
        ax.axhline(t, color="0.35", ls="--", lw=1, label=f"target {t:g}")
    if not grid.size:
        ax.text(0.5, 0.5, "no finished runs with episodes", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Training return: mean over runs, shaded 95% bootstrap CI")
    ax.set_xlabel("environment steps" if x == "env_step" else "episodes")
    ax.set_ylabel(f"episode return (mean of last {window} episodes)")
    if x == "env_step":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > 7 or max(map(len, labels), default=0) > 40:
        # Many or long group names would cover the curves: list them under the plot instead.
        fig.set_size_inches(8, 4.8 + 0.22 * len(labels))
        fig.legend(handles, labels, loc="outside lower center", fontsize="small", frameon=False)
    elif labels:
        ax.legend(fontsize="small", loc="best")
    fig.savefig(path)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``rlab-report``."""
    parser = argparse.ArgumentParser(
        prog="rlab-report", description="Aggregate run folders into report.md, summary.csv and curves.png. "
        "Runs that cannot be used (killed, torn or malformed files, failed, no episodes) are listed, one line "
        "each, and left out.", epilog=EXIT_STATUS)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a run folder, or a folder holding run folders")
    parser.add_argument("--out", metavar="DIR", help="where to write the report (default: the first PATH)")
    parser.add_argument("--x", choices=("env_step", "episode"), default="env_step", help="x-axis of the curves")
    parser.add_argument("--target", type=float, metavar="FLOAT", help="return to reach (default: each run's target_return)")
    parser.add_argument("--window", type=int, metavar="N", help="episodes in the moving average (default: train.window, else 100)")
    parser.add_argument("--n-boot", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    parser.add_argument("--status", action="store_true", help="instead of a report: one line per job of each sweep "
                        "in PATH (finished, running with its env steps, pending, failed and why; SLURM's state when "
                        "squeue/sacct answer); writes nothing, exit 0")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="with --status: print it again every SECONDS "
                        "until no job runs or waits (Ctrl-C stops)")
    args = parser.parse_args(argv)
    if args.watch is not None and (not args.status or not args.watch > 0):
        parser.error("--watch needs --status and a number of seconds > 0")
    if args.status:
        from .sweep_status import StatusError, show_status

        try:
            sys.exit(show_status(args.paths, watch=args.watch))
        except StatusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
    try:
        check_report_extra()  # a bare `pip install .`: one line naming the extra, before anything is written
        md, runs = _write_report(args.paths, args.out, x=args.x, target=args.target, window=args.window,
                                 n_boot=args.n_boot, verbose=True)
    except (ReportError, ConfigError, OSError) as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        sys.exit(2)
    if not any(r.ok for r in runs):
        print(f"error: no usable run: all {len(runs)} left out (see {printable(md)})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
