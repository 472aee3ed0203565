"""Find run folders, read what each run wrote, and group runs that differ only by seed.

Used by ``rlab-report`` (:mod:`reinforce_lab.report`). A run is a folder with
``summary.json``, ``episodes.csv`` or ``.hydra/`` (one agent), or one agent of a
``train.num_seeds`` job (the rows of ``episodes.csv`` with that ``seed``).

A run counts in the statistics only if it finished (``summary.json`` says ``finished``),
has episodes, and every file of it could be read. Any other run is kept with its
:attr:`Run.reason` (no summary.json: killed or still running; a torn or malformed file;
``failed``; no episodes), so the report can list it; loading never raises on a bad file
(:mod:`reinforce_lab.run_folder` turns each failure into a reason).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import run_folder
from .run_folder import NO_EPISODES, printable

CURVE_POINTS = 200
DEFAULT_WINDOW = 100
OK_STATUSES = ("finished",)  # a run without summary.json (killed, or still running) is left out
# Overrides that change how a job runs, not what it learns: runs differing only in these are seeds of one experiment.
IGNORED_KEYS = {"seed", "train.num_seeds", "train.progress", "train.torch_threads", "resume", "tags"}
IGNORED_ROOTS = {"hydra", "logger"}
SKIP_DIRS = {"wandb", "checkpoints", "__pycache__"}
MARKERS = ("summary.json", "episodes.csv", ".hydra")  # what makes a folder a run folder (Hydra writes .hydra first)
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
    status: str  # summary.json's, "unknown" without one, "unreadable" when it is damaged
    seed: int | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] | None = None
    config: dict[str, Any] | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # Hydra's config-group choices
    episode: np.ndarray = field(default_factory=lambda: np.zeros(0))
    env_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))
    problems: list[str] = field(default_factory=list)  # files missing or damaged: why it cannot be used
    grouped: bool = True  # False: which experiment it belongs to is unknown (its overrides are damaged)

    @property
    def reason(self) -> str | None:
        """Why the run is left out of the statistics, in one line; None when it counts."""
        if self.problems:
            return "; ".join(self.problems)
        if self.status not in OK_STATUSES:
            return f"status `{self.status}`" + (f": {printable(self.error)}" if self.error else "")
        return None if self.returns.size else NO_EPISODES

    @property
    def ok(self) -> bool:
        """Whether the run counts in the statistics."""
        return self.reason is None

    @property
    def stopped_at_target(self) -> bool:
        """Whether training stopped because the target return was reached (then its curve is held)."""
        return self.summary.get("stop_reason") == "target return reached"

    @property
    def target(self) -> float | None:
        t = self.summary.get("target_return", config_value(self.config, "train.target_return"))
        # bool is an int, NaN/inf a float: neither is a return to reach
        return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) and np.isfinite(t) else None

    def final_return(self, window: int) -> float:
        """Mean of the last ``window`` returns (the trainer's ``final_return``), else summary.json's."""
        if self.returns.size:
            return float(self.returns[-window:].mean())
        fr = self.summary.get("final_return")
        return float(fr) if isinstance(fr, (int, float)) else float("nan")


# ---------------------------------------------------------------- loading
def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run under ``paths`` (run folders, or folders holding them at any depth).

    Damaged runs are returned too, with their :attr:`Run.reason`; nothing in a run folder
    makes this raise.

    Raises:
        ReportError: a path is missing or not a folder, or no run is found.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            raise ReportError(f"{printable(p)}: {'not a folder' if p.exists() else 'no such folder'}")
    # Labels are relative to what the PATHs share, so runs of different PATHs never look alike.
    resolved = [Path(os.path.realpath(p)) for p in paths]
    base = resolved[0].parent if len(set(resolved)) == 1 else Path(os.path.commonpath(resolved))
    runs: list[Run] = []
    loaded: set[str] = set()  # a folder under two PATHs (or reached by a symlink) is read once
    for p, real in zip(paths, resolved):
        found = _find_run_dirs(p)
        if not found:
            raise ReportError(f"no run folders (with summary.json, episodes.csv or .hydra/) under {printable(p)}")
        for folder, listing_error in found:
            if os.path.realpath(folder) in loaded:
                continue
            loaded.add(os.path.realpath(folder))
            label = printable(real.relative_to(base) / folder.relative_to(p), limit=4096)  # never cut a name
            runs.extend(_load_folder_safely(folder, label, listing_error))
    return runs


def _find_run_dirs(root: Path) -> list[tuple[Path, str | None]]:
    """Run folders under ``root`` in natural order, each once, with the error if a folder could not be listed.

    Depth-first without recursion, each real folder visited once: a symlink back to a
    parent folder (a loop) is not followed twice, and no tree is too deep.
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[str] = set()
    stack = [root]
    while stack:
        path = stack.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        if any(os.path.lexists(path / m) for m in MARKERS):
            found.append((path, None))
            continue
        try:
            subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
                       and d.name not in SKIP_DIRS]
        except OSError as exc:  # an unlistable folder may hold runs: say so rather than skip it in silence
            found.append((path, f"cannot list this folder ({exc.strerror or type(exc).__name__})"))
            continue
        stack.extend(sorted(subdirs, key=_natural_key, reverse=True))  # sweep jobs 0, 1, …, 10 in order
    return found


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _load_folder_safely(folder: Path, label: str, listing_error: str | None) -> list[Run]:
    """:func:`_load_folder`, with anything it did not foresee turned into the run's reason."""
    if listing_error:
        return [Run(path=folder, label=label, status="unreadable", problems=[listing_error], grouped=False)]
    try:
        return _load_folder(folder, label)
    except Exception as exc:  # noqa: BLE001 - one folder's damage must never cost the report
        problem = f"cannot read it ({type(exc).__name__}: {printable(exc, 120)})"
        return [Run(path=folder, label=label, status="unreadable", problems=[problem], grouped=False)]


