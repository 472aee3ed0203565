#!/usr/bin/env bash
# Regenerates experiments/gamma_t/{report.md,summary.csv,curves.png}: the book's γ^t factor on vs off, CartPole-v1, 10 seeds.
# The sweep (seeds and settings) is in conf/experiment/gamma_t.yaml; extra arguments are passed to
# rlab-train, e.g. `bash experiments/gamma_t/run.sh hydra.launcher.n_jobs=8`.
set -euo pipefail
exec "$(dirname "$0")/../sweep_and_report.sh" gamma_t 475 "$@"
