"""``summary.json``: one type, :class:`RunSummary`, for everything that writes or reads it.

Training (:mod:`reinforce_lab.train`), failed sweep jobs (:mod:`reinforce_lab.sweeps`), the
closing message and ``rlab-report`` (:mod:`reinforce_lab.runs`) all go through this schema,
so a key is named, typed and documented once. The file is written atomically: a crash
mid-write leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
STATUSES = ("finished", "interrupted", "failed")

PROCESS_START = time.perf_counter()
"""Taken when this module is first imported (early in every entry point's import chain)."""


@dataclass
class AgentSummary:
    """One agent of a ``train.num_seeds`` job (one entry of ``summary["agents"]``)."""

    seed: int
    final_return: float | None
    episodes: int
    env_steps: int
    solved_at_episode: int | None
    stop_reason: str | None


@dataclass(kw_only=True)
class RunSummary:
    """The contents of ``summary.json`` (../shared/design.md: "Files each run writes").

    With several agents in one job the aggregates are over agents: ``final_return`` is the
    mean of the agents' final returns; ``episodes`` and ``env_steps`` are totals; ``agents``
    has one :class:`AgentSummary` each.
    """

    status: str  # finished | interrupted | failed
    final_return: float | None  # mean return of the last `final_window` episodes (of each agent)
    final_window: int
    episodes: int
    env_steps: int
    wall_s: float  # training time (fit), seconds
    process_wall_s: float | None = None  # the whole process up to this summary
    env_steps_per_s: float
    simulated_env_steps: int | None = None  # every env step the vector env took, kept in a batch or not
    kept_fraction: float | None = None  # env_steps / simulated_env_steps
    solved_at_episode: int | None
    target_return: float | None = None
    stop_reason: str | None = None
    seed: int | None
    env_id: str | None = None
    algo: str | None = None
    loss: str | None = None
    git_commit: str | None = None
    wandb_run_dir: str | None = None
    run_dir: str
    num_seeds: int | None = None  # only with train.num_seeds > 1
    agents: list[AgentSummary] | None = None
    error: str | None = None

    @classmethod
    def failed(cls, run_dir: Path, error: str, seed: int | None) -> "RunSummary":
        """The summary of a job that failed before training started."""
        return cls(status="failed", final_return=None, final_window=0, episodes=0, env_steps=0, wall_s=0.0,
                   env_steps_per_s=0.0, solved_at_episode=None, seed=seed, run_dir=str(run_dir), error=error)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: optional keys (``num_seeds``, ``agents``, ``error``) only when set."""
        out = asdict(self)
        for key in ("num_seeds", "agents", "error"):
            if out[key] is None:
                del out[key]
        return out

    def write(self, run_dir: Path) -> Path:
        """Write ``run_dir/summary.json`` atomically; NaN/inf become null (JSON has neither)."""
        path = Path(run_dir) / SUMMARY_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_finite(self.to_dict()), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        """Rebuild from a parsed ``summary.json`` (unknown keys are ignored; missing optional ones are None).

        Raises:
            ValueError: not an object, or a required key is missing.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if known.get("agents") is not None:
            known["agents"] = [AgentSummary(**a) for a in known["agents"]]
        try:
            return cls(**known)
        except TypeError as exc:
            raise ValueError(f"not a summary.json: {exc}") from None

    def closing_message(self, mode: str | None) -> str:
        """The few lines printed at the end of a run: results, files, how to look at W&B."""
        reason = self.stop_reason or {"finished": "budget spent", "failed": self.error}.get(self.status)
        lines = [f"[rlab] status: {self.status}" + (f" ({reason})" if reason else "")]
        fr = "n/a" if self.final_return is None else f"{self.final_return:.2f}"
        lines.append(f"[rlab] final return (mean of last {self.final_window} episodes): {fr}"
                     f" after {self.episodes:,} episodes / {self.env_steps:,} env steps"
                     f" in {self.wall_s:.1f} s ({self.env_steps_per_s:,.0f} steps/s)")
        if self.target_return is not None:
            lines.append(f"[rlab] target {self.target_return}: "
                         + (f"reached at episode {self.solved_at_episode}" if self.solved_at_episode else "not reached"))
        lines.append(f"[rlab] run folder: {self.run_dir}  (episodes.csv, summary.json, checkpoints/last.ckpt)")
        if self.wandb_run_dir:
            lines.append(f"[rlab] W&B run ({mode}): {self.wandb_run_dir}")
            if mode == "offline":
                lines.append(f"[rlab]   look at it: wandb leet {self.wandb_run_dir}   upload it: wandb sync {self.wandb_run_dir}")
        return "\n".join(lines)


def read_summary(run_dir: Path) -> RunSummary:
    """Read ``run_dir/summary.json``.

    Raises:
        FileNotFoundError: there is none (the job was killed, or is still running).
        ValueError: torn or malformed JSON, or not a summary.
    """
    return RunSummary.from_dict(json.loads((Path(run_dir) / SUMMARY_FILE).read_text()))


def read_summary_fields(run_dir: Path) -> dict[str, Any]:
    """The keys of ``run_dir/summary.json`` that :class:`RunSummary` knows, as far as present.

    For readers of many folders (``rlab-report``): summaries of older versions, or written by
    hand, may lack keys. Raises ``ValueError`` on torn or malformed JSON, ``OSError`` if unreadable.
    """
    data = json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(RunSummary)}
    return {k: v for k, v in data.items() if k in names}


def process_seconds() -> float:
    """Seconds since the process started (interpreter start-up and imports included).

    From the OS's record of the process's start (psutil, a dependency of wandb); where that
    is unavailable, since this module was first imported.
    """
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - no psutil, or no access to the process table
        return time.perf_counter() - PROCESS_START


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


__all__ = ["AgentSummary", "RunSummary", "SUMMARY_FILE", "STATUSES", "read_summary", "read_summary_fields", "process_seconds"]
