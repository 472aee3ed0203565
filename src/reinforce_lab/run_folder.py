"""Read one run folder's files without ever raising: each reader returns ``(value, problem)``.

``rlab-report`` reads hundreds of folders left by sweeps, and some of them are damaged: a
job killed by SIGKILL, the OOM killer, a SLURM time limit or a lost node leaves no
``summary.json`` and a torn last line in ``episodes.csv``; a full disk or a bad copy leaves
empty, truncated or binary files. One such folder must cost its own run, never the report,
so every failure reading a file becomes a one-line ``problem`` (the reason the run is left
out) and the value is None. ``(None, None)`` means the file is simply absent.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import yaml

from .run_summary import SUMMARY_FILE, AgentSummary, RunSummary

EPISODES_FILE = "episodes.csv"  # as written by reinforce_lab.episode_records
EPISODE_COLUMNS = ("episode", "env_step", "return")  # the columns the report needs
NO_SUMMARY = "no summary.json (killed, or still running)"
NO_EPISODES = "no episodes"
MAX_TEXT_BYTES = 16 << 20  # summary.json, .hydra/*.yaml: far above what a run writes
MAX_EPISODES_BYTES = 2 << 30  # episodes.csv: ~60M rows; larger is not a run's file
Problem = Union[str, None]


def printable(text: object, limit: int = 300) -> str:
    """``text`` as one printable line: file names and error messages may hold anything.

    Bytes that are not UTF-8 (undecodable file names) become ``\\xNN``, control characters
    (a newline in a folder name or in a torn file's excerpt) become escapes, so one bad run
    is always one line on the terminal and in report.md, and writing it never fails.
    """
    s = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _short(value: Any) -> str:
    """A value as JSON shows it ("abc", null, NaN), cut short: what a reason quotes from a file."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):  # a recursive YAML anchor
        text = type(value).__name__
    return printable(text, 40)


def read_bytes(path: Path, limit: int = MAX_TEXT_BYTES) -> tuple[bytes | None, Problem]:
    """The file's bytes; ``(None, None)`` when absent; a problem when it cannot be read.

    Only regular files are opened: a FIFO would block the report forever, a device could
    be endless. A dangling symlink or a symlink loop is a problem, not an absent file.
    """
    name = _name(path)
    if not os.path.lexists(path):
        return None, None
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            return None, f"{name} is a folder, not a file"
        if not stat.S_ISREG(info.st_mode):
            return None, f"{name} is not a regular file"
        if info.st_size > limit:
            return None, f"{name} is too large ({info.st_size} bytes)"
        with open(path, "rb") as f:
            return f.read(limit + 1), None
    except OSError as exc:
        return None, f"{name}: cannot read it ({exc.strerror or type(exc).__name__})"


def _name(path: Path) -> str:
    """How a file is named in a reason: relative to its run folder (``.hydra/overrides.yaml``)."""
    return f"{path.parent.name}/{path.name}" if path.parent.name == ".hydra" else path.name


def _read_text(path: Path) -> tuple[str | None, Problem]:
    """:func:`read_bytes` then :func:`_text`: the file as text, or why not."""
    data, problem = read_bytes(path)
    return (None, problem) if data is None else _text(path, data)


def _text(path: Path, data: bytes) -> tuple[str | None, Problem]:
    name = _name(path)
    if not data.strip():
        return None, f"{name} is empty (torn write)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{name} is not UTF-8 text (binary damage at byte {exc.start})"
    if "\x00" in text:
        return None, f"{name} holds NUL bytes (binary damage)"
    return text, None


# ---------------------------------------------------------------- summary.json
def read_summary(folder: Path) -> tuple[dict[str, Any] | None, Problem]:
    """summary.json's keys that :class:`RunSummary` knows, each of its declared type.

    NaN and Infinity are not JSON; they are read as null, which is what rlab-train writes
    for them (so any float key may be null). Keys may be missing (older or hand-written
    summaries) except ``status``; a key present with the wrong type, or a non-object, makes
    the summary malformed.
    """
    path = folder / SUMMARY_FILE
    text, problem = _read_text(path)
    if text is None:
        return None, problem
    try:
        tree = json.loads(text, parse_constant=lambda _: None, parse_float=lambda t: float(t) if math.isfinite(float(t)) else None)
        json.dumps(tree, ensure_ascii=False).encode("utf-8")  # lone surrogates (\ud800) would break any output
    except (ValueError, RecursionError) as exc:
        return None, f"summary.json is torn or malformed JSON ({printable(exc, 80)})"
    if not isinstance(tree, dict):
        return None, f"summary.json holds {type(tree).__name__ if tree is not None else 'null'}, not an object"
    fields = {k: v for k, v in tree.items() if k in _HINTS}
    if "status" not in fields:
        return None, "summary.json has no status"
    for key, value in fields.items():
        if not _fits(value, _HINTS[key]):
            return None, f"summary.json is malformed: {key} is {_short(value)}, expected {_hint_name(_HINTS[key])}"
    return fields, None


_HINTS = typing.get_type_hints(RunSummary)
_AGENT_HINTS = typing.get_type_hints(AgentSummary)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a parsed JSON value has the type a :mod:`run_summary` field declares."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is AgentSummary:  # an entry of "agents": every field is required
        return (isinstance(value, dict) and set(_AGENT_HINTS) <= set(value)
                and all(_fits(value[k], h) for k, h in _AGENT_HINTS.items()))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):  # JSON true is not a number
        return hint is bool
    if hint is float:  # RunSummary.write writes NaN/inf as null, so null is a float too
        return value is None or isinstance(value, (int, float))
    if hint is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, hint) if isinstance(hint, type) else True  # a kind of hint not known here: accept


