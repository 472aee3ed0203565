"""experiments/mujoco/report.py on hand-written sweep folders, and the published Tianshou numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforce_lab import stats

ROOT = Path(__file__).resolve().parents[1]
MUJOCO = ROOT / "experiments" / "mujoco"
RAW = Path("/work/notes/tianshou")  # Tianshou's raw CSVs: not in the repository, used when present
STEPS = (100_000, 200_000, 300_000, 400_000)
OFFSETS = (-300.0, 0.0, 30.0, 60.0)  # a seed's stochastic returns at STEPS, around its level
# Task level per variant; seed s adds 10 s and seed 4 another 1000 (an outlier IQM ignores and the mean does not).
LEVELS = {("HalfCheetah-v5", "reinforce"): 500.0, ("Hopper-v5", "reinforce"): 300.0,
          ("HalfCheetah-v5", "reinforce_baseline"): 600.0, ("Hopper-v5", "reinforce_baseline"): 400.0}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"mujoco_{name}", MUJOCO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _load("report")


def _level(task: str, variant: str, seed: int) -> float:
    return LEVELS.get((task, variant), 0.0) + 10 * seed + (1000 if seed == 4 else 0)


def write_job(folder: Path, task: str, variant: str, status: str | None = "finished") -> None:
    """A job folder as rlab-train leaves it: config, summary.json, evals.csv (rows newest first)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(
        f"env:\n  id: {task}\nalgo:\n  name: {variant}\ntrain:\n  max_env_steps: 400000\n  num_seeds: 5\n")
    if status is not None:
        (folder / "summary.json").write_text(json.dumps({"status": status, "num_seeds": 5}))
    lines = ["env_step,seed,mode,episodes,return_mean,return_std,length_mean"]
    for step, offset in reversed(list(zip(STEPS, OFFSETS))):  # not in env_step order: the report sorts
        for mode, extra in (("stochastic", 0.0), ("deterministic", 5.0)):
            lines += [f"{step},{s},{mode},5,{_level(task, variant, s) + offset + extra},1.0,1000" for s in range(5)]
    (folder / "evals.csv").write_text("\r\n".join(lines) + "\r\n")  # csv.writer's line ends


@pytest.fixture
def sweeps(tmp_path: Path) -> list[Path]:
    """Two sweeps (one per variant) of two tasks each, the first with three damaged jobs."""
    out = []
    for variant in ("reinforce", "reinforce_baseline"):
        sweep = tmp_path / f"mujoco_{variant}"
        for num, task in enumerate(("HalfCheetah-v5", "Hopper-v5")):
            write_job(sweep / str(num), task, variant)
        out.append(sweep)
    bad = out[0]
    write_job(bad / "2", "Walker2d-v5", "reinforce")
    with open(bad / "2" / "evals.csv", "ab") as f:
        f.write(b"400000,0,stoch")  # killed mid-write
    write_job(bad / "3", "Swimmer-v5", "reinforce", status=None)  # still running, or killed
    write_job(bad / "4", "Reacher-v5", "reinforce")
    (bad / "4" / "summary.json").write_text('{"status": "fini')  # torn
    write_job(bad / "5", "Hopper-v5", "reinforce")  # a second Hopper reinforce run
    return out


def test_final_is_mean_of_last_three_evaluations(sweeps: list[Path]) -> None:
    job, problem = report.read_job(sweeps[0] / "0")
    assert problem is None and (job.task, job.variant, job.finished) == ("HalfCheetah-v5", "reinforce", True)
    finals = report.finals(job.evals, "stochastic")
    # Seed 0 of HalfCheetah reinforce: 200, 500, 530, 560 at 100k..400k steps: (500 + 530 + 560) / 3 = 530.
    assert finals[0] == pytest.approx(530.0)
    assert finals.to_dict() == pytest.approx({0: 530.0, 1: 540.0, 2: 550.0, 3: 560.0, 4: 1570.0})
    assert report.finals(job.evals, "deterministic")[0] == pytest.approx(535.0)


