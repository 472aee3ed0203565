#!/usr/bin/env bash
# Regenerates experiments/return_normalisation/{report.md,summary.csv,curves.png}: return normalisation on vs off, CartPole-v1, 10 seeds.
# The sweep (seeds and settings) is in conf/experiment/return_normalisation.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/return_normalisation/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
exec "$(dirname "$0")/../sweep_and_report.sh" return_normalisation 475 "$@"