def _hint_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in args)
    if typing.get_origin(hint) is list:
        return f"a list of {_hint_name(args[0])}"
    return {type(None): "null", AgentSummary: "agent objects"}.get(hint, getattr(hint, "__name__", str(hint)))


# ---------------------------------------------------------------- .hydra/*.yaml
def read_yaml(path: Path, expect: type) -> tuple[Any, Problem]:
    """A Hydra file (``config.yaml``, ``hydra.yaml``: a mapping; ``overrides.yaml``: a list of strings)."""
    text, problem = _read_text(path)
    if text is None:
        return None, problem
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader if built: hydra.yaml is read for every run
    try:
        tree = yaml.load(text, Loader=loader)
        # Recursive anchors, dates, lone surrogates: what json cannot hold, grouping could not either.
        json.dumps(tree, ensure_ascii=False, default=str).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - yaml raises many kinds on damaged text; each is this run's problem
        return None, f"{_name(path)} is malformed YAML ({printable(type(exc).__name__)})"
    if not isinstance(tree, expect) or (expect is list and not all(isinstance(o, str) for o in tree)):
        what = "a list of strings" if expect is list else "a mapping"
        return None, f"{_name(path)} is malformed: {_short(tree)}, expected {what}"
    return tree, None


# ---------------------------------------------------------------- episodes.csv
def read_episodes(folder: Path) -> tuple[dict[str, np.ndarray] | None, Problem]:
    """episodes.csv's ``episode``, ``env_step``, ``return`` (and ``seed``) columns as float arrays.

    rlab-train ends every row with a newline and flushes after every update, so a file
    that does not end in one was cut mid-write: a problem, as the cut number may look whole.
    A row that is not finite numbers is damage too. Extra columns are ignored; a header
    without rows gives empty arrays, an empty file None (nothing was recorded).
    """
    path = folder / EPISODES_FILE
    data, problem = read_bytes(path, MAX_EPISODES_BYTES)
    if data is None:
        return None, problem
    if not data.strip():
        return None, None  # created, then killed before the header: nothing recorded
    if not data.endswith(b"\n"):
        return None, "episodes.csv: last line torn (cut mid-write)"
    text, problem = _text(path, data)
    if text is None:
        return None, problem
    try:
        import pandas as pd

        table = pd.read_csv(io.StringIO(text), index_col=False, low_memory=False)
    except Exception as exc:  # noqa: BLE001 - the parser's errors on torn text are many kinds
        return None, f"episodes.csv is malformed ({printable(str(exc).strip(), 80)})"
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in EPISODE_COLUMNS if c not in table.columns]
    if missing:
        return None, f"episodes.csv has no column(s) {', '.join(missing)}"
    return _numeric_columns(table)


