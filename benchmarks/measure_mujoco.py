"""(g) MuJoCo throughput on HalfCheetah-v5 and InvertedPendulum-v5, with gymnasium's SyncVectorEnv and
with envpool: the raw vector env, + a bare policy, reinforce-lab's HorizonCollector (the loops are in
``mujoco_loops.py``, timed by ``mujoco_throughput.py`` in a subprocess), and ``rlab-train
experiment=mujoco_reinforce`` end to end with each backend; rounds of the loops and the training runs
by turns. The report (summary rows, section, ratios) is in ``mujoco_report.py``. Also shows the whole
MuJoCo experiment's wall time if ``experiments/mujoco/wall_time.json`` exists. Without envpool the
envpool rows are skipped with the reason.

Alone: ``.venv/bin/python benchmarks/measure_mujoco.py [--quick] [--mujoco-envs N] [--mujoco-steps M]
[--mujoco-rounds R] [--mujoco-no-envpool] [--out STEM]`` (merges part (g) into
``benchmarks/results.json`` and rewrites ``results.md``, as ``run.py --only g``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import BIN, HERE, ROOT, Measurement, fmt, fx, log, med, ratio, read_json, run_cmd, shown
from mujoco_report import ENV_IDS, WALL_TIME, ratios, section, summary_rows

TRAIN_KEYS = ("wall_s", "process_wall_s", "env_steps", "env_steps_per_s")  # from summary.json
ROW_EXTRA = ("process_ext_s", "process_steps_per_s", "outside_training_s", "startup_and_save_s", "after_summary_s")
BACKENDS = {"sync": "train", "envpool": "train_envpool"}  # rlab-train's env.vectorization → results key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mujoco-envs", type=int, help="env copies N in (g) (default 64; quick 16)")
    parser.add_argument("--mujoco-steps", type=int, help="env steps of each (g) rlab-train run (default 200000; "
                                                         "quick 20480)")
    parser.add_argument("--mujoco-rounds", type=int, help="rounds of (g): loops, then one rlab-train run per task "
                                                          "and backend (default 3; quick 1)")
    parser.add_argument("--mujoco-no-envpool", action="store_true", help="(g) without the envpool loops and runs")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(num_envs=args.mujoco_envs or (16 if args.quick else 64),
                              steps=args.mujoco_steps or (20_480 if args.quick else 200_000),
                              rounds=args.mujoco_rounds or (1 if args.quick else 3),
                              seconds=0.5 if args.quick else 2.0, loop_repeats=2, run_timeout=1200,
                              no_envpool=bool(getattr(args, "mujoco_no_envpool", False)))


def _loops_cmd(cfg: argparse.Namespace, workdir: Path) -> list[str]:
    return [sys.executable, str(HERE / "mujoco_throughput.py"), "--env-ids", ",".join(ENV_IDS),
            "--num-envs", str(cfg.num_envs), "--seconds", str(cfg.seconds), "--repeats", str(cfg.loop_repeats),
            *(["--no-envpool"] if cfg.no_envpool else []), "--workdir", str(workdir)]


def _train_cmd(cfg: argparse.Namespace, env_id: str, out: Path, backend: str = "sync") -> list[str]:
    """The run of (iv); sync is the preset's default (``env.vectorization=auto`` picks sync for MuJoCo)."""
    return [str(BIN / "rlab-train"), "experiment=mujoco_reinforce", f"env.id={env_id}", "train.num_seeds=1",
            f"env.num_envs={cfg.num_envs}", *(["env.vectorization=envpool"] if backend == "envpool" else []),
            f"train.max_env_steps={cfg.steps}", "train.eval_every_steps=null", "logger=none", "train.progress=false",
            f"hydra.run.dir={out}"]


def _errors(stderr: str) -> str:
    """A stderr tail without MuJoCo's repeated deprecation warning (one per model loaded)."""
    return "\n".join(line for line in stderr.splitlines() if line.strip() and "settotalmass" not in line)


