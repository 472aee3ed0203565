"""Where a run's metrics go (``logger`` group): W&B (:mod:`reinforce_lab.wandb_run`), CSV, or nowhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from .run_summary import RunSummary
from .wandb_run import WandbRun, wandb_mode

# Keys an experiment preset may set for W&B that other loggers do not take.
WANDB_ONLY_KEYS = ("group", "job_type", "tags", "project", "entity", "log_model", "mode", "init_timeout")


@dataclass
class RunLogger:
    """The Lightning logger of a run (None for ``logger=none``) and its W&B run, if any."""

    lightning: Any = None
    wandb: WandbRun | None = None

    @property
    def mode(self) -> str | None:
        return self.wandb.mode if self.wandb is not None else None

    @property
    def wandb_dir(self) -> str | None:
        return self.wandb.local_dir if self.wandb is not None else None

    @classmethod
    def start(cls, logger_cfg: dict[str, Any], run_dir: Path, config: dict[str, Any], secrets: list[str],
              resume_id: str | None = None) -> "RunLogger":
        """Build the logger the ``logger`` group names (``logger_cfg``: the resolved node)."""
        if not logger_cfg.get("_target_"):
            return cls()
        cfg = dict(logger_cfg)
        if "Wandb" not in str(cfg["_target_"]):
            factory = instantiate({k: v for k, v in cfg.items() if k not in WANDB_ONLY_KEYS}, _partial_=True)
            return cls(lightning=_keep_earlier_metrics(factory(save_dir=str(run_dir))))
        mode, init_timeout = wandb_mode(cfg.pop("mode")), float(cfg.pop("init_timeout"))
        # `config` clashes with instantiate's own first parameter: it goes to the partial.
        factory = instantiate(cfg, _partial_=True)
        run = WandbRun.start(factory, mode, init_timeout, secrets, resume_id, save_dir=str(run_dir),
                             dir=str(run_dir), config=config)
        return cls(lightning=run.logger, wandb=run)

    def finish(self, summary: RunSummary) -> None:
        """Finish the W&B run, if any (the CSV logger writes as it goes)."""
        if self.wandb is not None:
            self.wandb.finish(summary)


def _keep_earlier_metrics(logger: Any) -> Any:
    """Keep a resumed run's earlier ``metrics.csv``: Lightning's CSV logger would delete it.

    It is renamed ``metrics.1.csv`` (``.2``, … on later resumes), in the order written; the
    rows from after the last checkpoint appear there and again in the next file (training
    after a resume repeats them exactly). ``episodes.csv`` is the run's one complete record.
    """
    import warnings

    log_dir = getattr(logger, "log_dir", None)
    old = Path(log_dir) / "metrics.csv" if log_dir else None
    if old is not None and old.is_file():
        k = 1
        while old.with_name(f"metrics.{k}.csv").exists():
            k += 1
        old.rename(old.with_name(f"metrics.{k}.csv"))
        # Lightning still warns that files in the folder "will be deleted"; none will.
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    return logger