def test_report_tables_iqm_and_count(sweeps: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert report.main([*map(str, sweeps), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * 2 * 2  # task × variant × mode
    row = summary[(summary.task == "HalfCheetah-v5") & (summary.variant == "reinforce")
                  & (summary["mode"] == "stochastic")]
    finals = np.array([530.0, 540.0, 550.0, 560.0, 1570.0])
    assert row[[f"final_s{s}" for s in range(5)]].to_numpy().ravel() == pytest.approx(finals)
    assert row.iqm.item() == pytest.approx(stats.iqm(finals)) == pytest.approx(550.0)  # the middle three
    assert (row.ci_low.item(), row.ci_high.item()) == pytest.approx(stats.bootstrap_ci(finals, stats.iqm, seed=0))
    assert row["mean"].item() == pytest.approx(finals.mean())
    assert row["std"].item() == pytest.approx(finals.std(ddof=1))
    assert row.n_seeds.item() == 5
    md = (out / "results.md").read_text()
    # IQMs 550 (HalfCheetah) and 350 (Hopper) for reinforce vs 512.3 and 390.0; 650 and 450 for the baseline.
    assert "ours ≥ theirs on 1 of 2 tasks" in md and "ours ≥ theirs on 2 of 2 tasks" in md
    assert md.index("## reinforce\n") < md.index("## reinforce_baseline\n")
    assert "| HalfCheetah-v5 | 5 | 550.0 [" in md and "| 512.3 | 512.3 | 1138.8 | yes |" in md
    assert "| 389.97" not in md and "| 390.0 | 390.0 | 416.0 | no |" in md
    assert "maximum over training" in md and "v5" in md and "v3" in md
    assert (out / "curves.png").stat().st_size > 0
    assert "ours ≥ theirs on 1 of 2 tasks" in captured.out


def test_damaged_runs_are_left_out_with_a_reason(sweeps: list[Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert report.main([*map(str, sweeps), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    reasons = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line.split(": ", 1)[1]
               for line in err.splitlines() if line.startswith("skipped ")}
    assert set(reasons) == {"2", "3", "4", "5"}
    assert "torn" in reasons["2"] and "summary.json" in reasons["3"] and "summary.json" in reasons["4"]
    assert "a second Hopper-v5 reinforce" in reasons["5"]
    md = (out / "results.md").read_text()
    assert "## Left out (4)" in md and "Walker2d" not in md.split("## Left out")[0]
    # --partial counts the run without summary.json; a sweep of damaged runs only exits 1.
    assert report.main([str(sweeps[0]), "--out", str(tmp_path / "p"), "--partial"]) == 0
    assert "Swimmer-v5 (unfinished" in (tmp_path / "p" / "results.md").read_text()
    only_bad = tmp_path / "bad"
    write_job(only_bad / "0", "Hopper-v5", "reinforce", status="failed")
    (only_bad / "1").mkdir()
    assert report.main([str(only_bad), "--out", str(tmp_path / "b")]) == 1
    assert "status `failed`" in (tmp_path / "b" / "results.md").read_text()
    with pytest.raises(SystemExit) as exc:
        report.main([str(tmp_path / "no_such_sweep")])
    assert exc.value.code == 2


PUBLISHED = {"HalfCheetah-v5": 512.3, "Hopper-v5": 390.0, "Walker2d-v5": 391.2, "Swimmer-v5": 30.0,
             "InvertedPendulum-v5": 932.2, "InvertedDoublePendulum-v5": 436.9, "Reacher-v5": -21.5}


def test_published_numbers() -> None:
    table = pd.read_csv(MUJOCO / "published_tianshou.csv").set_index("task")
    assert {t: round(v, 1) for t, v in table.max_mean_upto_1M.items()} == PUBLISHED
    assert table.loc["HalfCheetah-v5", "their_task"] == "HalfCheetah-v3"
    assert table.loc["Reacher-v5", "their_task"] == "Reacher-v2"
    assert round(table.loc["HalfCheetah-v5", "max_mean_10M"], 1) == 1138.8  # Tianshou's README table
    assert (table.max_mean_upto_1M >= table.mean_at_1M).all() and (table.max_mean_10M >= table.max_mean_upto_1M).all()
    assert table.source.str.contains("39acf2094d96268d92ebb54dcbfc3de76d702567").all()
    curves = pd.read_csv(MUJOCO / "published_tianshou_curves.csv")
    assert curves.groupby("task").size().to_dict() == dict.fromkeys(PUBLISHED, 33)
    assert curves.env_step.max() <= 1_000_000
    assert curves.groupby("task")["mean"].max().round(1).to_dict() == PUBLISHED


@pytest.mark.skipif(not RAW.is_dir(), reason="Tianshou's raw CSVs are not on this machine")
def test_extract_published_reproduces_the_committed_files(tmp_path: Path) -> None:
    assert _load("extract_published").main([str(RAW), "--out", str(tmp_path)]) == 0
    for name in ("published_tianshou.csv", "published_tianshou_curves.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), pd.read_csv(MUJOCO / name))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
