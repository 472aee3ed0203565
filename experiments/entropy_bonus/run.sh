#!/usr/bin/env bash
# Regenerates experiments/entropy_bonus/{report.md,summary.csv,curves.png}: entropy bonus β = 0, 0.01, 0.1, CartPole-v1, 10 seeds.
# The sweep (seeds and settings) is in conf/experiment/entropy_bonus.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/entropy_bonus/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/entropy_bonus
rm -rf "$SWEEP"
status=0
# Exit code 1 means some jobs failed: they are listed above and in the report, which is still written.
rlab-train -m experiment=entropy_bonus hydra/launcher=joblib "hydra.sweep.dir=$SWEEP" "$@" || status=$?
# No early stop in the preset, so "episodes to target" needs the target given here.
rlab-report "$SWEEP" --out experiments/entropy_bonus --target 475
exit $status
