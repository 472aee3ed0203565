"""Shared fixtures: compose the real config tree, run training in-process with tiny budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")

BIN = Path(sys.executable).parent


def make_cfg(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``, as ``rlab-train`` would."""
    with initialize_config_module("reinforce_lab.conf", version_base="1.3"):
        return compose(config_name, overrides=list(overrides or []))


def train_in_process(tmp_path: Path, overrides: list[str]) -> tuple[Path, dict]:
    """Run :func:`reinforce_lab.train.run` on a composed config; returns (run_dir, summary)."""
    from reinforce_lab.train import run

    cfg = make_cfg(["train.progress=false", *overrides])
    run_dir = tmp_path / "run"
    return run_dir, run(cfg, run_dir)


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a console script of the installed package (``rlab-train``, ``rlab-eval``...)."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "WANDB_MODE": "offline"})


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that make a run take a second or two."""
    return ["train.max_env_steps=600", "env.num_envs=2", "algo.episodes_per_update=4"]
