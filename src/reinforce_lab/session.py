"""One training session: ``trainer.fit``, then whatever happened, the run's records.

Whether the fit finishes, is interrupted (SIGINT/SIGTERM) or fails, the session saves the
last good checkpoint, writes ``summary.json`` (:class:`~reinforce_lab.run_summary.RunSummary`)
and finishes the W&B run with the matching exit code; the exception, if any, propagates.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from .checkpointing import checkpoint_path, save_atomic
from .episode_records import EpisodeRecorder
from .interrupts import GracefulStop
from .ledger import AgentLedger
from .module import ReinforceModule
from .numerics import parameters_finite
from .redaction import redact
from .run_logger import RunLogger
from .run_summary import AgentSummary, RunSummary, process_seconds
from .settings import RunSettings


@dataclass
class Outcome:
    status: str = "failed"
    error: str | None = None
    wall_s: float = 0.0


@dataclass
class TrainingSession:
    """Everything a fit needs and everything its records are made from."""

    trainer: pl.Trainer
    module: ReinforceModule
    run_dir: Path
    settings: RunSettings
    run_logger: RunLogger
    graceful: GracefulStop
    secrets: list[str]
    envs: Any

    def fit(self, resume: bool) -> RunSummary:
        """Train (from the checkpoint when ``resume``); records are written whatever happens."""
        ckpt = checkpoint_path(self.run_dir)
        outcome, start = Outcome(), time.perf_counter()
        try:
            self.trainer.fit(self.module, ckpt_path=str(ckpt) if resume else None)
            outcome.status = "interrupted" if self.graceful.requested else "finished"
        except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised
            outcome.error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, (KeyboardInterrupt, SystemExit)) and self.graceful.requested:
                outcome.status = "interrupted"
            raise
        finally:
            outcome.wall_s = time.perf_counter() - start
            self._close(outcome, ckpt)
            summary = self.summary(outcome)
            summary.write(self.run_dir)
            self.run_logger.finish(summary)
            self.envs.close()
        return summary

    def _close(self, outcome: Outcome, ckpt: Path) -> None:
        self.graceful.restore()
        for callback in self.trainer.callbacks:
            if isinstance(callback, EpisodeRecorder):
                callback.close()  # every row on disk before the checkpoint that counts them
        if not parameters_finite(self.module):
            print(f"[rlab] parameters are not finite: kept the last good checkpoint {ckpt}", file=sys.stderr)
            return
        try:
            save_atomic(self.trainer, ckpt)
        except Exception as exc:  # noqa: BLE001 - a failed save must not hide the first error
            print(f"error: {exc}", file=sys.stderr)
            outcome.error = outcome.error or str(exc)
            outcome.status = "failed"

    def summary(self, outcome: Outcome) -> RunSummary:
        """``summary.json`` of this session (secrets masked)."""
        ledger, s = self.module.ledger, self.settings
        summary = RunSummary(
            status=outcome.status, final_return=ledger.mean_return if ledger.has_returns else None,
            final_window=len(ledger.recent[0]), episodes=ledger.total_episodes, env_steps=ledger.total_env_steps,
            wall_s=round(outcome.wall_s, 3), process_wall_s=round(process_seconds(), 3),
            env_steps_per_s=ledger.total_env_steps / outcome.wall_s if outcome.wall_s > 0 else 0.0,
            solved_at_episode=ledger.solved_at[0] if ledger.num_agents == 1 else None,
            target_return=s.train.target_return, stop_reason=self._stop_reason(outcome), seed=s.seed, env_id=s.env.id,
            algo=s.algo.name, loss=s.loss.name, git_commit=git_commit(), wandb_run_dir=self.run_logger.wandb_dir,
            run_dir=str(self.run_dir), error=redact(outcome.error, self.secrets) if outcome.error else None)
        simulated = getattr(self.module.collector, "simulated_steps", None)
        if simulated:  # what the rollouts threw away (copies past their episode quota), where known
            summary.simulated_env_steps, summary.kept_fraction = simulated, round(ledger.total_env_steps / simulated, 4)
        if ledger.num_agents > 1:
            summary.num_seeds, summary.agents = ledger.num_agents, agent_summaries(ledger)
        return RunSummary.from_dict(redact(summary.to_dict(), self.secrets))

    def _stop_reason(self, outcome: Outcome) -> str | None:
        # A clean stop on a signal is the reason even when some agents had already stopped.
        if outcome.status == "interrupted" and self.graceful.signal_name:
            why = " (SLURM preemption or time limit)" if self.graceful.signal_name == "SIGUSR2" else ""
            return f"{self.graceful.signal_name} received{why}"
        return self.module.ledger.stop_reason


def agent_summaries(ledger: AgentLedger) -> list[AgentSummary]:
    """One entry per agent of a ``train.num_seeds`` job."""
    return [AgentSummary(seed=k, final_return=ledger.agent_mean(a) if ledger.recent[a] else None,
                         episodes=ledger.episodes[a], env_steps=ledger.env_steps[a],
                         solved_at_episode=ledger.solved_at[a], stop_reason=ledger.reasons[a])
            for a, k in enumerate(ledger.seeds)]


def git_commit() -> str | None:
    """The commit of the installed code (logged with every run), or None outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def quiet_lightning() -> None:
    """Lightning's info lines (devices, a tip to install a cloud logger), and two warnings.

    The first is "The `srun` command is available on your system but is not used", which
    Lightning prints on every run where SLURM is installed (every cluster node and login node)
    and which lands in the W&B console log. A job that SLURM starts runs inside a job step,
    where Lightning does not warn; rlab's jobs use one device, so the hint (prepend ``srun``
    for multi-process training) never applies. It also quotes the command line, secrets
    included.

    The second is ``isinstance(treespec, LeafSpec)`` inside Lightning's own ``_pytree.py``
    (pytorch-lightning 2.6.6 with torch 2.13.0): nothing a user of rlab can act on. Lightning's
    dataloader warnings (workers, dataset length, batch counts), which earlier versions of this
    function also filtered, no longer fire for the module's endless tick stream (checked with
    every filter removed: only this one appeared).
    """
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
