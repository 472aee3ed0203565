"""hydra-joblib-launcher with forked workers that start with torch and Lightning already imported.

The stock launcher hard-codes joblib's ``loky`` backend, whose workers are fresh Python
processes: every worker imports torch, PyTorch Lightning, gymnasium and W&B again (about
5 s on a laptop CPU, measured in benchmarks/), which on a sweep of short jobs eats most of
the gain of running two at once. Here the launcher imports them once in the parent and
runs the jobs with joblib's ``multiprocessing`` backend, whose workers are *forked*
(Linux/macOS ``fork`` start method) and inherit the imported modules, so a job starts at
once. Everything else is the stock launcher: the same config keys, the same
``execute_job`` (Hydra's ``run_job``: job folder, ``.hydra/``, logging, callbacks).

Forking is safe here because the parent has only imported libraries (no torch thread pool,
CUDA context or W&B service exists yet). Where ``fork`` is unavailable (Windows) it falls
back to the stock ``loky`` workers.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib import Parallel, delayed
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# What a reinforce-lab job imports first; loaded in the parent so forked workers share them
# (wandb only when the sweep logs to W&B: the parent's import time is start-up every job waits for).
PRELOAD = ("torch", "pytorch_lightning", "gymnasium", "reinforce_lab.train")


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def workers_for(num_jobs: int, n_jobs: int, cpus: int | None = None) -> int:
    """How many jobs run at once: ``n_jobs`` as given, except ``-1`` (the default).

    ``-1`` picks between one and 1.5 workers per core (at least one per core, as joblib's
    ``-1``; measured on 2 cores: 3 CartPole jobs at a time trained as fast per core as 2,
    4 at a time 5% slower, 8 at a time 19% slower, one run each). Within that range it takes the count
    that leaves no core idle at the end if all jobs took equally long, and the larger one on
    a tie, because jobs of unequal length then leave less idle time at the end. On 2 cores:
    3 jobs all start at once (the Fig. 13.1 set in 41–56 s instead of 57–70 s, no core idle
    while the third job runs alone), 4 jobs run 2 at a time, 8 jobs 3 at a time (7% faster
    than 2 in three paired runs), see benchmarks/README.md.
    """
    if n_jobs != -1:
        return n_jobs
    cpus = cpus or usable_cpus()
    candidates = range(cpus, 3 * cpus // 2 + 1)

    def idle_at_end(workers: int) -> float:
        """Core-time left idle by the last, partial wave of equal jobs (in job lengths)."""
        rest = num_jobs % workers if num_jobs > workers else num_jobs
        return 1 - rest / cpus if 0 < rest < cpus and num_jobs > cpus else 0.0

    best = min(candidates, key=lambda w: (idle_at_end(w), -w))
    return max(1, min(best, num_jobs))


class ForkJoblibLauncher(JoblibLauncher):
    """``hydra/launcher=joblib`` with ``backend: multiprocessing`` run on forked, pre-imported workers."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        joblib_cfg: dict[str, Any] = dict(self.joblib)
        requested = self.joblib.get("n_jobs", -1)
        joblib_cfg["n_jobs"] = workers_for(len(job_overrides), int(requested))
        if joblib_cfg.get("backend") != "multiprocessing" or "fork" not in multiprocessing.get_all_start_methods():
            self.joblib["n_jobs"] = joblib_cfg["n_jobs"]  # the stock launcher reads it from here
            try:
                return super().launch(job_overrides, initial_job_idx)  # the stock loky workers
            finally:
                self.joblib["n_jobs"] = requested  # the next batch (e.g. Optuna's) decides anew
        setup_globals()
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        logger_target = str(self.config.get("logger", {}).get("_target_", ""))
        for module in PRELOAD + (("wandb",) if "Wandb" in logger_target else ()):
            try:
                importlib.import_module(module)
            except ImportError:  # an optional one (e.g. wandb) missing: the job will say so itself
                pass
        _core.process_joblib_cfg(joblib_cfg)
        log.info("Joblib.Parallel(%s) is launching %d jobs on forked workers",
                 ",".join(f"{k}={v}" for k, v in joblib_cfg.items()), len(job_overrides))
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        singleton_state = Singleton.get_state()
        # The workers are forked after this point and inherit the job list, so only an index
        # travels to them (Hydra's task function, wrapped by @hydra.main, cannot be pickled).
        _JOBS[:] = [(initial_job_idx + idx, overrides, self.hydra_context, self.config, self.task_function,
                     singleton_state) for idx, overrides in enumerate(job_overrides)]
        try:
            runs = Parallel(**joblib_cfg)(delayed(_execute)(i) for i in range(len(_JOBS)))
        finally:
            _JOBS.clear()
        assert isinstance(runs, list) and all(isinstance(r, JobReturn) for r in runs)
        return runs


_JOBS: list[tuple] = []


def _execute(index: int) -> JobReturn:
    """Run job ``index`` of the list the parent set before forking (Hydra's own ``execute_job``).

    The result travels back by plain pickle, which refuses the structured launcher config
    inside ``hydra_cfg`` (Hydra's plugin scan re-executes the plugin modules, so the class
    found by name is not the one the config was made from): send it as a plain config.
    """
    ret = _core.execute_job(*_JOBS[index])
    ret.hydra_cfg = OmegaConf.create(OmegaConf.to_container(ret.hydra_cfg))
    ret.cfg = OmegaConf.create(OmegaConf.to_container(ret.cfg))
    return ret
