"""Find run folders, read what each run wrote, and group runs that differ only by seed.

Used by ``rlab-report`` (:mod:`reinforce_lab.report`). A run is a folder with
``summary.json`` and/or ``episodes.csv`` (one agent), or one agent of a
``train.num_seeds`` job (the rows of ``episodes.csv`` with that ``seed``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from .run_summary import SUMMARY_FILE, read_summary_fields

CURVE_POINTS = 200
DEFAULT_WINDOW = 100
OK_STATUSES = ("finished", "unknown")  # "unknown": episodes.csv without summary.json
# Overrides that change how a job runs, not what it learns: runs differing only in these are seeds of one experiment.
IGNORED_KEYS = {"seed", "train.num_seeds", "train.progress", "train.torch_threads", "resume", "tags"}
IGNORED_ROOTS = {"hydra", "logger"}
SKIP_DIRS = {"wandb", "checkpoints", "__pycache__"}
COLUMNS = ["group", "n_runs", "final_return_mean", "final_return_iqm", "final_return_ci_low",
           "final_return_ci_high", "final_return_std", "episodes_to_target_median", "n_reached_target",
           "target_return", "auc", "n_failed", "overrides"]


class ReportError(Exception):
    """A problem with the user's input (missing folder, no runs): one line, exit code 2."""


@dataclass
class Run:
    """One trained agent: a run folder, or one seed of a folder that trained several together."""

    path: Path
    label: str
    status: str
    seed: int | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] | None = None
    config: dict[str, Any] | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # Hydra's config-group choices
    episode: np.ndarray = field(default_factory=lambda: np.zeros(0))
    env_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ok(self) -> bool:
        """Whether the run counts in the statistics."""
        return self.status in OK_STATUSES

    @property
    def stopped_at_target(self) -> bool:
        """Whether training stopped because the target return was reached (then its curve is held)."""
        return self.summary.get("stop_reason") == "target return reached"

    @property
    def target(self) -> float | None:
        t = self.summary.get("target_return", config_value(self.config, "train.target_return"))
        return float(t) if isinstance(t, (int, float)) else None

    def final_return(self, window: int) -> float:
        """Mean of the last ``window`` returns (the trainer's ``final_return``), else summary.json's."""
        if self.returns.size:
            return float(self.returns[-window:].mean())
        fr = self.summary.get("final_return")
        return float(fr) if isinstance(fr, (int, float)) else float("nan")


# ---------------------------------------------------------------- loading
def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run under ``paths`` (run folders, or folders holding them at any depth).

    Raises:
        ReportError: a path is missing or not a folder, or no run is found.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            raise ReportError(f"{p}: {'not a folder' if p.exists() else 'no such folder'}")
    # Labels are relative to what the PATHs share, so runs of different PATHs never look alike.
    resolved = [p.resolve() for p in paths]
    base = resolved[0].parent if len(set(resolved)) == 1 else Path(os.path.commonpath(resolved))
    runs, seen = [], set()
    for p in paths:
        folders = _find_run_dirs(p)
        if not folders:
            raise ReportError(f"no run folders (with summary.json or episodes.csv) under {p}")
        for folder in folders:
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                runs.extend(_load_folder(folder, str(folder.resolve().relative_to(base))))
    return runs


