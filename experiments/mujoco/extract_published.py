"""Derive the published Tianshou REINFORCE numbers that ``report.py`` compares with.

Tianshou's MuJoCo benchmark (thu-ml/tianshou at commit ``COMMIT``) publishes, per task,
``examples/mujoco/benchmark/<Env>/reinforce/test_rew_10seeds.csv``: one row every 30,720 env
steps up to ~10M, with the 10 seeds' test returns (10 stochastic test episodes each) and
their mean in column ``rew``. Those raw files are not part of this repository; this script
reads local copies of them and writes only the derived numbers, both committed:

- ``published_tianshou.csv``: per task ``max_mean_upto_1M`` (max of ``rew`` over the rows
  with env_step <= 1M: Tianshou's own measure at our budget), ``mean_at_1M`` (the last row
  <= 1M, at ``step_at_1M``), ``max_mean_10M`` (max over all rows: their README's table value);
- ``published_tianshou_curves.csv``: their mean curve up to 1M (task, env_step, mean).

Usage::

    python experiments/mujoco/extract_published.py [RAW_DIR] [--out DIR]

RAW_DIR (default /work/notes/tianshou) holds ``<their_task>.csv`` (e.g. ``HalfCheetah-v3.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COMMIT = "39acf2094d96268d92ebb54dcbfc3de76d702567"
URL = "https://github.com/thu-ml/tianshou/blob/{commit}/examples/mujoco/benchmark/{task}/reinforce/test_rew_10seeds.csv"
BUDGET = 1_000_000
# Our gymnasium v5 task -> the gym v3/v2 task Tianshou benchmarked.
TASKS = {
    "HalfCheetah-v5": "HalfCheetah-v3",
    "Hopper-v5": "Hopper-v3",
    "Walker2d-v5": "Walker2d-v3",
    "Swimmer-v5": "Swimmer-v3",
    "InvertedPendulum-v5": "InvertedPendulum-v2",
    "InvertedDoublePendulum-v5": "InvertedDoublePendulum-v2",
    "Reacher-v5": "Reacher-v2",
}
HERE = Path(__file__).resolve().parent


def summarise(task: str, their_task: str, raw: pd.DataFrame) -> dict[str, object]:
    """One task's row of ``published_tianshou.csv`` from its raw ``test_rew_10seeds.csv``."""
    raw = raw.sort_values("env_step")
    upto = raw[raw["env_step"] <= BUDGET]
    return {
        "task": task,
        "their_task": their_task,
        "max_mean_upto_1M": round(float(upto["rew"].max()), 4),
        "step_of_max_upto_1M": int(upto.loc[upto["rew"].idxmax(), "env_step"]),
        "mean_at_1M": round(float(upto["rew"].iloc[-1]), 4),
        "step_at_1M": int(upto["env_step"].iloc[-1]),
        "max_mean_10M": round(float(raw["rew"].max()), 4),
        "source": URL.format(commit=COMMIT, task=their_task),
    }


def extract(raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, curves)`` from the raw CSVs in ``raw_dir``; a missing file is an error."""
    rows, curves = [], []
    for task, their_task in TASKS.items():
        raw = pd.read_csv(raw_dir / f"{their_task}.csv", usecols=["env_step", "rew"])
        rows.append(summarise(task, their_task, raw))
        upto = raw[raw["env_step"] <= BUDGET].sort_values("env_step")
        curves.append(pd.DataFrame({"task": task, "env_step": upto["env_step"].astype(int),
                                    "mean": upto["rew"].round(4)}))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    """Write ``published_tianshou.csv`` and ``published_tianshou_curves.csv`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", nargs="?", type=Path, default=Path("/work/notes/tianshou"),
                        help="folder of Tianshou's raw test_rew_10seeds.csv files, named <their_task>.csv")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the CSVs (default: beside this script)")
    args = parser.parse_args(argv)
    try:
        table, curves = extract(args.raw_dir)
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "published_tianshou.csv", index=False)
        curves.to_csv(args.out / "published_tianshou_curves.csv", index=False)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table.drop(columns="source").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
