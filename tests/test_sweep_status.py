"""``rlab-report --status SWEEP``: each job's state of a real (tiny) sweep whose folders are then altered.

One basic-launcher sweep of five jobs is run per module; each test copies it and turns jobs
into what a sweep in progress looks like: a job not started (folder deleted: pending), one
still running (summary.json removed), one failed, one interrupted. The scheduler is faked by
``squeue``/``sacct`` scripts on PATH that print fixed states for the ids in ``.submitit/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reinforce_lab import sweep_status
from reinforce_lab.sweep_status import Job, episodes_progress, planned_jobs, show_status, slurm_ids
from reinforce_lab.sweep_status import sweep_status as status_of

BIN = Path(sys.executable).parent
SEEDS = 5


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep = tmp_path_factory.mktemp("real") / "sweep"
    proc = subprocess.run([str(BIN / "rlab-train"), "-m", f"seed={','.join(map(str, range(SEEDS)))}",
                           "train.max_env_steps=200", "env.num_envs=2", "algo.episodes_per_update=2", "logger=none",
                           "train.progress=false", f"hydra.sweep.dir={sweep}"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sweep


def edit_summary(job: Path, **changes: object) -> None:
    summary = json.loads((job / "summary.json").read_text())
    (job / "summary.json").write_text(json.dumps({**summary, **changes}))


@pytest.fixture
def sweep(real_sweep: Path, tmp_path: Path) -> Path:
    """Jobs 0 finished, 1 running (no summary.json yet), 2 failed, 3 interrupted, 4 pending (no folder)."""
    sweep = tmp_path / "multirun" / "2026-12-01" / "10-00-00-abcd"
    shutil.copytree(real_sweep, sweep)
    (sweep / "1" / "summary.json").unlink()
    edit_summary(sweep / "2", status="failed", error="ValueError: boom in job 2")
    edit_summary(sweep / "3", status="interrupted", stop_reason="SIGTERM received")
    shutil.rmtree(sweep / "4")
    return sweep


def rlab_status(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run([str(BIN / "rlab-report"), "--status", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def tree(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*") if p.is_file()}


def job_lines(stdout: str) -> dict[int, str]:
    return {int(m[1]): m[0] for m in re.finditer(r"^(\d+)  .*$", stdout, re.M)}


def last_env_step(job: Path) -> int:
    return int((job / "episodes.csv").read_text().strip().splitlines()[-1].split(",")[1])


def test_states_and_numbers_of_a_sweep_in_progress(sweep: Path) -> None:
    before = tree(sweep.parent.parent.parent)
    proc = rlab_status(str(sweep))
    assert proc.returncode == 0, proc.stderr
    assert tree(sweep.parent.parent.parent) == before  # nothing written, nothing touched
    out = proc.stdout
    assert f"{sweep}: 5 jobs: 1 finished, 1 running, 1 pending, 2 failed/interrupted" in out
    lines = job_lines(out)
    finished = json.loads((sweep / "0" / "summary.json").read_text())
    assert re.search(rf"^0\s+finished\s+{finished['env_steps']}\s+{finished['final_return']:.2f} "
                     rf"\({finished['episodes']} episodes\)\s+seed=0$", lines[0])
    assert re.search(rf"^1\s+running\s+{last_env_step(sweep / '1')}\s+last episode \d+s ago\s+seed=1$", lines[1])
    assert re.search(r"^2\s+failed\s+\d+\s+ValueError: boom in job 2\s+seed=2$", lines[2])
    assert re.search(rf"^3\s+interrupted\s+\d+\s+SIGTERM received; resume: rlab-train resume={sweep / '3'}", lines[3])
    assert re.search(r"^4\s+pending\s+\?\s+no folder yet\s+seed=4$", lines[4])
    assert "train.max_env_steps" not in out  # overrides shared by every job are not repeated per line


def test_a_job_that_has_not_written_for_long_is_stalled(sweep: Path) -> None:
    old = time.time() - sweep_status.STALL_S - 60
    for p in [sweep / "1", *(sweep / "1").rglob("*")]:
        os.utime(p, (old, old))
    proc = rlab_status(str(sweep))
    assert re.search(r"^1\s+stalled\?\s+\d+\s+nothing written for 11m \(killed\?\); resume: rlab-train resume=",
                     job_lines(proc.stdout)[1])
    assert "1 running" in proc.stdout  # a stalled job is counted with the running ones: it may be slow


def test_planned_jobs_are_hydras_own_expansion(sweep: Path) -> None:
    batches, why = planned_jobs(sweep)
    assert why == "" and len(batches) == 1 and len(batches[0]) == SEEDS
    for num in range(SEEDS - 1):  # as each job recorded them in .hydra/overrides.yaml
        recorded = (sweep / str(num) / ".hydra" / "overrides.yaml").read_text().splitlines()
        assert [f"- {o}" for o in batches[0][num]] == recorded


def test_a_folder_holding_sweeps_and_bad_paths(sweep: Path, tmp_path: Path) -> None:
    proc = rlab_status(str(sweep.parent))  # multirun/<date>: every sweep in it
    assert proc.returncode == 0 and f"{sweep}: 5 jobs" in proc.stdout
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "nope", tmp_path / "file", tmp_path / "empty"):
        proc = rlab_status(str(bad))
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 1
    assert rlab_status("--watch", "0", str(sweep)).returncode == 2
    assert subprocess.run([str(BIN / "rlab-report"), "--watch", "5", str(sweep)], capture_output=True).returncode == 2


def test_episodes_progress_reads_the_tail_and_sums_agents(tmp_path: Path) -> None:
    rows = [f"{e},{100 * e + s},1.0,10,{s}\r\n" for e in range(1, 3000) for s in (0, 1, 2)]  # > TAIL_BYTES
    header = "episode,env_step,return,length,seed\r\n"
    (tmp_path / "episodes.csv").write_text(header + "".join(rows) + "3000,9", newline="")
    assert (tmp_path / "episodes.csv").stat().st_size > sweep_status.TAIL_BYTES
    steps, mtime = episodes_progress(tmp_path)  # the torn last row is not counted
    assert steps == (299900 + 0) + (299900 + 1) + (299900 + 2) and mtime is not None


def test_watch_prints_until_every_job_has_ended(sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    shutil.rmtree(sweep / "3")  # leave job 1 running and jobs 3, 4 pending; they "end" while we sleep
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        shutil.copytree(sweep / "0", sweep / str(len(sleeps) + 2))  # job 3, then job 4 finishes
        shutil.copy(sweep / "0" / "summary.json", sweep / "1" / "summary.json")

    monkeypatch.setattr(sweep_status.time, "sleep", sleep)
    assert show_status([sweep], watch=0.5) == 0
    out = capsys.readouterr().out
    assert sleeps == [0.5, 0.5] and "\033[2J" not in out  # not a TTY: no clearing
    assert out.count("5 jobs:") == 3 and out.rstrip().endswith("seed=4")
    assert "5 jobs: 4 finished, 0 running, 0 pending, 1 failed/interrupted" in out  # job 2 failed


# ---------------------------------------------------------------- the scheduler
def fake_slurm(tmp_path: Path, squeue: str, sacct: str, sleep: int = 0) -> str:
    """A PATH whose squeue/sacct print fixed lines (and record their arguments); other commands as usual."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("squeue", squeue), ("sacct", sacct)):
        (bin_dir / f"{name}.txt").write_text(text)
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "$@" > "{bin_dir}/{name}.args"\n'
                          f'sleep {sleep}\ncat "{bin_dir}/{name}.txt"\n')
        script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def submitit_folders(sweep: Path, array: int = 4242, jobs: int = SEEDS) -> None:
    for task in range(jobs):
        folder = sweep / ".submitit" / f"{array}_{task}"
        folder.mkdir(parents=True)
        (folder / f"{array}_{task}_submitted.pkl").write_bytes(b"\x80\x04N.")


