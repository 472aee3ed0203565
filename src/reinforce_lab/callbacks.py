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
    W&B run uses it as the x-axis (``define_metric``), the CSV logger as a column.

    Args:
        path: the ``episodes.csv`` to write (appended to when it exists, for resumes).
        window: episodes in the moving average (100, as in gymnasium's "solved" criterion).
    """

    def __init__(self, path: Path, window: int = 100) -> None:
        self.path = Path(path)
        self.window = int(window)
        self.recent: deque[float] = deque(maxlen=self.window)
        self.episodes = 0
        self.env_steps = 0
        self.solved_at_episode: int | None = None
        self.target: float | None = None
        self._file = None
        self._writer = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(EPISODE_COLUMNS)

    @property
    def mean_return(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else float("nan")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        logger = trainer.logger
        rows = zip(range(outputs["first_episode"], outputs["first_episode"] + len(outputs["returns"])),
                   outputs["env_steps"], outputs["returns"], outputs["lengths"])
        for episode, env_step, ret, length in rows:
            self._writer.writerow((episode, env_step, _fmt(ret), length))
            self.recent.append(ret)
            if logger is not None:
                logger.log_metrics({"train/episode_return": ret, "train/episode_length": length,
                                    "env_step": env_step})
            if (self.solved_at_episode is None and self.target is not None
                    and len(self.recent) == self.window and self.mean_return >= self.target):
                self.solved_at_episode = episode
        self._file.flush()
        self.episodes = pl_module.episodes
        self.env_steps = pl_module.env_steps
        if logger is not None:
            logger.log_metrics({**outputs["metrics"], "train/return_mean_100": self.mean_return,
                                "env_step": self.env_steps})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.close()


class TrainingBudget(pl.Callback):
    """Stops training at ``max_env_steps``/``max_episodes`` or once the target is reached.

    The target is reached when the mean return of the last ``window`` episodes is at least
    ``target_return`` (``train.target_return``; gymnasium's ``reward_threshold`` by default).
    """

    def __init__(self, recorder: EpisodeRecorder, max_env_steps: int | None = None,
                 max_episodes: int | None = None, target_return: float | None = None) -> None:
        self.recorder = recorder
        self.max_env_steps, self.max_episodes = max_env_steps, max_episodes
        self.recorder.target = target_return
        self.stop_reason: str | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.recorder.solved_at_episode is not None:
            self.stop_reason = "target return reached"
        elif self.max_env_steps is not None and pl_module.env_steps >= self.max_env_steps:
            self.stop_reason = "max_env_steps reached"
        elif self.max_episodes is not None and pl_module.episodes >= self.max_episodes:
            self.stop_reason = "max_episodes reached"
        if self.stop_reason:
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

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.budget.max_env_steps, unit="step", unit_scale=True,
                             dynamic_ncols=True, initial=pl_module.env_steps, desc="training")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self.enabled:
            return
        ret = self.recorder.mean_return
        if self._bar is not None:
            self._bar.n = pl_module.env_steps
            self._bar.set_postfix(episodes=pl_module.episodes, ret100=f"{ret:.1f}", refresh=False)
            self._bar.refresh()
            return
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            total = self.budget.max_env_steps
            pct = f"{100 * pl_module.env_steps / total:3.0f}% " if total else ""
            rate = pl_module.env_steps / max(now - self._start, 1e-9)
            print(f"[train] {pct}env_step {pl_module.env_steps:,} | episodes {pl_module.episodes:,} | "
                  f"return(last {len(self.recorder.recent)}) {ret:.1f} | {rate:,.0f} steps/s",
                  file=sys.stderr, flush=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    on_exception = lambda self, trainer, pl_module, exception: self.on_train_end(trainer, pl_module)  # noqa: E731


def _fmt(x: float) -> str:
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return repr(float(x))
