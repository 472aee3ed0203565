"""Progress of a training run: a bar in a terminal, a line every few seconds in logs (sweeps, CI).

A Lightning callback that only reads the :class:`~reinforce_lab.ledger.AgentLedger`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl

from .ledger import AgentLedger


class Progress(pl.Callback):
    """Shows env steps (per agent), episodes and the windowed mean return.

    Args:
        interval_s: seconds between lines when stderr is not a terminal.
        enabled: ``train.progress``.
    """

    def __init__(self, interval_s: float = 10.0, enabled: bool = True) -> None:
        self.interval_s = float(interval_s)
        self.enabled = bool(enabled)
        self._bar: Any = None
        self._last = 0.0
        self._start = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        ledger: AgentLedger = pl_module.ledger
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=ledger.budget.max_env_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                             initial=ledger.env_step, desc="training")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self.enabled:
            return
        ledger: AgentLedger = pl_module.ledger
        ret, steps = ledger.mean_return, ledger.env_step
        if self._bar is not None:
            self._bar.n = steps
            self._bar.set_postfix(episodes=ledger.total_episodes, ret100=f"{ret:.1f}", refresh=False)
            self._bar.refresh()
            return
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            total = ledger.budget.max_env_steps
            pct = f"{100 * steps / total:3.0f}% " if total else ""
            rate = ledger.total_env_steps / max(now - self._start, 1e-9)
            print(f"[train] {pct}env_step {steps:,} | episodes {ledger.total_episodes:,} | "
                  f"return(last {ledger.budget.window}) {ret:.1f} | {rate:,.0f} steps/s",
                  file=sys.stderr, flush=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
