"""(f) Per-job start-up on SLURM: where the seconds of a small ``submitit_slurm`` sweep job go, next to
the same jobs run directly on the machine, logger=none and W&B offline, in the same run.

Alone: ``.venv/bin/python benchmarks/measure_slurm_startup.py [--repeats N] [--out STEM]`` (as
``run.py --only f``). Without a usable cluster (no ``sinfo``, or the node not idle) it says so in
one line and measures nothing; under ``run.py`` the part is then recorded as skipped.

No instrumentation: every time comes from what the run writes anyway (the submission script's
mtime, submitit's log lines, ``summary.json``'s ``process_wall_s``/``wall_s``, ``episodes.csv``'s
mtime, ``sacct``), plus /proc polled from here for when each job's Python is gone (the cluster
of ``scripts/slurm-local.sh`` runs on this machine; sacct's End has a 1-s resolution).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from common import BIN, Measurement, fmt, fx, log, med, read_json, run_cmd, shown, table

JOB = ["hydra.launcher.partition=cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
TRAIN = ["train.max_env_steps=300", "env.num_envs=2", "algo.episodes_per_update=2", "train.progress=false"]
LOGGERS = {"none": ["logger=none"], "wandb (offline)": []}  # the default logger is W&B; run_cmd sets offline
SLURM_PHASES = ["a_queue", "b_interp", "c1_to_hydra", "c2_to_train", "d_train", "e_teardown", "e2_exit",
                "e3_slurm_end"]
DIRECT_PHASES = ["c1_to_hydra", "c2_to_train", "d_train", "e_teardown"]
_SUBMITIT = re.compile(r"^submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\) - (.*)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, help="(f) sweeps of 2 jobs per logger (default 3; quick 1)")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(repeats=getattr(args, "repeats", None) or (1 if args.quick else 3))


def cluster_problem() -> str | None:
    """Why the sweep cannot be measured here, or None when the one node is idle."""
    try:
        res = subprocess.run(["timeout", "3", "sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
    except OSError:
        return "no `sinfo`: no SLURM cluster"
    states = set(res.stdout.split())
    if res.returncode != 0 or not states:
        return f"`sinfo` did not answer in 3 s (exit {res.returncode}): no SLURM cluster up"
    if states != {"idle"}:  # someone's jobs would share the cores and skew every phase
        return f"SLURM node(s) not idle ({', '.join(sorted(states))})"
    return None


def _epoch(stamp: str) -> float:
    """submitit's log time (local time, milliseconds) as seconds since the epoch."""
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _sacct(array_id: str) -> dict[str, dict[str, float]]:
    """Submit/Start/End (1-s resolution) of each task of the array, by ``<array>_<task>``."""
    out: dict[str, dict[str, float]] = {}
    for _ in range(20):  # End reads "Unknown" until slurmdbd has recorded it
        res = subprocess.run(["sacct", "-n", "-P", "-X", "-j", array_id, "-o", "JobID,Submit,Start,End,State"],
                             capture_output=True, text=True, timeout=30)
        lines = res.stdout.splitlines()
        for line in lines:
            jid, *stamps, _state = line.split("|")
            try:
                out[jid] = dict(zip(("submit", "start", "end"),
                                    (dt.datetime.fromisoformat(s).timestamp() for s in stamps)))
            except ValueError:
                pass
        if lines and len(out) == len(lines):
            break
        time.sleep(0.5)
    return out


class ProcWatch(threading.Thread):
    """Polls /proc for the jobs' ``submitit.core._submit`` processes: when each was last alive."""

    def __init__(self, needle: str, poll_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.needle, self.poll_s, self.stop = needle, poll_s, threading.Event()
        self.first_seen: dict[str, float] = {}  # "<array>_<task>" → time
        self.last_seen: dict[str, float] = {}
        self.jobs: dict[str, str | None] = {}  # pid → its job, None if not ours (read once: polls stay cheap)

    def _job(self, pid: str) -> str | None:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"submitit.core._submit" not in cmd or self.needle.encode() not in cmd:
                return None
            env = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                       if b"=" in kv)
            return f"{env[b'SLURM_ARRAY_JOB_ID'].decode()}_{env[b'SLURM_ARRAY_TASK_ID'].decode()}"
        except (OSError, KeyError, ValueError):
            return None  # gone meanwhile, or not a job's process

    @staticmethod
    def _zombie(pid: str) -> bool:
        """Exited but not yet reaped by srun: it stays in /proc, and is not running our code any more."""
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
        except (OSError, IndexError):
            return True

    def run(self) -> None:
        while not self.stop.wait(self.poll_s):
            now = time.time()
            for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                if pid not in self.jobs:
                    self.jobs[pid] = self._job(pid)
                if (job := self.jobs[pid]) and not self._zombie(pid):
                    self.first_seen.setdefault(job, now)
                    self.last_seen[job] = now


