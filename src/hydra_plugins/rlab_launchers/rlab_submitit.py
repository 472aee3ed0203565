"""``hydra/launcher=submitit_slurm``: hydra-submitit-launcher's SLURM launcher, made to survive a real scheduler.

``conf/hydra/launcher/submitit_slurm.yaml`` targets :class:`RlabSlurmLauncher`. Same config
keys as the stock launcher (its ``SlurmQueueConf``); two changes to how a sweep ends:

- **a killed job does not end the sweep with a traceback.** The stock ``launch`` collects
  results with ``job.results()``, which raises submitit's ``UncompletedJobError`` for a job
  that SLURM cancelled, killed (SIGKILL, out of memory) or timed out, and the sweep stops
  there with no summary. Here each job's outcome is collected on its own: such a job gets a
  ``summary.json`` with the reason in words and SLURM's state
  (:mod:`reinforce_lab.slurm_jobs`), the sweeper gets the failure value, and the sweep ends
  with its one-line-per-failed-job summary and exit code 1;
- **preemption and time limits resume.** The jobs themselves handle that: SIGUSR2 stops
  training cleanly with a checkpoint and is then handed to submitit, which requeues the job
  through the stock launcher's ``checkpoint()`` (:mod:`reinforce_lab.interrupts`); the
  rerun finds its checkpoint and continues (:func:`reinforce_lab.resume.sweep_job_state`).
  ``max_num_timeout`` in the config allows a job that many time-limit requeues.

It wraps the stock launcher instead of subclassing it at import time, as
:mod:`.fork_joblib` does, because Hydra's plugin scan imports this module in every run and
hydra-submitit-launcher is optional (the ``sweeps`` extra). ``launch`` follows
hydra-submitit-launcher 1.2.0's ``BaseSubmititLauncher.launch`` except for how results are
collected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


class RlabSlurmLauncher(Launcher):
    """The stock ``SlurmLauncher`` with per-job result collection (see the module docstring)."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.inner: Any = None
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        try:
            from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
        except ModuleNotFoundError:
            from reinforce_lab.extras import install_hint

            raise ModuleNotFoundError("hydra/launcher=submitit_slurm needs hydra-submitit-launcher: "
                                      + install_hint("sweeps")) from None
        self.inner = SlurmLauncher(**self.params)  # what submitit pickles and runs on the nodes
        self.inner.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        assert self.config is not None and len(job_overrides) > 0
        params = dict(self.inner.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init["slurm_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster="slurm", **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        from reinforce_lab.slurm_jobs import early_signal_warning

        warning = early_signal_warning(params.get("timeout_min"), params.get("signal_delay_s"))
        if warning:
            log.warning(f"[rlab] warning: {warning}")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitit 'slurm' sweep output dir : {sweep_dir}")
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        try:
            jobs = executor.map_array(self.inner, *zip(*job_params))
        except submitit.core.utils.FailedJobError as exc:  # sbatch refused: no controller, bad partition…
            first = next((line for line in str(exc).splitlines() if line.strip()), "sbatch failed")
            raise SystemExit(f"error: the sweep could not be submitted to SLURM: {first.strip()}") from None
        return [self._collect(job, p[0], p[2]) for job, p in zip(jobs, job_params)]

    def _collect(self, job: Any, overrides: list[str], idx: int) -> JobReturn:
        """The job's own result, or, for a job that ended without one, a failure with SLURM's reason."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from reinforce_lab import slurm_jobs, sweeps

        run_dir = self._job_dir(overrides, idx)
        try:
            if not slurm_jobs.wait(job):
                raise UncompletedJobError(f"job {job.job_id} vanished")
            ret = job.results()[0]
        except (UncompletedJobError, FailedJobError):
            ret = JobReturn(overrides=overrides, working_dir=str(run_dir), status=JobStatus.COMPLETED)
            ret.return_value = sweeps.failure_value()
        slurm_jobs.record_outcome(run_dir, str(job.job_id))
        return ret

    def _job_dir(self, overrides: list[str], idx: int) -> Path:
        """The job's folder, ``hydra.sweep.dir/hydra.sweep.subdir``, as the job itself resolves it."""
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = idx
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