def _numeric_columns(table: Any) -> tuple[dict[str, np.ndarray] | None, Problem]:
    import pandas as pd

    out = {}
    for col in (*EPISODE_COLUMNS, *(("seed",) if "seed" in table.columns else ())):
        if isinstance(table[col], pd.DataFrame):
            return None, f"episodes.csv has column {col} twice"
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if col == "seed":  # a seed is a whole number (the agent's id)
            bad |= ~bad & ((values != np.round(values)) | (np.abs(values) > 2**53))
        if bad.any():
            row = int(np.argmax(bad))
            # Line numbers as an editor shows them: the header is line 1.
            what = "an integer" if col == "seed" else "a finite number"
            return None, f"episodes.csv line {row + 2}: {col} is {_short(table[col].iloc[row])}, not {what}"
        out[col] = values
    return out, None


# ---------------------------------------------------------------- the folder
@dataclass
class FolderFiles:
    """What one run folder holds, as far as it could be read."""

    status: str  # summary.json's status; "unknown" without one; "unreadable" when it is damaged
    summary: dict[str, Any]  # {} when absent or damaged
    overrides: list[str] | None
    config: dict[str, Any] | None
    choices: dict[str, Any]  # hydra.yaml's hydra.runtime.choices
    table: dict[str, np.ndarray] | None  # episodes.csv's columns; None when absent or damaged
    problems: list[str]  # why the run cannot be used (missing or damaged files), in one line each
    identified: bool  # whether the file its group is taken from was read (see runs.group_runs)


def read_folder(folder: Path) -> FolderFiles:
    """Read every file of one run folder; each failure becomes one of ``problems``."""
    summary, s_problem = read_summary(folder)
    hydra = folder / ".hydra"
    overrides, o_problem = read_yaml(hydra / "overrides.yaml", list)
    config, c_problem = read_yaml(hydra / "config.yaml", dict)
    tree, h_problem = read_yaml(hydra / "hydra.yaml", dict)
    choices = tree
    for key in ("hydra", "runtime", "choices"):  # only names groups: absent is fine, another type is damage
        choices = choices.get(key) if isinstance(choices, dict) else None
    if choices is not None and not isinstance(choices, dict):
        h_problem = f".hydra/hydra.yaml is malformed: hydra.runtime.choices is {_short(choices)}"
    table, e_problem = read_episodes(folder)
    status = "unreadable" if s_problem else "unknown" if summary is None else summary["status"]
    problems = [s_problem or NO_SUMMARY] if summary is None else []
    problems += [p for p in (e_problem, o_problem, c_problem, h_problem) if p]
    if summary is not None and table is not None and not problems and status == "finished":
        problems += _count_mismatch(summary, table)
    if problems and summary is not None and status != "finished":
        problems.insert(0, f"status `{status}`")  # a failed run that is also damaged: say both
    # The group is taken from overrides.yaml, else config.yaml, else summary.json: when that
    # file is damaged (or there is none) the run's experiment is unknown and it joins no group.
    if os.path.lexists(hydra / "overrides.yaml"):
        identified = o_problem is None
    elif os.path.lexists(hydra / "config.yaml"):
        identified = c_problem is None
    else:
        identified = summary is not None
    return FolderFiles(status, summary or {}, overrides, config, choices if isinstance(choices, dict) else {}, table,
                       problems, identified)


def _count_mismatch(summary: dict[str, Any], table: dict[str, np.ndarray]) -> list[str]:
    """A finished run's summary.json counts every row of episodes.csv: fewer rows means lost rows."""
    expected, rows = summary.get("episodes"), table["episode"].size
    if expected is not None and rows and rows != expected:
        return [f"episodes.csv has {rows} episodes, summary.json says {int(expected)} (truncated?)"]
    return []


__all__ = ["EPISODES_FILE", "FolderFiles", "NO_EPISODES", "NO_SUMMARY", "printable", "read_bytes", "read_episodes",
           "read_folder", "read_summary", "read_yaml"]