def _train_times(run_dir: Path) -> tuple[float, float, dict[str, Any]] | None:
    """(training start, training end, summary) in epoch seconds, from the files the run wrote."""
    s = read_json(run_dir / "summary.json")
    csv = run_dir / "episodes.csv"
    if not s or s.get("status") != "finished" or not csv.exists():
        return None
    end = csv.stat().st_mtime  # closed right after trainer.fit returns, before the checkpoint
    s["hydra_written"] = (run_dir / ".hydra" / "config.yaml").stat().st_mtime  # Hydra, just before the task
    return end - s["wall_s"], end, s


def _sweep(logger: str, rep: int, tmp: Path) -> dict[str, Any]:
    """One 2-job sweep; its phases per job and the parent's own time before and after the jobs."""
    sweep_dir = tmp / "f" / f"sweep-{logger.split()[0]}-{rep}"
    cmd = [str(BIN / "rlab-train"), "-m", "hydra/launcher=submitit_slurm", *JOB, "seed=0,1", *TRAIN,
           *LOGGERS[logger], f"hydra.sweep.dir={sweep_dir}"]
    watch = ProcWatch(str(sweep_dir))
    watch.start()
    t0 = time.time()
    res = run_cmd(cmd, timeout=600)
    watch.stop.set()
    watch.join()
    out: dict[str, Any] = {"cmd": shown(cmd[:-1]), "status": res["status"], "sweep_s": res["wall_s"], "jobs": []}
    subs = sorted((sweep_dir / ".submitit").glob(".submission_file_*.sh"))
    ids = sorted(p.name for p in (sweep_dir / ".submitit").glob("*_*") if p.is_dir())
    if res["status"] != "finished" or not subs or not ids:
        log(f"(f) sweep {logger} failed: {res['status']} {res['stderr_tail'][-300:]}")
        return out
    submit = subs[0].stat().st_mtime  # written just before sbatch
    acct = _sacct(ids[0].split("_")[0])
    out["parent_before_submit_s"] = submit - t0
    for jid in ids:
        times, lines = _train_times(sweep_dir / jid.split("_")[1]), {}
        log_out = sweep_dir / ".submitit" / jid / f"{jid}_0_log.out"
        for line in log_out.read_text().splitlines() if log_out.exists() else []:
            if m := _SUBMITIT.match(line):
                lines.setdefault(m.group(2).split(":")[0], _epoch(m.group(1)))
        a, gone = acct.get(jid, {}), watch.last_seen.get(jid)
        if times is None or "Loading pickle" not in lines or "Exiting after successful completion" not in lines:
            log(f"(f) job {jid}: incomplete records, left out")
            continue
        t_start, t_end, s = times
        # First seen in /proc (psutil's create_time, behind process_wall_s, rests on the boot time
        # rounded to the second: up to 1 s off, which the first try showed as negative phases).
        first = watch.first_seen.get(jid)
        proc_start = first - watch.poll_s / 2 if first else \
            (sweep_dir / jid.split("_")[1] / "summary.json").stat().st_mtime - s["process_wall_s"]
        exiting = lines["Exiting after successful completion"]
        gone = None if gone is None else gone + watch.poll_s / 2
        out["jobs"].append({
            "job": jid, "a_queue": proc_start - submit, "b_interp": lines["Loading pickle"] - proc_start,
            "c1_to_hydra": s["hydra_written"] - lines["Loading pickle"],
            "c2_to_train": t_start - s["hydra_written"], "d_train": s["wall_s"], "e_teardown": exiting - t_end,
            "e2_exit": None if gone is None else gone - exiting,
            # sacct's End is truncated to the second: +0.5 s is its expected value
            "e3_slurm_end": None if gone is None or "end" not in a else a["end"] + 0.5 - gone,
            "sacct_submit_to_start_s": a["start"] - a["submit"] if a else None,
            "job_total_s": a["end"] + 0.5 - submit if a else None,
            "process_s": None if gone is None else gone - proc_start, "exiting": exiting})
    # submitit calls a job done once its result pickle exists, i.e. at "Exiting …", not at process end
    last = max((j["exiting"] for j in out["jobs"]), default=None)
    out["parent_after_jobs_s"] = None if last is None else t0 + res["wall_s"] - last
    return out


