#!/usr/bin/env bash
# Regenerates experiments/sutton_barto_fig13_2/{results.md,figure.png,report.md,summary.csv,curves.png}.
# REINFORCE with baseline (α_θ = 2^-9, α_w = 2^-6) against REINFORCE (α = 2^-13), 100 runs × 1000 episodes each.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/sutton_barto_fig13_2
rm -rf "$SWEEP"
rlab-train -m experiment=sutton_barto_fig13_1,sutton_barto_fig13_2 \
  "hydra.sweep.dir=$SWEEP" hydra/launcher=joblib train.progress=false
python experiments/sutton_barto_plot.py "$SWEEP" experiments/sutton_barto_fig13_2 --figure 13.2
rlab-report "$SWEEP" --out experiments/sutton_barto_fig13_2 --x episode
