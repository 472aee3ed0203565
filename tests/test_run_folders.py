"""Run folders and names: unique per run and per sweep, named after the env actually trained.

docs/reliability.md ("Run folders") points here.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import BIN, make_cfg

TINY = ["train.max_env_steps=200", "env.num_envs=2", "algo.episodes_per_update=2", "logger=none",
        "train.progress=false"]


@pytest.mark.parametrize(("env_id", "name", "target"), [
    ("MountainCar-v0", "MountainCar-v0", -110.0),    # the spec's reward_threshold
    ("Pendulum-v1", "Pendulum-v1", None),            # a spec without one: no target
    ("CartPole-v0", "CartPole-v0", 195.0),
    ("CartPole-v1", "cartpole", 475),                # the option's own id: the option's name and target
])
def test_env_id_takes_name_and_target_from_the_environment(env_id, name, target):
    cfg = make_cfg([f"env.id={env_id}"])
    assert cfg.env.name == name and cfg.train.target_return == target
    assert cfg.logger.name == f"{name}-reinforce-log_prob-s0" and list(cfg.tags)[0] == name
    assert OmegaConf.to_container(cfg, resolve=True)["env"]["target_return"] == target


def test_env_id_from_another_option_and_an_explicit_target():
    cfg = make_cfg(["env=pendulum", "env.id=Acrobot-v1", "env.target_return=-80"])
    assert cfg.env.name == "Acrobot-v1" and cfg.train.target_return == -80  # what the user wrote wins


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "rlab-train"), *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def test_two_runs_started_together_get_their_own_folders(tmp_path):
    procs = [_start([*TINY, "env.id=Acrobot-v1"], tmp_path) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    folders = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(folders) == 2, folders  # same config, same second: still two folders
    for folder in folders:
        assert folder.name.endswith("_Acrobot-v1-reinforce-log_prob-s0")
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["env_id"] == "Acrobot-v1" and summary["target_return"] == -100.0


def test_two_sweeps_started_together_get_their_own_folders(tmp_path):
    procs = [_start(["-m", *TINY, "seed=0,1"], tmp_path) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    sweeps = sorted((tmp_path / "multirun").glob("*/*"))
    assert len(sweeps) == 2, sweeps
    for sweep in sweeps:  # each sweep's jobs in its own folder, none shared
        assert sorted(p.parent.name for p in sweep.glob("*/summary.json")) == ["0", "1"]


def test_no_lightning_srun_warning_where_slurm_is_installed(tmp_path):
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    p = _start([*TINY, "hydra.run.dir=run"], tmp_path, {"PATH": f"{fake.parent}:{os.environ['PATH']}"})
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    assert "srun" not in out + err
