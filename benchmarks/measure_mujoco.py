"""(g) MuJoCo throughput on HalfCheetah-v5 and InvertedPendulum-v5: the raw SyncVectorEnv, + a bare
policy, reinforce-lab's HorizonCollector (the loops are in ``mujoco_throughput.py``, run here as a
subprocess), and ``rlab-train experiment=mujoco_reinforce`` end to end; rounds of the loops and the
training runs by turns. Also shows the whole MuJoCo experiment's wall time if
``experiments/mujoco/wall_time.json`` exists.

Alone: ``.venv/bin/python benchmarks/measure_mujoco.py [--quick] [--mujoco-envs N] [--mujoco-steps M]
[--mujoco-rounds R] [--out STEM]`` (merges part (g) into ``benchmarks/results.json`` and rewrites
``results.md``, as ``run.py --only g``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import BIN, HERE, ROOT, Measurement, fmt, fx, log, med, ratio, read_json, run_cmd, shown, table

ENV_IDS = ("HalfCheetah-v5", "InvertedPendulum-v5")
LOOPS = ("raw", "bare", "collector")
WALL_TIME = ROOT / "experiments" / "mujoco" / "wall_time.json"  # written by hand after the experiment
TRAIN_KEYS = ("wall_s", "process_wall_s", "env_steps", "env_steps_per_s")  # from summary.json
ROW_EXTRA = ("process_ext_s", "process_steps_per_s", "outside_training_s", "startup_and_save_s", "after_summary_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mujoco-envs", type=int, help="env copies N in (g) (default 64; quick 16)")
    parser.add_argument("--mujoco-steps", type=int, help="env steps of each (g) rlab-train run (default 200000; "
                                                         "quick 20480)")
    parser.add_argument("--mujoco-rounds", type=int, help="rounds of (g): loops, then one rlab-train run per task "
                                                          "(default 3; quick 1)")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(num_envs=args.mujoco_envs or (16 if args.quick else 64),
                              steps=args.mujoco_steps or (20_480 if args.quick else 200_000),
                              rounds=args.mujoco_rounds or (1 if args.quick else 3),
                              seconds=0.5 if args.quick else 2.0, loop_repeats=2, run_timeout=1200)


def _loops_cmd(cfg: argparse.Namespace, workdir: Path) -> list[str]:
    return [sys.executable, str(HERE / "mujoco_throughput.py"), "--env-ids", ",".join(ENV_IDS),
            "--num-envs", str(cfg.num_envs), "--seconds", str(cfg.seconds), "--repeats", str(cfg.loop_repeats),
            "--workdir", str(workdir)]


def _train_cmd(cfg: argparse.Namespace, env_id: str, out: Path) -> list[str]:
    return [str(BIN / "rlab-train"), "experiment=mujoco_reinforce", f"env.id={env_id}", "train.num_seeds=1",
            f"env.num_envs={cfg.num_envs}", f"train.max_env_steps={cfg.steps}", "train.eval_every_steps=null",
            "logger=none", "train.progress=false", f"hydra.run.dir={out}"]


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
    log("(g) loops, env steps/s: " + "; ".join(
        f"{e} " + ", ".join(f"{k} {fmt(v)}" for k, v in data["median"][e].items()) for e in ENV_IDS))
    return data


def _run_train(cfg: argparse.Namespace, env_id: str, out: Path) -> dict[str, Any]:
    """One ``rlab-train`` run: its summary.json's numbers and the whole process timed from outside.

    It runs in the temporary folder above ``out`` (``env -C``), where MuJoCo writes its
    MUJOCO_LOG.TXT, instead of the repository.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    res = run_cmd(["env", "-C", str(out.parent), *_train_cmd(cfg, env_id, out)], timeout=cfg.run_timeout)
    summary = read_json(out / "summary.json") or {}
    row: dict[str, Any] = {"status": res["status"], "process_ext_s": res["wall_s"],
                           **{k: summary.get(k) for k in TRAIN_KEYS}}
    row["process_steps_per_s"] = ratio(row["env_steps"], res["wall_s"])
    row["outside_training_s"] = None if row["wall_s"] is None else res["wall_s"] - row["wall_s"]
    row["startup_and_save_s"] = None if row["process_wall_s"] is None else row["process_wall_s"] - row["wall_s"]
    row["after_summary_s"] = None if row["process_wall_s"] is None else res["wall_s"] - row["process_wall_s"]
    log(f"(g) rlab-train {env_id}: {fmt(row['env_steps'])} steps, train {fmt(row['wall_s'], 2)} s "
        f"({fmt(row['env_steps_per_s'])} steps/s), process {res['wall_s']:.2f} s [{res['status']}]")
    if res["status"] != "finished":
        log(f"    stderr: {_errors(res['stderr_tail'])[-400:] or '(only MuJoCo warnings)'}")
    return row


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rates: dict[str, dict[str, list[float]]] = {e: {k: [] for k in LOOPS} for e in ENV_IDS}
    train: dict[str, list[dict[str, Any]]] = {e: [] for e in ENV_IDS}
    log(f"(g) {cfg.rounds} round(s) of: {shown(_loops_cmd(cfg, tmp))}, then per task "
        f"{shown(_train_cmd(cfg, 'ENV', tmp)[:-1])}")
    for r in range(cfg.rounds):  # by turns: load drift hits the loops and the training runs alike
        data = _run_loops(cfg, tmp / "g" / f"loops-r{r}")
        if "error" in data:
            return {"status": data["status"], "error": data["error"]}
        for e in ENV_IDS:
            for k in LOOPS:
                rates[e][k] += data["runs"][e][k]
            train[e].append(_run_train(cfg, e, tmp / "g" / f"{e}-r{r}"))
    return {"status": "finished", **_summarise(rates, train), "env_ids": list(ENV_IDS), "num_envs": cfg.num_envs,
            "horizon": data["horizon"], "seconds": cfg.seconds, "repeats": cfg.rounds * cfg.loop_repeats,
            "rounds": cfg.rounds, "max_env_steps": cfg.steps, "torch_threads": data["torch_threads"],
            "versions": data.get("versions", {}),
            "wall_time": read_json(WALL_TIME), "wall_time_path": str(WALL_TIME.relative_to(ROOT)),
            "commands": {"loops": shown(_loops_cmd(cfg, tmp)[:-2]),
                         "train": shown(_train_cmd(cfg, "ENV", tmp)[:-1]) + " hydra.run.dir=TMP"}}


