"""The variance lens on the short corridor: bias and variance of every advantage estimator at fixed θ.

For each estimator in ``reinforce_lab.advantages.ADVANTAGES`` (read at run time) and each
π(right) = p, draws M independent batches at that fixed θ, computes ĝ = −∇_θ L of each with
the project's own loss (``PolicyGradientLoss``, γ = 1, γ^t on, no normalisation) and compares
the mean with the exact ∇J of S&B Example 13.1 (``reinforce_lab.exact_gradient``). Every
estimator sees the *same* batches (same generator and env seeds: common random numbers), so
the variance comparison between estimators is paired. Writes ``gradient_variance.csv`` and
``gradient_variance.png`` into ``--out``.

    python experiments/gradient_variance/run.py --batches 200 --out experiments/gradient_variance
"""

from __future__ import annotations

import argparse
import csv
import inspect
import time
from pathlib import Path
from typing import Any

import torch

from reinforce_lab import advantages
from reinforce_lab.envs import ShortCorridorVectorEnv
from reinforce_lab.exact_gradient import exact_gradient, preferences_for, start_value
from reinforce_lab.gradient_variance import collector_batches, measure, z_to_p_two_sided
from reinforce_lab.networks import mlp
from reinforce_lab.objectives import PolicyGradientLoss
from reinforce_lab.policies import PreferencePolicy
from reinforce_lab.rollout import EpisodeCollector