def _find_run_dirs(path: Path) -> list[Path]:
    if (path / "summary.json").is_file() or (path / "episodes.csv").is_file():
        return [path]
    subdirs = sorted((d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
                      and d.name not in SKIP_DIRS), key=_natural_key)  # sweep jobs 0, 1, …, 10 in order
    return [run for d in subdirs for run in _find_run_dirs(d)]


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _load_folder(folder: Path, label: str) -> list[Run]:
    base: dict[str, Any] = dict(path=folder, label=label, status="unknown")
    if (folder / SUMMARY_FILE).is_file():
        try:
            summary = read_summary_fields(folder)  # summary.json's keys (RunSummary), as far as present
            base.update(summary=summary, status=str(summary.get("status", "unknown")), error=summary.get("error"))
        except (OSError, ValueError) as exc:
            base.update(status="unreadable", error=f"summary.json: {exc}")
    base["overrides"] = _read_yaml(folder / ".hydra" / "overrides.yaml")
    base["config"] = _read_yaml(folder / ".hydra" / "config.yaml")
    base["choices"] = config_value(_read_yaml(folder / ".hydra" / "hydra.yaml"), "hydra.runtime.choices") or {}
    try:
        table = _read_episodes(folder / "episodes.csv")
    except (OSError, ValueError, KeyError) as exc:
        return [Run(**{**base, "status": "unreadable", "error": f"episodes.csv: {exc}"})]
    if table is None or "seed" not in table:
        run = Run(**base, seed=base.get("summary", {}).get("seed"))
        if table is not None:
            run.episode, run.env_step, run.returns = (table[c].to_numpy(float)
                                                      for c in ("episode", "env_step", "return"))
        return [run]
    # One job trained several agents (train.num_seeds > 1): each seed's rows are one run, and
    # "episode" becomes that agent's own episode count 1..n.
    runs = []
    for seed, rows in table.groupby("seed", sort=True):
        run = Run(**{**base, "label": f"{label}[seed={seed}]"}, seed=int(seed))
        run.env_step, run.returns = rows["env_step"].to_numpy(float), rows["return"].to_numpy(float)
        run.episode = np.arange(1, len(rows) + 1, dtype=float)
        runs.append(run)
    return runs


def _read_episodes(path: Path) -> Any:
    import pandas as pd

    if not path.is_file() or path.stat().st_size == 0:
        return None
    table = pd.read_csv(path)
    missing = {"episode", "env_step", "return"} - set(table.columns)
    if missing:
        raise KeyError(f"missing column(s) {', '.join(sorted(missing))}")
    return table


def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader if built: hydra.yaml is read for every run
    try:
        return yaml.load(path.read_text(), Loader=loader) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def config_value(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


# ---------------------------------------------------------------- grouping
def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs that differ only by seed, keyed by a readable group name, in discovery order.

    The key is the run's Hydra overrides minus the seed and what does not change the
    experiment (``IGNORED_KEYS``, ``hydra*``, ``logger*``); without an overrides file, its
    resolved config minus the same keys. The name is the overrides that differ between
    groups (``loss=cross_entropy``), or all of them when there is only one group.
    """
    by_key: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        by_key.setdefault(_group_key(run), []).append(run)
    items = {k: dict(_split(o) for o in k) for k in by_key}
    all_keys = list(dict.fromkeys(key for d in items.values() for key in d))
    differing = [k for k in all_keys if len({d.get(k) for d in items.values()}) > 1]
    if any(k.endswith(".name") for k in differing):  # config fallback: env.name, loss.name… say it best
        named = [k for k in differing if k.endswith(".name")]
        if len({tuple(d.get(k) for k in named) for d in items.values()}) == len(items):
            differing = named
    groups: dict[str, list[Run]] = {}
    for key, members in by_key.items():
        d, first = items[key], members[0]
        if differing:
            name = " ".join(f"{k}={d[k] if k in d else _default_value(first, k)}" for k in differing)
        else:
            name = " ".join(f"{k}={v}" for k, v in d.items()) or _default_name(first)
        while name in groups:
            name += "'"
        groups[name] = members
    return groups


def _group_key(run: Run) -> tuple[str, ...]:
    if run.overrides is not None:
        pairs = [_split(str(o)) for o in run.overrides]
    elif run.config is not None:
        pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in _flatten(run.config)]
    else:
        pairs = [(k, str(run.summary[k])) for k in ("env_id", "algo", "loss") if k in run.summary]
    return tuple(sorted(f"{k}={v}" for k, v in pairs if not _ignored(k)))


def overrides_text(run: Run) -> str:
    """The group's defining overrides as typed (empty when grouped by config or summary)."""
    return " ".join(_group_key(run)) if run.overrides is not None else ""


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+"), value


def _ignored(key: str) -> bool:
    key = key.lstrip("+~")
    return key in IGNORED_KEYS or re.split(r"[./]", key)[0] in IGNORED_ROOTS


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in tree.items():
        out.extend(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [(f"{prefix}{k}", v)])
    return out


def _default_value(run: Run, key: str) -> str:
    value = run.choices.get(key, config_value(run.config, key))
    return "default" if value is None or isinstance(value, (dict, list)) else str(value)


def _default_name(run: Run) -> str:
    parts = [str(run.summary[k]) for k in ("env_id", "algo", "loss") if run.summary.get(k)]
    return " ".join(parts) or "default"


# ---------------------------------------------------------------- statistics
