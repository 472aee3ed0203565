"""SLURM faults, on the local cluster: preemption and time limits resume (never restart), a finished
job is never rerun, and cancelled or killed jobs are reported with SLURM's reason.

docs/cluster.md ("Preemption, time limits and killed jobs") and docs/reliability.md point here.
The time-limit test waits for SLURM's own signal and is marked ``slow`` as well (about 3
minutes); ``.ci/run`` runs it with the other ``slurm`` tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, SlurmCluster

pytestmark = pytest.mark.slurm

SLURM = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=1"]
# Long enough to be stopped mid-run on any machine (~10–40 s of training), deterministic per seed.
LONG = ["train.max_env_steps=150000", "train.target_return=null", "train.progress=false", "seed=4"]


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def leave_the_cluster_free(slurm_cluster, tmp_path):
    """After each test, even a failed one: no sweep process and no job of it left behind."""
    yield
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
    STARTED.clear()
    slurm_cluster.cancel_under(tmp_path)


def start_sweep(tmp_path: Path, *overrides: str) -> tuple[Path, subprocess.Popen]:
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([str(BIN / "rlab-train"), "-m", *SLURM, *overrides, f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "WANDB_MODE": "offline"})
    STARTED.append(proc)
    return sweep, proc


def wait_for_rows(job: Path, rows: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Until the job has written ``rows`` episodes (it is training, signal handlers installed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = job / "episodes.csv"
        if f.is_file() and f.read_text().count("\n") > rows:
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{job} wrote no {rows} episodes in {timeout} s")


def array_task(sweep: Path, job: int) -> str:
    """SLURM's id of Hydra job ``job``: submitit's folder ``.submitit/<array>_<task>``, or ``<id>`` for a one-job sweep."""
    names = [p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(rf"\d+_{job}", p.name)]
    names = names or [p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+", p.name)]
    assert len(names) == 1, names
    return names[0]


def job_log(sweep: Path, task: str, kind: str = "out") -> str:
    """The job's stdout (``out``) or stderr (``err``) as submitit writes it: ``<task>_0_log.<kind>``."""
    return (sweep / ".submitit" / task / f"{task}_0_log.{kind}").read_text()


def hurry_requeued(task: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Make a requeued job eligible at once: SLURM holds it back ~2 minutes (BeginTime) after a requeue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        out = subprocess.run(["squeue", "-h", "-j", task, "-o", "%T %r"], capture_output=True, text=True, timeout=10)
        if "PENDING" in out.stdout and "BeginTime" in out.stdout:
            subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], check=True, timeout=10)
            return
        time.sleep(1)


def finish(proc: subprocess.Popen, cluster: SlurmCluster, tmp_path: Path, timeout: float = 300) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        cluster.cancel_under(tmp_path)
        proc.kill()
        raise