def test_slurm_states_beside_the_folders(sweep: Path, tmp_path: Path) -> None:
    submitit_folders(sweep)
    (sweep / ".submitit" / "4242_2" / "4242_2_0_log.err").write_text("x\nslurmstepd: error: oom_kill event\n")
    path = fake_slurm(tmp_path, squeue="4242_1|RUNNING|None\n4242_3|PENDING|BeginTime\n4242_[4%64]|PENDING|Priority\n",
                      sacct="4242_0|COMPLETED\n4242_1|RUNNING\n4242_2|OUT_OF_MEMORY\n4242_3|PREEMPTED\n")
    proc = rlab_status(str(sweep), path=path)
    assert proc.returncode == 0, proc.stderr
    lines = job_lines(proc.stdout)
    assert re.search(r"^0\s+finished \(SLURM: COMPLETED\)\s+\d+", lines[0])
    assert re.search(r"^1\s+running \(SLURM: RUNNING\)\s+\d+\s+last episode", lines[1])
    assert re.search(r"^2\s+failed \(SLURM: OUT_OF_MEMORY\)\s+\d+\s+ValueError: boom", lines[2])
    # Requeued after preemption: waiting again, its summary.json is from the attempt before.
    assert re.search(r"^3\s+pending \(SLURM: PENDING, BeginTime\)\s+\d+\s+.*earlier attempt interrupted", lines[3])
    assert re.search(r"^4\s+pending \(SLURM: PENDING, Priority\)\s+\?\s+no folder yet", lines[4])
    assert "-j 4242" in (tmp_path / "fakebin" / "squeue.args").read_text()
    assert "scheduler: SLURM (squeue, sacct)" in proc.stdout


