"""``rlab-report --status SWEEP_DIR``: where each job of a running sweep stands, for a person at a terminal.

One line per job: finished, failed (why), interrupted (resumable), running (env steps so far),
pending (no folder yet), or stalled? (guessed only when no scheduler answers). The jobs to come
are ``multirun.yaml``'s task overrides expanded by Hydra's own ``BasicSweeper`` (other sweepers:
job folders only). With the submitit launcher, ``.submitit/<id>/`` names each job's SLURM id and
``squeue``/``sacct`` give its state. Only reads: :mod:`reinforce_lab.run_folder`'s readers,
which never raise, and only the ends of ``episodes.csv`` (a long run's file is hundreds of MB).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from .run_folder import EPISODES_FILE, printable, read_summary, read_yaml
from .slurm_jobs import query_states, slurm_ids

STALL_S = 600  # no write for 10 min: an update of CartPole-size envs takes seconds, so likely killed
TAIL_BYTES = 64 << 10  # enough rows to see every agent of a train.num_seeds job
# SLURM states of a job that still holds or waits for resources (man squeue, JOB STATE CODES).
LIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
        "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "STOPPED"}
COUNTED = {"finished": "finished", "running": "running", "stalled?": "running", "pending": "pending"}
HEADINGS = ("job", "state", "env_steps", "final_return/reason", "overrides")


class StatusError(Exception):
    """A PATH that is not a sweep folder (``rlab-report`` exits 2)."""


@dataclass
class Job:
    """One job of a sweep, as far as its folder and the scheduler tell."""

    num: int
    overrides: list[str] = field(default_factory=list)
    folder: Path | None = None
    slurm_id: str | None = None
    slurm: tuple[str, str] | None = None  # (state, pending reason) from squeue/sacct
    state: str = "pending"
    env_steps: int | None = None
    detail: str = ""


# ---------------------------------------------------------------- what the sweep holds
def planned_jobs(sweep: Path) -> tuple[list[list[list[str]]] | None, str]:
    """The sweep's batches of job overrides as Hydra's BasicSweeper expands them; None and why when unknown."""
    tree, problem = read_yaml(sweep / "multirun.yaml", dict)
    if tree is None:
        return None, problem or "no multirun.yaml"
    hydra = tree.get("hydra") if isinstance(tree.get("hydra"), dict) else {}
    sweeper = hydra.get("sweeper") if isinstance(hydra.get("sweeper"), dict) else {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None, f"{str(sweeper.get('_target_', '?')).rsplit('.', 1)[-1]} picks its jobs as it goes"
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.utils import filter_overrides

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]  # as BasicSweeper._parse_config
        parsed = OverridesParser.create().parse_overrides(params + list(hydra["overrides"]["task"]))
        batches = BasicSweeper.split_arguments(parsed, sweeper.get("max_batch_size"))
        return [[filter_overrides(job) for job in batch] for batch in batches], ""
    except Exception as exc:  # noqa: BLE001 - a glob() sweep needs the config tree; any failure: folders only
        return None, f"cannot expand the sweep's overrides ({printable(type(exc).__name__)})"


def job_folders(sweep: Path) -> dict[int, Path]:
    """``{hydra.job.num: folder}``: subfolders holding ``.hydra/`` (named by the number, or read from hydra.yaml)."""
    out: dict[int, Path] = {}
    try:
        children = sorted(sweep.iterdir())
    except OSError:
        return out
    for child in children:
        if not (child / ".hydra").is_dir() or child.name.startswith("."):
            continue
        num = int(child.name) if child.name.isdigit() else _hydra_job(child).get("num")
        if isinstance(num, int) and num not in out:
            out[num] = child
    return out


def _hydra_job(folder: Path) -> dict[str, Any]:
    tree, _ = read_yaml(folder / ".hydra" / "hydra.yaml", dict)
    job = (tree or {}).get("hydra", {}).get("job") if isinstance((tree or {}).get("hydra"), dict) else None
    return job if isinstance(job, dict) else {}


# ---------------------------------------------------------------- one job
def classify(job: Job, sweep: Path, now: float) -> None:
    """Set ``job.state``, ``env_steps`` and ``detail`` from its folder and, if known, its SLURM state."""
    slurm_state = job.slurm[0] if job.slurm else ""
    live = slurm_state in LIVE
    summary, problem = read_summary(job.folder) if job.folder else (None, None)
    resume = f"resume: rlab-train resume={printable(job.folder)}"
    # An interrupted job that SLURM holds again was requeued (preemption, time limit): this is its next attempt.
    if summary is not None and not (live and summary["status"] == "interrupted"):
        job.state, job.env_steps = summary["status"], summary.get("env_steps")
        if job.state == "finished":
            ret = summary.get("final_return")
            job.detail = f"{'n/a' if ret is None else f'{ret:.2f}'} ({summary.get('episodes', '?')} episodes)"
        else:
            why = summary.get("error") or summary.get("stop_reason") or job.state
            job.detail = printable(why, 120) + (f"; {resume}" if job.state == "interrupted" else "")
    elif problem:
        job.state, job.detail = "damaged", problem
    elif job.folder is None:
        job.state = "pending" if not slurm_state or slurm_state in ("PENDING", "REQUEUED") else \
            "running" if live else "killed"
        job.detail = "no folder yet" if live or not slurm_state else _stderr_tail(sweep, job.slurm_id)
    else:
        job.env_steps, last = episodes_progress(job.folder)
        wrote = max([last or 0.0] + [_mtime(job.folder / n) for n in ("", "train.log", "checkpoints/last.ckpt")])
        age = f"last episode {_ago(now - last)} ago" if last else f"no episode yet (folder {_ago(now - wrote)} old)"
        if live:  # the scheduler knows: a folder without summary may be a requeued job waiting again
            job.state, job.detail = ("running" if slurm_state == "RUNNING" else "pending"), age
            if summary is not None:
                job.detail += f"; earlier attempt {summary['status']}"
        elif slurm_state:
            job.state, job.detail = "killed", f"no summary.json; {_stderr_tail(sweep, job.slurm_id)}; {resume}"
        elif now - wrote > STALL_S:
            job.state, job.detail = "stalled?", f"nothing written for {_ago(now - wrote)} (killed?); {resume}"
        else:
            job.state, job.detail = "running", age


def episodes_progress(folder: Path) -> tuple[int | None, float | None]:
    """``(env steps so far, mtime of episodes.csv)`` from its header and complete rows of its last ``TAIL_BYTES``.

    With ``train.num_seeds > 1`` each row's ``env_step`` counts its agent's (``seed``) own steps: the sum of
    each agent's last value is the job's (agents without a row in the tail are missed).
    """
    path = folder / EPISODES_FILE
    head, tail, size, mtime = _ends(path, TAIL_BYTES)
    if mtime is None:
        return None, None
    header = head.split(b"\n")[0].decode("utf-8", "replace").strip().split(",")
    lines = tail.split(b"\n")[:-1]  # the piece after the last newline is torn
    if "env_step" not in header:
        return None, mtime
    step, seed = header.index("env_step"), header.index("seed") if "seed" in header else None
    last: dict[str, float] = {}
    for line in lines[1:] if size > TAIL_BYTES else lines:  # the first piece of a tail is cut
        cells = line.decode("utf-8", "replace").strip().split(",")
        try:
            if len(cells) == len(header):
                key = cells[seed] if seed is not None else ""
                last[key] = max(last.get(key, 0.0), float(cells[step]))
        except ValueError:
            continue  # the header, or a damaged row
    return (int(sum(last.values())) if last else None), mtime


def _stderr_tail(sweep: Path, slurm_id: str | None) -> str:
    """The job's last line on stderr (slurmstepd's "CANCELLED … DUE TO TIME LIMIT", a traceback's end)."""
    tail = _ends(sweep / ".submitit" / str(slurm_id) / f"{slurm_id}_0_log.err", 4096)[1] if slurm_id else b""
    lines = [ln for ln in tail.decode("utf-8", "replace").splitlines() if ln.strip()]
    return f"stderr: {printable(lines[-1].strip(), 100)}" if lines else "no stderr"


