#!/usr/bin/env bash
# Regenerates experiments/sutton_barto_fig13_1/{results.md,figure.png,report.md,summary.csv,curves.png}.
# Two sweeps of three jobs (α = 2^-12, 2^-13, 2^-14), each job 100 runs × 1000 episodes as agents
# of one process: with the reference code's floor π ≥ 0.05 (the preset) and without it (the
# book's algorithm as printed, policy.min_prob=0).
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/sutton_barto_fig13_1
ALPHAS=optimizer.lr=0.000244140625,0.0001220703125,0.00006103515625
rm -rf "$SWEEP"
rlab-train -m experiment=sutton_barto_fig13_1 "$ALPHAS" \
  "hydra.sweep.dir=$SWEEP/floor" hydra/launcher=joblib train.progress=false
rlab-train -m experiment=sutton_barto_fig13_1 "$ALPHAS" policy.min_prob=0 \
  "hydra.sweep.dir=$SWEEP/no_floor" hydra/launcher=joblib train.progress=false
python experiments/sutton_barto_plot.py "$SWEEP/floor" experiments/sutton_barto_fig13_1 --figure 13.1 \
  --also "$SWEEP/no_floor"
rlab-report "$SWEEP/floor" "$SWEEP/no_floor" --out experiments/sutton_barto_fig13_1 --x episode
