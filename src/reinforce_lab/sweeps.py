"""Hydra multirun support: the W&B group of a job, what a failed job returns, the end-of-sweep summary.

* ``${rlab.group:}`` (the default of ``logger.group`` in ``conf/logger/wandb.yaml``): the
  experiment preset's name when one is selected (``experiment=gamma_t`` → ``gamma_t``), else
  in a multirun the sweep folder without its leading ``multirun/`` (``multirun/2026-11-21/10-11-12``
  → ``2026-11-21/10-11-12``), else ``null``. So every job of a sweep lands in one W&B group.
* :func:`failure_value` is what a failed job returns to the sweeper: the worst value for the
  optimisation direction (−inf when maximising), which Optuna records like any other result,
  so one bad trial never stops the study.
* :class:`SweepSummary` is a Hydra callback (``hydra.callbacks`` in ``conf/train.yaml``): at the
  end of a multirun it prints one line per failed job and records them in :data:`FAILED`, which
  ``rlab-train`` turns into exit code 1 once every job has run.

Importing :mod:`reinforce_lab` registers the resolver (see ``__init__.py``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

GROUP_RESOLVER = "rlab.group"
MAX_GROUP_LEN = 128  # W&B's limit on a group name
SWEEP_ROOT = "multirun"
CLOCK_SLACK_S = 60  # jobs on other machines (SLURM) may have clocks a little behind this one's

FAILED: list[str] = []
"""``"<job folder>: <error>"`` for each failed job of the last multirun in this process."""


def register_resolvers() -> None:
    """Register ``${rlab.group:}`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver(GROUP_RESOLVER):
        OmegaConf.register_new_resolver(GROUP_RESOLVER, wandb_group)


def quiet_launcher_schema_warning() -> None:
    """Silence Hydra's deprecation warning about ``conf/hydra/launcher/<plugin>.yaml``.

    Those files extend the launcher plugin's config of the same name (``joblib``,
    ``submitit_slurm``), which Hydra 1.3 still does ("automatic schema matching") but warns
    about, in the launching process and in every joblib worker that composes a job's config.
    Only that one message is filtered.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema",
                            category=UserWarning)


def wandb_group() -> str | None:
    """The W&B group of the current Hydra job (see the module docstring); ``None`` outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    experiment = OmegaConf.select(hydra_cfg, "runtime.choices.experiment", default=None)
    if experiment not in (None, "null"):
        return str(experiment)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return sweep_label(str(hydra_cfg.sweep.dir))


def sweep_label(sweep_dir: str | Path, cwd: Path | None = None) -> str:
    """A short, stable name for a sweep folder: relative to ``cwd``, without a leading ``multirun/``."""
    path = Path(sweep_dir)
    if path.is_absolute():
        try:
            path = path.relative_to(cwd or Path.cwd())
        except ValueError:
            pass
    if len(path.parts) > 1 and path.parts[0] == SWEEP_ROOT:
        path = Path(*path.parts[1:])
    return path.as_posix()[-MAX_GROUP_LEN:]


def is_multirun() -> bool:
    """Whether the current Hydra job is one job of a sweep (``-m``, or ``hydra.mode=MULTIRUN``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def failure_value() -> float:
    """What a failed job returns to the sweeper: −inf, or +inf when the sweeper minimises."""
    from hydra.core.hydra_config import HydraConfig

    direction = OmegaConf.select(HydraConfig.get(), "sweeper.direction", default=None) \
        if HydraConfig.initialized() else None
    return math.inf if "minimize" in str(direction).lower() else -math.inf


class SweepSummary(Callback):
    """At the end of a multirun: one line per failed job (from the jobs' ``summary.json``)."""

    def __init__(self) -> None:
        self.started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        FAILED.clear()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = job_statuses(sweep_dir, since=self.started - CLOCK_SLACK_S)
        failed = {job: err for job, (status, err) in jobs.items() if status != "finished"}
        FAILED[:] = [f"{job}: {err}" for job, err in failed.items()]
        ok = len(jobs) - len(failed)
        print(f"[rlab] sweep done: {ok} of {len(jobs)} jobs finished in {sweep_dir}"
              + (f"; {len(failed)} failed:" if failed else f"  (aggregate: rlab-report {sweep_dir})"),
              file=sys.stderr if failed else sys.stdout, flush=True)
        for line in FAILED:
            print(f"[rlab]   {line}", file=sys.stderr, flush=True)


def job_statuses(sweep_dir: Path, since: float = 0.0) -> dict[Path, tuple[str, str]]:
    """``{job folder: (status, error)}`` for the jobs under ``sweep_dir`` that started after ``since``.

    A job is a folder with Hydra's ``.hydra/``; one without ``summary.json`` was killed
    before it could write one (status ``missing``).
    """
    out = {}
    for hydra_dir in sorted(sweep_dir.rglob(".hydra"), key=lambda p: _natural_key(p.parent)):
        job = hydra_dir.parent
        try:
            if (hydra_dir / "overrides.yaml").stat().st_mtime < since:
                continue  # left over from an earlier sweep into the same folder
            summary = json.loads((job / "summary.json").read_text())
            out[job] = (str(summary.get("status", "unknown")), str(summary.get("error") or ""))
        except FileNotFoundError as exc:
            if Path(str(exc.filename)).name != "summary.json":
                continue  # not a job folder after all
            out[job] = ("missing", "no summary.json (the job was killed, or is still running)")
        except (OSError, ValueError) as exc:
            out[job] = ("unreadable", f"summary.json: {exc}")
    return out


def _natural_key(path: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def job_failed(cfg: DictConfig, run_dir: Path, error: str, exc: BaseException | None = None) -> float:
    """Record a failed sweep job in its folder, print one line, return the sweeper's failure value."""
    from . import logging as rlog

    run_dir.mkdir(parents=True, exist_ok=True)
    if exc is not None:
        import traceback

        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
    if not (run_dir / rlog.SUMMARY_FILE).is_file():  # run() writes it once training has started
        summary: dict[str, Any] = {
            "status": "failed", "error": error, "final_return": None, "final_window": 0, "episodes": 0,
            "env_steps": 0, "wall_s": 0.0, "env_steps_per_s": 0.0, "solved_at_episode": None,
            "seed": OmegaConf.select(cfg, "seed", default=None), "run_dir": str(run_dir), "wandb_run_dir": None}
        summary["wandb_run_dir"] = failed_wandb_run(cfg, run_dir, summary)
        rlog.write_summary(run_dir, summary)
    more = "; traceback in traceback.txt" if exc is not None else ""
    print(f"[rlab] job failed ({run_dir}): {error}{more}", file=sys.stderr, flush=True)
    return failure_value()


def failed_wandb_run(cfg: DictConfig, run_dir: Path, summary: dict[str, Any]) -> str | None:
    """A finished (exit code 1) W&B run for a job that failed before training, so the sweep's
    W&B group shows it; ``None`` when W&B is not the logger or cannot start."""
    from . import logging as rlog

    if "Wandb" not in str(cfg.logger.get("_target_", "")):
        return None
    try:
        import wandb

        try:
            config = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # noqa: BLE001 - the failure may be an unresolvable value itself
            config = OmegaConf.to_container(cfg, resolve=False)
        lg = config["logger"]
        mode = rlog.wandb_mode(lg.get("mode"))
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb_run = wandb.init(project=lg.get("project"), entity=lg.get("entity"), group=lg.get("group"),
                               job_type=lg.get("job_type"), name=lg.get("name"), tags=lg.get("tags"),
                               dir=str(run_dir), mode=mode, config=config)
        wandb_run.summary.update({k: v for k, v in summary.items() if v is not None})
        wandb_run.finish(exit_code=1)
        return str(rlog.wandb_run_dir(wandb_run))
    except Exception as exc:  # noqa: BLE001 - the job has failed already; its summary.json must still land
        print(f"[rlab] warning: no W&B run for the failed job: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
