"""Faults and bad input: one clear line, a non-zero exit, and nothing already written lost.

Every row of docs/reliability.md points at a test here (or in test_config.py).
"""

import csv
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import BIN, cli, train_in_process

# --------------------------------------------------------------------------- bad input
BAD = [
    ("algo.foo=1", "algo.foo"),                           # unknown key
    ("algo.gamma=abc", "algo.gamma"),                     # wrong type
    ("seed=-1", "seed"),                                  # out of range
    ("algo.episodes_per_update=0", "algo.episodes_per_update"),
    ("train.num_seeds=0", "train.num_seeds"),
    ("algo.entropy_coef=-0.5", "algo.entropy_coef"),
    ("train.window=0", "train.window"),
    ("train.target_return=600", "train.target_return"),   # CartPole can give at most 500
    ("env.vectorization=fast", "env.vectorization"),
    ("logger.mode=sometimes", "logger.mode"),
    ("policy.min_std=0", "policy.min_std"),
    ("env=pendulum policy=preferences", "policy"),        # a Discrete-only option on a Box env
    ("loss=update_rule", "optimizer"),                    # the literal rule is plain SGD
    ("loss=update_rule optimizer=sgd optimizer.momentum=0.9", "optimizer"),
    ("train.async_agents=maybe", "train.async_agents"),
    ("train.async_agents=true", "train.async_agents"),    # Adam would move the agents that wait
    ("policy=preferences env=short_corridor policy.min_prob=0.6", "policy.min_prob"),
    ("algo=nope", "algo"),
    ("resume=/nonexistent/run", "resume"),
    ("hydra.run.dir=/etc/hostname/run", "hydra.run.dir"),  # cannot make the run folder
]


@pytest.mark.parametrize("overrides,key", BAD)
def test_bad_input_one_line_exit_2_nothing_made(tmp_path, overrides, key):
    out = cli("rlab-train", *overrides.split(), cwd=tmp_path)
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}=") and "allowed" in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not any(tmp_path.iterdir()), "a run folder was made for a run that never started"


# --------------------------------------------------------------------------- kill and resume
def _rows(run_dir: Path) -> list[list[str]]:
    with open(run_dir / "episodes.csv", newline="") as fh:
        return list(csv.reader(fh))


