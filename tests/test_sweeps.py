"""Hydra multirun end to end: launchers, one folder and one W&B run per job, shared W&B group,
failed jobs isolated, rlab-report on a sweep, every experiment preset, an Optuna search."""

from __future__ import annotations

import json
import math
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hydra_plugins.rlab_launchers.fork_joblib import workers_for
from reinforce_lab import sweeps, tricks
from reinforce_lab.config import group_options

from conftest import BIN, cli

TINY = ["train.max_env_steps=300", "env.num_envs=2", "algo.episodes_per_update=2", "train.progress=false"]


def sweep(tmp_path: Path, *overrides: str, name: str = "sweep", multirun: bool = True) -> tuple[Path, subprocess.CompletedProcess]:
    """Run ``rlab-train -m`` in ``tmp_path`` into ``tmp_path/name``; returns (sweep dir, process)."""
    out = tmp_path / name
    args = ["rlab-train", *(["-m"] if multirun else []), *overrides, f"hydra.sweep.dir={out}"]
    return out, cli(*args, cwd=tmp_path)


def summary(job: Path) -> dict:
    return json.loads((job / "summary.json").read_text())


def wandb_run_record(run_dir: str) -> tuple[dict, int | None]:
    """The ``run`` record of an offline W&B run (run_id, run_group, job_type, ...) and its exit code."""
    out = subprocess.run([str(BIN / "wandb"), "leet", "inspect", "--json", run_dir],
                         capture_output=True, text=True, timeout=120, check=True)
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip().startswith("{")]
    run = next(r["run"] for r in records if r.get("type") == "run")
    exits = [r["exit"].get("exit_code", 0) for r in records if r.get("type") == "exit"]
    return run, exits[-1] if exits else None