def _ends(path: Path, n: int) -> tuple[bytes, bytes, int, float | None]:
    """``(first 4 KiB, last n bytes, size, mtime)`` of a regular file (a FIFO would block); else empty, None."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return b"", b"", 0, None
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, info.st_size - n))
            return head, f.read(n), info.st_size, info.st_mtime
    except OSError:
        return b"", b"", 0, None


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h{s % 3600 // 60:02d}m"


# ---------------------------------------------------------------- the sweep
def sweep_status(sweep: Path, now: float | None = None) -> tuple[list[Job], list[str]]:
    """Every job of ``sweep`` (planned or with a folder), classified; and notes for the header."""
    now = time.time() if now is None else now
    batches, why = planned_jobs(sweep)
    folders = job_folders(sweep)
    jobs = {n: Job(n, o) for n, o in enumerate(o for batch in batches or [] for o in batch)}
    for num, folder in folders.items():
        job = jobs.setdefault(num, Job(num))
        job.folder = folder
        if not job.overrides:
            job.overrides = read_yaml(folder / ".hydra" / "overrides.yaml", list)[0] or []
    ids = slurm_ids(sweep, batches, {num: str(_hydra_job(f).get("id", "")) for num, f in folders.items()})
    states, note = query_states(set(ids.values()))
    for num, slurm_id in ids.items():
        job = jobs.setdefault(num, Job(num))
        job.slurm_id, job.slurm = slurm_id, states.get(slurm_id)
    for job in jobs.values():
        classify(job, sweep, now)
    notes = [note] + ([] if batches else [f"jobs without a folder are not known ({why})"])
    if not states:  # nobody to ask whether a silent job still runs: say what the guess means
        notes.append(f"stalled? = no summary.json, nothing written for {STALL_S // 60} min")
    return [jobs[n] for n in sorted(jobs)], notes


def format_status(sweep: Path, jobs: list[Job], notes: list[str]) -> str:
    """A header line (counts), then one aligned line per job; overrides shown are those that differ between jobs."""
    counts = {k: 0 for k in ("finished", "running", "pending", "failed/interrupted")}
    for job in jobs:
        counts[COUNTED.get(job.state, "failed/interrupted")] += 1
    head = f"{printable(sweep)}: {len(jobs)} jobs: " + ", ".join(f"{n} {k}" for k, n in counts.items())
    varying = {o for o in {x for j in jobs for x in j.overrides} if not all(o in j.overrides for j in jobs)}
    rows = [HEADINGS]
    for j in jobs:
        state = j.state + (f" (SLURM: {', '.join(x for x in j.slurm if x)})" if j.slurm else "")
        shown = [o for o in j.overrides if o in varying or len(jobs) == 1]
        rows.append((str(j.num), state, "?" if j.env_steps is None else f"{j.env_steps:,}", j.detail,
                     printable(" ".join(shown), 120)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    return "\n".join([head, "  " + "; ".join(notes), *(ln.rstrip() for ln in lines)])


def find_sweeps(paths: Sequence[str | Path]) -> list[Path]:
    """Each PATH as a sweep folder, or the sweep folders directly inside it (``multirun/2026-11-21``)."""
    sweeps = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise StatusError(f"{printable(p)} is not a folder")
        if (p / "multirun.yaml").exists() or job_folders(p):
            sweeps.append(p)
            continue
        try:
            inner = sorted(c for c in p.iterdir() if (c / "multirun.yaml").exists())
        except OSError as exc:
            raise StatusError(f"{printable(p)}: {printable(exc.strerror)}") from None
        if not inner:
            raise StatusError(f"{printable(p)} is not a sweep folder (no multirun.yaml, no job folders)")
        sweeps += inner
    return sweeps


def show_status(paths: Sequence[str | Path], watch: float | None = None, out: TextIO | None = None) -> int:
    """Print the status of each sweep; with ``watch``, again every ``watch`` s until no job runs or waits.

    Returns the exit status: 0 (also on Ctrl-C while watching). Raises :class:`StatusError` on a bad PATH.
    """
    out = out or sys.stdout
    sweeps = find_sweeps(paths)
    try:
        while True:
            texts, active = [], False
            for sweep in sweeps:
                jobs, notes = sweep_status(sweep)
                texts.append(format_status(sweep, jobs, notes))
                active |= any(j.state in ("running", "pending") for j in jobs)
            if watch and out.isatty():
                out.write("\033[H\033[2J")  # clear the screen: the table redraws in place
            out.write("\n\n".join(texts) + "\n")
            out.flush()
            if not watch or not active:
                return 0
            time.sleep(watch)
    except KeyboardInterrupt:
        return 0


__all__ = ["Job", "STALL_S", "StatusError", "classify", "episodes_progress", "find_sweeps", "format_status",
           "planned_jobs", "query_states", "show_status", "slurm_ids", "sweep_status"]
