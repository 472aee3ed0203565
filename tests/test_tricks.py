"""Every process trick (src/reinforce_lab/tricks/) has an off switch, and the switch really switches.

Each test sets the switches itself, so the file means the same in CI's default pass and in its
``RLAB_TRICKS=off`` pass.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_joblib_launcher import _core, joblib_launcher
from hydra_plugins.rlab_launchers.fork_joblib import ForkJoblibLauncher, workers_for
from omegaconf import OmegaConf

from reinforce_lab import tricks
from reinforce_lab.policies import make_policy
from reinforce_lab.tricks import argv_redaction, forked_workers, module_call, wandb_orphans


@pytest.fixture
def switches(monkeypatch):
    """Set ``RLAB_TRICKS``/``RLAB_TRICKS_OFF`` for one test (both unset first)."""
    monkeypatch.delenv("RLAB_TRICKS", raising=False)
    monkeypatch.delenv("RLAB_TRICKS_OFF", raising=False)

    def set_(all_: str | None = None, some: str | None = None) -> None:
        for name, value in (("RLAB_TRICKS", all_), ("RLAB_TRICKS_OFF", some)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_


def clean_env(**switches: str) -> dict[str, str]:
    """The environment without trick switches, plus ``switches``."""
    env = {k: v for k, v in os.environ.items() if k not in ("RLAB_TRICKS", "RLAB_TRICKS_OFF")}
    return {**env, **switches}


# --------------------------------------------------------------------------- the switches
def test_all_on_by_default_all_off_or_some_off(switches):
    assert tricks.switched_off() == frozenset()
    assert all(tricks.enabled(name) for name in tricks.TRICKS)
    switches(all_="off")
    assert tricks.switched_off() == frozenset(tricks.TRICKS)
    switches(all_="on", some="fast_exit, module_call")
    assert tricks.switched_off() == {"fast_exit", "module_call"}
    assert tricks.enabled("forked_workers") and not tricks.enabled("fast_exit")


@pytest.mark.parametrize(("all_", "some", "named"), [
    ("no", None, "RLAB_TRICKS='no': allowed values are 'on' and 'off'"),
    (None, "fast_exit,fastexit", "RLAB_TRICKS_OFF: unknown trick 'fastexit'; allowed: fast_exit, forked_workers"),
])
def test_a_bad_switch_names_the_variable_and_the_allowed_values(switches, all_, some, named):
    switches(all_=all_, some=some)
    with pytest.raises(ValueError, match="^" + re.escape(named)):
        tricks.enabled("fast_exit")
    with pytest.raises(ValueError, match="unknown trick 'nope'"):
        tricks.enabled("nope")


# --------------------------------------------------------------------------- fast_exit
def run_console_main(body: str, tmp_path: Path, **switches: str) -> subprocess.CompletedProcess:
    """Run ``body`` as ``main`` through ``run_and_exit`` with markers for ``os._exit`` and for teardown."""
    script = textwrap.dedent(f"""
        import os
        out = {str(tmp_path)!r}
        real_exit = os._exit
        def spy(code):
            open(out + "/os_exit", "w").write(str(code))
            real_exit(code)
        os._exit = spy
        class Teardown:  # collected only by the interpreter's own teardown
            def __del__(self, path=out + "/teardown", open=open):
                with open(path, "w") as f:
                    f.write("ran")
        marker = Teardown()
        from reinforce_lab.cli import run_and_exit
        def main():
            {body}
        run_and_exit(main)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=clean_env(**switches))


@pytest.mark.parametrize(("switch", "fast"), [({}, True), ({"RLAB_TRICKS": "off"}, False),
                                              ({"RLAB_TRICKS_OFF": "fast_exit"}, False),
                                              ({"RLAB_TRICKS_OFF": "module_call"}, True)])
@pytest.mark.parametrize(("body", "status"), [("print('done')", 0), ("raise SystemExit(3)", 3)])
def test_fast_exit_skips_the_teardown_only_when_on(tmp_path, switch, fast, body, status):
    proc = run_console_main(body, tmp_path, **switch)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == ("done\n" if status == 0 else "")
    assert (tmp_path / "os_exit").exists() is fast
    assert (tmp_path / "teardown").exists() is not fast


def test_a_bad_switch_stops_a_console_script_with_one_line(tmp_path):
    proc = run_console_main("print('ran')", tmp_path, RLAB_TRICKS_OFF="everything")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: RLAB_TRICKS_OFF: unknown trick 'everything'; allowed: fast_exit,")
    assert proc.stderr.count("\n") == 1


# --------------------------------------------------------------------------- forked_workers
def test_launcher_falls_back_to_the_stock_loky_launcher(switches, monkeypatch):
    seen = []
    # The class as the module holds it now: Hydra's plugin scan (in other tests) re-executes the module.
    monkeypatch.setattr(joblib_launcher.JoblibLauncher, "launch",
                        lambda self, overrides, idx: seen.append(dict(self.joblib)) or ["stock"])
    monkeypatch.setattr(forked_workers, "launch", lambda launcher, overrides, idx, workers: ["forked", workers])
    launcher = ForkJoblibLauncher(n_jobs=-1, backend="multiprocessing", prefer="processes")
    jobs = [["seed=0"], ["seed=1"], ["seed=2"]]
    assert launcher.launch(jobs, 0) == ["forked", workers_for(3, -1)]
    for switch in ({"all_": "off"}, {"some": "forked_workers"}):
        switches(**switch)
        assert launcher.launch(jobs, 0) == ["stock"]
    switches()
    launcher.joblib["backend"] = "loky"
    assert launcher.launch(jobs, 0) == ["stock"]
    # The stock launcher saw our worker count; the config is as it was after each launch.
    assert [s["n_jobs"] for s in seen] == [workers_for(3, -1)] * 3
    assert launcher.joblib == {"n_jobs": -1, "backend": "loky", "prefer": "processes"}


