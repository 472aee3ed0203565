"""``hydra/launcher=joblib``: hydra-joblib-launcher with our worker count and forked workers.

Hydra finds this class by scanning the ``hydra_plugins`` namespace package, which the
package installs (``pyproject.toml`` lists ``hydra_plugins`` as a namespace package, so an
editable install adds ``src/hydra_plugins`` to it as a regular install does): nothing needs
to register it by hand. ``conf/hydra/launcher/joblib.yaml`` targets it.

Two changes to the stock launcher, same config keys:

- the worker count for the default ``n_jobs: -1`` (:func:`workers_for`);
- with ``backend: multiprocessing`` (our default) the jobs run on processes forked from a
  parent that has imported torch and Lightning: the process trick ``forked_workers``
  (:mod:`reinforce_lab.tricks.forked_workers`, where its gain, upstream versions and off
  switch are documented). With ``backend: loky``, the trick off or no ``fork``, the stock
  launcher's ``loky`` workers run the jobs.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


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


class ForkJoblibLauncher(Launcher):
    """``hydra/launcher=joblib``: forked, pre-imported workers with ``backend: multiprocessing``, else the stock ones.

    It wraps the stock ``JoblibLauncher`` instead of subclassing it, so that this module (which
    Hydra's plugin scan imports in every run) needs nothing of hydra-joblib-launcher, an
    optional dependency (the ``sweeps`` extra): without it, runs print no plugin import warning.
    """

    def __init__(self, **joblib: Any) -> None:
        self.joblib = joblib  # the plugin's keys (n_jobs, backend, ...) as configured
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        # Imported here, not at the top: Hydra's plugin scan imports this module in every run,
        # where joblib would cost ~0.3 s and, without the sweeps extra, break runs that never use it.
        try:
            from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
        except ModuleNotFoundError as exc:  # rlab-train says so before starting (reinforce_lab.extras)
            from reinforce_lab.extras import install_hint

            raise ModuleNotFoundError(f"hydra/launcher=joblib needs hydra-joblib-launcher: "
                                      f"{install_hint('sweeps')}") from exc

        from reinforce_lab.tricks import forked_workers

        workers = workers_for(len(job_overrides), int(self.joblib.get("n_jobs", -1)))
        if forked_workers.applies(self.joblib.get("backend")):
            return forked_workers.launch(self, job_overrides, initial_job_idx, workers)
        stock = JoblibLauncher(**{**self.joblib, "n_jobs": workers})  # it sets backend=loky on its own copy
        stock.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        return stock.launch(job_overrides, initial_job_idx)  # the stock loky workers
