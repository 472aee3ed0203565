"""Tiny end-to-end runs: files, W&B offline run, determinism, evaluation."""

import csv
import json
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, cli, train_in_process


def read_episodes(run_dir: Path) -> list[dict]:
    with open(run_dir / "episodes.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def wandb_records(wandb_dir: str) -> list[dict]:
    out = subprocess.run([str(BIN / "wandb"), "leet", "inspect", "--json", wandb_dir],
                         capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip().startswith("{")]


def check_run(run_dir: Path, summary: dict, discrete: bool) -> None:
    rows = read_episodes(run_dir)
    assert list(rows[0]) == ["episode", "env_step", "return", "length"]
    assert [int(r["episode"]) for r in rows] == list(range(1, len(rows) + 1))
    steps = [int(r["env_step"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] == summary["env_steps"]
    assert sum(int(r["length"]) for r in rows) == summary["env_steps"]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == "finished" and on_disk["episodes"] == len(rows)
    for key in ("final_return", "episodes", "env_steps", "wall_s", "env_steps_per_s", "solved_at_episode",
                "wandb_run_dir", "status"):
        assert key in on_disk
    last = [float(r["return"]) for r in rows][-100:]
    assert on_disk["final_return"] == pytest.approx(sum(last) / len(last))
    # whole episodes with a per-copy quota throw steps away: how many is reported
    assert on_disk["simulated_env_steps"] >= on_disk["env_steps"] > 0
    assert on_disk["kept_fraction"] == round(on_disk["env_steps"] / on_disk["simulated_env_steps"], 4)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    records = wandb_records(on_disk["wandb_run_dir"])
    history = [r for r in records if r.get("type") == "history"]
    items = [r["history"]["item"] for r in history]
    episode_rows = [i for i in items if "train/episode_return" in i]
    assert len(episode_rows) == len(rows)
    assert [float(i["train/episode_return"]) for i in episode_rows] == [float(r["return"]) for r in rows]
    update_rows = [i for i in items if "train/loss" in i]
    assert update_rows and all("env_step" in i and "train/entropy" in i and "train/grad_norm" in i
                               for i in update_rows)
    run_rec = next(r for r in records if r.get("type") == "run")["run"]
    assert run_rec["project"] == "reinforce-lab" and run_rec["job_type"] == "reinforce"
    assert "exit" in {r.get("type") for r in records}, "the W&B run was not finished"


def test_discrete_tiny_run(tmp_path, tiny):
    run_dir, summary = train_in_process(tmp_path, tiny)
    check_run(run_dir, summary, discrete=True)
    assert summary["env_steps"] >= 600


def test_continuous_tiny_run(tmp_path):
    run_dir, summary = train_in_process(tmp_path, ["env=pendulum", "train.max_env_steps=800", "env.num_envs=2",
                                                   "algo.episodes_per_update=2"])
    check_run(run_dir, summary, discrete=False)
    rows = read_episodes(run_dir)
    assert all(int(r["length"]) == 200 for r in rows)


def test_same_seed_same_episodes_csv(tmp_path, tiny):
    a, _ = train_in_process(tmp_path / "a", tiny + ["logger=none", "seed=7"])
    b, _ = train_in_process(tmp_path / "b", tiny + ["logger=none", "seed=7"])
    c, _ = train_in_process(tmp_path / "c", tiny + ["logger=none", "seed=8"])
    assert (a / "episodes.csv").read_text() == (b / "episodes.csv").read_text()
    assert (a / "episodes.csv").read_text() != (c / "episodes.csv").read_text()


def test_csv_logger(tmp_path, tiny):
    run_dir, summary = train_in_process(tmp_path, tiny + ["logger=csv"])
    assert summary["wandb_run_dir"] is None
    metrics = (run_dir / "csv" / "metrics.csv").read_text()
    assert "train/episode_return" in metrics and "env_step" in metrics


def test_cli_train_pendulum_then_eval_with_video(tmp_path):
    out = cli("rlab-train", "env=pendulum", "train.max_env_steps=1600", "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "wandb leet" in out.stdout and "run folder" in out.stdout
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["env_steps"] >= 1600
    ev = cli("rlab-eval", f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", "episodes=2", "video=true", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "±" in ev.stdout
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["episodes"] == 2 and len(result["returns"]) == 2 and result["lengths"] == [200, 200]
    assert result["videos"] and Path(result["videos"][0]).stat().st_size > 1000


def test_eval_missing_checkpoint_is_one_line(tmp_path):
    out = cli("rlab-eval", "ckpt=nowhere.ckpt", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: ckpt=")
    assert "Traceback" not in out.stderr
