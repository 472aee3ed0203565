"""``episodes.csv`` and the logged metrics: a Lightning callback that only observes.

After every update the module returns an :class:`~reinforce_lab.ledger.UpdateRecord`; this
callback writes its episodes to ``episodes.csv`` (one row per finished episode, appended and
flushed, so a killed run keeps every row up to its last update) and sends the metrics to
the logger with ``env_step`` in every record (the W&B x-axis, a column for the CSV logger).
With several agents (``train.num_seeds``) rows carry the agent's ``seed``, and the logger gets
the mean over agents per update (``train/episode_return``) and one curve per agent
(``seeds/<seed>/episode_return``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from .checkpointing import truncate_episodes
from .ledger import AgentEpisodes, AgentLedger, UpdateRecord

EPISODES_FILE = "episodes.csv"
EPISODE_COLUMNS = ("episode", "env_step", "return", "length")


class EpisodeRecorder(pl.Callback):
    """Writes ``<run dir>/episodes.csv`` and logs per-episode and per-update metrics."""

    def __init__(self) -> None:
        self._file: Any = None
        self._writer: Any = None
        self._multi = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ledger: AgentLedger = pl_module.ledger
        path = Path(trainer.default_root_dir) / EPISODES_FILE
        self._multi = ledger.num_agents > 1
        if ledger.total_episodes:  # resumed: keep exactly the rows the checkpoint had seen
            counts = dict(zip(ledger.seeds, ledger.episodes)) if self._multi else ledger.episodes[0]
            truncate_episodes(path, counts)
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(EPISODE_COLUMNS + (("seed",) if self._multi else ()))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        record: UpdateRecord = outputs["record"]
        logger = trainer.logger
        for agent in record.agents:
            self._write_rows(agent, logger if not self._multi else None)
        self._file.flush()
        if logger is not None:
            logger.log_metrics(self._update_metrics(record, pl_module.ledger))

    def _write_rows(self, agent: AgentEpisodes, logger: Any) -> None:
        seed = (agent.seed,) if self._multi else ()
        for row in zip(agent.numbers, agent.env_steps, agent.returns, agent.lengths):
            episode, env_step, ret, length = row
            self._writer.writerow((episode, env_step, _fmt(ret), length) + seed)
            if logger is not None:
                logger.log_metrics({"train/episode_return": ret, "train/episode_length": length, "env_step": env_step})

    def _update_metrics(self, record: UpdateRecord, ledger: AgentLedger) -> dict[str, float]:
        metrics = {**record.metrics, "train/return_mean_100": ledger.mean_return, "env_step": record.env_step}
        returns = [r for agent in record.agents for r in agent.returns]
        if self._multi and returns:
            metrics["train/episode_return"] = sum(returns) / len(returns)
            for agent in record.agents:
                if agent.returns:
                    metrics[f"seeds/{agent.seed}/episode_return"] = sum(agent.returns) / len(agent.returns)
        return metrics

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.close()


def _fmt(x: float) -> str:
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return repr(float(x))
