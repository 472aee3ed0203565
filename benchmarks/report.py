"""The reporter: turns a benchmark results file (``results.json``) into its tables (``results.md``).

    .venv/bin/python benchmarks/report.py                          # benchmarks/results.json → results.md
    .venv/bin/python benchmarks/report.py /tmp/r.json --md /tmp/r.md

It writes the header, the machine and the summary table; each part's rows of the summary and its
section come from the part's own ``measure_*.py`` file (its ``MEASUREMENT``). Measures nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import measure_fig13_1
import measure_launchers
import measure_mujoco
import measure_peers
import measure_rollout
import measure_scaling
import measure_slurm_startup
import measure_startup
import measure_time_to_solve
from common import HERE, Measurement, log, read_json, table

# Every part, in the order results.md shows them.
MEASUREMENTS: dict[str, Measurement] = {m.part: m for m in (
    measure_time_to_solve.MEASUREMENT, measure_rollout.MEASUREMENT, measure_fig13_1.MEASUREMENT,
    measure_launchers.MEASUREMENT, measure_startup.MEASUREMENT,
    measure_slurm_startup.MEASUREMENT, measure_mujoco.MEASUREMENT, measure_peers.MEASUREMENT,
    measure_scaling.MEASUREMENT)}
VERSIONS_SHOWN = ("torch", "gymnasium", "pytorch-lightning", "hydra-core", "omegaconf", "wandb", "numpy",
                  "hydra-joblib-launcher")


def _header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    v = m["versions"]
    L = ["# reinforce-lab benchmarks", "",
         f"Written by `{results['command']}` ({results['mode']} mode) on {m['date']}, commit "
         f"`{(m['git_commit'] or '?')[:12]}`{' (with uncommitted changes)' if m['git_dirty'] else ''}. "
         "Raw numbers: `" + results["json_name"] + "`. What each part measures and how: "
         "[README.md](README.md).", "",
         "The machine is shared with other work, so absolute times are noisy (see the load average); "
         "only ratios measured in the same run mean much.", "", "## Machine", ""]
    return L + table(["", ""], [
        ["CPU", m["cpu_model"]], ["cores", f"{m['cores']} (usable: {m['affinity_cores']})"], ["memory", m["memory"]],
        ["load average (1, 5, 15 min) at start", ", ".join(f"{x:.2f}" for x in m["load_avg_start"])],
        ["load average at end", ", ".join(f"{x:.2f}" for x in results.get("load_avg_end", []))],
        ["OS", m["os"]], ["python", m["python"]], *[[k, v[k] or "–"] for k in VERSIONS_SHOWN],
        ["date", m["date"]], ["git commit", f"{m['git_commit']}{' (dirty)' if m['git_dirty'] else ''}"]])


def report(results: dict[str, Any]) -> str:
    """results.md for ``results``: header, machine, summary, then one section per part measured."""
    parts = results["parts"]
    present = [m for p, m in MEASUREMENTS.items() if p in parts]
    L = _header(results) + ["", "## Summary", ""]
    rows = [row for m in present for row in m.summary_rows(parts[m.part])]
    L += table(["measurement", "value", "target", "note"], rows)
    for m in present:
        L += m.section(parts[m.part], results)
    return "\n".join(L) + "\n"


def write_markdown(json_path: Path, md_path: Path) -> None:
    """Rewrite ``md_path`` from ``json_path`` (the results file of an earlier run)."""
    results = read_json(json_path)
    if results is None:
        sys.exit(f"error: no {json_path} to report from")
    md_path.write_text(report(results))
    log(f"rewrote {md_path} from {json_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description="write results.md from results.json (measures nothing)")
    parser.add_argument("json", nargs="?", default=str(HERE / "results.json"), help="default: benchmarks/results.json")
    parser.add_argument("--md", help="default: the results file with .md instead of .json")
    args = parser.parse_args()
    json_path = Path(args.json)
    write_markdown(json_path, Path(args.md) if args.md else json_path.with_suffix(".md"))


if __name__ == "__main__":
    main()
