"""A W&B server that dies mid-run costs a bounded wait, and nothing the run wrote is lost.

Issue #13 item 8: wandb 0.31's ``finish()`` kept retrying for minutes against a server that had
gone away. Now the finish gives up after ``WANDB_FINISH_TIMEOUT`` seconds (default 30,
:data:`reinforce_lab.wandb_run.FINISH_TIMEOUT_S`), says how to upload the run later, and the
run's local ``.wandb`` log holds every history row and its exit record.

The online run talks to :class:`fake_wandb_server.FakeWandbServer` on 127.0.0.1 only, with a
fake API key.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN
from fake_wandb_server import FakeWandbServer
from reinforce_lab.run_summary import RunSummary
from reinforce_lab.wandb_run import FINISH_TIMEOUT_S, WandbRun, finish_settings

FAKE_KEY = "x" * 40
DEADLINE_S = 60  # the promise: a run ends within this long of its last update


def _rows(csv: Path) -> int:
    return csv.read_text().count("\n") if csv.exists() else 0


def _kill_mid_training(server: FakeWandbServer, proc: subprocess.Popen, csv: Path) -> float:
    """Kill the server once the run is online and training (episode rows on disk); returns the time."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if server.file_stream_seen.is_set() and _rows(csv) >= 3:
            server.kill()
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"the run never got online and training (exit {proc.poll()}): {server.requests}")


def _records(run_dir: Path) -> list[dict]:
    """The records of the run's ``.wandb`` transaction log, read with W&B's own public CLI."""
    out = subprocess.run([str(BIN / "wandb"), "leet", "inspect", "--json", str(run_dir)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_wandb_server_dying_mid_run_costs_a_bounded_wait_and_keeps_the_run_locally(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_FINISH_TIMEOUT"}  # the shipped default
    with FakeWandbServer() as server:
        env.update(server.env(), WANDB_SILENT="true")
        with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
            proc = subprocess.Popen(
                [str(BIN / "rlab-train"), "train.max_env_steps=8000", "env.num_envs=2", "algo.episodes_per_update=2",
                 "logger.init_timeout=60", "hydra.run.dir=run"], cwd=tmp_path, env=env, stdout=out, stderr=err)
            try:
                killed_at = _kill_mid_training(server, proc, tmp_path / "run" / "episodes.csv")
                rc = proc.wait(timeout=150)
            finally:
                if proc.poll() is None:
                    proc.kill()
        ended_at = time.time()
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert rc == 0, stderr[-2000:]
    csv = tmp_path / "run" / "episodes.csv"
    last_update = csv.stat().st_mtime
    assert last_update > killed_at, "the server died after training had ended"
    assert ended_at - last_update < DEADLINE_S, f"ended {ended_at - last_update:.1f} s after the last update"

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    run_dir = Path(summary["wandb_run_dir"])
    assert summary["status"] == "finished" and summary["env_steps"] >= 8000
    assert run_dir.name.startswith("run-") and "continuing offline" not in stderr  # it was online
    assert f"[rlab] W&B server unreachable at finish; run files are complete locally: wandb sync {run_dir}" in stderr
    assert FAKE_KEY not in stdout + stderr

    records = _records(run_dir)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    exits = [r["exit"] for r in records if r["type"] == "exit"]
    assert history and max(h["env_step"] for h in history) == summary["env_steps"]  # every update, the last too
    assert exits and exits[-1].get("exit_code", 0) == 0
    assert (run_dir / "files" / "config.yaml").exists()


def test_finish_timeout_defaults_to_a_bounded_wait_and_follows_wandb_finish_timeout(monkeypatch):
    monkeypatch.delenv("WANDB_FINISH_TIMEOUT", raising=False)
    assert finish_settings() == {"finish_timeout": FINISH_TIMEOUT_S, "finish_timeout_raises": True}
    assert 0 < FINISH_TIMEOUT_S <= DEADLINE_S / 2  # leaves time for the teardown after it
    monkeypatch.setenv("WANDB_FINISH_TIMEOUT", "7.5")
    assert finish_settings()["finish_timeout"] == 7.5


class _TimingOutRun:
    """A W&B run whose finish gives up as wandb's does when ``finish_timeout_raises`` is set."""

    dir = "/runs/wandb/run-20260101_000000-abc123/files"

    def __init__(self) -> None:
        self.summary: dict = {}
        self.exit_code: int | None = None

    def finish(self, exit_code: int) -> None:
        self.exit_code = exit_code
        raise TimeoutError("Timed out finishing run.")


@pytest.mark.parametrize("status, exit_code", [("finished", 0), ("failed", 1)])
def test_a_finish_that_times_out_prints_the_sync_line_and_does_not_raise(capsys, status, exit_code):
    run = _TimingOutRun()
    summary = RunSummary(status=status, final_return=None, final_window=0, episodes=0, env_steps=0, wall_s=0.0,
                         env_steps_per_s=0.0, solved_at_episode=None, seed=0, run_dir="run")
    WandbRun(None, run, "online").finish(summary)
    err = capsys.readouterr().err
    assert err.strip() == ("[rlab] W&B server unreachable at finish; run files are complete locally: "
                           "wandb sync /runs/wandb/run-20260101_000000-abc123")
    assert run.exit_code == exit_code and run.summary["status"] == status