def _summarise(rates: dict[str, dict[str, list[float]]], train: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    loops = {e: {k: med(v) for k, v in d.items()} for e, d in rates.items()}
    trained = {e: {k: med(r[k] for r in rows) for k in (*TRAIN_KEYS, *ROW_EXTRA)} | {"runs": len(rows)}
               for e, rows in train.items()}
    ratios = {e: {"bare/raw": ratio(loops[e]["bare"], loops[e]["raw"]),
                  "collector/raw": ratio(loops[e]["collector"], loops[e]["raw"]),
                  "collector/bare": ratio(loops[e]["collector"], loops[e]["bare"]),
                  "rlab-train/raw": ratio(trained[e]["env_steps_per_s"], loops[e]["raw"]),
                  "rlab-train process/raw": ratio(trained[e]["process_steps_per_s"], loops[e]["raw"])}
              for e in rates}
    return {"runs": {"loops": rates, "train": train}, "median": {"loops": loops, "train": trained}, "ratios": ratios}


# --------------------------------------------------------------------------- report
def _per_task(g: dict[str, Any], key: str) -> str:
    return ", ".join(f"{e.split('-')[0]} {fx(g['ratios'][e][key])}" for e in g["env_ids"])


def _wall_time(g: dict[str, Any]) -> tuple[Any, str]:
    """The whole experiment's wall time as the file holds it now, else as it was when (g) was measured."""
    live = read_json(WALL_TIME)
    if live is not None:
        return live, f"`{WALL_TIME.relative_to(ROOT)}`, read when this file was written"
    return g.get("wall_time"), f"`{g.get('wall_time_path')}` as it was when (g) was measured"


def summary_rows(g: dict[str, Any]) -> list[list[str]]:
    if g.get("status") != "finished":
        return []
    wall, _ = _wall_time(g)
    return [["(g) MuJoCo: HorizonCollector / raw SyncVectorEnv, env steps/s", _per_task(g, "collector/raw"), "",
             f"N = {g['num_envs']} copies, one torch thread"],
            ["(g) MuJoCo: HorizonCollector / (raw + bare policy)", _per_task(g, "collector/bare"), "", ""],
            ["(g) MuJoCo: rlab-train training / raw SyncVectorEnv", _per_task(g, "rlab-train/raw"), "",
             f"{fmt(g['max_env_steps'])} env steps per run"],
            ["(g) MuJoCo: whole experiment wall time", "not measured" if wall is None else "see (g)", "", ""]]


def _loop_table(g: dict[str, Any]) -> list[str]:
    loops, trained, envs = g["median"]["loops"], g["median"]["train"], g["env_ids"]
    named = [("(i) raw `SyncVectorEnv`, `envs.action_space.sample()`", lambda e: loops[e]["raw"]),
             ("(ii) + bare Gaussian MLP per step (plain PyTorch)", lambda e: loops[e]["bare"]),
             (f"(iii) `HorizonCollector.collect` + `make_policy` (horizon {fmt(g['horizon'])}), kept steps",
              lambda e: loops[e]["collector"]),
             ("(iv) `rlab-train`, training (summary.json `env_steps_per_s`)",
              lambda e: trained[e]["env_steps_per_s"]),
             ("(v) `rlab-train`, whole process (env steps / process time)",
              lambda e: trained[e]["process_steps_per_s"])]
    rows = [[name] + [c for e in envs for c in (fmt(f(e)), fx(ratio(f(e), loops[e]["raw"])))] for name, f in named]
    return table(["loop"] + [c for e in envs for c in (f"{e} env steps/s", "vs raw")], rows)


def _train_table(g: dict[str, Any]) -> list[str]:
    rows = [[e, m["runs"], fmt(m["env_steps"])] + [fmt(m[k], 2, " s") for k in (
             "wall_s", "process_ext_s", "outside_training_s", "startup_and_save_s", "after_summary_s")]
            + [fmt(m["env_steps_per_s"]), fmt(m["process_steps_per_s"])] for e, m in g["median"]["train"].items()]
    return table(["task", "runs", "env steps", "training", "whole process (outside)", "outside training",
                  "of which start-up + final save", "of which exit", "training env steps/s",
                  "whole-process env steps/s"], rows)


def _wall_time_lines(g: dict[str, Any]) -> list[str]:
    data, where = _wall_time(g)
    L = ["", "### Whole experiment wall time", ""]
    if data is None:
        return L + [f"Not measured (no `{WALL_TIME.relative_to(ROOT)}`)."]
    if not isinstance(data, dict):
        return L + [f"From {where}: `{json.dumps(data)}`"]
    rows = [[k, v if isinstance(v, (str, int, float)) else f"`{json.dumps(v)}`"] for k, v in data.items()]
    return L + [f"From {where}:", ""] + table(["variant", "wall time"], rows)


def section(g: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", f"## (g) MuJoCo throughput, {' and '.join(g.get('env_ids', ENV_IDS))} × "
         f"{g.get('num_envs', '?')} copies, one torch thread", ""]
    if g.get("status") != "finished":
        return L + [f"Failed: {g.get('error', '')[-500:]}"]
    r = g["ratios"]
    L += [f"Loops: median of {g['repeats']} repeats of ≥ {g['seconds']} s each ({g['rounds']} round(s) of "
          f"{g['repeats'] // g['rounds']}, the loops of both tasks by turns); `rlab-train`: median of "
          f"{g['rounds']} run(s) per task, one after each round of loops, {fmt(g['max_env_steps'])} env steps each. "
          "Env steps/s = steps × copies / time. Fixed-horizon rollouts keep every env step they take, so "
          "(iii) counts the steps in its batches (checked: `batch.mask.sum() == horizon` per call). "
          + ", ".join(f"{k} {v}" for k, v in g.get("versions", {}).items()) + ".", ""]
    L += _loop_table(g)
    L += ["", "(iii) / (ii), the collector against the plain PyTorch loop: "
          + ", ".join(f"**{e}** {fx(r[e]['collector/bare'])}" for e in g["env_ids"]) + ".", ""]
    L += _train_table(g)
    L += ["", "*Outside training* = the process timed from outside minus summary.json's `wall_s`; split at "
          "summary.json's `process_wall_s` into *start-up + final save* (interpreter start, imports, Hydra, env "
          "construction; the last checkpoint and summary.json) and *exit* (after the summary). Medians per column."]
    L += _wall_time_lines(g)
    return L + ["", "```", g["commands"]["loops"], g["commands"]["train"], "```"]


MEASUREMENT = Measurement("g", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="g", script=__file__)
