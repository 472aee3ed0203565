#!/usr/bin/env bash
# Regenerates experiments/variants_cartpole/{report.md,summary.csv,curves.png}.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/variants_cartpole
rm -rf "$SWEEP"
rlab-train -m experiment=variants_cartpole algo=reinforce,reinforce_baseline,reinforce_entropy,actor_critic \
  "hydra.sweep.dir=$SWEEP" hydra/launcher=joblib train.progress=false
rlab-report "$SWEEP" --out experiments/variants_cartpole --target 475