def test_a_job_slurm_killed_is_killed_with_its_stderr(sweep: Path, tmp_path: Path) -> None:
    submitit_folders(sweep)
    (sweep / ".submitit" / "4242_1" / "4242_1_0_log.err").write_text(
        "slurmstepd: error: *** JOB 4243 ON n1 CANCELLED AT 2026-12-01T10:00:00 DUE TO TIME LIMIT ***\n\n")
    # Job 2 wrote its failed summary.json and is still exiting: SLURM's live state does not hide it.
    path = fake_slurm(tmp_path, squeue="4242_2|COMPLETING|None\n", sacct="4242_1|TIMEOUT\n4242_4|CANCELLED by 1000\n")
    out = rlab_status(str(sweep), path=path).stdout
    lines = job_lines(out)
    assert re.search(r"^2\s+failed \(SLURM: COMPLETING\)\s+\d+\s+ValueError: boom", lines[2])
    # sacct answered but has no record of jobs 0 and 3 (e.g. array tasks cancelled while pending)
    assert re.search(r"^0\s+finished \(SLURM: no record\)", lines[0])
    assert re.search(r"^1\s+killed \(SLURM: TIMEOUT\)\s+\d+\s+no summary.json; stderr: slurmstepd: .*DUE TO TIME "
                     r"LIMIT \*\*\*; resume: rlab-train resume=", lines[1])
    assert re.search(r"^4\s+killed \(SLURM: CANCELLED\)\s+\?\s+no stderr", lines[4])
    assert "1 finished, 0 running, 0 pending, 4 failed/interrupted" in out


def test_a_scheduler_that_does_not_answer_costs_seconds_not_the_status(sweep: Path, tmp_path: Path) -> None:
    submitit_folders(sweep)
    path = fake_slurm(tmp_path, squeue="4242_4|PENDING|Priority\n", sacct="", sleep=30)
    start = time.monotonic()
    proc = rlab_status(str(sweep), path=path)
    assert time.monotonic() - start < 20 and proc.returncode == 0
    assert "squeue gave no answer in 4 s" in proc.stdout and "1 running, 1 pending" in proc.stdout


def test_array_tasks_map_to_job_numbers_batch_by_batch(tmp_path: Path) -> None:
    submitit_folders(tmp_path, array=10, jobs=2)  # first batch: jobs 0, 1
    submitit_folders(tmp_path, array=9000, jobs=3)  # second batch: jobs 2, 3, 4
    (tmp_path / ".submitit" / "9100").mkdir()  # a batch of one is a plain job: job 5
    (tmp_path / ".submitit" / "9100" / "9100_submitted.pkl").write_bytes(b"")
    (tmp_path / ".submitit" / "9000").mkdir()  # an array's own folder: its sbatch script only
    (tmp_path / ".submitit" / "9000" / "9000_submission.sh").write_text("#!/bin/sh\n")
    assert slurm_ids(tmp_path, [[["a"]] * 2, [["b"]] * 3, [["c"]]], {}) == {
        0: "10_0", 1: "10_1", 2: "9000_0", 3: "9000_1", 4: "9000_2", 5: "9100"}


# ---------------------------------------------------------------- damage
def test_damaged_files_never_raise(sweep: Path, tmp_path: Path) -> None:
    (sweep / "0" / "summary.json").write_bytes(b"\x00\xff{torn")
    (sweep / "1" / "episodes.csv").unlink()
    os.mkfifo(sweep / "1" / "episodes.csv")  # would block a reader that opens it
    (sweep / "2" / ".hydra" / "hydra.yaml").write_bytes(b"\xff\xfe: [")
    (sweep / "3" / "episodes.csv").write_bytes(b"\xff" * 100)
    (sweep / ".submitit" / "not_an_id").mkdir(parents=True)
    (sweep / ".submitit" / "77_0").mkdir()
    (sweep / ".submitit" / "77_0" / "77_0_submitted.pkl").write_bytes(b"")
    (sweep / ".submitit" / "77_0" / "77_0_0_log.err").mkdir()  # a folder where a file should be
    path = fake_slurm(tmp_path, squeue="garbage\n|||\n77_[x-y]|PENDING|\n", sacct="77_0|\n\xff\n")
    proc = rlab_status(str(sweep), path=path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = job_lines(proc.stdout)
    assert re.search(r"^0\s+damaged \(SLURM: no record\)\s+\?\s+summary.json is not UTF-8", lines[0])
    assert re.search(r"^1\s+running", lines[1])
    (sweep / "multirun.yaml").write_bytes(b"hydra: [\x00")
    jobs, notes = status_of(sweep)
    assert [j.num for j in jobs] == [0, 1, 2, 3] and any("jobs without a folder are not known" in n for n in notes)


def test_a_job_row_reads_what_it_can() -> None:
    job = Job(7, ["seed=1"])
    sweep_status.classify(job, Path("/nonexistent"), time.time())
    assert (job.state, job.env_steps, job.detail) == ("pending", None, "no folder yet")
