"""What SLURM says about a sweep's jobs: their ids, their states, and why one did not finish.

:func:`slurm_ids` and :func:`query_states` serve ``rlab-report --status``
(:mod:`reinforce_lab.sweep_status`); the rest the launcher.

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

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .run_folder import printable
from .run_summary import RunSummary, read_summary

SCHEDULER_TIMEOUT_S = 4  # for rlab-report --status: squeue/sacct answer in well under a second
SACCT_TIMEOUT_S = 10  # sacct answers in well under a second; a controller that is down hangs ~9 s
SETTLE_S = 20  # sacct may say RUNNING for a few seconds after a job ended: wait this long for a final state
UNSETTLED = ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "UNKNOWN")

# ``man sbatch`` (--signal): "the signal may be sent up to 60 seconds earlier than specified".
SIGNAL_EARLY_S = 60
START_UP_S = 30  # from the job's start to submitit's SIGUSR2 handler, on a loaded 2-core node


def early_signal_warning(timeout_min: float | None, signal_delay_s: float | None) -> str | None:
    """A one-line warning when SLURM's time-limit signal may reach a job before it can handle it.

    SLURM sends ``--signal=USR2@signal_delay_s`` up to 60 s early. If that can fall within a
    job's start-up (before submitit installs its handler), SIGUSR2's default action kills the
    job instead of requeueing it. None when the settings leave room.
    """
    if not timeout_min or signal_delay_s is None:
        return None
    earliest = 60 * float(timeout_min) - float(signal_delay_s) - SIGNAL_EARLY_S
    if earliest >= START_UP_S:
        return None
    most = int(60 * float(timeout_min) - SIGNAL_EARLY_S - START_UP_S)
    return (f"hydra.launcher.signal_delay_s={signal_delay_s} with timeout_min={timeout_min}: SLURM may send "
            f"SIGUSR2 up to {SIGNAL_EARLY_S} s early, {max(earliest, 0):.0f} s after a job starts, before it can "
            f"handle it, which kills it instead of requeueing it; use signal_delay_s <= {max(most, 0)} "
            "or a longer timeout_min")


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


def wait(job: Any, poll_s: float = 2.0, grace_s: float = 30.0) -> bool:
    """Wait until a submitit job is done (True), or has vanished for ``grace_s`` seconds (False)."""
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


# ---------------------------------------------------------------- a sweep's jobs at a glance
def slurm_ids(sweep: Path, batches: list[list[list[str]]] | None, started: dict[int, str]) -> dict[int, str]:
    """``{job num: SLURM job id}`` from submitit's ``.submitit/<id>/`` folders.

    hydra-submitit-launcher submits each batch with ``executor.map_array``: task ``i`` of the k-th
    array is job ``i`` + the jobs of earlier batches (a batch of one is a plain job). A started
    job's ``hydra.job.id`` (its submitit id; ``started``: ``{job num: id}``) is taken instead.
    """
    arrays: dict[int, set[int]] = {}
    try:
        # A job's folder holds its pickle; an array's own folder (``.submitit/<array id>/``) only its sbatch script.
        names = [p.name for p in (sweep / ".submitit").iterdir() if os.path.lexists(p / f"{p.name}_submitted.pkl")]
    except OSError:
        names = []
    for name in names:
        m = re.fullmatch(r"(\d+)(?:_(\d+))?", name)
        if m:
            arrays.setdefault(int(m[1]), set()).add(int(m[2]) if m[2] else -1)
    sizes = [len(b) for b in batches] if batches else []
    out, offset = {}, 0
    for k, (array, tasks) in enumerate(sorted(arrays.items())):
        for task in tasks:
            out[offset + max(task, 0)] = str(array) if task < 0 else f"{array}_{task}"
        offset += sizes[k] if k < len(sizes) else max(tasks) + 1
    for num, job_id in started.items():  # the basic launcher's ids ("0", "1") are not in .submitit/
        if out and job_id in names:
            out[num] = job_id
    return out


def query_states(ids: set[str]) -> tuple[dict[str, tuple[str, str]], str]:
    """``({job id: (state, pending reason)}, note)`` from squeue (live jobs) and sacct (ended ones), run at once.

    Both are waited for ``SCHEDULER_TIMEOUT_S`` in all; no answer leaves the jobs to their folders.
    """
    arrays = ",".join(sorted({i.split("_")[0] for i in ids}))
    commands = {"squeue": ["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", arrays],
                "sacct": ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", arrays]}
    procs, notes = {}, []
    for name, argv in commands.items():
        if ids and shutil.which(name):
            try:
                procs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                               errors="replace", start_new_session=True)
            except OSError as exc:
                notes.append(f"{name}: {printable(exc, 60)}")
    if not procs:
        return {}, "folders only (" + ("no squeue/sacct here" if ids else "no .submitit/ jobs") + ")"
    deadline, outputs = time.monotonic() + SCHEDULER_TIMEOUT_S, {}
    for name, proc in procs.items():
        try:
            outputs[name] = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its whole group: a wrapper's child would hold the pipe open
            proc.communicate()
            notes.append(f"{name} gave no answer in {SCHEDULER_TIMEOUT_S} s")
    states: dict[str, tuple[str, str]] = {}
    for name in ("sacct", "squeue"):  # squeue's live view wins over accounting's
        for line in outputs.get(name, "").splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) >= 2 and cells[1]:
                reason = cells[2] if len(cells) > 2 and cells[2] not in ("None", "(null)") else ""
                for job_id in _expand(cells[0]):
                    states[job_id] = (cells[1].split()[0], reason)  # "CANCELLED by 1000" → CANCELLED
    if "sacct" in outputs and procs["sacct"].returncode == 0:  # accounting lists every job it ever started
        # ... but not an array task cancelled while pending (it never got a record of its own).
        states.update({i: ("no record", "") for i in ids if i not in states})
    return states, "scheduler: SLURM (" + ", ".join([*procs, *notes]) + ")"


def _expand(job_id: str) -> list[str]:
    """``123_[0-2,5%4]`` (pending array tasks) → ``123_0 … 123_2, 123_5``; other ids as they are."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m[2].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (high or low).isdigit():
            out += [f"{m[1]}_{i}" for i in range(int(low), int(high or low) + 1)]
    return out
