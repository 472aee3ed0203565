"""Part (g)'s report: its rows of results.md's summary and its section, from what ``measure_mujoco.py`` measured.

Apart from ``measure_mujoco.py`` so that each file stays short; standard library only, as
``report.py`` rewrites results.md without torch. The ratios are computed here from the medians
(:func:`ratios`), so a results.json written before the envpool loops still renders: its envpool
rows read "–" and its (ii) is described as it was then.
"""

from __future__ import annotations

import json
from typing import Any

from common import ROOT, fmt, fx, ratio, read_json, table

ENV_IDS = ("HalfCheetah-v5", "InvertedPendulum-v5")
WALL_TIME = ROOT / "experiments" / "mujoco" / "wall_time.json"  # written by hand after the experiment
TARGET = 0.8  # issue #17: rlab-train's kept env steps/s ≥ 0.8× those of the raw vector env + a bare policy
# (ii) as results.json files without a "bare_policy" field measured it.
OLD_BARE = ("64-64 tanh MLP, mean + σ·randn (no observation normalisation, no tanh squash); "
            "transitions appended to lists")
# The acceptance ratios: key, numerator, denominator (see _value), as shown.
ACCEPTANCE = (
    ("sync", "train:sync", "kept:bare", "(iv) / (ii): rlab-train / (raw SyncVectorEnv + bare policy), both sync"),
    ("envpool", "train:envpool", "kept:envpool_bare",
     "(iv') / (ii'): rlab-train `env.vectorization=envpool` / (raw envpool + bare policy), both envpool"),
    ("switch", "train:envpool", "kept:bare",
     "(iv') / (ii): rlab-train `env.vectorization=envpool` / (raw SyncVectorEnv + bare policy)"))
OTHERS = (
    ("collector/bare", "kept:collector", "kept:bare", "(iii) / (ii): HorizonCollector / (raw + bare policy), sync"),
    ("envpool collector/bare", "kept:envpool_collector", "kept:envpool_bare", "(iii') / (ii'): the same on envpool"),
    ("adapter/pool", "kept:envpool_adapter", "kept:envpool_raw",
     "(i'') / (i'): our envpool adapter / the raw pool, random actions"),
    ("envpool/sync raw", "kept:envpool_raw", "kept:raw", "(i') / (i): raw envpool / raw SyncVectorEnv"),
    ("envpool/sync bare", "kept:envpool_bare", "kept:bare", "(ii') / (ii): the same, + bare policy"),
    ("bare/raw", "kept:bare", "kept:raw", "(ii) / (i): the bare policy's share, sync"),
    ("rlab-train/raw", "train:sync", "kept:raw", "(iv) / (i): rlab-train / raw SyncVectorEnv alone"))
LOOP_ROWS = (
    ("(i) raw `SyncVectorEnv`, `envs.action_space.sample()`", "kept:raw"),
    ("(ii) + bare Gaussian MLP policy per step (plain PyTorch)", "kept:bare"),
    ("(iii) `HorizonCollector.collect` + `make_policy` (horizon {horizon})", "kept:collector"),
    ("(iv) `rlab-train`, training (summary.json `env_steps_per_s`)", "train:sync"),
    ("(v) `rlab-train`, whole process (env steps / process time)", "process:sync"),
    ("(i') raw envpool, `envpool.make_gymnasium`, random actions", "kept:envpool_raw"),
    ("(i'') our adapter `make_vec_env(..., \"envpool\")`, random actions", "kept:envpool_adapter"),
    ("(ii') raw envpool + the same bare policy", "kept:envpool_bare"),
    ("(iii') `HorizonCollector` over `make_vec_env(..., \"envpool\")`", "kept:envpool_collector"),
    ("(iv') `rlab-train env.vectorization=envpool`, training", "train:envpool"),
    ("(v') the same, whole process", "process:envpool"))


def _value(g: dict[str, Any], env_id: str, ref: str) -> float | None:
    """A median by reference: ``kept:LOOP``, ``steps:LOOP``, ``train:BACKEND`` or ``process:BACKEND``."""
    kind, name = ref.split(":")
    m = g["median"]
    if kind in ("train", "process"):
        run = m.get("train" if name == "sync" else f"train_{name}", {}).get(env_id)
        return None if run is None else run.get("env_steps_per_s" if kind == "train" else "process_steps_per_s")
    loops = m.get("kept", m["loops"]) if kind == "kept" else m["loops"]  # before envpool: every step was kept
    return loops.get(env_id, {}).get(name)


