#!/usr/bin/env bash
# Regenerates experiments/gradient_variance/: the variance lens (bias and variance of every advantage estimator).
#   1. short corridor, exact gradient:   gradient_variance.{csv,png}          (~6–8 min on 2 CPU cores)
#   2. CartPole-v1 / InvertedPendulum-v5, many-batch estimates at two fixed θ: many_batch.{csv,png}  (~8 min)
#   3. learning curves on CartPole-v1, 5 seeds per estimator, 100k env steps: learning/{report.md,summary.csv,curves.png}
# Run folders (checkpoints of step 2, the training runs of step 3) go to multirun/gradient_variance/.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/gradient_variance
RUNS=multirun/gradient_variance
export MUJOCO_GL=egl
COMMON=(logger=none train.progress=false train.torch_threads=1 train.target_return=null)

# 1. Short corridor (S&B Ex. 13.1): M = 60 batches × 64 agents = 3840 samples of ĝ per estimator and p.
python "$OUT/run.py" --batches 60 --out "$OUT"

# 2. Many-batch estimates. θ: the initial policy of seed 0, and a reinforce_baseline run after 30k env
#    steps (its v̂ serves baseline/td). At most 150 s of sampling per (env, θ) cell.
rm -rf "$RUNS/ckpt_cartpole" "$RUNS/ckpt_inverted_pendulum" "$OUT/many_batch.csv" "$OUT/value_fit.csv"
rlab-train env=cartpole algo=reinforce_baseline seed=0 train.max_env_steps=30000 "${COMMON[@]}" \
    hydra.run.dir="$RUNS/ckpt_cartpole"
rlab-train env=inverted_pendulum algo=reinforce_baseline seed=0 train.max_env_steps=30000 "${COMMON[@]}" \
    hydra.run.dir="$RUNS/ckpt_inverted_pendulum"
for env in cartpole:CartPole-v1 inverted_pendulum:InvertedPendulum-v5; do
    name=${env%%:*} id=${env#*:}
    python "$OUT/run_many_batch.py" --env "$id" --batches 400 --max-seconds 150 --out "$OUT"
    python "$OUT/run_many_batch.py" --env "$id" --ckpt "$RUNS/ckpt_$name/checkpoints/last.ckpt" \
        --batches 400 --max-seconds 150 --out "$OUT"
    # How much of G_t's variance the checkpoint's v̂ explains (value_fit.csv).
    python "$OUT/run_many_batch.py" --value-fit --env "$id" --ckpt "$RUNS/ckpt_$name/checkpoints/last.ckpt" \
        --batches 10 --out "$OUT"
done

# 3. Learning curves: CartPole-v1, 5 seeds per estimator in one job each, 100k env steps, no early stop,
#    algo.normalize_returns=false for all (optimal_constant needs it; the estimators are compared as they are).
rm -rf "$RUNS/learning"
LEARN=("${COMMON[@]}" env=cartpole seed=0 train.num_seeds=5 train.max_env_steps=100000 algo.normalize_returns=false)
GROUPED=(algo.group_size=4 env.vectorization=sync)
rlab-train algo=reinforce "${LEARN[@]}" hydra.run.dir="$RUNS/learning/return"
rlab-train algo=reinforce_baseline "${LEARN[@]}" hydra.run.dir="$RUNS/learning/baseline"
rlab-train algo=actor_critic "${LEARN[@]}" hydra.run.dir="$RUNS/learning/td"
rlab-train algo=reinforce algo.advantage=batch_mean "${LEARN[@]}" hydra.run.dir="$RUNS/learning/batch_mean"
rlab-train algo=reinforce algo.advantage=rloo "${GROUPED[@]}" "${LEARN[@]}" hydra.run.dir="$RUNS/learning/rloo"
rlab-train algo=reinforce algo.advantage=group_norm "${GROUPED[@]}" "${LEARN[@]}" \
    hydra.run.dir="$RUNS/learning/group_norm"
rlab-train algo=reinforce algo.advantage=optimal_constant "${LEARN[@]}" hydra.run.dir="$RUNS/learning/optimal_constant"
rlab-report "$RUNS/learning" --out "$OUT/learning" --target 475
# The v̂ of the learning runs after 100k steps (agent 0 = seed 0), as in step 2.
for name in baseline td; do
    python "$OUT/run_many_batch.py" --value-fit --env CartPole-v1 --ckpt "$RUNS/learning/$name/checkpoints/last.ckpt" \
        --theta "learning_${name}_seed0_100k" --batches 3 --out "$OUT"
done
