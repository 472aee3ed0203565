#!/usr/bin/env bash
# Regenerates experiments/sutton_barto_fig13_1/{results.md,figure.png,report.md,summary.csv,curves.png}.
# Three jobs (α = 2^-12, 2^-13, 2^-14), each 100 runs × 1000 episodes as agents of one process.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/sutton_barto_fig13_1
rm -rf "$SWEEP"
rlab-train -m experiment=sutton_barto_fig13_1 optimizer.lr=0.000244140625,0.0001220703125,0.00006103515625 \
  "hydra.sweep.dir=$SWEEP" hydra/launcher=joblib train.progress=false
python experiments/sutton_barto_plot.py "$SWEEP" experiments/sutton_barto_fig13_1 --figure 13.1
rlab-report "$SWEEP" --out experiments/sutton_barto_fig13_1 --x episode