def _direct(logger: str, rep: int, tmp: Path) -> dict[str, Any]:
    """The sweep's two jobs as two plain ``rlab-train`` runs at once (as the 2 SLURM jobs run)."""
    results: list[dict[str, Any]] = [{}, {}]

    def one(seed: int) -> None:
        run_dir = tmp / "f" / f"direct-{logger.split()[0]}-{rep}-{seed}"
        cmd = [str(BIN / "rlab-train"), f"seed={seed}", *TRAIN, *LOGGERS[logger], f"hydra.run.dir={run_dir}"]
        t0 = time.time()
        res = run_cmd(cmd, timeout=300)
        times = _train_times(run_dir)
        results[seed] = {"cmd": shown(cmd[:-1]), "status": res["status"], "process_s": res["wall_s"]}
        if times:
            results[seed].update(startup=times[0] - t0, c1_to_hydra=times[2]["hydra_written"] - t0,
                                 c2_to_train=times[0] - times[2]["hydra_written"], d_train=times[2]["wall_s"],
                                 e_teardown=t0 + res["wall_s"] - times[1])

    threads = [threading.Thread(target=one, args=(seed,)) for seed in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"runs": results}


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if why := cluster_problem():
        log(f"(f) skipped: {why}")
        return {"skipped": why}
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    out: dict[str, Any] = {"lscpu": [ln for ln in lscpu if ln.split(":")[0] in ("Model name", "CPU(s)")],
                           "load_start": list(os.getloadavg()), "repeats": cfg.repeats, "cases": {}}
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {lg: {"sweeps": [], "direct": []} for lg in LOGGERS}
    for rep in range(cfg.repeats):  # loggers and SLURM/direct by turns: the machine's speed drifts
        for logger in LOGGERS:
            raw[logger]["sweeps"].append(sw := _sweep(logger, rep, tmp))
            raw[logger]["direct"].append(d := _direct(logger, rep, tmp))
            log(f"(f) {logger} #{rep}: sweep {sw['sweep_s']:.1f} s, jobs " + ", ".join(
                f"{fmt(j['process_s'], 1)} s" for j in sw["jobs"]) + "; direct " + ", ".join(
                f"{r.get('process_s', 0):.1f} s" for r in d["runs"]))
    for logger, r in raw.items():
        jobs = [j for s in r["sweeps"] for j in s["jobs"]]
        runs = [x for d in r["direct"] for x in d["runs"] if "startup" in x]
        out["cases"][logger] = {
            "slurm": {k: med(j[k] for j in jobs) for k in
                      [*SLURM_PHASES, "sacct_submit_to_start_s", "job_total_s", "process_s"]},
            "direct": {k: med(x[k] for x in runs) for k in ["startup", *DIRECT_PHASES, "process_s"]},
            "sweep": {k: med(s.get(k) for s in r["sweeps"]) for k in
                      ("sweep_s", "parent_before_submit_s", "parent_after_jobs_s")},
            "n_jobs": len(jobs), "n_direct": len(runs), "raw": r,
            "commands": [r["sweeps"][0]["cmd"], r["direct"][0]["runs"][0].get("cmd")]}
    out["load_end"] = list(os.getloadavg())
    return out


