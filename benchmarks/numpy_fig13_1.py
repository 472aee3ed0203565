"""A lock-step numpy REINFORCE for Sutton & Barto Fig. 13.1: the yardstick of benchmark part (c).

The same set as ``rlab-train -m experiment=sutton_barto_fig13_1 optimizer.lr=2^-12,2^-13,2^-14``:
the short corridor with switched actions (S&B Example 13.1: aliased states, −1 per step,
episodes capped at 1000 steps), state-independent action preferences θ with one-hot features
(θ initialised so that π(right) = 0.05), γ = 1, and the book's per-step rule
θ ← θ + α γ^t G_t ∇ln π(A_t|θ) for t = 0, 1, … in order (§13.3), with
∇ln π(a|θ) = x(a) − Σ_b π(b|θ) x(b) (eq. 13.9). ``--min-prob`` floors every action probability
as the preset's ``policy.min_prob`` does (0.05; 0 is the book's algorithm as printed), and the
score is then taken of the floored π, as in rlab and in the widely used reproduction code.

The 100 runs of a curve are stepped together ("lock-step"): one numpy array per quantity with
one row per run, one numpy Generator for all of them. Each episode is sampled with the θ it
starts with, then θ moves after every step of it. Plain, vectorised numpy as one would write it
by hand; it learns the same thing as rlab (not the same random numbers).

Alone: ``python benchmarks/numpy_fig13_1.py [--alphas 2^-13] [--episodes 1000] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

ALPHAS = (2.0 ** -12, 2.0 ** -13, 2.0 ** -14)
# Corridor dynamics (S&B Example 13.1): NEXT[state, action], action 0 = left, 1 = right; the
# second state reverses the actions; 3 is the goal, absorbing here so finished runs stay put.
NEXT = np.array([[0, 1], [2, 0], [1, 3], [3, 3]], dtype=np.int64)
GOAL = 3


def floored(p: np.ndarray, min_prob: float) -> np.ndarray:
    """Probabilities below ``min_prob`` raised to it, the others scaled to keep the sum 1 (rlab's floor)."""
    low = p < min_prob
    if not low.any():
        return p
    n_low = low.sum(-1, keepdims=True)
    rest = np.where(low, 0.0, p).sum(-1, keepdims=True)
    return np.where(low, min_prob, p * (1.0 - n_low * min_prob) / rest)


def policy(theta: np.ndarray, min_prob: float) -> np.ndarray:
    """π(·|θ) of every run, ``[runs, 2]``: softmax of the preferences, floored."""
    z = np.exp(theta - theta.max(-1, keepdims=True))
    p = z / z.sum(-1, keepdims=True)
    return floored(p, min_prob) if min_prob > 0 else p


def rollout(p_right: np.ndarray, rng: np.random.Generator, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """One episode of every run, stepped together: ``(actions [runs, T], lengths [runs])``."""
    runs = len(p_right)
    state = np.zeros(runs, dtype=np.int64)
    lengths = np.zeros(runs, dtype=np.int64)
    actions = np.zeros((runs, cap), dtype=np.int64)
    running = np.ones(runs, dtype=bool)
    t = 0
    while running.any() and t < cap:
        a = (rng.random(runs) < p_right).astype(np.int64)
        actions[:, t] = a
        state = NEXT[state, a]
        lengths += running
        running &= state != GOAL
        t += 1
    return actions[:, :t], lengths


def update(theta: np.ndarray, actions: np.ndarray, lengths: np.ndarray, alpha: float, gamma: float,
           min_prob: float) -> None:
    """The book's per-step rule over one episode of every run, θ moving after each step (in place)."""
    t = np.arange(actions.shape[1])
    real = t < lengths[:, None]
    # G_t = Σ_{k=t+1}^{T} γ^{k-t-1} R_k with R = −1: −(T − t) for γ = 1.
    left = lengths[:, None] - t
    g = -left.astype(float) if gamma == 1.0 else -(1.0 - gamma ** left) / (1.0 - gamma)
    coef = alpha * gamma ** t * g * real  # [runs, T], 0 after a run's episode ended
    onehot = np.eye(2)[actions]  # [runs, T, 2]
    for k in range(actions.shape[1]):
        theta += coef[:, k, None] * (onehot[:, k] - policy(theta, min_prob))


def run_curve(alpha: float, runs: int = 100, episodes: int = 1000, min_prob: float = 0.05, gamma: float = 1.0,
              cap: int = 1000, seed: int = 0) -> np.ndarray:
    """``[runs, episodes]`` returns of one curve of the figure (one step size α)."""
    rng = np.random.default_rng(seed)
    init = np.log([0.95, 0.05])
    theta = np.tile(init - init.mean(), (runs, 1))  # π(right) = 0.05, as rlab's init_probs
    returns = np.zeros((runs, episodes))
    for e in range(episodes):
        actions, lengths = rollout(policy(theta, min_prob)[:, 1], rng, cap)
        returns[:, e] = -lengths
        update(theta, actions, lengths, alpha, gamma, min_prob)
    return returns


def _number(text: str) -> float:
    """A step size as given: ``0.0001220703125`` or ``2^-13``."""
    base, _, power = text.strip().partition("^")
    return float(base) ** float(power) if power else float(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", default=",".join(str(a) for a in ALPHAS), help="comma-separated step sizes")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--min-prob", type=float, default=0.05)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    curves = []
    t0 = time.perf_counter()
    for alpha in (_number(a) for a in args.alphas.split(",")):
        t = time.perf_counter()
        returns = run_curve(alpha, args.runs, args.episodes, args.min_prob, args.gamma, seed=args.seed)
        curves.append({"alpha": alpha, "seconds": time.perf_counter() - t, "mean_return": float(returns.mean()),
                       "last_100_mean_return": float(returns[:, -100:].mean())})
    out = {"runs": args.runs, "episodes": args.episodes, "min_prob": args.min_prob, "curves": curves,
           "seconds": time.perf_counter() - t0}
    if args.json:
        print(json.dumps(out))
        return
    for c in curves:
        print(f"alpha={c['alpha']:.8g}: {c['seconds']:.2f} s, mean return {c['mean_return']:.3f} "
              f"(last 100 episodes {c['last_100_mean_return']:.3f})")
    print(f"total {out['seconds']:.2f} s")


if __name__ == "__main__":
    main()
