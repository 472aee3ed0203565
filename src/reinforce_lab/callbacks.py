"""Lightning callbacks: episode records, the training budget, and progress output."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

EPISODE_COLUMNS = ("episode", "env_step", "return", "length")


class EpisodeRecorder(pl.Callback):
    """Writes ``episodes.csv`` and sends per-episode and per-update metrics to the logger.

    Metrics go to ``trainer.logger.log_metrics`` with ``env_step`` in every record: the
    W&B run uses it as the x-axis (``define_metric``), the CSV logger as a column. With
    several agents (``train.num_seeds``) each agent's rows carry its ``seed`` and its own
    episode numbering and env-step count; the logger gets the mean over agents per update
    (``train/episode_return``) and one curve per agent (``seeds/<seed>/episode_return``).

    Args:
        path: the ``episodes.csv`` to write (appended to when it exists, for resumes).
        window: episodes in the moving average (100, as in gymnasium's "solved" criterion).
        seeds: the seed of each agent.
    """

    def __init__(self, path: Path, window: int = 100, seeds: list[int] | None = None) -> None:
        self.path = Path(path)
        self.window = int(window)
        self.seeds = list(seeds) if seeds else [0]
        self.multi = len(self.seeds) > 1
        self.recent: list[deque[float]] = [deque(maxlen=self.window) for _ in self.seeds]
        self.solved_at: list[int | None] = [None] * len(self.seeds)
        self.target: float | None = None
        self._file = None
        self._writer = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(EPISODE_COLUMNS + (("seed",) if self.multi else ()))

    def restore(self, rows: list[dict[str, str]]) -> None:
        """Refill the moving windows (and ``solved_at``) from ``episodes.csv`` rows, for a resume."""
        index = {seed: a for a, seed in enumerate(self.seeds)}
        for row in rows:
            a = index.get(int(row.get("seed") or self.seeds[0]), 0)
            self.recent[a].append(float(row["return"]))
            if (self.solved_at[a] is None and self.target is not None and len(self.recent[a]) == self.window
                    and self.agent_mean(a) >= self.target):
                self.solved_at[a] = int(row["episode"])

    def agent_mean(self, agent: int) -> float:
        r = self.recent[agent]
        return sum(r) / len(r) if r else float("nan")

    @property
    def mean_return(self) -> float:
        """Mean over agents of each agent's mean over its last ``window`` episodes."""
        means = [self.agent_mean(a) for a in range(len(self.seeds)) if self.recent[a]]
        return sum(means) / len(means) if means else float("nan")

    @property
    def solved_at_episode(self) -> int | None:
        return self.solved_at[0] if not self.multi else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        logger = trainer.logger
        per_agent: dict[str, float] = {}
        batch_returns: list[float] = []
        for a, rec in enumerate(outputs["agents"]):
            rows = zip(range(rec["first_episode"], rec["first_episode"] + len(rec["returns"])),
                       rec["env_steps"], rec["returns"], rec["lengths"])
            for episode, env_step, ret, length in rows:
                row = (episode, env_step, _fmt(ret), length)
                self._writer.writerow(row + ((self.seeds[a],) if self.multi else ()))
                self.recent[a].append(ret)
                if logger is not None and not self.multi:
                    logger.log_metrics({"train/episode_return": ret, "train/episode_length": length,
                                        "env_step": env_step})
                if (self.solved_at[a] is None and self.target is not None
                        and len(self.recent[a]) == self.window and self.agent_mean(a) >= self.target):
                    self.solved_at[a] = episode
            if rec["returns"]:
                batch_returns += rec["returns"]
                per_agent[f"seeds/{self.seeds[a]}/episode_return"] = sum(rec["returns"]) / len(rec["returns"])
        self._file.flush()
        if logger is None:
            return
        env_step = pl_module.env_steps // len(self.seeds)
        metrics = {**outputs["metrics"], "train/return_mean_100": self.mean_return, "env_step": env_step}
        if self.multi and batch_returns:
            metrics["train/episode_return"] = sum(batch_returns) / len(batch_returns)
            metrics.update(per_agent)
        logger.log_metrics(metrics)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.close()


class TrainingBudget(pl.Callback):
    """Stops each agent at ``max_env_steps``/``max_episodes`` or once it reaches the target.

    The target is reached when the mean return of the agent's last ``window`` episodes is at
    least ``target_return`` (``train.target_return``; gymnasium's ``reward_threshold`` by
    default). Training ends when every agent has stopped.
    """

    def __init__(self, recorder: EpisodeRecorder, max_env_steps: int | None = None,
                 max_episodes: int | None = None, target_return: float | None = None) -> None:
        self.recorder = recorder
        self.max_env_steps, self.max_episodes = max_env_steps, max_episodes
        self.recorder.target = target_return
        self.reasons: list[str | None] = [None] * len(recorder.seeds)

    @property
    def stop_reason(self) -> str | None:
        reasons = sorted({r for r in self.reasons if r})
        return ", ".join(reasons) if reasons else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        for a in range(len(self.reasons)):
            if self.reasons[a]:
                continue
            if self.recorder.solved_at[a] is not None:
                self.reasons[a] = "target return reached"
            elif self.max_env_steps is not None and pl_module.agent_env_steps[a] >= self.max_env_steps:
                self.reasons[a] = "max_env_steps reached"
            elif self.max_episodes is not None and pl_module.agent_episodes[a] >= self.max_episodes:
                self.reasons[a] = "max_episodes reached"
            if self.reasons[a] and len(self.reasons) > 1:
                pl_module.stop_agent(a)
        if all(self.reasons):
            trainer.should_stop = True


class Progress(pl.Callback):
    """A progress bar in a terminal; a line every ``interval_s`` seconds in logs (sweeps, CI)."""

    def __init__(self, recorder: EpisodeRecorder, budget: TrainingBudget, interval_s: float = 10.0,
                 enabled: bool = True) -> None:
        self.recorder, self.budget = recorder, budget
        self.interval_s = float(interval_s)
        self.enabled = enabled
        self._bar = None
        self._last = 0.0
        self._start = 0.0

    def _agent_steps(self, pl_module: pl.LightningModule) -> int:
        return pl_module.env_steps // len(self.recorder.seeds)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.budget.max_env_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                             initial=self._agent_steps(pl_module), desc="training")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self.enabled:
            return
        ret = self.recorder.mean_return
        steps = self._agent_steps(pl_module)
        if self._bar is not None:
            self._bar.n = steps
            self._bar.set_postfix(episodes=pl_module.episodes, ret100=f"{ret:.1f}", refresh=False)
            self._bar.refresh()
            return
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            total = self.budget.max_env_steps
            pct = f"{100 * steps / total:3.0f}% " if total else ""
            rate = pl_module.env_steps / max(now - self._start, 1e-9)
            print(f"[train] {pct}env_step {steps:,} | episodes {pl_module.episodes:,} | "
                  f"return(last {self.recorder.window}) {ret:.1f} | {rate:,.0f} steps/s",
                  file=sys.stderr, flush=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)


def _fmt(x: float) -> str:
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return repr(float(x))
