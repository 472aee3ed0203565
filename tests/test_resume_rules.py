"""``resume=`` misuse changes nothing; extending a finished run's budget continues it exactly.

docs/reliability.md ("Resume") points here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli
from reinforce_lab.errors import ConfigError
from reinforce_lab.resume import NothingToTrain, check_resume, resume_argv

TINY = ["train.max_env_steps=1500", "env.num_envs=2", "algo.episodes_per_update=4", "logger=csv",
        "train.progress=false"]


def folder_bytes(run_dir: Path) -> dict[str, bytes]:
    """Every file of the run folder (the W&B/CSV files, .hydra, checkpoint…) and its bytes."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny CartPole run made by the CLI (with its .hydra/ files)."""
    root = tmp_path_factory.mktemp("finished")
    out = cli("rlab-train", *TINY, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    return root / "run"


def test_resume_of_a_finished_run_changes_nothing(finished):
    before = folder_bytes(finished)
    out = cli("rlab-train", f"resume={finished}", "logger=none", "train.progress=true", cwd=finished.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [x for x in out.stdout.splitlines() if x.strip()]
    assert len(lines) == 1 and "has finished (max_env_steps reached" in lines[0], out.stdout
    assert "nothing changed" in lines[0] and "train.max_env_steps=N" in lines[0]
    assert "Traceback" not in out.stderr and folder_bytes(finished) == before


@pytest.mark.parametrize("extra", [[], ["train.torch_threads=2", "device=cpu", "train.checkpoint_every_s=5"],
                                   ["train.max_env_steps=1000"]])
def test_nothing_to_train_is_decided_from_the_checkpoint_and_the_new_budget(finished, extra):
    with pytest.raises(NothingToTrain, match="nothing to train"):
        check_resume(resume_argv([f"resume={finished}", *extra]))


def test_a_larger_budget_or_no_target_leaves_something_to_train(finished):
    check_resume(resume_argv([f"resume={finished}", "train.max_env_steps=1600"]))  # returns: training goes on


@pytest.mark.parametrize(("override", "changed"), [
    ("env=pendulum", "env.id (CartPole-v1 → Pendulum-v1)"),
    ("algo=reinforce_baseline", "algo.name (reinforce → reinforce_baseline)"),
    ("optimizer.lr=0.1", "optimizer.lr (0.005 → 0.1)"),
    ("train.num_seeds=2", "train.num_seeds (1 → 2)"),
    ("loss=cross_entropy", "loss.name (log_prob → cross_entropy)"),
])
def test_resume_that_changes_what_was_trained_is_refused(finished, override, changed):
    with pytest.raises(ConfigError) as exc:
        check_resume(resume_argv([f"resume={finished}", override, "train.max_env_steps=5000"]))
    line = str(exc.value)
    assert "\n" not in line and line.startswith(f"{override} is not allowed") and changed in line, line
    assert "train.max_env_steps" in line and "logger" in line and "device" in line  # what a resume may change


def test_refused_resume_is_one_line_exit_2_and_every_byte_unchanged(finished):
    before = folder_bytes(finished)
    out = cli("rlab-train", f"resume={finished}", "env=pendulum", "train.max_env_steps=5000", cwd=finished.parent)
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
    assert lines[0].startswith("error: env=pendulum is not allowed") and "Traceback" not in out.stderr
    assert folder_bytes(finished) == before


def test_extending_the_budget_continues_the_run_as_if_it_had_never_stopped(tmp_path):
    short, straight = tmp_path / "short", tmp_path / "straight"
    assert cli("rlab-train", *TINY, f"hydra.run.dir={short}", cwd=tmp_path).returncode == 0
    first_rows = (short / "episodes.csv").read_text()
    metrics = (short / "csv" / "metrics.csv").read_text()
    out = cli("rlab-train", f"resume={short}", "train.max_env_steps=3000", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert cli("rlab-train", *TINY, "train.max_env_steps=3000", f"hydra.run.dir={straight}",
               cwd=tmp_path).returncode == 0
    extended = (short / "episodes.csv").read_text()
    assert extended.startswith(first_rows) and len(extended) > len(first_rows)
    assert extended == (straight / "episodes.csv").read_text()  # bit for bit: RNG, ledger and θ resumed
    assert (short / "csv" / "metrics.1.csv").read_text() == metrics  # the CSV logger's earlier rows kept
