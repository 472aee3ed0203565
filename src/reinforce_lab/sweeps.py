"""Hydra multirun support: the W&B group of a job, what a failed job returns, the end-of-sweep summary.

* ``${rlab.group:}`` (the default of ``logger.group`` in ``conf/logger/wandb.yaml``): the
  experiment preset's name when one is selected (``experiment=gamma_t`` → ``gamma_t``), else
  in a multirun the sweep folder without its leading ``multirun/`` (``multirun/2026-11-21/10-11-12``
  → ``2026-11-21/10-11-12``), else ``null``. So every job of a sweep lands in one W&B group.
* :func:`failure_value` is what a failed job returns to the sweeper: the worst value for the
  optimisation direction (−inf when maximising), which Optuna records like any other result,
  so one bad trial never stops the study.
* :class:`SweepSummary` is a Hydra callback (``hydra.callbacks`` in ``conf/train.yaml``): at the
  end of a multirun it prints one line per failed job and, if any failed, ends ``rlab-train``
  with exit code 1 (once every job has run).

Importing :mod:`reinforce_lab` registers the resolver (:mod:`reinforce_lab.resolvers`).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .run_summary import read_summary

GROUP_RESOLVER = "rlab.group"
MAX_GROUP_LEN = 128  # W&B's limit on a group name
SWEEP_ROOT = "multirun"
CLOCK_SLACK_S = 60  # jobs on other machines (SLURM) may have clocks a little behind this one's

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

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = job_statuses(sweep_dir, since=self.started - CLOCK_SLACK_S)
        failed = [f"{job}: {err}" for job, (status, err) in jobs.items() if status != "finished"]
        ok = len(jobs) - len(failed)
        print(f"[rlab] sweep done: {ok} of {len(jobs)} jobs finished in {sweep_dir}"
              + (f"; {len(failed)} failed:" if failed else f"  (aggregate: rlab-report {sweep_dir})"),
              file=sys.stderr if failed else sys.stdout, flush=True)
        for line in failed:
            print(f"[rlab]   {line}", file=sys.stderr, flush=True)
        if failed:
            raise SystemExit(1)  # Hydra calls this after the last job: the sweep's exit status


def job_statuses(sweep_dir: Path, since: float = 0.0) -> dict[Path, tuple[str, str]]:
    """``{job folder: (status, error)}`` for the jobs under ``sweep_dir`` that started after ``since``.

    A job is a folder with Hydra's ``.hydra/`` (one without ``summary.json`` was killed before
    it could write one: status ``missing``), or with only a ``summary.json``: a job that never
    started, which the SLURM launcher recorded with SLURM's reason.
    """
    out = {}
    folders = {p.parent for pattern in (".hydra", "summary.json") for p in sweep_dir.rglob(pattern)}
    for job in sorted(folders, key=_natural_key):
        hydra_dir = job / ".hydra"
        try:
            stamp = hydra_dir / "overrides.yaml" if hydra_dir.is_dir() else job / "summary.json"
            if stamp.stat().st_mtime < since:
                continue  # left over from an earlier sweep into the same folder
            summary = read_summary(job)
            out[job] = (summary.status, summary.error or "")
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
    from .run_summary import SUMMARY_FILE, RunSummary
    from .wandb_run import record_failed_job

    run_dir.mkdir(parents=True, exist_ok=True)
    if exc is not None:
        import traceback

        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
    if not (run_dir / SUMMARY_FILE).is_file():  # run() writes it once training has started
        summary = RunSummary.failed(run_dir, error, OmegaConf.select(cfg, "seed", default=None))
        if "Wandb" in str(OmegaConf.select(cfg, "logger._target_", default="")):
            config = _container(cfg)
            summary.wandb_run_dir = record_failed_job(config["logger"], config, run_dir, summary)
        summary.write(run_dir)
    more = "; traceback in traceback.txt" if exc is not None else ""
    print(f"[rlab] job failed ({run_dir}): {error}{more}", file=sys.stderr, flush=True)
    return failure_value()


def _container(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - the failure may be an unresolvable value itself
        return OmegaConf.to_container(cfg, resolve=False)
