"""rlab-report on hand-made run folders whose statistics are worked out by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforce_lab import report

RLAB_REPORT = Path(sys.executable).parent / "rlab-report"

# window=3 (--window 3): final return = mean of the last 3 returns; target 4.
LOG_PROB = {0: [0, 0, 3, 3, 3], 1: [0, 1, 2, 4, 6], 2: [0, 0, 0, 5, 7], 3: [10, 10, 10, 10, 10]}
# finals 3, 4, 4, 10: mean 5.25; IQM (one cut from each end) 4; std sqrt(30.75 / 3).
# window-3 means reach 4 at episodes never, 5, 5, 3: 3 of 4, median 5.
CROSS_ENTROPY = {0: [1, 2, 3], 1: [2, 2, 2, 2], 2: [5, 6, 7, 8]}
# finals 2, 2, 7: mean and IQM (n < 4: nothing cut) 11/3; only seed 2 reaches 4, at episode 3.


def write_run(folder: Path, returns: list[float], overrides: list[str], *, status: str = "finished",
              error: str | None = None, seeds: list[int] | None = None, stop_reason: str | None = None) -> Path:
    """A run folder as rlab-train leaves it: episodes.csv, summary.json, .hydra/overrides.yaml."""
    (folder / ".hydra").mkdir(parents=True)
    table = pd.DataFrame({"episode": np.arange(1, len(returns) + 1), "env_step": np.cumsum([10] * len(returns)),
                          "return": returns, "length": 10})
    if seeds is not None:
        table["seed"] = seeds
    table.to_csv(folder / "episodes.csv", index=False)
    summary = {"status": status, "final_return": None, "target_return": 4, "seed": 0, "env_id": "CartPole-v1",
               "algo": "reinforce", "loss": "log_prob", "stop_reason": stop_reason}
    if error:
        summary["error"] = error
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A Hydra multirun folder: jobs 0…7: two groups (4 and 3 seeds) and one failed job."""
    root = tmp_path / "multirun" / "2026-11-21" / "10-00-00"
    job = 0
    for loss, seeds in (("log_prob", LOG_PROB), ("cross_entropy", CROSS_ENTROPY)):
        for seed, returns in seeds.items():
            write_run(root / str(job), returns, ["env=cartpole", f"loss={loss}", f"seed={seed}",
                                                 "train.progress=false", "hydra.launcher.n_jobs=2"])
            job += 1
    write_run(root / str(job), [100], ["env=cartpole", "loss=cross_entropy", "seed=3", "logger=csv"],
              status="failed", error="RuntimeError: boom")
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def check_rows(rows: pd.DataFrame) -> None:
    lp, ce = rows.loc["loss=log_prob"], rows.loc["loss=cross_entropy"]
    assert (lp.n_runs, lp.n_failed, ce.n_runs, ce.n_failed) == (4, 0, 3, 1)
    assert lp.final_return_mean == pytest.approx(5.25)
    assert lp.final_return_iqm == pytest.approx(4.0)
    assert lp.final_return_std == pytest.approx(np.sqrt(30.75 / 3))
    assert lp.final_return_ci_low <= lp.final_return_iqm <= lp.final_return_ci_high
    assert (lp.episodes_to_target_median, lp.n_reached_target) == (5, 3)
    assert ce.final_return_mean == pytest.approx(11 / 3)
    assert ce.final_return_iqm == pytest.approx(11 / 3)
    assert (ce.episodes_to_target_median, ce.n_reached_target) == (3, 1)
    assert 2 <= ce.final_return_ci_low <= ce.final_return_ci_high <= 7  # within the runs' range


