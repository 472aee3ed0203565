"""reinforce-lab benchmarks: one command, every measurement side by side, one results file.

    make bench                      # full: about 15 minutes on 2 cores
    make bench ARGS=--quick         # smoke version, about 3 minutes (results-quick.*)
    .venv/bin/python benchmarks/run.py --only a,e     # some parts only (merged into the results file)

Parts (see benchmarks/README.md for what each measures and why):

  a  time to solve CartPole-v1: ``rlab-train`` (logger=none and W&B offline) vs
     benchmarks/plain_reinforce.py (same algorithm in plain PyTorch), seeds 0-4
  b  rollout throughput at 16 envs: raw vector env, + bare policy, reinforce-lab's collector
  c  the Sutton & Barto Fig. 13.1 set (3 step sizes x 100 runs x 1000 episodes), per-step
     updates (the book's) and one update per episode
  d  an 8-job sweep: joblib launcher vs the basic (sequential) launcher
  e  per-job start-up cost and import times

Every measurement runs in a subprocess with the executables next to the Python running this
script (``Path(sys.executable).parent``), WANDB_MODE=offline, outputs in a temporary folder.
Writes ``benchmarks/results.md`` and ``benchmarks/results.json`` (``--quick``:
``results-quick.*``), rewriting them after every part so an interrupted run keeps what it has.
The machine is shared and noisy: only ratios measured within one run mean much.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra_plugins.rlab_launchers.fork_joblib import usable_cpus, workers_for  # the launcher's own worker count

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PARTS = "abcde"

# The figures quoted by the "Performance" issue (not re-measured here).
REF_PYTORCH_EXAMPLES = {"what": "pytorch/examples reinforcement_learning/reinforce.py on CartPole-v1",
                        "median_solve_s": 60.0, "env_steps_per_s": 1700.0}
REF_NUMPY_FIG13_1 = {"what": "a plain numpy REINFORCE for S&B Fig. 13.1 (100 runs x 1000 episodes per curve)",
                     "per_curve_s": 2.3, "three_curves_s": 7.0}
FIG13_LRS = "0.000244140625,0.0001220703125,0.00006103515625"  # 2^-12, 2^-13, 2^-14

TARGETS = {"rollout_ratio": 0.5, "joblib_speedup": 1.6}


# --------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shown(cmd: list[str]) -> str:
    """The command as a user would type it from the repository root."""
    out = []
    for part in cmd:
        p = Path(part)
        if p.is_absolute() and p.exists():
            try:
                part = str(p.relative_to(ROOT))
            except ValueError:
                pass
        out.append(part)
    return shlex.join(out)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HYDRA_FULL_ERROR="1",
               PYTHONDONTWRITEBYTECODE="1", TQDM_DISABLE="1")
    env.pop("WANDB_API_KEY", None)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (it leads its own session)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.5)  # then make sure worker processes (joblib/loky) went too
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_cmd(cmd: list[str], timeout: float | None = None, monitor=None, poll_s: float = 2.0) -> dict[str, Any]:
    """Run ``cmd`` from the repository root; wall time of the whole process.

    ``monitor(elapsed)`` may return a reason string to stop the command early.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=out, stderr=err, start_new_session=True)
        status, reason = "finished", None
        while True:
            try:
                proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.perf_counter() - start
                if timeout is not None and elapsed >= timeout:
                    status, reason = "timed out", f"killed after the {timeout:.0f} s timeout"
                elif monitor is not None:
                    reason = monitor(elapsed)
                    status = "stopped early" if reason else status
                if reason:
                    _kill_group(proc)
                    break
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if status == "finished" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    return {"cmd": shown(cmd), "wall_s": wall, "rc": proc.returncode, "status": status, "reason": reason,
            "stdout": stdout, "stderr_tail": stderr[-2000:]}


