"""What the benchmark measurements share: paths, running and timing a command, medians and
ratios, number formatting, Markdown tables, and the :class:`Measurement` record that each
``measure_*.py`` file exports for the driver (``run.py``) and the reporter (``report.py``).

Standard library only, so that ``report.py`` can rewrite ``results.md`` without torch.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# The executables next to the Python running the benchmark (.venv/bin): rlab-train of the same install.
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- the measurement record
def keep_new(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The default way a new result of a part replaces the one of an earlier results.json."""
    return new


@dataclass(frozen=True)
class Measurement:
    """One part (a)-(e) of the benchmark, as the driver and the reporter see it."""

    part: str  # its letter: the key of its results in results.json["parts"]
    add_arguments: Callable[[argparse.ArgumentParser], None]  # its own command-line flags
    settings: Callable[[argparse.Namespace], argparse.Namespace]  # its sizes, from the flags (--quick included)
    measure: Callable[[argparse.Namespace, Path], dict[str, Any]]  # runs it, run folders under the Path
    summary_rows: Callable[[dict[str, Any]], list[list[str]]]  # its rows of results.md's summary
    section: Callable[[dict[str, Any], dict[str, Any]], list[str]]  # its section (its part, all results)
    merge_earlier: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = keep_new


def add_no_wandb(parser: argparse.ArgumentParser) -> None:
    """The flag shared by (a) and (e); the parser resolves the second definition onto the first."""
    parser.add_argument("--no-wandb", action="store_true", help="skip the W&B offline runs in (a) and (e)")


# --------------------------------------------------------------------------- running commands
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shown(cmd: list[str]) -> str:
    """The command as a user would type it from the repository root."""
    out = []
    for part in cmd:
        p = Path(part)
        if p.is_absolute() and p.exists():
            try:
                part = str(p.relative_to(ROOT))
            except ValueError:
                pass
        out.append(part)
    return shlex.join(out)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HYDRA_FULL_ERROR="1",
               PYTHONDONTWRITEBYTECODE="1", TQDM_DISABLE="1")
    env.pop("WANDB_API_KEY", None)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (it leads its own session)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.5)  # then make sure worker processes (joblib/loky) went too
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_cmd(cmd: list[str], timeout: float | None = None, monitor: Callable[[float], str | None] | None = None,
            poll_s: float = 2.0) -> dict[str, Any]:
    """Run ``cmd`` from the repository root; wall time of the whole process.

    ``monitor(elapsed)`` may return a reason string to stop the command early.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=out, stderr=err, start_new_session=True)
        status, reason = "finished", None
        while True:
            try:
                proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.perf_counter() - start
                if timeout is not None and elapsed >= timeout:
                    status, reason = "timed out", f"killed after the {timeout:.0f} s timeout"
                elif monitor is not None:
                    reason = monitor(elapsed)
                    status = "stopped early" if reason else status
                if reason:
                    _kill_group(proc)
                    break
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if status == "finished" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    return {"cmd": shown(cmd), "wall_s": wall, "rc": proc.returncode, "status": status, "reason": reason,
            "stdout": stdout, "stderr_tail": stderr[-2000:]}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _first_field(path: str, prefix: str) -> str | None:
    """The value of the first ``prefix: value`` line of a /proc file, if there is one."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:  # read-only git queries
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """Where and on what the benchmark ran: CPU, cores, memory, versions, commit, load."""
    cpu = _first_field("/proc/cpuinfo", "model name")
    mem_kib = _first_field("/proc/meminfo", "MemTotal")
    versions = {}
    for dist in ("torch", "gymnasium", "pytorch-lightning", "hydra-core", "omegaconf", "wandb", "numpy",
                 "hydra-joblib-launcher", "joblib"):
        try:
            versions[dist] = _md.version(dist)
        except _md.PackageNotFoundError:
            versions[dist] = None
    commit, status = _git("rev-parse", "HEAD"), _git("status", "--porcelain", "--untracked-files=no")
    return {"cpu_model": platform.processor() if cpu is None else cpu, "cores": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory": None if mem_kib is None else f"{int(mem_kib.split()[0]) / 2**20:.1f} GiB",
            "os": platform.platform(), "python": platform.python_version(),
            "python_executable": shown([sys.executable]), "versions": versions,
            "git_commit": commit, "git_dirty": bool(status), "date": now_iso(),
            "load_avg_start": list(os.getloadavg())}


# --------------------------------------------------------------------------- numbers
def med(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def fmt(x: float | None, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}{unit}"
    if abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def fx(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}×"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table, one string per line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines
