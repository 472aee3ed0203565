"""The variance lens without an exact gradient: many-batch estimates on CartPole-v1 and InvertedPendulum-v5.

At a fixed θ (the initial policy of ``--seed``, or the policy of an ``rlab-train`` checkpoint)
draws M batches of ``--episodes`` episodes and computes, on **each** batch, ĝ = −∇_θ L of every
estimator with the project's own loss (``PolicyGradientLoss``): the estimators are compared
on the same episodes (paired). No exact ∇J is known, so the reference is the pooled mean of
the unbiased estimators (``return``, ``baseline``, ``rloo``, ``optimal_constant``; the ones
that exist at this θ). Per estimator: tr Cov[ĝ], its ratio to REINFORCE's (``return``), the
noise-to-signal ratio ``nsr`` = tr Cov[ĝ] / |ḡ|² (scale-free: for estimators that rescale Ψ), the
cosine of its mean with the reference and with ``return``'s mean, the cosine an unbiased
estimator would reach from noise alone (``cos_ceiling``), and a paired test of "same mean as
``return``": ``paired_chi`` = |d̄|² / (tr Cov[d] / n), d = ĝ − ĝ_return (≈ 1 when equal).

``baseline``/``td`` need v̂: the checkpoint's (a ``reinforce_baseline`` run). At the initial θ
no v̂ has been fitted, so they are skipped there. Episodes are laid out in groups of
``--group-size`` sharing a start state (what ``rloo``/``group_norm`` need) for every estimator.
``--value-fit`` instead measures how much of G_t's variance the checkpoint's v̂ explains, and how
much the per-step mean of G_t does (``value_fit.csv``).

    python experiments/gradient_variance/run_many_batch.py --env CartPole-v1 --ckpt RUN/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from reinforce_lab.advantages import make_estimator
from reinforce_lab.builders import agent_generators, build_policy, env_seeds
from reinforce_lab.envs import make_vec_env
from reinforce_lab.gradient_variance import batch_gradient
from reinforce_lab.networks import mlp
from reinforce_lab.objectives import PolicyGradientLoss
from reinforce_lab.rollout import EpisodeCollector

ROOT = Path(__file__).resolve().parents[2]
UNBIASED = ("return", "baseline", "rloo", "optimal_constant")
# label → (algo.advantage, PolicyGradientLoss options, estimator options): γ = 0.99, no γ^t unless said.
VARIANTS = {
    "return": ("return", {}, {}),
    "baseline": ("baseline", {}, {}),
    "td": ("td", {}, {}),
    "batch_mean": ("batch_mean", {}, {}),
    "rloo": ("rloo", {}, {}),
    "group_norm": ("group_norm", {}, {}),
    "optimal_constant": ("optimal_constant", {}, {}),
    "return+normalise": ("return", {"normalize": True}, {}),
    "return+entropy0.01": ("return", {"entropy_coef": 0.01}, {}),
    "return+gamma_t": ("return", {}, {"gamma_t": True}),
}
COLUMNS = ("env", "theta", "estimator", "unbiased", "num_samples", "grad_var", "var_ratio", "mean_norm", "nsr",
           "cos_ref", "cos_return", "cos_ceiling", "paired_chi", "ref_norm", "mean_ep_len", "seconds")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--ckpt", type=Path, default=None, help="rlab-train checkpoint: its θ (and v̂); none: initial θ")
    ap.add_argument("--theta", default=None, help="label of θ in the CSV (default: init or the env steps)")
    ap.add_argument("--batches", type=int, default=100, help="M batches per agent")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop drawing batches after this long")
    ap.add_argument("--agents", type=int, default=4, help="replicas at the same θ (pooled: samples = M × agents)")
    ap.add_argument("--envs", type=int, default=8, help="env copies per agent")
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--value-fit", action="store_true",
                    help="instead: how much of G_t's variance the checkpoint's v̂ explains (value_fit.csv)")
    ap.add_argument("--out", type=Path, default=Path("experiments/gradient_variance"))
    return ap.parse_args()


def replicate(state: dict[str, torch.Tensor], prefix: str, agents: int, agent: int = 0) -> dict[str, torch.Tensor]:
    """``prefix``'s entries of a state dict, agent ``agent``'s slice copied to ``agents`` agents."""
    return {k[len(prefix):]: v[agent:agent + 1].expand(agents, *v.shape[1:]).clone()
            for k, v in state.items() if k.startswith(prefix)}


def load_agents(args: argparse.Namespace, envs: Any, generators: list[torch.Generator]) -> tuple[Any, Any, str]:
    """Policy (and v̂ or None) with θ (and w) of the checkpoint, or seed ``args.seed``'s initial θ."""
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if args.ckpt is None:
        cfg = OmegaConf.load(ROOT / "conf" / "policy" / "mlp.yaml")
        init = build_policy(cfg, obs_space, act_space, [torch.Generator().manual_seed(args.seed)])
        policy = build_policy(cfg, obs_space, act_space, generators)
        policy.load_state_dict(replicate(init.state_dict(), "", args.agents))
        return policy, None, "init"
    state = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    conf = state["rlab"]["config"]
    policy = build_policy(OmegaConf.create(conf["policy"]), obs_space, act_space, generators)
    policy.load_state_dict(replicate(state["state_dict"], "policy.", args.agents))
    value_state = replicate(state["state_dict"], "value_fn.", args.agents)
    value_fn = None
    if value_state:
        algo, pol = conf["algo"], conf["policy"]
        hidden = algo["value_hidden_sizes"] if algo["value_hidden_sizes"] is not None else pol["hidden_sizes"]
        value_fn = mlp(int(obs_space.shape[0]), 1, list(hidden), pol.get("activation") or "tanh", generators,
                       output_bias=bool(algo["value_bias"]))
        value_fn.load_state_dict(value_state)
    return policy, value_fn, f"{state['rlab']['env_steps']}_steps"