def med(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else None


def ratio(a, b) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def fmt(x, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}{unit}"
    if abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def fx(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}×"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for dist in ("torch", "gymnasium", "pytorch-lightning", "hydra-core", "omegaconf", "wandb", "numpy",
                 "hydra-joblib-launcher", "joblib"):
        try:
            versions[dist] = _md.version(dist)
        except _md.PackageNotFoundError:
            versions[dist] = None
    git = {}
    for key, args in (("commit", ["rev-parse", "HEAD"]), ("status", ["status", "--porcelain", "--untracked-files=no"])):
        try:  # read-only git queries
            git[key] = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                      timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            git[key] = None
    return {"cpu_model": platform.processor() if cpu is None else cpu, "cores": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory": mem, "os": platform.platform(), "python": platform.python_version(),
            "python_executable": shown([sys.executable]), "versions": versions,
            "git_commit": git.get("commit"), "git_dirty": bool(git.get("status")),
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_avg_start": list(os.getloadavg())}


# --------------------------------------------------------------------------- (a) time to solve
def part_a(cfg, tmp: Path) -> dict[str, Any]:
    variants = ["rlab_none", "plain"] + (["rlab_wandb"] if cfg.wandb else [])
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    commands = {}
    for seed in cfg.seeds:
        for v in variants:  # interleaved per seed: load drift hits every variant alike
            out = tmp / "a" / f"{v}-s{seed}"
            if v == "plain":
                cmd = [sys.executable, str(HERE / "plain_reinforce.py"), "--seed", str(seed),
                       "--json", str(out.with_suffix(".json"))]
                commands[v] = shown(cmd[:2]) + " --seed SEED"
            else:
                cmd = [str(BIN / "rlab-train"), f"seed={seed}", "train.progress=false", f"hydra.run.dir={out}"]
                if v == "rlab_none":
                    cmd.insert(2, "logger=none")
                commands[v] = shown(cmd[:-1]).replace(f"seed={seed}", "seed=SEED")
            res = run_cmd(cmd, timeout=cfg.run_timeout)
            summary = read_json(out.with_suffix(".json") if v == "plain" else out / "summary.json") or {}
            row = {"seed": seed, "status": res["status"], "process_ext_s": res["wall_s"]}
            for key in ("wall_s", "process_wall_s", "env_steps", "env_steps_per_s", "episodes",
                        "solved_at_episode", "final_return"):
                row[key] = summary.get(key)
            runs[v].append(row)
            log(f"(a) {v:10s} seed {seed}: solved at episode {row['solved_at_episode']}, "
                f"{fmt(row['env_steps'])} steps, train {fmt(row['wall_s'], 2)} s, "
                f"process {res['wall_s']:.2f} s, {fmt(row['env_steps_per_s'])} steps/s [{res['status']}]")
            if res["status"] != "finished":
                log(f"    stderr: {res['stderr_tail'][-400:]}")
    medians = {}
    for v, rows in runs.items():
        medians[v] = {k: med(r[k] for r in rows) for k in ("wall_s", "process_ext_s", "process_wall_s", "env_steps",
                                                             "env_steps_per_s", "solved_at_episode")}
        medians[v]["solved"] = sum(r["solved_at_episode"] is not None for r in rows)
        medians[v]["runs"] = len(rows)
    ratios = {}
    for v in variants:
        if v == "plain":
            continue
        ratios[f"{v}/plain"] = {
            "training_time": ratio(medians[v]["wall_s"], medians["plain"]["wall_s"]),
            "whole_process": ratio(medians[v]["process_ext_s"], medians["plain"]["process_ext_s"]),
            "env_steps_per_s": ratio(medians[v]["env_steps_per_s"], medians["plain"]["env_steps_per_s"]),
            "env_steps_to_solve": ratio(medians[v]["env_steps"], medians["plain"]["env_steps"]),
        }
    ref = REF_PYTORCH_EXAMPLES
    vs_ref = {v: {"speedup_training_time": ratio(ref["median_solve_s"], medians[v]["wall_s"]),
                  "speedup_whole_process": ratio(ref["median_solve_s"], medians[v]["process_ext_s"]),
                  "env_steps_per_s_ratio": ratio(medians[v]["env_steps_per_s"], ref["env_steps_per_s"])}
              for v in variants}
    return {"runs": runs, "medians": medians, "ratios": ratios, "vs_pytorch_examples": vs_ref,
            "reference": ref, "commands": commands}


# --------------------------------------------------------------------------- (b) rollout throughput
def part_b(cfg, tmp: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "rollout_throughput.py"), "--num-envs", "16",
           "--seconds", str(cfg.b_seconds), "--repeats", str(cfg.b_repeats)]
    log(f"(b) rollout throughput: {shown(cmd)}")
    res = run_cmd(cmd, timeout=600)
    if res["status"] != "finished":
        log(f"(b) failed: {res['stderr_tail'][-600:]}")
        return {"command": res["cmd"], "status": res["status"], "error": res["stderr_tail"]}
    data = json.loads(res["stdout"].strip().splitlines()[-1])
    m = data["median"]
    bare, coll = m["bare"]["vector_steps"], m["collector"]
    data["ratios"] = {
        "bare/raw": ratio(bare, m["raw"]["vector_steps"]),
        "collector/bare (vector env steps)": ratio(coll["vector_steps"], bare),
        "collector/bare (episode transitions)": ratio(coll["transitions"], bare),
        "collector transitions/vector steps": ratio(coll["transitions"], coll["vector_steps"]),
    }
    data["command"] = res["cmd"]
    data["status"] = "finished"
    log(f"(b) raw {fmt(m['raw']['vector_steps'])}, bare {fmt(bare)}, collector {fmt(coll['vector_steps'])} "
        f"vector steps/s ({fmt(coll['transitions'])} episode transitions/s); collector/bare "
        f"{data['ratios']['collector/bare (vector env steps)']:.2f} (vector steps), "
        f"{data['ratios']['collector/bare (episode transitions)']:.2f} (transitions)")
    return data


# --------------------------------------------------------------------------- (c) Fig. 13.1
def _sweep_progress(sweep_dir: Path, num_seeds: int) -> dict[str, int]:
    """Episodes each job of a running sweep has finished (every agent has done that many)."""
    done = {}
    for csv_path in sorted(sweep_dir.glob("*/episodes.csv")):
        try:
            with open(csv_path, "rb") as f:
                rows = max(sum(1 for _ in f) - 1, 0)
        except OSError:
            continue
        done[csv_path.parent.name] = rows // num_seeds
    return done


FIG13_CASES = {"per_step": [], "per_episode": ["loss.sequential=false"]}


def _project(first_seen: dict[str, float], history: dict[str, list[tuple[float, int]]], finished: dict[str, float],
             now: float, n_jobs: int, workers: int, episodes: int, window_s: float = 30.0):
    """Projected end of a running sweep: each started job at its recent rate, the rest scheduled
    on the free workers with the mean duration of the started ones. Returns (total, per-job durations)."""
    durations: dict[str, float] = {}
    for job, t_start in first_seen.items():
        if job in finished:
            durations[job] = finished[job] - t_start
            continue
        hist = history[job]
        t_now, e_now = hist[-1]
        old = [(t, e) for t, e in hist if t <= t_now - window_s] or hist[:1]
        t_old, e_old = old[-1]
        if e_now < 2 or t_now - t_old <= 1 or e_now == e_old:
            return None, {}
        rate = (e_now - e_old) / (t_now - t_old)
        durations[job] = (now - t_start) + (episodes - e_now) / rate
    if not durations:
        return None, {}
    all_ends = [first_seen[j] + d for j, d in durations.items()]
    free = sorted(all_ends) + [now] * max(workers - len(all_ends), 0)
    free = sorted(free)[-workers:]  # when each worker becomes free
    mean_d = statistics.mean(durations.values())
    for job in range(len(durations), n_jobs):  # not started yet: the next free worker takes it
        t = max(free.pop(0), now) + mean_d
        free = sorted(free + [t])
        all_ends.append(t)
        durations[str(job)] = mean_d
    return max(all_ends), durations


