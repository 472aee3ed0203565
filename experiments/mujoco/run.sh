#!/usr/bin/env bash
# Regenerates experiments/mujoco/{results.md,summary.csv,curves.png,wall_time.json}: REINFORCE and
# REINFORCE with a learned baseline on 7 MuJoCo tasks × 5 seeds × 1M env steps, against Tianshou's
# published REINFORCE (experiments/mujoco/published_tianshou.csv).
# Usage: bash experiments/mujoco/run.sh [reinforce|baseline|all] [rlab-train overrides...]
#   default all; each variant is one sweep (7 jobs, 5 agents each) into multirun/mujoco_<variant>,
#   2 jobs at a time (hydra/launcher=joblib; more cores: hydra.launcher.n_jobs=8).
# Settings: conf/experiment/mujoco_reinforce.yaml and mujoco_baseline.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARIANTS=${1:-all}
[ $# -gt 0 ] && shift
case $VARIANTS in
  all) VARIANTS="reinforce baseline" ;;
  reinforce|baseline) ;;
  report) VARIANTS="" ;;  # only collect the finished jobs of both sweeps and rewrite the report
  *) echo "error: variant=$VARIANTS is not allowed; allowed: reinforce, baseline, all, report" >&2; exit 2 ;;
esac
BIN=${BIN:-.venv/bin}
status=0
for v in $VARIANTS; do
  sweep=multirun/mujoco_$v
  rm -rf "$sweep"
  start=$(date +%s)
  "$BIN/rlab-train" -m "experiment=mujoco_$v" hydra/launcher=joblib hydra.launcher.n_jobs=2 \
    "hydra.sweep.dir=$sweep" train.progress=false "$@" || status=$?
  end=$(date +%s)
  "$BIN/python" - "$v" "$((end - start))" <<'PY'
import json, sys, pathlib
p = pathlib.Path("experiments/mujoco/wall_time.json")
d = json.loads(p.read_text()) if p.exists() else {}
name = {"reinforce": "reinforce", "baseline": "reinforce_baseline"}[sys.argv[1]]
d[name] = f"{int(sys.argv[2]) / 60:.0f} min for 7 jobs x 5 agents x 1M env steps, 2 jobs at a time"
p.write_text(json.dumps(d, indent=1) + "\n")
PY
done
# Keep what the report reads of every finished job (evals.csv, summary.json, config) in experiments/mujoco/data/.
for v in reinforce baseline; do
  for job in multirun/mujoco_$v/*/; do
    [ -f "$job/summary.json" ] && [ -f "$job/evals.csv" ] || continue
    task=$(sed -n 's/^  id: //p' "$job/.hydra/config.yaml" | head -1)
    dest=experiments/mujoco/data/$v/$task
    mkdir -p "$dest/.hydra"
    cp "$job/evals.csv" "$job/summary.json" "$dest/"
    cp "$job/.hydra/config.yaml" "$dest/.hydra/"
  done
done
"$BIN/python" experiments/mujoco/report.py experiments/mujoco/data/reinforce experiments/mujoco/data/baseline \
  --out experiments/mujoco || status=$?
exit $status
