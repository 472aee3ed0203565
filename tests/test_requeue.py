"""The pieces of SLURM's preemption/requeue path that need no cluster (the whole path: test_slurm_faults.py).

- a sweep job that finds its own run in its folder resumes it, or, finished, is not rerun;
- SIGUSR2 stops training cleanly, then goes to the handler found before (submitit's requeue);
- SLURM's states and exit codes become the one-line reasons of the sweep summary.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import make_cfg, train_in_process
from reinforce_lab import slurm_jobs
from reinforce_lab.errors import ConfigError
from reinforce_lab.interrupts import GracefulStop
from reinforce_lab.resume import sweep_job_state


def test_a_sweep_job_resumes_its_checkpoint_and_never_reruns_a_finished_run(tmp_path, tiny):
    run_dir, summary = train_in_process(tmp_path, [*tiny, "logger=none"])
    config = OmegaConf.to_container(make_cfg(["train.progress=false", *tiny, "logger=none"]), resolve=True)
    assert sweep_job_state(config, run_dir) == ("finished", summary["final_return"])
    data = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**data, "status": "interrupted"}))
    assert sweep_job_state(config, run_dir) == ("resume", None)
    (run_dir / "summary.json").unlink()  # killed before it wrote one: the checkpoint still counts
    assert sweep_job_state(config, run_dir) == ("resume", None)
    other = OmegaConf.to_container(make_cfg(["train.progress=false", *tiny, "logger=none", "seed=9"]), resolve=True)
    with pytest.raises(ConfigError, match="seed=0, this job has 9"):
        sweep_job_state(other, run_dir)
    assert sweep_job_state(config, tmp_path / "new") == (None, None)


def test_sigusr2_stops_cleanly_then_goes_to_the_handler_found_before():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        graceful = GracefulStop()
        graceful.install()
        os.kill(os.getpid(), signal.SIGUSR2)
        assert graceful.requested and graceful.signal_name == "SIGUSR2" and seen == []  # only a flag so far
        graceful.restore()
        graceful.hand_over()  # after checkpoint and summary: submitit's requeue in a SLURM job
        assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_sigterm_is_not_handed_over():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        graceful = GracefulStop()
        graceful.install()
        os.kill(os.getpid(), signal.SIGTERM)
        graceful.restore()
        graceful.hand_over()
        assert graceful.signal_name == "SIGTERM" and seen == []
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(("state", "code", "words"), [
    ("CANCELLED by 0", "0:0", "cancelled (scancel)"),
    ("FAILED", "0:9", "killed by SIGKILL (as the out-of-memory killer does)"),
    ("FAILED", "2:0", "failed with exit code 2"),
    ("OUT_OF_MEMORY", "0:125", "out of memory"),
    ("TIMEOUT", "0:0", "time limit reached"),
    ("NODE_FAIL", "0:0", "node failure"),
])
def test_slurm_states_in_words(state, code, words):
    line = slurm_jobs.reason("7_1", state, code)
    assert line.startswith(f"SLURM job 7_1: {words}") and f"state {state}" in line and "\n" not in line


@pytest.mark.parametrize(("timeout_min", "delay", "warned"), [
    (2, 100, True), (4, 150, False), (60, 120, False), (5, 120, False), (3, 120, True), (None, 120, False)])
def test_early_signal_warning_names_the_keys_and_a_delay_that_fits(timeout_min, delay, warned):
    # man sbatch: the signal "may be sent up to 60 seconds earlier than specified".
    line = slurm_jobs.early_signal_warning(timeout_min, delay)
    assert (line is not None) == warned
    if warned:
        assert line.startswith(f"hydra.launcher.signal_delay_s={delay} with timeout_min={timeout_min}")
        most = int(line.split("signal_delay_s <= ")[1].split()[0])
        assert most == 60 * timeout_min - 90 and slurm_jobs.early_signal_warning(timeout_min, most) is None


def fake_sacct(tmp_path: Path, monkeypatch, output: str) -> None:
    sacct = tmp_path / "bin" / "sacct"
    sacct.parent.mkdir(exist_ok=True)
    sacct.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    sacct.chmod(sacct.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{sacct.parent}:{os.environ['PATH']}")


def test_a_killed_job_gets_a_failed_summary_with_the_step_signal(tmp_path, monkeypatch):
    fake_sacct(tmp_path, monkeypatch, "5_1|FAILED|9:0\\n5_1.batch|FAILED|9:0\\n5_1.0|CANCELLED|0:9\\n")
    why = slurm_jobs.record_outcome(tmp_path / "job", "5_1", seed=3)
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == why and "killed by SIGKILL" in why
    assert summary["seed"] == 3


def test_an_interrupted_job_keeps_its_summary_and_gains_the_reason(tmp_path, monkeypatch):
    fake_sacct(tmp_path, monkeypatch, "5_0|CANCELLED by 0|0:0\\n")
    job = tmp_path / "job"
    job.mkdir()
    (job / "summary.json").write_text(json.dumps({
        "status": "interrupted", "final_return": 20.0, "final_window": 10, "episodes": 10, "env_steps": 200,
        "wall_s": 1.0, "env_steps_per_s": 200.0, "solved_at_episode": None, "seed": 0, "run_dir": str(job),
        "stop_reason": "SIGTERM received"}))
    assert "cancelled (scancel)" in slurm_jobs.record_outcome(job, "5_0")
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["episodes"] == 10 and "cancelled" in summary["error"]


def test_finished_and_self_failed_jobs_are_left_as_they_are(tmp_path, monkeypatch):
    fake_sacct(tmp_path, monkeypatch, "5_0|RUNNING|0:0\\n")  # sacct lags: it must not even be asked
    job = tmp_path / "job"
    job.mkdir()
    for status in ("finished", "failed"):
        text = json.dumps({"status": status, "final_return": None, "final_window": 0, "episodes": 0,
                           "env_steps": 0, "wall_s": 0.0, "env_steps_per_s": 0.0, "solved_at_episode": None,
                           "seed": 0, "run_dir": str(job), "error": "bad lr" if status == "failed" else None})
        (job / "summary.json").write_text(text)
        assert slurm_jobs.record_outcome(job, "5_0") is None
        assert (job / "summary.json").read_text() == text