COLUMNS = ("estimator", "p", "J", "exact_dtheta_right", "mean_dtheta_right", "sem_dtheta_right", "bias", "z",
           "p_value", "cosine", "grad_var", "grad_var_x_episodes", "snr", "num_samples", "episodes", "env_steps",
           "seconds")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.59, 0.8, 0.9], help="π(right) values")
    ap.add_argument("--batches", type=int, default=50, help="M batches per agent (samples = M × agents)")
    ap.add_argument("--agents", type=int, default=64, help="replicas at the same θ, each with its own stream")
    ap.add_argument("--episodes", type=int, default=16, help="episodes per batch (algo.episodes_per_update)")
    ap.add_argument("--envs", type=int, default=1,
                    help="env copies per agent; keep 1 for rloo/group_norm (see measure_one)")
    ap.add_argument("--group-size", type=int, default=4, help="k of rloo / group_norm")
    ap.add_argument("--value", type=float, default=None,
                    help="the fixed v̂ of baseline/td (states are aliased: a constant); default J(p)")
    ap.add_argument("--estimators", nargs="*", default=None, help="a subset of ADVANTAGES (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("experiments/gradient_variance"))
    return ap.parse_args()


def build_estimator(name: str, policy: PreferencePolicy, generators: list[torch.Generator], value: float,
                    group_size: int) -> advantages.AdvantageEstimator:
    """``make_estimator`` for ``name``, with a fixed v̂ ≡ ``value`` where it needs one (measured at fixed w)."""
    value_fn = mlp(1, 1, [], generators=generators, output_bias=False)  # v̂(s, w) = w·[1]: aliased states
    with torch.no_grad():
        for w in value_fn.parameters():
            w.fill_(value)
    options = dict(gamma=1.0, gamma_t=True, group_size=group_size, policy=policy)
    accepted = inspect.signature(advantages.make_estimator).parameters
    return advantages.make_estimator(name, value_fn, **{k: v for k, v in options.items() if k in accepted})


def measure_one(name: str, p: float, args: argparse.Namespace) -> dict[str, Any]:
    """One (estimator, p) row: M batches at θ with π(right) = p."""
    s, n = args.agents, args.envs
    gens = [torch.Generator().manual_seed(args.seed * 10_000 + i) for i in range(s)]
    policy = PreferencePolicy(1, 2, [1 - p, p], gens)
    theta = preferences_for(p)
    value = args.value if args.value is not None else float(start_value(theta))
    loss = PolicyGradientLoss(policy, build_estimator(name, policy, gens, value, args.group_size), normalize=False)
    # A batch lists an agent's episodes in the order they *finished*. With several copies per
    # agent that order depends on the episodes' lengths, so the slot groups [g·k, (g+1)·k) of
    # rloo/group_norm would hold episodes of similar length (a baseline correlated with the
    # episode itself: biased). Training avoids that with the collector's ``group_size`` layout,
    # which the corridor's numpy vector env refuses (one seed for all copies); with one copy
    # per agent the order is the order run, independent of outcomes, and as the corridor's
    # start is deterministic k consecutive episodes are distributed as a group sharing a seed.
    collector = EpisodeCollector(ShortCorridorVectorEnv(s * n, max_episode_steps=1000), args.episodes,
                                 seeds=[args.seed * 10_000 + i for i in range(s * n)], num_seeds=s, generators=gens)
    draw, steps = collector_batches(collector, loss), [0]

    def counted():
        batch = draw()
        steps[0] += batch.num_steps
        return batch

    exact = exact_gradient(policy.theta.detach()[0])
    t0 = time.perf_counter()
    stats = measure(loss, counted, args.batches, exact, pool_agents=True)
    z = float(stats.z[0, 1])
    return {"estimator": name, "p": p, "J": float(start_value(theta)), "exact_dtheta_right": float(exact[1]),
            "mean_dtheta_right": float(stats.mean[0, 1]), "sem_dtheta_right": float(stats.sem[0, 1]),
            "bias": float(stats.bias[0, 1]), "z": z, "p_value": z_to_p_two_sided(z),
            "cosine": float(stats.cosine[0]), "grad_var": float(stats.total_var[0]),
            "grad_var_x_episodes": float(stats.total_var[0]) * args.episodes, "snr": float(stats.snr[0]),
            "num_samples": stats.num_samples, "episodes": stats.num_samples * args.episodes,
            "env_steps": steps[0], "seconds": time.perf_counter() - t0}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Left: tr Cov[ĝ] per estimator vs p (log scale); right: mean ∂J/∂θ_right ± 2 SEM vs the exact curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_var, ax_mean) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(dict.fromkeys(r["estimator"] for r in rows))
    for k, name in enumerate(names):
        own = sorted((r for r in rows if r["estimator"] == name), key=lambda r: r["p"])
        ps = [r["p"] for r in own]
        ax_var.plot(ps, [r["grad_var"] for r in own], marker="o", label=name)
        shift = (k - (len(names) - 1) / 2) * 0.006  # side by side, so error bars do not hide each other
        ax_mean.errorbar([x + shift for x in ps], [r["mean_dtheta_right"] for r in own],
                         yerr=[2 * r["sem_dtheta_right"] for r in own], fmt="o", ms=3, capsize=2, label=name)
    grid = torch.linspace(min(r["p"] for r in rows) - 0.03, max(r["p"] for r in rows) + 0.03, 200,
                          dtype=torch.float64)
    exact = exact_gradient(torch.stack([torch.log(1 - grid), torch.log(grid)], -1))[:, 1]
    ax_mean.plot(grid.tolist(), exact.tolist(), color="k", lw=1, label="exact ∂J/∂θ_right")
    ax_mean.axhline(0, color="grey", lw=0.5)
    ax_var.set(yscale="log", xlabel="π(right) = p", ylabel="tr Cov[ĝ] (per batch)",
               title="variance of the gradient estimate")
    ax_mean.set(xlabel="π(right) = p", ylabel="∂J/∂θ_right", title="mean ± 2 SEM vs exact gradient")
    ax_var.legend(fontsize=8)
    ax_mean.legend(fontsize=8)
    fig.suptitle("Short corridor (S&B Ex. 13.1), γ = 1, fixed θ", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    names = args.estimators or list(advantages.ADVANTAGES)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in args.p:
        for name in names:
            row = measure_one(name, p, args)
            rows.append(row)
            print(f"p={p:.2f} {name:>16}: ∂J/∂θ_r exact {row['exact_dtheta_right']:8.3f} mean "
                  f"{row['mean_dtheta_right']:8.3f} ± {row['sem_dtheta_right']:.3f}  z {row['z']:+6.2f}  "
                  f"tr Cov {row['grad_var']:10.2f}  ({row['seconds']:.1f} s)", flush=True)
    with open(args.out / "gradient_variance.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "gradient_variance.png")
    print(f"wrote {args.out / 'gradient_variance.csv'} and {args.out / 'gradient_variance.png'}")


if __name__ == "__main__":
    main()