def build_losses(policy: Any, value_fn: Any, args: argparse.Namespace) -> dict[str, PolicyGradientLoss]:
    """One loss per applicable variant (``baseline``/``td`` only with a v̂)."""
    losses = {}
    for label, (advantage, loss_opts, est_opts) in VARIANTS.items():
        if advantage in ("baseline", "td") and value_fn is None:
            continue
        estimator = make_estimator(advantage, value_fn, args.gamma, est_opts.get("gamma_t", False),
                                   group_size=args.group_size, policy=policy)
        losses[label] = PolicyGradientLoss(policy, estimator, normalize=loss_opts.get("normalize", False),
                                           entropy_coef=loss_opts.get("entropy_coef", 0.0))
    return losses


class Moments:
    """Running Σx and Σx² (float64, per parameter) of pooled samples ``[S, P]``."""

    def __init__(self) -> None:
        self.n, self.s1, self.s2 = 0, 0.0, 0.0

    def add(self, x: torch.Tensor) -> None:
        self.n += x.shape[0]
        self.s1 = self.s1 + x.sum(0)
        self.s2 = self.s2 + x.pow(2).sum(0)

    @property
    def mean(self) -> torch.Tensor:
        return self.s1 / self.n

    @property
    def trace_cov(self) -> float:
        return float(((self.s2 - self.s1 ** 2 / self.n) / (self.n - 1)).sum())


def sample(args: argparse.Namespace) -> tuple[dict[str, Moments], dict[str, Moments], str, float]:
    """Draw the batches; returns each variant's moments, those of its difference to ``return``, θ's label."""
    gens = agent_generators([args.seed * 1000 + 500 + a for a in range(args.agents)])  # no training stream
    envs = make_vec_env(args.env, args.agents * args.envs, None, "sync")
    policy, value_fn, label = load_agents(args, envs, gens)
    losses = build_losses(policy, value_fn, args)
    collector = EpisodeCollector(envs, args.episodes, env_seeds([500 + a for a in range(args.agents)], args.envs),
                                 num_seeds=args.agents, generators=gens, group_size=args.group_size)
    own = {k: Moments() for k in losses}
    diff = {k: Moments() for k in losses}
    t0, steps, episodes = time.perf_counter(), 0, 0
    for m in range(args.batches):
        batch = collector.collect(policy).to("cpu", torch.float32)
        steps, episodes = steps + batch.num_steps, episodes + args.agents * args.episodes
        grads = {k: batch_gradient(loss, batch) for k, loss in losses.items()}
        for k, g in grads.items():
            own[k].add(g)
            diff[k].add(g - grads["return"])
        if args.max_seconds and time.perf_counter() - t0 > args.max_seconds and m >= 9:
            break
    envs.close()
    return own, diff, args.theta or label, steps / episodes


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def summarise(own: dict[str, Moments], diff: dict[str, Moments], theta: str, ep_len: float,
              args: argparse.Namespace, seconds: float) -> list[dict[str, Any]]:
    """One row per variant (see the module docstring for the columns)."""
    unbiased = [k for k in UNBIASED if k in own]
    ref = torch.stack([own[k].mean for k in unbiased]).mean(0)  # equal n: the pooled mean
    var_return = own["return"].trace_cov
    rows = []
    for k, mo in own.items():
        n, var = mo.n, mo.trace_cov
        d = diff[k]
        chi = float(d.mean.pow(2).sum()) / (d.trace_cov / n) if k != "return" else float("nan")
        rows.append({"env": args.env, "theta": theta, "estimator": k, "unbiased": k in unbiased, "num_samples": n,
                     "grad_var": var, "var_ratio": var / var_return, "mean_norm": float(mo.mean.norm()),
                     "cos_ref": cosine(mo.mean, ref), "cos_return": cosine(mo.mean, own["return"].mean),
                     "cos_ceiling": float(ref.norm()) / math.sqrt(float(ref.pow(2).sum()) + var / n),
                     "paired_chi": chi, "ref_norm": float(ref.norm()), "mean_ep_len": ep_len, "seconds": seconds})
    return rows


