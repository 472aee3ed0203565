"""rlab-report on a sweep where jobs were killed, torn or damaged: the rest is reported, each bad run is one line.

A killed job (SIGKILL, OOM killer, SLURM time limit, lost node) leaves no summary.json and
maybe a torn last line in episodes.csv; a full disk or a bad copy leaves empty, truncated or
binary files. The report must aggregate the good runs, list every other one with its
reason (one line on stderr, one in report.md) and never show a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from reinforce_lab import report
from reinforce_lab.run_folder import NO_SUMMARY

RLAB_REPORT = Path(sys.executable).parent / "rlab-report"
OVERRIDES = ["env=cartpole", "loss=log_prob"]
HEADER = "episode,env_step,return,length\n"
# Good runs: window 3 (config.yaml's train.window), final return = mean of the last 3 returns.
GOOD = {"g0": [0, 0, 3, 3, 3], "g1": [0, 1, 2, 4, 6], "g2": [0, 0, 0, 5, 7], "g3": [10, 10, 10, 10, 10]}
ODD_BUT_FINE_RETURNS = [1, 2, 3, 4, 5]  # final 4


def write_run(folder: Path, returns: list[float], seed: int = 0, **summary_extra: object) -> Path:
    """A finished run folder as rlab-train leaves it (summary.json, episodes.csv, .hydra/*.yaml)."""
    (folder / ".hydra").mkdir(parents=True)
    rows = "".join(f"{i},{10 * i},{r},10\r\n" for i, r in enumerate(returns, 1))  # csv.writer ends rows in \r\n
    (folder / "episodes.csv").write_text(HEADER + rows, newline="")
    summary = {"status": "finished", "final_return": float(np.mean(returns[-3:])), "final_window": 3,
               "episodes": len(returns), "env_steps": 10 * len(returns), "wall_s": 0.5, "env_steps_per_s": 100.0,
               "solved_at_episode": None, "target_return": 4, "stop_reason": "max_episodes reached", "seed": seed,
               "env_id": "CartPole-v1", "algo": "reinforce", "loss": "log_prob", "run_dir": str(folder),
               **summary_extra}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in [*OVERRIDES, f"seed={seed}"]))
    (folder / ".hydra" / "config.yaml").write_text(f"seed: {seed}\ntrain:\n  window: 3\n  target_return: 4\n")
    (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      env: cartpole\n")
    return folder


def put(name: str, content: str | bytes) -> Callable[[Path], None]:
    """A damage: replace the run's file ``name`` (relative to the run folder) with ``content``."""
    def damage(folder: Path) -> None:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return damage


def edit_summary(**changes: object) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = json.loads((folder / "summary.json").read_text())
        for key, value in changes.items():
            if value is KeyError:
                del data[key]
            else:
                data[key] = value
        (folder / "summary.json").write_text(json.dumps(data))
    return damage


def remove(*names: str) -> Callable[[Path], None]:
    return lambda folder: [(folder / n).unlink() for n in names] and None


def replace_with_folder(name: str) -> Callable[[Path], None]:
    return lambda folder: ((folder / name).unlink(), (folder / name).mkdir()) and None


def symlink(name: str, target: str) -> Callable[[Path], None]:
    return lambda folder: ((folder / name).unlink(), (folder / name).symlink_to(target)) and None


def fifo(name: str) -> Callable[[Path], None]:
    return lambda folder: ((folder / name).unlink(), os.mkfifo(folder / name)) and None


def only_hydra(folder: Path) -> None:
    (folder / "summary.json").unlink()
    (folder / "episodes.csv").unlink()


def torn_csv(folder: Path) -> None:
    data = (folder / "episodes.csv").read_bytes()
    (folder / "episodes.csv").write_bytes(data[:-4])  # mid-way through the last row


ROWS = HEADER + "1,10,1,10\n2,20,2,10\n"
# name: (damage, what the reason says). Every one of these runs must be left out.
BAD: dict[str, tuple[Callable[[Path], None], str]] = {
    "killed": (remove("summary.json"), NO_SUMMARY),
    "killed_torn_csv": (lambda f: (remove("summary.json")(f), torn_csv(f)) and None, NO_SUMMARY),
    "only_hydra": (only_hydra, NO_SUMMARY),
    "summary_empty": (put("summary.json", ""), "summary.json is empty"),
    "summary_truncated": (lambda f: put("summary.json", (f / "summary.json").read_text()[:57])(f), "torn or malformed"),
    "summary_binary": (put("summary.json", bytes(range(256)) * 4), "not UTF-8"),
    "summary_latin1": (put("summary.json", b'{"status": "finished", "env_id": "Caf\xe9"}'), "not UTF-8"),
    "summary_nul": (put("summary.json", b'{"status": "fin\x00ished"}'), "NUL"),
    "summary_list": (put("summary.json", "[]"), "holds list, not an object"),
    "summary_null": (put("summary.json", "null"), "holds null, not an object"),
    "summary_number": (put("summary.json", "42"), "holds int, not an object"),
    "summary_string": (put("summary.json", '"finished"'), "holds str, not an object"),
    "summary_deep": (put("summary.json", "[" * 100_000), "torn or malformed"),
    "summary_surrogate": (put("summary.json", '{"status": "finished", "env_id": "\\ud800"}'), "malformed"),
    "summary_final_return_str": (edit_summary(final_return="abc"), "final_return is \"abc\""),
    "summary_episodes_null": (edit_summary(episodes=None), "episodes is null"),
    "summary_episodes_nan": (put("summary.json", '{"status": "finished", "episodes": NaN}'), "episodes is null"),
    "summary_status_int": (edit_summary(status=5), "status is 5"),
    "summary_no_status": (edit_summary(status=KeyError), "has no status"),
    "summary_agents_str": (edit_summary(agents="x"), "agents is \"x\""),
    "summary_agents_keys": (edit_summary(agents=[{"seed": 0}]), "agents is"),
    "summary_huge": (lambda f: os.truncate(f / "summary.json", 17 << 20), "summary.json is too large"),
    "summary_folder": (replace_with_folder("summary.json"), "summary.json is a folder"),
    "summary_fifo": (fifo("summary.json"), "not a regular file"),
    "summary_loop": (symlink("summary.json", "summary.json"), "summary.json: cannot read it"),
    "summary_dangling": (symlink("summary.json", "nowhere.json"), "summary.json: cannot read it"),
    "failed": (edit_summary(status="failed", error="RuntimeError: boom\n  second line"), "status `failed`: RuntimeError"),
    "interrupted": (edit_summary(status="interrupted"), "status `interrupted`"),
    "no_csv": (remove("episodes.csv"), "no episodes"),
    "csv_empty": (put("episodes.csv", ""), "no episodes"),
    "csv_header_only": (put("episodes.csv", HEADER), "no episodes"),
    "csv_torn": (torn_csv, "last line torn"),
    "csv_short": (put("episodes.csv", ROWS), "has 2 episodes, summary.json says 5"),
    "csv_no_return": (put("episodes.csv", "episode,env_step,length\n1,10,10\n"), "no column(s) return"),
    "csv_text": (put("episodes.csv", ROWS + "3,30,abc,10\n"), "line 4: return is \"abc\""),
    "csv_nan": (put("episodes.csv", ROWS + "3,30,nan,10\n"), "line 4: return is NaN"),
    "csv_inf": (put("episodes.csv", ROWS + "3,30,inf,10\n"), "line 4: return is Infinity"),
    "csv_missing_field": (put("episodes.csv", ROWS + "3,30\n"), "line 4: return is NaN"),
    "csv_too_many_fields": (put("episodes.csv", ROWS + "3,30,1,10,7,8\n"), "episodes.csv is malformed"),
    "csv_binary": (put("episodes.csv", bytes(range(255, -1, -1)) * 8 + b"\n"), "not UTF-8"),
    "csv_nul": (put("episodes.csv", ROWS.replace("2,20", "2\x00,20") + "\n"), "NUL"),
    "csv_quote": (put("episodes.csv", ROWS + '"3,30,1,10\n'), "episodes.csv is malformed"),
    "csv_seed_junk": (put("episodes.csv", "episode,env_step,return,length,seed\n1,10,1,10,0\n2,20,2,10,x\n"),
                      "line 3: seed is \"x\""),
    "csv_seed_fraction": (put("episodes.csv", "episode,env_step,return,length,seed\n1,10,1,10,0.5\n"), "seed is 0.5, not an integer"),
    "csv_twice": (put("episodes.csv", "episode,env_step,return,return\n1,10,1,10\n"), "episodes.csv"),
    "csv_folder": (replace_with_folder("episodes.csv"), "episodes.csv is a folder"),
    "config_yaml": (put(".hydra/config.yaml", "train: [unclosed\n"), ".hydra/config.yaml is malformed YAML"),
    "config_list": (put(".hydra/config.yaml", "- a\n"), ".hydra/config.yaml is malformed"),
    "config_recursive": (put(".hydra/config.yaml", "a: &x [*x]\n"), ".hydra/config.yaml is malformed"),
    "overrides_yaml": (put(".hydra/overrides.yaml", "- [unclosed\n"), ".hydra/overrides.yaml is malformed YAML"),
    "overrides_dict": (put(".hydra/overrides.yaml", "loss: log_prob\n"), "expected a list of strings"),
    "overrides_string": (put(".hydra/overrides.yaml", "loss=log_prob\n"), "expected a list of strings"),
    "overrides_numbers": (put(".hydra/overrides.yaml", "- 1\n- [a]\n"), "expected a list of strings"),
    "overrides_binary": (put(".hydra/overrides.yaml", b"\xff\xfe\x00garbage"), "not UTF-8"),
    "hydra_yaml": (put(".hydra/hydra.yaml", "hydra: {runtime: [\n"), ".hydra/hydra.yaml is malformed YAML"),
    "hydra_choices": (put(".hydra/hydra.yaml", "hydra:\n  runtime:\n    choices: [a, b]\n"), "hydra.runtime.choices"),
    "hydra_folder": (replace_with_folder(".hydra/hydra.yaml"), ".hydra/hydra.yaml is a folder"),
}
# Damage that leaves everything the report needs: these runs count.
FINE: dict[str, Callable[[Path], None]] = {
    "nan_tokens": edit_summary(),  # rewritten below with NaN / Infinity in float keys
    "csv_extra_columns": put("episodes.csv", "episode,env_step,return,length,note\n"
                             + "".join(f"{i},{10 * i},{r},10,x{i}\n" for i, r in enumerate(ODD_BUT_FINE_RETURNS, 1))),
    "config_date": put(".hydra/config.yaml", "when: 2026-11-21\ntrain:\n  window: 3\n"),
    "no_hydra_yaml": remove(".hydra/hydra.yaml"),
}
ODD_NAMES = {"new\nline": "new\\nline"}  # a newline in a folder name must not make two lines


def nan_tokens(folder: Path) -> None:
    text = (folder / "summary.json").read_text()
    (folder / "summary.json").write_text(text.replace('"final_return": 4.0', '"final_return": NaN')
                                         .replace('"env_steps_per_s": 100.0', '"env_steps_per_s": Infinity'))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A sweep folder: 4 good runs, 4 odd-but-usable ones, one folder per kind of damage, loops and odd names."""
    root = tmp_path / "sweep"
    for seed, (name, returns) in enumerate(GOOD.items()):
        write_run(root / name, returns, seed)
    for i, (name, damage) in enumerate(FINE.items()):
        damage(write_run(root / name, ODD_BUT_FINE_RETURNS, 10 + i))
    nan_tokens(root / "nan_tokens")
    for i, (name, (damage, _)) in enumerate(BAD.items()):
        damage(write_run(root / name, ODD_BUT_FINE_RETURNS, 100 + i))
    remove("summary.json")(write_run(root / "new\nline", [1], 7))
    remove("summary.json")(write_run(Path(os.fsdecode(bytes(root) + b"/bad\xffname")), [1], 8))
    (root / "loop").symlink_to(root)  # a symlink back to the sweep: each folder is still read once
    (root / "self").symlink_to(root / "self")  # a symlink loop
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def bad_labels() -> dict[str, str]:
    """Label each left-out run must have → a piece of its reason."""
    out = {f"sweep/{name}": reason for name, (_, reason) in BAD.items()}
    out.update({"sweep/new\\nline": NO_SUMMARY, "sweep/bad\\xffname": NO_SUMMARY})
    return out


def check_outputs(out: Path, stderr: str) -> None:
    assert "Traceback" not in stderr
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped ")]
    expected = bad_labels()
    assert len(skipped) == len(expected), "\n".join(skipped)
    by_label = {line[len("skipped "):].split(": ", 1)[0]: line.split(": ", 1)[1] for line in skipped}
    for label, reason in expected.items():
        assert reason in by_label.get(label, "<not listed>"), (label, by_label.get(label))
    rows = pd.read_csv(out / "summary.csv")
    assert rows.n_runs.sum() == len(GOOD) + len(FINE)
    (row,) = rows[rows.n_runs > 0].itertuples()
    finals = [np.mean(r[-3:]) for r in GOOD.values()] + [4.0] * len(FINE)
    assert row.final_return_mean == pytest.approx(np.mean(finals))
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"{len(GOOD) + len(FINE)} runs aggregated in 1 group(s); {len(expected)} left out" in md
    left_out = md.split("## Failed runs")[1].split("## Method")[0]
    listed = [line for line in left_out.splitlines() if line.startswith("- `")]
    assert len(listed) == len(expected)
    for label, reason in expected.items():
        assert sum(f"- `{label}` " in line and reason in line for line in listed) == 1, label
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_reports_the_good_runs_and_lists_each_bad_one(corpus: Path, tmp_path: Path):
    out = tmp_path / "report"
    res = subprocess.run([str(RLAB_REPORT), str(corpus), "--out", str(out), "--n-boot", "200"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    check_outputs(out, res.stderr)
    assert "env=cartpole loss=log_prob" in res.stdout


def test_in_process_reports_the_same(corpus: Path, tmp_path: Path, capsys):
    report.main([str(corpus), "--out", str(tmp_path / "report"), "--n-boot", "200"])  # returns: exit status 0
    check_outputs(tmp_path / "report", capsys.readouterr().err)
    runs = report.load_runs([corpus])
    assert all(r.reason is None or "\n" not in r.reason for r in runs)
    # Runs whose experiment is unknown (damaged overrides.yaml) join no group: names of the others are unchanged.
    ungrouped = {r.label for r in runs if not r.grouped}
    assert {f"sweep/overrides_{k}" for k in ("yaml", "dict", "string", "numbers", "binary")} <= ungrouped
    assert list(report.group_runs(runs)) == ["env=cartpole loss=log_prob"]


def test_an_unreadable_file_is_a_reason(tmp_path: Path, monkeypatch):
    # chmod 000 does not stop root: make open() itself fail for the one file.
    write_run(tmp_path / "ok", GOOD["g0"])
    write_run(tmp_path / "locked", GOOD["g1"], 1)
    real_open = open

    def fake_open(file, *args, **kwargs):
        if str(file).endswith(os.path.join("locked", "episodes.csv")):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    real_iterdir = Path.iterdir

    def fake_iterdir(self):
        if self.name == "sealed":
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    (tmp_path / "sealed").mkdir()  # not a run folder, and it cannot be listed: it may hide runs
    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(Path, "iterdir", fake_iterdir)
    runs = {r.label: r for r in report.load_runs([tmp_path])}
    assert runs[f"{tmp_path.name}/locked"].reason == "episodes.csv: cannot read it (Permission denied)"
    assert runs[f"{tmp_path.name}/sealed"].reason == "cannot list this folder (Permission denied)"
    assert runs[f"{tmp_path.name}/ok"].ok and len(runs) == 3


def test_nothing_usable_still_writes_the_report_and_exits_1(tmp_path: Path):
    for name in ("killed", "summary_list", "csv_torn"):
        BAD[name][0](write_run(tmp_path / "sweep" / name, GOOD["g0"]))
    res = subprocess.run([str(RLAB_REPORT), str(tmp_path / "sweep"), "--n-boot", "50"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("error: no usable run: all 3 left out")
    assert all(line.startswith("skipped sweep/") for line in lines[:3])
    md = (tmp_path / "sweep" / "report.md").read_text()
    assert "0 runs aggregated" in md and "No usable run" in md and NO_SUMMARY in md
    assert pd.read_csv(tmp_path / "sweep" / "summary.csv").n_runs.sum() == 0


def test_a_folder_that_only_holds_damage_is_not_a_bad_path(tmp_path: Path):
    # .hydra/ alone makes a run folder (a job killed at start-up), so this is a report, not "no run folders".
    (tmp_path / "job" / ".hydra").mkdir(parents=True)
    res = subprocess.run([str(RLAB_REPORT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"skipped {tmp_path.name}/job: {NO_SUMMARY}" in res.stderr


FILES = ["summary.json", "episodes.csv", ".hydra/overrides.yaml", ".hydra/config.yaml", ".hydra/hydra.yaml"]


def corrupt(folder: Path, rng: random.Random) -> None:
    """One to three random byte-level damages to a run's files: truncate, flip, insert, delete, replace."""
    for _ in range(rng.randint(1, 3)):
        path = folder / rng.choice(FILES)
        if not path.is_file():
            continue
        data = bytearray(path.read_bytes())
        kind = rng.choice(["truncate", "flip", "insert", "delete", "garbage"])
        if kind == "truncate":
            data = data[: rng.randrange(len(data) + 1)]
        elif kind == "flip":
            for _ in range(rng.randint(1, 4)):
                if data:
                    data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        elif kind == "insert":
            at = rng.randrange(len(data) + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            path.unlink()
            continue
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 300)))
        path.write_bytes(bytes(data))


def test_random_byte_damage_never_raises(tmp_path: Path):
    root = tmp_path / "fuzz"
    write_run(root / "good", GOOD["g1"])
    for trial in range(50):
        folder = write_run(root / f"t{trial}", GOOD["g2"], trial + 1)
        corrupt(folder, random.Random(trial))
        for run in report.load_runs([folder]):  # never raises
            assert run.ok or (isinstance(run.reason, str) and "\n" not in run.reason)
    md = report.write_report([root], tmp_path / "out", n_boot=50).read_text()
    assert "runs aggregated" in md
    res = subprocess.run([str(RLAB_REPORT), str(root), "--out", str(tmp_path / "cli"), "--n-boot", "50"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    skipped = [line for line in res.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == sum(not r.ok for r in report.load_runs([root]))
