#!/usr/bin/env bash
# Shared by the ablation experiments' run.sh: rerun the preset's sweep into multirun/NAME
# (seeds and settings are in conf/experiment/NAME.yaml), then aggregate it with rlab-report.
# Usage: experiments/sweep_and_report.sh NAME TARGET [rlab-train overrides...]
# TARGET is given explicitly because the presets disable early stopping (same budget for all runs).
set -euo pipefail
NAME=$1 TARGET=$2
shift 2
cd "$(dirname "$0")/.."
SWEEP=multirun/$NAME
rm -rf "$SWEEP"
status=0
# Exit code 1 means some jobs failed: they are listed above and in the report, which is still written.
rlab-train -m "experiment=$NAME" hydra/launcher=joblib "hydra.sweep.dir=$SWEEP" "$@" || status=$?
rlab-report "$SWEEP" --out "experiments/$NAME" --target "$TARGET"
exit $status
