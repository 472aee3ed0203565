#!/usr/bin/env bash
# Regenerates experiments/entropy_bonus/{report.md,summary.csv,curves.png}: entropy bonus β = 0, 0.01, 0.1, CartPole-v1, 10 seeds.
# The sweep (seeds and settings) is in conf/experiment/entropy_bonus.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/entropy_bonus/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
exec "$(dirname "$0")/../sweep_and_report.sh" entropy_bonus 475 "$@"