def merge_earlier(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A skipped run (no cluster here) keeps the numbers of the last run that had one."""
    return old if "skipped" in new and "skipped" not in old else new


# --------------------------------------------------------------------------- report
def summary_rows(f: dict[str, Any]) -> list[list[str]]:
    if "skipped" in f:
        return [["(f) per-job start-up on SLURM", "skipped", "", f["skipped"]]]
    rows = []
    for logger, c in f["cases"].items():
        s, d = c["slurm"], c["direct"]
        rows.append([f"(f) SLURM job, submit → Python gone / direct process, logger={logger.split()[0]}",
                     f"{fmt(s['a_queue'] + s['process_s'], 1)} s / {fmt(d['process_s'], 1)} s", "",
                     fx(_ratio(s['a_queue'] + s['process_s'], d['process_s']))])
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def section(f: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", "## (f) Per-job start-up on SLURM (`hydra/launcher=submitit_slurm`) vs the same jobs run directly", ""]
    if "skipped" in f:
        return L + [f"Skipped: {f['skipped']}."]
    L += [f"Machine: {'; '.join(' '.join(x.split()) for x in f['lscpu'])}; load average "
          f"{', '.join(f'{x:.2f}' for x in f['load_start'])} at the start, "
          f"{', '.join(f'{x:.2f}' for x in f['load_end'])} at the end. "
          f"{f['repeats']} sweeps of 2 jobs per logger, each followed by the same 2 jobs as 2 plain `rlab-train` "
          "runs at once; medians over jobs, seconds. SLURM phases: (a) submission script written → the job's "
          "Python process starts (first seen in /proc, polled every 0.1 s); (b) → submitit's `Loading pickle` "
          "line (interpreter, `import submitit`); (c1) → Hydra writes the job's `.hydra/config.yaml` "
          "(unpickling the task imports reinforce_lab.train, which pulls in torch; Hydra's job set-up); "
          "(c2) → training starts (`episodes.csv` mtime − `wall_s`: Lightning, envs, W&B init); (d) `wall_s`; "
          "(e) training end → submitit's `Exiting after successful completion` (checkpoint, summary, W&B "
          "finish, result pickle); (e2) → the process is gone (/proc polled every 0.1 s); (e3) → sacct End "
          "(+0.5 s, it is truncated to the second). Direct: (c1) launch → `.hydra/config.yaml` (interpreter, "
          "imports, Hydra's plugin scan and config composition), (c2) as above, (e) training end → exit.", ""]
    hdr = ["", "(a) queue", "(b) interp.", "(c1) → .hydra", "(c2) → train", "(d) train", "(e) teardown", "(e2) exit", "(e3) SLURM end",
           "total"]
    rows = []
    for logger, c in f["cases"].items():
        s, d = c["slurm"], c["direct"]
        rows.append([f"SLURM, logger={logger} ({c['n_jobs']} jobs)", *(fmt(s[k], 2) for k in SLURM_PHASES),
                     fmt(s["job_total_s"], 2)])
        rows.append([f"direct, logger={logger} ({c['n_direct']} runs)", "–", "–",
                     *(fmt(d[k], 2) for k in DIRECT_PHASES), "", "", fmt(d["process_s"], 2)])
    L += table(hdr, rows)
    L += ["", "Whole sweep (2 jobs) and the parent `rlab-train -m` itself (medians):", ""]
    L += table(["logger", "sweep", "parent start-up until sbatch", "parent after the last job's result",
                "sacct Submit → Start"],
               [[lg, fmt(c["sweep"]["sweep_s"], 1), fmt(c["sweep"]["parent_before_submit_s"], 1),
                 fmt(c["sweep"]["parent_after_jobs_s"], 1), fmt(c["slurm"]["sacct_submit_to_start_s"], 0)]
                for lg, c in f["cases"].items()])
    cmds = [x for c in f["cases"].values() for x in c["commands"] if x]
    return L + ["", "```", *cmds, "```"]


MEASUREMENT = Measurement("f", add_arguments, settings, measure, summary_rows, section, merge_earlier)

if __name__ == "__main__":
    import sys

    if why := cluster_problem():  # alone: one line, nothing measured, no results file touched
        print(f"measure_slurm_startup: skipped: {why}")
        sys.exit(0)
    import run  # the driver, with this part only

    run.main(parts="f", script=__file__)