def ratios(g: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Every ratio of :data:`ACCEPTANCE` and :data:`OTHERS`, per task."""
    return {e: {key: ratio(_value(g, e, num), _value(g, e, den)) for key, num, den, _ in (*ACCEPTANCE, *OTHERS)}
            for e in g["env_ids"]}


def _short(env_id: str) -> str:
    return env_id.split("-")[0]


def _mark(x: float | None) -> str:
    return "–" if x is None else ("met" if x >= TARGET else "**missed**")


def _per_task(g: dict[str, Any], key: str) -> str:
    r = ratios(g)
    return ", ".join(f"{_short(e)} {fx(r[e][key])}" for e in g["env_ids"])


def _acceptance_row(g: dict[str, Any], key: str, label: str) -> list[str]:
    """One summary row of an acceptance ratio, marked per task against the target."""
    if key != "sync" and g.get("envpool_skipped"):
        return [f"(g) MuJoCo, {label}", "skipped", f"≥ {TARGET}×", g["envpool_skipped"]]
    r = ratios(g)
    return [f"(g) MuJoCo, {label}", _per_task(g, key), f"≥ {TARGET}×",
            ", ".join(f"{_short(e)} {_mark(r[e][key])}" for e in g["env_ids"])]


def summary_rows(g: dict[str, Any]) -> list[list[str]]:
    if g.get("status") != "finished":
        return []
    wall, _ = _wall_time(g)
    return [_acceptance_row(g, "sync", "rlab-train training / (raw SyncVectorEnv + bare policy), kept env steps/s"),
            _acceptance_row(g, "envpool", "same, both envpool: rlab-train `env.vectorization=envpool` / "
                                          "(raw envpool + bare policy)"),
            _acceptance_row(g, "switch", "rlab-train `env.vectorization=envpool` / (raw SyncVectorEnv + bare policy)"),
            ["(g) MuJoCo: HorizonCollector / (raw + bare policy), sync", _per_task(g, "collector/bare"), "",
             f"N = {g['num_envs']} copies, one torch thread, {fmt(g['max_env_steps'])} env steps per rlab-train run"],
            ["(g) MuJoCo: same, envpool", _per_task(g, "envpool collector/bare"), "", ""],
            ["(g) MuJoCo: raw envpool + bare / raw SyncVectorEnv + bare", _per_task(g, "envpool/sync bare"), "", ""],
            ["(g) MuJoCo: whole experiment wall time", "not measured" if wall is None else "see (g)", "", ""]]


# --------------------------------------------------------------------------- the section
def _cell(g: dict[str, Any], env_id: str, ref: str) -> str:
    """A rate; for raw envpool, the env steps with its reset steps too when they differ."""
    kept = _value(g, env_id, ref)
    if not ref.startswith("kept:"):
        return fmt(kept)
    steps = _value(g, env_id, "steps:" + ref.split(":")[1])
    return fmt(kept) if steps is None or kept is None or abs(steps - kept) <= 0.005 * steps \
        else f"{fmt(kept)} ({fmt(steps)} with reset steps)"


def _loop_table(g: dict[str, Any]) -> list[str]:
    envs = g["env_ids"]
    rows = [[name.format(horizon=fmt(g["horizon"]))]
            + [c for e in envs for c in (_cell(g, e, ref), fx(ratio(_value(g, e, ref), _value(g, e, "kept:raw"))))]
            for name, ref in LOOP_ROWS]
    return table(["loop"] + [c for e in envs for c in (f"{e} kept env steps/s", "vs (i)")], rows)


def _ratio_table(g: dict[str, Any], which: tuple[tuple[str, str, str, str], ...], target: bool) -> list[str]:
    r = ratios(g)
    rows = [[label] + [fx(r[e][key]) + (f" {_mark(r[e][key])}" if target and r[e][key] is not None else "")
                       for e in g["env_ids"]]
            for key, _, _, label in which]
    return table(["ratio of kept env steps/s"] + list(g["env_ids"]), rows)


def _train_table(g: dict[str, Any]) -> list[str]:
    rows = []
    for backend, key in (("sync", "train"), ("envpool", "train_envpool")):
        for e, m in g["median"].get(key, {}).items():
            rows.append([e, backend, m["runs"], fmt(m["env_steps"])] + [fmt(m[k], 2, " s") for k in (
                "wall_s", "process_ext_s", "outside_training_s", "startup_and_save_s", "after_summary_s")]
                + [fmt(m["env_steps_per_s"]), fmt(m["process_steps_per_s"])])
    return table(["task", "env.vectorization", "runs", "env steps", "training", "whole process (outside)",
                  "outside training", "of which start-up + final save", "of which exit", "training env steps/s",
                  "whole-process env steps/s"], rows)


def _wall_time(g: dict[str, Any]) -> tuple[Any, str]:
    """The whole experiment's wall time as the file holds it now, else as it was when (g) was measured."""
    live = read_json(WALL_TIME)
    if live is not None:
        return live, f"`{WALL_TIME.relative_to(ROOT)}`, read when this file was written"
    return g.get("wall_time"), f"`{g.get('wall_time_path')}` as it was when (g) was measured"


def _wall_time_lines(g: dict[str, Any]) -> list[str]:
    data, where = _wall_time(g)
    L = ["", "### Whole experiment wall time", ""]
    if data is None:
        return L + [f"Not measured (no `{WALL_TIME.relative_to(ROOT)}`)."]
    if not isinstance(data, dict):
        return L + [f"From {where}: `{json.dumps(data)}`"]
    rows = [[k, v if isinstance(v, (str, int, float)) else f"`{json.dumps(v)}`"] for k, v in data.items()]
    return L + [f"From {where}:", ""] + table(["variant", "wall time"], rows)


def _intro(g: dict[str, Any]) -> list[str]:
    skipped, threads = g.get("envpool_skipped"), g.get("envpool_threads")
    envpool = (f"envpool rows skipped: {skipped}." if skipped else "envpool rows: not measured in this run."
               if threads is None else f"envpool with {threads} C++ threads (min(N, usable CPUs), as the adapter).")
    return [f"Loops: median of {g['repeats']} repeats of ≥ {g['seconds']} s each ({g['rounds']} round(s) of "
            f"{g['repeats'] // g['rounds']}, all loops of both tasks by turns); `rlab-train`: median of "
            f"{g['rounds']} run(s) per task and backend, after each round of loops, {fmt(g['max_env_steps'])} env "
            "steps each. *Kept* env steps/s = transitions × copies / time. Raw envpool auto-resets on the next "
            "step: the step after an episode's end ignores its action and is no transition, so (i') and (ii') "
            "keep only the others (all their steps in parentheses where that differs by > 0.5 %). Every other "
            "loop resets in the same step and keeps every step; (iii), (iii') check it (`batch.mask.sum() == "
            f"horizon`). (ii), the bare policy: {g.get('bare_policy', OLD_BARE)}. {envpool} "
            + ", ".join(f"{k} {v}" for k, v in g.get("versions", {}).items()) + ".", ""]


def section(g: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", f"## (g) MuJoCo throughput, {' and '.join(g.get('env_ids', ENV_IDS))} × "
         f"{g.get('num_envs', '?')} copies, one torch thread", ""]
    if g.get("status") != "finished":
        return L + [f"Failed: {g.get('error', '')[-500:]}"]
    L += _intro(g) + _loop_table(g)
    L += ["", f"The issue's acceptance, rlab-train's training kept env steps/s ÷ those of the raw vector env + "
          f"bare policy (target ≥ {TARGET}×):", ""] + _ratio_table(g, ACCEPTANCE, target=True)
    L += ["", "Other ratios:", ""] + _ratio_table(g, OTHERS, target=False)
    L += ["", *_train_table(g)]
    L += ["", "*Outside training* = the process timed from outside minus summary.json's `wall_s`; split at "
          "summary.json's `process_wall_s` into *start-up + final save* (interpreter start, imports, Hydra, env "
          "construction; the last checkpoint and summary.json) and *exit* (after the summary). Medians per column."]
    L += _wall_time_lines(g)
    commands = g["commands"]
    return L + ["", "```", *(commands[k] for k in ("loops", "train", "train_envpool") if commands.get(k)), "```"]
