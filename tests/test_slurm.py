"""Sweeps on a real SLURM cluster through the `submitit_slurm` launcher: one SLURM job, one folder
and one W&B run per Hydra job, all in one W&B group; a failing job is isolated and reported.

Needs the one-node cluster of ``scripts/slurm-local.sh up`` (CI brings it up); skipped with a
one-line reason elsewhere. About a minute: each sweep is two 1-CPU jobs side by side.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, SlurmCluster, cli
from test_sweeps import summary, wandb_run_record  # noqa: F401 - the same readers of job folders and W&B runs

pytestmark = pytest.mark.slurm

SLURM = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5"]
TINY = ["train.max_env_steps=300", "env.num_envs=2", "algo.episodes_per_update=2", "train.progress=false",
        "logger=wandb"]


def slurm_sweep(cluster: SlurmCluster, tmp_path: Path, *overrides: str) -> tuple[Path, subprocess.CompletedProcess]:
    """``rlab-train -m`` on SLURM from ``tmp_path`` into ``tmp_path/sweep``; cancels its jobs on a timeout."""
    out = tmp_path / "sweep"
    try:
        return out, cli("rlab-train", "-m", *SLURM, *overrides, *TINY, f"hydra.sweep.dir={out}",
                        cwd=tmp_path, timeout=240)
    except subprocess.TimeoutExpired:
        # Not after a clean sweep: its jobs may still be exiting (result written, W&B closing).
        cluster.cancel_under(tmp_path)
        raise


def slurm_tasks(cluster: SlurmCluster, sweep_dir: Path) -> dict[str, dict[str, str]]:
    """``{Hydra job number: sacct row}`` of the sweep's SLURM array, once every task has ended.

    submitit names a job's folder ``<array id>_<task>``. sacct lags: a task whose result is
    already on disk can show RUNNING for a few more seconds, so wait (at most 30 s) for end states.
    """
    folders = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name)]
    assert folders, f"no SLURM job folders in {sweep_dir / '.submitit'}"
    array_ids = {name.split("_")[0] for name in folders}
    assert len(array_ids) == 1, f"one SLURM array per sweep, got {sorted(array_ids)}"
    array_id = array_ids.pop()
    deadline = time.monotonic() + 30
    while True:
        rows = {r["JobID"].split("_")[1]: r for r in cluster.sacct(array_id)}
        if all(r["State"] not in ("PENDING", "RUNNING", "COMPLETING") for r in rows.values()) \
                or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_slurm_sweep_runs_each_job_as_a_slurm_job_with_its_folder_and_wandb_run(slurm_cluster, tmp_path: Path):
    out, res = slurm_sweep(slurm_cluster, tmp_path, "seed=0,1")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert "sweep done: 2 of 2 jobs finished" in res.stdout
    jobs = [out / "0", out / "1"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_dir()) == ["0", "1"]
    for seed, job in enumerate(jobs):
        s = summary(job)
        assert s["status"] == "finished" and s["seed"] == seed and s["env_steps"] >= 300
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert Path(s["wandb_run_dir"]).is_relative_to(job)
    # They really ran as SLURM jobs: one array on partition cpu, every task ended COMPLETED.
    tasks = slurm_tasks(slurm_cluster, out)
    assert sorted(tasks) == ["0", "1"], tasks
    assert {(r["Partition"], r["State"], r["ExitCode"]) for r in tasks.values()} == {("cpu", "COMPLETED", "0:0")}, tasks
    # One W&B run per job, all in the sweep's group (its folder relative to where rlab-train ran).
    (run0, exit0), (run1, exit1) = (wandb_run_record(summary(job)["wandb_run_dir"]) for job in jobs)
    assert run0["run_id"] != run1["run_id"]
    assert run0["run_group"] == run1["run_group"] == "sweep"
    assert exit0 == exit1 == 0


def test_slurm_sweep_isolates_a_failing_job(slurm_cluster, tmp_path: Path):
    # Job 1 has a bad value (lr=-1): it fails on its own node with one line; job 0 trains.
    out, res = slurm_sweep(slurm_cluster, tmp_path, "optimizer.lr=0.005,-1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    ok, bad = summary(out / "0"), summary(out / "1")
    assert ok["status"] == "finished" and ok["episodes"] > 0
    assert bad["status"] == "failed" and "optimizer.lr=-1 is not allowed" in bad["error"]
    assert not (out / "1" / "checkpoints").exists()  # it stopped before training
    # The sweep's summary (printed by the submitting process) names the failed job and why.
    assert "sweep done: 1 of 2 jobs finished" in res.stderr, res.stderr
    failed_lines = [line for line in res.stderr.splitlines() if line.startswith(f"[rlab]   {out / '1'}: ")]
    assert len(failed_lines) == 1 and "optimizer.lr=-1 is not allowed" in failed_lines[0], res.stderr
    assert f"{out / '0'}:" not in res.stderr
    # On the node: one line in the job's SLURM log, no traceback; the job itself ends cleanly
    # (a failed run is a result, not a crash), so SLURM does not retry or flag it.
    tasks = slurm_tasks(slurm_cluster, out)
    job_log = next((out / ".submitit").glob("*_1/*_1_0_log.err")).read_text()
    assert f"job failed ({out / '1'}): optimizer.lr=-1 is not allowed" in job_log
    assert "Traceback" not in job_log, job_log
    assert {k: r["State"] for k, r in tasks.items()} == {"0": "COMPLETED", "1": "COMPLETED"}, tasks
    # Both jobs have W&B runs in the sweep's group; the failed one ended with exit code 1.
    (run_ok, exit_ok), (run_bad, exit_bad) = (wandb_run_record(s["wandb_run_dir"]) for s in (ok, bad))
    assert run_ok["run_group"] == run_bad["run_group"] == "sweep" and run_ok["run_id"] != run_bad["run_id"]
    assert (exit_ok, exit_bad) == (0, 1)