def test_cli_on_a_multirun_folder(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    res = subprocess.run([str(RLAB_REPORT), str(sweep), "--out", str(out), "--window", "3"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "loss=log_prob" in res.stdout and "summary.csv" in res.stdout
    rows = pd.read_csv(out / "summary.csv").set_index("group")
    assert set(report.COLUMNS) - {"group"} <= set(rows.columns)
    check_rows(rows)
    md = (out / "report.md").read_text()
    assert "10-00-00/7" in md and "RuntimeError: boom" in md  # the failed run is listed
    assert f"rlab-report {sweep} --out {out} --window 3" in md
    assert "![learning curves](curves.png)" in md
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_api_matches_the_cli(sweep: Path):
    runs = report.load_runs([sweep])
    assert [r.label for r in runs][:3] == ["10-00-00/0", "10-00-00/1", "10-00-00/2"]
    groups = report.group_runs(runs)
    assert list(groups) == ["loss=log_prob", "loss=cross_entropy"]
    check_rows(pd.DataFrame(report.summarise(groups, window=3)).set_index("group"))
    md = report.write_report([sweep], window=3)  # default --out: the first PATH
    assert md == sweep / "report.md" and (sweep / "curves.png").is_file()


@pytest.mark.parametrize(("stop_reason", "auc"), [("target return reached", 1.75), ("max_episodes reached", 1.5)])
def test_curves_auc_and_target_on_episodes(tmp_path: Path, stop_reason: str, auc: float):
    # Window 1 (raw returns), x = episodes 1…5: run a rises linearly 0→4 (AUC 2); run b rises 0→2 by
    # episode 3 and stops. Stopped at its target, b is held at 2 up to episode 5 (AUC (2 + 4) / 4 = 1.5,
    # group 1.75); stopped for another reason, its curve ends at episode 3 (AUC 1, group 1.5).
    # Target 3 is reached by a at episode 4 only.
    write_run(tmp_path / "a", [0, 1, 2, 3, 4], ["seed=0"])
    write_run(tmp_path / "b", [0, 1, 2], ["seed=1"], stop_reason=stop_reason)
    groups = report.group_runs(report.load_runs([tmp_path]))
    (row,) = report.summarise(groups, x="episode", window=1, target=3)
    assert row["group"] == "CartPole-v1 reinforce log_prob"  # no overrides left: named from summary.json
    assert row["auc"] == pytest.approx(auc, rel=1e-2)  # the 200-point grid rounds the kink at episode 3
    assert (row["episodes_to_target_median"], row["n_reached_target"]) == (4, 1)


def test_seed_column_splits_one_folder_into_runs(tmp_path: Path):
    # One job trained 3 agents; rows interleave. Window 2: finals 2.5, 5.5, 8.5.
    returns = {0: [1, 2, 3], 1: [4, 5, 6], 2: [7, 8, 9]}
    rows = [(s, r) for i in range(3) for s, rs in returns.items() for r in [rs[i]]]
    write_run(tmp_path / "job", [r for _, r in rows], ["train.num_seeds=3", "loss=log_prob"],
              seeds=[s for s, _ in rows])
    runs = report.load_runs([tmp_path / "job"])
    assert [(r.label, r.seed) for r in runs] == [(f"job[seed={s}]", s) for s in range(3)]
    assert runs[1].returns.tolist() == [4, 5, 6] and runs[1].episode.tolist() == [1, 2, 3]
    (row,) = report.summarise(report.group_runs(runs), window=2)
    assert (row["group"], row["n_runs"]) == ("loss=log_prob", 3)
    assert row["final_return_mean"] == pytest.approx(5.5)


def test_groups_from_config_when_there_are_no_overrides(tmp_path: Path):
    for name, loss in (("r0", "log_prob"), ("r1", "cross_entropy"), ("r2", "log_prob")):
        folder = write_run(tmp_path / name, [1, 2], [])
        (folder / ".hydra" / "overrides.yaml").unlink()
        config = {"seed": int(name[1]), "loss": {"name": loss}, "logger": {"mode": name}, "train": {"progress": False}}
        (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    groups = report.group_runs(report.load_runs([tmp_path]))
    assert {k: [r.label for r in v] for k, v in groups.items()} == {
        "loss.name=log_prob": [f"{tmp_path.name}/r0", f"{tmp_path.name}/r2"],
        "loss.name=cross_entropy": [f"{tmp_path.name}/r1"]}


def test_a_failed_run_without_episodes_is_listed(tmp_path: Path):
    write_run(tmp_path / "ok", [1, 2, 3], ["seed=0"])
    dead = tmp_path / "dead"
    (dead / ".hydra").mkdir(parents=True)
    (dead / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (dead / "summary.json").write_text(json.dumps({"status": "failed", "error": "ValueError: bad env"}))
    md = report.write_report([tmp_path], tmp_path / "out").read_text()
    assert "`" + f"{tmp_path.name}/dead" + "`" in md and "ValueError: bad env" in md
    rows = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert rows[["n_runs", "n_failed"]].values.tolist() == [[1, 1]]


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_bad_path_is_one_line_and_exit_2(tmp_path: Path, make):
    res = subprocess.run([str(RLAB_REPORT), str(make(tmp_path))], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