def reference_rows(tmp_path: Path, *overrides: str) -> str:
    """``episodes.csv`` of the same job run straight through, on this machine."""
    out = subprocess.run([str(BIN / "rlab-train"), *overrides, "logger=none", "hydra.run.dir=ref"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return (tmp_path / "ref" / "episodes.csv").read_text()


def wandb_ids(job: Path) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (job / "wandb").glob("offline-run-*")}


def test_preempted_job_checkpoints_is_requeued_and_resumes_in_its_folder_and_wandb_run(slurm_cluster, tmp_path):
    sweep, proc = start_sweep(tmp_path, *LONG, "hydra.launcher.timeout_min=30", "logger=wandb")
    wait_for_rows(sweep / "0", 100, proc)
    task = array_task(sweep, 0)
    # A job on the high partition that needs every CPU of the node preempts it (PreemptMode=REQUEUE).
    cpus = subprocess.run(["sinfo", "-h", "-p", "high", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    subprocess.run(["sbatch", "-p", slurm_cluster.high, "-c", cpus, "--mem=200", "-t", "1", "-o", "/dev/null",
                    "--wrap", "sleep 2"], check=True, capture_output=True, timeout=30)
    hurry_requeued(task, proc)
    out, err = finish(proc, slurm_cluster, tmp_path)
    assert proc.returncode == 0, err[-3000:]
    assert "sweep done: 1 of 1 jobs finished" in out and "Traceback" not in err
    log = job_log(sweep, task)
    assert "Requeued job" in log and "holds this job's checkpoint: resuming it" in log, log[-3000:]
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["stop_reason"] == "max_env_steps reached"
    # Resumed, not restarted: byte for byte the run that was never preempted, in one W&B run.
    assert (sweep / "0" / "episodes.csv").read_text() == reference_rows(tmp_path, *LONG)
    assert len(wandb_ids(sweep / "0")) == 1, list((sweep / "0" / "wandb").iterdir())


def test_usr2_before_a_time_limit_resumes_and_a_finished_job_is_not_rerun(slurm_cluster, tmp_path):
    # What SLURM sends `signal_delay_s` before the time limit (submitit's --signal=USR2@…), sent by
    # hand so the test does not wait for the clock; with timeout_min <= 10 submitit counts it as a
    # time limit (one of max_num_timeout requeues). test_real_time_limit_resumes waits for SLURM's own.
    sweep, proc = start_sweep(tmp_path, *LONG, "hydra.launcher.timeout_min=5", "logger=none")
    wait_for_rows(sweep / "0", 100, proc)
    task = array_task(sweep, 0)
    subprocess.run(["scancel", "--signal=USR2", task], check=True, timeout=10)
    hurry_requeued(task, proc)
    out, err = finish(proc, slurm_cluster, tmp_path)
    assert proc.returncode == 0, err[-3000:]
    assert "signal_delay_s" not in err  # these settings leave room: no early-signal warning
    log = job_log(sweep, task)
    assert "this job is timed-out" in job_log(sweep, task, "err")
    assert "Requeued job" in log and "(2 remaining timeouts)" in log and "resuming it" in log, log[-3000:]
    rows = (sweep / "0" / "episodes.csv").read_text()
    assert rows == reference_rows(tmp_path, *LONG)
    # The job has finished: SLURM running it again (a requeue that comes too late) changes nothing.
    kept = {p.name: p.read_bytes() for p in (sweep / "0").rglob("*") if p.is_file() and p.suffix != ".log"
            and ".hydra" not in p.parts}
    subprocess.run(["scontrol", "requeue", task], check=True, timeout=10)
    hurry_requeued(task, proc=subprocess.Popen(["sleep", "60"]))
    deadline = time.monotonic() + 120
    while "not run again" not in job_log(sweep, task):
        assert time.monotonic() < deadline, "the requeued finished job did not run"
        time.sleep(1)
    assert {p.name: p.read_bytes() for p in (sweep / "0").rglob("*") if p.is_file() and p.suffix != ".log"
            and ".hydra" not in p.parts} == kept


def test_cancelled_and_killed_jobs_are_reported_with_slurms_reason(slurm_cluster, tmp_path):
    sweep, proc = start_sweep(tmp_path, "train.max_env_steps=2000000", "train.target_return=null",
                              "train.progress=false", "logger=wandb", "seed=0,1,2", "hydra.launcher.timeout_min=5",
                              "hydra.launcher.array_parallelism=2")
    for job in (0, 1):
        wait_for_rows(sweep / str(job), 20, proc)
    array = array_task(sweep, 0).split("_")[0]
    subprocess.run(["scancel", f"{array}_2"], check=True, timeout=10)  # still pending: it never starts
    subprocess.run(["scancel", array_task(sweep, 0)], check=True, timeout=10)
    # SIGKILL to the job's Python process, as the kernel's OOM killer does.
    show = subprocess.run(["scontrol", "show", "job", "-o", array_task(sweep, 1)], capture_output=True, text=True,
                          timeout=10).stdout
    job_id = re.search(r"JobId=(\d+)", show).group(1)  # listpids wants the task's own id, not <array>_<task>
    pids = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True,
                          timeout=10).stdout.split("\n")[1:]
    killed = [pid for pid, *_ in (line.split() for line in pids if line.strip())
              if b"submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert killed, pids
    for pid in killed:
        os.kill(int(pid), 9)
    out, err = finish(proc, slurm_cluster, tmp_path)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and "sweep done: 0 of 3 jobs finished" in err, err[-3000:]
    lines = {job: next(line for line in err.splitlines() if line.startswith(f"[rlab]   {sweep / job}: "))
             for job in ("0", "1", "2")}
    assert "cancelled before it started" in lines["2"] or "state CANCELLED" in lines["2"], lines
    assert "cancelled (scancel)" in lines["0"] and "state CANCELLED" in lines["0"], lines
    assert "killed by SIGKILL" in lines["1"], lines
    cancelled = json.loads((sweep / "0" / "summary.json").read_text())
    assert cancelled["status"] == "interrupted" and cancelled["stop_reason"] == "SIGTERM received"  # resumable
    assert json.loads((sweep / "1" / "summary.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_real_time_limit_resumes(slurm_cluster, tmp_path):
    # A 4-minute limit with SIGUSR2 150 s before it: SLURM signals "up to 60 seconds earlier than
    # specified" (man sbatch), so each segment gets it 30–90 s after it starts, never during
    # start-up (a 2-minute limit with 100 s could signal at once and kill the job: CI saw it).
    # The budget needs more than one segment on any machine (about 2.5 minutes of training
    # here); up to 10 requeues leave room on a slow one. That a resumed run is byte-identical
    # is shown by the two tests above; here: SLURM's own signal.
    budget = 3_000_000
    sweep, proc = start_sweep(tmp_path, f"train.max_env_steps={budget}", "train.target_return=null",
                              "train.progress=false", "seed=5", "hydra.launcher.timeout_min=4",
                              "hydra.launcher.signal_delay_s=150", "hydra.launcher.max_num_timeout=10", "logger=none")
    wait_for_rows(sweep / "0", 10, proc)
    task = array_task(sweep, 0)
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        hurry_requeued(task, proc, timeout=5)
    out, err = finish(proc, slurm_cluster, tmp_path, timeout=60)
    assert proc.returncode == 0, err[-3000:]
    log = job_log(sweep, task)
    assert "this job is timed-out" in job_log(sweep, task, "err")
    assert "Requeued job" in log and "resuming it" in log, log[-3000:]
    rows = (sweep / "0" / "episodes.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, len(rows) + 1))  # nothing lost or repeated
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["env_steps"] >= budget