def wandb_runs(jobs: list[Path]) -> list[tuple[dict, int | None]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(wandb_run_record, [summary(job)["wandb_run_dir"] for job in jobs]))


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_sweep_gives_every_job_its_folder_and_wandb_run_in_one_group(tmp_path: Path, launcher: str):
    out, res = sweep(tmp_path, "seed=0,1", *TINY, f"hydra/launcher={launcher}")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "deprecated" not in res.stderr, res.stderr
    assert "sweep done: 2 of 2 jobs finished" in res.stdout
    if launcher == "joblib" and tricks.enabled("forked_workers"):  # workers forked with torch and Lightning imported
        assert "on forked workers" in res.stdout + res.stderr
    elif launcher == "joblib":  # the trick off (RLAB_TRICKS=off): the stock launcher's loky workers
        assert "backend=loky" in res.stdout + res.stderr and "on forked workers" not in res.stdout + res.stderr
    jobs = [out / "0", out / "1"]
    for seed, job in enumerate(jobs):
        assert (job / "episodes.csv").is_file() and (job / ".hydra" / "config.yaml").is_file()
        s = summary(job)
        assert s["status"] == "finished" and s["seed"] == seed and s["env_steps"] >= 300
        assert Path(s["wandb_run_dir"]).is_relative_to(job)
    (run0, exit0), (run1, exit1) = wandb_runs(jobs)
    assert run0["run_id"] != run1["run_id"]
    # Group: the sweep folder (relative to where rlab-train ran); job_type: the algo; tags always set.
    assert run0["run_group"] == run1["run_group"] == "sweep"
    assert run0["job_type"] == run1["job_type"] == "reinforce"
    assert run0["tags"] and exit0 == exit1 == 0


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Jobs 0: fine; 1: training raises (CartPole has no `foo`); 2 and 3: bad value algo.gamma=1.5."""
    return sweep(tmp_path_factory.mktemp("failed"), "algo.gamma=0.9,1.5", "++env.kwargs={},{foo:1}", *TINY)


def test_failing_jobs_leave_a_failed_summary_and_the_others_run(failed_sweep):
    out, res = failed_sweep
    assert res.returncode == 1, res.stderr  # every job ran, but not all succeeded
    assert "Traceback" not in res.stderr
    ok, raised, bad = summary(out / "0"), summary(out / "1"), summary(out / "2")
    assert ok["status"] == "finished" and ok["episodes"] > 0
    assert bad["status"] == "failed" and bad["error"].startswith("algo.gamma=1.5 is not allowed")
    assert raised["status"] == "failed" and raised["error"].startswith("TypeError") and "foo" in raised["error"]
    assert "Traceback (most recent call last)" in (out / "1" / "traceback.txt").read_text()
    # One line when a job fails, and the failed jobs again at the end of the sweep.
    assert f"job failed ({out / '2'}): algo.gamma=1.5" in res.stderr
    assert "1 of 4 jobs finished" in res.stderr
    assert f"{out / '2'}: algo.gamma=1.5" in res.stderr and f"{out / '1'}: TypeError" in res.stderr
    # Failed jobs have W&B runs too, in the sweep's group, finished with exit code 1.
    (run_ok, exit_ok), (run_raised, exit_raised), (run_bad, exit_bad) = wandb_runs([out / "0", out / "1", out / "2"])
    assert run_ok["run_group"] == run_raised["run_group"] == run_bad["run_group"]
    assert len({run_ok["run_id"], run_raised["run_id"], run_bad["run_id"]}) == 3
    assert (exit_ok, exit_raised, exit_bad) == (0, 1, 1)


def test_rlab_report_reads_a_sweep_with_failed_jobs(failed_sweep, tmp_path: Path):
    out, _ = failed_sweep
    res = cli("rlab-report", str(out), "--out", str(tmp_path / "report"))
    assert res.returncode == 0, res.stderr
    rows = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert len(rows) == 4 and rows.n_runs.sum() == 1 and rows.n_failed.sum() == 3
    report = (tmp_path / "report" / "report.md").read_text()
    failed_section = report.split("## Failed runs")[1].split("## Method")[0]
    assert failed_section.count("status `failed`") == 3
    assert "algo.gamma=1.5 is not allowed" in failed_section and "TypeError" in failed_section


def test_every_experiment_preset_runs_with_a_tiny_budget(tmp_path: Path):
    presets = group_options("experiment")
    assert {"gamma_t", "entropy_bonus", "return_normalisation", "continuous"} <= set(presets)
    out, res = sweep(tmp_path, "experiment=glob(*)", "train.max_env_steps=200", "env.num_envs=1",
                     "algo.episodes_per_update=1", "logger=none")
    assert res.returncode == 0, res.stderr
    jobs = sorted((p for p in out.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    assert len(jobs) == len(presets)  # the presets' own sweeps (hydra.sweeper.params) are not expanded
    chosen = [o for job in jobs for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
              if o.startswith("experiment=")]
    assert sorted(chosen) == sorted(f"experiment={p}" for p in presets)
    for job in jobs:
        assert summary(job)["status"] == "finished", job


def test_optuna_search_records_results_and_survives_failed_trials(tmp_path: Path):
    # algo.gamma=1.5 fails validation: those trials must count as the worst value, not crash the study.
    out, res = sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                     "algo.gamma=choice(0.9,1.5)", "train.max_env_steps=200", "env.num_envs=1", "logger=none",
                     multirun=False)
    results = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"optimizer.lr", "algo.episodes_per_update", "algo.gamma"}
    finals = [s["final_return"] for s in map(summary, (out / "0", out / "1")) if s["status"] == "finished"]
    assert results["best_value"] == (max(finals) if finals else -math.inf)
    assert res.returncode == (0 if len(finals) == 2 else 1), res.stderr


@pytest.fixture
def hydra_job():
    """Compose like a Hydra job (with the hydra node) and make it the current HydraConfig."""
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig

    def job(*overrides: str):
        with warnings.catch_warnings(), initialize_config_module("reinforce_lab.conf", version_base="1.3"):
            sweeps.quiet_launcher_schema_warning()  # pytest resets the filter rlab-train sets on import
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield job
    HydraConfig.instance().cfg = None


def test_wandb_group_is_the_experiment_else_the_sweep_folder(hydra_job):
    assert sweeps.wandb_group() is None  # outside Hydra
    assert hydra_job().logger.group is None  # a single run
    assert hydra_job("experiment=gamma_t").logger.group == "gamma_t"
    sweep_cfg = hydra_job("hydra.mode=MULTIRUN", "hydra.sweep.dir=multirun/2026-11-21/10-11-12")
    assert sweep_cfg.logger.group == "2026-11-21/10-11-12"
    assert hydra_job("hydra.mode=MULTIRUN", "experiment=gamma_t").logger.group == "gamma_t"
    assert hydra_job("experiment=gamma_t", "logger.group=mine").logger.group == "mine"


def test_sweep_labels(tmp_path: Path):
    assert sweeps.sweep_label("multirun/2026-11-21/10-11-12") == "2026-11-21/10-11-12"
    assert sweeps.sweep_label(tmp_path / "multirun" / "gamma_t", cwd=tmp_path) == "gamma_t"
    assert sweeps.sweep_label("/elsewhere/sweep", cwd=tmp_path) == "/elsewhere/sweep"
    assert len(sweeps.sweep_label("x" * 300)) == sweeps.MAX_GROUP_LEN


def test_failure_value_is_the_worst_for_the_direction(hydra_job):
    assert hydra_job("hydra.mode=MULTIRUN") and sweeps.failure_value() == -math.inf
    hydra_job("hparams_search=optuna", "hydra.sweeper.direction=minimize")
    assert sweeps.failure_value() == math.inf


def test_launcher_presets_extend_the_plugins(hydra_job):
    launcher = hydra_job("hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu").hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "cpu"
    assert (launcher.timeout_min, launcher.cpus_per_task, launcher.gpus_per_node, launcher.mem_gb) == (60, 2, 0, 4)
    assert launcher.qos is None  # the plugin's other keys are still there
    joblib = hydra_job("hydra/launcher=joblib").hydra.launcher
    assert (joblib.n_jobs, joblib.backend) == (-1, "multiprocessing") and joblib._target_.endswith("ForkJoblibLauncher")
    assert joblib.pre_dispatch == "2*n_jobs"  # the plugin's other keys are still there


@pytest.mark.parametrize(("num_jobs", "n_jobs", "cpus", "workers"), [
    (1, -1, 2, 1), (2, -1, 2, 2),                # no more workers than jobs
    (3, -1, 2, 3), (5, -1, 4, 5),                # all at once: 2 per core would leave one core idle at the end
    (4, -1, 2, 2), (10, -1, 2, 2), (8, -1, 4, 4),  # whole waves of one per core
    (8, -1, 2, 3), (6, -1, 2, 3),                # a tie: the larger count (unequal jobs end closer together)
    (7, -1, 4, 4),                               # 5 or 6 would leave more idle: 7 = 5 + 2 = 6 + 1
    (9, -1, 8, 9), (13, -1, 8, 8),               # never more than 1.5 per core
    (3, 2, 2, 2), (8, 8, 2, 8),                  # an explicit n_jobs is kept
])
def test_joblib_workers_leave_no_core_idle_at_the_end(num_jobs, n_jobs, cpus, workers):
    assert workers_for(num_jobs, n_jobs, cpus) == workers


def test_joblib_starts_three_jobs_at_once_on_two_cores(tmp_path: Path):
    if workers_for(3, -1) != 3:
        pytest.skip("three jobs start together only where 2 cores are usable")
    # Jobs long enough (several seconds) that the stock loky workers of RLAB_TRICKS=off, which
    # each import torch and Lightning first (their start-up differs by ~2 s), all start one.
    out, res = sweep(tmp_path, "seed=0,1,2", "train.max_env_steps=20000", "train.target_return=null",
                     "env.num_envs=2", "algo.episodes_per_update=2", "train.progress=false", "logger=none",
                     "hydra/launcher=joblib")
    assert res.returncode == 0, res.stderr
    assert "n_jobs=3," in res.stdout + res.stderr
    starts = [(out / str(i) / ".hydra" / "config.yaml").stat().st_mtime for i in range(3)]
    ends = [(out / str(i) / "summary.json").stat().st_mtime for i in range(3)]
    assert max(starts) < min(ends)  # with 2 workers the third job would start after one ended
