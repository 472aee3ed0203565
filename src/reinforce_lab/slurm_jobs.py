"""What SLURM says about a sweep job that did not finish, in words, and where that is recorded.

The submitit launcher (``hydra/launcher=submitit_slurm``,
:mod:`hydra_plugins.rlab_launchers.rlab_submitit`) asks here, for every job whose folder does
not hold a finished ``summary.json`` when the sweep ends, why: ``sacct``'s state and exit
code become a reason such as ``cancelled (scancel)``, ``killed by SIGKILL``, ``out of
memory`` or ``time limit``, written into the job's ``summary.json`` (a new one with
``status: failed`` for a job killed before it could write its own; the ``error`` of an
interrupted one, which can still be resumed). The sweep summary then prints one line per job
with that reason.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from .run_summary import RunSummary, read_summary

SACCT_TIMEOUT_S = 10  # sacct answers in well under a second; a controller that is down hangs ~9 s
SETTLE_S = 20  # sacct may say RUNNING for a few seconds after a job ended: wait this long for a final state
UNSETTLED = ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "UNKNOWN")

# sacct states (``man sacct``, JOB STATE CODES) → what a person reads in the sweep summary.
STATE_WORDS = {
    "CANCELLED": "cancelled (scancel)", "OUT_OF_MEMORY": "out of memory (killed by SLURM)",
    "TIMEOUT": "time limit reached", "NODE_FAIL": "node failure", "PREEMPTED": "preempted",
    "BOOT_FAIL": "node failed to boot", "DEADLINE": "deadline reached", "REVOKED": "revoked",
    "FAILED": "failed", "COMPLETED": "completed",
}


def job_state(job_id: str) -> tuple[str, str]:
    """``(state, exit code)`` of a SLURM job from ``sacct`` (``("UNKNOWN", "")`` when it cannot tell).

    The exit code is the job's ``code:signal``, except that a step killed by a signal (the
    job's Python process, e.g. by the OOM killer) gives that step's ``0:signal``: for such a
    job SLURM's job line only says ``FAILED`` with srun's exit code.
    """
    if shutil.which("sacct") is None:
        return "UNKNOWN", ""
    try:
        out = subprocess.run(["sacct", "-n", "-P", "-j", str(job_id), "-o", "JobID,State,ExitCode"],
                             capture_output=True, text=True, timeout=SACCT_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        return "UNKNOWN", ""
    rows = [line.split("|") for line in out.splitlines() if line.count("|") >= 2]
    jobs = [r for r in rows if "." not in r[0]]
    if not jobs:
        return "UNKNOWN", ""
    state, code = jobs[-1][1].strip(), jobs[-1][2].strip()
    signalled = [r[2] for r in rows if "." in r[0] and not r[0].endswith((".batch", ".extern"))
                 and r[2].startswith("0:") and r[2] != "0:0"]
    return state, (signalled[-1] if state.startswith("FAILED") and signalled else code)


def final_state(job_id: str, settle_s: float = SETTLE_S) -> tuple[str, str]:
    """:func:`job_state` once it is final (or whatever it is after ``settle_s`` seconds)."""
    import time

    deadline = time.monotonic() + settle_s
    state, code = job_state(job_id)
    while state.split()[0] in UNSETTLED and time.monotonic() < deadline and shutil.which("sacct"):
        time.sleep(1.0)
        state, code = job_state(job_id)
    return state, code


def reason(job_id: str, state: str, exit_code: str) -> str:
    """One line: the job, what happened in words, and SLURM's own state and exit code."""
    word = STATE_WORDS.get(state.split()[0] if state else "", state.lower() or "unknown")
    code, _, sig = exit_code.partition(":")
    if word == "failed" and sig and sig != "0":
        try:
            word = f"killed by {signal.Signals(int(sig)).name}"
            word += " (as the out-of-memory killer does)" if int(sig) == signal.SIGKILL else ""
        except ValueError:
            pass
    elif word == "failed" and code and code != "0":
        word = f"failed with exit code {code}"
    return f"SLURM job {job_id}: {word} (state {state or 'unknown'}, exit code {exit_code or 'unknown'})"


def vanished(job_id: str) -> bool:
    """Whether SLURM has no trace of the job: not queued, no accounting record.

    That is what a task of an array cancelled while still pending leaves; submitit would wait
    for its result forever.
    """
    if shutil.which("squeue") is None:
        return False
    try:
        queued = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%i"], capture_output=True, text=True,
                                timeout=SACCT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return False  # the controller did not answer: nothing is known
    if queued.stdout.strip() or (queued.returncode != 0 and "Invalid job id" not in queued.stderr):
        return False
    return job_state(job_id)[0] == "UNKNOWN"


def wait(job: Any, poll_s: float = 5.0, grace_s: float = 30.0) -> bool:
    """Wait until a submitit job is done (True), or has vanished for ``grace_s`` seconds (False)."""
    import time

    gone_since = None
    while not job.done():
        if vanished(str(job.job_id)):
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > grace_s:
                return False
        else:
            gone_since = None
        time.sleep(poll_s)
    return True


def record_outcome(run_dir: Path, job_id: str, seed: int | None = None) -> str | None:
    """Write why job ``job_id`` did not finish into ``run_dir/summary.json``; returns the reason (None if it finished)."""
    try:
        summary = read_summary(run_dir)
    except (OSError, ValueError):
        summary = None
    if summary is not None and summary.status in ("finished", "failed"):
        return None  # the job ended by itself: its own summary says why (a bad config, a NaN…)
    state, exit_code = final_state(job_id)
    why = reason(job_id, state, exit_code) if state != "UNKNOWN" else \
        f"SLURM job {job_id}: cancelled before it started (no record left in squeue or sacct)"
    if summary is None:  # killed before it could write its own
        summary = RunSummary.failed(run_dir, why, seed)
    else:  # interrupted (it saved a checkpoint; `rlab-train resume=` continues it) or failed
        summary.error = f"{why}; {summary.error}" if summary.error and why not in summary.error else why
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    summary.write(run_dir)
    return why
