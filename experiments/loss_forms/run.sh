#!/usr/bin/env bash
# Regenerates experiments/loss_forms/{results.md,curves.png}: the three loss forms, same seed, plain SGD.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/loss_forms
rm -rf "$SWEEP"
rlab-train -m experiment=loss_forms env=cartpole,pendulum loss=log_prob,cross_entropy,update_rule \
  device.precision=32-true,64-true \
  "hydra.sweep.dir=$SWEEP" train.progress=false
python experiments/loss_forms/compare.py "$SWEEP" experiments/loss_forms
