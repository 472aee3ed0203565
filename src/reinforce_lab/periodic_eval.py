"""Periodic evaluation during training (``train.eval_every_steps``): a callback that only observes.

Training returns mix exploration into the score and, with fixed-horizon rollouts, reach
``episodes.csv`` only when episodes end. Papers report *evaluation* returns: the current
policy run on separate env copies for a number of whole episodes. Every
``train.eval_every_steps`` env steps per agent (and once at the end) this callback runs
``train.eval_episodes`` episodes per agent twice — with sampled actions (what Tianshou's
benchmark reports) and with the deterministic action (the Gaussian's mean, the most likely
category) — and

- logs ``eval/return_mean``, ``eval/return_std`` (sampled) and ``eval/return_mean_deterministic``,
  ``eval/return_std_deterministic`` against ``env_step`` (means over agents; episodes pooled);
- appends one row per agent and mode to ``evals.csv`` (``env_step, seed, mode, episodes,
  return_mean, return_std, length_mean``), the file ``experiments/mujoco`` aggregates.

The evaluation never touches training's randomness: its env seeds come from ``(seed, env_step)``
and its action noise from torch's global generator inside ``torch.random.fork_rng`` (restored
afterwards); the agents' own generators are not used. Observation statistics are read, never
updated. On resume, rows after the checkpoint are dropped, as for ``episodes.csv``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

EVALS_FILE = "evals.csv"
EVAL_COLUMNS = ("env_step", "seed", "mode", "episodes", "return_mean", "return_std", "length_mean")
MODES = {"stochastic": False, "deterministic": True}  # mode → greedy


def run_episodes(policy: Any, envs: Any, num_seeds: int, greedy: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One whole episode on every copy of ``envs`` (``num_seeds × k`` copies): ``[S, k]`` returns and lengths.

    Copies that finish early keep stepping (the vector env resets them) but are no longer counted.
    """
    n = envs.num_envs
    obs, _ = envs.reset(seed=[int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)])
    returns, lengths, running = np.zeros(n), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    dtype = next(policy.parameters()).dtype
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        while running.any():
            obs_t = torch.as_tensor(obs, dtype=dtype).reshape(num_seeds, -1, obs.shape[-1])
            action = policy.act(policy.observe(obs_t), greedy=greedy).cpu().numpy()
            action = action.reshape(n, *action.shape[2:])
            obs, reward, term, trunc, _ = envs.step(policy.env_action(action) if not policy.discrete else action)
            returns += reward * running
            lengths += running
            running &= ~np.logical_or(term, trunc)
    return returns.reshape(num_seeds, -1), lengths.reshape(num_seeds, -1)


class PeriodicEval(pl.Callback):
    """Evaluate every ``every_steps`` env steps per agent and at the end (``None``: never).

    Args:
        every_steps: ``train.eval_every_steps``.
        episodes: ``train.eval_episodes``, per agent and mode.
    """

    def __init__(self, every_steps: int | None = None, episodes: int = 10) -> None:
        self.every, self.episodes = every_steps, int(episodes)
        self._envs: Any = None
        self._next = 0
        self._last = -1
        self._path: Path | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.every:
            return
        from .builders import build_envs
        from .settings import EnvSettings

        conf = pl_module.run_config
        env = EnvSettings(**{k: conf["env"][k] for k in EnvSettings.__dataclass_fields__})
        env = EnvSettings(**{**env.__dict__, "vectorization": "sync" if env.vectorization == "native" else
                             ("sync" if env.vectorization == "auto" else env.vectorization)})
        self._envs = build_envs(env, pl_module.num_seeds * self.episodes)
        self._seeds = list(pl_module.ledger.seeds)
        self._path = Path(trainer.default_root_dir) / EVALS_FILE
        step = pl_module.ledger.env_step
        self._drop_after(step)
        self._next = (step // self.every + 1) * self.every
        self._last = step if step and self._path.exists() else -1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self._envs is not None and pl_module.ledger.env_step >= self._next:
            self._evaluate(trainer, pl_module)
            self._next = (pl_module.ledger.env_step // self.every + 1) * self.every

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._envs is not None:
            if pl_module.ledger.env_step != self._last:  # the final policy, unless just evaluated
                self._evaluate(trainer, pl_module)
            self._envs.close()
            self._envs = None

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step, policy = pl_module.ledger.env_step, pl_module.policy
        metrics: dict[str, float] = {"env_step": step}
        rows = []
        for mode, greedy in MODES.items():
            returns, lengths = run_episodes(policy, self._envs, pl_module.num_seeds, greedy, seed=self._seeds[0] * 1_000_003 + step)
            suffix = "" if mode == "stochastic" else "_deterministic"
            metrics[f"eval/return_mean{suffix}"] = float(returns.mean(-1).mean())
            metrics[f"eval/return_std{suffix}"] = float(returns.std())
            rows += [(step, seed, mode, self.episodes, _fmt(r.mean()), _fmt(r.std()), _fmt(n.mean()))
                     for seed, r, n in zip(self._seeds, returns, lengths)]
        new = not self._path.exists() or self._path.stat().st_size == 0
        with open(self._path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(EVAL_COLUMNS)
            writer.writerows(rows)
        self._last = step
        if trainer.logger is not None:
            trainer.logger.log_metrics(metrics)

    def _drop_after(self, step: int) -> None:
        """Resumed: keep only the rows the checkpoint had seen (evaluations at or before ``step``)."""
        if not self._path.exists():
            return
        with open(self._path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        if len(kept) != len(rows) - 1:
            with open(self._path, "w", newline="") as f:
                csv.writer(f).writerows([rows[0], *kept])


def _fmt(x: float) -> str:
    return f"{float(x):.6g}" if math.isfinite(x) else str(x)
