"""reinforce-lab benchmarks: one command, every measurement side by side, one results file.

    make bench                      # full: about 40 minutes on 2 cores, (h) about 15 of them
    make bench ARGS=--quick         # smoke version, about 5 minutes (results-quick.*)
                                    # (the first run of (h) also builds benchmarks/.peers-venv: ~2 min)
    .venv/bin/python benchmarks/run.py --only a,e     # some parts only (merged into the results file)
    .venv/bin/python benchmarks/run.py --report-only  # measure nothing: results.md from results.json

Parts, one file each (see benchmarks/README.md for what each measures and why):

  a  measure_time_to_solve.py  time to solve CartPole-v1: ``rlab-train`` (logger=none and W&B offline)
                               vs benchmarks/plain_reinforce.py (same algorithm in plain PyTorch), seeds 0-4
  b  measure_rollout.py        rollout throughput at 16 envs: raw vector env, + bare policy, the collector
  c  measure_fig13_1.py        the Sutton & Barto Fig. 13.1 set (3 step sizes x 100 runs x 1000 episodes),
                               per-step updates (the book's) and one update per episode
  d  measure_launchers.py      an 8-job sweep: joblib launcher vs the basic (sequential) launcher
  e  measure_startup.py        per-job start-up cost and import times
  f  measure_slurm_startup.py  per-job start-up of a small submitit_slurm sweep vs the same jobs run directly
                               (skipped without an idle SLURM cluster)
  g  measure_mujoco.py         MuJoCo throughput (HalfCheetah-v5, InvertedPendulum-v5, 64 copies), gymnasium's
                               SyncVectorEnv and envpool: raw, + bare policy, HorizonCollector, rlab-train
  h  measure_peers.py          time to solve CartPole-v1 vs the peers users would pick instead: Tianshou
                               2.0.1's REINFORCE and SB3's A2C (rl-zoo settings) beside rlab-train's default
                               job, seeds 0-4; the peers in their own venv benchmarks/.peers-venv, built on
                               first use (skipped where it cannot be built)
  i  measure_scaling.py        time per env step as train.num_seeds grows (1-1000 agents on the short
                               corridor, 1-64 on CartPole-v1), and the figure scaling.png

Each of them runs alone too (``.venv/bin/python benchmarks/measure_rollout.py --quick``): that is
this driver with that part only. ``report.py`` writes ``results.md``; ``common.py`` holds what the
parts share (running and timing a command, medians, formatting).

Every measurement runs in a subprocess with the executables next to the Python running this
script (``Path(sys.executable).parent``), WANDB_MODE=offline, outputs in a temporary folder.
Writes ``benchmarks/results.md`` and ``benchmarks/results.json`` (``--quick``:
``results-quick.*``), rewriting them after every part so an interrupted run keeps what it has.
The machine is shared and noisy: only ratios measured within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import HERE, ROOT, Measurement, log, machine_info, now_iso, read_json, shown
from report import MEASUREMENTS, report, write_markdown

PARTS = "".join(MEASUREMENTS)


def build_parser(measurements: list[Measurement], standalone: bool) -> argparse.ArgumentParser:
    """The driver's flags, then each part's own (a flag two parts share is defined once)."""
    what = f"part ({measurements[0].part}) alone" if standalone else "all parts, or those of --only"
    parser = argparse.ArgumentParser(description=f"reinforce-lab benchmarks: {what} (see benchmarks/README.md)",
                                     conflict_handler="resolve")
    parser.add_argument("--quick", action="store_true", help="smoke version, about 2-3 minutes")
    if not standalone:
        parser.add_argument("--only", default=PARTS, help=f"parts to run, e.g. 'a,e' (default: all of {PARTS})")
    for m in measurements:
        m.add_arguments(parser)
    parser.add_argument("--out", help="results file stem (default benchmarks/results; quick: benchmarks/results-quick)")
    if not standalone:
        parser.add_argument("--report-only", action="store_true",
                            help="measure nothing: rewrite results.md from results.json")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary run folders")
    parser.add_argument("--fresh", action="store_true", help="do not keep parts of an earlier results.json")
    return parser


def _start(args: argparse.Namespace, parts: list[str], json_path: Path, command: str) -> dict[str, Any]:
    """The results of this run before any part: the machine, and the parts of an earlier run kept."""
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "command": command,
                               "json_name": json_path.name, "machine": machine_info(), "parts": {}}
    old = read_json(json_path) if not args.fresh and set(parts) != set(PARTS) else None
    if old and old.get("mode") == results["mode"]:
        results["parts"] = old.get("parts", {})  # keep earlier parts; the ones run now replace theirs
        results["earlier_parts_from"] = old.get("machine", {}).get("date")
    return results


def _write(results: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(report(results))


def _measure_all(args: argparse.Namespace, parts: list[str], results: dict[str, Any], json_path: Path,
                 md_path: Path) -> None:
    """Run the parts one after the other, writing the results files after each."""
    tmp = Path(tempfile.mkdtemp(prefix="rlab-bench-"))
    try:
        for p in parts:
            t = time.perf_counter()
            log(f"part ({p}) …")
            m = MEASUREMENTS[p]
            new = m.measure(m.settings(args), tmp)
            if p in results["parts"]:
                new = m.merge_earlier(results["parts"][p], new)
            results["parts"][p] = new
            new["bench_s"] = time.perf_counter() - t
            new["date"] = now_iso()
            results["load_avg_end"] = list(os.getloadavg())
            _write(results, json_path, md_path)
            log(f"part ({p}) done in {time.perf_counter() - t:.0f} s")
    finally:
        if args.keep_tmp:
            log(f"run folders kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None, parts: str | None = None, script: str = __file__) -> None:
    """``run.py`` itself (all parts, --only picks), or one ``measure_*.py`` run alone (``parts``)."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = [MEASUREMENTS[p] for p in (parts or PARTS)]
    args = build_parser(chosen, standalone=parts is not None).parse_args(argv)
    selected = [p for p in (parts or args.only.replace(",", "")) if p in PARTS]
    stem = Path(args.out) if args.out else HERE / ("results-quick" if args.quick else "results")
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    if getattr(args, "report_only", False):
        write_markdown(json_path, md_path)
        return
    command = ("make bench" + (" ARGS=--quick" if args.quick else "")
               if parts is None and argv in ([], ["--quick"])
               else shown([sys.executable, str(Path(script).resolve())]) + " " + shlex.join(argv)).rstrip()
    results = _start(args, selected, json_path, command)
    log(f"{results['mode']} benchmark, parts {','.join(selected)}; machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, load {results['machine']['load_avg_start']}; results → "
        f"{md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path}")
    started = time.perf_counter()
    _measure_all(args, selected, results, json_path, md_path)
    results["total_s"] = time.perf_counter() - started
    _write(results, json_path, md_path)
    log(f"done in {results['total_s']:.0f} s: {md_path}, {json_path}")


if __name__ == "__main__":
    main()