def _load_folder(folder: Path, label: str) -> list[Run]:
    files = run_folder.read_folder(folder)
    base: dict[str, Any] = dict(path=folder, label=label, status=files.status, summary=files.summary,
                                error=files.summary.get("error"), overrides=files.overrides, config=files.config,
                                choices=files.choices, problems=files.problems, grouped=files.identified)
    table = files.table
    if files.problems or table is None or "seed" not in table:
        run = Run(**base, seed=files.summary.get("seed"))
        if table is not None and not files.problems:
            run.episode, run.env_step, run.returns = table["episode"], table["env_step"], table["return"]
        return [run]
    # One job trained several agents (train.num_seeds > 1): each seed's rows are one run, and
    # "episode" becomes that agent's own episode count 1..n.
    runs = []
    for seed in np.unique(table["seed"]):
        rows = table["seed"] == seed
        run = Run(**{**base, "label": f"{label}[seed={int(seed)}]"}, seed=int(seed))
        run.env_step, run.returns = table["env_step"][rows], table["return"][rows]
        run.episode = np.arange(1, int(rows.sum()) + 1, dtype=float)
        runs.append(run)
    return runs


def config_value(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def resolve_window(groups: dict[str, list[Run]], window: int | None) -> int:
    """``window`` if given, else the usable runs' common ``train.window``, else 100."""
    if window is not None:
        return int(window)
    found = {config_value(r.config, "train.window") for runs in groups.values() for r in runs if r.ok} - {None}
    value = found.pop() if len(found) == 1 else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else DEFAULT_WINDOW


# ---------------------------------------------------------------- grouping
def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs that differ only by seed, keyed by a readable group name, in discovery order.

    The key is the run's Hydra overrides minus the seed and what does not change the
    experiment (``IGNORED_KEYS``, ``hydra*``, ``logger*``); without an overrides file, its
    resolved config minus the same keys. The name is the overrides that differ between
    groups (``loss=cross_entropy``), or all of them when there is only one group. Runs whose
    experiment is unknown (``Run.grouped`` false: the file their key comes from is damaged)
    join no group, so they cannot rename the others'; the report lists them as left out.
    """
    by_key: dict[tuple[str, ...], list[Run]] = {}
    for run in (r for r in runs if r.grouped):
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
        pairs = [(k, v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in _flatten(run.config)]
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
