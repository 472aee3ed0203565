"""The text of a report: the aligned table ``rlab-report`` prints and ``report.md``.

Separate from :mod:`reinforce_lab.report` (loading, statistics, files, plot, CLI) because it
is only formatting: one row dict per group in (``summarise``'s), text out.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .run_folder import printable
from .runs import Run, overrides_text


def _num(v: Any, fmt: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _cells(row: dict[str, Any]) -> list[str]:
    reached = "n/a" if not math.isfinite(row["n_reached_target"]) else f"{row['n_reached_target']}/{row['n_runs']}"
    return [row["group"], str(row["n_runs"]), f"{_num(row['final_return_mean'])} ± {_num(row['final_return_std'])}",
            f"{_num(row['final_return_iqm'])} "
            f"[{_num(row['final_return_ci_low'])}, {_num(row['final_return_ci_high'])}]",
            _num(row["episodes_to_target_median"], "g"), reached, _num(row["target_return"], "g"),
            _num(row["auc"]), str(row["n_failed"])]


HEADER = ["group", "runs", "final return (mean ± std)", "IQM [95% CI]", "episodes to target (median)",
          "reached target", "target", "AUC", "failed"]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary as an aligned plain-text table (what the CLI prints)."""
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def render_markdown(rows: list[dict[str, Any]], groups: dict[str, list[Run]], command: str, *, x: str,
                    window: int, n_boot: int, left_out: Sequence[Run] | None = None) -> str:
    """``report.md``: results table, figure, groups, left-out runs, method.

    ``left_out``: every run not counted, grouped or not (default: the groups' runs that are not ok).
    """
    runs = [r for rs in groups.values() for r in rs]
    left_out = [r for r in runs if not r.ok] if left_out is None else list(left_out)
    used = sum(r.ok for r in runs)
    lines = ["# rlab-report", "", f"Produced by: `{command}`", "",
             f"{used} runs aggregated in {len(groups)} group(s); {len(left_out)} left out (listed below).", "",
             *(["**No usable run**: nothing to aggregate; the runs below were left out.", ""] if not used else []),
             "## Results", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    lines += ["", "## Learning curves", "", "![learning curves](curves.png)", "", "## Groups", ""]
    for name, members in groups.items():
        lines.append(f"- **{name}**: overrides `{overrides_text(members[0]) or '(none)'}`; runs: "
                     + ", ".join(f"`{r.label}`" for r in members))
    lines += ["", "## Failed runs and runs that cannot be used (left out of the statistics)", ""]
    lines += [f"- `{r.label}` ({printable(r.path, limit=4096)}): {r.reason}" for r in left_out] or ["None."]
    lines += ["", "## Method", "",
              f"- Final return of a run: mean return of its last {window} episodes (summary.json's `final_return` "
              "uses `train.window`).",
              f"- IQM: mean of the middle 50% of runs' final returns; 95% CI: percentile bootstrap over runs, {n_boot} "
              "resamples, seed 0 (the stratified bootstrap of Agarwal et al. 2021, *Deep RL at the Edge of the "
              "Statistical Precipice*, for one task). Std is the sample standard deviation.",
              f"- Episodes to target: first episode at which the mean of the last {window} returns reaches the "
              "target; the median is over the runs that reached it.",
              f"- Curves: each run's moving average over {window} episodes, interpolated on a common "
              f"{'env-step' if x == 'env_step' else 'episode'} grid; a run that stopped because it reached the "
              "target is held at its last value, others end where they ended; a group's line is drawn where at "
              "least half its runs have data; the band is a 95% bootstrap CI of the mean over runs.",
              "- AUC: mean height of a run's curve over the part of the grid it covers (normalised area), "
              "averaged over runs.", ""]
    return "\n".join(lines)
