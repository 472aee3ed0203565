"""``rlab-eval`` on bad input: one line, exit code 2, no traceback, nothing written (issue #13 item 4).

One tiny CartPole checkpoint is trained per module; the bad files (text, empty, truncated,
plain torch objects, a Lightning checkpoint without rlab-train's run config) are made from it.
Every case runs :func:`reinforce_lab.eval.main` in-process (torch is loaded once: fast); the
``test_console_script_*`` tests run a representative few through the installed ``rlab-eval``
(exit code and no traceback as a user sees them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import cli, train_in_process
from reinforce_lab.errors import ConfigError

TINY = ["train.max_env_steps=300", "env.num_envs=2", "algo.episodes_per_update=2", "logger=none"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real checkpoint (``good``), its run folder (``run``) and files that are not rlab checkpoints."""
    root = tmp_path_factory.mktemp("eval_errors")
    run_dir, summary = train_in_process(root, TINY)
    assert summary["status"] == "finished"
    good = run_dir / "checkpoints" / "last.ckpt"
    bad = root / "bad"
    bad.mkdir()
    (bad / "text.ckpt").write_text("not a checkpoint\n")
    (bad / "empty.ckpt").write_bytes(b"")
    data = good.read_bytes()
    (bad / "half.ckpt").write_bytes(data[: len(data) // 2])
    torch.save({"weights": torch.zeros(3)}, bad / "dict.pt")
    torch.save(torch.zeros(3), bad / "tensor.pt")
    state = torch.load(good, map_location="cpu", weights_only=False)
    del state["rlab"]
    torch.save(state, bad / "lightning.ckpt")
    (bad / "empty_dir").mkdir()
    return {"good": good, "run": run_dir, "bad": bad}


@pytest.fixture
def rlab_eval(monkeypatch, capsys, tmp_path):
    """``rlab-eval ARGS`` in-process, in the empty folder ``tmp_path``: returns what the process would."""
    from reinforce_lab.eval import main

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["rlab-eval", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)

    return run


def _one_line_exit_2(proc, cwd: Path, run_dir: Path) -> str:
    """The error line; asserts exit 2, no traceback, and no eval.json / videos anywhere."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and " is not allowed; allowed: " in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(cwd.iterdir()) == [], "nothing may be written where rlab-eval runs"
    assert not (run_dir / "eval.json").exists() and not (run_dir / "videos").exists()
    return lines[0]


def test_console_script_no_arguments_names_ckpt(tmp_path):
    out = cli("rlab-eval", cwd=tmp_path)
    line = _one_line_exit_2(out, tmp_path, tmp_path)
    assert line.startswith("error: ckpt=??? is not allowed; allowed: a checkpoint written by rlab-train")
    assert "ckpt=RUN/checkpoints/last.ckpt" in line


@pytest.mark.parametrize("name, expected", [
    ("nowhere.ckpt", "nowhere.ckpt does not exist"),
    ("empty_dir", "is a folder without checkpoints/last.ckpt"),
    ("text.ckpt", "text.ckpt is not a readable checkpoint (truncated, corrupt or another format: UnpicklingError)"),
    ("empty.ckpt", "empty.ckpt is empty"),
    ("half.ckpt", "half.ckpt is not a readable checkpoint (truncated, corrupt or another format:"),
    ("dict.pt", "dict.pt is a torch file (dict) without rlab-train's run config"),
    ("tensor.pt", "tensor.pt is a torch file (Tensor) without rlab-train's run config"),
    ("lightning.ckpt", "lightning.ckpt is a Lightning checkpoint without rlab-train's run config"),
])
def test_not_a_checkpoint_is_one_line(ckpts, rlab_eval, tmp_path, name, expected):
    path = ckpts["bad"] / name
    out = rlab_eval(f"ckpt={path}", "video=true")
    line = _one_line_exit_2(out, tmp_path, ckpts["run"])
    assert line.startswith(f"error: ckpt={path} is not allowed; allowed: a checkpoint written by rlab-train")
    assert expected in line
    assert not (ckpts["bad"] / "eval.json").exists() and not (ckpts["bad"] / "videos").exists()


@pytest.mark.parametrize("override, shown", [
    ("+env.id=Acrobot-v1", "env.id=Acrobot-v1"),
    ("env.id=Acrobot-v1", "env.id=Acrobot-v1"),
    ("++env.id=Acrobot-v1", "env.id=Acrobot-v1"),
    ("+env=acrobot", "env.id=Acrobot-v1"),
    ("env=pendulum", "env.id=Pendulum-v1"),
])
def test_env_other_than_the_checkpoints_is_refused(ckpts, rlab_eval, tmp_path, override, shown):
    out = rlab_eval(f"ckpt={ckpts['good']}", override, "video=true")
    line = _one_line_exit_2(out, tmp_path, ckpts["run"])
    assert line.startswith(f"error: {shown} is not allowed; allowed: CartPole-v1, the env this checkpoint was "
                           "trained on")


@pytest.mark.parametrize("args, expected", [
    (["env=nope"], "error: env=nope is not allowed; allowed: acrobot, cartpole,"),
    (["foo=1"], "error: foo=1 is not allowed; allowed: one of rlab-eval's keys: ckpt, episodes,"),
    (["+foo=1"], "error: foo=1 is not allowed; allowed: one of rlab-eval's keys:"),
    (["~foo"], "error: foo= is not allowed; allowed: one of rlab-eval's keys:"),
    (["env.num_envs=3"], "error: env.num_envs=3 is not allowed; allowed: one of rlab-eval's keys:"),
    (["episodes=abc"], "error: episodes=abc is not allowed; allowed: an integer ≥ 1"),
    (["episodes=0"], "error: episodes=0 is not allowed; allowed: an integer ≥ 1"),
    (["episodes=1,2"], "error: episodes=1,2 is not allowed; allowed: one value (or add -m"),
    (["episodes=[1"], "error: episodes=[1 is not allowed; allowed: KEY=VALUE in Hydra's override syntax"),
    (["seed=-1"], "error: seed=-1 is not allowed; allowed: an integer ≥ 0"),
    (["agent=5"], "error: agent=5 is not allowed; allowed: 0 (this checkpoint has one agent)"),
    (["greedy=maybe"], "error: greedy=maybe is not allowed; allowed: true or false"),
    (["video=1"], "error: video=1 is not allowed; allowed: true or false"),
])
def test_bad_values_are_one_line(ckpts, rlab_eval, tmp_path, args, expected):
    out = rlab_eval(f"ckpt={ckpts['good']}", *args)
    assert _one_line_exit_2(out, tmp_path, ckpts["run"]).startswith(expected)


def test_out_that_cannot_be_a_folder_is_refused_before_evaluating(ckpts, rlab_eval, tmp_path):
    target = ckpts["bad"] / "text.ckpt" / "sub"
    out = rlab_eval(f"ckpt={ckpts['good']}", f"out={target}")
    line = _one_line_exit_2(out, tmp_path, ckpts["run"])
    assert line == (f"error: out={target} is not allowed; allowed: a writable folder for eval.json "
                    f"({ckpts['bad'] / 'text.ckpt'} is not a folder)")


@pytest.mark.parametrize("args", [
    ["env=cartpole"],
    ["+env.id=CartPole-v1", "greedy=true"],
])
def test_the_checkpoints_own_env_is_accepted(ckpts, tmp_path, args):
    out_dir = tmp_path / "out"
    out = cli("rlab-eval", f"ckpt={ckpts['good']}", *args, "episodes=2", f"out={out_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((out_dir / "eval.json").read_text())
    assert result["env_id"] == "CartPole-v1" and len(result["returns"]) == 2


def test_a_run_folder_is_accepted_as_ckpt(ckpts, tmp_path):
    out_dir = tmp_path / "out"
    out = cli("rlab-eval", f"ckpt={ckpts['run']}", "episodes=1", f"out={out_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((out_dir / "eval.json").read_text())["ckpt"] == str(ckpts["good"])


@pytest.mark.parametrize("args, expected", [
    (["ckpt={bad}/text.ckpt"], "error: ckpt={bad}/text.ckpt is not allowed; allowed: a checkpoint written by"),
    (["ckpt={bad}/lightning.ckpt"], "error: ckpt={bad}/lightning.ckpt is not allowed; allowed: a checkpoint written"),
    (["ckpt={good}", "+env.id=Acrobot-v1"], "error: env.id=Acrobot-v1 is not allowed; allowed: CartPole-v1, the env"),
    (["ckpt={good}", "env=pendulum"], "error: env.id=Pendulum-v1 is not allowed; allowed: CartPole-v1, the env"),
    (["ckpt={good}", "foo=1"], "error: foo=1 is not allowed; allowed: one of rlab-eval's keys"),
    (["ckpt={good}", "episodes=abc"], "error: episodes=abc is not allowed; allowed: an integer ≥ 1"),
])
def test_console_script_bad_input_is_one_line(ckpts, tmp_path, args, expected):
    fill = {"bad": ckpts["bad"], "good": ckpts["good"]}
    out = cli("rlab-eval", *(a.format(**fill) for a in args), "video=true", cwd=tmp_path)
    assert _one_line_exit_2(out, tmp_path, ckpts["run"]).startswith(expected.format(**fill))


def test_eval_argv_rewrites_env_overrides():
    from reinforce_lab.eval_checks import eval_argv

    assert eval_argv(["env=pendulum", "+env=acrobot", "++env=cartpole", "+env.id=X", "++env.id=Y", "env=null"]) == [
        "env.id=Pendulum-v1", "env.id=Acrobot-v1", "env.id=CartPole-v1", "env.id=X", "env.id=Y", "env.id=null"]
    assert eval_argv(["+episodes=3", "ckpt=a=b", "--cfg", "job", "hydra.verbose=true"]) == [
        "episodes=3", "ckpt=a=b", "--cfg", "job", "hydra.verbose=true"]


def test_evaluate_refuses_a_bad_checkpoint_in_process(ckpts):
    from reinforce_lab.eval import evaluate

    with pytest.raises(ConfigError, match="without rlab-train's run config"):
        evaluate(ckpts["bad"] / "lightning.ckpt", episodes=1)
    with pytest.raises(ConfigError, match=r"agent=1 is not allowed"):
        evaluate(ckpts["good"], episodes=1, agent=1)
