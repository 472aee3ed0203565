"""Hydra multirun end to end: launchers, one folder and one W&B run per job, shared W&B group,
failed jobs isolated, rlab-report on a sweep, every experiment preset, an Optuna search."""

from __future__ import annotations

import json
import math
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reinforce_lab import sweeps
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
    """A sweep whose second job has a bad value (algo.gamma=1.5)."""
    return sweep(tmp_path_factory.mktemp("failed"), "algo.gamma=0.9,1.5", *TINY)


def test_a_failing_job_leaves_a_failed_summary_and_the_others_run(failed_sweep):
    out, res = failed_sweep
    assert res.returncode == 1, res.stderr  # every job ran, but not all succeeded
    assert "Traceback" not in res.stderr
    ok, bad = summary(out / "0"), summary(out / "1")
    assert ok["status"] == "finished" and ok["episodes"] > 0
    assert bad["status"] == "failed" and bad["error"].startswith("algo.gamma=1.5 is not allowed")
    # One line when the job fails, and the failed jobs again at the end of the sweep.
    assert f"job failed ({out / '1'}): algo.gamma=1.5" in res.stderr
    assert "1 of 2 jobs finished" in res.stderr and f"{out / '1'}: algo.gamma=1.5" in res.stderr
    # The failed job's W&B run exists, is in the sweep's group and finished with exit code 1.
    (run_ok, exit_ok), (run_bad, exit_bad) = wandb_runs([out / "0", out / "1"])
    assert run_bad["run_group"] == run_ok["run_group"] and run_bad["run_id"] != run_ok["run_id"]
    assert (exit_ok, exit_bad) == (0, 1)


def test_rlab_report_reads_a_sweep_with_a_failed_job(failed_sweep, tmp_path: Path):
    out, _ = failed_sweep
    res = cli("rlab-report", str(out), "--out", str(tmp_path / "report"))
    assert res.returncode == 0, res.stderr
    rows = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("group")
    assert rows.loc["algo.gamma=0.9", "n_runs"] == 1 and rows.loc["algo.gamma=1.5", "n_failed"] == 1
    report = (tmp_path / "report" / "report.md").read_text()
    failed_section = report.split("## Failed runs")[1].split("## Method")[0]
    assert "algo.gamma=1.5 is not allowed" in failed_section and "status `failed`" in failed_section


def test_an_exception_in_a_job_is_recorded_with_its_traceback(tmp_path: Path):
    out, res = sweep(tmp_path, "+env.kwargs={foo:1}", *TINY, "logger=none")
    assert res.returncode == 1, res.stderr
    s = summary(out / "0")
    assert s["status"] == "failed" and s["error"].startswith("TypeError") and "foo" in s["error"]
    assert "Traceback (most recent call last)" in (out / "0" / "traceback.txt").read_text()
    assert "Traceback" not in res.stderr and "job failed" in res.stderr


def test_every_experiment_preset_runs_with_a_tiny_budget(tmp_path: Path):
    presets = group_options("experiment")
    assert {"gamma_t", "entropy_bonus", "return_normalisation", "continuous"} <= set(presets)
    out, res = sweep(tmp_path, "experiment=glob(*)", "train.max_env_steps=200", "env.num_envs=1",
                     "algo.episodes_per_update=1", "train.max_episodes=null")
    assert res.returncode == 0, res.stderr
    jobs = sorted((p for p in out.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    assert len(jobs) == len(presets)
    chosen = [yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) for job in jobs]
    assert sorted(o for overrides in chosen for o in overrides if o.startswith("experiment=")) == \
        sorted(f"experiment={p}" for p in presets)
    for job in jobs:
        assert summary(job)["status"] == "finished", job
    # Every job's W&B group is its experiment's name, whatever the preset sets.
    for (run, exit_code), overrides in zip(wandb_runs(jobs), chosen):
        assert f"experiment={run['run_group']}" in overrides and exit_code == 0


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


def test_wandb_group_outside_a_sweep_and_sweep_labels(tmp_path: Path):
    assert sweeps.wandb_group() is None  # no Hydra job: no group
    assert sweeps.sweep_label("multirun/2026-11-21/10-11-12") == "2026-11-21/10-11-12"
    assert sweeps.sweep_label(tmp_path / "multirun" / "gamma_t", cwd=tmp_path) == "gamma_t"
    assert sweeps.sweep_label("/elsewhere/sweep", cwd=tmp_path) == "/elsewhere/sweep"
    assert len(sweeps.sweep_label("x" * 300)) == sweeps.MAX_GROUP_LEN


def test_launcher_presets_compose(tmp_path: Path):
    res = cli("rlab-train", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu", "--cfg", "hydra",
              "-p", "hydra.launcher", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    launcher = yaml.safe_load(res.stdout.split("\n", 1)[1])  # first line: "# @package hydra.launcher"
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "cpu"
    assert {"timeout_min", "cpus_per_task", "gpus_per_node", "mem_gb"} <= set(launcher)
    assert "deprecated" not in res.stderr