def part_c(cfg, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": REF_NUMPY_FIG13_1, "max_episodes": cfg.fig13_episodes, "cases": {}}
    n_jobs, num_seeds = 3, 100
    workers = out["workers"] = workers_for(n_jobs, -1)  # the joblib launcher's default: all 3 at once on 2 cores
    for name in cfg.fig13_cases:
        sweep_dir = tmp / "c" / name
        cmd = [str(BIN / "rlab-train"), "-m", "experiment=sutton_barto_fig13_1", f"optimizer.lr={FIG13_LRS}",
               *FIG13_CASES[name], "hydra/launcher=joblib", "logger=none", "train.progress=false"]
        if cfg.fig13_episodes != 1000:
            cmd.append(f"train.max_episodes={cfg.fig13_episodes}")
        cmd.append(f"hydra.sweep.dir={sweep_dir}")
        first_seen: dict[str, float] = {}
        finished: dict[str, float] = {}
        history: dict[str, list[tuple[float, int]]] = {}
        state: dict[str, Any] = {}
        t0 = time.perf_counter()

        def monitor(elapsed: float, sweep_dir=sweep_dir, first_seen=first_seen, finished=finished,
                    history=history, state=state, name=name):
            progress = _sweep_progress(sweep_dir, num_seeds)
            now = time.perf_counter() - t0
            for job, eps in progress.items():
                first_seen.setdefault(job, now)
                history.setdefault(job, []).append((now, eps))
                if job not in finished and (sweep_dir / job / "summary.json").is_file():
                    finished[job] = now
            projected, durations = _project(first_seen, history, finished, now, n_jobs, workers,
                                            cfg.fig13_episodes)
            if projected is None:
                return None
            state.update(projected_s=projected, projected_job_s=durations, startup_s=min(first_seen.values()))
            if elapsed - state.get("last_log", 0) >= 30:
                state["last_log"] = elapsed
                log(f"(c) {name}: {elapsed:.0f} s, episodes per job {progress}, projected total {projected:.0f} s")
            if elapsed >= cfg.fig13_observe_s and projected > cfg.fig13_timeout:
                return (f"stopped after {elapsed:.0f} s: at their recent rates the {n_jobs} jobs on {workers} "
                        f"workers would take about {projected:.0f} s (> the {cfg.fig13_timeout:.0f} s timeout)")
            return None

        log(f"(c) {name}: {shown(cmd)} (timeout {cfg.fig13_timeout:.0f} s"
            + (f", stopped early after {cfg.fig13_observe_s:.0f} s if projected beyond it)"
               if math.isfinite(cfg.fig13_observe_s) else ")"))
        res = run_cmd(cmd, timeout=cfg.fig13_timeout, monitor=monitor, poll_s=3.0)
        progress = _sweep_progress(sweep_dir, num_seeds)
        durations = state.get("projected_job_s", {})
        jobs = []
        for job in [str(j) for j in range(n_jobs)]:
            s = read_json(sweep_dir / job / "summary.json") or {}
            status = s.get("status", "unfinished" if (sweep_dir / job).is_dir() else "not started")
            done = status == "finished"
            jobs.append({"job": job, "lr": FIG13_LRS.split(",")[int(job)], "status": status, "wall_s": s.get("wall_s"),
                         "env_steps": s.get("env_steps"), "episodes_per_agent": progress.get(job, 0),
                         "duration_s": s.get("wall_s") if done else durations.get(job),
                         "duration_is_projection": not done})
        case = {"command": shown(cmd[:-1]) + " hydra.sweep.dir=TMP", "status": res["status"], "reason": res["reason"],
                "wall_s": res["wall_s"], "jobs": jobs, "projected_s": state.get("projected_s")}
        estimate = res["wall_s"] if res["status"] == "finished" else state.get("projected_s")
        case["total_s_or_projection"] = estimate
        scale = 1000 / cfg.fig13_episodes  # the reference is for 1000 episodes
        case["vs_numpy_3_curves"] = ratio(estimate * scale if estimate else None, REF_NUMPY_FIG13_1["three_curves_s"])
        per_job = [j["duration_s"] for j in jobs if j["duration_s"] is not None]
        case["per_curve_s"] = statistics.mean(per_job) if len(per_job) == n_jobs else None
        case["vs_numpy_per_curve"] = ratio(case["per_curve_s"] * scale if case["per_curve_s"] else None,
                                           REF_NUMPY_FIG13_1["per_curve_s"])
        case["date"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        out["cases"][name] = case
        log(f"(c) {name}: {res['status']} in {res['wall_s']:.1f} s"
            + (f" — {res['reason']}" if res["reason"] else "")
            + "; per job: " + ", ".join(f"{j['job']}={j['status']}/{j['episodes_per_agent']} ep/"
                                        + ("~" if j["duration_is_projection"] else "") + fmt(j["duration_s"], 1, " s")
                                        for j in jobs))
        if res["status"].startswith("failed"):
            log(f"    stderr: {res['stderr_tail'][-600:]}")
    return out


def _c_ratio(c: dict[str, Any]) -> float | None:
    cases = c.get("cases", {})
    if "per_step" in cases and "per_episode" in cases:
        return ratio(cases["per_step"]["total_s_or_projection"], cases["per_episode"]["total_s_or_projection"])
    return None


# --------------------------------------------------------------------------- (d) sweep launchers
_BUSY = "import time; t = time.perf_counter(); sum(i * i for i in range(12_000_000)); print(time.perf_counter() - t)"


def parallel_capacity(repeats: int) -> dict[str, Any]:
    """How much faster two CPU-bound processes finish together than one after the other, right now.

    2.0 on two idle cores; less when other work holds the CPU. The most any 2-worker launcher can gain.
    """
    cmd = [sys.executable, "-c", _BUSY]
    alone, pair = [], []
    for _ in range(repeats):
        alone.append(float(run_cmd(cmd)["stdout"].split()[-1]))
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        pair.append(max(float(pr.communicate()[0].split()[-1]) for pr in procs))
    a, b = med(alone), med(pair)
    return {"command": shown(cmd), "alone_s": alone, "pair_s": pair, "capacity": 2 * a / b if b else None}


def _phases(sweep_dir: Path, launched: float, wall: float) -> dict[str, float | None]:
    """Start-up (until the first job's folder), jobs (until the last summary.json), teardown; in s."""
    starts = [p.stat().st_mtime for p in sweep_dir.glob("*/.hydra/config.yaml")]
    ends = [p.stat().st_mtime for p in sweep_dir.glob("*/summary.json")]
    if not starts or not ends:
        return {"startup_s": None, "jobs_s": None, "teardown_s": None}
    return {"startup_s": min(starts) - launched, "jobs_s": max(ends) - min(starts),
            "teardown_s": launched + wall - max(ends)}


def part_d(cfg, tmp: Path) -> dict[str, Any]:
    seeds = ",".join(str(s) for s in range(cfg.d_jobs))
    # Full mode: the default job (train until solved, as a seed sweep does); quick: a fixed small budget.
    budget = [f"train.max_env_steps={cfg.d_steps}"] if cfg.d_steps else []
    base = [str(BIN / "rlab-train"), "-m", f"seed={seeds}", *budget, "logger=none", "train.progress=false"]
    variants = {"basic": [], "joblib": ["hydra/launcher=joblib"],
                "joblib-loky": ["hydra/launcher=joblib", "hydra.launcher.backend=loky"]}
    out: dict[str, Any] = {"jobs": cfg.d_jobs, "max_env_steps": cfg.d_steps, "runs": {k: [] for k in variants},
                           "commands": {}, "capacity": [], "workers": workers_for(cfg.d_jobs, -1)}
    for rep in range(cfg.d_repeats):
        cap = parallel_capacity(cfg.cap_repeats)
        out["capacity"].append(cap)
        log(f"(d) machine's parallel capacity now: {fx(cap['capacity'])} (2 busy processes vs 1: "
            f"{med(cap['pair_s']):.2f} s vs {med(cap['alone_s']):.2f} s)")
        for launcher, extra in variants.items():
            sweep_dir = tmp / "d" / f"{launcher}-{rep}"
            cmd = base + extra + [f"hydra.sweep.dir={sweep_dir}"]
            out["commands"][launcher] = shown(cmd[:-1])
            launched = time.time()
            res = run_cmd(cmd, timeout=900)
            walls = [(read_json(p) or {}).get("wall_s") for p in sorted(sweep_dir.glob("*/summary.json"))]
            walls = [w for w in walls if w is not None]
            row = {"wall_s": res["wall_s"], "status": res["status"], "jobs_done": len(walls),
                   "sum_job_train_s": sum(walls), "median_job_train_s": med(walls),
                   **_phases(sweep_dir, launched, res["wall_s"])}
            out["runs"][launcher].append(row)
            log(f"(d) {launcher:6s} rep {rep}: {res['wall_s']:.1f} s for {len(walls)} jobs "
                f"(start-up {fmt(row['startup_s'], 1)} s, jobs {fmt(row['jobs_s'], 1)} s, teardown "
                f"{fmt(row['teardown_s'], 1)} s; training {sum(walls):.1f} s summed, {med(walls) or 0:.2f} s "
                f"median per job) [{res['status']}]")
    keys = ("wall_s", "sum_job_train_s", "median_job_train_s", "startup_s", "jobs_s", "teardown_s")
    m = {k: {key: med(r[key] for r in v) for key in keys} for k, v in out["runs"].items()}
    out["medians"] = m
    out["capacity_median"] = med(c["capacity"] for c in out["capacity"])
    out["speedup_joblib"] = ratio(m["basic"]["wall_s"], m["joblib"]["wall_s"])
    out["speedup_joblib_jobs_phase"] = ratio(m["basic"]["jobs_s"], m["joblib"]["jobs_s"])
    out["speedup_joblib_loky"] = ratio(m["basic"]["wall_s"], m["joblib-loky"]["wall_s"])
    # With more workers than cores each job also waits its turn for a core: compare training per core.
    share = min(1.0, usable_cpus() / out["workers"])
    joblib_train = m["joblib"]["sum_job_train_s"]
    out["job_slowdown_in_parallel"] = ratio(joblib_train * share if joblib_train else None, m["basic"]["sum_job_train_s"])
    log(f"(d) joblib speed-up over basic: {fx(out['speedup_joblib'])} (target ≥ {TARGETS['joblib_speedup']}×; "
        f"the machine allows {fx(out['capacity_median'])} now)")
    return out


# --------------------------------------------------------------------------- (e) start-up
IMPORTS = ["torch", "pytorch_lightning", "wandb", "hydra", "gymnasium",
           "torch, pytorch_lightning, wandb, hydra, gymnasium",
           "torch, torch._dynamo", "torch, torchmetrics"]  # what pytorch_lightning spends its time on


def part_e(cfg, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"startup": {}, "imports": {}, "commands": {}}
    python_cmd = [sys.executable, "-c", "pass"]
    train = [str(BIN / "rlab-train")]
    # `python -m reinforce_lab.train` is the same program with the interpreter's normal exit
    # (module teardown); rlab-train skips it (src/reinforce_lab/cli.py).
    cases = {"logger=none": train + ["logger=none"], "logger=wandb (offline)": train,
             "logger=none, normal interpreter exit": [sys.executable, "-m", "reinforce_lab.train", "logger=none"]}
    if not cfg.wandb:
        cases.pop("logger=wandb (offline)")
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    bare = []
    for rep in range(cfg.e_repeats):
        bare.append(run_cmd(python_cmd)["wall_s"])
        for name, extra in cases.items():
            run_dir = tmp / "e" / f"{name.split()[0].replace('=', '-').rstrip(',')}-{len(name)}-{rep}"
            cmd = [*extra, "train.max_env_steps=1", "train.progress=false", f"hydra.run.dir={run_dir}"]
            out["commands"][name] = shown(cmd[:-1])
            res = run_cmd(cmd, timeout=300)
            s = read_json(run_dir / "summary.json") or {}
            train = s.get("wall_s")
            rows[name].append({"process_ext_s": res["wall_s"], "train_s": train,
                               "process_wall_s": s.get("process_wall_s"),
                               "startup_s": res["wall_s"] - train if train is not None else None,
                               "status": res["status"]})
            log(f"(e) {name}: process {res['wall_s']:.2f} s, training {fmt(train, 2)} s [{res['status']}]")
    out["python_bare_s"] = med(bare)
    out["commands"]["python"] = shown(python_cmd)
    for name, r in rows.items():
        out["startup"][name] = {"runs": r, "process_ext_s": med(x["process_ext_s"] for x in r),
                                "train_s": med(x["train_s"] for x in r), "startup_s": med(x["startup_s"] for x in r)}
    for mod in IMPORTS:
        code = (f"import time; t = time.perf_counter(); import {mod}; "
                "print(time.perf_counter() - t)")
        times = []
        for _ in range(cfg.e_repeats):
            res = run_cmd([sys.executable, "-c", code], timeout=120)
            try:
                times.append(float(res["stdout"].strip().splitlines()[-1]))
            except (ValueError, IndexError):
                log(f"(e) import {mod} failed: {res['stderr_tail'][-300:]}")
        out["imports"][mod] = {"runs": times, "median_s": med(times)}
        log(f"(e) import {mod}: {fmt(med(times), 2)} s")
    out["commands"]["imports"] = (shown([sys.executable]) + " -c 'import time; t = time.perf_counter(); "
                                  "import X; print(time.perf_counter() - t)'")
    return out


# --------------------------------------------------------------------------- report
def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m["versions"]
    L = ["# reinforce-lab benchmarks", "",
         f"Written by `{results['command']}` ({results['mode']} mode) on {m['date']}, commit "
         f"`{(m['git_commit'] or '?')[:12]}`{' (with uncommitted changes)' if m['git_dirty'] else ''}. "
         "Raw numbers: `" + results["json_name"] + "`. What each part measures and how: "
         "[README.md](README.md).", "",
         "The machine is shared with other work, so absolute times are noisy (see the load average); "
         "only ratios measured in the same run mean much.", "", "## Machine", ""]
    L += _table(["", ""], [
        ["CPU", m["cpu_model"]], ["cores", f"{m['cores']} (usable: {m['affinity_cores']})"], ["memory", m["memory"]],
        ["load average (1, 5, 15 min) at start", ", ".join(f"{x:.2f}" for x in m["load_avg_start"])],
        ["load average at end", ", ".join(f"{x:.2f}" for x in results.get("load_avg_end", []))],
        ["OS", m["os"]], ["python", m["python"]],
        *[[k, v[k] or "–"] for k in ("torch", "gymnasium", "pytorch-lightning", "hydra-core", "omegaconf", "wandb",
                                      "numpy", "hydra-joblib-launcher")],
        ["date", m["date"]], ["git commit", f"{m['git_commit']}{' (dirty)' if m['git_dirty'] else ''}"]])
    parts = results["parts"]

    # summary
    L += ["", "## Summary", ""]
    srows = []
    if "a" in parts:
        a = parts["a"]
        r = a["ratios"].get("rlab_none/plain", {})
        srows.append(["(a) CartPole-v1 time to solve, rlab-train (logger=none) / plain PyTorch, training time",
                      fx(r.get("training_time")), "", "time to solve depends on luck; steps/s is the overhead"])
        srows.append(["(a) same, env steps/s", fx(r.get("env_steps_per_s")), "", ""])
        srows.append(["(a) same, whole process", fx(r.get("whole_process")), "", ""])
        if "rlab_wandb/plain" in a["ratios"]:
            r = a["ratios"]["rlab_wandb/plain"]
            srows.append(["(a) rlab-train (W&B offline) / plain PyTorch, training time", fx(r.get("training_time")),
                          "", ""])
        ref = a["vs_pytorch_examples"].get("rlab_none", {})
        srows.append(["(a) speed-up vs pytorch/examples reinforce.py (60 s), training time",
                      fx(ref.get("speedup_training_time"), 1), "", "reference figure from the issue, not re-measured"])
    if "b" in parts and parts["b"].get("status") == "finished":
        rb = parts["b"]["ratios"]
        x = rb["collector/bare (vector env steps)"]
        srows.append(["(b) rollout: EpisodeCollector / bare loop, vector env steps/s", f"{x:.0%}",
                      f"≥ {TARGETS['rollout_ratio']:.0%}", "met" if x >= TARGETS["rollout_ratio"] else "**missed**"])
        y = rb["collector/bare (episode transitions)"]
        srows.append(["(b) same, counting only episode transitions", f"{y:.0%}", "",
                      "copies that finished their quota wait for the slowest (unbiased batches), see (b)"])
    if "c" in parts:
        for name, label in (("per_step", "per-step updates (book)"), ("per_episode", "one update per episode")):
            c = parts["c"]["cases"].get(name)
            if c:
                est = c["total_s_or_projection"]
                srows.append([f"(c) Fig. 13.1 set, {label}: time / numpy's ~7 s",
                              fx(c["vs_numpy_3_curves"], 1), "",
                              c["status"] + ("" if c["status"] == "finished" else f"; projection {fmt(est, 0)} s")])
    if "d" in parts:
        d = parts["d"]
        x = d["speedup_joblib"]
        srows.append([f"(d) {d['jobs']}-job sweep, joblib speed-up over basic", fx(x),
                      f"≥ {TARGETS['joblib_speedup']}×",
                      ("–" if x is None else ("met" if x >= TARGETS["joblib_speedup"] else "**missed**"))
                      + (f"; the machine allowed {fx(d['capacity_median'])}" if d.get("capacity_median") else "")])
    if "e" in parts:
        e = parts["e"]
        for name, s in e["startup"].items():
            srows.append([f"(e) per-job start-up, {name}", fmt(s["startup_s"], 2, " s"), "", ""])
        pl = e["imports"].get("pytorch_lightning", {}).get("median_s")
        srows.append(["(e) `import pytorch_lightning` (includes torch)", fmt(pl, 2, " s"), "", ""])
    L += _table(["measurement", "value", "target", "note"], srows)

    if "a" in parts:
        a = parts["a"]
        names = {"rlab_none": "rlab-train, logger=none", "rlab_wandb": "rlab-train, W&B offline (default)",
                 "plain": "plain PyTorch (plain_reinforce.py)"}
        L += ["", "## (a) Time to solve CartPole-v1 (mean return of the last 100 episodes ≥ 475)", "",
              "Same algorithm and hyper-parameters in both: vanilla REINFORCE, native vector CartPole × 8, "
              "MLP 4-64-64-2 tanh, Adam lr 0.005, 16 whole episodes per update (2 per env copy), γ = 0.99 "
              "reward-to-go normalised over the batch, one torch thread. *Training* = the training loop "
              "only (`wall_s`, imports excluded); *process* = the whole command measured from outside "
              "(interpreter start, imports, W&B, exit).", "", "Medians:", ""]
        rows = []
        for k, mm in a["medians"].items():
            rows.append([names[k], f"{mm['solved']}/{mm['runs']}", fmt(mm["wall_s"], 2, " s"),
                         fmt(mm["process_ext_s"], 2, " s"), fmt(mm["env_steps"]), fmt(mm["env_steps_per_s"]),
                         fmt(mm["solved_at_episode"])])
        L += _table(["implementation", "solved", "training", "process", "env steps", "env steps/s",
                     "solved at episode"], rows)
        L += ["", "Ratios of the medians:", ""]
        rows = [[k.replace("rlab_none", "rlab (none)").replace("rlab_wandb", "rlab (W&B)"),
                 fx(r["training_time"]), fx(r["whole_process"]), fx(r["env_steps_per_s"]), fx(r["env_steps_to_solve"])]
                for k, r in a["ratios"].items()]
        L += _table(["ratio", "training time", "whole process", "env steps/s", "env steps to solve"], rows)
        ref = a["reference"]
        L += ["", f"Against the issue's reference, {ref['what']}: median {ref['median_solve_s']:.0f} s to solve at "
              f"about {ref['env_steps_per_s']:,.0f} env steps/s (quoted, not re-measured):", ""]
        rows = [[names[k], fx(r["speedup_training_time"], 1), fx(r["speedup_whole_process"], 1),
                 fx(r["env_steps_per_s_ratio"], 1)] for k, r in a["vs_pytorch_examples"].items()]
        L += _table(["implementation", "speed-up, training time", "speed-up, whole process", "env steps/s ratio"], rows)
        L += ["", "Per seed:", ""]
        rows = []
        for k, rs in a["runs"].items():
            for r in rs:
                rows.append([names[k], r["seed"], r["status"], fmt(r["solved_at_episode"]), fmt(r["env_steps"]),
                             fmt(r["wall_s"], 2, " s"), fmt(r["process_ext_s"], 2, " s"), fmt(r["env_steps_per_s"])])
        L += _table(["implementation", "seed", "status", "solved at episode", "env steps", "training", "process",
                     "env steps/s"], rows)
        L += ["", "Commands (seeds " + ", ".join(str(r["seed"]) for r in next(iter(a["runs"].values()))) + "):", "",
              "```"] + [a["commands"][k] for k in a["commands"]] + ["```"]

    if "b" in parts:
        b = parts["b"]
        L += ["", "## (b) Rollout throughput, CartPole-v1 × 16 copies, one torch thread", ""]
        if b.get("status") != "finished":
            L += [f"Failed: {b.get('error', '')[-500:]}"]
        else:
            md = b["median"]
            L += [f"Median of {b['repeats']} interleaved repeats of ≥ {b['seconds']} s each. *Vector env steps* = "
                  "`envs.step` calls × 16 (what the env simulated); *episode transitions* = the steps the "
                  "collector returns (no auto-reset steps, no steps of copies waiting for the others to "
                  "finish their 2 episodes).", ""]
            rows = [["(i) raw vector env, random actions", fmt(md["raw"]["vector_steps"]), "", fx(1.0)],
                    ["(ii) + bare policy (MLP forward + `torch.multinomial` per step)", fmt(md["bare"]["vector_steps"]),
                     "", fx(b["ratios"]["bare/raw"])],
                    ["(iii) `EpisodeCollector.collect` + `make_policy` (32 episodes per call)",
                     fmt(md["collector"]["vector_steps"]), fmt(md["collector"]["transitions"]),
                     fx(ratio(md["collector"]["vector_steps"], md["raw"]["vector_steps"]))]]
            L += _table(["loop", "vector env steps/s", "episode transitions/s", "vs raw"], rows)
            rb = b["ratios"]
            L += ["", f"(iii)/(ii): **{rb['collector/bare (vector env steps)']:.0%}** in vector env steps/s, "
                  f"**{rb['collector/bare (episode transitions)']:.0%}** in episode transitions/s "
                  f"(target ≥ {TARGETS['rollout_ratio']:.0%}); {rb['collector transitions/vector steps']:.0%} of "
                  "the collector's env steps are episode transitions.", "",
                  "The target is read on env steps/s: that is the framework's cost per step of the vector env, "
                  "what the bare loop measures. The lower transitions/s figure is not overhead but the price of "
                  "unbiased batches: every env copy runs a fixed quota of whole episodes, and copies that have "
                  "finished theirs keep stepping (a vector env steps all copies at once) until the slowest "
                  "copy is done; keeping the first episodes to finish instead would bias each batch towards "
                  "short episodes. The bare loop builds no episodes, so it pays nothing of the kind. With "
                  "equal-length episodes (e.g. a CartPole policy that balances to the 500-step limit) the two "
                  "figures coincide.", "", "```", b["command"], "```"]

    if "c" in parts:
        c = parts["c"]
        ref = c["reference"]
        L += ["", "## (c) Sutton & Barto Fig. 13.1 set (short corridor, 3 step sizes × 100 runs × "
              f"{c['max_episodes']} episodes)", "",
              f"Reference from the issue: {ref['what']}: about {ref['per_curve_s']} s per curve, "
              f"~{ref['three_curves_s']:.0f} s for the 3 curves. The 3 jobs run on the joblib launcher "
              f"({c.get('workers', 2)} workers at once on {results['machine'].get('affinity_cores')} cores: the launcher's default, "
              "which leaves no core idle while the last job finishes); each job trains its 100 runs as 100 agents at once (`train.num_seeds=100`)."
              + (f" Quick mode: {c['max_episodes']} episodes instead of 1000; ratios to the reference are "
                 "scaled ×" + f"{1000 / c['max_episodes']:.0f}." if c["max_episodes"] != 1000 else ""), ""]
        rows = []
        for name, label in (("per_step", "per-step updates (`loss.sequential=true`, the book's)"),
                            ("per_episode", "one update per episode (`loss.sequential=false`)")):
            k = c["cases"].get(name)
            if not k:
                continue
            per_job = "; ".join(f"{j['episodes_per_agent']} ep, " + ("~" if j["duration_is_projection"] else "")
                                + fmt(j["duration_s"], 0, " s") for j in k["jobs"])
            rows.append([label, k["status"], fmt(k["wall_s"], 1, " s"),
                         ("" if k["status"] == "finished" else "~") + fmt(k["total_s_or_projection"], 0, " s"),
                         per_job, fmt(k["per_curve_s"], 1, " s"), fx(k["vs_numpy_3_curves"], 0),
                         fx(k["vs_numpy_per_curve"], 0)])
        L += _table(["updates", "status", "measured wall", "total (~ projected)",
                     "per job α=2^-12; 2^-13; 2^-14: episodes reached, job time (~ projected)",
                     "mean per curve", "vs numpy, 3 curves", "vs numpy, per curve"], rows)
        notes = [f"- {name}: {k['reason']}" for name, k in c["cases"].items() if k.get("reason")]
        if notes:
            L += [""] + notes
        if _c_ratio(c):
            L += ["", f"Per-step / per-episode (whole set): {fx(_c_ratio(c), 1)}."]
        dates = {k: v.get("date") for k, v in c["cases"].items() if v.get("date")}
        if dates:
            L += ["", "Measured: " + ", ".join(f"{k} {d}" for k, d in dates.items()) + "."]
        L += ["", "A projection (~) runs each started job on at its rate over the last 30 s (from the episodes "
              "it has written to `episodes.csv`) and schedules the jobs not yet started on the free workers with "
              "the mean duration of the started ones.", "", "```"]
        L += [k["command"] for k in c["cases"].values()] + ["```"]

    if "d" in parts:
        d = parts["d"]
        size = (f"{d['max_env_steps']:,} env steps each" if d.get("max_env_steps")
                else "the default job: CartPole-v1 until solved, seeds 0–7")
        L += ["", f"## (d) {d['jobs']}-job sweep ({size}): joblib vs basic launcher",
              "", f"Whole command, median of {len(d['runs']['basic'])} run(s) each; *job training* is each job's "
              "`wall_s` (how much slower a job trains when two share the CPU with other work).", ""]
        rows = [[k, fmt(mm["wall_s"], 1, " s"), fmt(mm.get("startup_s"), 1, " s"), fmt(mm.get("jobs_s"), 1, " s"),
                 fmt(mm.get("teardown_s"), 1, " s"), fmt(mm["sum_job_train_s"], 1, " s"),
                 fmt(mm["median_job_train_s"], 2, " s")] for k, mm in d["medians"].items()]
        L += _table(["launcher", "whole sweep", "until the first job starts", "first job start → last job end",
                     "after the last job", "job training, summed", "job training, median"], rows)
        cap = d.get("capacity_median")
        L += ["", f"Speed-up of joblib ({d.get('workers', 2)} workers on {results['machine'].get('affinity_cores')} cores): **{fx(d['speedup_joblib'])}** for the whole command "
              f"(target ≥ {TARGETS['joblib_speedup']}×), {fx(d.get('speedup_joblib_jobs_phase'))} between the first "
              f"job's start and the last one's end; summed over the jobs, training took {fx(d['job_slowdown_in_parallel'])} "
              "as long per core under joblib as under basic (job training × cores / workers when workers outnumber "
              "cores).", "",
              f"*joblib* is our launcher (`conf/hydra/launcher/joblib.yaml`): the plugin's launcher with workers "
              f"forked from a parent that has imported torch and Lightning already; *joblib-loky* is the stock "
              f"plugin's fresh `loky` worker processes, which import them again: "
              f"{fx(d.get('speedup_joblib_loky'))} over basic.", "",
              f"Parallel capacity of the machine during the run: **{fx(cap)}** — two CPU-bound Python processes "
              "at once vs one (2.0× on two idle cores). No launcher on 2 cores can beat it; the target of 1.6× "
              "assumes about 2×.", "", "```"] + [d["commands"][k] + " hydra.sweep.dir=TMP" for k in d["commands"]] + [
              (d["capacity"][0]["command"] if d.get("capacity") else "") + "   # alone, then 2 at once", "```"]

    if "e" in parts:
        e = parts["e"]
        L += ["", "## (e) Per-job start-up cost and import times", "",
              "Start-up = whole process (measured from outside) − training time (`wall_s`) of a run with "
              "`train.max_env_steps=1` (one batch of 16 episodes). `rlab-train` leaves without the "
              "interpreter's module teardown (`src/reinforce_lab/cli.py`); the *normal interpreter exit* row is "
              "the same program run as `python -m reinforce_lab.train`, which keeps it.", ""]
        rows = [[name, fmt(s["process_ext_s"], 2, " s"), fmt(s["train_s"], 2, " s"), fmt(s["startup_s"], 2, " s")]
                for name, s in e["startup"].items()]
        rows.append(["`python -c pass` (interpreter alone)", fmt(e["python_bare_s"], 2, " s"), "", ""])
        L += _table(["run", "whole process", "training", "start-up"], rows)
        L += ["", "Import time, each in a fresh interpreter (`import X` timed inside; a module's time includes "
              "what it imports, e.g. pytorch_lightning includes torch):", ""]
        L += _table(["import", "time"], [[f"`{k}`", fmt(x["median_s"], 2, " s")] for k, x in e["imports"].items()])
        L += ["", "```"] + [e["commands"][k] for k in e["commands"]] + ["```"]
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description="reinforce-lab benchmarks (see benchmarks/README.md)")
    parser.add_argument("--quick", action="store_true", help="smoke version, about 2-3 minutes")
    parser.add_argument("--only", default=PARTS, help="parts to run, e.g. 'a,e' (default: all of abcde)")
    parser.add_argument("--seeds", help="seeds for part (a), e.g. 0-4 or 0,1 (default: 0-4; quick: 0)")
    parser.add_argument("--no-wandb", action="store_true", help="skip the W&B offline runs in (a) and (e)")
    parser.add_argument("--fig13-timeout", type=float,
                        help="timeout of each Fig. 13.1 sweep in s (default 900; quick 90)")
    parser.add_argument("--fig13-cases", default="per_step,per_episode",
                        help="which Fig. 13.1 sweeps to run (default: per_step,per_episode)")
    parser.add_argument("--fig13-observe", type=float,
                        help="stop a Fig. 13.1 sweep early after this many s when its projection exceeds the "
                             "timeout (default 90; quick 20; 0 = never stop early)")
    parser.add_argument("--sweep-repeats", type=int, help="repeats of each (d) sweep (default 3; quick 1)")
    parser.add_argument("--out", help="results file stem (default benchmarks/results; quick: benchmarks/results-quick)")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: rewrite results.md from results.json")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary run folders")
    parser.add_argument("--fresh", action="store_true", help="do not keep parts of an earlier results.json")
    args = parser.parse_args()

    parts = [p for p in args.only.replace(",", "") if p in PARTS]
    quick = args.quick
    cfg = argparse.Namespace(
        seeds=_parse_seeds(args.seeds) if args.seeds else ([0] if quick else list(range(5))),
        wandb=not args.no_wandb and not quick,
        run_timeout=600,
        b_seconds=0.5 if quick else 2.0, b_repeats=2 if quick else 5,
        fig13_episodes=100 if quick else 1000,
        fig13_cases=[c for c in args.fig13_cases.split(",") if c in FIG13_CASES],
        fig13_timeout=args.fig13_timeout or (90.0 if quick else 900.0),
        fig13_observe_s=(args.fig13_observe if args.fig13_observe is not None else (20.0 if quick else 90.0))
        or float("inf"),
        d_jobs=4 if quick else 8, d_steps=10_000 if quick else None, d_repeats=args.sweep_repeats or (1 if quick else 3),
        e_repeats=1 if quick else 2, cap_repeats=1 if quick else 3,
    )
    stem = Path(args.out) if args.out else HERE / ("results-quick" if quick else "results")
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    command = "make bench" + (" ARGS=--quick" if quick else "") if not sys.argv[1:] or sys.argv[1:] == ["--quick"] \
        else shown([sys.executable, str(Path(__file__))]) + " " + shlex.join(sys.argv[1:])
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "command": command,
                               "json_name": json_path.name, "machine": machine_info(), "parts": {}}
    old = read_json(json_path) if not args.fresh and set(parts) != set(PARTS) else None
    if old and old.get("mode") == results["mode"]:
        results["parts"] = old.get("parts", {})  # keep earlier parts; the ones run now replace theirs
        results["earlier_parts_from"] = old.get("machine", {}).get("date")
    if args.report_only:
        old = read_json(json_path)
        if old is None:
            sys.exit(f"error: no {json_path} to report from")
        md_path.write_text(report(old))
        log(f"rewrote {md_path} from {json_path}")
        return
    log(f"{results['mode']} benchmark, parts {','.join(parts)}; machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, load {results['machine']['load_avg_start']}; results → "
        f"{md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path}")
    tmp = Path(tempfile.mkdtemp(prefix="rlab-bench-"))
    started = time.perf_counter()
    try:
        for p in parts:
            t = time.perf_counter()
            log(f"part ({p}) …")
            new = {"a": part_a, "b": part_b, "c": part_c, "d": part_d, "e": part_e}[p](cfg, tmp)
            if p == "c" and "c" in results["parts"]:  # keep the earlier result of a case not run now
                new["cases"] = {**results["parts"]["c"].get("cases", {}), **new["cases"]}
            results["parts"][p] = new
            results["parts"][p]["bench_s"] = time.perf_counter() - t
            results["parts"][p]["date"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
            results["load_avg_end"] = list(os.getloadavg())
            _write(results, json_path, md_path)
            log(f"part ({p}) done in {time.perf_counter() - t:.0f} s")
    finally:
        if args.keep_tmp:
            log(f"run folders kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    _write(results, json_path, md_path)
    log(f"done in {results['total_s']:.0f} s: {md_path}, {json_path}")


def _write(results: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(report(results))


def _parse_seeds(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


if __name__ == "__main__":
    main()