def _wait_for_rows(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    path, end = run_dir / "episodes.csv", time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if path.exists() and sum(1 for _ in open(path)) > n:
            return
        time.sleep(0.05)


def test_sigkill_three_times_then_resume_gives_the_uninterrupted_run(tmp_path):
    args = ["train.max_episodes=320", "train.target_return=null", "train.checkpoint_every_updates=2",
            "train.progress=false", "logger=wandb"]
    ref = cli("rlab-train", *args, "hydra.run.dir=ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-2000:]
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline"}
    rng = random.Random(0)
    cmd = [str(BIN / "rlab-train"), *args, f"hydra.run.dir={run_dir}"]
    for attempt in range(3):
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_rows(run_dir, rng.randint(20, 100) + 100 * attempt, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cmd = [str(BIN / "rlab-train"), f"resume={run_dir}"]
    final = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    rows = _rows(run_dir)
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 321))  # 1…N, no gap, no repeat
    assert rows == _rows(tmp_path / "ref")  # and exactly what the uninterrupted run wrote
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["episodes"] == 320
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(ids) == 1, f"several W&B runs: {ids}"  # one W&B run (resumed with the same id)


def test_sigkill_then_resume_with_asynchronous_agents(tmp_path):
    """Agents that do not wait: a checkpoint keeps each one at the start of its round in flight."""
    args = ["experiment=sutton_barto_fig13_1", "loss.sequential=false", "train.num_seeds=3",
            "train.max_episodes=400", "train.checkpoint_every_updates=5", "train.progress=false", "logger=none"]
    ref = cli("rlab-train", *args, "hydra.run.dir=ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-2000:]
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([str(BIN / "rlab-train"), *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(run_dir, 500, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-run, not after it finished
    final = cli("rlab-train", f"resume={run_dir}", cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-2000:]

    def per_seed(path):
        return sorted(_rows(path)[1:], key=lambda r: (int(r[4]), int(r[0])))

    # rows of different agents may interleave differently; each agent's own rows are identical
    assert per_seed(run_dir) == per_seed(tmp_path / "ref") and len(per_seed(run_dir)) == 1200


def test_sigterm_stops_cleanly_and_resume_finishes(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([str(BIN / "rlab-train"), "train.max_episodes=3000", "train.target_return=null",
                             "logger=wandb", f"hydra.run.dir={run_dir}"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "WANDB_MODE": "offline"})
    _wait_for_rows(run_dir, 40, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "resume=" in err and "Traceback" not in err
    assert "status: interrupted (SIGTERM received)" in out and "budget spent" not in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["episodes"] < 3000
    assert summary["stop_reason"] == "SIGTERM received"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    from test_train_e2e import wandb_records

    assert "exit" in {r.get("type") for r in wandb_records(summary["wandb_run_dir"])}  # W&B run finished
    out = cli("rlab-train", f"resume={run_dir}", "train.max_episodes=400", cwd=tmp_path)  # a new, shorter budget
    assert out.returncode == 0, out.stderr[-2000:]
    n = max(400, summary["episodes"])
    assert [int(r[0]) for r in _rows(run_dir)[1:]] == list(range(1, len(_rows(run_dir))))
    assert len(_rows(run_dir)) - 1 >= n


def test_corrupt_checkpoint_on_resume_is_one_line(tmp_path, tiny):
    run_dir, _ = train_in_process(tmp_path, tiny + ["logger=none"])
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    before = (run_dir / "episodes.csv").read_text()
    out = cli("rlab-train", f"resume={run_dir}", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: resume=") and "corrupt" in out.stderr
    assert (run_dir / "episodes.csv").read_text() == before  # nothing lost


# --------------------------------------------------------------------------- numerical guards
class NanRewardEnv(gym.Env):
    """CartPole-like observations; the reward turns NaN after a few episodes."""

    observation_space = gym.spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)
    episodes = 0

    def __init__(self, render_mode=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        NanRewardEnv.episodes += 1
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float("nan") if NanRewardEnv.episodes > 12 else 1.0
        return np.zeros(2, dtype=np.float32), reward, self.t >= 5, False, {}


if "NanReward-v0" not in gym.registry:
    gym.register("NanReward-v0", entry_point=NanRewardEnv)


def test_non_finite_loss_stops_with_a_hint_and_keeps_the_good_checkpoint(tmp_path):
    from reinforce_lab.numerics import NonFiniteError

    NanRewardEnv.episodes = 0
    with pytest.raises(NonFiniteError, match="hint"):
        train_in_process(tmp_path, ["env.id=NanReward-v0", "env.num_envs=1", "algo.episodes_per_update=4",
                                    "train.target_return=null", "logger=wandb", "env.vectorization=sync"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["error"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    from test_train_e2e import wandb_records

    records = wandb_records(summary["wandb_run_dir"])
    exit_rec = next(r for r in records if r.get("type") == "exit")
    assert exit_rec["exit"].get("exit_code") == 1  # the W&B run is marked failed


# --------------------------------------------------------------------------- outputs
def test_full_disk_on_checkpoint_write_is_a_clear_failure(tmp_path, tiny, monkeypatch):
    import pytorch_lightning as pl

    def no_space(self, path, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", no_space)
    from reinforce_lab.checkpointing import CheckpointError

    with pytest.raises(CheckpointError, match="No space left on device"):
        train_in_process(tmp_path, tiny + ["logger=none", "train.checkpoint_every_updates=1"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left" in summary["error"]
    assert (tmp_path / "run" / "episodes.csv").stat().st_size > 0  # what was recorded is kept


# --------------------------------------------------------------------------- W&B faults
def test_dead_wandb_server_falls_back_to_offline_in_bounded_time(tmp_path):
    t0 = time.time()
    out = subprocess.run([str(BIN / "rlab-train"), "train.max_env_steps=300", "env.num_envs=2",
                          "algo.episodes_per_update=2", "logger.init_timeout=2", "hydra.run.dir=run"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240,
                         env={**os.environ, "WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40,
                              "WANDB_BASE_URL": "http://127.0.0.1:9"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "continuing offline" in out.stderr and time.time() - t0 < 200
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and "offline-run-" in summary["wandb_run_dir"]
    assert (Path(summary["wandb_run_dir"]) / f"run-{Path(summary['wandb_run_dir']).name.rsplit('-', 1)[-1]}.wandb").exists()


# --------------------------------------------------------------------------- secrets
def test_planted_api_keys_never_reach_any_file(tmp_path):
    env_key, cfg_key = "plantedkey" + "7" * 30, "plantedtoken123456"
    out = subprocess.run([str(BIN / "rlab-train"), "train.max_env_steps=300", "env.num_envs=2",
                          "algo.episodes_per_update=2", f"+train.api_token={cfg_key}", "hydra.run.dir=run"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240,
                         env={**os.environ, "WANDB_MODE": "offline", "WANDB_API_KEY": env_key,
                              "MY_SERVICE_TOKEN": "anothersecret99"})
    assert out.returncode == 0, out.stderr[-2000:]
    leaks = []
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{path.relative_to(tmp_path)}: {name}" for name, s in
                      (("WANDB_API_KEY", env_key), ("config token", cfg_key), ("env token", "anothersecret99"))
                      if s.encode() in data]
    assert not leaks, leaks
    assert env_key not in out.stdout + out.stderr and cfg_key not in out.stdout + out.stderr
    assert "***" in (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text()


def test_resuming_a_checkpoint_of_the_format_before_the_ledger_is_one_line(tmp_path, tiny):
    run_dir, _ = train_in_process(tmp_path, tiny + ["logger=none"])
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["rlab"] = {k: v for k, v in state["rlab"].items() if k != "ledger"}  # the older layout
    torch.save(state, ckpt)
    before = (run_dir / "episodes.csv").read_text()
    out = cli("rlab-train", f"resume={run_dir}", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: resume=") and "older" in out.stderr
    assert "Traceback" not in out.stderr and (run_dir / "episodes.csv").read_text() == before
