#!/usr/bin/env bash
# Regenerates experiments/return_normalisation/{report.md,summary.csv,curves.png}: return normalisation on vs off, CartPole-v1, 10 seeds.
# The sweep (seeds and settings) is in conf/experiment/return_normalisation.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/return_normalisation/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/return_normalisation
rm -rf "$SWEEP"
status=0
# Exit code 1 means some jobs failed: they are listed above and in the report, which is still written.
rlab-train -m experiment=return_normalisation hydra/launcher=joblib "hydra.sweep.dir=$SWEEP" "$@" || status=$?
# No early stop in the preset, so "episodes to target" needs the target given here.
rlab-report "$SWEEP" --out experiments/return_normalisation --target 475
exit $status
