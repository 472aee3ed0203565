#!/usr/bin/env bash
# Regenerates experiments/continuous/{report.md,summary.csv,curves.png}: Gaussian REINFORCE with vs without a learned baseline, InvertedPendulum-v5, 3 seeds.
# The sweep (seeds and settings) is in conf/experiment/continuous.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/continuous/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
exec "$(dirname "$0")/../sweep_and_report.sh" continuous 950 "$@"
