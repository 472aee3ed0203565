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
def float64():
    """Maths tests run in float64 (so 1e-10 means something); the default dtype is restored afterwards."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that make a run take a second or two."""
    return ["train.max_env_steps=600", "env.num_envs=2", "algo.episodes_per_update=4"]


# --- SLURM: the one-node cluster of scripts/slurm-local.sh -----------------------------------

import re  # noqa: E402 - kept with the SLURM helpers they serve
from dataclasses import dataclass  # noqa: E402

SLURM_UP = "scripts/slurm-local.sh up"


@dataclass(frozen=True)
class SlurmCluster:
    """The local cluster as the tests see it (partition names are fixed by scripts/slurm-local.sh)."""

    node: str
    grace_s: int            # GraceTime of `cpu`: how long a preempted job has to checkpoint
    partition: str = "cpu"  # the default partition; its jobs are preempted (and requeued) by `high`
    high: str = "high"      # a higher PriorityTier: a job here preempts jobs in `cpu`

    def jobs_under(self, folder: Path) -> list[str]:
        """Ids of queued or running jobs submitted from ``folder`` or below (their working dir)."""
        out = _slurm("squeue", "-h", "-o", "%A %Z")
        root = str(Path(folder).resolve())
        return [job for job, _, cwd in (line.partition(" ") for line in out.stdout.splitlines())
                if cwd == root or cwd.startswith(root + "/")]

    def cancel_under(self, folder: Path) -> None:
        """Cancel what a test left behind (e.g. after a timeout), so the next test finds the node free."""
        if jobs := self.jobs_under(folder):
            _slurm("scancel", "--full", *jobs)

    def sacct(self, job_id: str) -> list[dict[str, str]]:
        """Accounting rows of a job (or an array: every task), without steps."""
        fields = ["JobID", "JobName", "Partition", "State", "ExitCode", "Elapsed"]
        out = _slurm("sacct", "-n", "-X", "-P", "-j", job_id, "-o", ",".join(fields))
        return [dict(zip(fields, line.split("|"))) for line in out.stdout.splitlines() if line]


def _slurm(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=True)


def _probe_slurm() -> SlurmCluster | str:
    """The cluster, or why there is none. Each probe is bounded: a dead slurmctld takes ~9 s to fail."""
    import shutil

    if shutil.which("sinfo") is None:
        return "sinfo not found"
    try:
        # `timeout 3` (not only Python's timeout) so that a hung client is killed with its children.
        nodes = subprocess.run(["timeout", "3", "sinfo", "-h", "-p", "cpu", "-o", "%n %t"],
                               capture_output=True, text=True, timeout=5)
        if nodes.returncode != 0 or not nodes.stdout.strip():
            return "slurmctld not answering or no partition cpu"
        node, _, state = nodes.stdout.split("\n")[0].partition(" ")
        if state.strip() not in ("idle", "mix", "alloc"):
            return f"node {node} is {state.strip()}, not idle"
        # Without accounting submitit cannot see a job that died without a result: sweeps would hang.
        if subprocess.run(["timeout", "3", "sacct", "-n", "-j", "1"], capture_output=True,
                          timeout=5).returncode != 0:
            return "sacct fails: no accounting (slurmdbd)"
        part = subprocess.run(["timeout", "3", "scontrol", "-o", "show", "partition", "cpu"],
                              capture_output=True, text=True, timeout=5).stdout
        grace = re.search(r"GraceTime=(\d+)", part)
        high = subprocess.run(["timeout", "3", "sinfo", "-h", "-p", "high", "-o", "%P"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
        if grace is None or not high:
            return "partitions cpu and high not as scripts/slurm-local.sh sets them"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"probe failed: {exc}"
    return SlurmCluster(node=node, grace_s=int(grace.group(1)))


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The local SLURM cluster; skips the test with one line when none is up (start: scripts/slurm-local.sh up)."""
    cluster = _probe_slurm()
    if isinstance(cluster, str):
        pytest.skip(f"no SLURM cluster ({cluster}): {SLURM_UP}")
    return cluster
