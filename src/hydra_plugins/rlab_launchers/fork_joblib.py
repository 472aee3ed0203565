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


class ForkJoblibLauncher(JoblibLauncher):
    """``hydra/launcher=joblib`` with ``backend: multiprocessing`` run on forked, pre-imported workers."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        joblib_cfg: dict[str, Any] = dict(self.joblib)
        if joblib_cfg.get("backend") != "multiprocessing" or "fork" not in multiprocessing.get_all_start_methods():
            return super().launch(job_overrides, initial_job_idx)  # the stock loky workers
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
