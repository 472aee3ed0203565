"""The W&B run of a job, its whole lifecycle: mode, start (with fallbacks), x-axis, finish.

W&B conventions (../shared/design.md): project ``reinforce-lab``; offline unless
``WANDB_MODE`` is set or an API key is available (``WANDB_API_KEY`` or a ``~/.netrc``
entry for the W&B host); ``env_step`` is the x-axis of every ``train/*`` and ``eval/*``
metric; one run per job, finished even when the job fails (exit code 1). A finish waits at most
``WANDB_FINISH_TIMEOUT`` seconds (default 30) for uploads: a server that dies mid-run costs that
wait, not minutes of retries, and the local run folder keeps everything for ``wandb sync``. API
keys are never read into the config, printed or logged.
"""

from __future__ import annotations

import netrc
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from .run_summary import RunSummary
from .tricks.argv_redaction import redacted_argv
from .tricks.wandb_anonymous import drop_anonymous
from .tricks.wandb_launch_inputs import skip_unstaged_launch_inputs
from .tricks.wandb_orphans import stop_orphaned_wandb_services

# Resuming right after a SIGKILL: the killed process's W&B service still holds the run id
# ("run ID is in use") until it notices that its parent is gone; retry this long.
IN_USE_RETRIES, IN_USE_WAIT_S = 45, 2.0

# The most a run's finish waits for its uploads (W&B's own default: forever; a server that died
# mid-run made wandb 0.31's finish retry for 6+ minutes). Everything is on disk already.
FINISH_TIMEOUT_S = 30.0


def wandb_mode(requested: str | None = None) -> str:
    """``offline``/``online``/``disabled``: the config's choice, then ``WANDB_MODE``, then key presence."""
    if requested:
        return str(requested)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_wandb_key() else "offline"


def has_wandb_key() -> bool:
    """True when W&B could authenticate without a prompt (the key itself is never returned)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


@dataclass
class WandbRun:
    """A started W&B run and the Lightning ``WandbLogger`` that writes to it."""

    logger: Any
    run: Any
    mode: str
    lost: str | None = None  # why W&B stopped taking records (its service ended), else None

    def __post_init__(self) -> None:
        if self.logger is not None:
            self.logger.log_metrics = self._guarded(self.logger.log_metrics)

    def _guarded(self, log_metrics: Callable[..., Any]) -> Callable[..., Any]:
        """``log_metrics`` that survives the end of W&B's service process.

        SLURM signals every process of a job step: on ``scancel`` or preemption W&B's
        ``wandb-core`` helper gets SIGTERM too and exits while training is stopping cleanly,
        and every later record raises ``ConnectionResetError``. Training must not fail for
        that: the run goes on without W&B (one line says so), and its records stay in
        ``episodes.csv``, the checkpoint and the W&B files written so far.
        """
        def log(*args: Any, **kwargs: Any) -> Any:
            if self.lost is not None:
                return None
            try:
                return log_metrics(*args, **kwargs)
            except ConnectionError as exc:
                self.lost = f"{type(exc).__name__}: {exc}"
                print(f"[rlab] W&B stopped taking records ({self.lost}; its service process ended); training goes "
                      f"on, episodes.csv keeps every episode; W&B files so far: wandb sync {self.local_dir}",
                      file=sys.stderr, flush=True)
                return None
        return log

    @property
    def id(self) -> str:
        return str(self.run.id)

    @property
    def local_dir(self) -> str:
        """The run's folder (``.../wandb/offline-run-…``), what ``wandb sync``/``leet`` take."""
        return str(Path(self.run.dir).parent)

    @classmethod
    def start(cls, factory: Callable[..., Any], mode: str, init_timeout: float, secrets: list[str],
              resume_id: str | None = None, **kwargs: Any) -> "WandbRun":
        """Create the logger and its run (``factory``: a partial ``WandbLogger``).

        ``resume_id`` continues that run. A dead server or no network makes an online start
        fail after ``init_timeout`` seconds; the run then continues offline with a warning,
        nothing lost (upload later with ``wandb sync``).
        """
        os.environ.setdefault("WANDB_SILENT", "true")
        if resume_id:
            stop_orphaned_wandb_services()  # a killed run's W&B helper would hold its id
            kwargs.update(id=resume_id, resume="allow")
        with redacted_argv(secrets) as settings:  # W&B records sys.argv in its metadata
            settings = dict(settings, init_timeout=init_timeout, **finish_settings())
            try:
                logger, run = _start(factory, mode, settings, kwargs)
            except Exception as exc:  # noqa: BLE001 - any failure to reach W&B
                if mode != "online":
                    raise
                print(f"[rlab] warning: W&B online start failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:160]}); continuing offline — upload later with `wandb sync`",
                      file=sys.stderr, flush=True)
                _finish_current(exit_code=1)
                mode = "offline"
                logger, run = _start(factory, mode, settings, kwargs)
        run.define_metric("env_step")
        for pattern in ("train/*", "eval/*"):
            run.define_metric(pattern, step_metric="env_step")
        return cls(logger, run, mode)

    def finish(self, summary: RunSummary) -> None:
        """Copy the summary into the run and finish it (exit code 1 unless it finished).

        The wait for uploads is bounded (:func:`finish_settings`): when the server does not
        take the run's data in time, the run's local files are complete and one line says so,
        with the ``wandb sync`` command that uploads them later.
        """
        local_dir = self.local_dir  # read before finishing: the run is closed afterwards
        try:
            if self.lost is None:
                self.run.summary.update({k: v for k, v in summary.to_dict().items() if v is not None})
            self.run.finish(exit_code=0 if summary.status == "finished" else 1)
        except TimeoutError:
            print(f"[rlab] W&B server unreachable at finish; run files are complete locally: wandb sync {local_dir}",
                  file=sys.stderr, flush=True)
        except ConnectionError as exc:  # the service ended (see _guarded): nothing more to tell it
            if self.lost is None:
                print(f"[rlab] W&B's service ended before the finish ({type(exc).__name__}); W&B files so far: "
                      f"wandb sync {local_dir}", file=sys.stderr, flush=True)