def fake_execute_job(idx, overrides, hydra_context, config, task_function, singleton_state):
    """Stands in for Hydra's ``execute_job``: runs ``task_function`` (a closure: it cannot be pickled)."""
    return JobReturn(overrides=list(overrides), cfg=OmegaConf.create({"idx": idx}),
                     hydra_cfg=OmegaConf.create({}), working_dir=str(os.getpid()),
                     _return_value=task_function(idx), status=JobStatus.COMPLETED)


def test_forked_jobs_run_in_their_own_processes_at_most_n_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(_core, "execute_job", fake_execute_job)
    running = tmp_path / "running"
    running.mkdir()

    def task(idx):  # records how many jobs run at once
        (running / str(idx)).touch()
        at_once = len(list(running.iterdir()))
        time.sleep(0.2)
        (running / str(idx)).unlink()
        return idx * 10, at_once

    jobs = [(idx, [f"seed={idx}"], None, None, task, {}) for idx in range(5)]
    results = forked_workers.run_forked(jobs, workers=2)
    assert [r.return_value[0] for r in results] == [0, 10, 20, 30, 40]  # in job order
    assert max(r.return_value[1] for r in results) <= 2
    pids = {r.working_dir for r in results}
    assert len(pids) == 5 and str(os.getpid()) not in pids  # a fresh fork per job


def test_a_forked_job_that_raises_or_dies_stops_the_launch(monkeypatch):
    monkeypatch.setattr(_core, "execute_job", fake_execute_job)

    def task(idx):
        if idx == 1:
            raise KeyError("broken config")
        if idx == 2:
            os._exit(7)
        return idx

    with pytest.raises(KeyError, match="broken config"):
        forked_workers.run_forked([(i, [], None, None, task, {}) for i in range(2)], workers=1)
    with pytest.raises(RuntimeError, match=r"job #2 ended \(exit code 7\) without returning a result"):
        forked_workers.run_forked([(i, [], None, None, task, {}) for i in (0, 2)], workers=2)


# --------------------------------------------------------------------------- wandb_orphans
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("on", [True, False])
def test_orphaned_wandb_helper_is_stopped_only_when_on(switches, on):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer exists: the helper's parent, killed
    helper = subprocess.Popen(["wandb-core", "-c", "import time; time.sleep(60)", "--pid", str(gone.pid)],
                              executable=sys.executable)
    try:
        time.sleep(0.5)  # until its command line is in /proc
        switches(some=None if on else "wandb_orphans")
        stopped = wandb_orphans.stop_orphaned_wandb_services()
        if on:
            assert stopped >= 1 and helper.wait(timeout=10) == -signal.SIGTERM
        else:
            assert stopped == 0 and helper.poll() is None
    finally:
        helper.kill()
        helper.wait()


# --------------------------------------------------------------------------- argv_redaction
def test_argv_is_masked_while_wandb_starts_only_when_on(switches, monkeypatch):
    argv = ["rlab-train", "+train.api_token=plantedtoken123456", "seed=1"]
    monkeypatch.setattr(sys, "argv", list(argv))
    with argv_redaction.redacted_argv(["plantedtoken123456"]) as settings:
        assert sys.argv == ["rlab-train", "+train.api_token=***", "seed=1"] and settings == {}
    assert sys.argv == argv
    switches(all_="off")
    with argv_redaction.redacted_argv(["plantedtoken123456"]) as settings:
        assert sys.argv == argv and settings == {"x_disable_meta": True}  # W&B records no command line
    with argv_redaction.redacted_argv(["not-on-the-command-line"]) as settings:
        assert settings == {}  # nothing to hide: W&B keeps its metadata
    assert sys.argv == argv


# --------------------------------------------------------------------------- module_call
@pytest.mark.parametrize("on", [True, False])
def test_policy_forward_skips_module_hooks_only_when_on(monkeypatch, on):
    monkeypatch.setattr(module_call, "ON", on)
    torch.manual_seed(0)
    policy = make_policy(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    obs = torch.randn(1, 8, 4)
    reference = policy.net(obs)  # the normal module call
    calls = []
    policy.net[0].register_forward_hook(lambda module, args, out: calls.append(out.shape))
    assert torch.equal(policy.logits(obs), reference)  # the same numbers either way
    assert len(calls) == (0 if on else 1)


@pytest.mark.parametrize(("switch", "on"), [({}, True), ({"RLAB_TRICKS": "off"}, False),
                                            ({"RLAB_TRICKS_OFF": "module_call"}, False)])
def test_module_call_reads_its_switch_when_imported(switch, on):
    out = subprocess.run([sys.executable, "-c", "from reinforce_lab.tricks import module_call; print(module_call.ON)"],
                         capture_output=True, text=True, timeout=120, env=clean_env(**switch))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(on)


# --------------------------------------------------------------------------- wandb_anonymous
@pytest.mark.parametrize("on", [True, False])
def test_lightnings_anonymous_argument_is_dropped_only_when_on(switches, on):
    from pytorch_lightning.loggers import WandbLogger

    from reinforce_lab.tricks import wandb_anonymous

    logger = WandbLogger(mode="disabled")
    assert "anonymous" in logger._wandb_init  # what Lightning passes (the reason for the trick)
    switches(some=None if on else "wandb_anonymous")
    wandb_anonymous.drop_anonymous(logger)
    assert ("anonymous" in logger._wandb_init) is not on