def value_fit(args: argparse.Namespace) -> dict[str, Any]:
    """Explained variance 1 − Var(G − b)/Var(G) over the steps of ``--batches`` batches, for b = the
    checkpoint's v̂(S_t) and for b = the mean of G_t over the sampled episodes at the same t."""
    from reinforce_lab.returns import discounted_returns

    gens = agent_generators([args.seed * 1000 + 900 + a for a in range(args.agents)])  # batches not used above
    envs = make_vec_env(args.env, args.agents * args.envs, None, "sync")
    policy, value_fn, theta = load_agents(args, envs, gens)
    if value_fn is None:
        raise SystemExit("--value-fit needs a checkpoint with a v̂ (algo=reinforce_baseline or actor_critic)")
    collector = EpisodeCollector(envs, args.episodes, env_seeds([900 + a for a in range(args.agents)], args.envs),
                                 num_seeds=args.agents, generators=gens)
    g, v, t = [], [], []
    for _ in range(args.batches):
        batch = collector.collect(policy).to("cpu", torch.float32)
        real = batch.mask.bool()
        with torch.no_grad():
            v.append(value_fn(batch.obs).squeeze(-1)[real])
        g.append(discounted_returns(batch.rewards, batch.mask, args.gamma)[real])
        t.append(torch.arange(batch.mask.shape[-1]).expand_as(batch.mask)[real])
    envs.close()
    g, v, t = torch.cat(g).double(), torch.cat(v).double(), torch.cat(t)
    per_step = torch.zeros(int(t.max()) + 1, dtype=g.dtype).index_add_(0, t, g) / torch.bincount(t).clamp_min(1)
    return {"env": args.env, "theta": args.theta or theta, "steps": g.numel(), "return_mean": float(g.mean()),
            "return_std": float(g.std()), "value_mean": float(v.mean()), "value_std": float(v.std()),
            "ev_value": float(1 - (g - v).var() / g.var()), "ev_step_mean": float(1 - (g - per_step[t]).var() / g.var())}


def write_value_fit(row: dict[str, Any], path: Path) -> None:
    """Add (or replace) this (env, θ)'s row of ``value_fit.csv``."""
    old = []
    if path.exists():
        with open(path, newline="") as fh:
            old = [r for r in csv.DictReader(fh) if (r["env"], r["theta"]) != (row["env"], row["theta"])]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(old + [row])
    print(row)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bars: tr Cov[ĝ] relative to REINFORCE (log scale), one panel per env, one bar group per θ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env"] for r in rows))
    fig, axes = plt.subplots(1, len(envs), figsize=(6.5 * len(envs), 4.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        mine = [r for r in rows if r["env"] == env]
        thetas = list(dict.fromkeys(r["theta"] for r in mine))
        names = [k for k in VARIANTS if any(r["estimator"] == k for r in mine)]
        width = 0.8 / len(thetas)
        for j, theta in enumerate(thetas):
            by = {r["estimator"]: r for r in mine if r["theta"] == theta}
            xs = [i + (j - (len(thetas) - 1) / 2) * width for i, k in enumerate(names) if k in by]
            ax.bar(xs, [by[k]["var_ratio"] for k in names if k in by], width, label=f"θ: {theta}")
        ax.axhline(1, color="k", lw=0.7)
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set(yscale="log", ylabel="tr Cov[ĝ] / tr Cov[ĝ_return]", title=env)
        ax.legend(fontsize=8)
    fig.suptitle("Variance of one batch's gradient estimate, relative to REINFORCE (same batches)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    if args.value_fit:
        args.out.mkdir(parents=True, exist_ok=True)
        return write_value_fit(value_fit(args), args.out / "value_fit.csv")
    t0 = time.perf_counter()
    own, diff, theta, ep_len = sample(args)
    rows = summarise(own, diff, theta, ep_len, args, time.perf_counter() - t0)
    for r in rows:
        print(f"{r['env']} θ={r['theta']:>12} {r['estimator']:>18}: n {r['num_samples']:5d} var_ratio "
              f"{r['var_ratio']:8.3f} cos_ref {r['cos_ref']:+.3f} (ceiling {r['cos_ceiling']:.3f}) "
              f"cos_return {r['cos_return']:+.3f} paired_chi {r['paired_chi']:8.2f}", flush=True)
    path = args.out / "many_batch.csv"  # rows of other (env, θ) cells are kept; this cell's are replaced
    old = []
    if path.exists():
        with open(path, newline="") as fh:
            old = [r for r in csv.DictReader(fh) if (r["env"], r["theta"]) != (args.env, theta)]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in old + rows:  # noise-to-signal tr Cov[ĝ] / |ḡ|²: comparable across scales (normalised Ψ)
            r["nsr"] = float(r["grad_var"]) / float(r["mean_norm"]) ** 2
        writer.writerows(old + rows)
    with open(path, newline="") as fh:
        all_rows = [{**r, "var_ratio": float(r["var_ratio"])} for r in csv.DictReader(fh)]
    plot(all_rows, args.out / "many_batch.png")
    print(f"wrote {path} and {args.out / 'many_batch.png'} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