def _run_loops(cfg: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One run of ``mujoco_throughput.py``: its JSON line, or the error."""
    workdir.mkdir(parents=True, exist_ok=True)
    res = run_cmd(_loops_cmd(cfg, workdir), timeout=cfg.run_timeout)
    if res["status"] != "finished":
        log(f"(g) loops {res['status']}: {_errors(res['stderr_tail'])[-600:]}")
        return {"status": res["status"], "error": _errors(res["stderr_tail"])}
    data = json.loads(res["stdout"].strip().splitlines()[-1])
    log("(g) loops, kept env steps/s: " + "; ".join(
        f"{e} " + ", ".join(f"{k} {fmt(v)}" for k, v in data["kept_median"][e].items()) for e in ENV_IDS))
    if data.get("envpool_skipped"):
        log(f"(g) envpool skipped: {data['envpool_skipped']}")
    return data


def _run_train(cfg: argparse.Namespace, env_id: str, out: Path, backend: str) -> dict[str, Any]:
    """One ``rlab-train`` run: its summary.json's numbers and the whole process timed from outside.

    It runs in the temporary folder above ``out`` (``env -C``), where MuJoCo writes its
    MUJOCO_LOG.TXT, instead of the repository.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    res = run_cmd(["env", "-C", str(out.parent), *_train_cmd(cfg, env_id, out, backend)], timeout=cfg.run_timeout)
    summary = read_json(out / "summary.json") or {}
    row: dict[str, Any] = {"status": res["status"], "process_ext_s": res["wall_s"],
                           **{k: summary.get(k) for k in TRAIN_KEYS}}
    row["process_steps_per_s"] = ratio(row["env_steps"], res["wall_s"])
    row["outside_training_s"] = None if row["wall_s"] is None else res["wall_s"] - row["wall_s"]
    row["startup_and_save_s"] = None if row["process_wall_s"] is None else row["process_wall_s"] - row["wall_s"]
    row["after_summary_s"] = None if row["process_wall_s"] is None else res["wall_s"] - row["process_wall_s"]
    log(f"(g) rlab-train {env_id} ({backend}): {fmt(row['env_steps'])} steps, train {fmt(row['wall_s'], 2)} s "
        f"({fmt(row['env_steps_per_s'])} steps/s), process {res['wall_s']:.2f} s [{res['status']}]")
    if res["status"] != "finished":
        log(f"    stderr: {_errors(res['stderr_tail'])[-400:] or '(only MuJoCo warnings)'}")
    return row


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    loops: dict[str, list[dict[str, Any]]] = {"runs": [], "kept_runs": []}
    train: dict[str, dict[str, list[dict[str, Any]]]] = {b: {e: [] for e in ENV_IDS} for b in BACKENDS}
    log(f"(g) {cfg.rounds} round(s) of: {shown(_loops_cmd(cfg, tmp))}, then per task and backend "
        f"{shown(_train_cmd(cfg, 'ENV', tmp)[:-1])} [env.vectorization=envpool]")
    for r in range(cfg.rounds):  # by turns: load drift hits the loops and the training runs alike
        data = _run_loops(cfg, tmp / "g" / f"loops-r{r}")
        if "error" in data:
            return {"status": data["status"], "error": data["error"]}
        for key in loops:
            loops[key].append(data[key])
        backends = ["sync"] + ([] if data.get("envpool_skipped") else ["envpool"])
        for e in ENV_IDS:
            for b in backends:
                train[b][e].append(_run_train(cfg, e, tmp / "g" / f"{e}-{b}-r{r}", b))
    g = {"status": "finished", **_summarise(loops, train), "env_ids": list(ENV_IDS), "num_envs": cfg.num_envs,
         "horizon": data["horizon"], "seconds": cfg.seconds, "repeats": cfg.rounds * cfg.loop_repeats,
         "rounds": cfg.rounds, "max_env_steps": cfg.steps, "torch_threads": data["torch_threads"],
         "versions": data.get("versions", {}), "bare_policy": data["bare_policy"],
         "envpool_skipped": data.get("envpool_skipped"), "envpool_threads": data.get("envpool_threads"),
         "wall_time": read_json(WALL_TIME), "wall_time_path": str(WALL_TIME.relative_to(ROOT)),
         "commands": {"loops": shown(_loops_cmd(cfg, tmp)[:-2]),
                      **{key: shown(_train_cmd(cfg, "ENV", tmp, b)[:-1]) + " hydra.run.dir=TMP"
                         for b, key in BACKENDS.items() if train[b][ENV_IDS[0]]}}}
    g["ratios"] = ratios(g)
    log("(g) acceptance (target ≥ 0.8×): " + "; ".join(
        f"{e} " + ", ".join(f"{k} {fx(g['ratios'][e][k])}" for k in ("sync", "envpool", "switch"))
        for e in ENV_IDS))
    return g


def _summarise(loops: dict[str, list[dict[str, Any]]],
               train: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Medians over all repeats of the loops (env steps/s and kept steps/s) and over the runs of each backend."""
    runs = {key: {e: {k: [x for rnd in rounds for x in rnd[e][k]] for k in rounds[0][e]} for e in ENV_IDS}
            for key, rounds in loops.items()}
    median: dict[str, Any] = {name: {e: {k: med(v) for k, v in d.items()} for e, d in runs[key].items()}
                              for name, key in (("loops", "runs"), ("kept", "kept_runs"))}
    for b, key in BACKENDS.items():
        if any(train[b].values()):
            median[key] = {e: {k: med(r[k] for r in rows) for k in (*TRAIN_KEYS, *ROW_EXTRA)} | {"runs": len(rows)}
                           for e, rows in train[b].items()}
    return {"runs": {"loops": runs["runs"], "kept": runs["kept_runs"],
                     **{key: train[b] for b, key in BACKENDS.items()}}, "median": median}


MEASUREMENT = Measurement("g", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="g", script=__file__)