def finish_settings() -> dict[str, Any]:
    """W&B settings that bound a run's finish to ``WANDB_FINISH_TIMEOUT`` (default
    :data:`FINISH_TIMEOUT_S`) seconds and make it raise ``TimeoutError`` when the time is up.

    W&B reads ``WANDB_FINISH_TIMEOUT`` itself, but settings passed to ``wandb.init`` win over
    the environment, so the user's value is read here.
    """
    timeout = float(os.environ.get("WANDB_FINISH_TIMEOUT") or FINISH_TIMEOUT_S)
    return {"finish_timeout": timeout, "finish_timeout_raises": True}


def _start(factory: Callable[..., Any], mode: str, settings: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    import wandb

    skip_unstaged_launch_inputs()
    for attempt in range(IN_USE_RETRIES):
        logger = factory(mode=mode, settings=wandb.Settings(**settings), **kwargs)
        drop_anonymous(logger)
        try:
            return logger, logger.experiment
        except Exception as exc:  # noqa: BLE001
            if "in use" not in str(exc) or attempt == IN_USE_RETRIES - 1:
                raise
            stop_orphaned_wandb_services()
            time.sleep(IN_USE_WAIT_S)
    raise AssertionError("unreachable")


def _finish_current(exit_code: int) -> None:
    import wandb

    if wandb.run is not None:
        try:
            wandb.run.finish(exit_code=exit_code)
        except TimeoutError:  # the server that failed the start is not taking this run either
            pass


def record_failed_job(logger_cfg: dict[str, Any], config: dict[str, Any], run_dir: Path,
                      summary: RunSummary) -> str | None:
    """A finished (exit code 1) W&B run for a sweep job that failed before training, so the
    sweep's W&B group shows it; returns its folder, or None when W&B cannot start."""
    try:
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(project=logger_cfg.get("project"), entity=logger_cfg.get("entity"),
                         group=logger_cfg.get("group"), job_type=logger_cfg.get("job_type"),
                         name=logger_cfg.get("name"), tags=logger_cfg.get("tags"), dir=str(run_dir),
                         mode=wandb_mode(logger_cfg.get("mode")), config=config,
                         settings=wandb.Settings(**finish_settings()))
        wandb_run = WandbRun(None, run, "")
        wandb_run.finish(summary)
        return wandb_run.local_dir
    except Exception as exc:  # noqa: BLE001 - the job has failed already; its summary.json must still land
        print(f"[rlab] warning: no W&B run for the failed job: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
