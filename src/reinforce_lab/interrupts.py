"""SIGINT/SIGTERM/SIGUSR2 become a clean stop: finish the current update, checkpoint, close W&B.

A cluster scheduler sends SIGTERM before it kills a job; Ctrl-C sends SIGINT; SLURM sends
SIGUSR2 (submitit's ``--signal=USR2@…``) before a time limit and when it preempts a job. Any
of them sets a flag that the agent ledger reads after the update in progress (it decides
every stop), and the module ends the fit so the run ends through the normal path:
``checkpoints/last.ckpt``, ``summary.json`` with ``status: interrupted``, the W&B run
finished. A second signal interrupts at once (Python's default behaviour).

SIGUSR2 is then handed to the handler that was installed before training (submitit's
checkpoint-and-requeue, in a SLURM job): the job is requeued and its rerun resumes from the
checkpoint just written (:func:`reinforce_lab.resume.sweep_job_state`), so a preempted or
timed-out job continues rather than restarts.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import pytorch_lightning as pl


# SIGUSR2 does not exist on Windows; there only SIGINT/SIGTERM are handled.
SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR2", None)) if s is not None)
REQUEUE_SIGNALS = tuple(s for s in (getattr(signal, "SIGUSR2", None),) if s is not None)


class GracefulStop(pl.Callback):
    """Installs the signal handlers for the duration of training."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        self._before: dict[int, Any] = {}  # the handlers found at install(), kept for hand_over()

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def signal_name(self) -> str | None:
        """``SIGINT`` or ``SIGTERM`` once one was received (the run's stop reason), else None."""
        return signal.Signals(self.signal).name if self.signal is not None else None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # second signal: stop now
            self.restore()
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n[rlab] {signal.Signals(signum).name} received: stopping after this update "
              "(checkpoint and summary follow; send it again to stop at once)", file=sys.stderr, flush=True)

    def install(self) -> None:
        for sig in SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some launchers): leave signals alone
                pass
        self._before = dict(self._previous)

    def hand_over(self) -> None:
        """Pass a requeue signal (SIGUSR2) that stopped the run to the handler found at install().

        Called once the run's records are written. In a SLURM job that handler is submitit's
        checkpoint-and-requeue, which requeues the job and exits; elsewhere nothing happens.
        """
        handler = self._before.get(self.signal) if self.signal in REQUEUE_SIGNALS else None
        if callable(handler):
            handler(self.signal, None)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning installs its own SIGTERM handler (it raises SIGTERMException, which would end
        # the run without a checkpoint); ours takes precedence again for the training loop.
        for sig in SIGNALS:
            try:
                signal.signal(sig, self._handle)
            except ValueError:
                pass
