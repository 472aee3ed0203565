#!/usr/bin/env bash
# Regenerates experiments/continuous/{report.md,summary.csv,curves.png}: Gaussian REINFORCE with vs without a learned baseline, InvertedPendulum-v5, 3 seeds.
# The sweep (seeds and settings) is in conf/experiment/continuous.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/continuous/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWEEP=multirun/continuous
rm -rf "$SWEEP"
status=0
# Exit code 1 means some jobs failed: they are listed above and in the report, which is still written.
rlab-train -m experiment=continuous hydra/launcher=joblib "hydra.sweep.dir=$SWEEP" "$@" || status=$?
# No early stop in the preset, so "episodes to target" needs the target given here.
rlab-report "$SWEEP" --out experiments/continuous --target 950
exit $status
